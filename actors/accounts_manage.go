package actors

import (
	"cmp"
	"errors"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// Refusals of the account-management flows.
const (
	// RefusedCodeInvalid and RefusedCodeExpired: the mailed code given with
	// a password reset does not fit the account.
	RefusedCodeInvalid Refusal = "code invalid"
	RefusedCodeExpired Refusal = "code expired"
)

// PasswordChange asks to replace a user's password after checking the
// current one.
type PasswordChange struct {
	UserID shard.UserID
	// Email must be the user's (any spelling); it keys the back-off.
	Email            string
	Current, New     string
	FullName         string // compared with the new password by the policy
	CheckSession     bool   // Session must be live and belong to UserID
	Session          shard.SessionDigest
	KeepOtherSession bool // with CheckSession: Session is not ended
}

// ChangePassword changes a password after checking the current one, under
// the brute-force back-off keyed by the email. Once the new password is
// stored, every session of the user ends but, with KeepOtherSession, the
// one presented. Refusals: RefusedNoSession, RefusedLockedOut, RefusedNoUser
// (no active user with that id and email), RefusedBadPassword,
// RefusedSamePassword, RefusedInsecure, RefusedRaced (the password changed
// meanwhile).
func (a *Accounts) ChangePassword(r PasswordChange) (Answer, error) {
	if r.CheckSession {
		sess, ok, err := a.session(r.Session)
		if err != nil {
			return Answer{}, err
		}
		if !ok || sess.UserID != r.UserID {
			return refused(RefusedNoSession, shard.User{}), nil
		}
	}
	return a.withBackoff(r.Email, func() (Answer, shard.Outcome, error) { return a.changePassword(r) })
}

// changePassword verifies the current password and stores the new one. Once
// the current password matched, no later refusal is a password failure.
func (a *Accounts) changePassword(r PasswordChange) (Answer, shard.Outcome, error) {
	u, found, err := a.user(r.UserID)
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	found = found && u.IsActive && u.Email == passpolicy.NormalizeEmail(r.Email)
	phc := a.hasher.DummyPHC()
	if found {
		phc = u.PasswordPHC
	}
	current := passhash.TruncatePassword(r.Current)
	next := passhash.TruncatePassword(r.New)
	// One pool job: verify the current password, check the new one is not
	// the same, and hash the new one (hashing before the policy check keeps
	// a refused password as slow as an accepted one).
	rs, err := a.hasher.Run(
		passhash.HashOp{Verify: true, PHC: phc, Password: current},
		passhash.HashOp{Verify: true, PHC: phc, Password: next},
		passhash.HashOp{Password: next},
	)
	if err == nil {
		err = cmp.Or(verifyFault(rs[0].Err), verifyFault(rs[1].Err))
	}
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	switch {
	case !found:
		return refused(RefusedNoUser, shard.User{}), shard.AttemptFailed, nil
	case rs[0].Err != nil || !rs[0].OK:
		return refused(RefusedBadPassword, shard.User{}), shard.AttemptFailed, nil
	case rs[1].OK:
		return refused(RefusedSamePassword, u), shard.AttemptSucceeded, nil
	case rs[2].Err != nil:
		return Answer{}, shard.AttemptCancelled, rs[2].Err
	}
	if ok, msgs := a.opts.Policy.Check(next, u.Email, r.FullName, a.opts.ServerFQDN); !ok {
		return Answer{Refusal: RefusedInsecure, User: u, Policy: msgs}, shard.AttemptSucceeded, nil
	}
	nu, err := a.editUser(SetPassword{ID: u.ID, OldPHC: u.PasswordPHC, NewPHC: rs[2].PHC})
	if errors.Is(err, shard.ErrNoChange) {
		return refused(RefusedRaced, u), shard.AttemptSucceeded, nil
	}
	if err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	var keep *shard.SessionDigest
	if r.KeepOtherSession {
		keep = &r.Session
	}
	if _, err := a.EndSessions(u.ID, keep); err != nil {
		return Answer{}, shard.AttemptCancelled, err
	}
	a.log.Info("password changed", "user", a.pii(u.ID))
	return Answer{User: nu}, shard.AttemptSucceeded, nil
}

// PasswordReset asks to set a new password without the current one: the
// caller has verified a reset code, or passes it in Code to be spent with
// the change.
type PasswordReset struct {
	// CheckSession: Session must be live (any user's).
	CheckSession bool
	Session      shard.SessionDigest
	Email        string
	// Active is the active flag the account must have.
	Active   bool
	Password string
	// Code, when not nil, is a mailed reset code spent in the same step as
	// the change (the change fails if the code does not fit the account).
	Code *shard.EmailCode
	// CodeRefusal is the refusal of a code that failed the caller's checks
	// that need no record (its form, signature, purpose, expiry): it is the
	// answer once the session is checked.
	CodeRefusal Refusal
	// At is when the request came (codes expire).
	At time.Time
}

// ResetPassword sets a new password, then ends every session of the user
// (the Python server ends none). Refusals: RefusedNoSession, RefusedNoUser,
// RefusedInsecure, RefusedCodeInvalid, RefusedCodeExpired, RefusedRaced (the
// user went meanwhile).
func (a *Accounts) ResetPassword(r PasswordReset) (Answer, error) {
	if r.CheckSession {
		if _, ok, err := a.session(r.Session); err != nil {
			return Answer{}, err
		} else if !ok {
			return refused(RefusedNoSession, shard.User{}), nil
		}
	}
	if r.CodeRefusal != "" {
		return refused(r.CodeRefusal, shard.User{}), nil
	}
	u, found, err := a.UserByEmail(r.Email)
	if err != nil {
		return Answer{}, err
	}
	found = found && u.IsActive == r.Active
	next := passhash.TruncatePassword(r.Password)
	// Hash before anything is refused, so a refusal costs the time of a
	// success.
	phc, err := a.Hash(next)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	if ok, msgs := a.opts.Policy.Check(next, u.Email, u.FullName, a.opts.ServerFQDN); !ok {
		return Answer{Refusal: RefusedInsecure, User: u, Policy: msgs}, nil
	}
	op := ResetPassword{ID: u.ID, PHC: phc, At: r.At}
	if r.Code != nil {
		op.WithCode, op.Code = true, *r.Code
	}
	_, err = askDurable[EmailState](a.core, op)
	switch {
	case errors.Is(err, shard.ErrEmailCodeExpired):
		return refused(RefusedCodeExpired, u), nil
	case errors.Is(err, shard.ErrEmailCodeInvalid):
		return refused(RefusedCodeInvalid, u), nil
	case errors.Is(err, shard.ErrUserNotFound):
		return refused(RefusedRaced, u), nil
	case err != nil:
		return Answer{}, err
	}
	if _, err := a.EndSessions(u.ID, nil); err != nil {
		return Answer{}, err
	}
	a.log.Info("password reset", "user", a.pii(u.ID))
	return Answer{User: u}, nil
}

// DeleteOwnAccount deletes the account of user id after checking its email
// and password, under the back-off. Refusals: RefusedLockedOut,
// RefusedNoUser (the email is not the user's), RefusedBadPassword,
// RefusedProtected (a superuser or a system user), RefusedRaced (the user
// went meanwhile).
func (a *Accounts) DeleteOwnAccount(id shard.UserID, email, password string) (Answer, error) {
	return a.withBackoff(email, func() (Answer, shard.Outcome, error) {
		u, found, err := a.user(id)
		if err != nil {
			return Answer{}, shard.AttemptCancelled, err
		}
		found = found && u.Email == passpolicy.NormalizeEmail(email)
		ok, _, err := a.verifyUser(&u, found, password)
		if err != nil {
			return Answer{}, shard.AttemptCancelled, err
		}
		switch {
		case !found:
			return refused(RefusedNoUser, shard.User{}), shard.AttemptFailed, nil
		case !ok:
			return refused(RefusedBadPassword, shard.User{}), shard.AttemptFailed, nil
		case u.Role == "superuser" || u.ID <= shard.DummyUserID:
			return refused(RefusedProtected, u), shard.AttemptSucceeded, nil
		}
		r, err := a.remove(u)
		if err != nil {
			return Answer{}, shard.AttemptCancelled, err
		}
		return r, shard.AttemptSucceeded, nil
	})
}

// DeleteUser deletes user id, their sessions and keys (an operator's
// request). Refusals: RefusedProtected (the system users 1–3),
// RefusedNoUser.
func (a *Accounts) DeleteUser(id shard.UserID) (Answer, error) {
	if id >= shard.SuperuserID && id <= shard.DummyUserID {
		return refused(RefusedProtected, shard.User{}), nil
	}
	u, found, err := a.user(id)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	r, err := a.remove(u)
	if r.Refusal == RefusedRaced {
		r.Refusal = RefusedNoUser
	}
	return r, err
}

// remove deletes a user, all their sessions and keys, and their index
// entries. When it returns, no session or key of the user passes a check.
func (a *Accounts) remove(u shard.User) (Answer, error) {
	_, err := askDurable[shard.User](a.core, DeleteUser{ID: u.ID})
	if errors.Is(err, shard.ErrUserNotFound) {
		return refused(RefusedRaced, u), nil
	}
	if err != nil {
		return Answer{}, err
	}
	// Its sessions and session-less API keys go at once, in one fan-out
	// (keys tied to a session die with it).
	if _, err := sumDurable(a.core, ForgetUser{ID: u.ID}); err != nil {
		return Answer{}, err
	}
	a.releaseKey(u.Email, u.ID)
	a.releaseKey(shard.SystemIDKey(u.SystemID), u.ID)
	a.log.Info("user deleted", "user", a.pii(u.ID))
	return Answer{User: u}, nil
}

// SetLock locks (ending every session and revoking every API key of the
// user) or unlocks a user by hand (docs/protocol.md, "Users"). It cancels a
// pending automatic unlock, and an unlock forgets the user's failed
// password checks. Refusals: RefusedProtected (the anonymous and locked
// system users), RefusedNoUser. The answer's User is the user after the
// change (or as it was, when it was already so).
func (a *Accounts) SetLock(id shard.UserID, lock bool) (Answer, error) {
	if id == shard.AnonymousID || id == shard.DummyUserID {
		return refused(RefusedProtected, shard.User{}), nil
	}
	var op Op = UnlockUser{ID: id}
	if lock {
		op = LockUser{ID: id}
	}
	changed := true
	u, err := a.editUser(op)
	if errors.Is(err, shard.ErrNoChange) {
		changed = false
		var found bool
		if u, found, err = a.user(id); err == nil && !found {
			err = shard.ErrUserNotFound
		}
	}
	if errors.Is(err, shard.ErrUserNotFound) {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	if err != nil {
		return Answer{}, err
	}
	if changed && lock {
		if _, err := a.EndSessions(id, nil); err != nil {
			return Answer{}, err
		}
		// A lock by hand also revokes every key (none has role "locked"), so
		// that keys do not come back with an unlock. (An automatic lock
		// does not: anyone can trigger one with wrong passwords; its keys
		// are refused while it lasts.)
		if _, err := a.RevokeKeysNotOfRole(id, "locked"); err != nil {
			return Answer{}, err
		}
	}
	if !lock {
		// Also for an account that was not locked: a superuser is never
		// locked, and an unlock is how an operator ends its refusal window.
		a.forgetFailures(u.Email)
	}
	if changed {
		action := "unlock"
		if lock {
			action = "lock"
		}
		a.log.Info("user lock toggled", "user", a.pii(id), "action", action)
	}
	return Answer{User: u}, nil
}

// RefusedEditValue: an edit with a value the record cannot take (an email
// that belongs to someone else, extra info too large to merge).
const RefusedEditValue Refusal = "edit value"

// EditUser applies an edit to a user record (a change of email claims the
// new address in the index first, so emails stay unique, and gives the old
// one back; a change of role revokes the user's API keys of other roles).
// Refusals: RefusedNoUser, RefusedEditValue. The answer's User is the user
// after the edit.
func (a *Accounts) EditUser(op EditUser) (Answer, error) {
	cur, found, err := a.user(op.ID)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	claimed := op.SetEmail && op.Email != cur.Email
	if claimed {
		_, ok, err := a.claimKey(op.Email, op.ID)
		if err != nil {
			return Answer{}, err
		}
		if !ok {
			return refused(RefusedEditValue, cur), nil // the address belongs to someone else
		}
	}
	res, err := askDurable[EditResult](a.core, op)
	if err != nil {
		if claimed {
			a.releaseKey(op.Email, op.ID)
		}
		switch {
		case errors.Is(err, ErrEditValue):
			return refused(RefusedEditValue, cur), nil
		case errors.Is(err, shard.ErrUserNotFound):
			return refused(RefusedNoUser, shard.User{}), nil
		}
		return Answer{}, err
	}
	if claimed {
		a.releaseKey(cur.Email, op.ID)
	}
	if res.User.Role != res.OldRole {
		if _, err := a.RevokeKeysNotOfRole(op.ID, res.User.Role); err != nil {
			return Answer{}, err
		}
	}
	return Answer{User: res.User}, nil
}
