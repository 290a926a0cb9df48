package main

import (
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// TestMain stops the throwaway PostgreSQL of the tests below.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestAdminOnPostgres: the admin commands work the same against a
// PostgreSQL store.
func TestAdminOnPostgres(t *testing.T) {
	pgtest.Shared(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"CreateAndListUsers", TestAdminCreateAndListUsers},
		{"LockUnlock", TestAdminLockUnlock},
		{"ResetPassword", TestAdminResetPassword},
		{"PurgeSessions", TestAdminPurgeSessions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servertest.OnPostgres(t)
			tc.fn(t)
		})
	}
}

// TestAdminPostgresRefusalsAndBackups: an admin command refuses while a
// server runs on the database, and on a database without the schema;
// backup and restore point to pg_dump and pg_restore.
func TestAdminPostgresRefusalsAndBackups(t *testing.T) {
	servertest.OnPostgres(t)
	ts := servertest.Start(t)
	code, _, stderr := runCmd(t, adminEnv(ts), "", "purge-sessions")
	if code != 1 || !strings.Contains(stderr, "server is running on this database") {
		t.Errorf("purge-sessions beside a server: exit %d, stderr %q", code, stderr)
	}
	ts.NewSession(0) // the server still works
	ts.Stop()
	for _, args := range [][]string{{"backup", t.TempDir() + "/b"}, {"restore", t.TempDir()}} {
		code, _, stderr = runCmd(t, adminEnv(ts), "", args...)
		if code != 1 || !strings.Contains(stderr, "pg_dump") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and pg_dump", args[0], code, stderr)
		}
	}
	empty := pgtest.Shared(t).DB(t)
	code, _, stderr = runCmd(t, adminEnv(ts, "AUTHNZERVER_AUTHDB", empty), "", "list-users")
	if code != 1 || !strings.Contains(stderr, "no authnzerver schema") {
		t.Errorf("list-users on an empty database: exit %d, stderr %q", code, stderr)
	}
}

// TestServePostgresBadURLExits: a store URL that does not parse or a
// database that cannot be reached stops the server at once with one clear
// line, without the password.
func TestServePostgresBadURLExits(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"postgres://u:pw-s3cret@h:port/db", "does not parse"},
		{"postgresql://u:pw-s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "cannot reach PostgreSQL"},
	} {
		env := map[string]string{"AUTHNZERVER_AUTHDB": tt.url, "AUTHNZERVER_DATADIR": t.TempDir(), "AUTHNZERVER_PORT": "0", "AUTHNZERVER_HASHISOLATION": "off"}
		code, _, stderr := runCmd(t, func(k string) string { return env[k] }, "")
		if code != 1 || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "s3cret") {
			t.Errorf("%s: exit %d, stderr %q; want 1, %q and no password", tt.url, code, stderr, tt.want)
		}
	}
}
