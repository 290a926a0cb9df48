package shard

import "time"

// EmailToken is an outstanding emailed verification code of a user: the
// code's SHA-256 digest (hex), what it is for, and when it expires. The
// store never holds a usable code, only its digest (docs/security.md,
// "Tokens and keys at rest").
//
// A user has at most one per purpose: mailing a new code replaces the old
// one, and using a code removes it, so each code works once.
type EmailToken struct {
	Purpose string    `json:"purpose"` // "signup" or "forgotpass"
	Digest  string    `json:"digest"`
	Expires time.Time `json:"expires"`
}

// WithEmailToken returns a new list holding tok in place of any token of
// the same purpose, without the tokens that expired by now. It never
// modifies list, which copies of the user may share.
func WithEmailToken(list []EmailToken, tok EmailToken, now time.Time) []EmailToken {
	out := make([]EmailToken, 0, len(list)+1)
	for _, t := range list {
		if t.Purpose != tok.Purpose && t.Expires.After(now) {
			out = append(out, t)
		}
	}
	return append(out, tok)
}

// WithoutEmailToken returns a new list without the tokens of purpose and
// those that expired by now (nil when none is left). It never modifies
// list.
func WithoutEmailToken(list []EmailToken, purpose string, now time.Time) []EmailToken {
	var out []EmailToken
	for _, t := range list {
		if t.Purpose != purpose && t.Expires.After(now) {
			out = append(out, t)
		}
	}
	return out
}
