// Package passpolicy holds the input rules of sign-up and password changes
// (docs/protocol.md, "Users, emails and passwords"): the password policy
// ([Policy.Check]), the sign-up email checks and normalisation
// ([ValidateEmail], [NormalizeEmail]) and the full-name normalisation and
// spam check ([NormalizeFullName], [CheckFullName]), plus a faithful port of
// Python's
// difflib.SequenceMatcher ratio ([Ratio]) that the similarity check needs to
// reproduce the reference's borderline decisions.
//
// # What it owns and imports
//
// It owns the rule data: the 101 reserved local parts, a small
// built-in disposable-domain list ([BuiltinDisposable]) and the choice of
// the first 10,000 entries of zxcvbn's password frequency list as the
// common-password list. Larger lists are read by the caller and passed in
// ([LoadDomainSet], [LoadCommonList]); this package opens no files.
//
// It imports only the standard library, golang.org/x/text (NFKC and case
// folding), golang.org/x/net/publicsuffix (embedded Public Suffix List),
// golang.org/x/net/idna (to look up internationalised suffixes), and
// github.com/trustelem/zxcvbn/frequency (embedded password list). It must
// not import any other package of this module: httpfront and actors call
// it, never the reverse.
//
// # Concurrency
//
// Everything is a pure function of its arguments: no I/O, no network, no
// logging, no goroutines. Built-in tables are built once on first use
// (sync.OnceValue) and never modified; [Policy], [CommonList] and
// [DomainSet] values are immutable after construction. All functions and
// methods are safe for concurrent use.
//
// # What it does not do
//
// The reference's breach-database check (the "Pwned Passwords" API) needs
// the network and is left to a caller that wants it. Hashing is elsewhere.
//
// # Errors
//
// Failures wrap the sentinels [ErrInvalidEmail], [ErrInvalidFullName],
// [ErrInvalidPolicy] and [ErrInvalidList] with a detail for logs. The
// detail is not meant for end users: the protocol's reply messages are fixed
// texts that the caller chooses by matching the sentinel with errors.Is.
package passpolicy
