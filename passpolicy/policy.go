package passpolicy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
)

// The messages of [Policy.Check], exactly as the reference server words
// them. Frontends show them to users and may match on them, so
// they must not be "corrected": msgFrequency really says "appear appear".
const (
	msgTooShortFmt = "Your password is too short. It must have at least %d characters."
	msgCommon      = "Your password is on the list of the most common passwords and is vulnerable to guessing."
	msgSimilar     = "Your password is too similar to either the domain name of this server or your own name or email address."
	msgFrequency   = "Your password is not complex enough. One or more characters appear appear too frequently."
	msgAllDigits   = "Your password cannot be all numbers."
)

// Defaults of the reference's passpolicy configuration variable.
const (
	DefaultMinLength        = 12
	DefaultMaxSimilarity    = 50
	DefaultMaxCharFrequency = 0.3
)

// Policy holds the reference's local password checks (docs/protocol.md,
// "Users, emails and passwords").
//
// A zero (or negative, or NaN) field means its default ([DefaultMinLength],
// [DefaultMaxSimilarity], [DefaultMaxCharFrequency]), so the zero Policy is
// the default policy rather than one that refuses every password (a zero
// MaxSimilarity would make every password "too similar"). [ParsePolicy]
// never yields such a field.
//
// A Policy is a value; it and its Extra list are never modified after
// construction, so one Policy may be used by any number of goroutines.
type Policy struct {
	// MinLength is the least number of code points a password must have
	// after runs of U+0000–U+0020 are collapsed to one space and the ends
	// are trimmed.
	MinLength int
	// MaxSimilarity is a percentage: a password whose [Ratio] with the
	// server's FQDN, the user's email or the user's full name, times 100,
	// is not below it is refused. A value above 100 disables the check.
	MaxSimilarity int
	// MaxCharFrequency is the largest share of the password's code points
	// one code point may take. 1 disables the check.
	MaxCharFrequency float64
	// Extra is an optional common-password list consulted in addition to
	// the built-in one (see [Policy.Check]). The zero CommonList is empty.
	Extra CommonList
}

// DefaultPolicy returns the reference's default policy: minimum length 12,
// maximum similarity 50, maximum character frequency 0.3, no extra list.
func DefaultPolicy() Policy {
	return Policy{
		MinLength:        DefaultMinLength,
		MaxSimilarity:    DefaultMaxSimilarity,
		MaxCharFrequency: DefaultMaxCharFrequency,
	}
}

// withDefaults replaces zero, negative and NaN fields by their defaults.
func (p Policy) withDefaults() Policy {
	if p.MinLength <= 0 {
		p.MinLength = DefaultMinLength
	}
	if p.MaxSimilarity <= 0 {
		p.MaxSimilarity = DefaultMaxSimilarity
	}
	if !(p.MaxCharFrequency > 0) { // also NaN
		p.MaxCharFrequency = DefaultMaxCharFrequency
	}
	return p
}

