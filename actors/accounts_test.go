package actors

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/shard"
)

// The flows on accounts, tested on a real core and a real (in-process,
// cheap) Argon2 pool, without HTTP.

// accountsT0 is the start of the test clock.
var accountsT0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// accountsHarness is a core of 4 shards on a clock the test moves, a hasher
// pool and the flows over them.
type accountsHarness struct {
	*Accounts
	now    atomic.Int64
	hasher *passhash.Hasher
}

// testHashParams makes hashing cheap in tests; the flows do not depend on
// the cost.
var testHashParams = passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

func startAccounts(t *testing.T, opts AccountOptions) *accountsHarness {
	t.Helper()
	h := &accountsHarness{}
	h.now.Store(accountsT0.UnixNano())
	lg := slog.New(slog.DiscardHandler)
	core := startTestCore(t, Options{Shards: 4, Logger: lg, Now: h.clock})
	h.hasher = passhash.NewHasher(core.system, passhash.HasherOptions{Workers: 2, Params: testHashParams})
	t.Cleanup(h.hasher.Stop)
	if opts.Logger == nil {
		opts.Logger = lg
	}
	opts.NoBackoffDelay = true
	h.Accounts = NewAccounts(core, h.hasher, opts)
	return h
}

func (h *accountsHarness) clock() time.Time { return time.Unix(0, h.now.Load()).UTC() }

func (h *accountsHarness) advance(d time.Duration) { h.now.Add(int64(d)) }

// addUser stores an active, verified user of role with a hash of password.
func (h *accountsHarness) addUser(t *testing.T, id shard.UserID, email, password, role string) shard.User {
	t.Helper()
	phc, err := h.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	u := shard.User{ID: id, Email: email, PasswordPHC: phc, Role: role, IsActive: true, EmailVerified: true, SystemID: email}
	if _, err := Ask[shard.User](h.core, CreateUser{User: u}); err != nil {
		t.Fatal(err)
	}
	if _, err := Ask[Claim](h.core, ClaimEmail{Email: email, ID: id}); err != nil {
		t.Fatal(err)
	}
	return u
}

