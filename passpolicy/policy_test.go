package passpolicy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/trustelem/zxcvbn/frequency"
)

// Short names for the messages, in check order.
var (
	m1 = "Your password is too short. It must have at least 12 characters."
	m2 = msgCommon
	m3 = msgSimilar
	m4 = msgFrequency
	m5 = msgAllDigits
)

func TestMessagesExact(t *testing.T) {
	// The texts frontends match on, spelled out again rather than taken from
	// the constants, so that an "improvement" to a constant fails here.
	tests := []struct{ got, want string }{
		{m1, "Your password is too short. It must have at least 12 characters."},
		{m2, "Your password is on the list of the most common passwords and is vulnerable to guessing."},
		{m3, "Your password is too similar to either the domain name of this server or your own name or email address."},
		{m4, "Your password is not complex enough. One or more characters appear appear too frequently."},
		{m5, "Your password cannot be all numbers."},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("message %d = %q; want %q", i+1, tt.got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	const (
		email = "jane.public@example.net"
		name  = "Jane Q. Public"
		fqdn  = "auth.example.org"
	)
	extra, err := LoadCommonList(strings.NewReader("aaaa\nCorrectHorse\n"))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultPolicy()
	withExtra := def
	withExtra.Extra = extra

	type tc = struct {
		name     string
		policy   Policy
		password string
		email    string
		fullName string
		fqdn     string
		want     []string
	}
	cases := []tc{
		{"random passes", def, "atyse6m3bsblq9", email, name, fqdn, nil},
		{"long random passes", def, "Tr0ub4dor&3-horse-Battery-st4ple-9x", email, name, fqdn, nil},
		// With the reference's SecLists list "aaaa" fails checks 1, 2 and 4;
		// zxcvbn's list lacks it (see Check's doc), an Extra list restores it.
		{"aaaa builtin", def, "aaaa", email, name, fqdn, []string{m1, m4}},
		{"aaaa with extra", withExtra, "aaaa", email, name, fqdn, []string{m1, m2, m4}},
		{"extra folded both sides", withExtra, "CORRECThorse", email, name, fqdn, []string{m2}},
		{"common", def, "qwerty123456", email, name, fqdn, []string{m2}},
		{"common case-folded", def, "QwErTy123456", email, name, fqdn, []string{m2}},
		{"common and short", def, "password", email, name, fqdn, []string{m1, m2}},
		{"common and all digits", def, "112233445566", email, name, fqdn, []string{m2, m5}},
		{"similar to email", def, "testuser", "testuser@test.org", name, fqdn, []string{m1, m3}},
		{"similar to name", def, "TestUser123", email, "Test User", fqdn, []string{m1, m3}},
		{"similar to fqdn", def, "auth.example.org!", email, name, fqdn, []string{m3}},
		{"similarity case-folds the target", def, "JANEPUBLIC1987", "x@y.z", "Jane Public", fqdn, []string{m3}},
		{"all digits", def, "8392017465039", email, name, fqdn, []string{m5}},
		{"all unicode digits", def, "①②③④⑤⑥⑦⑧⑨¹²³", email, name, fqdn, []string{m5}},
		{"fullwidth digits", def, "８３９２０１７４６５０３９", email, name, fqdn, []string{m5}},
		{"one letter is not all digits", def, "839201746503x", email, name, fqdn, nil},
		{"frequency 4 of 12", def, "xaxbxcxdefgh", email, name, fqdn, []string{m4}},
		{"frequency exactly 0.3 passes", def, "aaabcdefgh", email, name, fqdn, []string{m1}}, // 3/10 is not > 0.3
		{"frequency is case-sensitive", def, "aAaAbcdefghijk", email, name, fqdn, nil},
		{"whitespace runs count once", def, "abc \t\n  defghijk", email, name, fqdn, nil},
		{"whitespace runs make it short", def, "abc  defghij", email, name, fqdn, []string{m1}},
		{"trimmed ends do not count", def, "   abcdefghijk   ", email, name, fqdn, []string{m1, m4}},
		{"code points not bytes", def, "éèêëēėęàáâäæ", email, name, fqdn, nil},
		{"empty", def, "", email, name, fqdn, []string{m1}},
		{"empty everything", def, "", "", "", "", []string{m1, m3}},
		{"min length named", Policy{MinLength: 20}, "atyse6m3bsblq9", email, name, fqdn,
			[]string{"Your password is too short. It must have at least 20 characters."}},
		{"zero policy is default", Policy{}, "aaaa", email, name, fqdn, []string{m1, m4}},
		{"similarity disabled", Policy{MaxSimilarity: 101}, "testuser1234", "testuser@test.org", name, fqdn, nil},
		{"frequency disabled", Policy{MaxCharFrequency: 1}, "xaxbxcxdefgh", email, name, fqdn, nil},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			ok, got := tt.policy.Check(tt.password, tt.email, tt.fullName, tt.fqdn)
			if got == nil {
				t.Fatalf("Check(%q) messages = nil; want non-nil", tt.password)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Check(%q) messages = %q; want %q", tt.password, got, tt.want)
			}
			if ok != (len(tt.want) == 0) {
				t.Errorf("Check(%q) ok = %v; want %v", tt.password, ok, len(tt.want) == 0)
			}
		})
	}
}