// ParsePolicy parses the passpolicy configuration string, such as
//
//	min_pass_length:12; max_unsafe_similarity:50; max_char_frequency:0.3; min_pwned_matches:25
//
// the way the reference does: positionally. The string is split on ";" into
// exactly four parts; each part's value is the text after its first ":",
// with all white space removed, and the names before the ":" are ignored.
// The four values are an integer minimum length (≥ 1), an integer maximum
// similarity percentage (≥ 1), a float maximum character frequency (in
// (0, 1]) and an integer minimum breach count (≥ 0). The fourth is checked
// and then dropped, because this package does no breach-database look-up.
//
// Unlike the reference, which silently falls back to built-in defaults, a
// malformed string is an error wrapping [ErrInvalidPolicy]; the caller
// decides whether to refuse to start or to use [DefaultPolicy].
func ParsePolicy(s string) (Policy, error) {
	parts := strings.Split(s, ";")
	if len(parts) != 4 {
		return Policy{}, fmt.Errorf("%w: want 4 parts separated by ';', got %d", ErrInvalidPolicy, len(parts))
	}
	var vals [4]string
	for i, part := range parts {
		_, v, ok := strings.Cut(part, ":")
		if !ok {
			return Policy{}, fmt.Errorf("%w: part %d (%q) has no ':'", ErrInvalidPolicy, i+1, part)
		}
		vals[i] = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, v)
	}
	minLen, err := strconv.Atoi(vals[0])
	if err != nil || minLen < 1 {
		return Policy{}, fmt.Errorf("%w: min_pass_length %q is not an integer ≥ 1", ErrInvalidPolicy, vals[0])
	}
	maxSim, err := strconv.Atoi(vals[1])
	if err != nil || maxSim < 1 {
		return Policy{}, fmt.Errorf("%w: max_unsafe_similarity %q is not an integer ≥ 1", ErrInvalidPolicy, vals[1])
	}
	maxFreq, err := strconv.ParseFloat(vals[2], 64)
	if err != nil || math.IsNaN(maxFreq) || maxFreq <= 0 || maxFreq > 1 {
		return Policy{}, fmt.Errorf("%w: max_char_frequency %q is not a number in (0, 1]", ErrInvalidPolicy, vals[2])
	}
	if n, err := strconv.Atoi(vals[3]); err != nil || n < 0 {
		return Policy{}, fmt.Errorf("%w: min_pwned_matches %q is not an integer ≥ 0", ErrInvalidPolicy, vals[3])
	}
	return Policy{MinLength: minLen, MaxSimilarity: maxSim, MaxCharFrequency: maxFreq}, nil
}

// Check applies the reference's checks 1–5 (below) to password and returns
// whether all passed and the messages of those that failed, in check order.
// messages is never nil, so that it encodes as a JSON list, and is empty
// when ok is true.
//
// email and fullName are the user's, as stored; serverFQDN is the server's
// host name (the reference uses the OS's FQDN). Callers cut the password to
// 256 code points where the protocol says so; Check does not.
//
// The checks, all evaluated:
//
//  1. Length: runs of U+0000–U+0020 are collapsed to one space and the ends
//     trimmed; fewer than MinLength code points fails. The message names
//     MinLength; the reference's message always said 12.
//  2. Common password: the Unicode case-folded password equals an entry of
//     the built-in list (see below) or of Extra.
//  3. Similarity: with p the case-folded password, collapsed and trimmed as
//     in check 1, [Ratio](p, x)×100 must be below MaxSimilarity for x each
//     of the case-folded serverFQDN, email and fullName. One message at
//     most. An empty x is compared too (as difflib would), which matters
//     only for an empty password, already refused by check 1.
//  4. Character frequency: some code point (case-sensitive) of the raw
//     password makes up more than MaxCharFrequency of it.
//  5. All digits: the password is non-empty and every code point is a
//     Unicode digit in Python's sense of str.isdigit (Numeric_Type Decimal
//     or Digit, so "①²3" counts).
//
// # Built-in common-password list
//
// The reference refuses the 10,000 most common passwords of the SecLists
// list. This package instead uses the "passwords" frequency list that
// github.com/trustelem/zxcvbn v1.0.1 embeds (frequency.FrequencyLists,
// ordered by rank, 30,000 lower-case entries derived from the same Xato
// corpus) and refuses an exact match of the whole case-folded password with
// one of its first 10,000 entries. Partial matches, l33t substitutions and
// zxcvbn's guess estimates are not used: they would refuse many passwords
// the reference accepts. Two consequences of how zxcvbn built its list:
// tokens it filed under another dictionary (first names such as "michael",
// English words, surnames) and short rare tokens are missing, so some
// SecLists entries are not refused — "aaaa", for example, which the
// reference refuses. Pass the SecLists file as [Policy.Extra] (via
// [LoadCommonList]) to restore the reference's behaviour exactly.
//
// # Not done
//
// The reference's check 6, the breach-database ("Pwned Passwords") look-up,
// needs the network and is not done here; ok reports checks 1–5 only.
//
// Check is a pure function: no I/O, no goroutines, safe for concurrent use.
// Its cost is dominated by check 3, O(len(password)·len(x)) in the worst
// case.
func (p Policy) Check(password, email, fullName, serverFQDN string) (ok bool, messages []string) {
	p = p.withDefaults()
	messages = []string{}

	squeezed := squeeze(password)
	if runeLen(squeezed) < p.MinLength {
		messages = append(messages, fmt.Sprintf(msgTooShortFmt, p.MinLength))
	}

	folder := cases.Fold() // a Caser is stateful: one per call
	folded := folder.String(password)
	if isBuiltinCommon(folded) || p.Extra.contains(folded) {
		messages = append(messages, msgCommon)
	}

	cmp := squeeze(folded)
	limit := float64(p.MaxSimilarity)
	for _, x := range [...]string{serverFQDN, email, fullName} {
		if Ratio(cmp, folder.String(x))*100 >= limit {
			messages = append(messages, msgSimilar)
			break
		}
	}

	if tooFrequent(password, p.MaxCharFrequency) {
		messages = append(messages, msgFrequency)
	}

	if allDigits(password) {
		messages = append(messages, msgAllDigits)
	}
	return len(messages) == 0, messages
}

