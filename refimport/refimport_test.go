package refimport_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/refimport"
	"github.com/authnzerver/authnzerver/refimport/reftest"
	"github.com/authnzerver/authnzerver/server/servertest"
	_ "modernc.org/sqlite"
)

func fixtureFile(t *testing.T, f *reftest.Fixture) (path, url string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), ".authdb.sqlite")
	url, err := f.WriteSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, url
}

func execSQLite(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestReadRefusesOtherDatabases: what is not the reference's database, or
// not a readable database at all, is refused before anything is planned.
func TestReadRefusesOtherDatabases(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.sqlite")
	b := make([]byte, 8192)
	rand.Read(b)
	os.WriteFile(junk, b, 0o600)

	path, _ := fixtureFile(t, reftest.New())
	whole, _ := os.ReadFile(path)
	truncated := filepath.Join(dir, "truncated.sqlite")
	os.WriteFile(truncated, whole[:len(whole)/2], 0o600)
	corrupt := filepath.Join(dir, "corrupt.sqlite")
	damaged := append([]byte(nil), whole...)
	for i := 4096; i < len(damaged) && i < 4096*3; i++ { // pages 2 and 3
		damaged[i] = 0xA5
	}
	os.WriteFile(corrupt, damaged, 0o600)

	foreign := filepath.Join(dir, "foreign.sqlite")
	execSQLite(t, foreign, `CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)`)
	// A schema of another version: a column the import reads is not
	// there.
	older, _ := fixtureFile(t, reftest.New())
	execSQLite(t, older, `ALTER TABLE users RENAME COLUMN user_role TO role`)

	for _, tc := range []struct {
		name, url string
		want      error
	}{
		{"random bytes", "sqlite:///" + junk, refimport.ErrCorrupt},
		{"truncated", "sqlite:///" + truncated, refimport.ErrCorrupt},
		{"damaged pages", "sqlite:///" + corrupt, refimport.ErrCorrupt},
		{"another application's", "sqlite:///" + foreign, refimport.ErrNotReference},
		{"unknown schema version", "sqlite:///" + older, refimport.ErrNotReference},
		{"bad URL", "mysql://x/y", refimport.ErrBadURL},
		{"no path", "sqlite://", refimport.ErrBadURL},
	} {
		_, err := refimport.Read(context.Background(), tc.url, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	missing := filepath.Join(dir, "missing.sqlite")
	if _, err := refimport.Read(context.Background(), "sqlite:///"+missing, nil); err == nil {
		t.Errorf("a missing file was read")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("reading a missing file created it")
	}
}

// storeRecords counts the records of a pebble store.
func storeRecords(t *testing.T, st *persist.Store) int {
	t.Helper()
	n := 0
	if err := st.Scan(nil, func(k, v []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func openStore(t *testing.T, dir string) *persist.Store {
	t.Helper()
	st, err := persist.Open(filepath.Join(dir, "db"), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestImpossibleRows: rows the server could not hold are listed one by
// one with their reason, by id or pseudonym only; --strict then writes
// nothing, and without it the rest is imported.
func TestImpossibleRows(t *testing.T) {
	f := reftest.New()
	alice := f.Users[3]
	phc := alice.PHC
	row := func(id int, email, role, created string) string {
		return fmt.Sprintf(`INSERT INTO users (user_id, system_id, full_name, password, email, email_verified, is_active,
			failed_login_tries, created_on, last_updated, user_role) VALUES (%d, 'sid-%d', 'X', '%s', '%s', TRUE, TRUE, 0, %s, '2024-01-02 03:04:05.000000', '%s')`,
			id, id, phc, email, created, role)
	}
	now := "'2024-01-02 03:04:05.000000'"
	f.Extra = []string{
		`INSERT INTO roles (name, "desc") VALUES ('wizard', 'Role with wizard privileges')`,
		row(20, "not-an-email", "authenticated", now),
		row(21, "wizard@example.org", "wizard", now),
		row(22, "ALICE@Example.org", "authenticated", now), // alice's, in capitals
		row(23, "when@example.org", "authenticated", "'yesterday-ish'"),
		// the session of a refused user
		`INSERT INTO sessions VALUES ('` + reftest.Token() + `', '203.0.113.9', 'UA', 21, '2024-01-02 03:04:05.000000', '2999-01-01 00:00:00.000000', NULL)`,
	}
	_, url := fixtureFile(t, f)
	ref, err := refimport.Read(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	model := perm.Default()
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()

	rep, err := refimport.Import(ref, st, refimport.Options{Strict: true, KnownRole: model.HasRole})
	if !errors.Is(err, refimport.ErrRowsRefused) || rep.Written || storeRecords(t, st) != 0 {
		t.Fatalf("strict import of impossible rows: %v, written %v, %d records", err, rep.Written, storeRecords(t, st))
	}
	rep, err = refimport.Import(ref, st, refimport.Options{KnownRole: model.HasRole})
	if err != nil || !rep.Written {
		t.Fatalf("import: %v", err)
	}
	var listed []string
	for _, p := range rep.Problems {
		listed = append(listed, p.Kind+": "+p.Row+": "+p.Reason)
	}
	all := strings.Join(listed, "\n")
	t.Logf("problems:\n%s", all)
	for _, want := range []string{
		"users: user 20: email fails our checks",
		"users: user 21: unknown role",
		"users: user 22: duplicate email: the same address (differing in case or form) as user 4",
		"users: user 23: impossible value: a time does not parse",
		"its user is not imported: user 21",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q", want)
		}
	}
	for _, secret := range []string{"not-an-email", "wizard@example.org", "ALICE@Example.org", "alice@example.org", phc} {
		if strings.Contains(all, secret) {
			t.Errorf("the report holds %q", secret)
		}
	}
	if rep.Imported[refimport.KindUsers] != 9 || rep.NextUserID != 10 {
		t.Errorf("imported %d users, next id %d; want the fixture's 9 and 10", rep.Imported[refimport.KindUsers], rep.NextUserID)
	}
}

// TestMergeIntoUsedStore: a store a server has run on holds its own system
// users; the import refuses it without Merge (writing nothing) and with
// Merge refuses the colliding ids with their sessions and keys, adding
// the rest.
func TestMergeIntoUsedStore(t *testing.T) {
	ts := servertest.Start(t)
	ts.NewUser("someone@example.org", "a-Long-enough-passw0rd") // id 4
	dir := ts.AuthDB()
	ts.Stop()

	_, url := fixtureFile(t, reftest.New())
	ref, err := refimport.Read(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	defer st.Close()
	before := storeRecords(t, st)
	model := perm.Default()
	if _, err := refimport.Import(ref, st, refimport.Options{KnownRole: model.HasRole}); !errors.Is(err, refimport.ErrNotEmpty) {
		t.Fatalf("import into a used store: %v; want ErrNotEmpty", err)
	}
	if n := storeRecords(t, st); n != before {
		t.Fatalf("a refused import changed the store: %d records, had %d", n, before)
	}
	rep, err := refimport.Import(ref, st, refimport.Options{Merge: true, KnownRole: model.HasRole})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Skipped[refimport.KindUsers]["id already in the store"]; got != 4 || rep.Imported[refimport.KindUsers] != 5 {
		t.Errorf("merge: %d users refused for their id, %d imported; want 4 and 5 (%v)", got, rep.Imported[refimport.KindUsers], rep.Problems)
	}
	// Alice (4) and the superuser (1) were refused: so are their sessions
	// and keys; Bob's (5) came in.
	if rep.Imported[refimport.KindSessions] != 1 || rep.Imported[refimport.KindSessionKeys] != 1 || rep.Imported[refimport.KindNoSessionKeys] != 1 {
		t.Errorf("merge: %v", rep.Imported)
	}
}
