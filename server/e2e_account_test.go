package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/server/servertest"
)

const newPassword = "Vh7$kQ2!mZ9@rL4"

func login(ts *servertest.Server, email, password string) bool {
	return ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": password}).Success
}

func alive(ts *servertest.Server, tok string) bool {
	return ts.Do("session-exists", map[string]any{"session_token": tok}).Success
}

func TestChangePassword(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("change@example.org", goodPassword)
	current, other := ts.NewSession(uid), ts.NewSession(uid)
	body := func(cur, next string) map[string]any {
		return map[string]any{"user_id": uid, "session_token": current, "full_name": "Test User", "email": "change@example.org", "current_password": cur, "new_password": next}
	}
	for _, tt := range []struct {
		name, cur, next, reason string
	}{
		{"wrong current", "nope", newPassword, "user password does not match"},
		{"same password", goodPassword, goodPassword, "password did not change"},
		{"insecure", goodPassword, "short", "new password is insecure"},
	} {
		r := ts.Do("user-changepass", body(tt.cur, tt.next))
		if r.Success || r.FailureReason != tt.reason {
			t.Errorf("%s: success %v reason %q; want %q", tt.name, r.Success, r.FailureReason, tt.reason)
		}
	}
	bad := body(goodPassword, newPassword)
	bad["session_token"] = "not-a-session"
	if r := ts.Do("user-changepass", bad); r.Success {
		t.Errorf("changepass accepted a dead session")
	}
	r := ts.MustSucceed("user-changepass", body(goodPassword, newPassword))
	if len(r.Messages) != 2 || r.Messages[1] != "For security purposes, you have been logged out of all other sessions." {
		t.Errorf("messages %q", r.Messages)
	}
	if !alive(ts, current) || alive(ts, other) {
		t.Errorf("after change: current alive %v (want true), other alive %v (want false)", alive(ts, current), alive(ts, other))
	}
	ts.Restart()
	if login(ts, "change@example.org", goodPassword) || !login(ts, "change@example.org", newPassword) {
		t.Errorf("after restart the new password is not the one that works")
	}
	// The no-session form ends every session.
	s := ts.NewSession(uid)
	ts.MustSucceed("user-changepass-nosession", map[string]any{"user_id": uid, "full_name": "Test User", "email": "CHANGE@example.org", "current_password": newPassword, "new_password": goodPassword})
	if alive(ts, s) {
		t.Errorf("session alive after changepass-nosession")
	}
}

func TestResetPassword(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("reset@example.org", goodPassword)
	sess := ts.NewSession(uid)
	if r := ts.Do("user-resetpass", map[string]any{"email_address": "reset@example.org", "new_password": newPassword, "session_token": "dead"}); r.Success || r.FailureReason != "session does not exist" {
		t.Errorf("dead session: %v %q", r.Success, r.FailureReason)
	}
	if r := ts.Do("user-resetpass", map[string]any{"email_address": "nobody@example.org", "new_password": newPassword, "session_token": ts.NewSession(0)}); r.Success || r.FailureReason != "user does not exist" {
		t.Errorf("unknown user: %v %q", r.Success, r.FailureReason)
	}
	if r := ts.Do("user-resetpass", map[string]any{"email_address": "reset@example.org", "new_password": "aaaa", "session_token": ts.NewSession(0)}); r.Success || r.FailureReason != "invalid password" {
		t.Errorf("weak: %v %q", r.Success, r.FailureReason)
	}
	ts.MustSucceed("user-resetpass", map[string]any{"email_address": "reset@example.org", "new_password": newPassword, "session_token": ts.NewSession(0)})
	if alive(ts, sess) {
		t.Errorf("session survived a reset")
	}
	if !login(ts, "reset@example.org", newPassword) {
		t.Errorf("new password does not work")
	}
	if r := ts.Do("user-resetpass-nosession", map[string]any{"email_address": "reset@example.org", "new_password": goodPassword, "required_active": false}); r.Success || r.FailureReason != "user does not exist or is_active was not as required" {
		t.Errorf("required_active mismatch: %v %q", r.Success, r.FailureReason)
	}
	ts.MustSucceed("user-resetpass-nosession", map[string]any{"email_address": "reset@example.org", "new_password": goodPassword, "required_active": true})
}

