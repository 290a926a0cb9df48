package server_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/server/servertest"
)

const goodPassword = "Zq8#vLm2!pRt7wX"

func TestSignUp(t *testing.T) {
	ts := servertest.Start(t)
	r := ts.MustSucceed("user-new", map[string]any{"full_name": "Jane <b>Public</b>", "email": "Jane.Public@Example.NET", "password": goodPassword, "extra_info": map[string]any{"plan": "free"}})
	if got := r.Str("user_email"); got != "jane.public@example.net" {
		t.Errorf("user_email = %q; want normalised jane.public@example.net", got)
	}
	if id, _ := r.Int("user_id"); id != 4 {
		t.Errorf("first user id = %d; want 4", id)
	}
	if r.Response["send_verification"] != true || len(r.Str("system_id")) != 36 {
		t.Errorf("send_verification %v system_id %q", r.Response["send_verification"], r.Str("system_id"))
	}
	if r.Messages[0] != "User account created. Please verify your email address to log in." {
		t.Errorf("messages %q", r.Messages)
	}
	// The new user is locked, inactive and unverified until verified.
	r = ts.MustSucceed("internal-user-edit", map[string]any{"target_userid": 4, "update_dict": map[string]any{"extra_info": map[string]any{"x": 1}}})
	info := r.Map("user_info")
	if info["user_role"] != "locked" || info["is_active"] != false || info["email_verified"] != false {
		t.Errorf("new user info = %v", info)
	}
	if info["full_name"] != "Jane &lt;b&gt;Public&lt;/b&gt;" {
		t.Errorf("full_name = %q; want HTML-escaped", info["full_name"])
	}
	extra := info["extra_info"].(map[string]any)
	if extra["plan"] != "free" || extra["provenance"] != "request-created" || extra["type"] != "normal-user" || extra["verify_retry_wait"] != float64(6) || extra["x"] != float64(1) {
		t.Errorf("extra_info = %v", extra)
	}
	// Second sign-up: the same message, "user exists", no new id.
	r = ts.Do("user-new", map[string]any{"full_name": "Someone", "email": "JANE.PUBLIC@example.net", "password": goodPassword})
	if r.Success || r.FailureReason != "user exists" || r.Messages[0] != "User account created. Please verify your email address to log in." {
		t.Errorf("duplicate: success %v reason %q messages %q", r.Success, r.FailureReason, r.Messages)
	}
	if id, _ := r.Int("user_id"); id != 4 || r.Response["send_verification"] != false {
		t.Errorf("duplicate: user_id %d send_verification %v", id, r.Response["send_verification"])
	}
}

func TestSignUpRefusals(t *testing.T) {
	ts := servertest.Start(t)
	tests := []struct {
		name, fullName, email, password, reason string
	}{
		{"reserved local part", "A B", "admin@example.org", goodPassword, "invalid email"},
		{"two @", "A B", "a@b@example.org", goodPassword, "invalid email"},
		{"disposable", "A B", "x@mailinator.com", goodPassword, "invalid email"},
		{"CRLF in email", "A B", "x@example.org\r\nBcc: y@z.org", goodPassword, "invalid email"},
		{"link in name", "see http://spam.example", "spam@example.org", goodPassword, "invalid full name"},
		{"short password", "A B", "short@example.org", "aB3$x", "invalid password"},
		{"password like email", "A B", "testuser@test.org", "testuser@test.org", "invalid password"},
		{"common password", "A B", "common@example.org", "password", "invalid password"},
		{"all digits", "A B", "digits@example.org", "123456789012345", "invalid password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.Do("user-new", map[string]any{"full_name": tt.fullName, "email": tt.email, "password": tt.password})
			if r.StatusCode != 200 || r.Success || r.FailureReason != tt.reason {
				t.Errorf("status %d success %v reason %q; want %q", r.StatusCode, r.Success, r.FailureReason, tt.reason)
			}
			if tt.password == "password" && !contains(r.Messages, "Your password is on the list of the most common passwords and is vulnerable to guessing.") {
				t.Errorf("messages %q lack the common-password message", r.Messages)
			}
			if r.Response["user_id"] != nil || r.Response["send_verification"] != false {
				t.Errorf("fields: user_id %v send_verification %v", r.Response["user_id"], r.Response["send_verification"])
			}
		})
	}
	// Nothing was stored: the next real sign-up still gets id 4.
	r := ts.MustSucceed("user-new", map[string]any{"full_name": "A B", "email": "real@example.org", "password": goodPassword})
	if id, _ := r.Int("user_id"); id != 4 {
		t.Errorf("id after refusals = %d; want 4", id)
	}
}

