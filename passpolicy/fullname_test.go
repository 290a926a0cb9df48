package passpolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeFullName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Jane Doe", "Jane Doe"},
		{"runs collapsed and trimmed", "  Jane\t\t Doe \r\n", "Jane Doe"},
		{"controls and DEL collapse", "Jane\x00\x01\x7fDoe", "Jane Doe"},
		{"escaped", `<b>Tom & "Jerry's"</b>`, "&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt;"},
		{"NFKC fullwidth", "Ｊａｎｅ　Ｄｏｅ", "Jane Doe"}, // U+3000 becomes a space
		{"NFKC ligature", "ﬁona", "fiona"},
		{"NBSP becomes space", "Jane\u00a0\u00a0Doe", "Jane Doe"},
		{"no case folding", "JANE doe", "JANE doe"},
		{"composed", "Jose\u0301", "José"},
		{"em space becomes space", "Jane\u2003Doe", "Jane Doe"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormalizeFullName(tt.in); got != tt.want {
				t.Errorf("NormalizeFullName(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckFullName(t *testing.T) {
	tests := []struct {
		name string
		in   string // as typed; the test normalises it first
		ok   bool
	}{
		{"plain", "Jane Doe", true},
		{"initial dot name", "J.Doe", true},
		{"one char before TLD", "J.Do", true},
		{"title", "Mr. Smith", true},
		{"middle initial", "Jane Q. Public", true},
		{"saint", "St.John", true},
		{"initials", "Dr. J. R. R. Tolkien", true},
		{"apostrophe", "Mary-Jane O'Neil", true},
		{"accents", "José Müller", true},
		{"han", "李小龙", true},
		{"unlisted TLD", "a.b.local", true},
		{"ampersand", "Tom & Jerry", true},
		{"empty", "", true},
		{"domain", "buy cheap.com now", false},
		{"domain upper case", "BUY CHEAP.COM", false},
		{"two-label suffix", "visit example.co.uk", false},
		{"email", "jane@example.com", false},
		{"private suffix", "see foo.blogspot.com", false},
		{"in brackets", "(example.com)", false},
		{"trailing dot", "example.com.", false},
		{"path", "bit.ly/abc", false},
		{"IDN", "пример.рф", false},
		{"punycode", "xn--e1afmkfd.xn--p1ai", false},
		{"two chars then TLD", "Jo.Do", false},
		{"http", "Jane http", false},
		{"HTTPS", "HTTPS jane", false},
		{"scheme separator", "ftp://x", false},
		{"fullwidth domain", "ｃｈｅａｐ．ｃｏｍ", false}, // NFKC first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := NormalizeFullName(tt.in)
			err := CheckFullName(n)
			if tt.ok && err != nil {
				t.Errorf("CheckFullName(%q) = %v; want nil", n, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidFullName) {
				t.Errorf("CheckFullName(%q) = %v; want ErrInvalidFullName", n, err)
			}
		})
	}
}

// TestCheckFullNameRaw covers inputs that NormalizeFullName would have
// cleaned, in case a caller checks a raw name.
func TestCheckFullNameRaw(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"LF", "Jane\nDoe"},
		{"CR", "Jane\rDoe"},
		{"NUL", "Jane\x00"},
		{"C1 control", "Jane\u0085Doe"},
		{"bidi override", "Jane\u202eeoD"},
		{"bidi isolate", "\u2066Jane"},
		{"invalid UTF-8", "Jane\xff"},
		{"too long", strings.Repeat("a", MaxFullNameBytes+1)},
		{"too long after escaping", NormalizeFullName(strings.Repeat("'", 60))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckFullName(tt.in); !errors.Is(err, ErrInvalidFullName) {
				t.Errorf("CheckFullName(%q) = %v; want ErrInvalidFullName", tt.in, err)
			}
		})
	}
	if err := CheckFullName(strings.Repeat("a", MaxFullNameBytes)); err != nil {
		t.Errorf("CheckFullName(%d bytes) = %v; want nil", MaxFullNameBytes, err)
	}
}

func FuzzCheckFullName(f *testing.F) {
	f.Add("Jane Q. Public")
	f.Add("buy cheap.com now")
	f.Add("пример.рф")
	f.Add("\u202e\x00http")
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeFullName(s)
		if CheckFullName(n) != nil {
			return
		}
		if len(n) > MaxFullNameBytes {
			t.Fatalf("accepted %d-byte name %q", len(n), n)
		}
		if strings.ContainsAny(n, "\r\n\x00<>\"'") {
			t.Fatalf("accepted name %q with a raw control or HTML character", n)
		}
		if strings.Contains(strings.ToLower(n), "http") {
			t.Fatalf("accepted name %q containing http", n)
		}
	})
}