func TestDeleteUser(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("gone@example.org", goodPassword)
	sess := ts.NewSession(uid)
	for _, tt := range []struct {
		email, password, reason string
		id                      int64
	}{
		{"other@example.org", goodPassword, "invalid email", uid},
		{"gone@example.org", "nope", "invalid password", uid},
		{servertest.AdminEmail, servertest.AdminPassword, "can't delete superusers", 1},
	} {
		if r := ts.Do("user-delete", map[string]any{"email": tt.email, "user_id": tt.id, "password": tt.password}); r.Success || r.FailureReason != tt.reason {
			t.Errorf("delete %s: %v %q; want %q", tt.email, r.Success, r.FailureReason, tt.reason)
		}
	}
	ts.MustSucceed("user-delete", map[string]any{"email": "gone@example.org", "user_id": uid, "password": goodPassword})
	if alive(ts, sess) {
		t.Errorf("session of deleted user alive")
	}
	ts.Restart()
	if login(ts, "gone@example.org", goodPassword) {
		t.Errorf("deleted user logs in after restart")
	}
	// The address is free again, under a new id.
	r := ts.MustSucceed("user-new", map[string]any{"full_name": "Again", "email": "gone@example.org", "password": goodPassword})
	if id, _ := r.Int("user_id"); id == uid {
		t.Errorf("user id %d reused", id)
	}
}

func TestListAndLookup(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	var ids []int64
	for i := range 7 {
		ids = append(ids, ts.NewUser(fmt.Sprintf("list%d@example.org", i), goodPassword))
	}
	r := ts.MustSucceed("user-list", map[string]any{"user_id": nil})
	if all := r.Response["user_info"].([]any); len(all) != 10 {
		t.Errorf("user-list: %d users; want 10 (3 system + 7)", len(all))
	}
	// Paging: 4 at a time, in id order, with a cursor.
	var seen []float64
	var after any
	for page := 0; page < 5; page++ {
		body := map[string]any{"user_id": nil, "page_size": 4}
		if after != nil {
			body["page_after"] = after
		}
		r := ts.MustSucceed("user-list", body)
		for _, u := range r.Response["user_info"].([]any) {
			seen = append(seen, u.(map[string]any)["user_id"].(float64))
		}
		after = r.Response["next_page_after"]
		if after == nil {
			break
		}
	}
	if len(seen) != 10 || seen[0] != 1 || seen[9] != float64(ids[6]) {
		t.Errorf("paged ids = %v", seen)
	}
	r = ts.MustSucceed("user-list", map[string]any{"user_id": 999})
	if n := len(r.Response["user_info"].([]any)); n != 0 {
		t.Errorf("user-list unknown id: %d users; want 0", n)
	}
	r = ts.MustSucceed("user-lookup-email", map[string]any{"email": "LIST3@Example.org"})
	if info := r.Map("user_info"); info["user_id"] != float64(ids[3]) || len(info) != 16 {
		t.Errorf("lookup-email: %v", info)
	}
	if r := ts.Do("user-lookup-email", map[string]any{"email": "none@example.org"}); r.Success || r.FailureReason != "user email not found in DB" {
		t.Errorf("lookup unknown: %v %q", r.Success, r.FailureReason)
	}
	r = ts.MustSucceed("user-lookup-match", map[string]any{"by": "user_role", "match": "authenticated"})
	if n := len(r.Response["user_info"].([]any)); n != 7 {
		t.Errorf("match by role: %d; want 7", n)
	}
	r = ts.MustSucceed("user-lookup-match", map[string]any{"by": "extra_info", "match": map[string]any{"type": "system-user"}})
	if n := len(r.Response["user_info"].([]any)); n != 2 {
		t.Errorf("match by extra_info: %d; want 2 (users 1 and 2)", n)
	}
	if r := ts.Do("user-lookup-match", map[string]any{"by": "password", "match": "x"}); r.Success || r.FailureReason != "exception in DB access" {
		t.Errorf("match by password: %v %q", r.Success, r.FailureReason)
	}
	if r := ts.Do("user-lookup-match", map[string]any{"by": "email", "match": map[string]any{"a": 1}}); r.Success || r.Messages[0] != "Invalid match condition provided." {
		t.Errorf("dict match for email: %v %q", r.Success, r.Messages)
	}
}

