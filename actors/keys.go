package actors

import (
	"cmp"
	"errors"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// The API-key flows (docs/design.md, "The key flows"; docs/protocol.md,
// "API keys"): verify, revoke, revoke-all, new session-tied key, new
// no-session key and refresh. Each request is one call of [Keys]; the
// permission decision (policy, then the acting user's and the owner's
// standing), the key's shard, the session of a session-tied key, the
// hasher pool and the per-user cap are all taken here. The front decodes
// the request (the claims, the lifetimes) and words the answer.

// The refusals of the key flows (besides RefusedNoSession, the session of
// a new session-tied key that does not exist).
const (
	// RefusedNotAllowed: the permission model or the users' standing
	// refuses the action (for a refresh: the revocation of the old key).
	RefusedNotAllowed Refusal = "not allowed"
	// RefusedNotAllowedNew: a refresh whose new key the acting user may
	// not issue.
	RefusedNotAllowedNew Refusal = "not allowed to issue"
	// RefusedKeyInvalid: the key is not stored for its claims, is outside
	// its window, its owner no longer has its role, or its session ended.
	RefusedKeyInvalid Refusal = "invalid key"
	// RefusedLifetime: a lifetime or not-before offset is out of range.
	RefusedLifetime Refusal = "bad lifetime"
	// RefusedSessionMismatch: the session of a new session-tied key is not
	// the acting user's, from this address and agent, with this role.
	RefusedSessionMismatch Refusal = "session mismatch"
	// RefusedNoRefresh: no stored no-session key with an open refresh
	// window fits the claims.
	RefusedNoRefresh Refusal = "no refresh"
	// RefusedBadRefresh: the refresh token does not match the stored hash.
	RefusedBadRefresh Refusal = "bad refresh token"
)

// errNoHash: the hasher reported neither a hash nor an error.
var errNoHash = errors.New("actors: hasher made no hash")

// KeyOptions configures the key flows. Zero fields mean the defaults.
type KeyOptions struct {
	// Permissions is the permission model. Nil: perm.Default().
	Permissions *perm.Model
	// MaxKeysPerUser bounds the live API keys of each kind of one user;
	// past it the oldest are deleted. 0: DefaultMaxOwned; negative: no
	// bound.
	MaxKeysPerUser int
}

// Keys runs the API-key flows over the core and hasher of an [Accounts].
// It is safe for concurrent use.
type Keys struct {
	a       *Accounts
	core    *Core
	perms   *perm.Model
	maxKeys int
}

// NewKeys returns the key flows over a's core and hasher.
func NewKeys(a *Accounts, opts KeyOptions) *Keys {
	if opts.Permissions == nil {
		opts.Permissions = perm.Default()
	}
	if opts.MaxKeysPerUser == 0 {
		opts.MaxKeysPerUser = DefaultMaxOwned
	}
	return &Keys{a: a, core: a.core, perms: opts.Permissions, maxKeys: opts.MaxKeysPerUser}
}

// PresentedKey is an API key as a request presents it: the claims uid, tkn
// and rol, decoded by the front. The token never goes further than this
// package's digest of it.
type PresentedKey struct {
	Owner shard.UserID // uid
	Token string       // tkn
	Role  string       // rol
	// OwnerOK: uid is an integer that fits. TokenOK: tkn and rol are
	// strings, rol is not empty and tkn has the form of the tokens issued.
	OwnerOK, TokenOK bool
}

// KeyAnswer is what a key flow answers.
type KeyAnswer struct {
	Refusal Refusal
	// Key is the verified key, or the new one.
	Key shard.APIKey
	// Token and RefreshToken are the new key's token and, for a no-session
	// key, its refresh token: they are handed out once and only their
	// digest and hash are kept.
	Token, RefreshToken string
	// Count is how many keys revoke-all revoked.
	Count int
}

// OK reports whether the flow succeeded.
func (r KeyAnswer) OK() bool { return r.Refusal == "" }

func keyRefused(why Refusal) KeyAnswer { return KeyAnswer{Refusal: why} }

// Lifetimes are the validity window of a new key, as offsets from its issue
// time; the refresh fields are for a no-session key. OK is false when the
// request's values are out of range: the flow answers RefusedLifetime, but
// only where the request would have got that far.
type Lifetimes struct {
	Lifetime, NotBefore               time.Duration
	RefreshLifetime, RefreshNotBefore time.Duration
	OK                                bool
}

// NewKeyRequest asks for a session-tied key of the user Actor with Role,
// tied to the session with digest Session, which must be the actor's, with
// this IPAddress, UserAgent and role.
type NewKeyRequest struct {
	Actor                shard.UserID
	Role                 string
	Session              shard.SessionDigest
	IPAddress, UserAgent string
	Lifetimes            Lifetimes
}

// RefreshRequest asks to replace the no-session key Key by a new one with
// Lifetimes, proving it with RefreshToken (empty when it is not of the
// form issued: it cannot match and costs no hashing).
type RefreshRequest struct {
	Actor        shard.UserID
	Role         string
	Key          PresentedKey
	RefreshToken string
	Lifetimes    Lifetimes
}

// VerifyKey checks that the key of kind presented is valid for its claims
// and that the acting user (actor with role) may view it: the policy, the
// acting user and the owner active (the acting user with role), the key
// stored for uid/rol and inside its window, its owner still active with
// rol, and, for a session-tied key, its session live. A session-tied key
// found without its session is deleted. The answer's Key is the key; the
// refusals are RefusedNotAllowed and RefusedKeyInvalid.
func (k *Keys) VerifyKey(kind shard.APIKeyKind, actor shard.UserID, role string, key *PresentedKey) (KeyAnswer, error) {
	allowed, found, valid, err := k.verifyClaims(kind, actor, role, key, "view")
	switch {
	case err != nil:
		return KeyAnswer{}, err
	case !allowed:
		return keyRefused(RefusedNotAllowed), nil
	case !valid:
		return keyRefused(RefusedKeyInvalid), nil
	}
	return KeyAnswer{Key: found}, nil
}

// RevokeKey deletes the key of kind presented if the acting user may delete
// its owner's keys, and waits until that is durable. The refusals are
// RefusedNotAllowed and RefusedKeyInvalid (no such key: nothing revoked).
func (k *Keys) RevokeKey(kind shard.APIKeyKind, actor shard.UserID, role string, key *PresentedKey) (KeyAnswer, error) {
	if !key.OwnerOK {
		return keyRefused(RefusedNotAllowed), nil
	}
	allowed, err := k.allowed(actor, role, "delete", key.Owner)
	if err != nil {
		return KeyAnswer{}, err
	}
	if !allowed {
		return keyRefused(RefusedNotAllowed), nil
	}
	if !key.TokenOK {
		return keyRefused(RefusedKeyInvalid), nil
	}
	revoked, err := k.revoke(kind, key, "")
	if err != nil {
		return KeyAnswer{}, err
	}
	if !revoked {
		return keyRefused(RefusedKeyInvalid), nil
	}
	return KeyAnswer{}, nil
}

// RevokeAllKeys revokes every no-session key of the presented key's owner
// issued for its role, on every shard, once the presented no-session key
// verifies (as [Keys.VerifyKey], for action "delete"), and waits until that
// is durable. The answer's Count is how many went; the refusals are those
// of VerifyKey.
func (k *Keys) RevokeAllKeys(actor shard.UserID, role string, key *PresentedKey) (KeyAnswer, error) {
	allowed, _, valid, err := k.verifyClaims(shard.KeyNoSession, actor, role, key, "delete")
	switch {
	case err != nil:
		return KeyAnswer{}, err
	case !allowed:
		return keyRefused(RefusedNotAllowed), nil
	case !valid:
		return keyRefused(RefusedKeyInvalid), nil
	}
	n, err := k.a.RevokeKeys(key.Owner, key.Role)
	if err != nil {
		return KeyAnswer{}, err
	}
	return KeyAnswer{Count: n}, nil
}

// NewKey issues a session-tied key to the acting user, then applies the
// per-user cap. The refusals, in the order they are checked, are
// RefusedNotAllowed, RefusedLifetime, RefusedNoSession and
// RefusedSessionMismatch. The answer's Key and Token are the new key's.
func (k *Keys) NewKey(req *NewKeyRequest) (KeyAnswer, error) {
	allowed, err := k.allowed(req.Actor, req.Role, "create", req.Actor)
	if err != nil {
		return KeyAnswer{}, err
	}
	if !allowed {
		return keyRefused(RefusedNotAllowed), nil
	}
	if !req.Lifetimes.OK {
		return keyRefused(RefusedLifetime), nil
	}
	info, err := CheckSession(k.core, req.Session)
	if errors.Is(err, shard.ErrSessionNotFound) {
		return keyRefused(RefusedNoSession), nil
	}
	if err != nil {
		return KeyAnswer{}, err
	}
	if info.Session.UserID != req.Actor || info.Session.IPAddress != req.IPAddress ||
		info.Session.UserAgent != req.UserAgent || info.User.Role != req.Role {
		return keyRefused(RefusedSessionMismatch), nil
	}
	tkn, key, err := k.issue(shard.NewAPIKey{
		Kind: shard.KeySession, UserID: req.Actor, Role: req.Role,
		Lifetime: req.Lifetimes.Lifetime, NotBefore: req.Lifetimes.NotBefore,
		Session: req.Session, SessionExpires: info.Session.Expires,
	})
	if err != nil {
		return KeyAnswer{}, err
	}
	if err := k.capKeys(req.Actor, &key); err != nil {
		return KeyAnswer{}, err
	}
	return KeyAnswer{Key: key, Token: tkn}, nil
}

// NewNoSessionKey issues a no-session key to the acting user, with a new
// refresh token whose Argon2id hash is kept (docs/protocol.md, "API
// keys"), then applies the per-user cap. The refusals are
// RefusedNotAllowed and RefusedLifetime. The answer's Key, Token and
// RefreshToken are the new key's.
func (k *Keys) NewNoSessionKey(actor shard.UserID, role string, life *Lifetimes) (KeyAnswer, error) {
	allowed, err := k.allowed(actor, role, "create", actor)
	if err != nil {
		return KeyAnswer{}, err
	}
	if !allowed {
		return keyRefused(RefusedNotAllowed), nil
	}
	ans, err := k.noSessionKey(actor, role, life)
	if err != nil || !ans.OK() {
		return ans, err
	}
	if err := k.capKeys(actor, &ans.Key); err != nil {
		return KeyAnswer{}, err
	}
	return ans, nil
}

// RefreshKey replaces a no-session key whose refresh window is open by a
// new one, for the holder of its refresh token. The refusals, in the order
// they are checked, are RefusedNoRefresh, RefusedBadRefresh,
// RefusedNotAllowed (the old key's revocation, also when a concurrent
// refresh revoked it first), RefusedNotAllowedNew and RefusedLifetime. The
// refresh token is single use: the old key and its refresh hash go when the
// new key is issued.
func (k *Keys) RefreshKey(req *RefreshRequest) (KeyAnswer, error) {
	cl := &req.Key
	if !cl.OwnerOK || !cl.TokenOK {
		return keyRefused(RefusedNoRefresh), nil
	}
	// Step 1: the stored key with an open refresh window.
	found, err := Ask[shard.APIKey](k.core, RefreshableAPIKey{
		Digest: shard.DigestAPIKey(cl.Token), UserID: cl.Owner, Role: cl.Role,
	})
	if errors.Is(err, shard.ErrAPIKeyNoRefresh) {
		return keyRefused(RefusedNoRefresh), nil
	}
	if err != nil {
		return KeyAnswer{}, err
	}
	old := found.Value
	// Step 2: the refresh token against its Argon2id hash.
	if req.RefreshToken == "" {
		return keyRefused(RefusedBadRefresh), nil
	}
	hs, err := k.a.hasher.Run(passhash.HashOp{Verify: true, PHC: old.RefreshPHC, Password: req.RefreshToken})
	if err != nil {
		return KeyAnswer{}, err
	}
	if !hs[0].OK {
		return keyRefused(RefusedBadRefresh), nil
	}
	// Steps 3–4. Both permissions are checked before anything changes, so a
	// refused refresh leaves the old key in place (the reference revokes it
	// first and may then refuse the new one).
	allowed, err := k.allowed(req.Actor, req.Role, "delete", cl.Owner)
	if err != nil {
		return KeyAnswer{}, err
	}
	if !allowed {
		return keyRefused(RefusedNotAllowed), nil
	}
	if !k.policy(req.Actor, req.Role, "create", req.Actor) {
		return keyRefused(RefusedNotAllowedNew), nil
	}
	// Issue first, then revoke: a crash in between leaves two keys rather
	// than none. The revocation is conditional on the refresh hash just
	// verified, so of two concurrent refreshes exactly one keeps its new key.
	ans, err := k.noSessionKey(req.Actor, req.Role, &req.Lifetimes)
	if err != nil || !ans.OK() {
		return ans, err
	}
	revoked, err := k.revoke(shard.KeyNoSession, cl, old.RefreshPHC)
	if err != nil || !revoked {
		_, derr := askDurable[any](k.core, DeleteAPIKey{Kind: shard.KeyNoSession, Digest: ans.Key.Digest})
		if err == nil {
			err = derr
		}
		if err != nil {
			return KeyAnswer{}, err
		}
		return keyRefused(RefusedNotAllowed), nil
	}
	// The cap is applied only now that the old key is gone, so that a user
	// at the cap can refresh its oldest key. Its failure does not fail the
	// refresh, which would lose the caller's only key; the count stays
	// above the cap, so the next new key recounts.
	if err := k.capKeys(req.Actor, &ans.Key); err != nil {
		k.a.log.Warn("API key cap after a refresh", "err", err)
	}
	return ans, nil
}

// The steps of the key flows.

// policy is the policy half of the user-check-access evaluation for API
// keys (docs/protocol.md, "API keys"): may user uid with role do action to
// the private API key of owner? An unknown role is a refusal.
func (k *Keys) policy(uid shard.UserID, role, action string, owner shard.UserID) bool {
	ok, err := k.perms.CheckAccess(perm.AccessQuery{
		UserID: int64(uid), Role: role, Action: action, Target: "apikey", Owner: int64(owner), Visibility: "private",
	})
	return err == nil && ok
}

// allowed is the whole permission check: the policy, then the users.
func (k *Keys) allowed(uid shard.UserID, role, action string, owner shard.UserID) (bool, error) {
	if !k.policy(uid, role, action, owner) {
		return false, nil
	}
	return k.usersValid(uid, role, owner)
}

// usersValid is the users' half (as user-check-access checks them): the
// acting user exists, is active and has role; the owner exists and is
// active. The two lookups run at once when the owner is someone else.
func (k *Keys) usersValid(uid shard.UserID, role string, owner shard.UserID) (bool, error) {
	pa := k.core.sendOp(CheckUserStanding{ID: uid, Role: role})
	if owner == uid {
		st, err := awaitOp[Standing](k.core, pa)
		return activeAs(st.Value, role), err
	}
	po := k.core.sendOp(CheckUserStanding{ID: owner})
	a, errA := awaitOp[Standing](k.core, pa)
	o, errO := awaitOp[Standing](k.core, po)
	if errA != nil {
		return false, errA
	}
	return activeAs(a.Value, role) && activeAs(o.Value, ""), errO
}

// activeAs reports whether st, asked with role, is of a user that exists,
// is active and, unless role is "", has that role.
func activeAs(st Standing, role string) bool {
	return st.Has(StandingActive) && (role == "" || st.Has(StandingRole))
}

// verifyClaims is the validity check of verify and revoke-all: the key of
// kind named by cl is stored for uid/rol, inside its window and, if
// session-tied, its session is live; and the permission (action on
// cl.Owner by the acting user). An owner with their own key is one message
// ([VerifyOwnAPIKey]); otherwise the standing of both users and the key are
// asked at once: three shard hops cost the latency of one. A key whose owner's role has changed since it
// was issued, or whose owner is locked (role "locked", inactive), does not
// verify; a role change also revokes the owner's keys of other roles
// ([Accounts.RevokeKeysNotOfRole]), so that they do not come back.
func (k *Keys) verifyClaims(kind shard.APIKeyKind, uid shard.UserID, role string, cl *PresentedKey, action string) (allowed bool, key shard.APIKey, valid bool, err error) {
	if !cl.OwnerOK || !k.policy(uid, role, action, cl.Owner) {
		return false, key, false, nil
	}
	if !cl.TokenOK {
		allowed, err = k.usersValid(uid, role, cl.Owner)
		return allowed, key, false, err
	}
	c := k.core
	const activeKeyRole = StandingActive | StandingKeyRole
	if cl.Owner == uid {
		// The common case, an owner with their own key: one message.
		res, err := Ask[*KeyVerdict](c, VerifyOwnAPIKey{Kind: kind, Digest: shard.DigestAPIKey(cl.Token), UserID: uid, KeyRole: cl.Role, ActorRole: role})
		if err != nil || res.Value == nil {
			return false, key, false, cmp.Or(err, ErrShardBug)
		}
		verdict := takeKeyVerdict(res.Value)
		v := &verdict
		allowed = activeAs(v.Standing, role)
		if !v.Valid || !allowed || !v.Standing.Has(activeKeyRole) {
			return allowed, v.Key, false, nil
		}
		return k.keyLive(kind, allowed, v.Key)
	}
	pk := c.sendOp(VerifyAPIKey{Kind: kind, Digest: shard.DigestAPIKey(cl.Token), UserID: cl.Owner, Role: cl.Role})
	pa := c.sendOp(CheckUserStanding{ID: uid, Role: role})
	po := c.sendOp(CheckUserStanding{ID: cl.Owner, KeyRole: cl.Role})
	a, errA := awaitOp[Standing](c, pa)
	o, errO := awaitOp[Standing](c, po)
	errU := cmp.Or(errA, errO)
	allowed = errU == nil && activeAs(a.Value, role) && o.Value.Has(StandingActive)
	ownerHasRole := o.Value.Has(activeKeyRole)
	kr, errK := awaitOp[shard.APIKey](c, pk)
	key = kr.Value
	if errU != nil {
		return false, key, false, errU
	}
	if errors.Is(errK, shard.ErrAPIKeyInvalid) || !allowed || !ownerHasRole {
		return allowed, key, false, nil
	}
	if errK != nil {
		return allowed, key, false, errK
	}
	return k.keyLive(kind, allowed, key)
}

// keyLive ends verifyClaims for a key found valid: a session-tied key is
// valid only while its session is live.
func (k *Keys) keyLive(kind shard.APIKeyKind, allowed bool, key shard.APIKey) (bool, shard.APIKey, bool, error) {
	if kind == shard.KeySession {
		live, err := k.sessionLive(&key)
		return allowed, key, live, err
	}
	return allowed, key, true, nil
}

// sessionLive reports whether the session of a session-tied key is live.
// The Python server's foreign-key cascade (ending a session removes its
// keys) cannot be one transaction here, as key and session live on
// different shards; a key is therefore valid only while its session is, and
// a key found without its session is deleted on the spot.
func (k *Keys) sessionLive(key *shard.APIKey) (bool, error) {
	res, err := Ask[bool](k.core, KeySessionLive{Session: key.Session})
	if err != nil || res.Value {
		return res.Value, err
	}
	// Best effort: the sweep deletes it later anyway, so neither an error
	// nor durability is waited for.
	_, _ = Ask[struct{}](k.core, DeleteAPIKey{Kind: shard.KeySession, Digest: key.Digest})
	return false, nil
}

// revoke deletes the key named by cl (and, for a refresh, only if its
// refresh hash is refreshPHC) and waits until the deletion is durable. The
// key stops verifying as soon as the shard has run the deletion.
func (k *Keys) revoke(kind shard.APIKeyKind, cl *PresentedKey, refreshPHC string) (bool, error) {
	return askDurable[bool](k.core, RevokeAPIKey{
		Kind: kind, Digest: shard.DigestAPIKey(cl.Token), UserID: cl.Owner, Role: cl.Role, RefreshPHC: refreshPHC,
	})
}

// issue draws a key token and stores the key, retrying on the (2^-128)
// chance that its digest index is taken, and waits until it is durable.
func (k *Keys) issue(n shard.NewAPIKey) (tkn string, key shard.APIKey, err error) {
	for range 3 {
		tkn, err = wire.RandomToken(32)
		if err != nil {
			return "", key, err
		}
		key, err = askDurable[shard.APIKey](k.core, CreateAPIKey{Digest: shard.DigestAPIKey(tkn), Key: n})
		if errors.Is(err, shard.ErrAPIKeyExists) {
			continue
		}
		if err != nil {
			return "", shard.APIKey{}, err
		}
		return tkn, key, nil
	}
	return "", shard.APIKey{}, shard.ErrAPIKeyExists
}

// noSessionKey is the issue half of a new no-session key and of a refresh:
// a new refresh token hashed with Argon2id through the pool, and the key. It
// checks no permission and applies no cap.
func (k *Keys) noSessionKey(uid shard.UserID, role string, life *Lifetimes) (KeyAnswer, error) {
	if !life.OK {
		return keyRefused(RefusedLifetime), nil
	}
	rt, err := wire.RandomToken(32)
	if err != nil {
		return KeyAnswer{}, err
	}
	hs, err := k.a.hasher.Run(passhash.HashOp{Password: rt})
	if err != nil {
		return KeyAnswer{}, err
	}
	if err := hs[0].Err; err != nil || !hs[0].OK {
		return KeyAnswer{}, cmp.Or(err, errNoHash)
	}
	tkn, key, err := k.issue(shard.NewAPIKey{
		Kind: shard.KeyNoSession, UserID: uid, Role: role,
		Lifetime: life.Lifetime, NotBefore: life.NotBefore,
		RefreshPHC: hs[0].PHC, RefreshLifetime: life.RefreshLifetime, RefreshNotBefore: life.RefreshNotBefore,
	})
	if err != nil {
		return KeyAnswer{}, err
	}
	return KeyAnswer{Key: key, Token: tkn, RefreshToken: rt}, nil
}

// capKeys applies the per-user cap of key's kind to uid, never deleting
// key.
func (k *Keys) capKeys(uid shard.UserID, key *shard.APIKey) error {
	return k.a.CapOwned(uid, shard.OwnedItem{Created: key.Issued, Key: key.Digest, KeyKind: key.Kind, IsAPIKey: true}, k.maxKeys)
}
