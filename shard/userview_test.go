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
	s.SetUserView(20, viewed)

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
	s.SetUserView(20, &User{ID: 20, Email: "pushed@example.org"})
	if u, _ := s.UserView(20); u.Email != "pushed@example.org" {
		t.Errorf("after a push: %q; want the pushed record", u.Email)
	}
	s.SetUserView(20, nil)
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
