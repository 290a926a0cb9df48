package actors

import (
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// Operations on API keys and the access checks.
//
// A key travels only as the SHA-256 digest of its token (shard.DigestAPIKey)
// and is routed by it (shard.APIKeyRoute): the token itself never reaches
// the core. The flows that span shards or wait for a hash (issue with a
// fresh token, verify with the user and session checks, refresh) are in
// keys.go (docs/design.md, "The key flows").

// CheckUserStanding answers the [Standing] of user ID: whether it exists
// and is active, whether its role is Role, and whether its role is KeyRole.
// It never fails: a missing user has no standing. The access and API-key
// checks ask it instead of [GetUser] because a Standing is one byte, which
// boxes without allocating, where a copy of the whole record would cost
// allocations on their hot paths.
type CheckUserStanding struct {
	ID      shard.UserID `json:"id"`
	Role    string       `json:"role"`
	KeyRole string       `json:"key_role"`
}

// Standing is what [CheckUserStanding] found about a user: a set of the
// Standing flags.
type Standing uint8

// The flags of a Standing. The role flags compare exactly: an empty Role
// or KeyRole matches only a user whose role is empty.
const (
	StandingActive  Standing = 1 << iota // the user exists and is active
	StandingRole                         // the user exists and its role is Role
	StandingKeyRole                      // the user exists and its role is KeyRole
)

// Has reports whether every flag of f is set in st.
func (st Standing) Has(f Standing) bool { return st&f == f }

// Route implements Op.
func (o CheckUserStanding) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o CheckUserStanding) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	u, err := s.GetUser(o.ID)
	if err != nil {
		return Standing(0), nil, nil
	}
	return standingOf(&u, o.Role, o.KeyRole), nil, nil
}

// standingOf is the [Standing] of user u for role and keyRole.
func standingOf(u *shard.User, role, keyRole string) Standing {
	var st Standing
	if u.IsActive {
		st |= StandingActive
	}
	if u.Role == role {
		st |= StandingRole
	}
	if u.Role == keyRole {
		st |= StandingKeyRole
	}
	return st
}

// VerifyOwnAPIKey verifies, for its owner UserID acting with role
// ActorRole, the key of Kind with Digest (stored for UserID with KeyRole
// and inside its window), and finds the owner's [Standing] for ActorRole
// and KeyRole: a [VerifyAPIKey] and a [CheckUserStanding] in one message.
// The key's shard answers both when it holds the owner or a view of it
// (shard/userview.go, as the session check does); otherwise it forwards
// its verdict to the owner's shard ([OwnKeyStanding]). It answers a
// *[KeyVerdict] and never fails.
type VerifyOwnAPIKey struct {
	Kind      shard.APIKeyKind   `json:"kind"`
	Digest    shard.APIKeyDigest `json:"digest"`
	UserID    shard.UserID       `json:"user_id"`
	KeyRole   string             `json:"key_role"`
	ActorRole string             `json:"actor_role"`
}

// KeyVerdict is the answer to [VerifyOwnAPIKey] (a *KeyVerdict): the key
// when Valid, and the owner's standing (0 when the owner is gone).
type KeyVerdict struct {
	Key      shard.APIKey `json:"key"`
	Valid    bool         `json:"valid"`
	Standing Standing     `json:"standing"`
}

// keyVerdicts holds the answers of VerifyOwnAPIKey, as sessionInfos does
// those of session checks: a verdict is a few hundred bytes, and boxing one
// a verification was the largest allocation of the key path.
var keyVerdicts = sync.Pool{New: func() any { return new(KeyVerdict) }}

func newKeyVerdict(v KeyVerdict) *KeyVerdict {
	p := keyVerdicts.Get().(*KeyVerdict)
	*p = v
	return p
}

// takeKeyVerdict copies a pooled answer out and gives it back.
func takeKeyVerdict(p *KeyVerdict) KeyVerdict {
	v := *p
	*p = KeyVerdict{} // keeps nothing alive from the pool
	keyVerdicts.Put(p)
	return v
}

// Route implements Op.
func (o VerifyOwnAPIKey) Route() shard.Route { return shard.APIKeyRoute(o.Digest) }

