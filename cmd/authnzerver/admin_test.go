package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/httpfront"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// adminEnv is the environment the admin commands see: the test server's
// data directory and keys, and cheap Argon2 parameters.
func adminEnv(ts *servertest.Server, extra ...string) func(string) string {
	env := map[string]string{
		"AUTHNZERVER_AUTHDB":  ts.AuthDB(),
		"AUTHNZERVER_DATADIR": ts.DataDir(),
		"AUTHNZERVER_SECRET":  ts.Key,
		"AUTHNZERVER_PIISALT": "test-pii-salt",
		"AUTHNZERVER_ARGON2":  "t=1,m=64,p=1",
		"AUTHNZERVER_SHARDS":  "4",
		"AUTHNZERVER_FQDN":    "authnzerver.test",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return func(k string) string { return env[k] }
}

// runCmd runs `authnzerver args...` with password (if any) on stdin.
func runCmd(t *testing.T, getenv func(string) string, password string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	stdin = strings.NewReader(password + "\n")
	defer func() { stdin = os.Stdin }()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, getenv, &out, &errb)
	return code, out.String(), errb.String()
}

// needs skips the test when a request type the command relies on is not
// registered yet, after checking that the command says so clearly.
func needs(t *testing.T, code int, stderr string, reqTypes ...string) {
	t.Helper()
	for _, rt := range reqTypes {
		if !httpfront.Registered(rt) {
			if code != 1 || !strings.Contains(stderr, "does not implement the "+rt+" request") {
				t.Errorf("with %s unregistered: exit %d, stderr %q; want 1 and a clear message", rt, code, stderr)
			}
			t.Skipf("%s is not registered yet: the command fails clearly (checked); the rest of this test is skipped", rt)
		}
	}
}

func expiresIn(d time.Duration) string {
	return time.Now().UTC().Add(d).Format("2006-01-02T15:04:05.000000")
}

func TestAdminHelp(t *testing.T) {
	code, out, _ := runCmd(t, func(string) string { return "" }, "", "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for name := range subcommands {
		if !strings.Contains(out, "authnzerver "+name) {
			t.Errorf("--help does not list %s", name)
		}
		code, cout, _ := runCmd(t, func(string) string { return "" }, "", name, "--help")
		if code != 0 || !strings.Contains(cout, "Usage: authnzerver "+name) {
			t.Errorf("%s --help: exit %d, output %q", name, code, cout)
		}
		code, _, cerr := runCmd(t, func(string) string { return "" }, "", name, "--no-such-flag")
		if code != 2 || !strings.Contains(cerr, "no-such-flag") {
			t.Errorf("%s --no-such-flag: exit %d, stderr %q; want 2", name, code, cerr)
		}
	}
}

func TestAdminUsageErrors(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		if k == "AUTHNZERVER_AUTHDB" {
			return filepath.Join(dir, "nothing-here")
		}
		return ""
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"lock without id", []string{"lock-user"}, 2, "exactly one USER_ID"},
		{"lock bad id", []string{"lock-user", "abc"}, 2, "positive integer"},
		{"create without email", []string{"create-user", "--name", "X"}, 2, "--email and --name are required"},
		{"list extra arg", []string{"list-users", "x"}, 2, "unexpected argument"},
		{"purge negative", []string{"purge-sessions", "--older-than", "-1"}, 2, "must not be negative"},
		{"backup without dest", []string{"backup"}, 2, "exactly one DEST_DIR"},
		{"no store", []string{"list-users"}, 1, "no authnzerver store in"},
		{"restore from nothing", []string{"restore", dir}, 1, "does not hold a backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, env, "pw", tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing-here")); err == nil {
		t.Errorf("a command created the missing data directory")
	}
}

func TestAdminRefusesWhileServing(t *testing.T) {
	ts := servertest.Start(t)
	code, _, stderr := runCmd(t, adminEnv(ts), "", "purge-sessions")
	if code != 1 || !strings.Contains(stderr, "is in use") {
		t.Errorf("purge-sessions on a served directory: exit %d, stderr %q; want 1 and 'is in use'", code, stderr)
	}
	// The server still works.
	ts.NewSession(0)
}

