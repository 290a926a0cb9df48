package actors

import (
	"github.com/authnzerver/authnzerver/shard"
)

// One-hop session checks (single node). A session check runs on the
// session's shard; when that shard keeps a view of the session's user
// (shard/userview.go), it answers there and then. Otherwise it forwards to
// the user's shard ([SessionUser]), which answers and installs a view on the
// session's shard, and from then on pushes every change of that user to it.
//
// Why it is consistent: each mailbox is a FIFO queue. A shard's installs
// and pushes to another shard are posted by one actor, one after another, so
// they arrive in the order they were sent. And an operation that changed a
// watched user is answered only after the new record was posted to every
// watcher, so a check that starts after the answer is queued behind it.
//
// Cluster mode keeps the two-hop check: a view would have to follow its
// user's shard between nodes and leases (docs/design.md, "Cluster mode").

// userInstall gives a shard its first view of a user, asked for by a
// check forwarded at the shard's view epoch.
type userInstall struct {
	id    shard.UserID
	user  *shard.User // shared read-only
	epoch uint64
}

// userUnwatch tells a user's shard that shard watcher dropped its view.
type userUnwatch struct {
	id      shard.UserID
	watcher int
}

// userPush gives a watching shard a user's new record (nil: deleted).
type userPush struct {
	id   shard.UserID
	user *shard.User // shared read-only
}

// viewsOn reports whether shards keep views of other shards' users: on a
// single node only.
func (c *Core) viewsOn() bool { return c.cl == nil }

// noteChanges collects, after an operation or a sweep of this shard, the
// watched users whose records muts change.
func (a *shardActor) noteChanges(muts []shard.Mutation) {
	if len(muts) > 0 && a.core.viewsOn() {
		a.changes = a.state.WatchedChanges(a.changes[:0], muts)
	}
}

// pushChanges posts the collected changes to their watchers, then answers
// m (nil for a sweep) with r. Posting is enough: a check that starts after
// the answer is queued behind the push in the watcher's mailbox.
func (a *shardActor) pushChanges(m *opMsg, r reply) {
	for _, ch := range a.changes {
		for _, i := range ch.Watchers {
			a.core.root.Send(a.core.pids[i], &userPush{id: ch.ID, user: ch.User})
		}
	}
	clear(a.changes)
	a.changes = a.changes[:0]
	if m != nil {
		a.finish(m, r)
	}
}

// viewAsk is what a check forwarded to a user's shard carries to be given
// a view: the asking shard + 1 (0: no view wanted) and its view epoch.
type viewAsk struct {
	watcher int
	epoch   uint64
}

// viewForward is a forwarded check that can bring the forwarding shard a
// view of its user: the forwarding shard fills in its viewAsk (finish).
type viewForward interface {
	Op
	withView(viewAsk) Op
}

// watch looks user id up on s, its shard (route), for a forwarded check:
// when ask names another shard, that shard becomes a watcher of the user
// and is sent its view, posted before any later change of the user is
// pushed, so the view arrives first. It fails with shard.ErrUserNotFound.
func (c *Core) watch(s *shard.Shard, route shard.Route, id shard.UserID, ask viewAsk) (shard.User, error) {
	w := ask.watcher - 1 // -1: none asked (always so in cluster mode)
	if w < 0 || w >= len(c.pids) {
		return s.GetUser(id)
	}
	if _, self := c.pidOf(route); w == self {
		return s.GetUser(id)
	}
	u, ok := s.WatchUser(id, w)
	if !ok {
		return shard.User{}, shard.ErrUserNotFound
	}
	c.root.Send(c.pids[w], &userInstall{id: id, user: u, epoch: ask.epoch})
	return *u, nil
}

// dropIdleViews, after a sweep, drops the views of users with nothing left
// on this shard and tells their shards to stop pushing.
func (a *shardActor) dropIdleViews() {
	if !a.core.viewsOn() {
		return
	}
	for _, id := range a.state.DropIdleViews() {
		pid, _ := a.core.pidOf(shard.UserRoute(id))
		a.core.root.Send(pid, &userUnwatch{id: id, watcher: a.index})
	}
}
