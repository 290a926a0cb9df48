package shard

import (
	"slices"
	"testing"
	"time"
)

// A shard answers a user from its own record or from a view another shard
// installed, and knows neither otherwise.
func TestUserView(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := New(Options{})
	if _, _, err := s.CreateUser(User{ID: 10, Email: "own@example.org", IsActive: true}, now); err != nil {
		t.Fatal(err)
	}
	viewed := &User{ID: 20, Email: "viewed@example.org"}
	if !s.InstallUserView(20, viewed, s.ViewEpoch()) {
		t.Fatal("install at the current epoch refused")
	}
	s.PushUserView(30, &User{ID: 30}) // no view of 30: a push does not make one

	tests := []struct {
		name      string
		id        UserID
		wantOK    bool
		wantEmail string
	}{
		{"own user", 10, true, "own@example.org"},
		{"installed view", 20, true, "viewed@example.org"},
		{"unknown", 30, false, ""},
	}
	for _, tt := range tests {
		u, ok := s.UserView(tt.id)
		if ok != tt.wantOK || u.Email != tt.wantEmail {
			t.Errorf("%s: UserView(%d) = %q, %v; want %q, %v", tt.name, tt.id, u.Email, ok, tt.wantEmail, tt.wantOK)
		}
	}

	// The answer is a copy: changing it changes neither the view nor the
	// record.
	u, _ := s.UserView(20)
	u.Email = "changed"
	if viewed.Email != "viewed@example.org" {
		t.Errorf("UserView handed out the shared view")
	}
	s.PushUserView(20, &User{ID: 20, Email: "pushed@example.org"})
	if u, _ := s.UserView(20); u.Email != "pushed@example.org" {
		t.Errorf("after a push: %q; want the pushed record", u.Email)
	}
	s.PushUserView(20, nil)
	if _, ok := s.UserView(20); ok {
		t.Errorf("a removed view is still answered")
	}
	if v, _ := s.ViewCounts(); v != 0 {
		t.Errorf("ViewCounts views = %d after removal; want 0", v)
	}
}

