package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
)

// fernet-go is the judge of this package's Fernet (fernet.go): tokens made
// by either verify with the other, under the same time rules.

// refOpen is how bodies were opened with fernet-go: the outer base64, the
// inner alphabet checked, then fernet-go's VerifyAndDecrypt.
func refOpen(keys []*fernet.Key, body []byte, maxAge time.Duration) []byte {
	body = trimASCIISpace(body)
	tok, err := base64.StdEncoding.DecodeString(string(body))
	if err != nil || base64.URLEncoding.DecodedLen(len(tok)) < minTokenLen || !validURLBase64(tok) {
		return nil
	}
	return fernet.VerifyAndDecrypt(tok, maxAge, keys)
}

func refKeys(t testing.TB, keys ...string) []*fernet.Key {
	t.Helper()
	out := make([]*fernet.Key, len(keys))
	for i, k := range keys {
		var err error
		if out[i], err = fernet.DecodeKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func FuzzFernetAgainstReference(f *testing.F) {
	f.Add([]byte(vectorPlain), uint16(0), byte(0))
	f.Add([]byte{}, uint16(5), byte(1))
	f.Add(bytes.Repeat([]byte{16}, 16), uint16(90), byte(0xff))
	f.Add([]byte("x"), uint16(200), byte(0x80))
	ours, err := NewCodec([]string{vectorKey}, 0)
	if err != nil {
		f.Fatal(err)
	}
	keys := refKeys(f, vectorKey)
	f.Fuzz(func(t *testing.T, plain []byte, flipAt uint16, flip byte) {
		// Ours seals, fernet-go opens.
		body, err := ours.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if got := refOpen(keys, body, 0); got == nil || !bytes.Equal(got, plain) {
			t.Fatalf("fernet-go opens our token of %q as %q", plain, got)
		}
		// fernet-go seals, ours opens.
		tok, err := fernet.EncryptAndSign(plain, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		refBody := []byte(base64.StdEncoding.EncodeToString(tok))
		if got, err := ours.Open(refBody); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("we open fernet-go's token of %q as %q, %v", plain, got, err)
		}
		// A changed body: both refuse it, or both open it to the same
		// plaintext (a change of the outer padding or whitespace).
		for _, b := range [][]byte{body, refBody} {
			bad := bytes.Clone(b)
			bad[int(flipAt)%len(bad)] ^= flip
			want := refOpen(keys, bad, 0)
			got, err := ours.Open(bad)
			if (err == nil) != (want != nil) || !bytes.Equal(got, want) {
				t.Fatalf("changed body: ours %q, %v; fernet-go %q", got, err, want)
			}
		}
	})
}

// The freshness window: the same verdict as fernet-go's for tokens of every
// age around the limits, both ways.
func TestFernetTimeRulesMatchReference(t *testing.T) {
	const maxAge = 2 * time.Minute
	ours, _ := NewCodec([]string{vectorKey}, maxAge)
	keys := refKeys(t, vectorKey)
	for _, age := range []time.Duration{0, time.Minute, maxAge - 2*time.Second, maxAge + 2*time.Second, time.Hour,
		-30 * time.Second, -fernetMaxSkew + 2*time.Second, -fernetMaxSkew - 2*time.Second, -time.Hour} {
		at := time.Now().Add(-age)
		body, _ := ours.SealAt([]byte("{}"), at)
		tok, _ := fernet.EncryptAndSignAtTime([]byte("{}"), keys[0], at)
		refBody := []byte(base64.StdEncoding.EncodeToString(tok))
		for _, b := range [][]byte{body, refBody} {
			want := refOpen(keys, b, maxAge) != nil
			_, err := ours.Open(b)
			if (err == nil) != want {
				t.Errorf("token %v old: ours opens %v; fernet-go %v", age, err == nil, want)
			}
		}
	}
}

// A token signed with the key whose padding is not PKCS #7 (a padding byte
// of 0, or above the block size) is refused, as the spec and the Python
// server's library do; fernet-go alone would take it.
func TestFernetRefusesBadPadding(t *testing.T) {
	ours, _ := NewCodec([]string{vectorKey}, 0)
	key := refKeys(t, vectorKey)[0]
	for _, last := range []byte{0, 17, 32} {
		block := bytes.Repeat([]byte{last}, aes.BlockSize)
		if last == 0 {
			block = append([]byte("fifteen bytes!!"), 0)
		}
		tok := make([]byte, fernetPayload, fernetPayload+len(block)+sha256.Size)
		tok[0] = fernetVersion
		binary.BigEndian.PutUint64(tok[fernetTSOffset:], uint64(time.Now().Unix()))
		iv := tok[fernetIVOffset:fernetPayload]
		bc, _ := aes.NewCipher(key[16:])
		ct := make([]byte, len(block))
		for i := range block {
			ct[i] = block[i] ^ iv[i%aes.BlockSize]
		}
		bc.Encrypt(ct, ct)
		tok = append(tok, ct...)
		m := hmac.New(sha256.New, key[:16])
		m.Write(tok)
		tok = m.Sum(tok)
		body := []byte(base64.StdEncoding.EncodeToString([]byte(base64.URLEncoding.EncodeToString(tok))))
		if got, err := ours.Open(body); err == nil {
			t.Errorf("padding byte %d: opened as %q; want refused", last, got)
		}
	}
}

// Appending: the plaintext and the body go after what dst holds, and a
// refused body appends nothing.
func TestAppendOpenSeal(t *testing.T) {
	c, _ := NewCodec([]string{vectorKey}, 0)
	body, err := c.AppendSealAt([]byte("prefix:"), []byte(vectorPlain), time.Now())
	if err != nil || !bytes.HasPrefix(body, []byte("prefix:")) {
		t.Fatalf("AppendSealAt = %q, %v", body, err)
	}
	got, err := c.AppendOpen([]byte("x"), body[len("prefix:"):])
	if err != nil || string(got) != "x"+vectorPlain {
		t.Fatalf("AppendOpen = %q, %v", got, err)
	}
	if got, err := c.AppendOpen([]byte("x"), []byte("garbage")); err == nil || string(got) != "x" {
		t.Errorf("AppendOpen of garbage = %q, %v; want x and an error", got, err)
	}
}

// IVs drawn from the pooled random block never repeat: a block is used up
// and refilled, each byte handed out once.
func TestReadIVUnique(t *testing.T) {
	seen := make(map[[16]byte]bool)
	for range 3 * 4096 / 16 { // three blocks' worth
		var iv [16]byte
		if err := readIV(iv[:]); err != nil {
			t.Fatal(err)
		}
		if seen[iv] || iv == ([16]byte{}) {
			t.Fatalf("IV %x repeated or zero", iv)
		}
		seen[iv] = true
	}
}
