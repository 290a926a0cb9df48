package wire

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The implementations that the faster code in this package replaced, kept
// as judges for the differential tests and fuzz targets below.

// validURLBase64 was the inner token's strict check: url-safe alphabet,
// '=' only as one of the last two characters, a length that is a multiple
// of four.
func validURLBase64(b []byte) bool {
	if len(b)%4 != 0 {
		return false
	}
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '=' && i >= len(b)-2:
		default:
			return false
		}
	}
	return true
}

// oldAppendOpenAt is Codec.AppendOpenAt as it was: the outer base64
// decoded, the inner text checked by validURLBase64 and decoded, then the
// keys tried.
func oldAppendOpenAt(c *Codec, dst, body []byte, now time.Time) ([]byte, error) {
	body = trimASCIISpace(body)
	if len(body) == 0 {
		return dst, ErrUnauthenticated
	}
	inner := base64.StdEncoding.DecodedLen(len(body))
	buf := make([]byte, inner+base64.URLEncoding.DecodedLen(inner))
	n, err := base64.StdEncoding.Decode(buf[:inner], body)
	if err != nil {
		return dst, ErrUnauthenticated
	}
	text := buf[:n]
	if base64.URLEncoding.DecodedLen(len(text)) < minTokenLen || !validURLBase64(text) {
		return dst, ErrUnauthenticated
	}
	m, err := base64.URLEncoding.Decode(buf[n:], text)
	if err != nil {
		return dst, ErrUnauthenticated
	}
	tok := buf[n : n+m]
	for _, k := range c.keys {
		if out, ok := k.open(dst, tok, c.maxAge, now); ok {
			return out, nil
		}
	}
	return dst, ErrUnauthenticated
}

// oldInnerDecode is the old composition's verdict on a body without the
// keys: the binary token, or false.
func oldInnerDecode(body []byte) ([]byte, bool) {
	body = trimASCIISpace(body)
	text, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil || len(body) == 0 || base64.URLEncoding.DecodedLen(len(text)) < minTokenLen || !validURLBase64(text) {
		return nil, false
	}
	tok, err := base64.URLEncoding.DecodeString(string(text))
	if err != nil {
		return nil, false
	}
	return tok, true
}

// doubleBase64 is the body encoding by its definition: standard base64 of
// the url-safe base64 text of the token.
func doubleBase64(raw []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString([]byte(base64.URLEncoding.EncodeToString(raw))))
}

// checkOpenAgainstOld fails t unless Open gives body the old verdict: the
// same plaintext, or ErrUnauthenticated from both.
func checkOpenAgainstOld(t *testing.T, c *Codec, body []byte, now time.Time) {
	t.Helper()
	// The decoding alone first: a token that decodes but does not
	// authenticate would hide a difference from the Open comparison.
	wantTok, wantOK := oldInnerDecode(body)
	gotTok, _, gotOK := decodeBody(nil, body)
	if gotOK != wantOK || !bytes.Equal(gotTok, wantTok) {
		t.Fatalf("decodeBody(%q) = %x, %v; the old code gives %x, %v", body, gotTok, gotOK, wantTok, wantOK)
	}
	want, wantErr := oldAppendOpenAt(c, []byte("d:"), body, now)
	got, err := c.AppendOpenAt([]byte("d:"), body, now)
	if err != wantErr || !bytes.Equal(got, want) {
		t.Fatalf("Open(%q) = %q, %v; the old code gives %q, %v", body, got, err, want, wantErr)
	}
}

// innerVariants are changes of a valid inner text that the strict check is
// about: whitespace, padding and alphabet at every place that matters.
func innerVariants(text []byte) [][]byte {
	var out [][]byte
	edit := func(f func(b []byte) []byte) { out = append(out, f(slices.Clone(text))) }
	// Every place in the first and last blocks of 16 (decodeBlocks' unit
	// in a body, 12 in its text), and one in the middle.
	var places []int
	for i := range 20 {
		places = append(places, i, len(text)-1-i)
	}
	for _, pos := range append(places, len(text)/2) {
		for _, c := range []byte{'\n', '\r', '=', '+', '/', ' ', 0, 0x80, 0xff, 'A', '-', '_'} {
			edit(func(b []byte) []byte { b[pos] = c; return b })
			edit(func(b []byte) []byte { return slices.Insert(b, pos, c) })
			edit(func(b []byte) []byte { return slices.Insert(b, pos, c, c, c, c) })
		}
		edit(func(b []byte) []byte { return slices.Delete(b, pos, pos+1) })
	}
	edit(func(b []byte) []byte { return append(b, "\r\n"...) })
	edit(func(b []byte) []byte { return append(b, "===="...) })
	edit(func(b []byte) []byte { return append([]byte("\n"), b...) })
	return out
}

func TestOpenAgainstOld(t *testing.T) {
	now := time.Now()
	c, _ := NewCodec([]string{vectorKey}, 0)
	for _, plain := range [][]byte{nil, []byte("x"), []byte(vectorPlain), answerPlain} {
		for n := range 3 {
			// Inner texts that end in "==", "=" and no padding.
			body, _ := c.SealAt(append(slices.Clone(plain), bytes.Repeat([]byte{'.'}, 16*n)...), now)
			checkOpenAgainstOld(t, c, body, now)
			text, _ := base64.StdEncoding.DecodeString(string(body))
			for _, v := range innerVariants(text) {
				checkOpenAgainstOld(t, c, []byte(base64.StdEncoding.EncodeToString(v)), now)
			}
			for _, v := range innerVariants(body) {
				checkOpenAgainstOld(t, c, v, now)
			}
		}
	}
}

