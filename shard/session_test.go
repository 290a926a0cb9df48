package shard

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// An expired session leaves memory at the first sweep (or lookup) after its
// expiry, not after the retention period; what is left is enough to delete
// it and to purge it when the retention ends.
func TestExpiredSessionLeavesMemory(t *testing.T) {
	big := []byte(`{"pad":"` + strings.Repeat("x", 60<<10) + `"}`)
	tests := []struct {
		name   string
		expire func(s *Shard, d SessionDigest, at time.Time) // makes the shard see the expiry
	}{
		{"sweep", func(s *Shard, _ SessionDigest, at time.Time) {
			if muts := s.Sweep(at, 0); len(muts) != 0 {
				t.Errorf("sweep inside the retention period wrote %d records; want none", len(muts))
			}
		}},
		{"bounded sweep", func(s *Shard, _ SessionDigest, at time.Time) { s.Sweep(at, 1) }},
		{"lookup", func(s *Shard, d SessionDigest, at time.Time) {
			if _, err := s.LookupSession(d, at); !errors.Is(err, ErrSessionNotFound) {
				t.Errorf("lookup of an expired session: %v; want not found", err)
			}
		}},
		{"edit", func(s *Shard, d SessionDigest, at time.Time) {
			if _, _, err := s.EditSessionExtra(d, at, nil); !errors.Is(err, ErrSessionNotFound) {
				t.Errorf("edit of an expired session: %v; want not found", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{SessionRetention: 30 * 24 * time.Hour})
			d := digest("dead")
			_, muts := s.CreateSession(d, NewSession{UserID: 7, IPAddress: "1.2.3.4", UserAgent: "ua", Expires: t0.Add(time.Hour), ExtraInfo: big}, t0)
			tt.expire(s, d, t0.Add(2*time.Hour))
			if _, ok := s.sessions.byDigest[d]; ok {
				t.Fatalf("expired session still held in full")
			}
			if full, dead := s.SessionCounts(); full != 0 || dead != 1 {
				t.Fatalf("SessionCounts = %d full, %d dead; want 0, 1", full, dead)
			}
			if c := s.Counts(); c.Sessions != 1 {
				t.Errorf("Counts().Sessions = %d; want 1 (held until the retention ends)", c.Sessions)
			}
			// Still deletable (as in the reference), by token and by user.
			if n, _ := s.DeleteUserSessions(8, nil); n != 0 {
				t.Errorf("DeleteUserSessions(other user) = %d; want 0", n)
			}
			s2 := replay(t, muts) // the record on disk is whole
			if _, err := s2.LookupSession(d, t0.Add(30*time.Minute)); err != nil {
				t.Errorf("record on disk: %v", err)
			}
			got, dm, err := s.DeleteSession(d)
			if err != nil || got.UserID != 7 || !got.Expires.Equal(t0.Add(time.Hour)) || len(dm) != 1 || dm[0].Value != nil {
				t.Errorf("DeleteSession = %+v, %d mutations, %v; want user 7's session deleted", got, len(dm), err)
			}
			if n, _ := s.DeleteUserSessions(7, nil); n != 0 {
				t.Errorf("DeleteUserSessions after delete = %d; want 0", n)
			}
			if c := s.Counts(); c.Sessions != 0 || len(s.sessions.byUser) != 0 {
				t.Errorf("after delete: %d sessions, %d users indexed; want none", c.Sessions, len(s.sessions.byUser))
			}
		})
	}
}

// A dead session is purged, in memory and on disk, when its retention ends;
// ending all of a user's sessions counts dead ones, as the reference's rows.
func TestDeadSessionRetention(t *testing.T) {
	s := New(Options{SessionRetention: 24 * time.Hour})
	s.CreateSession(digest("a"), NewSession{UserID: 7, Expires: t0}, t0.Add(-time.Hour))
	s.CreateSession(digest("b"), NewSession{UserID: 7, Expires: t0}, t0.Add(-time.Hour))
	s.CreateSession(digest("anon"), NewSession{UserID: AnonymousID, Expires: t0}, t0.Add(-time.Hour))
	s.Sweep(t0.Add(time.Hour), 0)
	if full, dead := s.SessionCounts(); full != 0 || dead != 3 {
		t.Fatalf("SessionCounts = %d, %d; want 0, 3", full, dead)
	}
	if n, muts := s.DeleteUserSessions(AnonymousID, nil); n != 1 || len(muts) != 1 {
		t.Errorf("DeleteUserSessions(anonymous) = %d; want 1", n)
	}
	muts := s.Sweep(t0.Add(25*time.Hour), 0)
	if len(muts) != 2 {
		t.Fatalf("sweep after retention deleted %d; want 2", len(muts))
	}
	for _, m := range muts {
		if !bytes.HasPrefix(m.Key, []byte(prefixSession)) || m.Value != nil {
			t.Errorf("mutation %q; want a session deletion", m.Key)
		}
	}
	if c := s.Counts(); c.Sessions != 0 || len(s.sessions.byUser) != 0 {
		t.Errorf("after purge: %d sessions, %d users indexed; want none", c.Sessions, len(s.sessions.byUser))
	}
}

// A new session over a dead one of the same digest (impossible in
// practice) replaces it and keeps the user index right.
func TestSessionReplacesDead(t *testing.T) {
	s := New(Options{})
	d := digest("x")
	s.CreateSession(d, NewSession{UserID: 7, Expires: t0}, t0.Add(-time.Hour))
	s.Sweep(t0.Add(time.Minute), 0)
	s.CreateSession(d, NewSession{UserID: 8, Expires: t0.Add(time.Hour)}, t0)
	if full, dead := s.SessionCounts(); full != 1 || dead != 0 {
		t.Fatalf("SessionCounts = %d, %d; want 1, 0", full, dead)
	}
	if _, ok := s.sessions.byUser[7]; ok {
		t.Errorf("user 7 still indexed")
	}
	if got := s.UserSessions(8, t0); len(got) != 1 || got[0].Session != d {
		t.Errorf("UserSessions(8) = %+v; want the new session", got)
	}
}

func TestUserSessions(t *testing.T) {
	s := New(Options{})
	s.CreateSession(digest("old"), NewSession{UserID: 7, Expires: t0.Add(time.Hour)}, t0.Add(-time.Hour))
	s.CreateSession(digest("new"), NewSession{UserID: 7, Expires: t0.Add(time.Hour)}, t0)
	s.CreateSession(digest("gone"), NewSession{UserID: 7, Expires: t0}, t0.Add(-2*time.Hour))
	s.CreateSession(digest("other"), NewSession{UserID: 8, Expires: t0.Add(time.Hour)}, t0)
	s.CreateSession(digest("anon"), NewSession{UserID: AnonymousID, Expires: t0.Add(time.Hour)}, t0)
	got := map[SessionDigest]time.Time{}
	for _, it := range s.UserSessions(7, t0) {
		got[it.Session] = it.Created
	}
	want := map[SessionDigest]time.Time{digest("old"): t0.Add(-time.Hour), digest("new"): t0}
	if len(got) != len(want) {
		t.Fatalf("UserSessions(7) = %v; want %v", got, want)
	}
	for d, c := range want {
		if !got[d].Equal(c) {
			t.Errorf("created of %x = %v; want %v", d[:4], got[d], c)
		}
	}
	if got := s.UserSessions(AnonymousID, t0); len(got) != 0 {
		t.Errorf("UserSessions(anonymous) = %d; want none (no cap)", len(got))
	}
}