func (o VerifyOwnAPIKey) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	k, err := s.VerifyAPIKey(o.Kind, o.Digest, o.UserID, o.KeyRole, now)
	v := KeyVerdict{Key: k, Valid: err == nil}
	if u, ok := s.UserView(o.UserID); ok {
		v.Standing = standingOf(&u, o.ActorRole, o.KeyRole)
		return newKeyVerdict(v), nil, nil
	}
	return Forward{Op: OwnKeyStanding{Verdict: v, UserID: o.UserID, ActorRole: o.ActorRole, KeyRole: o.KeyRole}}, nil, nil
}

// OwnKeyStanding completes a [VerifyOwnAPIKey] on the owner's shard: it
// adds the owner's standing to Verdict and answers it, and gives the key's
// shard a view of the owner.
type OwnKeyStanding struct {
	Verdict   KeyVerdict   `json:"verdict"`
	UserID    shard.UserID `json:"user_id"`
	ActorRole string       `json:"actor_role"`
	KeyRole   string       `json:"key_role"`
	// view asks for a view of the owner for the key's shard (filled in as
	// it is forwarded); it never travels between nodes.
	view viewAsk
}

// Route implements Op.
func (o OwnKeyStanding) Route() shard.Route { return shard.UserRoute(o.UserID) }

func (o OwnKeyStanding) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return o.answer(s.GetUser(o.UserID))
}

func (o OwnKeyStanding) applyCore(c *Core, s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return o.answer(c.watch(s, o.Route(), o.UserID, o.view))
}

func (o OwnKeyStanding) withView(v viewAsk) Op { o.view = v; return o }

// answer adds the owner's standing to the verdict (none when the owner is
// gone).
func (o OwnKeyStanding) answer(u shard.User, err error) (any, []shard.Mutation, error) {
	v := o.Verdict
	if err == nil {
		v.Standing = standingOf(&u, o.ActorRole, o.KeyRole)
	}
	return newKeyVerdict(v), nil, nil
}

// CountActiveUsers answers, on every shard it is sent to ([AskAll]), how
// many of IDs name an active user that the shard holds (an int). A user
// lives on one shard only, so the answers add up to len(IDs) exactly when
// every listed user exists and is active (an id listed twice counts twice).
// It never fails. The access check sends it for a long target_sharedwith
// list, rather than one [CheckUserStanding] per id.
type CountActiveUsers struct {
	IDs []shard.UserID `json:"ids"`
}

func (o CountActiveUsers) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	n := 0
	for _, id := range o.IDs {
		if u, err := s.GetUser(id); err == nil && u.IsActive {
			n++
		}
	}
	return n, nil, nil
}

// CreateAPIKey stores a new API key whose token has digest Digest, issued at
// the shard's now, and answers the stored key (a shard.APIKey). It fails
// with shard.ErrAPIKeyExists when the digest's index is taken (the caller
// draws a new token), or with an error for a key the store could not load
// again (no owner, role or, without a session, refresh hash).
type CreateAPIKey struct {
	Digest shard.APIKeyDigest `json:"digest"`
	Key    shard.NewAPIKey    `json:"key"`
}

// Route implements Op.
func (o CreateAPIKey) Route() shard.Route { return shard.APIKeyRoute(o.Digest) }

func (o CreateAPIKey) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.CreateAPIKey(o.Digest, o.Key, now)
}

// VerifyAPIKey answers the stored key of Kind with digest Digest (a
// shard.APIKey) if it belongs to user UserID with role Role and is inside
// its validity window; else it fails with shard.ErrAPIKeyInvalid. It does
// not look at a session-tied key's session, which lives on another shard:
// the caller asks [KeySessionLive] next.
type VerifyAPIKey struct {
	Kind   shard.APIKeyKind   `json:"kind"`
	Digest shard.APIKeyDigest `json:"digest"`
	UserID shard.UserID       `json:"user_id"`
	Role   string             `json:"role"`
}

// Route implements Op.
func (o VerifyAPIKey) Route() shard.Route { return shard.APIKeyRoute(o.Digest) }

func (o VerifyAPIKey) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	k, err := s.VerifyAPIKey(o.Kind, o.Digest, o.UserID, o.Role, now)
	return k, nil, err
}

// KeySessionLive answers whether the session with digest Session is live (a
// bool), for a session-tied API key, which is valid only while its session
// is. It never fails; an expired session met here leaves memory.
type KeySessionLive struct {
	Session shard.SessionDigest `json:"session"`
}

