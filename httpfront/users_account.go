package httpfront

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
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
// (docs/protocol.md, "Account management"). Unlike the reference,
// user-changepass checks that its session is live and belongs to user_id;
// both forms end every other session of the user once the new password is
// stored; and the check of the current password is under the back-off and
// lock of docs/security.md, "Brute-force back-off and auto-lock", keyed by
// email.
func handleUserChangepass(c *call) (result, error) {
	s := c.s
	uid, _ := c.int("user_id")
	email := c.str("email")
	withSession := c.reqType == "user-changepass"
	var keep *shard.SessionDigest
	if withSession {
		token := c.str("session_token")
		sess, ok, err := lookupSession(s, token)
		if err != nil {
			return result{}, err
		}
		if !ok || int64(sess.UserID) != uid {
			return failure("session does not exist or does not belong to user_id", "Invalid session for password change request.").with("user_id", uid).with("email", email), nil
		}
		d := shard.DigestSession(token)
		keep = &d
	}
	return s.withBackoff(email, func() (result, shard.Outcome, error) { return changepass(c, keep) })
}

// changepass verifies the current password and stores the new one. Once the
// current password matched, no later refusal is a password failure.
func changepass(c *call, keep *shard.SessionDigest) (result, shard.Outcome, error) {
	s := c.s
	uid, _ := c.int("user_id")
	email := c.str("email")
	fail := func(reason string, msgs ...string) result {
		return failure(reason, msgs...).with("user_id", uid).with("email", email)
	}
	const msgNoMatch = "Your current password did not match the stored password."
	u, err := getUser(s, shard.UserID(uid))
	if err != nil && !errors.Is(err, shard.ErrUserNotFound) {
		return result{}, shard.AttemptCancelled, err
	}
	found := err == nil && u.IsActive && u.Email == passpolicy.NormalizeEmail(email)
	phc := s.deps.Hasher.DummyPHC()
	if found {
		phc = u.PasswordPHC
	}
	current := passhash.TruncatePassword(c.str("current_password"))
	next := passhash.TruncatePassword(c.str("new_password"))
	// One pool job: verify the current password, check the new one is not
	// the same, and hash the new one (hashing before the policy check keeps
	// a refused password as slow as an accepted one).
	rs, err := s.deps.Hasher.Run(
		passhash.HashOp{Verify: true, PHC: phc, Password: current},
		passhash.HashOp{Verify: true, PHC: phc, Password: next},
		passhash.HashOp{Password: next},
	)
	if err == nil {
		err = cmp.Or(verifyOpErr(rs[0].Err), verifyOpErr(rs[1].Err))
	}
	if err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	if !found {
		return fail("user does not exist", msgNoMatch), shard.AttemptFailed, nil
	}
	if rs[0].Err != nil || !rs[0].OK {
		return fail("user password does not match", msgNoMatch), shard.AttemptFailed, nil
	}
	if rs[1].OK {
		return fail("password did not change", "Your new password cannot be the same as your old password."), shard.AttemptSucceeded, nil
	}
	if rs[2].Err != nil {
		return result{}, shard.AttemptCancelled, rs[2].Err
	}
	if ok, msgs := s.ext.users.opts.Policy.Check(next, passpolicy.NormalizeEmail(email), c.str("full_name"), s.ext.users.opts.ServerFQDN); !ok {
		return fail("new password is insecure", append(msgs, s.ext.users.insecureMessage())...), shard.AttemptSucceeded, nil
	}
	if _, err := setPassword(s, u.ID, u.PasswordPHC, rs[2].PHC); err != nil {
		if errors.Is(err, errNoChange) {
			return fail("DB error when updating password", "Password could not be changed."), shard.AttemptSucceeded, nil
		}
		return result{}, shard.AttemptCancelled, err
	}
	if _, err := deleteUserSessions(c.s, u.ID, keep); err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	s.log.Info("password changed", "user", s.pii(strconv.FormatInt(uid, 10)))
	r := success(msgPassChanged)
	if keep != nil {
		r.messages = append(r.messages, "For security purposes, you have been logged out of all other sessions.")
	}
	return r.with("user_id", uid).with("email", email), shard.AttemptSucceeded, nil
}

// setPassword stores a new hash if the stored one is still oldPHC (when
// oldPHC is not empty), so two racing changes cannot interleave; it fails
// with errNoChange when the stored hash changed meanwhile.
func setPassword(s *Server, id shard.UserID, oldPHC, newPHC string) (shard.User, error) {
	return askUserEdit(s, actors.SetPassword{ID: id, OldPHC: oldPHC, NewPHC: newPHC})
}