// TestBuiltinCommonRank pins the cut at zxcvbn's rank 10,000.
func TestBuiltinCommonRank(t *testing.T) {
	list := frequency.FrequencyLists["passwords"]
	if len(list) <= builtinCommonRank {
		t.Fatalf("zxcvbn passwords list has %d entries; want more than %d", len(list), builtinCommonRank)
	}
	tests := []struct {
		name string
		pw   string
		want bool
	}{
		{"rank 1", list[0], true},
		{"rank 10000", list[builtinCommonRank-1], true},
		{"rank 10001", list[builtinCommonRank], false},
		{"not listed", "atyse6m3bsblq9", false},
	}
	for _, tt := range tests {
		if got := isBuiltinCommon(tt.pw); got != tt.want {
			t.Errorf("%s: isBuiltinCommon(%q) = %v; want %v", tt.name, tt.pw, got, tt.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Policy
		wantErr bool
	}{
		{"default", "min_pass_length:12; max_unsafe_similarity:50; max_char_frequency:0.3; min_pwned_matches:25", DefaultPolicy(), false},
		{"names ignored", "a:16;b:40;c:0.25;d:0", Policy{MinLength: 16, MaxSimilarity: 40, MaxCharFrequency: 0.25}, false},
		{"spaces removed", " x : 1 6 ; y:\t33 ;z: .5;w:1", Policy{MinLength: 16, MaxSimilarity: 33, MaxCharFrequency: 0.5}, false},
		{"no name", ":12;:50;:0.3;:25", DefaultPolicy(), false},
		{"frequency 1", "a:12;b:50;c:1;d:25", Policy{MinLength: 12, MaxSimilarity: 50, MaxCharFrequency: 1}, false},
		{"empty", "", Policy{}, true},
		{"three parts", "a:12;b:50;c:0.3", Policy{}, true},
		{"five parts", "a:12;b:50;c:0.3;d:25;", Policy{}, true},
		{"no colon", "a12;b:50;c:0.3;d:25", Policy{}, true},
		{"value after first colon only", "a:b:12;b:50;c:0.3;d:25", Policy{}, true},
		{"float length", "a:12.5;b:50;c:0.3;d:25", Policy{}, true},
		{"zero length", "a:0;b:50;c:0.3;d:25", Policy{}, true},
		{"negative similarity", "a:12;b:-1;c:0.3;d:25", Policy{}, true},
		{"zero frequency", "a:12;b:50;c:0;d:25", Policy{}, true},
		{"frequency above 1", "a:12;b:50;c:1.5;d:25", Policy{}, true},
		{"nan frequency", "a:12;b:50;c:NaN;d:25", Policy{}, true},
		{"bad pwned", "a:12;b:50;c:0.3;d:many", Policy{}, true},
		{"negative pwned", "a:12;b:50;c:0.3;d:-1", Policy{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidPolicy) {
					t.Errorf("ParsePolicy(%q) error = %v; want ErrInvalidPolicy", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy(%q) error = %v; want nil", tt.in, err)
			}
			if got.MinLength != tt.want.MinLength || got.MaxSimilarity != tt.want.MaxSimilarity || got.MaxCharFrequency != tt.want.MaxCharFrequency {
				t.Errorf("ParsePolicy(%q) = %+v; want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestLoadCommonList(t *testing.T) {
	l, err := LoadCommonList(strings.NewReader("PassWord\r\n\n #hash\nlast"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"PASSWORD", true},
		{" #hash", true}, // no trimming, no comments
		{"#hash", false},
		{"last", true}, // no final newline
		{"", false},
	}
	for _, tt := range tests {
		if got := l.Contains(tt.pw); got != tt.want {
			t.Errorf("Contains(%q) = %v; want %v", tt.pw, got, tt.want)
		}
	}
	if got, want := l.Len(), 3; got != want {
		t.Errorf("Len() = %d; want %d", got, want)
	}
	var zero CommonList
	if zero.Contains("password") || zero.Len() != 0 {
		t.Errorf("zero CommonList not empty")
	}
	_, err = LoadCommonList(strings.NewReader("ok\n" + strings.Repeat("x", maxCommonLine+1) + "\n"))
	if !errors.Is(err, ErrInvalidList) {
		t.Errorf("LoadCommonList(long line) error = %v; want ErrInvalidList", err)
	}
}

func TestAllDigits(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"0123456789", true},
		{"٠١٢٣", true}, // Arabic-Indic, Nd
		{"²³¹", true},  // Numeric_Type=Digit
		{"①⑨", true},
		{"½", false}, // Numeric, not Digit: Python's isdigit is False
		{"Ⅻ", false}, // letter number
		{"12a", false},
		{"12 3", false},
	}
	for _, tt := range tests {
		if got := allDigits(tt.s); got != tt.want {
			t.Errorf("allDigits(%q) = %v; want %v", tt.s, got, tt.want)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("min_pass_length:12; max_unsafe_similarity:50; max_char_frequency:0.3; min_pwned_matches:25")
	f.Add("a:1;b:1;c:1;d:0")
	f.Add(";;;")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("ParsePolicy(%q) error %v does not wrap ErrInvalidPolicy", s, err)
			}
			return
		}
		if p.MinLength < 1 || p.MaxSimilarity < 1 || !(p.MaxCharFrequency > 0 && p.MaxCharFrequency <= 1) {
			t.Fatalf("ParsePolicy(%q) = %+v; want every field in range", s, p)
		}
	})
}

func FuzzCheckPolicy(f *testing.F) {
	f.Add("aaaa", "jane@example.org", "Jane Doe", "auth.example.org")
	f.Add("", "", "", "")
	f.Add("①②③④⑤⑥⑦⑧⑨¹²³", "x@y", "\x00", "\xff")
	f.Add("qwerty123456", "testuser@test.org", "Test User", "localhost")
	order := []string{m1, m2, m3, m4, m5}
	f.Fuzz(func(t *testing.T, password, email, name, fqdn string) {
		if len(password)+len(email)+len(name)+len(fqdn) > 4096 {
			return // Ratio is quadratic; callers bound their inputs
		}
		ok, msgs := DefaultPolicy().Check(password, email, name, fqdn)
		if ok != (len(msgs) == 0) {
			t.Fatalf("Check(%q) ok = %v with %d messages", password, ok, len(msgs))
		}
		// Messages are known, distinct and in check order. The length
		// message varies with MinLength, so match it by prefix.
		last := -1
		for _, m := range msgs {
			i := slices.Index(order, m)
			if strings.HasPrefix(m, "Your password is too short.") {
				i = 0
			}
			if i <= last {
				t.Fatalf("Check(%q) messages %q: unknown or out of order %q", password, msgs, m)
			}
			last = i
		}
	})
}
