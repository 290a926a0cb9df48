package shard

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// begin runs BeginAttempt and appends its mutations to log.
func begin(s *Shard, log *[]Mutation, email string, now time.Time, p AttemptPolicy) Attempt {
	a, muts := s.BeginAttempt(email, now, p)
	*log = append(*log, muts...)
	return a
}

func end(s *Shard, log *[]Mutation, email string, o Outcome, now time.Time) int {
	n, muts := s.EndAttempt(email, o, now)
	*log = append(*log, muts...)
	return n
}

func TestAttemptsBoundAndDecay(t *testing.T) {
	s := New(Options{})
	const key = "e@x.org"
	p := AttemptPolicy{Tries: 3, Decay: time.Hour, LockFor: time.Hour}
	var log []Mutation
	// Three attempts may be in flight at once; a fourth waits for one.
	for i := 1; i <= 3; i++ {
		if a := begin(s, &log, key, t0, p); a.Verdict != AttemptVerify {
			t.Fatalf("attempt %d: verdict %v; want verify", i, a.Verdict)
		}
	}
	if a := begin(s, &log, key, t0, p); a.Verdict != AttemptWait {
		t.Fatalf("fourth attempt in flight: %+v; want wait", a)
	}
	for i := 1; i <= 3; i++ {
		if n := end(s, &log, key, AttemptFailed, t0); n != i {
			t.Errorf("failure %d reported count %d", i, n)
		}
	}
	if got := replay(t, log).Failures(key); got != 3 {
		t.Errorf("failures after replay = %d; want 3", got)
	}
	if a := begin(s, &log, key, t0.Add(p.Decay+time.Second), p); a.Verdict != AttemptVerify {
		t.Errorf("after the decay time the verdict is %v; want verify", a.Verdict)
	}
	end(s, &log, key, AttemptSucceeded, t0)
	if s.Failures(key) != 0 {
		t.Errorf("success did not reset")
	}
	begin(s, &log, key, t0, p)
	if end(s, &log, key, AttemptCancelled, t0); s.Failures(key) != 0 {
		t.Errorf("cancelled attempt counted")
	}
}

// Right passwords in flight are never failures: they may make others wait,
// but they neither open a window nor count.
func TestRightPasswordsInFlightNotCounted(t *testing.T) {
	s := New(Options{})
	const key = "e@x.org"
	p := AttemptPolicy{Tries: 2, Decay: time.Hour, LockFor: time.Hour}
	var log []Mutation
	begin(s, &log, key, t0, p)
	begin(s, &log, key, t0, p)
	w := begin(s, &log, key, t0, p)
	if w.Verdict != AttemptWait {
		t.Fatalf("third attempt: %v; want wait", w.Verdict)
	}
	end(s, &log, key, AttemptSucceeded, t0)
	if a := begin(s, &log, key, t0, p); a.Verdict != AttemptVerify {
		t.Fatalf("a waiter that begins again once an attempt ended: %v; want verify", a.Verdict)
	}
	end(s, &log, key, AttemptSucceeded, t0)
	end(s, &log, key, AttemptSucceeded, t0)
	for i := 0; i < 5; i++ {
		if a := begin(s, &log, key, t0, p); a.Verdict != AttemptVerify {
			t.Fatalf("attempt after right passwords: %v; want verify", a.Verdict)
		}
		end(s, &log, key, AttemptSucceeded, t0)
	}
	if s.Failures(key) != 0 {
		t.Errorf("failures = %d; want 0", s.Failures(key))
	}
}

func TestAttemptWindow(t *testing.T) {
	p := AttemptPolicy{Tries: 2, Decay: time.Hour, LockFor: time.Hour}
	const key = "e@x.org"
	fail := func(s *Shard, log *[]Mutation, now time.Time) {
		t.Helper()
		for i := 0; i < p.Tries; i++ {
			if a := begin(s, log, key, now, p); a.Verdict != AttemptVerify {
				t.Fatalf("try %d at %v: %v; want verify", i, now.Sub(t0), a.Verdict)
			}
			end(s, log, key, AttemptFailed, now)
		}
	}
	tests := []struct {
		name    string
		shorten time.Duration // 0: keep the full window
		restart bool
	}{
		{"full window", 0, false},
		{"full window across a restart", 0, true},
		{"shortened window", time.Minute, false},
		{"shortened window across a restart", time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			var log []Mutation
			fail(s, &log, t0)
			a := begin(s, &log, key, t0, p)
			if a.Verdict != AttemptOverLimit || a.Lockouts != 1 || !a.Until.Equal(t0.Add(p.LockFor)) {
				t.Fatalf("over the limit: %+v; want a window of %v, lockout 1", a, p.LockFor)
			}
			window := p.LockFor
			if tt.shorten > 0 {
				window = tt.shorten
				log = append(log, s.SetAttemptWindow(key, t0.Add(window))...)
				if muts := s.SetAttemptWindow(key, t0.Add(2*window)); muts != nil {
					t.Errorf("SetAttemptWindow lengthened the window")
				}
			}
			if tt.restart {
				s = replay(t, log)
			}
			if a := begin(s, &log, key, t0.Add(window-time.Second), p); a.Verdict != AttemptRefused {
				t.Errorf("inside the window: %v; want refused", a.Verdict)
			}
			// After the window the account has its tries again, and the next
			// window is the second.
			fail(s, &log, t0.Add(window))
			if a := begin(s, &log, key, t0.Add(window), p); a.Verdict != AttemptOverLimit || a.Lockouts != 2 {
				t.Errorf("second time over the limit: %+v; want lockout 2", a)
			}
		})
	}
}

