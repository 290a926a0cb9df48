package httpfront

import (
	"errors"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

// Emailed verification codes (docs/email.md, "Codes: format, lifetime, single
// use"): minted, signed and checked in the core (actors/emailcode.go). The
// front reads a code from its request (normalizeCode) and words a refused
// one; the helpers below serve the handlers that still check a code here.

const (
	purposeSignup     = shard.PurposeSignup
	purposeForgotPass = shard.PurposeForgotPass
	// maxTokenLifetime bounds verification_expiry: a code that lives for
	// weeks is a password in a mailbox.
	maxTokenLifetime = 7 * 24 * time.Hour
)

// Errors of code checks: the user record's ([shard.User.UseEmailCode]), so
// that codeReason answers both.
var (
	errTokenInvalid = shard.ErrEmailCodeInvalid
	errTokenExpired = shard.ErrEmailCodeExpired
)

// normalizeCode removes the white space a code picks up when it is wrapped
// in a mail and copied out of it.
func normalizeCode(code string) string { return actors.NormalizeCode(code) }

// precheckCode does the checks of a code that need no user record
// ([actors.CodeKey.Precheck]).
func precheckCode(key []byte, code, purpose, email string, now time.Time) error {
	return actors.CodeKey(key).Precheck(code, purpose, email, now)
}

// mailedCode is code as the user record checks it
// ([actors.CodeKey.EmailCode]).
func mailedCode(key []byte, code, purpose string) (shard.EmailCode, error) {
	return actors.CodeKey(key).EmailCode(code, purpose)
}

// codeFailure is the failure_reason of a refused code ("" for another
// refusal).
func codeFailure(r actors.Refusal) string {
	switch r {
	case actors.RefusedCodeExpired:
		return "verification token expired"
	case actors.RefusedCodeInvalid:
		return "invalid verification token"
	}
	return ""
}

// codeReason is the failure_reason for an error of precheckCode, mailedCode
// or shard.User.UseEmailCode ("" when err is nil or is not about the code).
func codeReason(err error) string {
	switch {
	case errors.Is(err, errTokenExpired):
		return codeFailure(actors.RefusedCodeExpired)
	case errors.Is(err, errTokenInvalid):
		return codeFailure(actors.RefusedCodeInvalid)
	}
	return ""
}
