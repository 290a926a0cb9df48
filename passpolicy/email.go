package passpolicy

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxEmailBytes bounds an email address. RFC 5321 allows 254 octets in a
// path; the extra room keeps odd but deliverable addresses while refusing
// the megabyte "addresses" that only serve to make later checks slow.
const MaxEmailBytes = 280

// reservedLocalParts are the 101 local parts a sign-up may not use (the
// reference's list, from django-registration's DEFAULT_RESERVED_NAMES).
// [ValidateEmail] matches them against the normalised local part, so
// "Admin@x" and "ADMIN@x" are refused too: they are stored as "admin@x" (the
// reference matched the address as typed and accepted them).
var reservedLocalParts = func() map[string]struct{} {
	names := []string{
		".htaccess", ".htpasswd", "abuse", "account", "accounts", "admin",
		"administrator", "auth", "authorize", "autoconfig", "autodiscover", "blog",
		"broadcasthost", "buy", "cart", "clientaccesspolicy.xml", "clients",
		"contact", "contact-us", "contactus", "copyright", "crossdomain.xml",
		"dashboard", "doc", "docs", "download", "downloads", "enquiry", "faq",
		"favicon.ico", "ftp", "help", "hostmaster", "humans.txt", "imap", "info",
		"inquiry", "is", "isatap", "it", "keybase.txt", "license", "localdomain",
		"localhost", "login", "logout", "mail", "mailer-daemon", "marketing", "me",
		"mis", "myaccount", "news", "no-reply", "nobody", "noc", "noreply", "oauth",
		"pay", "payment", "payments", "plans", "pop", "pop3", "portfolio",
		"postmaster", "preferences", "pricing", "privacy", "profile", "register",
		"robots.txt", "root", "sales", "secure", "security", "settings", "signin",
		"signup", "smtp", "ssl", "ssladmin", "ssladministrator", "sslwebmaster",
		"status", "store", "subscribe", "support", "sysadmin", "terms", "tos",
		"usenet", "user", "users", "uucp", "weblog", "webmail", "webmaster",
		"work", "wpad", "www",
	}
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}()

// IsReservedLocalPart reports whether local is one of the 101 reserved local
// parts (exact, case-sensitive: normalise first, as [ValidateEmail] does).
func IsReservedLocalPart(local string) bool {
	_, ok := reservedLocalParts[local]
	return ok
}