func TestAttemptsLegacyRecords(t *testing.T) {
	// Records of the time when failures were counted per (email, address).
	rec := func(n int, last time.Time) []byte {
		v, _ := json.Marshal(map[string]any{"n": n, "last": last})
		return v
	}
	old := []Mutation{
		{Key: []byte("f/e@x.org\x001.2.3.4"), Value: rec(2, t0)},
		{Key: []byte("f/e@x.org\x002001:db8::1"), Value: rec(1, t0.Add(time.Minute))},
		{Key: []byte("f/other@x.org\x001.2.3.4"), Value: rec(1, t0)},
	}
	for _, m := range old {
		r, ok, err := RouteOfKey(m.Key)
		if err != nil || !ok {
			t.Fatalf("RouteOfKey(%q) = %v, %v", m.Key, ok, err)
		}
		email := string(m.Key[len(prefixLegacyFailures):bytes.IndexByte(m.Key, 0)])
		if r != EmailRoute(email) {
			t.Errorf("old record %q routed away from its email's shard", m.Key)
		}
	}
	s := replay(t, old)
	if got := s.Failures("e@x.org"); got != 3 {
		t.Fatalf("failures of the old records = %d; want 3 (every address)", got)
	}
	p := AttemptPolicy{Tries: 5, Decay: time.Hour, LockFor: time.Hour}
	log := append([]Mutation(nil), old...)
	begin(s, &log, "e@x.org", t0.Add(2*time.Minute), p)
	if n := end(s, &log, "e@x.org", AttemptFailed, t0.Add(2*time.Minute)); n != 4 {
		t.Errorf("count after one more failure = %d; want 4", n)
	}
	// The write replaced the old records of that email.
	r := replay(t, log)
	if got := r.Failures("e@x.org"); got != 4 {
		t.Errorf("after replay = %d; want 4 (old records deleted, not added again)", got)
	}
	for _, m := range old[:2] {
		if _, ok := replayStore(log)[string(m.Key)]; ok {
			t.Errorf("old record %q not deleted by the new write", m.Key)
		}
	}
	if got := r.Failures("other@x.org"); got != 1 {
		t.Errorf("other email after replay = %d; want 1", got)
	}
	// A success forgets the old records too.
	begin(r, &log, "other@x.org", t0, p)
	end(r, &log, "other@x.org", AttemptSucceeded, t0)
	if got := replay(t, log).Failures("other@x.org"); got != 0 {
		t.Errorf("old record survived a success: %d", got)
	}
}

// An email that holds a NUL is an account like any other, not an old
// record, across a restart.
func TestAttemptsEmailWithNUL(t *testing.T) {
	s := New(Options{})
	p := AttemptPolicy{Tries: 5, Decay: time.Hour, LockFor: time.Hour}
	var log []Mutation
	const odd = "victim@x.org\x00junk"
	begin(s, &log, odd, t0, p)
	end(s, &log, odd, AttemptFailed, t0)
	r := replay(t, log)
	if got := r.Failures("victim@x.org"); got != 0 {
		t.Errorf("a failure of %q counted for victim@x.org after a restart: %d", odd, got)
	}
	if got := r.Failures(odd); got != 1 {
		t.Errorf("failures of %q after a restart = %d; want 1", odd, got)
	}
}

// replayStore is the store that log leaves.
func replayStore(log []Mutation) map[string][]byte {
	store := map[string][]byte{}
	for _, m := range log {
		if m.Value == nil {
			delete(store, string(m.Key))
		} else {
			store[string(m.Key)] = m.Value
		}
	}
	return store
}

// An attempt whose caller never ends it (it timed out before the shard
// reserved it) frees its place once stale, so lost attempts cannot block an
// account for good.
func TestAttemptsLostReservationsExpire(t *testing.T) {
	s := New(Options{})
	const key = "e@x.org"
	p := AttemptPolicy{Tries: 2, Decay: time.Hour, LockFor: time.Hour, Stale: time.Minute}
	var log []Mutation
	begin(s, &log, key, t0, p)
	begin(s, &log, key, t0, p) // both lost
	if a := begin(s, &log, key, t0.Add(p.Stale), p); a.Verdict != AttemptWait {
		t.Fatalf("within the stale time: %v; want wait", a.Verdict)
	}
	if a := begin(s, &log, key, t0.Add(p.Stale+time.Second), p); a.Verdict != AttemptVerify {
		t.Fatalf("after the stale time: %v; want verify", a.Verdict)
	}
}

func TestNeverAutoLocked(t *testing.T) {
	tests := []struct {
		name string
		u    User
		want bool
	}{
		{"superuser", User{ID: 10, Role: "superuser"}, true},
		{"the superuser account", User{ID: SuperuserID, Role: "superuser"}, true},
		{"anonymous", User{ID: AnonymousID, Role: "anonymous"}, true},
		{"locked system user", User{ID: DummyUserID, Role: "locked"}, true},
		{"staff", User{ID: 10, Role: "staff"}, false},
		{"authenticated", User{ID: FirstUserID, Role: "authenticated"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeverAutoLocked(&tt.u); got != tt.want {
				t.Errorf("NeverAutoLocked(%+v) = %v; want %v", tt.u, got, tt.want)
			}
		})
	}
}
