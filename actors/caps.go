package actors

import (
	"bytes"
	"sort"

	"github.com/authnzerver/authnzerver/shard"
)

// The per-user caps on live sessions and on live API keys of each kind
// (docs/design.md, "The key flows"). The user's shard keeps an upper bound
// of each count; only when that passes the cap, or is unknown since start,
// is the user's whole set counted, by a fan-out over every shard, and the
// oldest deleted. A user below the cap pays one hop to its own shard per new
// session or key.

// DefaultMaxOwned is the cap of sessions, and of API keys of each kind, per
// user when none is configured. A person has a session per browser or
// device and a key per script or integration: a few, rarely tens.
const DefaultMaxOwned = 100

// CapOwned counts a new session or key (keep, which is never deleted) of
// user uid and, when the user has more than limit of its kind (sessions,
// session-tied keys, no-session keys), deletes the oldest of that kind and
// waits until the deletions are durable. A negative limit is no cap; the
// anonymous user's sessions have none. When it returns nil, uid holds no
// more than limit (unless other creations raced with it; each of them
// enforces the cap in turn).
func (a *Accounts) CapOwned(uid shard.UserID, keep shard.OwnedItem, limit int) error {
	kind := shard.OwnedSessions
	if keep.IsAPIKey {
		kind = shard.OwnedKeys(keep.KeyKind)
	}
	if limit < 0 || (kind == shard.OwnedSessions && uid == shard.AnonymousID) {
		return nil
	}
	core := a.core
	note, err := Ask[OwnedNote](core, NoteOwned{UserID: uid, Kind: kind, Limit: limit})
	if err != nil || !note.Value.Recount {
		return err
	}
	rs, err := AskAll[[]shard.OwnedItem](core, ListOwned{UserID: uid, Kind: kind})
	if err != nil {
		return err
	}
	var items []shard.OwnedItem
	for _, r := range rs {
		items = append(items, r.Value...)
	}
	victims := oldestOwned(items, limit, keep)
	dels := make([]Result[any], 0, len(victims))
	for _, v := range victims {
		res, err := Ask[any](core, DeleteOwned{Item: v})
		if err != nil {
			return err
		}
		dels = append(dels, res)
	}
	if err := WaitAll(dels); err != nil {
		return ErrUnwritable
	}
	if len(victims) > 0 {
		what := "sessions"
		if keep.IsAPIKey {
			what = keep.KeyKind.String() + " API keys"
		}
		a.log.Info("user over its cap of "+what+"; oldest deleted",
			"user", a.pii(uid), "deleted", len(victims), "cap", limit)
	}
	_, err = Ask[any](core, SetOwnedCount{UserID: uid, Kind: kind, Count: len(items) - len(victims), Gen: note.Value.Gen})
	return err
}

// oldestOwned returns the items to delete so that at most limit remain:
// the oldest first (ties broken by digest, so the choice does not depend on
// the order shards answered in), never keep.
func oldestOwned(items []shard.OwnedItem, limit int, keep shard.OwnedItem) []shard.OwnedItem {
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
