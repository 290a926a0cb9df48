package shard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func digest(s string) SessionDigest { return DigestSession(s) }

// replay loads every mutation into a fresh shard, as a restart does, and
// returns it.
func replay(t *testing.T, muts []Mutation) *Shard {
	t.Helper()
	store := map[string][]byte{}
	for _, m := range muts {
		if m.Value == nil {
			delete(store, string(m.Key))
		} else {
			store[string(m.Key)] = m.Value
		}
	}
	s := New(Options{})
	for k, v := range store {
		if _, ok, err := RouteOfKey([]byte(k)); err != nil {
			t.Fatalf("RouteOfKey(%q): %v", k, err)
		} else if !ok {
			continue
		}
		if err := s.Load([]byte(k), v); err != nil {
			t.Fatalf("Load(%q): %v", k, err)
		}
	}
	return s
}

func TestSessionLifecycle(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Duration
		at      time.Duration
		live    bool
	}{
		{"live", time.Hour, time.Minute, true},
		{"at expiry is dead (strict)", time.Hour, time.Hour, false},
		{"after expiry", time.Hour, 2 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			d := digest(tt.name)
			s.CreateSession(d, NewSession{UserID: 4, IPAddress: "1.2.3.4", Expires: t0.Add(tt.expires)}, t0)
			_, err := s.LookupSession(d, t0.Add(tt.at))
			if got := err == nil; got != tt.live {
				t.Errorf("live = %v; want %v (err %v)", got, tt.live, err)
			}
		})
	}
}

func TestSessionMutationsReplay(t *testing.T) {
	s := New(Options{})
	var log []Mutation
	for i, tok := range []string{"a", "b", "c"} {
		_, m := s.CreateSession(digest(tok), NewSession{UserID: UserID(4 + i%2), Expires: t0.Add(time.Hour), ExtraInfo: json.RawMessage(`{"k":1}`)}, t0)
		log = append(log, m...)
	}
	_, m, err := s.DeleteSession(digest("b"))
	if err != nil {
		t.Fatal(err)
	}
	log = append(log, m...)
	if _, _, err := s.DeleteSession(digest("b")); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("second delete: %v; want ErrSessionNotFound", err)
	}
	r := replay(t, log)
	for tok, want := range map[string]bool{"a": true, "b": false, "c": true} {
		sess, err := r.LookupSession(digest(tok), t0)
		if (err == nil) != want {
			t.Errorf("after replay, session %s live = %v; want %v", tok, err == nil, want)
		}
		if err == nil && string(sess.ExtraInfo) != `{"k":1}` {
			t.Errorf("extra info = %s", sess.ExtraInfo)
		}
	}
}

func TestDeleteUserSessionsKeepsOne(t *testing.T) {
	s := New(Options{})
	for _, tok := range []string{"u1", "u2", "u3"} {
		s.CreateSession(digest(tok), NewSession{UserID: 7, Expires: t0.Add(time.Hour)}, t0)
	}
	s.CreateSession(digest("other"), NewSession{UserID: 8, Expires: t0.Add(time.Hour)}, t0)
	keep := digest("u2")
	n, muts := s.DeleteUserSessions(7, &keep)
	if n != 2 || len(muts) != 2 {
		t.Errorf("deleted %d (%d mutations); want 2", n, len(muts))
	}
	for tok, want := range map[string]bool{"u1": false, "u2": true, "u3": false, "other": true} {
		if _, err := s.LookupSession(digest(tok), t0); (err == nil) != want {
			t.Errorf("%s live = %v; want %v", tok, err == nil, want)
		}
	}
	if n, _ := s.DeleteUserSessions(7, nil); n != 1 {
		t.Errorf("second sweep deleted %d; want 1", n)
	}
}