func TestUserEdit(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("edit@example.org", goodPassword)
	other := ts.NewUser("other@example.org", goodPassword)
	self := ts.NewSession(uid)
	admin := ts.NewSession(1)
	edit := func(caller int64, role, sess string, target int64, update map[string]any) (bool, string) {
		r := ts.Do("user-edit", map[string]any{"user_id": caller, "user_role": role, "session_token": sess, "target_userid": target, "update_dict": update})
		return r.Success, r.FailureReason
	}
	if ok, reason := edit(uid, "authenticated", self, uid, map[string]any{"full_name": "New Name", "email": "Edited@Example.org"}); !ok {
		t.Fatalf("self edit refused: %q", reason)
	}
	if ok, reason := edit(uid, "authenticated", self, uid, map[string]any{"user_role": "superuser"}); ok || reason != "role 'authenticated' can't edit anything other than 'full_name', 'email'" {
		t.Errorf("self role change: %v %q", ok, reason)
	}
	if ok, reason := edit(uid, "authenticated", self, other, map[string]any{"full_name": "x"}); ok || reason != "invalid session for edit attempt" {
		t.Errorf("edit other: %v %q", ok, reason)
	}
	if ok, reason := edit(uid, "authenticated", admin, uid, map[string]any{"full_name": "x"}); ok || reason != "no valid session found for originating user_id" {
		t.Errorf("someone else's session: %v %q", ok, reason)
	}
	if ok, reason := edit(1, "superuser", admin, 2, map[string]any{"full_name": "x"}); ok || reason != "invalid request: can't edit anonymous/locked users" {
		t.Errorf("edit anonymous: %v %q", ok, reason)
	}
	if ok, reason := edit(1, "superuser", admin, other, map[string]any{"full_name": "x", "foo": 1}); ok || reason != "role: 'superuser' is not allowed to edit items: '['foo', 'full_name']'" { // the Go client sends keys sorted
		t.Errorf("superuser extra key: %v %q", ok, reason)
	}
	if ok, reason := edit(1, "superuser", admin, other, map[string]any{"user_role": "emperor"}); ok || reason != "role change requested is not valid" {
		t.Errorf("bad role: %v %q", ok, reason)
	}
	if ok, reason := edit(1, "superuser", admin, other, map[string]any{"user_role": "staff"}); !ok {
		t.Errorf("superuser role change refused: %q", reason)
	}
	if ok, _ := edit(1, "superuser", admin, other, map[string]any{"email": "edited@example.org"}); ok {
		t.Errorf("duplicate email accepted")
	}
	ts.Restart()
	if !login(ts, "edited@example.org", goodPassword) {
		t.Errorf("edited email does not log in after restart")
	}
	r := ts.MustSucceed("user-lookup-email", map[string]any{"email": "other@example.org"})
	if info := r.Map("user_info"); info["user_role"] != "staff" {
		t.Errorf("role after restart = %v", info["user_role"])
	}
	// internal-user-edit refuses forbidden keys and unknown users.
	if r := ts.Do("internal-user-edit", map[string]any{"target_userid": uid, "update_dict": map[string]any{"password": "x", "user_id": 9}}); r.Success || r.FailureReason != "invalid request: disallowed keys in update_dict: {'password', 'user_id'}" {
		t.Errorf("forbidden keys: %v %q", r.Success, r.FailureReason)
	}
	if r := ts.Do("internal-user-edit", map[string]any{"target_userid": 999, "update_dict": map[string]any{"full_name": "x"}}); r.Success || r.FailureReason != "no such user" {
		t.Errorf("unknown user: %v %q", r.Success, r.FailureReason)
	}
	if r := ts.Do("internal-user-edit", map[string]any{"target_userid": uid, "update_dict": map[string]any{"is_active": "yes"}}); r.Success || r.FailureReason != "DB error when updating user info" {
		t.Errorf("wrong type: %v %q", r.Success, r.FailureReason)
	}
}

