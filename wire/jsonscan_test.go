package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceMembers is what encoding/json makes of text: ErrJSONSyntax,
// ErrNotObject, or the object's members (last duplicate wins) with each
// value's bytes.
func referenceMembers(text []byte) (map[string][]byte, error) {
	if !json.Valid(text) {
		return nil, ErrJSONSyntax
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(text, &m); err != nil || m == nil {
		return nil, ErrNotObject
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out, nil
}

func scanMembers(text []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := ScanObject(text, func(m Member) { out[m.Name()] = m.Value })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func checkAgainstReference(t *testing.T, text []byte) {
	t.Helper()
	if !utf8.Valid(text) {
		return // the server refuses those before decoding
	}
	want, wantErr := referenceMembers(text)
	got, err := scanMembers(text)
	if !errors.Is(err, wantErr) {
		t.Fatalf("ScanObject(%q) error %v; encoding/json: %v", text, err, wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("ScanObject(%q) = %q; encoding/json: %q", text, got, want)
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("ScanObject(%q)[%q] = %q; encoding/json: %q", text, k, got[k], v)
		}
	}
	if ValidJSON(text) != json.Valid(text) {
		t.Fatalf("ValidJSON(%q) = %v; json.Valid: %v", text, ValidJSON(text), json.Valid(text))
	}
}

var scanSamples = []string{
	`{"request": "session-exists", "body": {"session_token": "abc"}, "reqid": 1, "client_ipaddr": "1.2.3.4"}`,
	`{}`, ` { } `, `{"a":1,"a":2}`, `{"a\u0062":[1,{"x":null}],"c":-0.5e+3}`, `{"\"":"\\"}`,
	`[]`, `"x"`, `1`, `null`, `true`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":01}`, `{"a":1.}`,
	`{"a":1e}`, `{"a":-}`, `{"a":"\x"}`, "{\"a\":\"\t\"}", `{"a":"\u12"}`, `{"a":[1,]}`, `{"a":tru}`, ``, ` `,
	`{"a":"` + "\u00e9\u4e2d" + `"}`, `{"a":1}` + "\n", strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`, `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
}

func TestScanObjectAgainstEncodingJSON(t *testing.T) {
	for _, s := range scanSamples {
		checkAgainstReference(t, []byte(s))
	}
	// Every ASCII byte inside a key and a value, raw and after a
	// backslash, and strings cut short.
	for c := range byte(0x80) {
		for _, f := range []string{`{"a%cb":1}`, `{"a":"x%c"}`, `{"k\\%c":"v"}`, `{"a":"\\%c"}`, `{"a":"\\u00%c0"}`, `["%c`, `"\\%c`} {
			checkAgainstReference(t, fmt.Appendf(nil, f, c))
		}
	}
}

func FuzzScanObjectAgainstEncodingJSON(f *testing.F) {
	for _, s := range scanSamples {
		if len(s) < 1000 {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, text []byte) { checkAgainstReference(t, text) })
}

func BenchmarkScanEnvelope(b *testing.B) {
	text := []byte(vectorPlain)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := ScanObject(text, func(m Member) { n += len(m.Value) }); err != nil {
			b.Fatal(err)
		}
	}
}

// checkWalkAgainstScan holds WalkObject to ScanObject: on an object
// ScanObject accepts, the same members in the same order; on any other
// text, no panic (it must end and stay in bounds), and false for text that
// does not start as an object.
func checkWalkAgainstScan(t *testing.T, text []byte) {
	t.Helper()
	var walked []Member
	ok := WalkObject(text, func(m Member) { walked = append(walked, m) })
	var scanned []Member
	if ScanObject(text, func(m Member) { scanned = append(scanned, m) }) != nil {
		return
	}
	if !ok || len(walked) != len(scanned) {
		t.Fatalf("%q: walked %d members (ok %v); scanned %d", text, len(walked), ok, len(scanned))
	}
	for i := range scanned {
		w, s := walked[i], scanned[i]
		if !bytes.Equal(w.Key, s.Key) || w.Escaped != s.Escaped || !bytes.Equal(w.Value, s.Value) {
			t.Fatalf("%q: member %d walked %q/%v = %q; scanned %q/%v = %q", text, i, w.Key, w.Escaped, w.Value, s.Key, s.Escaped, s.Value)
		}
	}
}

func TestWalkObject(t *testing.T) {
	for _, s := range scanSamples {
		checkWalkAgainstScan(t, []byte(s))
	}
	for _, s := range []string{
		`{"a":"x\"y","b\\":[1,{"c":"]}"}],"d":-1.5e3,"e":true,"f":null,"g":{}}`,
		`{"":""}`, ` { "k" : "v" } `, `{"a":"\\"}`, `{"a":"\\\""}`,
		`{"a`, `{"a":`, `{"a":"`, `{"a":"\`, `{"a":[`, `{"a":1,`, `[1]`, ``, `"x"`,
	} {
		checkWalkAgainstScan(t, []byte(s))
	}
}

func FuzzWalkObject(f *testing.F) {
	for _, s := range scanSamples {
		if len(s) < 1000 {
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(`{"a":"x\"y","b\\":[1,{"c":"]}"}],"d":-1.5e3}`))
	f.Fuzz(checkWalkAgainstScan)
}

// TestStopBytes holds the word-at-a-time search to a byte loop: the first
// byte it flags is the first '"', '\\' (or, with controls, control byte),
// for words built from the bytes that matter and their neighbours.
func TestStopBytes(t *testing.T) {
	alphabet := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', '#', '\\', ']', 'a', 0x7f, 0x80, 0x9f, 0xa0, 0xdc, 0xff}
	rng := rand.New(rand.NewPCG(1, 2))
	var word [8]byte
	for range 200000 {
		for i := range word {
			word[i] = alphabet[rng.IntN(len(alphabet))]
		}
		for _, controls := range []bool{false, true} {
			want := 8
			for i, c := range word {
				if c == '"' || c == '\\' || (controls && c < 0x20) {
					want = i
					break
				}
			}
			got := 8
			if m := stopBytes(binary.LittleEndian.Uint64(word[:]), controls); m != 0 {
				got = bits.TrailingZeros64(m) >> 3
			}
			if got != want {
				t.Fatalf("stopBytes(%q, controls=%v): first at %d, want %d", word, controls, got, want)
			}
		}
	}
}