// newSession makes a live session of uid and returns its digest.
func (h *accountsHarness) newSession(t *testing.T, token string, uid shard.UserID) shard.SessionDigest {
	t.Helper()
	d := shard.DigestSession(token)
	if _, err := Ask[shard.Session](h.core, CreateSession{Digest: d, UserID: uid, IPAddress: "192.0.2.1", UserAgent: "test", Expires: h.clock().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *accountsHarness) sessionLive(t *testing.T, d shard.SessionDigest) bool {
	t.Helper()
	_, ok, err := h.session(d)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (h *accountsHarness) getUser(t *testing.T, id shard.UserID) shard.User {
	t.Helper()
	u, found, err := h.user(id)
	if err != nil || !found {
		t.Fatalf("user %d: found %v, %v", id, found, err)
	}
	return u
}

func TestLoginFlow(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	h.addUser(t, 10, "alice@example.org", "correct horse battery", "authenticated")
	// A lock by hand deactivates the account: it is no longer eligible, so
	// even its right password answers as a wrong one (one dummy
	// verification, as for an unknown email). An active account whose role
	// is "locked" is refused after its password matched.
	handLocked := h.addUser(t, 11, "idle@example.org", "correct horse battery", "authenticated")
	if _, err := h.editUser(LockUser{ID: handLocked.ID}); err != nil {
		t.Fatal(err)
	}
	h.addUser(t, 12, "held@example.org", "correct horse battery", "locked")
	tests := []struct {
		name, email, password string
		noSession             bool
		want                  Refusal
		wantUser              shard.UserID
	}{
		{"right password", "alice@example.org", "correct horse battery", false, "", 10},
		{"any spelling of the email", "  Alice@Example.ORG ", "correct horse battery", false, "", 10},
		{"wrong password", "alice@example.org", "wrong", false, RefusedBadPassword, 0},
		{"unknown email", "nobody@example.org", "correct horse battery", false, RefusedBadPassword, 0},
		{"no session", "alice@example.org", "correct horse battery", true, RefusedNoSession, 0},
		{"locked by hand, right password", "idle@example.org", "correct horse battery", false, RefusedBadPassword, 0},
		{"role locked, right password", "held@example.org", "correct horse battery", false, RefusedInactive, 12},
		{"role locked, wrong password", "held@example.org", "wrong", false, RefusedBadPassword, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := shard.DigestSession("anon-" + tt.name)
			if !tt.noSession {
				d = h.newSession(t, "anon-"+tt.name, shard.AnonymousID)
			}
			got, err := h.Login(d, tt.email, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if got.Refusal != tt.want || got.User.ID != tt.wantUser {
				t.Errorf("Login = %q user %d; want %q user %d", got.Refusal, got.User.ID, tt.want, tt.wantUser)
			}
			if h.sessionLive(t, d) {
				t.Error("the presented session is still live after the login")
			}
		})
	}
	u := h.getUser(t, 10)
	if u.LastLoginSuccess.IsZero() || u.LastLoginTry.IsZero() {
		t.Errorf("login times not recorded: %+v", u)
	}
}

// A stored hash made with weaker parameters is replaced at the next
// successful login; a failed one leaves it.
func TestLoginRehashes(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	weak := passhash.NewHasher(NewActorSystem(slog.New(slog.DiscardHandler)), passhash.HasherOptions{Workers: 1, Params: passhash.HashParams{TimeCost: 1, MemoryKiB: 32, Threads: 1, KeyLen: 32, SaltLen: 16}})
	defer weak.Stop()
	rs, err := weak.Run(passhash.HashOp{Password: "correct horse battery"})
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs[0].Err)
	}
	u := shard.User{ID: 10, Email: "alice@example.org", PasswordPHC: rs[0].PHC, Role: "authenticated", IsActive: true, EmailVerified: true}
	if _, err := Ask[shard.User](h.core, CreateUser{User: u}); err != nil {
		t.Fatal(err)
	}
	if _, err := Ask[Claim](h.core, ClaimEmail{Email: u.Email, ID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Login(h.newSession(t, "s1", shard.AnonymousID), u.Email, "wrong"); err != nil || got.OK() {
		t.Fatalf("wrong password: %+v, %v", got, err)
	}
	if h.getUser(t, 10).PasswordPHC != u.PasswordPHC {
		t.Fatal("a failed login changed the stored hash")
	}
	if got, err := h.Login(h.newSession(t, "s2", shard.AnonymousID), u.Email, "correct horse battery"); err != nil || !got.OK() {
		t.Fatalf("right password: %+v, %v", got, err)
	}
	if h.getUser(t, 10).PasswordPHC == u.PasswordPHC {
		t.Error("the weak hash was kept after a successful login")
	}
	if got, err := h.PassCheckEmail(u.Email, "correct horse battery"); err != nil || !got.OK() {
		t.Errorf("the new hash does not verify: %+v, %v", got, err)
	}
}

// LockTries failures lock an account: every flow that verifies its password
// then answers RefusedLockedOut without verifying, its sessions end, and the
// lock ends by itself after LockTime.
func TestBackoffLocksAndUnlocks(t *testing.T) {
	h := startAccounts(t, AccountOptions{LockTries: 3, LockTime: time.Hour})
	h.addUser(t, 10, "alice@example.org", "correct horse battery", "authenticated")
	own := h.newSession(t, "alice-session", 10)
	for i := range 3 {
		got, err := h.PassCheckEmail("alice@example.org", "wrong")
		if err != nil || got.Refusal != RefusedBadPassword {
			t.Fatalf("failure %d: %+v, %v", i+1, got, err)
		}
	}
	for _, try := range []struct {
		name string
		run  func() (Answer, error)
	}{
		{"login, right password", func() (Answer, error) {
			return h.Login(h.newSession(t, "anon", shard.AnonymousID), "alice@example.org", "correct horse battery")
		}},
		{"passcheck, right password", func() (Answer, error) { return h.PassCheckEmail("ALICE@example.org", "correct horse battery") }},
	} {
		got, err := try.run()
		if err != nil || got.Refusal != RefusedLockedOut {
			t.Errorf("%s while locked out: %+v, %v; want %q", try.name, got, err, RefusedLockedOut)
		}
	}
	u := h.getUser(t, 10)
	if u.Role != "locked" || u.AutoUnlockAt.IsZero() {
		t.Errorf("after the lock-out: role %q, auto unlock %v; want locked until a time", u.Role, u.AutoUnlockAt)
	}
	if h.sessionLive(t, own) {
		t.Error("the locked user's session survived the lock")
	}
	h.advance(time.Hour + time.Second)
	got, err := h.Login(h.newSession(t, "anon2", shard.AnonymousID), "alice@example.org", "correct horse battery")
	if err != nil || !got.OK() || got.User.Role != "authenticated" {
		t.Errorf("login after the lock time: %+v, %v; want success as authenticated", got, err)
	}
}

// A superuser is never locked: its window opens but the account keeps its
// role, and the window is shorter than LockTime.
func TestBackoffSparesSuperuser(t *testing.T) {
	h := startAccounts(t, AccountOptions{LockTries: 2, LockTime: time.Hour})
	h.addUser(t, shard.SuperuserID, "root@example.org", "correct horse battery", "superuser")
	for range 2 {
		if _, err := h.PassCheckEmail("root@example.org", "wrong"); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := h.PassCheckEmail("root@example.org", "correct horse battery"); got.Refusal != RefusedLockedOut {
		t.Fatalf("superuser right after the failures: %+v; want refused for a window", got)
	}
	if u := h.getUser(t, shard.SuperuserID); u.Role != "superuser" {
		t.Errorf("superuser role after repeated failures: %q", u.Role)
	}
	h.advance(protectedWindow(1, time.Hour) + time.Second)
	if got, err := h.PassCheckEmail("root@example.org", "correct horse battery"); err != nil || !got.OK() {
		t.Errorf("superuser after its window: %+v, %v", got, err)
	}
}

// PassCheck checks the password of the session's user and keeps the
// session.
func TestPassCheckFlow(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	h.addUser(t, 10, "alice@example.org", "correct horse battery", "staff")
	d := h.newSession(t, "alice", 10)
	orphan := h.newSession(t, "orphan", 99)
	tests := []struct {
		name     string
		session  shard.SessionDigest
		password string
		want     Refusal
	}{
		{"right password", d, "correct horse battery", ""},
		{"wrong password", d, "wrong", RefusedBadPassword},
		{"no session", shard.DigestSession("none"), "correct horse battery", RefusedNoSession},
		{"session of a missing user", orphan, "correct horse battery", RefusedBadPassword},
	}
	for _, tt := range tests {
		got, err := h.PassCheck(tt.session, tt.password)
		if err != nil || got.Refusal != tt.want {
			t.Errorf("%s: %+v, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if !h.sessionLive(t, d) {
		t.Error("PassCheck ended the session")
	}
}

// A fault of the hasher is an error, never a failed password: however often
// it happens, the account is not locked.
func TestHasherFaultIsNoFailure(t *testing.T) {
	h := startAccounts(t, AccountOptions{LockTries: 2})
	h.addUser(t, 10, "alice@example.org", "correct horse battery", "authenticated")
	dead := passhash.NewHasher(NewActorSystem(slog.New(slog.DiscardHandler)), passhash.HasherOptions{
		Params: testHashParams, Process: []string{"false"}, Timeout: time.Minute,
	})
	defer dead.Stop()
	faulty := NewAccounts(h.core, dead, h.opts)
	for i := range 4 {
		if got, err := faulty.PassCheckEmail("alice@example.org", "wrong"); err == nil {
			t.Fatalf("attempt %d with a dead hash worker: %+v; want an error", i, got)
		} else if errors.Is(err, ErrBusy) {
			t.Fatalf("attempt %d: %v; want a hasher fault", i, err)
		}
	}
	if got, err := h.PassCheckEmail("alice@example.org", "correct horse battery"); err != nil || !got.OK() {
		t.Errorf("after hasher faults: %+v, %v; want success", got, err)
	}
}
