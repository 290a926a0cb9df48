package shard

import (
	"crypto/subtle"
	"errors"
	"time"
)

// EmailToken is an outstanding emailed verification code of a user: the
// code's SHA-256 digest (hex), what it is for, and when it expires. The
// store never holds a usable code, only its digest (docs/security.md,
// "Tokens and keys at rest").
//
// A user has at most one per purpose: mailing a new code replaces the old
// one, and using a code removes it, so each code works once.
type EmailToken struct {
	Purpose string    `json:"purpose"` // PurposeSignup or PurposeForgotPass
	Digest  string    `json:"digest"`
	Expires time.Time `json:"expires"`
}

// The purposes of emailed codes (and of the mails that carry them).
const (
	PurposeSignup     = "signup"
	PurposeForgotPass = "forgotpass"
)

// Errors of [User.UseEmailCode]. Both are answered with the same kind of
// failure; the text never reaches a client.
var (
	ErrEmailCodeInvalid = errors.New("shard: emailed code invalid, altered, used or replaced")
	ErrEmailCodeExpired = errors.New("shard: emailed code expired")
)

// EmailCode is a mailed code as a user record checks it: its purpose and
// digest, and for a code the server minted, the user and address its signed
// claims name. The signature, and the claims' purpose, address and expiry,
// are checked before the code reaches the record, by whoever holds the
// signing key (the front); a code a frontend brought itself has no claims.
type EmailCode struct {
	Purpose string `json:"purpose"`
	Digest  string `json:"digest"` // hex SHA-256 of the normalised code, as in EmailToken
	// Minted: the server minted the code, and it is valid only for user
	// UserID while that user's address is Email.
	Minted bool   `json:"minted,omitempty"`
	UserID UserID `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"` // normalised
}

// UseEmailCode checks code against u's outstanding code of its purpose and,
// when it matches and has not expired at now, removes it (with the tokens
// expired by now), so the code works once. It fails with
// ErrEmailCodeInvalid (no such code, or a minted code of another user or
// address) or ErrEmailCodeExpired, and then leaves u as it was. Run it
// inside [Shard.UpdateUser]'s edit, so that checking and removing are one
// step. Digests are compared in constant time.
func (u *User) UseEmailCode(code EmailCode, now time.Time) error {
	if code.Digest == "" || (code.Minted && (code.UserID != u.ID || code.Email != u.Email)) {
		return ErrEmailCodeInvalid
	}
	for _, t := range u.EmailTokens {
		if t.Purpose != code.Purpose || subtle.ConstantTimeCompare([]byte(t.Digest), []byte(code.Digest)) != 1 {
			continue
		}
		if !t.Expires.After(now) {
			return ErrEmailCodeExpired
		}
		u.EmailTokens = WithoutEmailToken(u.EmailTokens, code.Purpose, now)
		return nil
	}
	return ErrEmailCodeInvalid
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