func TestConcurrentSignUpOneWinner(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "none"), servertest.Env("AUTHNZERVER_HASHQUEUE", "64"))
	const n = 16
	var wg sync.WaitGroup
	wins := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.Do("user-new", map[string]any{"full_name": "Racer", "email": "race@example.org", "password": goodPassword})
			if r.Success {
				id, _ := r.Int("user_id")
				wins <- id
			} else if r.FailureReason != "user exists" {
				t.Errorf("loser got %d %q", r.StatusCode, r.FailureReason)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("%d sign-ups won; want exactly 1", len(wins))
	}
}

func TestLoginLogoutPasscheck(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("Login.User@example.org", goodPassword)
	tests := []struct {
		name, email, password, reason string
		ok                            bool
	}{
		{"right, other case", "login.user@EXAMPLE.org", goodPassword, "", true},
		{"wrong password", "login.user@example.org", goodPassword + "x", "user does not exist or password doesn't match", false},
		{"unknown email", "nobody@example.org", goodPassword, "user does not exist or password doesn't match", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			anon := ts.NewSession(0)
			r := ts.Do("user-login", map[string]any{"session_token": anon, "email": tt.email, "password": tt.password})
			if r.Success != tt.ok || r.FailureReason != tt.reason {
				t.Fatalf("success %v reason %q; want %v %q", r.Success, r.FailureReason, tt.ok, tt.reason)
			}
			if tt.ok {
				if id, _ := r.Int("user_id"); id != uid || r.Str("user_role") != "authenticated" {
					t.Errorf("user_id %d role %q", id, r.Str("user_role"))
				}
			} else if r.Messages[0] != "Sorry, that user ID and password combination didn't work." || r.Response["user_id"] != nil {
				t.Errorf("failure messages %q user_id %v", r.Messages, r.Response["user_id"])
			}
			// The presented session ends either way.
			if r := ts.Do("session-exists", map[string]any{"session_token": anon}); r.Success {
				t.Errorf("pre-login session still alive")
			}
		})
	}
	r := ts.Do("user-login", map[string]any{"session_token": "not-a-session", "email": "login.user@example.org", "password": goodPassword})
	if r.Success || r.FailureReason != "session does not exist" || r.Messages[0] != "No session token provided." {
		t.Errorf("no session: %v %q %q", r.Success, r.FailureReason, r.Messages)
	}

	sess := ts.NewSession(uid)
	r = ts.MustSucceed("user-passcheck", map[string]any{"session_token": sess, "password": goodPassword})
	if id, _ := r.Int("user_id"); id != uid || r.Messages[0] != "Verification successful." {
		t.Errorf("passcheck: %d %q", id, r.Messages)
	}
	if r := ts.Do("user-passcheck", map[string]any{"session_token": sess, "password": "nope"}); r.Success || r.FailureReason != "user does not exist or password doesn't match" {
		t.Errorf("passcheck wrong: %v %q", r.Success, r.FailureReason)
	}
	ts.MustSucceed("user-passcheck-nosession", map[string]any{"email": "LOGIN.user@example.org", "password": goodPassword})
	if r := ts.Do("user-passcheck-nosession", map[string]any{"email": "login.user@example.org", "password": "nope"}); r.Success {
		t.Errorf("passcheck-nosession accepted a wrong password")
	}
	// Logout: wrong owner refused, right owner ends the session.
	if r := ts.Do("user-logout", map[string]any{"session_token": sess, "user_id": uid + 1}); r.Success || r.FailureReason != "user does not exist" {
		t.Errorf("logout wrong user: %v %q", r.Success, r.FailureReason)
	}
	ts.MustSucceed("user-logout", map[string]any{"session_token": sess, "user_id": uid})
	if r := ts.Do("session-exists", map[string]any{"session_token": sess}); r.Success {
		t.Errorf("session alive after logout")
	}
	if r := ts.Do("user-logout", map[string]any{"session_token": sess, "user_id": uid}); r.Success || r.FailureReason != "session does not exist" {
		t.Errorf("second logout: %v %q", r.Success, r.FailureReason)
	}
}

