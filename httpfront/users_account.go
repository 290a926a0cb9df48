package httpfront

import (
	"encoding/json"
	"fmt"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

const msgPassChanged = "Password changed successfully."

// insecureMessage is the closing message of a refused new password. The
// reference hard-codes "12"; this names the configured minimum.
func (e *usersExt) insecureMessage() string {
	n := e.opts.Policy.MinLength
	if n <= 0 {
		n = passpolicy.DefaultMinLength
	}
	return fmt.Sprintf("The new password you entered is insecure. It must be at least %d characters long and be sufficiently complex.", n)
}

// handleUserChangepass changes a password after checking the current one
// (docs/protocol.md, "Account management"): one call to the core's flow.
// Unlike the reference, user-changepass checks that its session is live and
// belongs to user_id; both forms end every other session of the user once
// the new password is stored; and the check of the current password is
// under the back-off and lock of docs/security.md, "Brute-force back-off
// and auto-lock", keyed by email.
func handleUserChangepass(c *call) (result, error) {
	uid, _ := c.int("user_id")
	email := c.str("email")
	withSession := c.reqType == "user-changepass"
	a, err := c.s.deps.Accounts.ChangePassword(actors.PasswordChange{
		UserID: shard.UserID(uid), Email: email,
		Current: c.str("current_password"), New: c.str("new_password"), FullName: c.str("full_name"),
		CheckSession: withSession, Session: shard.DigestSession(c.str("session_token")), KeepOtherSession: withSession,
	})
	if err != nil {
		return result{}, err
	}
	fail := func(reason string, msgs ...string) result {
		return failure(reason, msgs...).with("user_id", uid).with("email", email)
	}
	const msgNoMatch = "Your current password did not match the stored password."
	switch a.Refusal {
	case "":
		r := success(msgPassChanged)
		if withSession {
			r.addMessage("For security purposes, you have been logged out of all other sessions.")
		}
		return r.with("user_id", uid).with("email", email), nil
	case actors.RefusedLockedOut:
		return lockedAnswer(), nil
	case actors.RefusedNoSession:
		return fail("session does not exist or does not belong to user_id", "Invalid session for password change request."), nil
	case actors.RefusedNoUser:
		return fail("user does not exist", msgNoMatch), nil
	case actors.RefusedSamePassword:
		return fail("password did not change", "Your new password cannot be the same as your old password."), nil
	case actors.RefusedInsecure:
		return fail("new password is insecure", append(a.Policy, c.s.ext.users.insecureMessage())...), nil
	case actors.RefusedRaced:
		return fail("DB error when updating password", "Password could not be changed."), nil
	}
	return fail("user password does not match", msgNoMatch), nil
}

// handleUserResetpass sets a new password without the current one
// (docs/protocol.md, "Account management"): the frontend has verified a reset
// token, or passes a mailed code to spend. Every session of the user ends
// (the reference ended none).
func handleUserResetpass(c *call) (result, error) {
	s := c.s
	withSession := c.reqType == "user-resetpass"
	email := c.str("email_address")
	msgBadUser, reasonBadUser := "Invalid user for password reset request.", "user does not exist"
	msgInsecure, reasonInsecure := "Insecure password for password reset request.", "invalid password"
	if !withSession {
		reasonBadUser = "user does not exist or is_active was not as required"
		msgInsecure, reasonInsecure = "Insecure new password for password reset request.", "invalid new password"
	}
	const msgBadCode = "The verification code is not valid."
	r := actors.PasswordReset{
		CheckSession: withSession, Session: shard.DigestSession(c.str("session_token")),
		Email: email, Active: withSession || c.boolean("required_active"),
		Password: c.str("new_password"), At: c.now,
	}
	a, err := s.ext.mail.flows.ResetPassword(r, normalizeCode(c.str("verification_token")))
	if err != nil {
		return result{}, err
	}
	switch a.Refusal {
	case "":
		return success(msgPassChanged), nil
	case actors.RefusedNoSession:
		return failure("session does not exist", "Invalid session token for password reset request."), nil
	case actors.RefusedNoUser:
		return failure(reasonBadUser, msgBadUser), nil
	case actors.RefusedInsecure:
		return failure(reasonInsecure, append([]string{msgInsecure}, a.Policy...)...), nil
	case actors.RefusedCodeExpired, actors.RefusedCodeInvalid:
		return failure(codeFailure(a.Refusal), msgBadCode), nil
	}
	return failure("password update failed in DB", "Password could not be changed."), nil
}

// handleUserDelete deletes the caller's own account after checking its
// password, under the back-off and lock of docs/security.md, "Brute-force
// back-off and auto-lock".
func handleUserDelete(c *call) (result, error) {
	uid, _ := c.int("user_id")
	email := c.str("email")
	a, err := c.s.deps.Accounts.DeleteOwnAccount(shard.UserID(uid), email, c.str("password"))
	if err != nil {
		return result{}, err
	}
	fail := func(reason, msg string) result {
		return failure(reason, msg).with("user_id", uid).with("email", email)
	}
	const msgNoVerify = "We could not verify your email address or password."
	switch a.Refusal {
	case "":
		return success("User successfully deleted from DB.").with("user_id", uid).with("email", email), nil
	case actors.RefusedLockedOut:
		return lockedAnswer(), nil
	case actors.RefusedNoUser:
		return fail("invalid email", msgNoVerify), nil
	case actors.RefusedBadPassword:
		return fail("invalid password", msgNoVerify), nil
	case actors.RefusedProtected:
		return fail("can't delete superusers", "Can't delete superusers."), nil
	}
	return fail("user deletion failed in DB", "Could not delete user from DB."), nil
}

// handleUserValidatepass dry-runs the password policy. Unlike the reference,
// the request's kwargs take effect when given (docs/protocol.md, "Deliberate
// differences from the Python server"); the server's policy supplies the
// rest.
func handleUserValidatepass(c *call) (result, error) {
	p := c.s.ext.users.opts.Policy
	if n, ok := c.int("min_pass_length"); ok && n > 0 {
		p.MinLength = int(n)
	}
	if n, ok := c.int("max_unsafe_similarity"); ok && n > 0 {
		p.MaxSimilarity = int(n)
	}
	if raw := c.raw("max_character_frequency"); raw != nil {
		var f float64
		if json.Unmarshal(raw, &f) == nil && f > 0 {
			p.MaxCharFrequency = f
		}
	}
	ok, msgs := p.Check(c.str("password"), passpolicy.NormalizeEmail(c.str("email")), c.str("full_name"), c.s.ext.users.opts.ServerFQDN)
	if !ok {
		return failure("password is insecure or invalid", msgs...), nil
	}
	return success(msgs...), nil
}
