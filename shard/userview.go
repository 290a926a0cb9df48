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

// userViews is a shard's half of each side.
type userViews struct {
	// views are the users of other shards, as their shards last sent them.
	// A view is shared read-only with the user's shard and other watchers:
	// never written through.
	views map[UserID]*User
	// watchers are, for users of this shard, the shards that keep a view.
	watchers map[UserID][]int
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

// SetUserView installs or replaces the view of user id (a user of another
// shard); nil removes it (the user is gone). u is shared, not copied: the
// sender must not change it afterwards.
func (s *Shard) SetUserView(id UserID, u *User) {
	if u == nil {
		delete(s.userViews.views, id)
		return
	}
	if s.userViews.views == nil {
		s.userViews.views = make(map[UserID]*User)
	}
	s.userViews.views[id] = u
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
