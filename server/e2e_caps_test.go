package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/shard"
)

// sessionLive reports whether session-exists accepts tok.
func sessionLive(t *testing.T, ts *servertest.Server, tok string) bool {
	t.Helper()
	r := ts.Do("session-exists", map[string]any{"session_token": tok})
	if r.StatusCode != 200 {
		t.Fatalf("session-exists: status %d", r.StatusCode)
	}
	return r.Success
}

// A user holds at most the configured number of live sessions: each new one
// past it ends the oldest. The anonymous user has no cap. The bound holds
// across a restart (which forgets the in-memory counts).
func TestSessionCapPerUser(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXSESSIONSPERUSER", "3"))
	uid := addUser(t, ts, "authenticated", true)
	other := addUser(t, ts, "authenticated", true)
	otherTok := ts.NewSession(other)
	var toks []string
	for range 5 {
		toks = append(toks, ts.NewSession(uid))
	}
	for i, tok := range toks {
		if got, want := sessionLive(t, ts, tok), i >= 2; got != want {
			t.Errorf("session %d of 5 live = %v; want %v (cap 3, the oldest go)", i, got, want)
		}
	}
	if !sessionLive(t, ts, otherTok) {
		t.Errorf("another user's session was ended")
	}
	var anon []string
	for range 5 {
		anon = append(anon, ts.NewSession(0))
	}
	for i, tok := range anon {
		if !sessionLive(t, ts, tok) {
			t.Errorf("anonymous session %d ended; the anonymous user has no cap", i)
		}
	}

	// A deleted session frees its place: two new ones end only the oldest.
	ts.MustSucceed("session-delete", map[string]any{"session_token": toks[4]})
	toks = append(toks, ts.NewSession(uid), ts.NewSession(uid))
	for i, want := range map[int]bool{2: false, 3: true, 5: true, 6: true} {
		if got := sessionLive(t, ts, toks[i]); got != want {
			t.Errorf("after a delete and two new: session %d live = %v; want %v", i, got, want)
		}
	}

	ts.Restart()
	toks = append(toks, ts.NewSession(uid))
	for i, want := range map[int]bool{3: false, 5: true, 6: true, 7: true} {
		if got := sessionLive(t, ts, toks[i]); got != want {
			t.Errorf("after a restart and one new: session %d live = %v; want %v", i, got, want)
		}
	}
}

// A user holds at most the configured number of live API keys of each kind
// (session-tied and no-session are capped apart, so that keys made at each
// login cannot push out long-lived ones); a refresh at the cap keeps the
// refreshed key's place.
func TestAPIKeyCapPerUser(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXAPIKEYSPERUSER", "2"))
	uid := addUser(t, ts, "authenticated", true)
	const role = "authenticated"
	type key struct {
		claims map[string]any
		rt     string
		kind   string // verify request
	}
	live := func(k key) bool { ok, _ := verifyOK(t, ts, k.kind, k.claims, uid, role); return ok }
	var free, tied []key
	for range 3 {
		c, rt := newFreeKey(t, ts, uid, role, 600, -1, 3600, -1)
		free = append(free, key{c, rt, "apikey-verify-nosession"})
	}
	for range 3 {
		c, _ := newSessionKey(t, ts, uid, role, 1, -1)
		tied = append(tied, key{c, "", "apikey-verify"})
	}
	for i := range 3 {
		if got, want := live(free[i]), i >= 1; got != want {
			t.Errorf("no-session key %d of 3 verifies = %v; want %v (cap 2, the oldest go)", i, got, want)
		}
		if got, want := live(tied[i]), i >= 1; got != want {
			t.Errorf("session-tied key %d of 3 verifies = %v; want %v (cap 2, the oldest go)", i, got, want)
		}
	}
	// Refresh the older held no-session key at the cap: the new key takes
	// its place and nothing else goes.
	r := ts.MustSucceed("apikey-refresh-nosession", refreshBody(free[1].claims, free[1].rt, uid, role))
	refreshed := key{claimsOf(t, r), r.Str("refresh_token"), "apikey-verify-nosession"}
	for name, tt := range map[string]struct {
		k    key
		want bool
	}{"refreshed key": {free[1], false}, "other key": {free[2], true}, "new key": {refreshed, true}} {
		if got := live(tt.k); got != tt.want {
			t.Errorf("after a refresh at the cap: %s verifies = %v; want %v", name, got, tt.want)
		}
	}
	if !strings.Contains(ts.Log.String(), "oldest deleted") {
		t.Errorf("no log line for the keys deleted at the cap")
	}
}

