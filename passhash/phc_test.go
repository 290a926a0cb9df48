package passhash

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Hashes made with argon2-cffi's defaults before 21.2 and since: password
// "correct horse battery staple", salt 0x00…0x0f.
const (
	phcTestPassword = "correct horse battery staple"
	phcTestPre212   = "$argon2id$v=19$m=102400,t=2,p=8$AAECAwQFBgcICQoLDA0ODw$d/VOqhZTKwCM/uQ6epxznw"
	phcTest212      = "$argon2id$v=19$m=65536,t=3,p=4$AAECAwQFBgcICQoLDA0ODw$hTsnKkTbFCHAKWJmmlXrCZTzyrOF7RxMeSU+7hm6tJ4"
)

// phcTestParams are small parameters that keep tests fast.
var phcTestParams = HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestVerifyAppendixC2(t *testing.T) {
	tests := []struct {
		name        string
		phc         string
		needsRehash bool // against DefaultHashParams
	}{
		{"argon2-cffi before 21.2", phcTestPre212, true},
		{"argon2-cffi 21.2 and later", phcTest212, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, p, err := verifyPassword(tt.phc, phcTestPassword)
			if err != nil || !ok {
				t.Fatalf("verifyPassword(correct) = %v, %v; want true, nil", ok, err)
			}
			if !bytes.Equal(p.Salt, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
				t.Errorf("salt = %x; want 000102…0f", p.Salt)
			}
			if got := p.NeedsRehash(DefaultHashParams()); got != tt.needsRehash {
				t.Errorf("NeedsRehash(DefaultHashParams()) = %v; want %v", got, tt.needsRehash)
			}
			ok, _, err = verifyPassword(tt.phc, phcTestPassword+"!")
			if err != nil || ok {
				t.Errorf("verifyPassword(wrong) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	phc, err := hashPassword(phcTestParams, "hunter2 hunter2", bytes.NewReader(make([]byte, 16)))
	if err != nil {
		t.Fatal(err)
	}
	const want = "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
	if !strings.HasPrefix(phc, want) {
		t.Errorf("hashPassword = %q; want prefix %q", phc, want)
	}
	ok, p, err := verifyPassword(phc, "hunter2 hunter2")
	if err != nil || !ok {
		t.Fatalf("verifyPassword(correct) = %v, %v; want true, nil", ok, err)
	}
	if p.NeedsRehash(phcTestParams) {
		t.Errorf("NeedsRehash(own params) = true; want false")
	}
	if ok, _, err := verifyPassword(phc, "hunter2 hunter3"); ok || err != nil {
		t.Errorf("verifyPassword(wrong) = %v, %v; want false, nil", ok, err)
	}

	// argon2i strings verify too.
	p.Variant = PHCArgon2i
	if ok, _, err := verifyPassword(p.String(), "hunter2 hunter2"); ok || err != nil {
		t.Errorf("argon2id key as argon2i: verifyPassword = %v, %v; want false, nil", ok, err)
	}
}

func TestHashPasswordErrors(t *testing.T) {
	tests := []struct {
		name   string
		params HashParams
		rand   []byte
		want   error
	}{
		{"t=0", HashParams{TimeCost: 0, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}, make([]byte, 16), ErrPHCOutOfBounds},
		{"m<8p", HashParams{TimeCost: 1, MemoryKiB: 8, Threads: 2, KeyLen: 32, SaltLen: 16}, make([]byte, 16), ErrPHCOutOfBounds},
		{"short salt", HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 4}, make([]byte, 16), ErrPHCOutOfBounds},
		{"huge key", HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 1 << 31, SaltLen: 16}, make([]byte, 16), ErrPHCOutOfBounds},
		{"rand fails", phcTestParams, make([]byte, 3), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phc, err := hashPassword(tt.params, "pw", bytes.NewReader(tt.rand))
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("hashPassword = %q, %v; want error %v", phc, err, tt.want)
			}
		})
	}
}

func TestParsePHCRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		canon string // String() of the parse; "" means in
		want  PHC    // only checked if Variant is set
	}{
		{name: "C.2 pre-21.2", in: phcTestPre212, want: PHC{
			Variant: PHCArgon2id, Version: 19, MemoryKiB: 102400, TimeCost: 2, Threads: 8,
			Salt: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
			Key:  []byte{0x77, 0xf5, 0x4e, 0xaa, 0x16, 0x53, 0x2b, 0x00, 0x8c, 0xfe, 0xe4, 0x3a, 0x7a, 0x9c, 0x73, 0x9f},
		}},
		{name: "C.2 21.2+", in: phcTest212},
		{name: "argon2i", in: "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A"},
		{name: "argon2d parses", in: "$argon2d$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A"},
		{name: "no v= is version 16", in: "$argon2i$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A",
			canon: "$argon2i$v=16$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A"},
		{name: "padded base64", in: "$argon2id$v=19$m=65536,t=3,p=4$AAECAwQFBgcICQoLDA0ODw==$d/VOqhZTKwCM/uQ6epxznw==",
			canon: "$argon2id$v=19$m=65536,t=3,p=4$AAECAwQFBgcICQoLDA0ODw$d/VOqhZTKwCM/uQ6epxznw"},
		{name: "limits", in: "$argon2id$v=19$m=262144,t=16,p=32$" + strings.Repeat("A", 86) + "$" + strings.Repeat("A", 170) + "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePHC(tt.in)
			if err != nil {
				t.Fatalf("ParsePHC(%q) error %v", tt.in, err)
			}
			if tt.want.Variant != "" && !reflect.DeepEqual(p, tt.want) {
				t.Errorf("ParsePHC(%q) = %+v; want %+v", tt.in, p, tt.want)
			}
			want := tt.canon
			if want == "" {
				want = tt.in
			}
			if got := p.String(); got != want {
				t.Errorf("String() = %q; want %q", got, want)
			}
			p2, err := ParsePHC(p.String())
			if err != nil || !reflect.DeepEqual(p, p2) {
				t.Errorf("ParsePHC(String()) = %+v, %v; want %+v, nil", p2, err, p)
			}
		})
	}
}