// Route implements Op.
func (o KeySessionLive) Route() shard.Route { return shard.SessionRoute(o.Session) }

func (o KeySessionLive) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	_, err := s.LookupSession(o.Session, now)
	return err == nil, nil, nil
}

// RefreshableAPIKey answers the stored no-session key with digest Digest (a
// shard.APIKey) if it belongs to user UserID with role Role and its refresh
// window is open (the key itself may have expired); else it fails with
// shard.ErrAPIKeyNoRefresh.
type RefreshableAPIKey struct {
	Digest shard.APIKeyDigest `json:"digest"`
	UserID shard.UserID       `json:"user_id"`
	Role   string             `json:"role"`
}

// Route implements Op.
func (o RefreshableAPIKey) Route() shard.Route { return shard.APIKeyRoute(o.Digest) }

func (o RefreshableAPIKey) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	k, err := s.RefreshableAPIKey(o.Digest, o.UserID, o.Role, now)
	return k, nil, err
}

// RevokeAPIKey deletes the key of Kind with digest Digest if it belongs to
// user UserID with role Role, expired or not, and answers whether it did (a
// bool). When RefreshPHC is not empty the stored refresh hash must equal it
// too, so of two concurrent refreshes with one token exactly one revokes
// the old key. It never fails.
type RevokeAPIKey struct {
	Kind       shard.APIKeyKind   `json:"kind"`
	Digest     shard.APIKeyDigest `json:"digest"`
	UserID     shard.UserID       `json:"user_id"`
	Role       string             `json:"role"`
	RefreshPHC string             `json:"refresh_phc,omitempty"`
}

// Route implements Op.
func (o RevokeAPIKey) Route() shard.Route { return shard.APIKeyRoute(o.Digest) }

func (o RevokeAPIKey) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	ok, muts := s.RevokeAPIKey(o.Kind, o.Digest, o.UserID, o.Role, o.RefreshPHC)
	return ok, muts, nil
}

// DeleteAPIKey deletes the key of Kind with digest Digest whatever its
// owner: a session-tied key found without its session, or a new key whose
// refresh lost a race. It answers nothing and never fails.
type DeleteAPIKey struct {
	Kind   shard.APIKeyKind   `json:"kind"`
	Digest shard.APIKeyDigest `json:"digest"`
}

// Route implements Op.
func (o DeleteAPIKey) Route() shard.Route { return shard.APIKeyRoute(o.Digest) }

func (o DeleteAPIKey) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return nil, s.DeleteAPIKey(o.Kind, o.Digest), nil
}

// RevokeUserAPIKeys deletes, on every shard it is sent to ([AskAll]), the
// no-session keys of user UserID issued for role Role (any role when Role
// is empty), and answers how many that shard deleted (an int). It never
// fails. apikey-revokeall-nosession sends it.
type RevokeUserAPIKeys struct {
	UserID shard.UserID `json:"user_id"`
	Role   string       `json:"role"`
}

func (o RevokeUserAPIKeys) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	n, muts := s.RevokeUserAPIKeys(o.UserID, o.Role)
	return n, muts, nil
}

// RevokeUserAPIKeysNotRole deletes, on every shard it is sent to
// ([AskAll]), the keys of either kind of user UserID issued for a role
// other than Role, and answers how many that shard deleted (an int). It
// never fails. A role change sends it, and a lock with Role "locked", so
// that a key does not keep the rights of a role its owner no longer has.
type RevokeUserAPIKeysNotRole struct {
	UserID shard.UserID `json:"user_id"`
	Role   string       `json:"role"`
}

func (o RevokeUserAPIKeysNotRole) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	n, muts := s.RevokeUserAPIKeysNotRole(o.UserID, o.Role)
	return n, muts, nil
}

// apiKeyOps lists the operations of this file for the codec (ops.go).
var apiKeyOps = []broadcastOp{
	CheckUserStanding{}, CountActiveUsers{}, CreateAPIKey{}, VerifyAPIKey{}, VerifyOwnAPIKey{}, OwnKeyStanding{}, KeySessionLive{},
	RefreshableAPIKey{}, RevokeAPIKey{}, DeleteAPIKey{}, RevokeUserAPIKeys{}, RevokeUserAPIKeysNotRole{},
}