// squeeze collapses each run of U+0000–U+0020 to one space and trims white
// space from both ends: the reference's "squeeze" plus strip.
func squeeze(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	inRun := false
	for _, r := range s {
		if r <= 0x20 {
			if !inRun {
				sb.WriteByte(' ')
				inRun = true
			}
			continue
		}
		inRun = false
		sb.WriteRune(r)
	}
	return strings.TrimFunc(sb.String(), unicode.IsSpace)
}

// tooFrequent reports whether some code point makes up more than max of s.
// The comparison is count/len > max in float64, as in the reference.
func tooFrequent(s string, max float64) bool {
	n := runeLen(s)
	if n == 0 {
		return false
	}
	counts := make(map[rune]int, n)
	for _, r := range s {
		counts[r]++
	}
	for _, c := range counts {
		if float64(c)/float64(n) > max {
			return true
		}
	}
	return false
}

// allDigits is Python's str.isdigit: non-empty, and every code point has
// Numeric_Type Decimal (general category Nd) or Digit.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsDigit(r) && !unicode.Is(numericTypeDigit, r) {
			return false
		}
	}
	return true
}

// numericTypeDigit holds the code points with Numeric_Type=Digit, which
// Python's str.isdigit accepts besides the decimal digits (Nd): superscripts,
// subscripts, circled and parenthesised digits and a few historic scripts.
// Generated from CPython 3.11 (Unicode 14.0) as the characters c with
// c.isdigit() and unicodedata.category(c) != "Nd"; the Go unicode package
// has no Numeric_Type property.
var numericTypeDigit = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x00B2, 0x00B3, 1}, {0x00B9, 0x00B9, 1}, {0x1369, 0x1371, 1},
		{0x19DA, 0x19DA, 1}, {0x2070, 0x2070, 1}, {0x2074, 0x2079, 1},
		{0x2080, 0x2089, 1}, {0x2460, 0x2468, 1}, {0x2474, 0x247C, 1},
		{0x2488, 0x2490, 1}, {0x24EA, 0x24EA, 1}, {0x24F5, 0x24FD, 1},
		{0x24FF, 0x24FF, 1}, {0x2776, 0x277E, 1}, {0x2780, 0x2788, 1},
		{0x278A, 0x2792, 1},
	},
	R32: []unicode.Range32{
		{0x10A40, 0x10A43, 1}, {0x10E60, 0x10E68, 1}, {0x11052, 0x1105A, 1},
		{0x1F100, 0x1F10A, 1},
	},
	LatinOffset: 2,
}