func TestLockUnlock(t *testing.T) {
	ts := servertest.Start(t)
	uid := ts.NewUser("lock@example.org", goodPassword)
	sess := ts.NewSession(uid)
	admin := ts.NewSession(1)
	lock := func(caller int64, role, s string, target int64, action string) (bool, string) {
		r := ts.Do("user-lock", map[string]any{"user_id": caller, "user_role": role, "session_token": s, "target_userid": target, "action": action})
		return r.Success, r.FailureReason
	}
	if ok, reason := lock(uid, "authenticated", sess, 1, "lock"); ok || reason != "user role is not 'superuser', required to toggle locks" {
		t.Errorf("non-superuser: %v %q", ok, reason)
	}
	if ok, reason := lock(1, "superuser", admin, 1, "lock"); ok || reason != "can't toggle a lock state on self" {
		t.Errorf("self: %v %q", ok, reason)
	}
	if ok, reason := lock(1, "superuser", admin, 3, "unlock"); ok || reason != "can't toggle lock state for system anonymous/locked accounts" {
		t.Errorf("system user: %v %q", ok, reason)
	}
	if ok, reason := lock(1, "superuser", "dead", uid, "lock"); ok || reason != "invalid session for user attempting lock toggle" {
		t.Errorf("dead session: %v %q", ok, reason)
	}
	if ok, reason := lock(1, "superuser", admin, uid, "lock"); !ok {
		t.Fatalf("lock refused: %q", reason)
	}
	if alive(ts, sess) {
		t.Errorf("session of a locked user passes a check right after the lock")
	}
	if login(ts, "lock@example.org", goodPassword) {
		t.Errorf("locked user logged in")
	}
	ts.Restart()
	r := ts.MustSucceed("user-lookup-email", map[string]any{"email": "lock@example.org"})
	if info := r.Map("user_info"); info["user_role"] != "locked" || info["is_active"] != false {
		t.Errorf("after restart: %v", info)
	}
	admin = ts.NewSession(1)
	if ok, reason := lock(1, "superuser", admin, uid, "unlock"); !ok {
		t.Fatalf("unlock refused: %q", reason)
	}
	r = ts.MustSucceed("user-lookup-email", map[string]any{"email": "lock@example.org"})
	if info := r.Map("user_info"); info["user_role"] != "authenticated" || info["is_active"] != true {
		t.Errorf("after unlock: %v", info)
	}
	if !login(ts, "lock@example.org", goodPassword) {
		t.Errorf("unlocked user cannot log in")
	}
	if r := ts.Do("internal-user-lock", map[string]any{"target_userid": 999, "action": "lock"}); r.Success || r.FailureReason != "exception encountered when trying lock toggle action" {
		t.Errorf("unknown user: %v %q", r.Success, r.FailureReason)
	}
	for _, id := range []int64{1, 2, 3} {
		if r := ts.Do("internal-user-delete", map[string]any{"target_userid": id}); r.Success {
			t.Errorf("internal-user-delete of system user %d succeeded", id)
		}
	}
	if r := ts.Do("internal-user-delete", map[string]any{"target_userid": 999}); r.Success || r.FailureReason != "no such user" {
		t.Errorf("delete unknown: %v %q", r.Success, r.FailureReason)
	}
	ts.MustSucceed("internal-user-delete", map[string]any{"target_userid": uid})
}