// Demoting a user stops its keys of the old role from verifying, whoever
// asks, and for good; a lock stops them too.
func TestAPIKeyRoleChange(t *testing.T) {
	ts := servertest.Start(t)
	uid := addUser(t, ts, "staff", true)
	free, _ := newFreeKey(t, ts, uid, "staff", 600, -1, 3600, -1)
	tied, _ := newSessionKey(t, ts, uid, "staff", 1, -1)
	type check struct {
		name      string
		req       string
		claims    map[string]any
		asUID     int64
		asRole    string
		wantAfter bool
	}
	checks := []check{
		{"no-session key, as the owner's new role", "apikey-verify-nosession", free, uid, "authenticated", false},
		{"session key, as the owner's new role", "apikey-verify", tied, uid, "authenticated", false},
		{"no-session key, as superuser", "apikey-verify-nosession", free, 1, "superuser", false},
		{"session key, as superuser", "apikey-verify", tied, 1, "superuser", false},
	}
	for _, c := range checks {
		if ok, reason := verifyOK(t, ts, c.req, c.claims, 1, "superuser"); !ok {
			t.Fatalf("%s: does not verify before the change: %q", c.name, reason)
		}
	}
	ts.MustSucceed("internal-user-edit", map[string]any{"target_userid": uid, "update_dict": map[string]any{"user_role": "authenticated"}})
	for _, c := range checks {
		if ok, _ := verifyOK(t, ts, c.req, c.claims, c.asUID, c.asRole); ok != c.wantAfter {
			t.Errorf("after demotion, %s: verifies = %v; want %v", c.name, ok, c.wantAfter)
		}
	}
	// Promoted back, the old keys stay revoked, also after a restart.
	ts.MustSucceed("internal-user-edit", map[string]any{"target_userid": uid, "update_dict": map[string]any{"user_role": "staff"}})
	ts.Restart()
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", free, uid, "staff"); ok {
		t.Errorf("a key of the old role verifies again after the role came back")
	}

	// A key of the current role verifies until the user's role changes by
	// any path: here straight in the core, which revokes nothing, so only
	// the check at verification stops it.
	now, _ := newFreeKey(t, ts, uid, "staff", 600, -1, 3600, -1)
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", now, 1, "superuser"); !ok {
		t.Fatalf("new key does not verify: %q", reason)
	}
	setRole := func(role string) {
		t.Helper()
		id := shard.UserID(uid)
		// The record alone changes: the keys stay, so verification
		// itself must refuse them.
		res, err := actors.Ask[actors.EditResult](ts.Srv.Core, actors.EditUser{ID: id, Role: role, SetRole: true})
		if err == nil {
			err = res.Durable()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	setRole("authenticated")
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", now, uid, "authenticated"); ok {
		t.Errorf("a key of the old role verifies right after a role change in the core")
	}
	setRole("staff")
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", now, 1, "superuser"); !ok {
		t.Fatalf("key does not verify with its role back: %q", reason)
	}
	ts.MustSucceed("internal-user-lock", map[string]any{"target_userid": uid, "action": "lock"})
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", now, 1, "superuser"); ok {
		t.Errorf("a locked user's key verifies")
	}
	// A lock by hand revokes the keys: they do not come back with an unlock.
	ts.MustSucceed("internal-user-lock", map[string]any{"target_userid": uid, "action": "unlock"})
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", now, 1, "superuser"); ok {
		t.Errorf("a key verifies again after a lock and an unlock")
	}
}

// An expired session leaves memory when it is next looked at (or swept),
// not after the 30-day retention; deleting it still succeeds, as the
// reference's row would.
func TestExpiredSessionLeavesMemory(t *testing.T) {
	ts := servertest.Start(t)
	extra := map[string]any{"pad": strings.Repeat("x", 8<<10)} // within the default extra-info bound
	r := ts.MustSucceed("session-new", map[string]any{
		"ip_address": "10.1.2.3", "user_agent": "servertest", "user_id": nil, "extra_info_json": extra,
		"expires": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"),
	})
	tok := r.Str("session_token")
	ts.Advance(2 * time.Hour)
	if sessionLive(t, ts, tok) {
		t.Fatalf("expired session passes")
	}
	n, err := ts.Srv.Core.Counts()
	if err != nil {
		t.Fatal(err)
	}
	full, dead := n.Sessions-n.Expired, n.Expired
	if full != 0 || dead != 1 {
		t.Errorf("sessions in memory: %d full, %d expired remains; want 0, 1", full, dead)
	}
	if r := ts.MustSucceed("session-delete", map[string]any{"session_token": tok}); r.Messages[0] != "Session delete processed, success: True." {
		t.Errorf("delete of the expired session: %q", r.Messages)
	}
}

// Reserved names are refused whatever their case: the address is stored
// normalised, so "ADMIN@x" would hold "admin@x".
func TestReservedEmailAnyCase(t *testing.T) {
	ts := servertest.Start(t)
	for _, email := range []string{"ADMIN@example.net", "Root@example.net", "\uff41\uff44\uff4d\uff49\uff4e@example.net"} {
		r := ts.Do("user-new", map[string]any{"full_name": "Test User", "email": email, "password": "correct horse battery staple 42"})
		if r.StatusCode != 200 || r.Success {
			t.Errorf("user-new %q: status %d success %v; want a refusal", email, r.StatusCode, r.Success)
		}
	}
	uid := addUser(t, ts, "authenticated", true)
	r := ts.Do("internal-user-edit", map[string]any{"target_userid": uid, "update_dict": map[string]any{"email": "PostMaster@example.org"}})
	if r.StatusCode != 200 || r.Success {
		t.Errorf("internal-user-edit to PostMaster@: status %d success %v; want a refusal", r.StatusCode, r.Success)
	}
	ts.MustSucceed("user-new", map[string]any{"full_name": "Test User", "email": "Admins@example.org", "password": "correct horse battery staple 42"})
}
