package pgstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/shard"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, url string, shards int) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(pgstore.Options{URL: url, Shards: shards, Logger: quiet(), ProbeEvery: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func toOps(muts []shard.Mutation) []persist.Op {
	ops := make([]persist.Op, len(muts))
	for i, m := range muts {
		ops[i] = persist.Op{Key: m.Key, Value: m.Value}
	}
	return ops
}

// records makes real records of every kind, with the awkward bytes a
// client may send (NUL, invalid UTF-8, JSON jsonb refuses).
func records(t *testing.T) []persist.Op {
	t.Helper()
	now := time.Now()
	sh := shard.New(shard.Options{})
	var ops []persist.Op
	u, muts, err := sh.CreateUser(shard.User{ID: 10, Email: "ann@example.org", FullName: "Ann \x00 \xff", Role: "authenticated",
		IsActive: true, ExtraInfo: []byte(`{"a":"\u0000","b":"\ud800"}`),
		EmailTokens: []shard.EmailToken{{Purpose: shard.PurposeSignup, Digest: "abc", Expires: now.Add(time.Hour)}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, toOps(muts)...)
	_, _, m := sh.ClaimEmail(u.Email, u.ID)
	ops = append(ops, toOps(m)...)
	_, _, m = sh.ClaimEmail("\x00sid:abc", u.ID)
	ops = append(ops, toOps(m)...)
	for i := range 50 {
		d := shard.SessionDigest(sha256.Sum256([]byte(fmt.Sprint("tok", i))))
		_, m := sh.CreateSession(d, shard.NewSession{UserID: u.ID, IPAddress: "10.0.0.1", UserAgent: "ua \xfe", Expires: now.Add(time.Hour),
			ExtraInfo: []byte(`{"theme":"dark"}`)}, now)
		ops = append(ops, toOps(m)...)
	}
	_, m, err = sh.CreateAPIKey(shard.APIKeyDigest(sha256.Sum256([]byte("key"))), shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: u.ID, Role: "authenticated",
		Lifetime: time.Hour, RefreshPHC: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", RefreshLifetime: 2 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, toOps(m)...)
	ops = append(ops, persist.Op{Key: []byte("fa/ann@example.org"), Value: []byte(`{"n":1,"last":"2026-01-02T03:04:05Z"}`)})
	ops = append(ops, toOps([]shard.Mutation{shard.EncodeNextUserID(11)})...)
	ops = append(ops, persist.Op{Key: []byte("zz/unknown kind \x00"), Value: []byte{0, 1, 2}})
	return ops
}

func scanAll(t *testing.T, s *pgstore.Store, prefix []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := s.Scan(prefix, func(k, v []byte) error { got[string(k)] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func query(t *testing.T, url, q string, args ...any) []any {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTripAndReadableColumns(t *testing.T) {
	url := pgtest.Shared(t).DB(t)
	s := open(t, url, 4)
	ops := records(t)
	if err := s.Writer().Enqueue(ops...).Wait(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Deleting and rewriting in one batch: the last write wins.
	extra := persist.Op{Key: []byte("m/x"), Value: []byte("1")}
	if err := s.Writer().Enqueue(extra, persist.Op{Key: []byte("m/x")}, persist.Op{Key: []byte("m/y"), Value: []byte("2")}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"m/y": "2"}
	for _, op := range ops {
		want[string(op.Key)] = string(op.Value)
	}
	s = open(t, url, 8) // another shard count: the records are the same
	defer s.Close()
	got := scanAll(t, s, nil)
	if len(got) != len(want) {
		t.Errorf("scan: %d records; want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("record %q = %q; want %q", k, got[k], v)
		}
	}
	if n := len(scanAll(t, s, []byte("s/"))); n != 50 {
		t.Errorf("scan s/: %d records; want 50", n)
	}
	if v := query(t, url, `SELECT email, role, is_active, extra_info IS NULL FROM authnzerver.users WHERE user_id = 10`); len(v) != 4 ||
		v[0] != "ann@example.org" || v[1] != "authenticated" || v[2] != true || v[3] != true {
		t.Errorf("users row = %v", v)
	}
	if v := query(t, url, `SELECT count(*), min(ip_address), min(extra_info->>'theme') FROM authnzerver.sessions WHERE user_id = 10`); v[0] != int64(50) || v[1] != "10.0.0.1" || v[2] != "dark" {
		t.Errorf("sessions = %v", v)
	}
	if v := query(t, url, `SELECT purpose FROM authnzerver.email_codes WHERE user_id = 10`); len(v) != 1 || v[0] != "signup" {
		t.Errorf("email codes = %v", v)
	}
	if v := query(t, url, `SELECT failures, email FROM authnzerver.failures`); len(v) != 2 || v[0] != int32(1) {
		t.Errorf("failures = %v", v)
	}
	if v := query(t, url, `SELECT kind FROM authnzerver.api_keys`); len(v) != 1 || v[0] != "no-session" {
		t.Errorf("api keys = %v", v)
	}
	if v := query(t, url, `SELECT system_id_claim FROM authnzerver.emails ORDER BY 1`); len(v) != 2 || v[0] != false || v[1] != true {
		t.Errorf("emails = %v", v)
	}
	if v := query(t, url, `SELECT shard_count, schema_version FROM authnzerver.deployment`); v[0] != int32(8) || v[1] != int32(pgstore.SchemaVersion) {
		t.Errorf("deployment = %v", v)
	}
	if v := query(t, url, `SELECT count(*) FROM authnzerver.shard_owner`); v[0] != int64(8) {
		t.Errorf("shard_owner rows = %v", v)
	}
}

func TestBadURLAndUnreachable(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"postgres://u:s3cret-pw@127.0.0.1:notaport/db", "does not parse"},
		{"postgres://u:s3cret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "cannot reach PostgreSQL"},
		{"mysql://u:s3cret-pw@h/db", "not a postgres"},
	} {
		_, err := pgstore.Open(pgstore.Options{URL: tt.url, Shards: 2, Logger: quiet(), ConnectTimeout: 3 * time.Second})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v; want %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestNewerOrForeignSchemaRefused(t *testing.T) {
	pg := pgtest.Shared(t)
	url := pg.DB(t)
	s := open(t, url, 2)
	s.Close()
	before := query(t, url, `SELECT sum(epoch) FROM authnzerver.shard_owner`)
	if _, err := pgx.Connect(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	query(t, url, `UPDATE authnzerver.deployment SET schema_version = 99`)
	_, err := pgstore.Open(pgstore.Options{URL: url, Shards: 2, Logger: quiet()})
	if !errors.Is(err, pgstore.ErrNewerSchema) {
		t.Errorf("newer schema: err = %v", err)
	}
	if after := query(t, url, `SELECT sum(epoch) FROM authnzerver.shard_owner`); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a refused open wrote: epochs %v, then %v", before, after)
	}
	query(t, url, `UPDATE authnzerver.deployment SET schema_version = 1, app = 'someone-else'`)
	if _, err := pgstore.Open(pgstore.Options{URL: url, Shards: 2, Logger: quiet()}); !errors.Is(err, pgstore.ErrForeignSchema) {
		t.Errorf("foreign deployment: err = %v", err)
	}
	url2 := pg.DB(t)
	query(t, url2, `CREATE SCHEMA authnzerver`)
	query(t, url2, `CREATE TABLE authnzerver.users (id int)`)
	if _, err := pgstore.Open(pgstore.Options{URL: url2, Shards: 2, Logger: quiet()}); !errors.Is(err, pgstore.ErrForeignSchema) {
		t.Errorf("foreign schema: err = %v", err)
	}
}

func TestPasswordFile(t *testing.T) {
	pg := pgtest.Shared(t)
	db, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte(pgtest.Password+"\n"), 0o600)
	s, err := pgstore.Open(pgstore.Options{URL: pg.URLNoPassword(db), PasswordFile: pw, Shards: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestFencing(t *testing.T) {
	url := pgtest.Shared(t).DB(t)
	a := open(t, url, 4)
	defer a.Close()
	fenced := make(chan error, 1)
	a.OnFenced(func(err error) { fenced <- err })
	if err := a.Writer().Enqueue(persist.Op{Key: []byte("m/a"), Value: []byte("1")}).Wait(); err != nil {
		t.Fatal(err)
	}
	b := open(t, url, 4) // takes every shard
	defer b.Close()
	err := a.Writer().Enqueue(persist.Op{Key: []byte("m/a"), Value: []byte("2")}).Wait()
	if !errors.Is(err, pgstore.ErrFenced) {
		t.Fatalf("write of a fenced process: err = %v", err)
	}
	if !errors.Is(a.Healthy(), pgstore.ErrFenced) {
		t.Errorf("Healthy = %v", a.Healthy())
	}
	select {
	case <-fenced:
	case <-time.After(5 * time.Second):
		t.Error("OnFenced not called")
	}
	if err := b.Writer().Enqueue(persist.Op{Key: []byte("m/b"), Value: []byte("3")}).Wait(); err != nil {
		t.Fatalf("the new owner's write: %v", err)
	}
	if got := scanAll(t, b, []byte("m/")); got["m/a"] != "1" || got["m/b"] != "3" {
		t.Errorf("records = %v", got)
	}
	// An idle process learns it too, from its probe.
	c := open(t, url, 4)
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(b.Healthy(), pgstore.ErrFenced) {
		if time.Now().After(deadline) {
			t.Fatalf("idle fenced store: Healthy = %v", b.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExclusiveRefusedWhileServing(t *testing.T) {
	url := pgtest.Shared(t).DB(t)
	a := open(t, url, 2)
	_, err := pgstore.Open(pgstore.Options{URL: url, Shards: 2, Logger: quiet(), Exclusive: true})
	if !errors.Is(err, pgstore.ErrInUse) {
		t.Errorf("exclusive open beside a server: %v", err)
	}
	a.Close()
	x, err := pgstore.Open(pgstore.Options{URL: url, Shards: 2, Logger: quiet(), Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(pgstore.Options{URL: url, Shards: 2, Logger: quiet()}); !errors.Is(err, pgstore.ErrInUse) {
		t.Errorf("server beside an admin command: %v", err)
	}
	x.Close()
}

// TestOutage: PostgreSQL stopped under a store: writes fail (never
// acknowledged), Healthy says so, and once it is back the store resumes by
// itself and holds every record it acknowledged.
func TestOutage(t *testing.T) {
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		if _, ferr := pgtest.FindBin(); ferr != nil && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer pg.Stop()
	url := pg.DB(t)
	s := open(t, url, 4)
	defer s.Close()
	acked := map[string]bool{}
	put := func(i int) error {
		k := fmt.Sprintf("m/%d", i)
		err := s.Writer().Enqueue(persist.Op{Key: []byte(k), Value: []byte("v")}).Wait()
		if err == nil {
			acked[k] = true
		}
		return err
	}
	for i := range 10 {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	pg.StopNow()
	failed := 0
	for i := 10; i < 20; i++ {
		if err := put(i); err != nil {
			failed++
			if !errors.Is(err, pgstore.ErrUnreachable) {
				t.Errorf("write during the outage: %v", err)
			}
		}
	}
	if failed == 0 {
		t.Error("every write during the outage was acknowledged")
	}
	if !errors.Is(s.Healthy(), pgstore.ErrUnreachable) {
		t.Errorf("Healthy during the outage = %v", s.Healthy())
	}
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after the restart: %v", s.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 20; i < 30; i++ {
		if err := put(i); err != nil {
			t.Fatalf("write after the restart: %v", err)
		}
	}
	got := scanAll(t, s, []byte("m/"))
	for k := range acked {
		if _, ok := got[k]; !ok {
			t.Errorf("acknowledged record %s lost", k)
		}
	}
	_ = bytes.MinRead
}

// TestSchemaPrivileges: a role that owns an empty authnzerver schema made
// for it (but may not create schemas) gets its tables there; a role that
// can do neither is told what it needs.
func TestSchemaPrivileges(t *testing.T) {
	pg := pgtest.Shared(t)
	db, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Admin(db, `ALTER DATABASE `+db+` OWNER TO postgres`, `REVOKE CREATE ON DATABASE `+db+` FROM PUBLIC`,
		`CREATE SCHEMA authnzerver AUTHORIZATION `+pgtest.Role); err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.Open(pgstore.Options{URL: pg.URL(db), Shards: 2, Logger: quiet()})
	if err != nil {
		t.Fatalf("open with a schema made for the role: %v", err)
	}
	s.Close()
	db2, err := pg.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Admin(db2, `ALTER DATABASE `+db2+` OWNER TO postgres`, `REVOKE CREATE ON DATABASE `+db2+` FROM PUBLIC`); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(pgstore.Options{URL: pg.URL(db2), Shards: 2, Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "needs CREATE on the database") {
		t.Errorf("open without privileges: %v", err)
	}
}

// TestFailureThatDoesNotPassIsSticky: a commit PostgreSQL refuses for good
// (a table dropped by hand) is never acknowledged, and the store refuses
// writes until restarted.
func TestFailureThatDoesNotPassIsSticky(t *testing.T) {
	url := pgtest.Shared(t).DB(t)
	s := open(t, url, 2)
	defer s.Close()
	query(t, url, `DROP TABLE authnzerver.metadata`)
	if err := s.Writer().Enqueue(persist.Op{Key: []byte("m/x"), Value: []byte("1")}).Wait(); err == nil {
		t.Fatal("a write into a dropped table was acknowledged")
	}
	if s.Healthy() == nil {
		t.Error("Healthy after a failed commit = nil")
	}
	if err := s.Writer().Enqueue(persist.Op{Key: []byte("s/y"), Value: []byte("1")}).Wait(); err == nil {
		t.Error("a write after a failed commit was acknowledged")
	}
}
