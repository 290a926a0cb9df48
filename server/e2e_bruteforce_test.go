package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// Brute-force protection (docs/security.md, "Brute-force back-off and
// auto-lock") as an attacker meets it: failures are counted per account
// whatever the client address, every request that verifies a password is
// under the same count, a locked account verifies nothing, and right
// passwords never count.

const msgLocked = "Your user account has been locked after repeated login failures. Try again in an hour or contact the server admins."

// isLockAnswer reports whether r is the auto-lock reply: no success, no
// failure_reason, the exact message, user_id null.
func isLockAnswer(r *client.Response) bool {
	uid, present := r.Response["user_id"]
	return r.StatusCode == 200 && !r.Success && r.FailureReason == "" &&
		len(r.Messages) == 1 && r.Messages[0] == msgLocked && present && uid == nil
}

// isVerified reports whether r is an answer that needed the password to be
// verified (a password failure or a success), as opposed to the lock reply.
func isVerified(r *client.Response) bool {
	return r.StatusCode == 200 && (r.Success || r.FailureReason != "")
}

// attack sends n requests at once, the i-th made by req(i), and returns the
// answers.
func attack(ts *servertest.Server, n int, req func(i int) (string, map[string]any)) []*client.Response {
	out := make([]*client.Response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		typ, body := req(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = ts.Do(typ, body)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// botIP is the i-th address of a botnet: every guess from a new address,
// half of them from one IPv6 /64.
func botIP(i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("2001:db8:1:2::%x", i+1)
	}
	return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
}

func role(ts *servertest.Server, email string) any {
	return ts.MustSucceed("user-lookup-email", map[string]any{"email": email}).Map("user_info")["user_role"]
}

func TestBruteForceCountsPerAccountAcrossAddresses(t *testing.T) {
	const tries = 3
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)), servertest.Env("AUTHNZERVER_HASHQUEUE", "64"))
	const email = "botnet@example.org"
	ts.NewUser(email, goodPassword)
	sessions := make([]string, 30)
	for i := range sessions {
		sessions[i] = ts.NewSession(0)
	}
	// Every guess from a new address, by the two requests that check an
	// email and password; they share one count.
	rs := attack(ts, len(sessions), func(i int) (string, map[string]any) {
		body := map[string]any{"email": email, "password": fmt.Sprintf("guess-%d", i), "client_ipaddr": botIP(i)}
		if i%2 == 0 {
			body["session_token"] = sessions[i]
			return "user-login", body
		}
		return "user-passcheck-nosession", body
	})
	verified, locked := 0, 0
	for i, r := range rs {
		switch {
		case isLockAnswer(r):
			locked++
		case isVerified(r) && !r.Success:
			verified++
		default:
			t.Errorf("guess %d: status %d success %v reason %q messages %q", i, r.StatusCode, r.Success, r.FailureReason, r.Messages)
		}
	}
	if verified > tries || verified+locked != len(rs) {
		t.Errorf("%d guesses from %d addresses were verified, %d refused; want at most %d verified", verified, len(rs), locked, tries)
	}
	if got := role(ts, email); got != "locked" {
		t.Errorf("role after the guesses = %v; want locked", got)
	}
	// The owner, from yet another address, gets the lock answer too.
	r := ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": goodPassword, "client_ipaddr": "203.0.113.200"})
	if !isLockAnswer(r) {
		t.Errorf("right password during the lock: success %v reason %q messages %q; want the lock answer", r.Success, r.FailureReason, r.Messages)
	}
}

