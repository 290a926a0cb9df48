package httpfront

import (
	"errors"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

// Helpers shared by the session and user requests: single lookups of the
// core; the flows that span shards are the core's (actors.Accounts).

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
