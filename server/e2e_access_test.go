package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// startErr starts a server with the test defaults plus env and returns the
// start error (closing the server if it started).
func startErr(t *testing.T, env map[string]string) error {
	t.Helper()
	base := map[string]string{
		"AUTHNZERVER_AUTHDB":         t.TempDir(),
		"AUTHNZERVER_PORT":           "0",
		"AUTHNZERVER_SECRET":         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"AUTHNZERVER_PIISALT":        "test-pii-salt",
		"AUTHNZERVER_ADMIN_EMAIL":    servertest.AdminEmail,
		"AUTHNZERVER_ADMIN_PASSWORD": servertest.AdminPassword,
		"AUTHNZERVER_SHARDS":         "2",
	}
	for k, v := range env {
		base[k] = v
	}
	getenv := func(k string) string { return base[k] }
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return err
	}
	hp := servertest.CheapHash
	srv, err := server.Start(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Getenv: getenv, HashParams: &hp})
	if err == nil {
		srv.Close()
	}
	return err
}

type accessCase struct {
	name    string
	uid     int64
	role    string
	action  string
	target  string
	owner   int64
	vis     string
	shared  string
	granted bool
	reason  string // failure_reason when not granted
	message string
}

const (
	msgGranted = "Access request check successful. Access granted: True."
	msgDenied  = "Access request check successful. Access granted: False."
	msgError   = "Could not validate access to the requested item."
)

func checkAccess(t *testing.T, ts *servertest.Server, tc accessCase) {
	t.Helper()
	r := ts.Do("user-check-access", map[string]any{
		"user_id": tc.uid, "user_role": tc.role, "action": tc.action, "target_name": tc.target,
		"target_owner": tc.owner, "target_visibility": tc.vis, "target_sharedwith": tc.shared,
	})
	if r.StatusCode != 200 {
		t.Fatalf("%s: got status %d; want 200", tc.name, r.StatusCode)
	}
	msg := ""
	if len(r.Messages) == 1 {
		msg = r.Messages[0]
	}
	if r.Success != tc.granted || r.FailureReason != tc.reason || msg != tc.message {
		t.Errorf("%s: got %v %q %q; want %v %q %q", tc.name, r.Success, r.FailureReason, r.Messages, tc.granted, tc.reason, tc.message)
	}
}

// TestCheckAccessDefaultModel runs user-check-access over the wire with the
// system users: 1 (superuser, active), 2 (anonymous, active), 3 (locked,
// inactive). Ordinary users cannot be made over the wire yet.
func TestCheckAccessDefaultModel(t *testing.T) {
	ts := servertest.Start(t)
	tests := []accessCase{
		{"superuser views another's private dataset", 1, "superuser", "view", "dataset", 2, "private", "", true, "", msgGranted},
		{"superuser deletes a user", 1, "superuser", "delete", "user", 2, "private", "none", true, "", msgGranted},
		{"anonymous views a public dataset", 2, "anonymous", "view", "dataset", 1, "public", "", true, "", msgGranted},
		{"anonymous lists an unlisted dataset", 2, "anonymous", "list", "dataset", 1, "unlisted", "", false, "action not permitted", msgDenied},
		{"anonymous edits a public dataset", 2, "anonymous", "edit", "dataset", 1, "public", "", false, "action not permitted", msgDenied},
		{"anonymous views a private dataset", 2, "anonymous", "view", "dataset", 1, "private", "", false, "action not permitted", msgDenied},
		{"anonymous views an item shared with anonymous", 2, "anonymous", "view", "object", 1, "shared", "2", false, "action not permitted", msgDenied},
		{"anonymous creates its own dataset", 2, "anonymous", "create", "dataset", 2, "private", "", true, "", msgGranted},
		{"anonymous deletes its own dataset", 2, "anonymous", "delete", "dataset", 2, "private", "", false, "action not permitted", msgDenied},
		{"anonymous on a session", 2, "anonymous", "view", "session", 2, "private", "", false, "action not permitted", msgDenied},
		{"unknown action", 1, "superuser", "fly", "dataset", 1, "public", "", false, "action not permitted", msgDenied},
		{"unknown item", 1, "superuser", "view", "spaceship", 1, "public", "", false, "action not permitted", msgDenied},
		{"wrong role for the user", 1, "staff", "view", "dataset", 2, "public", "", false, "user initiating request is not valid", msgDenied},
		{"inactive acting user", 3, "locked", "view", "dataset", 1, "public", "", false, "user initiating request is not valid", msgDenied},
		{"missing acting user", 999, "superuser", "view", "dataset", 1, "public", "", false, "user initiating request is not valid", msgDenied},
		{"inactive owner", 1, "superuser", "view", "dataset", 3, "public", "", false, "users specified as owner or shared-with not found", msgDenied},
		{"missing owner", 1, "superuser", "view", "dataset", 999, "public", "", false, "users specified as owner or shared-with not found", msgDenied},
		{"missing shared-with user", 1, "superuser", "view", "dataset", 2, "shared", "1, 999", false, "users specified as owner or shared-with not found", msgDenied},
		{"shared-with users all active", 1, "superuser", "view", "dataset", 2, "shared", "1,2", true, "", msgGranted},
		{"long shared-with list", 1, "superuser", "view", "dataset", 2, "shared", "1,2,3,4,5,6,7,8,9,10,11", false, "users specified as owner or shared-with not found", msgDenied},
		{"long shared-with list of active users", 1, "superuser", "view", "dataset", 2, "shared", "1,2,1,2,1,2,1,2,1,2,1,2", true, "", msgGranted},
		{"shared-with id beyond int64", 1, "superuser", "view", "dataset", 2, "shared", "99999999999999999999", false, "users specified as owner or shared-with not found", msgDenied},
		{"non-integer shared-with", 1, "superuser", "view", "dataset", 2, "shared", "1,abc", false, "exception when checking the DB", msgError},
		{"non-integer after a huge one", 1, "superuser", "view", "dataset", 2, "shared", "99999999999999999999,x", false, "exception when checking the DB", msgError},
		{"unknown role", 1, "wizard", "view", "dataset", 2, "public", "", false, "exception when checking the DB", msgError},
	}
	for _, tc := range tests {
		checkAccess(t, ts, tc)
	}
}