// Tokens of every length, so that bodies end with every combination of
// padding at both levels (none at all when the length is a multiple of 9),
// and a few edits of each.
func TestDecodeBodyAgainstOld(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := range 1200 {
		body := doubleBase64(randomBytes(rnd, n))
		bodies := [][]byte{body}
		for _, pos := range []int{0, len(body) / 2, len(body) - 16, len(body) - 4, len(body) - 1} {
			if pos >= 0 && pos < len(body) {
				bodies = append(bodies, slices.Insert(slices.Clone(body), pos, '\n'),
					slices.Insert(slices.Clone(body), pos, 'Q', 'U', 'F', 'B'),
					slices.Delete(slices.Clone(body), pos, pos+1))
			}
		}
		for _, b := range bodies {
			wantTok, wantOK := oldInnerDecode(b)
			gotTok, _, gotOK := decodeBody(nil, b)
			if gotOK != wantOK || !bytes.Equal(gotTok, wantTok) {
				t.Fatalf("decodeBody(%q) = %x, %v; the old code gives %x, %v", b, gotTok, gotOK, wantTok, wantOK)
			}
		}
	}
}

func FuzzOpenAgainstOld(f *testing.F) {
	now := time.Unix(1764633599, 0)
	c, _ := NewCodec([]string{vectorKey}, 0)
	body, _ := c.SealAt([]byte(vectorPlain), now)
	text, _ := base64.StdEncoding.DecodeString(string(body))
	tok, _ := base64.URLEncoding.DecodeString(string(text))
	f.Add(body, byte(0), uint16(0), byte(0))
	f.Add([]byte(vectorBody), byte(0), uint16(0), byte(0))
	f.Add([]byte(" "+vectorBody+"\r\n"), byte(0), uint16(0), byte(0))
	f.Add(text, byte(1), uint16(0), byte(0))
	f.Add(append(slices.Clone(text[:40]), append([]byte("\r\n"), text[40:]...)...), byte(1), uint16(0), byte(0))
	f.Add([]byte("gAAAAA=="), byte(1), uint16(0), byte(0))
	f.Add(bytes.Repeat([]byte("A"), 100), byte(1), uint16(0), byte(0))
	f.Add(tok, byte(2), uint16(0), byte(0))
	f.Add(tok, byte(2), uint16(100), byte('\n'))
	f.Add(tok, byte(2), uint16(1000), byte('='))
	f.Fuzz(func(t *testing.T, b []byte, mode byte, at uint16, put byte) {
		// Mode 1 takes b as the inner text, so that the fuzzer reaches the
		// inner check without having to find valid outer base64 first;
		// mode 2 as the token, so that the body is valid up to the one
		// byte put at place at (if put is not 0).
		switch mode % 3 {
		case 1:
			b = []byte(base64.StdEncoding.EncodeToString(b))
		case 2:
			b = doubleBase64(b)
			if put != 0 && len(b) > 0 {
				b[int(at)%len(b)] = put
			}
		}
		checkOpenAgainstOld(t, c, b, now)
	})
}

func TestEncodeBodyAgainstComposition(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := range 4097 {
		for _, raw := range [][]byte{randomBytes(rnd, n), bytes.Repeat([]byte{0xff}, n), make([]byte, n)} {
			checkEncodeBody(t, raw)
		}
	}
}

func randomBytes(rnd *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

func checkEncodeBody(t *testing.T, raw []byte) {
	t.Helper()
	want := doubleBase64(raw)
	// One byte of room more than needed, which must stay untouched.
	got := make([]byte, bodyLen(len(raw))+1)
	got[len(got)-1] = '#'
	encodeBody(got[:len(got)-1], raw)
	if !bytes.Equal(got[:len(got)-1], want) || got[len(got)-1] != '#' {
		t.Fatalf("encodeBody(%x) = %q; want %q", raw, got, want)
	}
}

func FuzzEncodeBody(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("123456789"))
	f.Add(bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 30))
	f.Add([]byte(vectorPlain))
	f.Fuzz(func(t *testing.T, raw []byte) { checkEncodeBody(t, raw) })
}

// The body encoding alone, fused and as the two library passes, for an
// answer's token.
func BenchmarkEncodeBody(b *testing.B) {
	raw := make([]byte, fernetSealedLen(len(answerPlain)))
	dst := make([]byte, bodyLen(len(raw)))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		encodeBody(dst, raw)
	}
}

func BenchmarkEncodeBodyTwoPasses(b *testing.B) {
	raw := make([]byte, fernetSealedLen(len(answerPlain)))
	text := make([]byte, base64.URLEncoding.EncodedLen(len(raw)))
	dst := make([]byte, bodyLen(len(raw)))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		base64.URLEncoding.Encode(text, raw)
		base64.StdEncoding.Encode(dst, text)
	}
}

// The body decoding alone, as decodeBody does it and as the two library
// passes with the strict check, for an answer's body.
func BenchmarkDecodeBody(b *testing.B) {
	body := doubleBase64(make([]byte, fernetSealedLen(len(answerPlain))))
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, ok := decodeBody(buf, body); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkDecodeBodyTwoPasses(b *testing.B) {
	body := doubleBase64(make([]byte, fernetSealedLen(len(answerPlain))))
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		n, err := base64.StdEncoding.Decode(buf, body)
		if err != nil || !strictURLBase64(buf[:n]) {
			b.Fatal("refused")
		}
		if _, err := base64.URLEncoding.Decode(buf[n:], buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}