func TestInactiveUserCannotLogIn(t *testing.T) {
	ts := servertest.Start(t)
	r := ts.MustSucceed("user-new", map[string]any{"full_name": "New User", "email": "new@example.org", "password": goodPassword})
	id, _ := r.Int("user_id")
	r = ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": "new@example.org", "password": goodPassword})
	if r.Success || r.FailureReason != "user does not exist or password doesn't match" {
		t.Errorf("unverified login: %v %q", r.Success, r.FailureReason)
	}
	// passcheck-nosession has no active filter: it says inactive, with the id.
	r = ts.Do("user-passcheck-nosession", map[string]any{"email": "new@example.org", "password": goodPassword})
	if got, _ := r.Int("user_id"); r.Success || r.FailureReason != "user exists but is inactive" || got != id {
		t.Errorf("passcheck inactive: %v %q %d", r.Success, r.FailureReason, got)
	}
}

func TestUsersSurviveRestart(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("keep@example.org", goodPassword)
	ts.Restart()
	r := ts.MustSucceed("user-login", map[string]any{"session_token": ts.NewSession(0), "email": "keep@example.org", "password": goodPassword})
	if id, _ := r.Int("user_id"); id != uid {
		t.Errorf("after restart user_id = %d; want %d", id, uid)
	}
	// The superuser made at first start still logs in, and ids are not reused.
	ts.MustSucceed("user-login", map[string]any{"session_token": ts.NewSession(0), "email": servertest.AdminEmail, "password": servertest.AdminPassword})
	r = ts.MustSucceed("user-new", map[string]any{"full_name": "Next", "email": "next@example.org", "password": goodPassword})
	if id, _ := r.Int("user_id"); id != uid+1 {
		t.Errorf("next id after restart = %d; want %d", id, uid+1)
	}
}

func TestRehashOnLogin(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_ARGON2", "t=1,m=64,p=1"))
	uid := ts.NewUser("rehash@example.org", goodPassword)
	ts.Stop()
	// Restart with other parameters: the old hash verifies and is replaced.
	ts2 := servertest.Start(t, servertest.Env("AUTHNZERVER_ARGON2", "t=2,m=128,p=1"), servertest.Env("AUTHNZERVER_AUTHDB", ts.DataDir()))
	ts2.MustSucceed("user-login", map[string]any{"session_token": ts2.NewSession(0), "email": "rehash@example.org", "password": goodPassword})
	ts2.MustSucceed("user-login", map[string]any{"session_token": ts2.NewSession(0), "email": "rehash@example.org", "password": goodPassword})
	_ = uid
	if got := ts2.Log.String(); len(got) == 0 {
		t.Log("no log")
	}
}

func TestHasherBusyAnswersAtOnce(t *testing.T) {
	// One worker, one queue slot, slow hashes: the third concurrent login
	// is refused with 503 at once while session checks still pass.
	ts := servertest.Start(t,
		servertest.Env("AUTHNZERVER_ARGON2", "t=2,m=16384,p=1"),
		servertest.Env("AUTHNZERVER_WORKERS", "1"), servertest.Env("AUTHNZERVER_HASHQUEUE", "1"),
		servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	sess := ts.NewSession(0)
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.Do("user-passcheck-nosession", map[string]any{"email": fmt.Sprintf("nobody%d@example.org", i), "password": "whatever"})
			statuses <- r.StatusCode
		}()
	}
	// While the pool is saturated, a session check still answers.
	time.Sleep(50 * time.Millisecond)
	ts.MustSucceed("session-exists", map[string]any{"session_token": sess})
	wg.Wait()
	close(statuses)
	busy := 0
	for s := range statuses {
		if s == http.StatusServiceUnavailable {
			busy++
		} else if s != 200 {
			t.Errorf("status %d; want 200 or 503", s)
		}
	}
	if busy == 0 {
		t.Errorf("no request was refused as busy with 1 worker and 1 queue slot")
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