func TestSweepSessionsAfterRetention(t *testing.T) {
	s := New(Options{SessionRetention: 24 * time.Hour})
	s.CreateSession(digest("old"), NewSession{UserID: 4, Expires: t0}, t0.Add(-time.Hour))
	s.CreateSession(digest("recent"), NewSession{UserID: 4, Expires: t0.Add(23 * time.Hour)}, t0)
	muts := s.Sweep(t0.Add(25*time.Hour), 0)
	if len(muts) != 1 || !bytes.Equal(muts[0].Key, sessionKey(digest("old"))) {
		t.Fatalf("sweep = %d mutations; want the old session deleted", len(muts))
	}
	if s.Counts().Sessions != 1 {
		t.Errorf("sessions left = %d; want 1", s.Counts().Sessions)
	}
}

func TestUsersAndEmailIndex(t *testing.T) {
	s := New(Options{})
	var log []Mutation
	u, m, err := s.CreateUser(User{ID: 4, Email: "a@b.org", Role: "locked", PasswordPHC: "$argon2id$x"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	log = append(log, m...)
	if _, _, err := s.CreateUser(User{ID: 4}, t0); !errors.Is(err, ErrUserExists) {
		t.Errorf("duplicate id: %v; want ErrUserExists", err)
	}
	if !u.CreatedOn.Equal(t0) {
		t.Errorf("created_on = %v", u.CreatedOn)
	}
	// The email index: first claim wins, a second id is told the owner.
	tests := []struct {
		email   string
		id      UserID
		owner   UserID
		claimed bool
	}{
		{"a@b.org", 4, 4, true},
		{"a@b.org", 5, 4, false},
		{"a@b.org", 4, 4, true}, // idempotent for the owner
		{"c@d.org", 5, 5, true},
	}
	for _, tt := range tests {
		owner, ok, m := s.ClaimEmail(tt.email, tt.id)
		if owner != tt.owner || ok != tt.claimed {
			t.Errorf("ClaimEmail(%s, %d) = %d, %v; want %d, %v", tt.email, tt.id, owner, ok, tt.owner, tt.claimed)
		}
		log = append(log, m...)
	}
	if m := s.ReleaseEmail("c@d.org", 4); m != nil {
		t.Errorf("release by a non-owner changed the index")
	}
	log = append(log, s.ReleaseEmail("c@d.org", 5)...)
	_, m, err = s.UpdateUser(4, t0.Add(time.Minute), func(u *User) error {
		u.Role = "authenticated"
		u.ID = 99 // ignored: the id is the key
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	log = append(log, m...)
	if _, _, err := s.UpdateUser(4, t0, func(u *User) error { return ErrNoChange }); !errors.Is(err, ErrNoChange) {
		t.Errorf("refused edit: %v", err)
	}
	r := replay(t, log)
	got, err := r.GetUser(4)
	if err != nil || got.Role != "authenticated" || !got.LastUpdated.Equal(t0.Add(time.Minute)) {
		t.Errorf("after replay: %+v, %v", got, err)
	}
	if id, ok := r.LookupEmail("a@b.org"); !ok || id != 4 {
		t.Errorf("email index after replay: %d %v", id, ok)
	}
	if _, ok := r.LookupEmail("c@d.org"); ok {
		t.Errorf("released email still indexed after replay")
	}
	list, more := r.ListUsers(0, 10, nil)
	if len(list) != 1 || more {
		t.Errorf("ListUsers = %d users, more %v", len(list), more)
	}
}

func TestLockUnlockRoles(t *testing.T) {
	u := User{ID: 4, Role: "staff", IsActive: true}
	if err := LockUser(&u, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u.Role != "locked" || u.IsActive || !u.AutoUnlockAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("locked user = %+v", u)
	}
	if err := LockUser(&u, time.Time{}); !errors.Is(err, ErrNoChange) {
		t.Errorf("second lock: %v; want ErrNoChange", err)
	}
	if err := UnlockUser(&u); err != nil {
		t.Fatal(err)
	}
	if u.Role != "staff" || !u.IsActive || !u.AutoUnlockAt.IsZero() {
		t.Errorf("unlocked user = %+v", u)
	}
	if roles := previousRoles(u.ExtraInfo); len(roles) != 0 {
		t.Errorf("previous roles after unlock = %v; want popped", roles)
	}
	for i := 0; i < 3*maxPreviousRoles; i++ {
		LockUser(&u, time.Time{})
		u.Role = "staff" // an operator edit, without an unlock
	}
	if roles := previousRoles(u.ExtraInfo); len(roles) != maxPreviousRoles {
		t.Errorf("previous roles grew to %d; want bounded at %d", len(roles), maxPreviousRoles)
	}
}

func TestSweepUnlocksOnlyWhatItLocked(t *testing.T) {
	s := New(Options{})
	s.CreateUser(User{ID: 4, Role: "authenticated", IsActive: true}, t0)
	s.CreateUser(User{ID: 5, Role: "locked"}, t0) // an unverified sign-up
	s.UpdateUser(4, t0, func(u *User) error { return LockUser(u, t0.Add(time.Minute)) })
	if muts := s.Sweep(t0.Add(30*time.Second), 0); len(muts) != 0 {
		t.Errorf("early sweep changed %d records", len(muts))
	}
	s.Sweep(t0.Add(2*time.Minute), 0)
	u4, _ := s.GetUser(4)
	u5, _ := s.GetUser(5)
	if u4.Role != "authenticated" || !u4.IsActive {
		t.Errorf("user 4 after the lock time = %+v", u4)
	}
	if u5.Role != "locked" || u5.IsActive {
		t.Errorf("the sweep changed user 5, which no lock changed: %+v", u5)
	}
}

// A bounded sweep looks at no more than limit sessions, yet successive
// sweeps reach every expired one (map iteration starts at a random place).
func TestSweepSessionsBoundedScanConverges(t *testing.T) {
	s := New(Options{SessionRetention: time.Hour})
	for i := range 1000 {
		exp := t0.Add(48 * time.Hour)
		if i%2 == 0 {
			exp = t0 // past retention at the sweep time below
		}
		s.CreateSession(digest(fmt.Sprint("s", i)), NewSession{UserID: AnonymousID, Expires: exp}, t0.Add(-time.Hour))
	}
	const limit = 50
	at := t0.Add(2 * time.Hour)
	deleted, sweeps := 0, 0
	for ; deleted < 500 && sweeps < 5000; sweeps++ {
		muts := s.SweepSessions(at, limit)
		if len(muts) > limit {
			t.Fatalf("one sweep deleted %d; want at most %d", len(muts), limit)
		}
		deleted += len(muts)
	}
	if deleted != 500 || s.Counts().Sessions != 500 {
		t.Fatalf("after %d sweeps: deleted %d, left %d; want 500 and 500", sweeps, deleted, s.Counts().Sessions)
	}
	t.Logf("%d bounded sweeps of %d reached all 500 expired sessions of 1000", sweeps, limit)
}

// PurgeSessions deletes what expired more than olderThan ago, whatever the
// retention, and leaves live sessions alone.
func TestPurgeSessions(t *testing.T) {
	tests := []struct {
		name      string
		olderThan time.Duration
		deleted   []string
	}{
		{"every expired one", 0, []string{"week", "hour"}},
		{"older than a day", 24 * time.Hour, []string{"week"}},
		{"older than a month", 30 * 24 * time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{SessionRetention: 90 * 24 * time.Hour})
			for tok, exp := range map[string]time.Time{
				"week": t0.Add(-7 * 24 * time.Hour), "hour": t0.Add(-time.Hour), "live": t0.Add(time.Hour),
			} {
				s.CreateSession(digest(tok), NewSession{UserID: 4, Expires: exp}, exp.Add(-time.Minute))
			}
			muts := s.PurgeSessions(t0, tt.olderThan)
			var got []string
			for _, tok := range []string{"week", "hour", "live"} {
				for _, m := range muts {
					if bytes.Equal(m.Key, sessionKey(digest(tok))) && m.Value == nil {
						got = append(got, tok)
					}
				}
			}
			if len(muts) != len(tt.deleted) || !slices.Equal(got, tt.deleted) {
				t.Errorf("deleted %v (%d mutations); want %v", got, len(muts), tt.deleted)
			}
			if _, err := s.LookupSession(digest("live"), t0); err != nil {
				t.Errorf("live session: %v", err)
			}
		})
	}
}
