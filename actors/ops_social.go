package actors

import (
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// Operations of social logins (docs/social.md): the states of logins in
// progress and the identities linked to users (shard/social.go).

// socialOps lists the operations of this file for the codec (ops.go).
var socialOps = []broadcastOp{
	PutSocialState{}, TakeSocialState{}, LookupIdentity{}, LinkIdentity{}, LinkNewIdentity{},
	UnlinkIdentity{}, ListIdentities{}, NewSocialUser{},
}

// PutSocialState stores the State of a login in progress under Digest, the
// digest of its state token. It answers nothing.
type PutSocialState struct {
	Digest shard.SessionDigest `json:"digest"`
	State  shard.SocialState   `json:"state"`
}

// Route implements Op.
func (o PutSocialState) Route() shard.Route { return shard.SocialStateRoute(o.Digest) }

func (o PutSocialState) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return nil, s.PutSocialState(o.Digest, o.State), nil
}

// TakeSocialState takes (reads and deletes) the state under Digest. It
// answers a [TakenState]: Found is false when there is none or it expired.
type TakeSocialState struct {
	Digest shard.SessionDigest `json:"digest"`
}

// TakenState is the answer to [TakeSocialState].
type TakenState struct {
	State shard.SocialState `json:"state"`
	Found bool              `json:"found"`
}

// Route implements Op.
func (o TakeSocialState) Route() shard.Route { return shard.SocialStateRoute(o.Digest) }

func (o TakeSocialState) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	st, ok, muts := s.TakeSocialState(o.Digest, now)
	return TakenState{State: st, Found: ok}, muts, nil
}

// LookupIdentity answers the [FoundIdentity] of (Provider, Subject).
type LookupIdentity struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
}

// FoundIdentity is an identity and whether it is linked.
type FoundIdentity struct {
	Identity shard.Identity `json:"identity"`
	Found    bool           `json:"found"`
}

// Route implements Op.
func (o LookupIdentity) Route() shard.Route { return shard.IdentityRoute(o.Provider, o.Subject) }

func (o LookupIdentity) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	id, ok := s.LookupIdentity(o.Provider, o.Subject)
	return FoundIdentity{Identity: id, Found: ok}, nil, nil
}

// LinkIdentity links Identity to its UserID unless the identity is linked
// already. It answers a [Link].
type LinkIdentity struct {
	Identity shard.Identity `json:"identity"`
}

// Link is the answer to [LinkIdentity] and [LinkNewIdentity]: the owner of
// the identity after the operation, and whether the operation linked it.
type Link struct {
	Owner  shard.UserID `json:"owner"`
	Linked bool         `json:"linked"`
}

// Route implements Op.
func (o LinkIdentity) Route() shard.Route {
	return shard.IdentityRoute(o.Identity.Provider, o.Identity.Subject)
}

func (o LinkIdentity) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	owner, linked, muts := s.LinkIdentity(o.Identity, now)
	return Link{Owner: owner, Linked: linked}, muts, nil
}

// LinkNewIdentity links (Provider, Subject) to a new user id, drawn from
// the core's counter in the identity shard's turn, unless the identity is
// linked already. It answers a [Link].
type LinkNewIdentity struct {
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
	Email    string `json:"email"`
}

// Route implements Op.
func (o LinkNewIdentity) Route() shard.Route { return shard.IdentityRoute(o.Provider, o.Subject) }

// apply is not used: the operation needs the core's id counter (applyCore).
func (o LinkNewIdentity) apply(*shard.Shard, time.Time) (any, []shard.Mutation, error) {
	return nil, nil, ErrShardBug
}

func (o LinkNewIdentity) applyCore(c *Core, s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	if cur, ok := s.LookupIdentity(o.Provider, o.Subject); ok {
		return Link{Owner: cur.UserID}, nil, nil
	}
	id, err := c.NextUserID()
	if err != nil {
		return nil, nil, err
	}
	owner, linked, muts := s.LinkIdentity(shard.Identity{Provider: o.Provider, Subject: o.Subject, UserID: id, Email: o.Email}, now)
	return Link{Owner: owner, Linked: linked}, muts, nil
}

// UnlinkIdentity removes (Provider, Subject) if UserID holds it; it
// answers whether it did (a bool).
type UnlinkIdentity struct {
	Provider string       `json:"provider"`
	Subject  string       `json:"subject"`
	UserID   shard.UserID `json:"user_id"`
}

// Route implements Op.
func (o UnlinkIdentity) Route() shard.Route { return shard.IdentityRoute(o.Provider, o.Subject) }

func (o UnlinkIdentity) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	ok, muts := s.UnlinkIdentity(o.Provider, o.Subject, o.UserID)
	return ok, muts, nil
}

// ListIdentities answers the identities of UserID on the shard
// ([]shard.Identity); it is sent to every shard ([AskAll]).
type ListIdentities struct {
	UserID shard.UserID `json:"user_id"`
}

func (o ListIdentities) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return s.UserIdentities(o.UserID), nil, nil
}

// NewSocialUser stores a new user made by a social login, with the id
// counter past its id (so a restart never hands the id out again). Its
// identity (and email, if any) must have been claimed for it first. It
// answers the stored user (a shard.User), or shard.ErrUserExists.
type NewSocialUser struct {
	User shard.User `json:"user"`
}

// Route implements Op.
func (o NewSocialUser) Route() shard.Route { return shard.UserRoute(o.User.ID) }

func (o NewSocialUser) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	user, muts, err := s.CreateUser(o.User, now)
	if err != nil {
		return nil, nil, err
	}
	return user, append(muts, shard.EncodeNextUserID(o.User.ID+1)), nil
}
