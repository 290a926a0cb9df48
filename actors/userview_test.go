package actors

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// startViewCore starts a core (8 shards, opts otherwise) with a user and
// sessions of it on every shard, each checked once (so every shard that
// can has a view of it).
func startViewCore(t *testing.T, uid shard.UserID, opts Options) (*Core, []shard.SessionDigest) {
	t.Helper()
	opts.Shards = 8
	c := startTestCore(t, opts)
	if _, err := Ask[shard.User](c, CreateUser{User: shard.User{ID: uid, Email: "viewed@example.org", FullName: "v0", IsActive: true, Role: "authenticated"}}); err != nil {
		t.Fatal(err)
	}
	var ds []shard.SessionDigest
	for i := range 32 {
		d := shard.DigestSession(fmt.Sprintf("view-session-%d", i))
		if _, err := Ask[shard.Session](c, CreateSession{Digest: d, UserID: uid, Expires: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckSession(c, d); err != nil {
			t.Fatalf("first check of session %d: %v", i, err)
		}
		ds = append(ds, d)
	}
	return c, ds
}

// Every change of a user is seen by every session check that starts after
// the change was answered, whichever shard holds the session: the views
// kept beside sessions never answer an old record.
func TestSessionCheckSeesUserChanges(t *testing.T) {
	const uid = shard.UserID(1000)
	c, ds := startViewCore(t, uid, Options{})
	tests := []struct {
		name  string
		op    Op
		check func(u shard.User) bool
	}{
		{"rename", EditUser{ID: uid, FullName: "v1", SetFullName: true}, func(u shard.User) bool { return u.FullName == "v1" }},
		{"role", EditUser{ID: uid, Role: "staff", SetRole: true}, func(u shard.User) bool { return u.Role == "staff" }},
		{"lock", LockUser{ID: uid}, func(u shard.User) bool { return !u.IsActive }},
		{"unlock", UnlockUser{ID: uid}, func(u shard.User) bool { return u.IsActive }},
		{"login try", RecordLoginTry{ID: uid, Success: true}, func(u shard.User) bool { return !u.LastLoginSuccess.IsZero() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Ask[any](c, tt.op); err != nil {
				t.Fatal(err)
			}
			for i, d := range ds {
				info, err := CheckSession(c, d)
				if err != nil || !tt.check(info.User) {
					t.Fatalf("session %d after %s: %+v, %v; want the changed user", i, tt.name, info.User, err)
				}
			}
		})
	}
	t.Run("delete", func(t *testing.T) {
		if _, err := Ask[any](c, DeleteUser{ID: uid}); err != nil {
			t.Fatal(err)
		}
		for i, d := range ds {
			if info, err := CheckSession(c, d); !errors.Is(err, shard.ErrSessionNotFound) {
				t.Fatalf("session %d of a deleted user: %+v, %v; want ErrSessionNotFound", i, info, err)
			}
		}
	})
}

// Once a session's shard has a view of the user, a check does not wait
// for the user's shard: it answers while that shard is busy.
func TestSessionCheckOneHop(t *testing.T) {
	if clusterTestEnv {
		t.Skip("cluster mode keeps the two-hop check")
	}
	const uid = shard.UserID(1001)
	c, ds := startViewCore(t, uid, Options{})
	_, userShard := c.pidOf(shard.UserRoute(uid))
	release := make(chan struct{})
	defer close(release)
	<-HoldShard(c, userShard, release)
	checked := 0
	for i, d := range ds {
		if _, s := c.pidOf(shard.SessionRoute(d)); s == userShard {
			continue // held too
		}
		if info, err := CheckSession(c, d); err != nil || info.User.ID != uid {
			t.Fatalf("session %d with the user's shard held: %+v, %v; want an answer from the view", i, info.User, err)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no session on another shard than its user's")
	}
}

// editRace edits user uid's full name to v1, v2, … v<edits>, each
// answered before the next, while every worker is called again and again
// (i counts its calls; floor is the last version answered before the call
// began) until the edits are done. A worker's error fails the test.
func editRace(t *testing.T, c *Core, uid shard.UserID, edits int64, workers ...func(i int, floor int64) error) {
	t.Helper()
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(workers))
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := w(i, acked.Load()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for v := int64(1); v <= edits; v++ {
		if _, err := Ask[EditResult](c, EditUser{ID: uid, FullName: "v" + strconv.FormatInt(v, 10), SetFullName: true}); err != nil {
			t.Fatal(err)
		}
		acked.Store(v)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// notOlder checks session d once: its user's version (the full name
// "v<n>") must be at least floor.
func notOlder(c *Core, d shard.SessionDigest, floor int64) error {
	info, err := CheckSession(c, d)
	if err != nil {
		return err
	}
	if v, _ := strconv.ParseInt(info.User.FullName[1:], 10, 64); v < floor {
		return fmt.Errorf("check answered version %d after version %d was answered", v, floor)
	}
	return nil
}

// Under concurrent edits and checks, a check never answers a record older
// than the last edit answered before it began (run with -race).
func TestSessionCheckViewsConcurrent(t *testing.T) {
	const uid = shard.UserID(1002)
	c, ds := startViewCore(t, uid, Options{})
	var checkers []func(int, int64) error
	for g := range 4 {
		checkers = append(checkers, func(i int, floor int64) error { return notOlder(c, ds[(g+i)%len(ds)], floor) })
	}
	editRace(t, c, uid, 300, checkers...)
}

// An owner's own key is verified in one message once the key's shard has a
// view of the owner, and every change of the owner is seen by the next
// verification, on every key's shard.
func TestVerifyOwnKeySeesUserChanges(t *testing.T) {
	const uid = shard.UserID(1003)
	c := startTestCore(t, Options{Shards: 8})
	if _, err := Ask[shard.User](c, CreateUser{User: shard.User{ID: uid, Email: "keys@example.org", IsActive: true, Role: "authenticated"}}); err != nil {
		t.Fatal(err)
	}
	var keys []shard.APIKeyDigest
	for i := range 16 {
		d := shard.DigestAPIKey(fmt.Sprintf("view-key-%d", i))
		if _, err := Ask[shard.APIKey](c, CreateAPIKey{Digest: d, Key: shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: uid, Role: "authenticated", Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour}}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, d)
	}
	verify := func(d shard.APIKeyDigest) KeyVerdict {
		t.Helper()
		res, err := Ask[*KeyVerdict](c, VerifyOwnAPIKey{Kind: shard.KeyNoSession, Digest: d, UserID: uid, KeyRole: "authenticated", ActorRole: "authenticated"})
		if err != nil {
			t.Fatal(err)
		}
		return *res.Value
	}
	// The standing the owner's own shard gives now: what every verdict
	// must say.
	truth := func() Standing {
		res, err := Ask[Standing](c, CheckUserStanding{ID: uid, Role: "authenticated", KeyRole: "authenticated"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Value
	}
	tests := []struct {
		name string
		op   Op
	}{
		{"first check (views installed)", nil},
		{"lock", LockUser{ID: uid}},
		{"unlock", UnlockUser{ID: uid}},
		{"role change", EditUser{ID: uid, Role: "staff", SetRole: true}},
		{"role back", EditUser{ID: uid, Role: "authenticated", SetRole: true}},
		{"deactivate", EditUser{ID: uid, IsActive: false, SetIsActive: true}},
		{"delete", DeleteUser{ID: uid}},
	}
	seen := map[Standing]bool{}
	for _, tt := range tests {
		if tt.op != nil {
			if _, err := Ask[any](c, tt.op); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		}
		want := truth()
		seen[want] = true
		for i, d := range keys {
			if v := verify(d); !v.Valid || v.Key.UserID != uid || v.Standing != want {
				t.Fatalf("%s: key %d: valid %v, standing %b; want valid, standing %b", tt.name, i, v.Valid, v.Standing, want)
			}
		}
	}
	if len(seen) < 3 {
		t.Errorf("the steps gave only standings %v: the test changes too little", seen)
	}
	if v := verify(shard.DigestAPIKey("no such key")); v.Valid {
		t.Errorf("an unknown key verified")
	}
}

// With a view in place, verifying an own key does not wait for the
// owner's shard.
func TestVerifyOwnKeyOneHop(t *testing.T) {
	if clusterTestEnv {
		t.Skip("cluster mode keeps two hops")
	}
	const uid = shard.UserID(1004)
	c := startTestCore(t, Options{Shards: 8})
	if _, err := Ask[shard.User](c, CreateUser{User: shard.User{ID: uid, IsActive: true, Role: "authenticated"}}); err != nil {
		t.Fatal(err)
	}
	_, userShard := c.pidOf(shard.UserRoute(uid))
	var d shard.APIKeyDigest
	for i := 0; ; i++ {
		d = shard.DigestAPIKey(fmt.Sprintf("one-hop-key-%d", i))
		if _, s := c.pidOf(shard.APIKeyRoute(d)); s != userShard {
			break
		}
	}
	if _, err := Ask[shard.APIKey](c, CreateAPIKey{Digest: d, Key: shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: uid, Role: "authenticated", Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	op := VerifyOwnAPIKey{Kind: shard.KeyNoSession, Digest: d, UserID: uid, KeyRole: "authenticated", ActorRole: "authenticated"}
	if _, err := Ask[*KeyVerdict](c, op); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	<-HoldShard(c, userShard, release)
	if res, err := Ask[*KeyVerdict](c, op); err != nil || !res.Value.Valid || res.Value.Standing == 0 {
		t.Fatalf("with the owner's shard held: %+v, %v; want an answer from the view", res.Value, err)
	}
}

// viewTotals sums the views and watches of every shard.
func viewTotals(t *testing.T, c *Core) (views, watches int) {
	t.Helper()
	res, err := AskAll[shard.Counts](c, CountRecords{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		views += r.Value.Views
		watches += r.Value.Watches
	}
	return views, watches
}

// Once a user has no session left on a shard, the sweep drops that shard's
// view and the user's shard stops pushing to it; a new session's first
// check installs a view again, which then follows the user's changes.
func TestIdleViewsDropped(t *testing.T) {
	if clusterTestEnv {
		t.Skip("cluster mode keeps no views")
	}
	const uid = shard.UserID(1005)
	c, ds := startViewCore(t, uid, Options{SweepInterval: 20 * time.Millisecond})
	if v, w := viewTotals(t, c); v == 0 || v != w {
		t.Fatalf("after the checks: %d views, %d watches; want as many of each, some", v, w)
	}
	for _, d := range ds {
		if _, err := Ask[bool](c, DeleteSession{Digest: d}); err != nil {
			t.Fatal(err)
		}
	}
	// Liveness, not speed: sweeps run every 20 ms; give them ample time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, w := viewTotals(t, c)
		if v == 0 && w == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("views and watches not dropped: %d views, %d watches", v, w)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := shard.DigestSession("idle-view-again")
	if _, err := Ask[shard.Session](c, CreateSession{Digest: d, UserID: uid, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		name := fmt.Sprintf("v%d", i+1)
		if _, err := Ask[EditResult](c, EditUser{ID: uid, FullName: name, SetFullName: true}); err != nil {
			t.Fatal(err)
		}
		if info, err := CheckSession(c, d); err != nil || info.User.FullName != name {
			t.Fatalf("check %d after the views were dropped: %q, %v; want %q", i, info.User.FullName, err, name)
		}
	}
}

// Views dropped and installed again while the user changes: sessions are
// ended and made again, sweeps run every millisecond, and a check never
// answers a version older than the last edit answered before it began
// (run with -race).
func TestViewsChurn(t *testing.T) {
	if clusterTestEnv {
		t.Skip("cluster mode keeps no views")
	}
	const uid = shard.UserID(1006)
	c := startTestCore(t, Options{Shards: 8, SweepInterval: time.Millisecond})
	if _, err := Ask[shard.User](c, CreateUser{User: shard.User{ID: uid, FullName: "v0", IsActive: true}}); err != nil {
		t.Fatal(err)
	}
	digest := func(i int) shard.SessionDigest { return shard.DigestSession(fmt.Sprintf("churn-%d", i)) }
	const n = 16
	// Ends and makes all sessions again, so views go and come back: a
	// shard with none left drops its view at its next sweep.
	churn := func(i int, _ int64) error {
		for j := range n {
			_, _ = Ask[bool](c, DeleteSession{Digest: digest(j)})
		}
		if i%2 == 1 {
			time.Sleep(2 * time.Millisecond) // a sweep or two in between
		}
		for j := range n {
			if _, err := Ask[shard.Session](c, CreateSession{Digest: digest(j), UserID: uid, Expires: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	}
	workers := []func(int, int64) error{churn}
	for g := range 3 {
		workers = append(workers, func(i int, floor int64) error {
			if err := notOlder(c, digest((g+i)%n), floor); !errors.Is(err, shard.ErrSessionNotFound) {
				return err // a session between its end and its making again is no error
			}
			return nil
		})
	}
	editRace(t, c, uid, 400, workers...)
}
