package httpfront

import (
	"bytes"
	"sort"
	"strconv"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

// Per-user caps on live sessions and on live API keys of each kind (one
// user could hold any number, sessions with up to 64 KiB of extra info
// each). The user's shard keeps an
// upper bound of each count (shard/user.go); only when that passes the cap,
// or is unknown since start, is the user's whole set counted, by a fan-out
// over every shard, and the oldest deleted. A user below the cap pays one
// hop to its own shard per new session or key; a session check pays
// nothing.

// defaultMaxOwned is the default cap of sessions, and of API keys of each
// kind, per user.
// A person has a session per browser or device and a key per script or
// integration: a few, rarely tens. 100 is far above that, yet bounds what
// one account can make the server hold (100 sessions of at most 64 KiB
// extra info each: about 6 MiB).
const defaultMaxOwned = 100

func (e *usersExt) maxOwned(kind shard.OwnedKind) int {
	n := e.opts.MaxSessionsPerUser
	if kind != shard.OwnedSessions {
		n = e.opts.MaxAPIKeysPerUser
	}
	if n == 0 {
		return defaultMaxOwned
	}
	return n
}

// capOwned counts a new session or key (keep, which is never deleted) of
// user uid and, when the user has more than the cap of its kind (sessions,
// session-tied keys, no-session keys), deletes the oldest of that kind and
// waits until the deletions are durable. When it returns nil, uid holds no
// more than the cap (unless other creations raced with it; each of them
// enforces the cap in turn).
func capOwned(s *Server, uid shard.UserID, keep shard.OwnedItem) error {
	kind := shard.OwnedSessions
	if keep.IsAPIKey {
		kind = shard.OwnedKeys(keep.KeyKind)
	}
	limit := s.ext.users.maxOwned(kind)
	if limit < 0 || (kind == shard.OwnedSessions && uid == shard.AnonymousID) {
		return nil
	}
	core := s.deps.Core
	note, err := actors.Ask[actors.OwnedNote](core, actors.NoteOwned{UserID: uid, Kind: kind, Limit: limit})
	if err != nil || !note.Value.Recount {
		return err
	}
	rs, err := actors.AskAll[[]shard.OwnedItem](core, actors.ListOwned{UserID: uid, Kind: kind})
	if err != nil {
		return err
	}
	var items []shard.OwnedItem
	for _, r := range rs {
		items = append(items, r.Value...)
	}
	victims := oldestBeyond(items, limit, keep)
	dels := make([]actors.Result[any], 0, len(victims))
	for _, v := range victims {
		res, err := actors.Ask[any](core, actors.DeleteOwned{Item: v})
		if err != nil {
			return err
		}
		dels = append(dels, res)
	}
	if err := actors.WaitAll(dels); err != nil {
		return errUnwritable
	}
	if len(victims) > 0 {
		what := "sessions"
		if keep.IsAPIKey {
			what = keep.KeyKind.String() + " API keys"
		}
		s.log.Info("user over its cap of "+what+"; oldest deleted",
			"user", s.pii(strconv.FormatInt(int64(uid), 10)), "deleted", len(victims), "cap", limit)
	}
	_, err = actors.Ask[any](core, actors.SetOwnedCount{UserID: uid, Kind: kind, Count: len(items) - len(victims), Gen: note.Value.Gen})
	return err
}

// oldestBeyond returns the items to delete so that at most limit remain:
// the oldest first (ties broken by digest, so the choice does not depend on
// the order shards answered in), never keep.
func oldestBeyond(items []shard.OwnedItem, limit int, keep shard.OwnedItem) []shard.OwnedItem {
	excess := len(items) - limit
	if excess <= 0 {
		return nil
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := &items[i], &items[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		if c := bytes.Compare(a.Key[:], b.Key[:]); c != 0 {
			return c < 0
		}
		return bytes.Compare(a.Session[:], b.Session[:]) < 0
	})
	var out []shard.OwnedItem
	for _, it := range items {
		if len(out) == excess {
			break
		}
		if it.Key == keep.Key && it.Session == keep.Session {
			continue
		}
		out = append(out, it)
	}
	return out
}