// The reference's HTML5 email pattern, split at the "@". The local part's
// set is the reference's exactly: it has the typographic apostrophe U+2019
// and not the ASCII "'", so "o'brien@x.org" is refused, as it was. A domain
// is one or more dot-separated labels of ASCII letters and digits with inner
// hyphens, each at most 255 characters; no dot is required ("a@localhost"
// matches, as in HTML5).
var (
	localPartRE = regexp.MustCompile("^[a-zA-Z0-9.!#$%&\u2019*+/=?^_`{|}~-]+$")
	domainRE    = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,253}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,253}[a-zA-Z0-9])?)*$`)
)

// ValidateEmail applies the reference's sign-up email checks
// (docs/protocol.md, "Users, emails and passwords") to email as typed (before
// [NormalizeEmail]) and returns nil or an error wrapping [ErrInvalidEmail]
// that says which check failed. In order:
//
//  1. (added) at most [MaxEmailBytes] bytes, and no control character
//     (general category Cc, which includes CR, LF and NUL);
//  2. exactly one "@";
//  3. neither the local part nor the domain is a dangerous mixed-script
//     string (see [IsMixedScriptConfusable]);
//  4. the local part, normalised ([NormalizeEmail]), is not reserved
//     ([IsReservedLocalPart]);
//  5. the HTML5 pattern described above;
//  6. the case-folded domain is not in disposable. A nil disposable skips
//     this check; pass [BuiltinDisposable] or a merged set.
//
// The reference's checks 2–6 run in the same order, so the first failure is
// the same one; only the wording of the detail is ours. ValidateEmail is pure
// and safe for concurrent use.
func ValidateEmail(email string, disposable *DomainSet) error {
	if len(email) > MaxEmailBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidEmail, MaxEmailBytes)
	}
	if i := strings.IndexFunc(email, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%w: control character at byte %d", ErrInvalidEmail, i)
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || strings.Contains(domain, "@") {
		return fmt.Errorf("%w: want exactly one '@'", ErrInvalidEmail)
	}
	if IsMixedScriptConfusable(local) {
		return fmt.Errorf("%w: local part mixes confusable scripts", ErrInvalidEmail)
	}
	if IsMixedScriptConfusable(domain) {
		return fmt.Errorf("%w: domain mixes confusable scripts", ErrInvalidEmail)
	}
	// The reserved names are checked on the stored form: the normalised
	// address's local part (NFKC and case folding can also turn a
	// fullwidth "＠" into "@", so cut after normalising).
	if nlocal, _, _ := strings.Cut(NormalizeEmail(email), "@"); IsReservedLocalPart(nlocal) || IsReservedLocalPart(local) {
		return fmt.Errorf("%w: reserved local part", ErrInvalidEmail)
	}
	if !localPartRE.MatchString(local) {
		return fmt.Errorf("%w: local part has characters outside the HTML5 set", ErrInvalidEmail)
	}
	if !domainRE.MatchString(domain) {
		return fmt.Errorf("%w: domain is not a valid host name", ErrInvalidEmail)
	}
	if disposable != nil && disposable.Contains(domain) {
		return fmt.Errorf("%w: disposable email domain", ErrInvalidEmail)
	}
	return nil
}

// NormalizeEmail returns the stored, and looked-up, form of an email
// address: NFKC, then Unicode full case folding, of the whole string (and so
// of the local part and the domain; neither transformation joins characters
// across the "@"), without surrounding white space. "Jane@X.ORG" becomes
// "jane@x.org" and fullwidth "ｊａｎｅ＠ｘ．ｏｒｇ" becomes "jane@x.org".
// A valid address has no white space, so the trim only lets padded input
// find its account.
//
// NB: the reference normalised only at sign-up and then looked emails up
// exactly (docs/protocol.md, "Deliberate differences from the Python
// server"). Every code path that stores, looks up, counts or rate-limits by
// an email must call NormalizeEmail: users who typed capitals are locked out
// otherwise, and an attacker who types a variant spelling gets a fresh count
// or bucket for the same account.
//
// NormalizeEmail does not validate; call [ValidateEmail] first on input from
// a sign-up.
func NormalizeEmail(s string) string {
	return strings.TrimSpace(cases.Fold().String(norm.NFKC.String(s)))
}

// confusableScripts are the scripts whose letters are so often look-alikes
// of each other (Latin "a", Cyrillic "а", Greek "α"; "o", "о", "ο"; "p",
// "р", "ρ") that mixing one of them with any other script in one string is
// the classic homoglyph attack.
var confusableScripts = []*unicode.RangeTable{
	unicode.Latin, unicode.Cyrillic, unicode.Greek,
	unicode.Armenian, unicode.Cherokee, unicode.Coptic,
}

// IsMixedScriptConfusable is this package's stand-in for the Python
// confusable_homoglyphs library's is_dangerous, which the reference applies
// to each part of an email address.
//
// s is dangerous if its code points come from more than one script, not
// counting Common (digits, punctuation, symbols) and Inherited (combining
// marks), and at least one of those scripts is Latin, Cyrillic, Greek,
// Armenian, Cherokee or Coptic. So "раypal" (Cyrillic "р" and "а" among
// Latin letters) is dangerous; "paypal", "раураl" written wholly in Cyrillic
// look-alikes, and "日本語" are not, as single-script strings. Code points
// with no script (unassigned) count as a script of their own.
//
// The library instead asks whether some character has a known confusable in
// another script; for the scripts above nearly every letter does, so the
// two rules agree on the strings that matter, while this one needs no
// confusables table. It is stricter for mixes such as Latin with Han, which
// no address that passes the ASCII-only HTML5 pattern contains anyway.
func IsMixedScriptConfusable(s string) bool {
	var first *unicode.RangeTable // first script seen
	sawConfusable := false
	mixed := false
	for _, r := range s {
		sc := scriptOf(r)
		if sc == unicode.Common || sc == unicode.Inherited {
			continue
		}
		for _, c := range confusableScripts {
			if sc == c {
				sawConfusable = true
			}
		}
		switch {
		case first == nil:
			first = sc
		case sc != first:
			mixed = true
		}
		if mixed && sawConfusable {
			return true
		}
	}
	return false
}

// unknownScript stands for code points that belong to no script table.
var unknownScript = &unicode.RangeTable{}

// frequentScripts are tried before the full unicode.Scripts map, which
// costs a map walk of some 170 tables per code point.
var frequentScripts = []*unicode.RangeTable{
	unicode.Common, unicode.Latin, unicode.Inherited, unicode.Cyrillic, unicode.Greek,
}

// scriptOf returns the Unicode script table of r.
func scriptOf(r rune) *unicode.RangeTable {
	if r < 0x80 {
		if unicode.IsLetter(r) {
			return unicode.Latin
		}
		return unicode.Common
	}
	for _, t := range frequentScripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	for _, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	return unknownScript
}