func TestAdminPurgeSessions(t *testing.T) {
	ts := servertest.Start(t)
	live := ts.NewSession(0)
	for _, exp := range []time.Duration{-time.Hour, -72 * time.Hour} {
		ts.MustSucceed("session-new", map[string]any{
			"ip_address": "10.1.2.3", "user_agent": "t", "user_id": nil, "expires": expiresIn(exp), "extra_info_json": nil,
		})
	}
	ts.Stop()
	env := adminEnv(ts)
	code, out, stderr := runCmd(t, env, "", "purge-sessions", "--older-than", "2")
	if code != 0 || !strings.Contains(out, "purged 1 expired sessions") {
		t.Fatalf("purge --older-than 2: exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, stderr = runCmd(t, env, "", "purge-sessions")
	if code != 0 || !strings.Contains(out, "purged 1 expired sessions") {
		t.Fatalf("purge: exit %d, out %q, err %q", code, out, stderr)
	}
	ts.Restart()
	n, err := ts.Srv.Core.Counts()
	if err != nil || n.Sessions != 1 {
		t.Errorf("sessions after purge = %d (%v); want 1", n.Sessions, err)
	}
	ts.MustSucceed("session-exists", map[string]any{"session_token": live})
}

func TestAdminBackupRestore(t *testing.T) {
	ts := servertest.Start(t)
	tok := ts.NewSession(1)
	ts.Stop()
	env := adminEnv(ts)
	dest := filepath.Join(t.TempDir(), "bk")
	code, out, stderr := runCmd(t, env, "", "backup", dest)
	if code != 0 || !strings.Contains(out, "backup written to") {
		t.Fatalf("backup: exit %d, out %q, err %q", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, env, "", "backup", dest); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("backup onto an existing dir: exit %d, err %q", code, stderr)
	}
	// Restoring over a live store is refused.
	if code, _, stderr := runCmd(t, env, "", "restore", dest); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore over the store: exit %d, err %q", code, stderr)
	}
	fresh := filepath.Join(t.TempDir(), "restored")
	code, out, stderr = runCmd(t, adminEnv(ts, "AUTHNZERVER_AUTHDB", fresh), "", "restore", dest)
	if code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore: exit %d, out %q, err %q", code, out, stderr)
	}
	ts2 := servertest.Start(t, servertest.Env("AUTHNZERVER_AUTHDB", fresh))
	r := ts2.MustSucceed("session-exists", map[string]any{"session_token": tok})
	if uid, _ := r.Map("session_info")["user_id"].(float64); uid != 1 {
		t.Errorf("restored session user = %v; want 1", uid)
	}
}

// TestBackupOfRunningServer takes the backup the SIGUSR1 handler takes,
// while requests are being served, and restores it.
func TestBackupOfRunningServer(t *testing.T) {
	bdir := t.TempDir()
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_BACKUPDIR", bdir))
	tok := ts.NewSession(1)

	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	var errb bytes.Buffer
	stopped := make(chan struct{})
	go func() { backupOnSignal(ts.Srv, sig, done, &errb); close(stopped) }()
	sig <- syscall.SIGUSR1
	var backups []os.DirEntry
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if backups, _ = os.ReadDir(bdir); len(backups) == 1 {
			if server.HasStore(filepath.Join(bdir, backups[0].Name())) {
				break
			}
		}
	}
	ts.NewSession(0) // still serving
	close(done)
	<-stopped
	if len(backups) != 1 || !strings.HasPrefix(backups[0].Name(), "authnzerver-backup-") {
		t.Fatalf("backups = %v; want one authnzerver-backup-*", backups)
	}
	fresh := filepath.Join(t.TempDir(), "restored")
	code, out, stderr := runCmd(t, adminEnv(ts, "AUTHNZERVER_AUTHDB", fresh), "", "restore", filepath.Join(bdir, backups[0].Name()))
	if code != 0 {
		t.Fatalf("restore: exit %d, out %q, err %q", code, out, stderr)
	}
	ts2 := servertest.Start(t, servertest.Env("AUTHNZERVER_AUTHDB", fresh))
	ts2.MustSucceed("session-exists", map[string]any{"session_token": tok})
}