func TestBackoffAndAutoLock(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", "2"), servertest.Env("AUTHNZERVER_USERLOCKTIME", "3"))
	uid := ts.NewUser("brute@example.org", goodPassword)
	sess := ts.NewSession(uid)
	for i := 1; i <= 2; i++ {
		start := time.Now()
		if login(ts, "brute@example.org", "wrong") {
			t.Fatal("wrong password accepted")
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("attempt %d answered after %v; want the back-off delay (≥ 1 s)", i, d)
		}
	}
	r := ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": "brute@example.org", "password": goodPassword})
	if r.Success || r.FailureReason != "" || r.Messages[0] != "Your user account has been locked after repeated login failures. Try again in an hour or contact the server admins." {
		t.Errorf("third attempt: success %v reason %q messages %q; want the lock answer", r.Success, r.FailureReason, r.Messages)
	}
	if alive(ts, sess) {
		t.Errorf("session survived the auto-lock")
	}
	// A restart in the middle of the lock keeps it, and its end.
	ts.Restart()
	r = ts.MustSucceed("user-lookup-email", map[string]any{"email": "brute@example.org"})
	if r.Map("user_info")["user_role"] != "locked" {
		t.Errorf("lock lost on restart: %v", r.Map("user_info"))
	}
	time.Sleep(3200 * time.Millisecond)
	if !login(ts, "brute@example.org", goodPassword) {
		t.Errorf("correct password after the lock time failed")
	}
	r = ts.MustSucceed("user-lookup-email", map[string]any{"email": "brute@example.org"})
	if info := r.Map("user_info"); info["user_role"] != "authenticated" {
		t.Errorf("role after auto-unlock = %v", info["user_role"])
	}
}

func TestConcurrentWrongPasswordsBounded(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", "3"), servertest.Env("AUTHNZERVER_RATELIMITS", "none"), servertest.Env("AUTHNZERVER_HASHQUEUE", "64"))
	ts.NewUser("para@example.org", goodPassword)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	verified, locked := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.Do("user-passcheck-nosession", map[string]any{"email": "para@example.org", "password": "wrong"})
			mu.Lock()
			defer mu.Unlock()
			if r.FailureReason == "user does not exist or password doesn't match" {
				verified++
			} else if r.Messages[0] == "Your user account has been locked after repeated login failures. Try again in an hour or contact the server admins." {
				locked++
			}
		}()
	}
	wg.Wait()
	if verified > 3 || verified+locked != n {
		t.Errorf("%d passwords were checked and %d refused; want at most 3 checked, the rest refused", verified, locked)
	}
}

func TestSuperuserNotLockedOut(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_USERLOCKTRIES", "1"))
	for i := 0; i < 3; i++ {
		ts.Do("user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": "wrong", "client_ipaddr": "203.0.113.66"})
	}
	// The superuser is never locked: once its short refusal window (40 s
	// after a first lock-out) is over, the admin, from another address,
	// gets in. Guesses are counted per account, so the window holds for
	// every address (see e2e_bruteforce_test.go).
	if r := ts.MustSucceed("user-lookup-email", map[string]any{"email": servertest.AdminEmail}); r.Map("user_info")["user_role"] != "superuser" {
		t.Errorf("superuser role after failures = %v", r.Map("user_info")["user_role"])
	}
	ts.Advance(41 * time.Second)
	r := ts.Do("user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": servertest.AdminPassword, "client_ipaddr": "198.51.100.7"})
	if !r.Success {
		t.Errorf("superuser locked out: %q %q", r.FailureReason, r.Messages)
	}
}
