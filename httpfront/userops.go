package httpfront

import (
	"errors"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// Helpers shared by the user requests: lookups across the email and user
// shards, and password hashing through the pool.

// lookupEmail returns the id of the user that owns email (normalised here:
// emails match case-insensitively everywhere: docs/protocol.md, "Users,
// emails and passwords").
func lookupEmail(s *Server, email string) (shard.UserID, bool, error) {
	norm := passpolicy.NormalizeEmail(email)
	res, err := actors.Ask[shard.UserID](s.deps.Core, actors.LookupEmail{Email: norm})
	if errors.Is(err, shard.ErrUserNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return res.Value, true, nil
}

// userByEmail returns the user that owns email. found is false when there
// is none (or the index points at a user that no longer owns the address).
func userByEmail(s *Server, email string) (u shard.User, found bool, err error) {
	id, ok, err := lookupEmail(s, email)
	if err != nil || !ok {
		return shard.User{}, false, err
	}
	u, err = getUser(s, id)
	if errors.Is(err, shard.ErrUserNotFound) {
		return shard.User{}, false, nil
	}
	if err != nil {
		return shard.User{}, false, err
	}
	if u.Email != passpolicy.NormalizeEmail(email) {
		return shard.User{}, false, nil
	}
	return u, true, nil
}

// hashPassword hashes password with the current parameters.
func hashPassword(s *Server, password string) (string, error) {
	rs, err := s.deps.Hasher.Run(passhash.HashOp{Password: password})
	if err != nil {
		return "", err
	}
	if rs[0].Err != nil {
		return "", rs[0].Err
	}
	return rs[0].PHC, nil
}

// lookupSession returns the live session with token, without its user.
func lookupSession(s *Server, token string) (shard.Session, bool, error) {
	d := shard.DigestSession(token)
	res, err := actors.Ask[shard.Session](s.deps.Core, actors.GetSession{Digest: d})
	if errors.Is(err, shard.ErrSessionNotFound) {
		return shard.Session{}, false, nil
	}
	return res.Value, err == nil, err
}

// deleteSession deletes one session and waits until that is durable.
func deleteSession(s *Server, token string) (bool, error) {
	d := shard.DigestSession(token)
	res, err := actors.Ask[bool](s.deps.Core, actors.DeleteSession{Digest: d})
	if err != nil {
		return false, err
	}
	if err := durable(res); err != nil {
		return false, err
	}
	return res.Value, nil
}

// claimKey claims key (a normalised email, or a system id key) for id in
// the index and waits until the claim is durable. It returns the current
// owner when someone else holds it.
func claimKey(s *Server, key string, id shard.UserID) (owner shard.UserID, claimed bool, err error) {
	res, err := actors.Ask[actors.Claim](s.deps.Core, actors.ClaimEmail{Email: key, ID: id})
	if err != nil {
		return 0, false, err
	}
	if err := durable(res); err != nil {
		return 0, false, err
	}
	return res.Value.Owner, res.Value.Claimed, nil
}

// releaseKey releases a claim made by claimKey (best effort: a claim left
// behind by a failure is dropped at the next start when its user does not
// exist).
func releaseKey(s *Server, key string, id shard.UserID) {
	res, err := actors.Ask[any](s.deps.Core, actors.ReleaseEmail{Email: key, ID: id})
	if err == nil {
		err = res.Durable()
	}
	if err != nil {
		s.log.Warn("release index claim", "err", err)
	}
}

// systemIDKey is the index key of a client-chosen system id. It shares the
// email index (a NUL byte never starts a normalised email), so a system id is
// unique by the same one-actor rule as an email.
func systemIDKey(id string) string { return "\x00sid:" + id }