func TestCheckLimit(t *testing.T) {
	ts := servertest.Start(t)
	const passed, failed = "Limit check successful. Limit check passed: True.", "Limit check successful. Limit check passed: False."
	tests := []struct {
		uid    int64
		role   string
		name   string
		value  any
		ok     bool
		reason string
		msg    string
	}{
		{1, "superuser", "max_requests", 100, true, "", passed},
		{1, "superuser", "max_requests", 100000000, false, "user is over limit", failed},
		{1, "superuser", "max_requests", "12", true, "", passed},
		{1, "superuser", "max_requests", 1.5, true, "", passed},
		{1, "superuser", "max_requests", "abc", false, "user is over limit", failed},
		{1, "superuser", "no_such_limit", 1e30, true, "", passed},
		{2, "anonymous", "max_requests_per_minute", 599, true, "", passed},
		{2, "anonymous", "max_requests_per_minute", 600, false, "user is over limit", failed},
		{1, "staff", "max_requests", 1, false, "user attempting access not found", failed},
		{3, "locked", "max_requests", 100, false, "user attempting access not found", failed},
		{999, "superuser", "max_requests", 1, false, "user attempting access not found", failed},
		{1, "wizard", "max_requests", 1, false, "exception when checking the DB", "Could not validate limit rule for the requested item."},
	}
	for _, tc := range tests {
		r := ts.Do("user-check-limit", map[string]any{"user_id": tc.uid, "user_role": tc.role, "limit_name": tc.name, "value_to_check": tc.value})
		if r.StatusCode != 200 || r.Success != tc.ok || r.FailureReason != tc.reason || len(r.Messages) != 1 || r.Messages[0] != tc.msg {
			t.Errorf("%d %s %s %v: got %d %v %q %q; want %v %q %q", tc.uid, tc.role, tc.name, tc.value, r.StatusCode, r.Success, r.FailureReason, r.Messages, tc.ok, tc.reason, tc.msg)
		}
	}
	// value_to_check must be present and not null.
	r := ts.Do("user-check-limit", map[string]any{"user_id": 1, "user_role": "superuser", "limit_name": "max_requests", "value_to_check": nil})
	if r.StatusCode != 200 || r.Success || len(r.Messages) != 1 || !strings.Contains(r.Messages[0], "invalid parameters") {
		t.Errorf("null value: got %d %v %q; want the invalid-parameters answer", r.StatusCode, r.Success, r.Messages)
	}
}

// TestCustomPermissionModel checks that AUTHNZERVER_PERMISSIONS is used at
// request time (the reference ignores it there).
func TestCustomPermissionModel(t *testing.T) {
	var model map[string]any
	if err := json.Unmarshal(perm.DefaultJSON(), &model); err != nil {
		t.Fatal(err)
	}
	anon := model["role_policy"].(map[string]any)["anonymous"].(map[string]any)
	anon["allowed_actions_for_other"].(map[string]any)["public"] = []string{"list", "view", "edit"}
	anon["limits"].(map[string]any)["max_requests_per_minute"].(map[string]any)["limit"] = 10
	raw, _ := json.Marshal(model)
	path := filepath.Join(t.TempDir(), "perms.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_PERMISSIONS", path))
	checkAccess(t, ts, accessCase{"anonymous edits a public dataset (custom model)", 2, "anonymous", "edit", "dataset", 1, "public", "", true, "", msgGranted})
	r := ts.Do("user-check-limit", map[string]any{"user_id": 2, "user_role": "anonymous", "limit_name": "max_requests_per_minute", "value_to_check": 11})
	if r.Success || r.FailureReason != "user is over limit" {
		t.Errorf("custom limit: got %v %q; want false \"user is over limit\"", r.Success, r.FailureReason)
	}
}

func TestBadPermissionModelStopsStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var model map[string]any
	json.Unmarshal(perm.DefaultJSON(), &model)
	delete(model, "item_policy")
	noItems, _ := json.Marshal(model)
	tests := []struct {
		path string
		want string // in the error
	}{
		{write("notjson.json", "{roles: nope"), "permission model"},
		{write("noitems.json", string(noItems)), "item_policy"},
		{filepath.Join(dir, "missing.json"), "missing.json"},
	}
	for _, tc := range tests {
		err := startErr(t, map[string]string{"AUTHNZERVER_PERMISSIONS": tc.path})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want a start error mentioning %q", filepath.Base(tc.path), err, tc.want)
		}
	}
}