// TestVerifyRejects covers strings that cannot be verified: malformed, out of
// bounds, or well formed but not computable by x/crypto.
func TestVerifyRejects(t *testing.T) {
	const salt, key = "AAECAwQFBgcICQoLDA0ODw", "d/VOqhZTKwCM/uQ6epxznw"
	mk := func(variant, version, params string) string {
		s := "$" + variant
		if version != "" {
			s += "$" + version
		}
		return s + "$" + params + "$" + salt + "$" + key
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrPHCMalformed},
		{"garbage", "not a hash", ErrPHCMalformed},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", ErrPHCMalformed},
		{"no leading $", "argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key, ErrPHCMalformed},
		{"missing hash", "$argon2id$v=19$m=65536,t=3,p=4$" + salt, ErrPHCMalformed},
		{"empty hash", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$", ErrPHCOutOfBounds},
		{"trailing field", mk("argon2id", "v=19", "m=65536,t=3,p=4") + "$x", ErrPHCMalformed},
		{"unknown variant", mk("argon2x", "v=19", "m=65536,t=3,p=4"), ErrPHCMalformed},
		{"upper-case variant", mk("Argon2id", "v=19", "m=65536,t=3,p=4"), ErrPHCMalformed},
		{"bad version field", mk("argon2id", "x=19", "m=65536,t=3,p=4"), ErrPHCMalformed},
		{"unknown version", mk("argon2id", "v=20", "m=65536,t=3,p=4"), ErrPHCMalformed},
		{"huge version", mk("argon2id", "v=99999999999", "m=65536,t=3,p=4"), ErrPHCOutOfBounds},
		{"missing t", mk("argon2id", "v=19", "m=65536,p=4"), ErrPHCMalformed},
		{"params out of order", mk("argon2id", "v=19", "t=3,m=65536,p=4"), ErrPHCMalformed},
		{"extra param", mk("argon2id", "v=19", "m=65536,t=3,p=4,k=1"), ErrPHCMalformed},
		{"signed number", mk("argon2id", "v=19", "m=+65536,t=3,p=4"), ErrPHCMalformed},
		{"leading zero", mk("argon2id", "v=19", "m=065536,t=3,p=4"), ErrPHCMalformed},
		{"empty number", mk("argon2id", "v=19", "m=,t=3,p=4"), ErrPHCMalformed},
		{"m too big", mk("argon2id", "v=19", "m=262145,t=3,p=4"), ErrPHCOutOfBounds},
		{"m overflows", mk("argon2id", "v=19", "m=4294967296,t=3,p=4"), ErrPHCOutOfBounds},
		{"m below 8p", mk("argon2id", "v=19", "m=31,t=3,p=4"), ErrPHCOutOfBounds},
		{"t=0", mk("argon2id", "v=19", "m=65536,t=0,p=4"), ErrPHCOutOfBounds},
		{"t too big", mk("argon2id", "v=19", "m=65536,t=17,p=4"), ErrPHCOutOfBounds},
		{"p=0", mk("argon2id", "v=19", "m=65536,t=3,p=0"), ErrPHCOutOfBounds},
		{"p too big", mk("argon2id", "v=19", "m=65536,t=3,p=33"), ErrPHCOutOfBounds},
		{"p wraps uint8", mk("argon2id", "v=19", "m=65536,t=3,p=260"), ErrPHCOutOfBounds},
		{"url-safe base64", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$d_VOqhZTKwCM_uQ6epxznw", ErrPHCMalformed},
		{"bad base64", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$d/VOqhZT*wCM/uQ6epxznw", ErrPHCMalformed},
		{"non-zero trailing bits", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$d/VOqhZTKwCM/uQ6epxznx", ErrPHCMalformed},
		{"newline in base64", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$d/VOqhZTKwCM\n/uQ6epxznw", ErrPHCMalformed},
		{"salt too short", "$argon2id$v=19$m=65536,t=3,p=4$AAECAw$" + key, ErrPHCOutOfBounds},
		{"key too short", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$AAEC", ErrPHCOutOfBounds},
		{"too long", "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + strings.Repeat("A", 600), ErrPHCOutOfBounds},
		{"argon2d", mk("argon2d", "v=19", "m=65536,t=3,p=4"), ErrPHCUnsupported},
		{"version 16", mk("argon2id", "v=16", "m=65536,t=3,p=4"), ErrPHCUnsupported},
		{"no version is 16", mk("argon2id", "", "m=65536,t=3,p=4"), ErrPHCUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := verifyPassword(tt.in, phcTestPassword)
			if ok || !errors.Is(err, tt.want) {
				t.Errorf("verifyPassword(%q) = %v, %v; want false, %v", tt.in, ok, err, tt.want)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	cur := DefaultHashParams()
	base := PHC{Variant: PHCArgon2id, Version: 19, MemoryKiB: 65536, TimeCost: 3, Threads: 4,
		Salt: make([]byte, 16), Key: make([]byte, 32)}
	tests := []struct {
		name   string
		modify func(*PHC)
		want   bool
	}{
		{"same", func(*PHC) {}, false},
		{"argon2i", func(p *PHC) { p.Variant = PHCArgon2i }, true},
		{"version 16", func(p *PHC) { p.Version = 16 }, true},
		{"m", func(p *PHC) { p.MemoryKiB = 102400 }, true},
		{"t", func(p *PHC) { p.TimeCost = 2 }, true},
		{"p", func(p *PHC) { p.Threads = 8 }, true},
		{"key length", func(p *PHC) { p.Key = make([]byte, 16) }, true},
		{"salt length", func(p *PHC) { p.Salt = make([]byte, 8) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.modify(&p)
			if got := p.NeedsRehash(cur); got != tt.want {
				t.Errorf("NeedsRehash = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestTruncatePassword(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"short", "abc", "abc"},
		{"256 ascii", strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{"257 ascii", strings.Repeat("a", 257), strings.Repeat("a", 256)},
		{"256 runes, 768 bytes", strings.Repeat("€", 256), strings.Repeat("€", 256)},
		{"300 runes", strings.Repeat("€", 300), strings.Repeat("€", 256)},
		{"mixed", strings.Repeat("a", 255) + "€€€", strings.Repeat("a", 255) + "€"},
		{"invalid bytes count one each", strings.Repeat("\xff", 300), strings.Repeat("\xff", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TruncatePassword(tt.in); got != tt.want {
				t.Errorf("TruncatePassword(%d bytes) = %d bytes; want %d", len(tt.in), len(got), len(tt.want))
			}
		})
	}
}

// TestVerifyTruncates: a 300-character password verifies against the hash of
// its first 256 characters, and vice versa.
func TestVerifyTruncates(t *testing.T) {
	long := strings.Repeat("ä", 250) + strings.Repeat("😀", 50) // 300 runes
	first256 := strings.Repeat("ä", 250) + strings.Repeat("😀", 6)
	for _, tc := range []struct{ hashed, tried string }{{first256, long}, {long, first256}} {
		phc, err := hashPassword(phcTestParams, tc.hashed, bytes.NewReader(make([]byte, 16)))
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := verifyPassword(phc, tc.tried); !ok || err != nil {
			t.Errorf("verifyPassword = %v, %v; want true, nil", ok, err)
		}
	}
	phc, _ := hashPassword(phcTestParams, long, bytes.NewReader(make([]byte, 16)))
	if ok, _, _ := verifyPassword(phc, first256[:len(first256)-4]); ok {
		t.Errorf("255 characters verified against the hash of 256; want false")
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add(phcTestPre212)
	f.Add(phcTest212)
	f.Add("$argon2i$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A")
	f.Add("$argon2d$v=16$m=8,t=1,p=1$AAECAwQFBgcICQoLDA0ODw==$AAECAw==")
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePHC(s)
		if err != nil {
			return
		}
		if err := p.checkBounds(); err != nil {
			t.Fatalf("ParsePHC(%q) accepted out-of-bounds %+v: %v", s, p, err)
		}
		p2, err := ParsePHC(p.String())
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("ParsePHC(%q).String() = %q re-parses to %+v, %v; want %+v", s, p.String(), p2, err, p)
		}
	})
}
