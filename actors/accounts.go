package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// The core's flows: the operations on accounts that span several shards or a
// password hash (docs/design.md, "The core's flows"). Each is one method of
// [Accounts]: one call from the front, one answer, and every step between
// (the email index, the user's shard, the session shards, the hasher pool,
// the brute-force back-off) taken here. A flow runs on its caller's
// goroutine, never inside a shard actor: it waits for the hasher and for
// shards, which a shard must not.

// Errors of the flows, answered by status (never an envelope).
var (
	// ErrBusy: the flow could not start in time (too many attempts in
	// flight on one account); the caller may retry.
	ErrBusy = errors.New("actors: busy, retry later")
	// ErrUnwritable: a change was made in memory but the store did not
	// commit it, so it is not acknowledged.
	ErrUnwritable = errors.New("actors: store refuses writes")
)

// Hasher is the Argon2 pool as the flows use it ([passhash.Hasher]).
type Hasher interface {
	Run(ops ...passhash.HashOp) ([]passhash.HashResult, error)
	DummyPHC() string
}

// AccountOptions configures the flows. Zero fields mean the defaults.
type AccountOptions struct {
	// LockTries is the count of failed password checks that locks an
	// account. Default 10.
	LockTries int
	// LockTime is how long an automatic lock lasts. Default 1 hour.
	LockTime time.Duration
	// Policy judges new passwords; ServerFQDN is the name a password must
	// not resemble.
	Policy     passpolicy.Policy
	ServerFQDN string
	// PII maps a piece of personal data (a user id) to what the logs show
	// (docs/security.md, "Logs"). Nil logs "-".
	PII func(string) string
	// Logger is the flows' logger. Nil means slog.Default().
	Logger *slog.Logger
	// NoBackoffDelay skips the delay of a failed attempt (tests of the
	// flows that count failures; the count and lock still apply).
	NoBackoffDelay bool
}

// Accounts runs the flows on accounts over a core and a hasher pool. It is
// safe for concurrent use.
type Accounts struct {
	core   *Core
	hasher Hasher
	opts   AccountOptions
	log    *slog.Logger
}

// NewAccounts returns the flows of core, hashing with hasher.
func NewAccounts(core *Core, hasher Hasher, opts AccountOptions) *Accounts {
	if opts.LockTries <= 0 {
		opts.LockTries = 10
	}
	if opts.LockTime <= 0 {
		opts.LockTime = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Accounts{core: core, hasher: hasher, opts: opts, log: opts.Logger}
}

// Core returns the core the flows run on.
func (a *Accounts) Core() *Core { return a.core }

// Options returns the flows' options with their defaults filled in.
func (a *Accounts) Options() AccountOptions { return a.opts }

// Refusal says why a flow declined; the empty Refusal is a success. The
// front words each one for its request type.
type Refusal string

// The refusals of the flows.
const (
	// RefusedLockedOut: the account is in its brute-force refusal window;
	// no password was verified.
	RefusedLockedOut Refusal = "locked out"
	// RefusedNoSession: the presented session does not exist (or does not
	// belong to the user named).
	RefusedNoSession Refusal = "no session"
	// RefusedNoUser: no user fits the request (no such email or id, or one
	// that may not do this).
	RefusedNoUser Refusal = "no user"
	// RefusedBadPassword: the password did not match.
	RefusedBadPassword Refusal = "bad password"
	// RefusedInactive: the password matched, but the account is inactive or
	// locked.
	RefusedInactive Refusal = "inactive"
	// RefusedSamePassword: a new password equal to the current one.
	RefusedSamePassword Refusal = "same password"
	// RefusedInsecure: the password policy refused the new password
	// (Answer.Policy says why).
	RefusedInsecure Refusal = "insecure"
	// RefusedRaced: the record changed or went while the flow ran (a
	// parallel change won).
	RefusedRaced Refusal = "raced"
	// RefusedProtected: the flow may not act on this account (a superuser
	// or a system user).
	RefusedProtected Refusal = "protected"
)

// Answer is what a flow answers.
type Answer struct {
	Refusal Refusal
	// User is the account the flow acted on, as it stands after the flow;
	// its ID is 0 when there is none.
	User shard.User
	// Policy holds the policy's messages of a refused password.
	Policy []string
	// Count is how many records a fan-out changed (sessions ended, keys
	// revoked).
	Count int
}

// OK reports whether the flow succeeded.
func (r Answer) OK() bool { return r.Refusal == "" }

func refused(why Refusal, u shard.User) Answer { return Answer{Refusal: why, User: u} }

func (a *Accounts) pii(v shard.UserID) string {
	if a.opts.PII == nil {
		return "-"
	}
	return a.opts.PII(fmt.Sprint(int64(v)))
}

// The steps the flows share: each is one named operation (or one fan-out)
// and, for a change, the wait until it is durable.

// durable waits for the write behind a result: nothing is acknowledged that
// is not committed.
func durable[R any](r Result[R]) error {
	if err := r.Durable(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnwritable, err)
	}
	return nil
}