// handleUserResetpass sets a new password without the current one
// (docs/protocol.md, "Account management"): the frontend has verified a reset
// token. Every session of the user ends (the reference ended none).
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
	if withSession {
		if _, ok, err := lookupSession(s, c.str("session_token")); err != nil {
			return result{}, err
		} else if !ok {
			return failure("session does not exist", "Invalid session token for password reset request."), nil
		}
	}
	key := s.ext.mail.opts.TokenKey
	code := normalizeCode(c.str("verification_token"))
	if code != "" {
		if reason := codeReason(precheckCode(key, code, purposeForgotPass, email, c.now)); reason != "" {
			return failure(reason, "The verification code is not valid."), nil
		}
	}
	u, found, err := userByEmail(s, email)
	if err != nil {
		return result{}, err
	}
	if withSession {
		found = found && u.IsActive
	} else {
		found = found && u.IsActive == c.boolean("required_active")
	}
	next := passhash.TruncatePassword(c.str("new_password"))
	phc, err := hashPassword(s, next)
	if err != nil {
		return result{}, err
	}
	if !found {
		return failure(reasonBadUser, msgBadUser), nil
	}
	if ok, msgs := s.ext.users.opts.Policy.Check(next, u.Email, u.FullName, s.ext.users.opts.ServerFQDN); !ok {
		return failure(reasonInsecure, append([]string{msgInsecure}, msgs...)...), nil
	}
	op := actors.ResetPassword{ID: u.ID, PHC: phc, At: c.now}
	if code != "" {
		op.WithCode = true
		op.Code, err = mailedCode(key, code, purposeForgotPass)
	}
	if err == nil {
		_, err = askEmailOp(s, op)
	}
	if reason := codeReason(err); reason != "" {
		return failure(reason, "The verification code is not valid."), nil
	}
	switch {
	case errors.Is(err, shard.ErrUserNotFound):
		return failure("password update failed in DB", "Password could not be changed."), nil
	case err != nil:
		return result{}, err
	}
	if _, err := deleteAllUserSessions(s, u.ID); err != nil {
		return result{}, err
	}
	s.log.Info("password reset", "user", s.pii(strconv.FormatInt(int64(u.ID), 10)))
	return success(msgPassChanged), nil
}

// handleUserDelete deletes the caller's own account after checking its
// password, under the back-off and lock of docs/security.md, "Brute-force
// back-off and auto-lock".
func handleUserDelete(c *call) (result, error) {
	return c.s.withBackoff(c.str("email"), func() (result, shard.Outcome, error) { return userDelete(c) })
}

func userDelete(c *call) (result, shard.Outcome, error) {
	s := c.s
	uid, _ := c.int("user_id")
	email := c.str("email")
	fail := func(reason, msg string) result {
		return failure(reason, msg).with("user_id", uid).with("email", email)
	}
	const msgNoVerify = "We could not verify your email address or password."
	u, err := getUser(s, shard.UserID(uid))
	if err != nil && !errors.Is(err, shard.ErrUserNotFound) {
		return result{}, shard.AttemptCancelled, err
	}
	found := err == nil && u.Email == passpolicy.NormalizeEmail(email)
	phc := ""
	if found {
		phc = u.PasswordPHC
	}
	ok, _, err := verifyPassword(s, phc, c.str("password"))
	if err != nil {
		return result{}, shard.AttemptCancelled, err
	}
	switch {
	case !found:
		return fail("invalid email", msgNoVerify), shard.AttemptFailed, nil
	case !ok:
		return fail("invalid password", msgNoVerify), shard.AttemptFailed, nil
	case u.Role == "superuser" || u.ID <= shard.DummyUserID:
		return fail("can't delete superusers", "Can't delete superusers."), shard.AttemptSucceeded, nil
	}
	if err := removeUser(s, u); err != nil {
		if errors.Is(err, shard.ErrUserNotFound) {
			return fail("user deletion failed in DB", "Could not delete user from DB."), shard.AttemptSucceeded, nil
		}
		return result{}, shard.AttemptCancelled, err
	}
	return success("User successfully deleted from DB.").with("user_id", uid).with("email", email), shard.AttemptSucceeded, nil
}

// removeUser deletes a user, all their sessions and their index entries.
// When it returns, no session of the user passes a check.
func removeUser(s *Server, u shard.User) error {
	res, err := actors.Ask[shard.User](s.deps.Core, actors.DeleteUser{ID: u.ID})
	if err != nil {
		return err
	}
	if err := durable(res); err != nil {
		return err
	}
	// Its sessions and session-less API keys go at once, in one fan-out
	// (keys tied to a session die with it).
	rs, err := actors.AskAll[int](s.deps.Core, actors.ForgetUser{ID: u.ID})
	if err != nil {
		return err
	}
	if err := actors.WaitAll(rs); err != nil {
		return errUnwritable
	}
	releaseKey(s, u.Email, u.ID)
	releaseKey(s, systemIDKey(u.SystemID), u.ID)
	s.log.Info("user deleted", "user", s.pii(strconv.FormatInt(int64(u.ID), 10)))
	return nil
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