// The superuser is never locked, but it gets no unlimited guesses either: a
// refusal window that grows with each lock-out. The price (documented) is
// that the admin cannot log in during a window, unless an operator unlocks.
func TestBruteForceSuperuserBounded(t *testing.T) {
	const tries = 2
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)), servertest.Env("AUTHNZERVER_HASHQUEUE", "64"))
	guesses := func(n, from int) (verified int) {
		rs := attack(ts, n, func(i int) (string, map[string]any) {
			return "user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": fmt.Sprintf("guess-%d", i), "client_ipaddr": botIP(from + i)}
		})
		for i, r := range rs {
			if isVerified(r) {
				verified++
			} else if !isLockAnswer(r) {
				t.Errorf("guess %d: status %d reason %q messages %q", i, r.StatusCode, r.FailureReason, r.Messages)
			}
		}
		return verified
	}
	admin := func() *client.Response {
		return ts.Do("user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": servertest.AdminPassword, "client_ipaddr": "192.0.2.1"})
	}
	if v := guesses(20, 0); v > tries {
		t.Fatalf("%d of 20 guesses at the superuser from 20 addresses were verified; want at most %d", v, tries)
	}
	if got := role(ts, servertest.AdminEmail); got != "superuser" {
		t.Errorf("superuser role after the guesses = %v; want superuser (never locked)", got)
	}
	if r := admin(); !isLockAnswer(r) {
		t.Errorf("admin inside the first window: success %v reason %q; want the lock answer", r.Success, r.FailureReason)
	}
	// The first window is 40 s. After it the account has its tries again,
	// and the next lock-out opens a longer window.
	ts.Advance(41 * time.Second)
	if v := guesses(20, 100); v > tries {
		t.Fatalf("after the first window %d of 20 guesses were verified; want at most %d", v, tries)
	}
	ts.Advance(41 * time.Second)
	if r := admin(); !isLockAnswer(r) {
		t.Errorf("admin 41 s into the second window: success %v reason %q; want the lock answer (the window grew)", r.Success, r.FailureReason)
	}
	ts.Advance(40 * time.Second)
	if r := admin(); !r.Success {
		t.Errorf("admin after the second window: reason %q messages %q; want success", r.FailureReason, r.Messages)
	}
}

func TestBruteForceOperatorUnlockEndsSuperuserWindow(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", "1"))
	for i := 0; i < 3; i++ {
		ts.Do("user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": "wrong", "client_ipaddr": "203.0.113.66"})
	}
	ts.MustSucceed("internal-user-lock", map[string]any{"target_userid": 1, "action": "unlock"})
	r := ts.Do("user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": servertest.AdminPassword, "client_ipaddr": "198.51.100.7"})
	if !r.Success {
		t.Errorf("superuser after an operator's unlock: %q %q; want success", r.FailureReason, r.Messages)
	}
}

// Right passwords in flight at once neither lock the account nor get the
// lock answer, however many there are.
func TestBruteForceParallelRightPasswords(t *testing.T) {
	const tries, n = 3, 8
	// One slow-ish hasher worker keeps all n verifications in flight at once.
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)),
		servertest.Env("AUTHNZERVER_WORKERS", "1"), servertest.Env("AUTHNZERVER_HASHQUEUE", "64"),
		servertest.Env("AUTHNZERVER_ARGON2", "t=2,m=8192,p=1"))
	const email = "parallel@example.org"
	ts.NewUser(email, goodPassword)
	for _, typ := range []string{"user-login", "user-passcheck-nosession"} {
		sessions := make([]string, n)
		for i := range sessions {
			sessions[i] = ts.NewSession(0)
		}
		rs := attack(ts, n, func(i int) (string, map[string]any) {
			return typ, map[string]any{"session_token": sessions[i], "email": email, "password": goodPassword}
		})
		for i, r := range rs {
			if !r.Success {
				t.Errorf("%s %d of %d parallel right passwords: status %d reason %q messages %q; want success", typ, i, n, r.StatusCode, r.FailureReason, r.Messages)
			}
		}
		if got := role(ts, email); got != "authenticated" {
			t.Fatalf("role after %d parallel right passwords = %v; want authenticated", n, got)
		}
	}
}

