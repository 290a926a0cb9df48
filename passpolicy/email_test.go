package passpolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateEmail(t *testing.T) {
	builtin := BuiltinDisposable()
	tests := []struct {
		name       string
		email      string
		disposable *DomainSet
		wantDetail string // "" means valid; else a substring of the error
	}{
		{"plain", "jane@example.org", builtin, ""},
		{"tags and case", "Jane.Doe+tag@Example.ORG", builtin, ""},
		{"no dot in domain", "jane@localhost", builtin, ""},
		{"typographic apostrophe", "o\u2019brien@example.org", builtin, ""},
		{"symbols", "a!#$%&*+/=?^_`{|}~-@example.org", builtin, ""},
		{"63-char label", "jane@" + strings.Repeat("a", 63) + ".org", builtin, ""},
		{"subdomain of disposable", "jane@eu.mailinator.com", builtin, ""},
		{"nil set skips disposable", "jane@mailinator.com", nil, ""},

		{"no at", "jane.example.org", builtin, "exactly one '@'"},
		{"two ats", "jane@doe@example.org", builtin, "exactly one '@'"},
		{"ASCII apostrophe", "o'brien@example.org", builtin, "HTML5"},
		{"empty local", "@example.org", builtin, "HTML5"},
		{"space", "jane doe@example.org", builtin, "HTML5"},
		{"non-ASCII local", "josé@example.org", builtin, "HTML5"},
		{"empty domain", "jane@", builtin, "host name"},
		{"leading hyphen", "jane@-example.org", builtin, "host name"},
		{"trailing hyphen label", "jane@example-.org", builtin, "host name"},
		{"double dot", "jane@example..org", builtin, "host name"},
		{"trailing dot", "jane@example.org.", builtin, "host name"},
		{"underscore", "jane@exa_mple.org", builtin, "host name"},
		{"256-char label", "j@" + strings.Repeat("a", 256), builtin, "host name"},
		{"reserved admin", "admin@example.org", builtin, "reserved"},
		{"reserved dotted", "robots.txt@example.org", builtin, "reserved"},
		{"reserved www", "www@example.org", builtin, "reserved"},
		{"reserved capitalised", "Admin@example.org", builtin, "reserved"},
		{"reserved upper case", "ROOT@Example.org", builtin, "reserved"},
		{"reserved mixed case dotted", "Robots.TXT@example.org", builtin, "reserved"},
		{"reserved fullwidth", "\uff41\uff44\uff4d\uff49\uff4e@example.org", builtin, "reserved"},
		{"reserved Kelvin sign", "\u212Aeybase.txt@example.org", builtin, "reserved"},
		{"reserved long s", "\u017Fupport@example.org", builtin, "reserved"},
		{"not reserved: longer", "Admins@example.org", builtin, ""},
		{"disposable", "jane@mailinator.com", builtin, "disposable"},
		{"disposable upper case", "jane@MAILINATOR.COM", builtin, "disposable"},
		{"homoglyph local", "\u0440\u0430ypal@example.com", builtin, "local part mixes"},
		{"homoglyph domain", "jane@\u0440\u0430ypal.com", builtin, "domain mixes"},
		{"CR", "jane@example.org\r", builtin, "control"},
		{"LF", "jane@example.org\nBcc: x@y", builtin, "control"},
		{"NUL", "ja\x00ne@example.org", builtin, "control"},
		{"too long", strings.Repeat("a", 270) + "@example.org", builtin, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateEmail(tt.email, tt.disposable)
			if tt.wantDetail == "" {
				if err != nil {
					t.Errorf("ValidateEmail(%q) = %v; want nil", tt.email, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidEmail) || !strings.Contains(err.Error(), tt.wantDetail) {
				t.Errorf("ValidateEmail(%q) = %v; want ErrInvalidEmail with %q", tt.email, err, tt.wantDetail)
			}
		})
	}
}

func TestReservedLocalParts(t *testing.T) {
	if got, want := len(reservedLocalParts), 101; got != want {
		t.Errorf("len(reservedLocalParts) = %d; want %d", got, want)
	}
	for _, n := range []string{".htaccess", "abuse", "clientaccesspolicy.xml", "contact-us", "mailer-daemon", "no-reply", "pop3", "root", "wpad", "www"} {
		if !IsReservedLocalPart(n) {
			t.Errorf("IsReservedLocalPart(%q) = false; want true", n)
		}
		if err := ValidateEmail(n+"@example.org", nil); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("ValidateEmail(%q) = %v; want ErrInvalidEmail", n+"@example.org", err)
		}
	}
	for _, n := range []string{"Root", "ROOT", "jane", "admins", ""} {
		if IsReservedLocalPart(n) {
			t.Errorf("IsReservedLocalPart(%q) = true; want false", n)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Jane@X.ORG", "jane@x.org"},
		{"jane@x.org", "jane@x.org"},
		{"ｊａｎｅ＠ｘ．ｏｒｇ", "jane@x.org"},      // fullwidth, NFKC
		{"Straße@X.org", "strasse@x.org"}, // full case folding
		{"ΣΟΦΊΑ@x.gr", "σοφία@x.gr"},
		{"", ""},
		{" Jane@X.org\t", "jane@x.org"},          // padded input finds its account
		{"\u3000ＪＡＮＥ＠Ｘ．ＯＲＧ\u3000", "jane@x.org"}, // ideographic spaces are spaces after NFKC
		{"𝐣𝐚𝐧𝐞@𝐱.𝐨𝐫𝐠", "jane@x.org"},             // mathematical bold, NFKC
	}
	for _, tt := range tests {
		if got := NormalizeEmail(tt.in); got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsMixedScriptConfusable(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"paypal", false},
		{"\u0440\u0430ypal", true},                // Cyrillic р, а + Latin
		{"\u0440\u0430\u0443\u0440\u0430l", true}, // all Cyrillic but the l
		{"пример", false},
		{"αβγ", false},
		{"αb", true},
		{"jane-doe.99_x", false},
		{"e\u0301", false}, // Inherited combining mark
		{"日本語", false},
		{"日本語abc", true},   // Latin with Han
		{"日本語ひらがな", false}, // Han with Hiragana: no confusable script
		{"", false},
	}
	for _, tt := range tests {
		if got := IsMixedScriptConfusable(tt.s); got != tt.want {
			t.Errorf("IsMixedScriptConfusable(%q) = %v; want %v", tt.s, got, tt.want)
		}
	}
}

func TestDomainSet(t *testing.T) {
	b := BuiltinDisposable()
	if b.Len() < 30 {
		t.Errorf("BuiltinDisposable().Len() = %d; want ≥ 30", b.Len())
	}
	for _, d := range []string{"mailinator.com", "guerrillamail.com", "10minutemail.com", "trashmail.com", "yopmail.com", "temp-mail.org", "YOPMAIL.COM"} {
		if !b.Contains(d) {
			t.Errorf("BuiltinDisposable().Contains(%q) = false; want true", d)
		}
	}
	if b != BuiltinDisposable() {
		t.Errorf("BuiltinDisposable() returned a new set; want the shared one")
	}

	loaded, err := LoadDomainSet(strings.NewReader("# list\n\nSpam.Example\r\n  junk.example.  # trailing dot\nmailinator.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loaded.Len(), 3; got != want {
		t.Errorf("loaded.Len() = %d; want %d", got, want)
	}
	merged := b.Merge(loaded, nil)
	tests := []struct {
		set  *DomainSet
		d    string
		want bool
	}{
		{loaded, "spam.example", true},
		{loaded, "junk.example", true},
		{loaded, "yopmail.com", false},
		{merged, "spam.example", true},
		{merged, "yopmail.com", true},
		{b, "spam.example", false}, // Merge does not modify its receiver
		{nil, "yopmail.com", false},
	}
	for _, tt := range tests {
		if got := tt.set.Contains(tt.d); got != tt.want {
			t.Errorf("Contains(%q) = %v; want %v", tt.d, got, tt.want)
		}
	}
	if got, want := merged.Len(), b.Len()+2; got != want {
		t.Errorf("merged.Len() = %d; want %d (mailinator.com is in both)", got, want)
	}
	var nilSet *DomainSet
	if got := nilSet.Merge(loaded).Len(); got != 3 {
		t.Errorf("nil.Merge(loaded).Len() = %d; want 3", got)
	}

	for _, bad := range []string{"two words.example\n", strings.Repeat("a", maxDomainLine+1)} {
		if _, err := LoadDomainSet(strings.NewReader(bad)); !errors.Is(err, ErrInvalidList) {
			t.Errorf("LoadDomainSet(%.20q) error = %v; want ErrInvalidList", bad, err)
		}
	}
}

func FuzzValidateEmail(f *testing.F) {
	f.Add("jane@example.org")
	f.Add("Jane.Doe+tag@Example.ORG")
	f.Add("\u0440\u0430ypal@example.com")
	f.Add("admin@example.org")
	f.Add("a@b@c")
	f.Add("o\u2019brien@mailinator.com")
	set := BuiltinDisposable()
	f.Fuzz(func(t *testing.T, email string) {
		norm := NormalizeEmail(email) // must not panic on anything
		err := ValidateEmail(email, set)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("ValidateEmail(%q) error %v does not wrap ErrInvalidEmail", email, err)
			}
			return
		}
		if len(email) > MaxEmailBytes || strings.Count(email, "@") != 1 || strings.ContainsAny(email, "\r\n\x00 '") {
			t.Fatalf("ValidateEmail accepted %q", email)
		}
		// An accepted address is ASCII but for U+2019, so normalising it only
		// lower-cases it.
		if norm != strings.ToLower(email) {
			t.Fatalf("NormalizeEmail(%q) = %q; want %q", email, norm, strings.ToLower(email))
		}
	})
}

func FuzzLoadDomainSet(f *testing.F) {
	f.Add("# c\nmailinator.com\r\nX.ORG.\n")
	f.Add("a b\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := LoadDomainSet(strings.NewReader(in))
		if err != nil {
			return
		}
		for d := range s.set {
			if d == "" || strings.ContainsAny(d, "# \t\r\n") {
				t.Fatalf("LoadDomainSet(%q) kept entry %q", in, d)
			}
		}
	})
}