// askDurable runs op and waits until its change is durable.
func askDurable[R any](c *Core, op Op) (R, error) {
	res, err := Ask[R](c, op)
	if err != nil {
		return res.Value, err
	}
	return res.Value, durable(res)
}

// sumDurable runs op on every shard, waits until every shard's change is
// durable, and returns the sum of their counts. When it returns nil, the
// change is complete in memory and on disk.
func sumDurable(c *Core, op broadcastOp) (int, error) {
	rs, err := AskAll[int](c, op)
	if err != nil {
		return 0, err
	}
	if err := WaitAll(rs); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnwritable, err)
	}
	n := 0
	for _, r := range rs {
		n += r.Value
	}
	return n, nil
}

// user reads one user; found is false when there is none.
func (a *Accounts) user(id shard.UserID) (u shard.User, found bool, err error) {
	res, err := Ask[shard.User](a.core, GetUser{ID: id})
	if errors.Is(err, shard.ErrUserNotFound) {
		return shard.User{}, false, nil
	}
	return res.Value, err == nil, err
}

// UserByEmail returns the user that owns email (any spelling: emails match
// case-insensitively, docs/protocol.md, "Users, emails and passwords").
// found is false when there is none, or when the index points at a user that
// no longer owns the address.
func (a *Accounts) UserByEmail(email string) (u shard.User, found bool, err error) {
	norm := passpolicy.NormalizeEmail(email)
	res, err := Ask[shard.UserID](a.core, LookupEmail{Email: norm})
	if errors.Is(err, shard.ErrUserNotFound) {
		return shard.User{}, false, nil
	}
	if err != nil {
		return shard.User{}, false, err
	}
	u, found, err = a.user(res.Value)
	if err != nil || !found || u.Email != norm {
		return shard.User{}, false, err
	}
	return u, true, nil
}

// session returns the live session with digest d.
func (a *Accounts) session(d shard.SessionDigest) (shard.Session, bool, error) {
	res, err := Ask[shard.Session](a.core, GetSession{Digest: d})
	if errors.Is(err, shard.ErrSessionNotFound) {
		return shard.Session{}, false, nil
	}
	return res.Value, err == nil, err
}

// endSession deletes one session and waits until that is durable.
func (a *Accounts) endSession(d shard.SessionDigest) (bool, error) {
	return askDurable[bool](a.core, DeleteSession{Digest: d})
}

// editUser runs an operation that edits one user record (it answers a
// shard.User) and waits until the edit is durable. shard.ErrNoChange is an
// edit the operation declined.
func (a *Accounts) editUser(op Op) (shard.User, error) {
	return askDurable[shard.User](a.core, op)
}

// EndSessions ends every session of uid on every shard, except keep (when
// not nil), and waits until that is durable. When it returns, no session of
// the user passes a check.
func (a *Accounts) EndSessions(uid shard.UserID, keep *shard.SessionDigest) (int, error) {
	op := DeleteUserSessions{UserID: uid}
	if keep != nil {
		op.Keep, op.KeepOne = *keep, true
	}
	return sumDurable(a.core, op)
}

