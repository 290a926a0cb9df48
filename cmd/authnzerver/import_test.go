package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/refimport/reftest"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/shard"
)

// The import of a Python authnzerver's database (docs/operations.md,
// "Moving from the Python server"), end to end: the fixture made the way
// the reference makes it, the command, and the real server on the
// imported store, spoken to through the wire protocol.

const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // servertest's

func importEnv(authdb, dataDir string) func(string) string {
	env := map[string]string{
		"AUTHNZERVER_AUTHDB": authdb, "AUTHNZERVER_DATADIR": dataDir, "AUTHNZERVER_SECRET": testKey,
		"AUTHNZERVER_PIISALT": "test-pii-salt", "AUTHNZERVER_SHARDS": "4",
	}
	return func(k string) string { return env[k] }
}

func TestImportReferenceSQLite(t *testing.T) {
	f := reftest.New()
	from, err := f.WriteSQLite(filepath.Join(t.TempDir(), ".authdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new-data") // does not exist yet
	testImport(t, f, from, dir, dir, reftest.SQLiteNextID)
}

func TestImportReferencePostgres(t *testing.T) {
	pg := pgtest.Shared(t)
	f := reftest.New()
	from := pg.DB(t)
	if err := f.WritePostgres(from); err != nil {
		t.Fatal(err)
	}
	testImport(t, f, from, pg.DB(t), t.TempDir(), reftest.PostgresNextID)

	// A database that is not the reference's is refused, and the
	// message holds no password.
	code, _, errOut := runCmd(t, importEnv(pg.DB(t), t.TempDir()), "", "import-reference", "--from", pg.DB(t))
	if code != 1 || !strings.Contains(errOut, "not a Python authnzerver database") || strings.Contains(errOut, pgtest.Password) {
		t.Errorf("import of an empty database: exit %d, stderr %q", code, errOut)
	}
}

// secrets are the strings no output of the import may hold.
func secrets(f *reftest.Fixture) []string {
	var out []string
	for _, u := range f.Users {
		out = append(out, u.Email, u.PHC)
		if u.Password != "" {
			out = append(out, u.Password)
		}
	}
	for _, s := range f.Sessions {
		out = append(out, s.Token)
	}
	for _, k := range f.Keys {
		out = append(out, k.Token)
		if k.Refresh != "" {
			out = append(out, k.Refresh, k.RefreshPHC)
		}
	}
	return out
}

func testImport(t *testing.T, f *reftest.Fixture, from, authdb, dataDir string, nextID int64) {
	env := importEnv(authdb, dataDir)
	noSecrets := func(what, s string) {
		t.Helper()
		for _, x := range secrets(f) {
			if strings.Contains(s, x) {
				t.Errorf("%s holds a secret or an email (%.6s...)", what, x)
			}
		}
	}

	// A dry run reports and writes nothing (not even the data directory);
	// --strict does not count expired rows as refused.
	code, out, errOut := runCmd(t, env, "", "import-reference", "--from", from, "--dry-run", "--strict")
	if code != 0 || !strings.Contains(out, "would import 9 users") || !strings.Contains(out, "dry run: nothing written") {
		t.Fatalf("dry run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.HasPrefix(authdb, "postgres") && server.HasStore(authdb) {
		t.Errorf("the dry run created a store")
	}
	if strings.HasPrefix(authdb, "postgres") {
		if code, _, errOut := runCmd(t, env, "", "list-users"); code != 1 || !strings.Contains(errOut, "no authnzerver schema") {
			t.Errorf("after the dry run, list-users: exit %d, %q; want no schema", code, errOut)
		}
	}

	code, out, errOut = runCmd(t, env, "", "import-reference", "--from", from)
	if code != 0 {
		t.Fatalf("import: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("import:\n%s", out)
	for _, want := range []string{
		"imported 9 users\n",
		"imported 4 sessions; skipped 2 expired\n",
		"imported 2 session-tied API keys; skipped 1 expired, 1 its session is not imported (expired or skipped)\n",
		"imported 2 no-session API keys; skipped 1 expired\n",
		"1 users kept who must reset their password\n",
		"user 8: password hash of a scheme",
		fmt.Sprintf("the next new user gets id %d\n", nextID),
		"import-reference: read 9 rows of users",
		"import-reference: writing 36 records in one commit",
	} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("import output lacks %q", want)
		}
	}
	noSecrets("the import's output", out+errOut)

	// A second import refuses without --merge; with it, every id collides
	// and nothing is overwritten.
	code, _, errOut = runCmd(t, env, "", "import-reference", "--from", from)
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("second import: exit %d, stderr %q; want 1 and not empty", code, errOut)
	}
	code, out, errOut = runCmd(t, env, "", "import-reference", "--from", from, "--merge")
	if code != 0 || !strings.Contains(out, "imported 0 users; skipped 9 id already in the store") || !strings.Contains(out, "nothing to write") {
		t.Errorf("merge of the same database: exit %d\n%s\n%s", code, out, errOut)
	}

	// The real server on the imported store: no bootstrap over user 1.
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_AUTHDB", authdb), servertest.Env("AUTHNZERVER_DATADIR", dataDir))
	if ts.Srv.FirstStart {
		t.Errorf("the server bootstrapped its own system users over the imported ones")
	}
	// Ids, emails and states as they were.
	for _, u := range f.Users {
		r := ts.MustSucceed("user-lookup-email", map[string]any{"email": u.Email})
		info, _ := r.Map("user_info"), true
		if id, _ := info["user_id"].(float64); int64(id) != u.ID || info["user_role"] != u.Role || info["is_active"] != u.IsActive ||
			info["email_verified"] != u.EmailVerified || info["full_name"] != u.FullName || info["system_id"] != u.SystemID {
			t.Errorf("user %d after the import: %v", u.ID, info)
		}
	}
	// Each user that could log in does, with the password it had; the
	// others do not.
	for _, u := range f.Users {
		if u.Password == "" {
			continue
		}
		r := ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": u.Email, "password": u.Password})
		if id, _ := r.Int("user_id"); r.Success != u.CanLogIn || (u.CanLogIn && id != u.ID) {
			t.Errorf("user %d logs in: %v (user_id %d), want %v", u.ID, r.Success, id, u.CanLogIn)
		}
		if u.CanLogIn {
			// Re-hashed with our parameters at that login.
			res, err := actors.Ask[shard.User](ts.Srv.Core, actors.GetUser{ID: shard.UserID(u.ID)})
			if err != nil {
				t.Fatal(err)
			}
			p, err := passhash.ParsePHC(res.Value.PasswordPHC)
			if err != nil || p.MemoryKiB != servertest.CheapHash.MemoryKiB || res.Value.PasswordPHC == u.PHC {
				t.Errorf("user %d: hash not re-hashed at login (m=%d, err %v)", u.ID, p.MemoryKiB, err)
			}
		}
	}
	// Each live session passes session-exists with the same token.
	for _, s := range f.Sessions {
		r := ts.Do("session-exists", map[string]any{"session_token": s.Token})
		info, _ := r.Map("session_info"), true
		if uid, _ := info["user_id"].(float64); r.Success != s.Live || (s.Live && int64(uid) != s.UserID) {
			t.Errorf("session of user %d (live %v): session-exists %v, %v", s.UserID, s.Live, r.Success, info)
		}
	}
	// Each API key verifies; expired ones (and keys of expired sessions)
	// do not.
	live := map[string]bool{}
	for _, s := range f.Sessions {
		live[s.Token] = s.Live
	}
	var refreshable *reftest.Key
	for i, k := range f.Keys {
		want := k.Live && (k.NoSession || live[k.SessionToken])
		req := "apikey-verify"
		if k.NoSession {
			req = "apikey-verify-nosession"
			if want && refreshable == nil {
				refreshable = &f.Keys[i]
			}
		}
		r := ts.Do(req, map[string]any{"apikey_dict": k.Dict, "user_id": k.UserID, "user_role": k.Role})
		if r.StatusCode != 200 || r.Success != want {
			t.Errorf("%s of user %d's key (live %v): status %d, %v %q; want %v", req, k.UserID, k.Live, r.StatusCode, r.Success, r.FailureReason, want)
		}
	}
	// A no-session key is refreshed with the refresh token the reference
	// hashed (argon2-cffi's PHC, verified through the hasher pool).
	r := ts.Do("apikey-refresh-nosession", map[string]any{
		"apikey_dict": refreshable.Dict, "user_id": refreshable.UserID, "user_role": refreshable.Role, "refresh_token": refreshable.Refresh,
		"ip_address": "198.51.100.9", "expires_seconds": 600, "not_valid_before": 0, "refresh_expires": 3600, "refresh_nbf": 0,
	})
	if !r.Success {
		t.Errorf("refresh of an imported key: %q %q", r.FailureReason, r.Messages)
	}
	// A new sign-up gets the next id.
	r = ts.MustSucceed("user-new", map[string]any{"full_name": "New Comer", "email": "newcomer@example.org", "password": "a-Fresh-passw0rd-after-the-move"})
	if id, _ := r.Int("user_id"); id != nextID {
		t.Errorf("new sign-up got id %d, want %d", id, nextID)
	}
	noSecrets("the server's log", ts.Log.String())
}