func TestBackupNowWithoutDir(t *testing.T) {
	ts := servertest.Start(t)
	if _, err := ts.Srv.BackupNow(); err == nil || !strings.Contains(err.Error(), "AUTHNZERVER_BACKUPDIR") {
		t.Errorf("BackupNow without a dir: %v; want an error naming AUTHNZERVER_BACKUPDIR", err)
	}
}

func TestAdminCreateAndListUsers(t *testing.T) {
	ts := servertest.Start(t)
	ts.Stop()
	env := adminEnv(ts)
	const pw = "a-long-and-unusual-passphrase-5512"
	code, out, stderr := runCmd(t, env, pw, "create-user", "--email", "ops.person@example.org", "--name", "Ops Person", "--role", "staff")
	needs(t, code, stderr, "user-new", "internal-user-edit")
	if code != 0 || !strings.Contains(out, "created user 4") {
		t.Fatalf("create-user: exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, stderr = runCmd(t, env, pw, "create-user", "--email", "ops.person@example.org", "--name", "Ops Person")
	if code != 1 {
		t.Errorf("create-user twice: exit %d, out %q, err %q; want 1", code, out, stderr)
	}
	code, out, stderr = runCmd(t, env, "", "list-users")
	needs(t, code, stderr, "user-list")
	if code != 0 || !strings.Contains(out, "ops.person@example.org") || !strings.Contains(out, "staff") || !strings.Contains(out, servertest.AdminEmail) {
		t.Errorf("list-users: exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, _ = runCmd(t, env, "", "list-users", "--json")
	if code != 0 || strings.Count(out, "\n") != 4 {
		t.Errorf("list-users --json: exit %d, %d lines; want 4 users", code, strings.Count(out, "\n"))
	}
}

func TestAdminLockUnlock(t *testing.T) {
	ts := servertest.Start(t)
	tok := ts.NewSession(1)
	ts.Stop()
	env := adminEnv(ts)
	code, out, stderr := runCmd(t, env, "", "lock-user", "1")
	needs(t, code, stderr, "internal-user-lock")
	if code != 0 || !strings.Contains(out, "role locked") {
		t.Fatalf("lock-user: exit %d, out %q, err %q", code, out, stderr)
	}
	ts.Restart()
	if r := ts.Do("session-exists", map[string]any{"session_token": tok}); r.Success {
		t.Errorf("a session of the locked user still passes")
	}
	ts.Stop()
	code, out, stderr = runCmd(t, env, "", "unlock-user", "1")
	if code != 0 || !strings.Contains(out, "role superuser") {
		t.Fatalf("unlock-user: exit %d, out %q, err %q", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, env, "", "lock-user", "999"); code != 1 {
		t.Errorf("lock-user 999: exit %d, err %q; want 1", code, stderr)
	}
}

func TestAdminResetPassword(t *testing.T) {
	ts := servertest.Start(t)
	ts.Stop()
	env := adminEnv(ts)
	const pw = "another-long-unusual-passphrase-8810"
	code, out, stderr := runCmd(t, env, pw, "reset-password", "--email", servertest.AdminEmail)
	needs(t, code, stderr, "user-resetpass-nosession")
	if code != 0 {
		t.Fatalf("reset-password: exit %d, out %q, err %q", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, env, "short", "reset-password", "--email", servertest.AdminEmail); code != 1 {
		t.Errorf("weak password: exit %d, err %q; want 1", code, stderr)
	}
	if code, _, stderr := runCmd(t, env, "", "reset-password", "--email", servertest.AdminEmail); code != 1 || !strings.Contains(stderr, "no password given") {
		t.Errorf("empty password: exit %d, err %q", code, stderr)
	}
	ts.Restart()
	if httpfront.Registered("user-passcheck-nosession") {
		r := ts.Do("user-passcheck-nosession", map[string]any{"email": servertest.AdminEmail, "password": pw})
		if !r.Success {
			t.Errorf("the new password does not check: %q", r.FailureReason)
		}
	}
}