// WatchUser records each watcher once and only for a user that exists;
// WatchedChanges reports the watched users a mutation list changes, with
// their new record, and forgets a deleted user's watchers after telling
// them once.
func TestWatchedChanges(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := New(Options{})
	for _, id := range []UserID{10, 11, 12} {
		if _, _, err := s.CreateUser(User{ID: id, FullName: "before"}, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.WatchUser(99, 1); ok {
		t.Errorf("WatchUser of a missing user succeeded")
	}
	for _, w := range []int{3, 5, 3} {
		u, ok := s.WatchUser(10, w)
		if !ok || u.ID != 10 || u.FullName != "before" {
			t.Fatalf("WatchUser(10, %d) = %+v, %v; want the record", w, u, ok)
		}
	}
	if _, ok := s.WatchUser(11, 4); !ok {
		t.Fatal("WatchUser(11)")
	}
	if _, w := s.ViewCounts(); w != 3 {
		t.Errorf("watches = %d; want 3 (one repeated watch counted once)", w)
	}

	rename := func(u *User) error { u.FullName = "after"; return nil }
	_, m10, _ := s.UpdateUser(10, now, rename)
	_, m12, _ := s.UpdateUser(12, now, rename) // unwatched
	_, del11, _ := s.DeleteUser(11)
	sessMuts := []Mutation{{Key: sessionKey(DigestSession("x")), Value: []byte("{}")}}

	tests := []struct {
		name string
		muts []Mutation
		want []UserChange
	}{
		{"no user record", sessMuts, nil},
		{"an unwatched user", m12, nil},
		{"a watched user", append(slices.Clone(sessMuts), m10...), []UserChange{{ID: 10, User: &User{FullName: "after"}, Watchers: []int{3, 5}}}},
		{"a deleted user", del11, []UserChange{{ID: 11, Watchers: []int{4}}}},
		{"a deleted user's watchers are forgotten", del11, nil},
	}
	for _, tt := range tests {
		got := s.WatchedChanges(nil, tt.muts)
		if len(got) != len(tt.want) {
			t.Fatalf("%s: %d changes; want %d", tt.name, len(got), len(tt.want))
		}
		for i, ch := range got {
			w := tt.want[i]
			if ch.ID != w.ID || !slices.Equal(ch.Watchers, w.Watchers) || (ch.User == nil) != (w.User == nil) ||
				(ch.User != nil && ch.User.FullName != w.User.FullName) {
				t.Errorf("%s: change %+v; want %+v", tt.name, ch, w)
			}
		}
	}
}

// The sweep drops the views of users with nothing left on the shard; an
// install asked for before a drop is refused, one asked for after it is
// taken; the anonymous user's view stays (its sessions are not indexed).
func TestDropIdleViews(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := New(Options{})
	for _, id := range []UserID{AnonymousID, 20, 21, 22, 23} {
		if !s.InstallUserView(id, &User{ID: id}, s.ViewEpoch()) {
			t.Fatalf("install of %d refused", id)
		}
	}
	s.CreateSession(DigestSession("of 20"), NewSession{UserID: 20, Expires: now.Add(time.Hour)}, now)
	s.CreateSession(DigestSession("of 23, ended"), NewSession{UserID: 23, Expires: now.Add(time.Hour)}, now)
	s.DeleteSession(DigestSession("of 23, ended"))
	if _, _, err := s.CreateAPIKey(DigestAPIKey("of 21"), NewAPIKey{Kind: KeyNoSession, UserID: 21, Role: "authenticated",
		Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour}, now); err != nil {
		t.Fatal(err)
	}
	before := s.ViewEpoch()
	dropped := s.DropIdleViews()
	slices.Sort(dropped)
	if want := []UserID{22, 23}; !slices.Equal(dropped, want) {
		t.Errorf("dropped %v; want %v", dropped, want)
	}
	for id, want := range map[UserID]bool{AnonymousID: true, 20: true, 21: true, 22: false, 23: false} {
		if _, ok := s.UserView(id); ok != want {
			t.Errorf("view of %d after the sweep: %v; want %v", id, ok, want)
		}
	}
	if s.InstallUserView(22, &User{ID: 22}, before) {
		t.Errorf("an install asked for before the drop was taken")
	}
	if !s.InstallUserView(22, &User{ID: 22}, s.ViewEpoch()) {
		t.Errorf("an install asked for after the drop was refused")
	}
	if again := s.DropIdleViews(); len(again) != 1 || again[0] != 22 {
		t.Errorf("second sweep dropped %v; want [22]", again)
	}
	if e := s.ViewEpoch(); e != before+2 {
		t.Errorf("epoch %d; want %d (one step a dropping sweep)", e, before+2)
	}
	if len(s.DropIdleViews()) != 0 || s.ViewEpoch() != before+2 {
		t.Errorf("a sweep that drops nothing changed the epoch")
	}
}

// UnwatchUser forgets one watcher and keeps the others.
func TestUnwatchUser(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := New(Options{})
	if _, _, err := s.CreateUser(User{ID: 10}, now); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, 2, 3} {
		s.WatchUser(10, w)
	}
	s.UnwatchUser(10, 2)
	s.UnwatchUser(10, 7) // not a watcher
	_, m, _ := s.UpdateUser(10, now, func(u *User) error { return nil })
	if ch := s.WatchedChanges(nil, m); len(ch) != 1 || !slices.Equal(ch[0].Watchers, []int{1, 3}) {
		t.Fatalf("watchers after unwatching 2: %+v; want [1 3]", ch)
	}
	s.UnwatchUser(10, 1)
	s.UnwatchUser(10, 3)
	if ch := s.WatchedChanges(nil, m); len(ch) != 0 {
		t.Errorf("changes pushed with no watcher left: %+v", ch)
	}
}
