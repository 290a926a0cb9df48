package passpolicy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxFullNameBytes bounds a full name after [NormalizeFullName]. HTML
// escaping can grow a name up to six-fold ('"' becomes "&quot;"), so the
// bound applies to the stored form, which is what has to fit.
const MaxFullNameBytes = 280

// htmlEscaper escapes the five characters of Python's html.escape(s,
// quote=True), with the same entities. html.EscapeString would write
// "&#34;" for '"', and frontends show the stored form.
var htmlEscaper = strings.NewReplacer(
	"&", "&amp;",
	"<", "&lt;",
	">", "&gt;",
	`"`, "&quot;",
	"'", "&#39;",
)

// NormalizeFullName returns the stored form of a full name, as the reference
// makes it at sign-up: NFKC (no case folding), then HTML-escaped
// ("& < > \" '" as "&amp; &lt; &gt; &quot; &#39;"), then each run of ASCII
// control and space characters (U+0000–U+0020 and U+007F) collapsed to one
// space, then trimmed of spaces.
//
// NB: the escaping happens at storage time, as in the reference (a weakness:
// escaping belongs to output). Frontends expect the escaped form, so the name
// must not be escaped again on output by code that reads it back from
// storage; and NormalizeFullName is not idempotent on names containing "&".
func NormalizeFullName(s string) string {
	s = htmlEscaper.Replace(norm.NFKC.String(s))
	var sb strings.Builder
	sb.Grow(len(s))
	inRun := false
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			if !inRun {
				sb.WriteByte(' ')
				inRun = true
			}
			continue
		}
		inRun = false
		sb.WriteRune(r)
	}
	return strings.Trim(sb.String(), " ")
}

// CheckFullName applies the reference's full-name spam checks, fixed so that
// names with dots pass (docs/protocol.md, "Users, emails and passwords"), to
// name, normally the output of [NormalizeFullName]. It returns nil or an
// error wrapping [ErrInvalidFullName]. name is refused if:
//
//  1. it is longer than [MaxFullNameBytes] bytes or is not valid UTF-8;
//  2. it has a control character (general category Cc: CR, LF, NUL,
//     U+0080–U+009F, ...) or a bidirectional embedding, override or isolate
//     (U+202A–U+202E, U+2066–U+2069), which can make a name display as
//     something else;
//  3. its case-folded form contains "http" or "://", as in the reference;
//  4. it contains a domain-like token (see below).
//
// # Domain-like tokens
//
// The reference refused any name containing "." followed by a public
// suffix as a plain substring, so "J.Doe" (".do") was refused. Instead:
// split the case-folded name into tokens, each a maximal run of letters,
// digits, "-" and "."; trim dots and hyphens from the ends of each token;
// a token with a dot inside is domain-like if
//
//   - its public suffix, per golang.org/x/net/publicsuffix (the Public
//     Suffix List, embedded: no network at start-up) applied to the
//     token's IDNA ASCII form, is a listed one: an ICANN suffix, or a
//     private one with a dot (the package answers the last label for
//     unlisted names, which is not a listed suffix), and
//   - at least two characters precede the "." before that suffix.
//
// So "buy cheap.com now", "visit example.co.uk", "jane@example.com" and
// "пример.рф" are refused, while "J.Doe", "J.Do" (one character before ".do"),
// "Mr. Smith", "Jane Q. Public" and "St.John" pass. A name like "Jo.Do"
// (two letters, then a real top-level domain) is still refused: the rule
// cannot tell it from a host name.
//
// CheckFullName is pure and safe for concurrent use.
func CheckFullName(name string) error {
	if len(name) > MaxFullNameBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidFullName, MaxFullNameBytes)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidFullName)
	}
	if i := strings.IndexFunc(name, isControlOrBidi); i >= 0 {
		return fmt.Errorf("%w: control character at byte %d", ErrInvalidFullName, i)
	}
	folded := cases.Fold().String(name)
	if strings.Contains(folded, "http") || strings.Contains(folded, "://") {
		return fmt.Errorf("%w: contains an HTTP link", ErrInvalidFullName)
	}
	for _, tok := range strings.FieldsFunc(folded, func(r rune) bool { return !isHostRune(r) }) {
		if isDomainLike(tok) {
			return fmt.Errorf("%w: contains a domain name", ErrInvalidFullName)
		}
	}
	return nil
}

// isHostRune reports whether r can be part of a host name as people type
// one: letters and digits of any script (internationalised domains), "-"
// and ".".
func isHostRune(r rune) bool {
	return r == '.' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// isDomainLike applies the domain-like token rule of [CheckFullName] to one
// case-folded token.
func isDomainLike(tok string) bool {
	tok = strings.Trim(tok, ".-")
	if !strings.Contains(tok, ".") {
		return false
	}
	// The embedded list spells internationalised suffixes in Punycode
	// ("xn--p1ai" for "рф"), so look up the ASCII form of the token.
	ascii, err := idna.ToASCII(tok)
	if err != nil {
		ascii = tok
	}
	suffix, icann := publicsuffix.PublicSuffix(ascii)
	if !icann && !strings.Contains(suffix, ".") {
		return false // unlisted top-level label: the package's default rule
	}
	// Count the characters before the suffix in the token as typed, so a
	// one-letter Cyrillic label is one character, not its Punycode form.
	labels := strings.Split(tok, ".")
	if al := strings.Split(ascii, "."); len(al) != len(labels) {
		labels = al
	}
	k := strings.Count(suffix, ".") + 1
	if k >= len(labels) {
		return false // the whole token is a suffix, such as "co.uk"
	}
	before := strings.Trim(strings.Join(labels[:len(labels)-k], "."), ".")
	return utf8.RuneCountInString(before) >= 2
}

// isControlOrBidi reports whether r is a control character (Cc) or a
// bidirectional embedding, override or isolate.
func isControlOrBidi(r rune) bool {
	return unicode.IsControl(r) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// isSpaceOrControl reports whether r is white space or a control character.
func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}