// RevokeKeys deletes every API key of user uid issued for role ("": every
// role), of either kind, and waits until that is durable.
func (a *Accounts) RevokeKeys(uid shard.UserID, role string) (int, error) {
	return sumDurable(a.core, RevokeUserAPIKeys{UserID: uid, Role: role})
}

// RevokeKeysNotOfRole deletes every API key of user uid issued for a role
// other than role, and waits until that is durable. A role change calls it,
// and a lock by hand with role "locked" (so every key goes): a key carries
// the role it was issued for, and a demoted or locked user's keys must not
// keep the old role's rights, even if the old role comes back.
func (a *Accounts) RevokeKeysNotOfRole(uid shard.UserID, role string) (int, error) {
	return sumDurable(a.core, RevokeUserAPIKeysNotRole{UserID: uid, Role: role})
}

// claimKey claims key (a normalised email, or a system id key) for id in
// the index and waits until the claim is durable. It returns the current
// owner when someone else holds it.
func (a *Accounts) claimKey(key string, id shard.UserID) (owner shard.UserID, claimed bool, err error) {
	c, err := askDurable[Claim](a.core, ClaimEmail{Email: key, ID: id})
	return c.Owner, c.Claimed, err
}

// releaseKey releases a claim of id on key (best effort: a claim left
// behind by a failure is dropped at the next start when its user does not
// exist).
func (a *Accounts) releaseKey(key string, id shard.UserID) {
	if _, err := askDurable[any](a.core, ReleaseEmail{Email: key, ID: id}); err != nil {
		a.log.Warn("release index claim", "err", err)
	}
}

// verify checks password against phc, or against the pool's dummy hash
// when phc is empty (no such user), so that both cost one Argon2
// verification: response time does not tell whether an email exists.
func (a *Accounts) verify(phc, password string) (ok, needsRehash bool, err error) {
	real := phc != ""
	if !real {
		phc = a.hasher.DummyPHC()
	}
	rs, err := a.hasher.Run(passhash.HashOp{Verify: true, PHC: phc, Password: password})
	if err != nil {
		return false, false, err
	}
	if rs[0].Err != nil {
		if err := verifyFault(rs[0].Err); err != nil {
			return false, false, err // a hasher fault: not a wrong password
		}
		// A stored hash we cannot compute (e.g. argon2d) never matches.
		a.log.Warn("password verification failed", "err", rs[0].Err)
		return false, false, nil
	}
	return real && rs[0].OK, real && rs[0].NeedsRehash, nil
}

// verifyUser verifies password against u's hash when u may be checked,
// else against the dummy hash: one Argon2 verification either way.
func (a *Accounts) verifyUser(u *shard.User, checked bool, password string) (ok, needsRehash bool, err error) {
	if !checked {
		return a.verify("", password)
	}
	return a.verify(u.PasswordPHC, password)
}

// Hash hashes password with the pool's current parameters.
func (a *Accounts) Hash(password string) (string, error) {
	rs, err := a.hasher.Run(passhash.HashOp{Password: password})
	if err != nil {
		return "", err
	}
	if rs[0].Err != nil {
		return "", rs[0].Err
	}
	return rs[0].PHC, nil
}

// verifyFault sorts the error of one verification: nil when the stored
// hash is one this server cannot verify (it never matches), else the error
// itself, a fault of the hasher that is never a password failure.
func verifyFault(err error) error {
	if err == nil {
		return nil
	}
	// The hash worker process names these kinds in its replies, so the
	// sentinels survive the pipe (passhash/hashproc.go).
	for _, e := range [...]error{passhash.ErrPHCMalformed, passhash.ErrPHCOutOfBounds, passhash.ErrPHCUnsupported} {
		if errors.Is(err, e) {
			return nil
		}
	}
	return fmt.Errorf("actors: verify password: %w", err)
}

// inactiveOrLocked reports whether a user with a correct password must
// still be refused (docs/protocol.md, "Logins and password checks").
func inactiveOrLocked(u *shard.User) bool { return !u.IsActive || u.Role == "locked" }
