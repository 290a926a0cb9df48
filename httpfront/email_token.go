package httpfront

import (
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

// Emailed verification codes (docs/email.md, "Codes: format, lifetime, single
// use"): minted, signed and checked in the core (actors/emailcode.go). The
// front reads a code from its request (normalizeCode) and words a refused
// one.

const (
	purposeSignup     = shard.PurposeSignup
	purposeForgotPass = shard.PurposeForgotPass
	// maxTokenLifetime bounds verification_expiry: a code that lives for
	// weeks is a password in a mailbox.
	maxTokenLifetime = 7 * 24 * time.Hour
)

// normalizeCode removes the white space a code picks up when it is wrapped
// in a mail and copied out of it.
func normalizeCode(code string) string { return actors.NormalizeCode(code) }

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