// Every request that verifies a password is under the same count and lock:
// after the tries are used up, even the right password gets the lock answer
// and changes nothing.
func TestBruteForceEveryPasswordCheck(t *testing.T) {
	const tries = 2
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)))
	tests := []struct {
		reqType string
		body    func(uid int64, email, password string) map[string]any
	}{
		{"user-login", func(_ int64, email, pw string) map[string]any {
			return map[string]any{"session_token": ts.NewSession(0), "email": email, "password": pw}
		}},
		{"user-passcheck-nosession", func(_ int64, email, pw string) map[string]any {
			return map[string]any{"email": email, "password": pw}
		}},
		// session-new asks for no credential, so a session for any user id
		// is easy to get: user-passcheck is an oracle without the count.
		{"user-passcheck", func(uid int64, _, pw string) map[string]any {
			return map[string]any{"session_token": ts.NewSession(uid), "password": pw}
		}},
		{"user-changepass", func(uid int64, email, pw string) map[string]any {
			return map[string]any{"user_id": uid, "session_token": ts.NewSession(uid), "full_name": "Test User", "email": email, "current_password": pw, "new_password": newPassword}
		}},
		{"user-changepass-nosession", func(uid int64, email, pw string) map[string]any {
			return map[string]any{"user_id": uid, "full_name": "Test User", "email": email, "current_password": pw, "new_password": newPassword}
		}},
		{"user-delete", func(uid int64, email, pw string) map[string]any {
			return map[string]any{"user_id": uid, "email": email, "password": pw}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.reqType, func(t *testing.T) {
			t.Parallel()
			email := tt.reqType + "@example.org"
			uid := ts.NewUser(email, goodPassword)
			for i := 0; i < tries; i++ {
				r := ts.Do(tt.reqType, tt.body(uid, email, fmt.Sprintf("wrong-%d", i)))
				if r.Success || !isVerified(r) {
					t.Fatalf("wrong password %d: success %v reason %q messages %q", i, r.Success, r.FailureReason, r.Messages)
				}
			}
			r := ts.Do(tt.reqType, tt.body(uid, email, goodPassword))
			if !isLockAnswer(r) {
				t.Fatalf("right password after %d failures: success %v reason %q messages %q; want the lock answer", tries, r.Success, r.FailureReason, r.Messages)
			}
			// The right password changed nothing: the user is there, locked,
			// and after an operator's unlock has its old password.
			if got := role(ts, email); got != "locked" {
				t.Errorf("role = %v; want locked", got)
			}
			ts.MustSucceed("internal-user-lock", map[string]any{"target_userid": uid, "action": "unlock"})
			if !login(ts, email, goodPassword) {
				t.Errorf("old password refused after the unlock")
			}
		})
	}
}

// A refusal after the current password matched (same or insecure new
// password, a superuser that cannot be deleted) is not a password failure.
func TestBruteForceRightPasswordRefusalsNotCounted(t *testing.T) {
	const tries = 2
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)))
	const email = "refused@example.org"
	uid := ts.NewUser(email, goodPassword)
	for i := 0; i < tries+2; i++ {
		next := []string{goodPassword, "short"}[i%2]
		r := ts.Do("user-changepass-nosession", map[string]any{"user_id": uid, "full_name": "Test User", "email": email, "current_password": goodPassword, "new_password": next})
		if r.FailureReason != "password did not change" && r.FailureReason != "new password is insecure" {
			t.Fatalf("change %d: reason %q messages %q", i, r.FailureReason, r.Messages)
		}
		r = ts.Do("user-delete", map[string]any{"user_id": 1, "email": servertest.AdminEmail, "password": servertest.AdminPassword})
		if r.FailureReason != "can't delete superusers" {
			t.Fatalf("delete superuser %d: reason %q messages %q", i, r.FailureReason, r.Messages)
		}
	}
	if !login(ts, email, goodPassword) {
		t.Errorf("user refused after right-password refusals")
	}
}

// While an account is locked, no request from any address tells the right
// password from a wrong one.
func TestBruteForceLockedAccountNoOracle(t *testing.T) {
	const tries = 2
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)))
	const email = "oracle@example.org"
	uid := ts.NewUser(email, goodPassword)
	for i := 0; i <= tries; i++ {
		ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": "wrong", "client_ipaddr": "203.0.113.9"})
	}
	if got := role(ts, email); got != "locked" {
		t.Fatalf("role = %v; want locked", got)
	}
	for _, pw := range []string{goodPassword, "wrong"} {
		for _, req := range []struct {
			typ  string
			body map[string]any
		}{
			{"user-passcheck-nosession", map[string]any{"email": strings.ToUpper(email), "password": pw}},
			{"user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": pw}},
			{"user-passcheck", map[string]any{"session_token": ts.NewSession(uid), "password": pw}},
			{"user-delete", map[string]any{"user_id": uid, "email": email, "password": pw}},
		} {
			req.body["client_ipaddr"] = "2001:db8:77::1"
			if r := ts.Do(req.typ, req.body); !isLockAnswer(r) {
				t.Errorf("%s while locked, from another address (right password %v): success %v reason %q messages %q; want the lock answer", req.typ, pw == goodPassword, r.Success, r.FailureReason, r.Messages)
			}
		}
	}
	// When the lock time is over, the owner gets in.
	ts.Advance(time.Hour + time.Second)
	if !login(ts, email, goodPassword) {
		t.Errorf("right password after the lock time refused")
	}
}

