package shard

// Views of users kept beside sessions. A session check answers the session
// and its user together; the session lives on the shard of its token, the
// user on the shard of its id. So that a check takes one hop, not two, a
// shard may keep a view of a user that lives elsewhere: a read-only copy of
// the user's record that the user's shard gave it ("installed") and keeps
// current by sending each new record ("pushed"). The user's shard knows
// which shards watch each of its users.
//
// This package only keeps the two tables; package actors carries the
// installs and pushes, in order, and answers a change only once every
// watcher has the new record, so no check that starts after the change was
// answered sees the old one. Views and watchers are memory only: after a
// restart a shard asks again (the first check of a user takes two hops).
//
// A view whose user has no session and no API key left on the shard is
// dropped by the sweep (DropIdleViews), and the user's shard told to stop
// pushing (UnwatchUser). An install already on its way may then arrive
// after the drop, from a check asked for before it: each forwarded check
// carries the shard's view epoch (ViewEpoch), bumped by every drop, and an
// install of another epoch is refused. A push only updates a view the
// shard holds, so a push sent before the user's shard heard of the drop
// does not bring the view back.

// userViews is a shard's half of each side.
type userViews struct {
	// views are the users of other shards, as their shards last sent them.
	// A view is shared read-only with the user's shard and other watchers:
	// never written through.
	views map[UserID]*User
	// watchers are, for users of this shard, the shards that keep a view.
	watchers map[UserID][]int
	// epoch counts the sweeps that dropped views: an install asked for
	// before the latest is refused (InstallUserView).
	epoch uint64
}

// UserView returns user id as a session check answers it: this shard's own
// record, or the view installed here. ok is false when the shard has
// neither (ask the user's shard).
func (s *Shard) UserView(id UserID) (u User, ok bool) {
	if p, own := s.users[id]; own {
		return *p, true
	}
	if p := s.userViews.views[id]; p != nil {
		return *p, true
	}
	return User{}, false
}

// ViewEpoch is the epoch a check forwarded from this shard carries, for
// the install it may bring back (InstallUserView).
func (s *Shard) ViewEpoch() uint64 { return s.userViews.epoch }

// InstallUserView installs the view of user id (a user of another shard)
// that a check forwarded at epoch asked for, and reports whether it did:
// not when views were dropped since (the user's shard may have been told
// to stop pushing). u is shared, not copied: the sender must not change it
// afterwards.
func (s *Shard) InstallUserView(id UserID, u *User, epoch uint64) bool {
	if epoch != s.userViews.epoch || u == nil {
		return false
	}
	if s.userViews.views == nil {
		s.userViews.views = make(map[UserID]*User)
	}
	s.userViews.views[id] = u
	return true
}

// PushUserView replaces the view of user id with u, or removes it when u
// is nil (the user is gone). A user this shard keeps no view of is left
// alone.
func (s *Shard) PushUserView(id UserID, u *User) {
	if _, ok := s.userViews.views[id]; !ok {
		return
	}
	if u == nil {
		delete(s.userViews.views, id)
		return
	}
	s.userViews.views[id] = u
}

// DropIdleViews drops the views of users with no session and no API key on
// this shard, and returns their ids: their shards are to be told
// (UnwatchUser). The anonymous user's sessions are not indexed by user, so
// its view is kept.
func (s *Shard) DropIdleViews() []UserID {
	var dropped []UserID
	for id := range s.userViews.views {
		if id == AnonymousID || len(s.sessions.byUser[id]) > 0 || s.holdsKeysOf(id) {
			continue
		}
		delete(s.userViews.views, id)
		dropped = append(dropped, id)
	}
	if len(dropped) > 0 {
		s.userViews.epoch++
	}
	return dropped
}

func (s *Shard) holdsKeysOf(id UserID) bool {
	for k := range s.apikeys.byUser {
		if len(s.apikeys.byUser[k][id]) > 0 {
			return true
		}
	}
	return false
}

// UnwatchUser forgets that shard watcher keeps a view of user id.
func (s *Shard) UnwatchUser(id UserID, watcher int) {
	ws := s.userViews.watchers[id]
	for i, w := range ws {
		if w == watcher {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.userViews.watchers, id)
	} else {
		s.userViews.watchers[id] = ws
	}
}

// WatchUser records that shard watcher keeps a view of user id, a user of
// this shard, and returns the record to install there (a copy, which the
// caller may share read-only). ok is false, and nothing is recorded, when
// there is no such user.
func (s *Shard) WatchUser(id UserID, watcher int) (u *User, ok bool) {
	p, ok := s.users[id]
	if !ok {
		return nil, false
	}
	ws := s.userViews.watchers[id]
	for _, w := range ws {
		if w == watcher {
			cp := *p
			return &cp, true
		}
	}
	if s.userViews.watchers == nil {
		s.userViews.watchers = make(map[UserID][]int)
	}
	s.userViews.watchers[id] = append(ws, watcher)
	cp := *p
	return &cp, true
}

// UserChange is what the watchers of a changed user must be sent: its new
// record (nil when the user was deleted) and the shards that keep a view.
type UserChange struct {
	ID       UserID
	User     *User // a copy, shared read-only by every watcher
	Watchers []int
}

// WatchedChanges returns, for the users changed by muts (records this shard
// returned), those that have watchers, with each one's current record. A
// deleted user's watchers are forgotten here: they are told once, with a
// nil record. dst is appended to and returned.
func (s *Shard) WatchedChanges(dst []UserChange, muts []Mutation) []UserChange {
	if len(s.userViews.watchers) == 0 {
		return dst
	}
	for _, m := range muts {
		if !hasPrefix(m.Key, prefixUser) {
			continue
		}
		id, err := decodeUserKey(m.Key)
		if err != nil {
			continue
		}
		ws := s.userViews.watchers[id]
		if len(ws) == 0 {
			continue
		}
		ch := UserChange{ID: id, Watchers: ws}
		if p, ok := s.users[id]; ok {
			cp := *p
			ch.User = &cp
		} else {
			delete(s.userViews.watchers, id)
		}
		dst = append(dst, ch)
	}
	return dst
}

// ViewCounts reports how many views this shard keeps and how many
// (user, watcher) pairs it serves, for metrics and tests.
func (s *Shard) ViewCounts() (views, watches int) {
	for _, ws := range s.userViews.watchers {
		watches += len(ws)
	}
	return len(s.userViews.views), watches
}
