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
		a.core.finish(m, r)
	}
}

// viewAsk is what a check that forwards to a user's shard carries to be
// given a view: the asking shard + 1 (0: no view wanted) and its view
// epoch.
type viewAsk struct {
	watcher int
	epoch   uint64
}

// viewAskOf is the viewAsk of a check on s, the shard of route: none when
// views are off.
func (c *Core) viewAskOf(route shard.Route, s *shard.Shard) viewAsk {
	if !c.viewsOn() {
		return viewAsk{}
	}
	_, i := c.pidOf(route)
	return viewAsk{watcher: i + 1, epoch: s.ViewEpoch()}
}

// watcherFor returns the shard that a forwarded check's watcher field
// (shard + 1, 0 for none) names, or -1 when no view is to be installed:
// views off, none asked for, or the user's own shard (route).
func (c *Core) watcherFor(watcher int, route shard.Route) int {
	if watcher == 0 || !c.viewsOn() || watcher > len(c.pids) {
		return -1
	}
	if _, self := c.pidOf(route); watcher-1 == self {
		return -1
	}
	return watcher - 1
}

// install sends shard i its view of user u, asked for at epoch. It is
// posted before any later change of the user is pushed, so the view
// arrives first.
func (c *Core) install(i int, id shard.UserID, u *shard.User, epoch uint64) {
	c.root.Send(c.pids[i], &userInstall{id: id, user: u, epoch: epoch})
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