// Failed logins as the anonymous system user must not lock it: that would
// end every anonymous session of every frontend.
func TestBruteForceAnonymousUserNeverLocked(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", "1"))
	anon := ts.NewSession(0)
	for i := 0; i < 3; i++ {
		ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": "anonuser@localhost", "password": "wrong"})
	}
	if !alive(ts, anon) {
		t.Errorf("an anonymous session ended after failed logins as the anonymous user")
	}
	if got := role(ts, "anonuser@localhost"); got != "anonymous" {
		t.Errorf("anonymous user role = %v; want anonymous", got)
	}
}

// Failure records written when counts were kept per (email, address) still
// load after the change, and count for the account.
func TestBruteForceOldFailureRecordsLoad(t *testing.T) {
	const tries = 3
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", fmt.Sprint(tries)))
	const email = "legacy@example.org"
	ts.NewUser(email, goodPassword)
	ts.Stop()
	writeOldFailureRecords(t, ts.DataDir(), email, tries)
	ts.Restart()
	r := ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": goodPassword, "client_ipaddr": "192.0.2.99"})
	if !isLockAnswer(r) {
		t.Errorf("login after %d old-format failures from other addresses: success %v reason %q; want the lock answer", tries, r.Success, r.FailureReason)
	}
}

// writeOldFailureRecords writes, into the stopped server's store, failure
// records in the old per-(email, address) format: n addresses with one
// recent failure each.
func writeOldFailureRecords(t *testing.T, dataDir, email string, n int) {
	t.Helper()
	st, err := persist.Open(filepath.Join(dataDir, "db"), persist.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	for i := range n {
		key := fmt.Sprintf("f/%s\x00203.0.113.%d", email, i+1)
		val := fmt.Sprintf(`{"n":1,"last":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
		if err := st.Writer().Enqueue(persist.Op{Key: []byte(key), Value: []byte(val)}).Wait(); err != nil {
			t.Fatalf("write old record: %v", err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
}

// spelling is the i-th spelling of an ASCII email that every lookup takes
// for the same account: some characters fullwidth (NFKC folds them back),
// some upper case.
func spelling(email string, i int) string {
	var b strings.Builder
	for j, c := range email {
		switch (i >> (j % 8)) & 3 {
		case 1:
			c += 0xFEE0 // fullwidth form
		case 2:
			c = []rune(strings.ToUpper(string(c)))[0]
		}
		b.WriteRune(c)
	}
	return b.String()
}

// The per-email rate limit of a code check holds for every spelling of the
// address, from every client address (a 4-digit code must not be guessable
// by spelling the email anew on each try).
func TestBruteForceEmailRateLimitEverySpelling(t *testing.T) {
	ts := servertest.Start(t, servertest.DefaultRateLimits())
	const email = "code@example.org"
	ts.NewUser(email, goodPassword)
	const limit, n = 5, 30 // user-verify-emailtoken: 5 a minute per email
	seen := map[string]bool{}
	passed := 0
	for i := range n {
		sp := spelling(email, i+1)
		seen[sp] = true
		r := ts.Do("user-verify-emailtoken", map[string]any{"email": sp, "verification_token": fmt.Sprintf("%04d", i), "purpose": "forgotpass", "client_ipaddr": botIP(i)})
		if r.StatusCode != 429 {
			passed++
		}
	}
	if len(seen) < limit+1 {
		t.Fatalf("only %d distinct spellings; the test needs more than %d", len(seen), limit)
	}
	if passed > limit {
		t.Errorf("%d of %d code checks with %d spellings of one email passed the rate limit; want at most %d", passed, n, len(seen), limit)
	}
}
