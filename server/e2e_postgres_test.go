package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/pgstore"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// The end-to-end tests below run on PostgreSQL too (docs/operations.md,
// "PostgreSQL"): the same test code, with servertest.OnPostgres making its
// servers use a fresh database of the package's throwaway PostgreSQL.
// They cover sessions, accounts and users, API keys, email codes, failure
// counts and restarts; the tests after them are PostgreSQL's own (outage,
// fencing, bad URLs and schemas, crashes).
var onPostgres = []struct {
	name string
	fn   func(*testing.T)
}{
	{"SessionLifecycle", TestSessionLifecycle},
	{"SessionDeleteUserID", TestSessionDeleteUserID},
	{"SessionsSurviveRestart", TestSessionsSurviveRestart},
	{"SessionCapPerUser", TestSessionCapPerUser},
	{"SessionExpiry", TestSessionExpiry},
	{"SignUp", TestSignUp},
	{"ConcurrentSignUpOneWinner", TestConcurrentSignUpOneWinner},
	{"LoginLogoutPasscheck", TestLoginLogoutPasscheck},
	{"UsersSurviveRestart", TestUsersSurviveRestart},
	{"ChangePassword", TestChangePassword},
	{"ResetPassword", TestResetPassword},
	{"DeleteUser", TestDeleteUser},
	{"ListAndLookup", TestListAndLookup},
	{"UserEdit", TestUserEdit},
	{"LockUnlock", TestLockUnlock},
	{"APIKeySessionTied", TestAPIKeySessionTied},
	{"APIKeyNoSession", TestAPIKeyNoSession},
	{"APIKeyRefresh", TestAPIKeyRefresh},
	{"APIKeyRestart", TestAPIKeyRestart},
	{"APIKeysGoWithTheirUser", TestAPIKeysGoWithTheirUser},
	{"APIKeyRevokeAll", TestAPIKeyRevokeAll},
	{"BruteForceCountsPerAccountAcrossAddresses", TestBruteForceCountsPerAccountAcrossAddresses},
	{"EmailSignupVerification", TestEmailSignupVerification},
	{"EmailForgotPassword", TestEmailForgotPassword},
	{"Health", TestHealth},
}

func TestPostgresEndToEnd(t *testing.T) {
	pgtest.Shared(t) // skips (or fails on CI) without PostgreSQL
	for _, tc := range onPostgres {
		t.Run(tc.name, func(t *testing.T) {
			servertest.OnPostgres(t)
			tc.fn(t)
		})
	}
}

func pgHealth(t *testing.T, ts *servertest.Server) int {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(ts.URL, "/") + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sessionNew(ts *servertest.Server) (string, int) {
	r, err := ts.Client.Request(context.Background(), "session-new", map[string]any{
		"ip_address": "10.1.2.3", "user_agent": "pg", "user_id": nil, "client_ipaddr": "127.0.0.1",
		"expires": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"), "extra_info_json": nil,
	})
	if err != nil {
		return "", 0
	}
	if r.StatusCode != 200 || !r.Success {
		return "", r.StatusCode
	}
	return r.Str("session_token"), 200
}

// TestPostgresFencing: a second server on the same database takes every
// shard; the first one's writes are refused (nothing acknowledged), it
// stops answering (503, /health 500), and the second serves what the
// first had stored.
func TestPostgresFencing(t *testing.T) {
	servertest.OnPostgres(t)
	a := servertest.Start(t)
	tok := a.NewSession(0)
	b := servertest.Start(t, servertest.Env("AUTHNZERVER_AUTHDB", a.AuthDB()))
	if b.Srv.FirstStart {
		t.Error("the second server bootstrapped again")
	}
	b.MustSucceed("session-exists", map[string]any{"session_token": tok})
	if _, status := sessionNew(a); status != http.StatusServiceUnavailable {
		t.Errorf("write to a taken shard: status %d; want 503", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := a.Do("session-exists", map[string]any{"session_token": tok})
		if r.StatusCode == http.StatusServiceUnavailable && pgHealth(t, a) == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fenced server still answers: %d", r.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(a.Srv.Store.Healthy(), pgstore.ErrFenced) {
		t.Errorf("Healthy = %v", a.Srv.Store.Healthy())
	}
	tok2, status := sessionNew(b)
	if status != 200 {
		t.Fatalf("the new owner's write: %d", status)
	}
	b.MustSucceed("session-exists", map[string]any{"session_token": tok2})
	if pgHealth(t, b) != 200 {
		t.Error("the new owner is not healthy")
	}
	if !strings.Contains(a.Log.String(), "another process took shards") {
		t.Error("the fenced server did not log why")
	}
	for _, l := range []string{a.Log.String(), b.Log.String()} {
		if strings.Contains(l, pgtest.Password) {
			t.Error("the database password is in the log")
		}
	}
}

// startErr starts a server with env on top of a test configuration and
// returns the start's error.
func pgStartErr(t *testing.T, env map[string]string) error {
	t.Helper()
	base := map[string]string{
		"AUTHNZERVER_DATADIR": t.TempDir(), "AUTHNZERVER_SECRET": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"AUTHNZERVER_PIISALT": "s", "AUTHNZERVER_HASHISOLATION": "off", "AUTHNZERVER_PORT": "0",
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return base[k] }, io.Discard)
	if err != nil {
		return err
	}
	hp := servertest.CheapHash
	srv, err := server.Start(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HashParams: &hp, Getenv: func(k string) string { return base[k] }})
	if err == nil {
		srv.Close()
	}
	return err
}

func TestPostgresBadStoreStops(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, tt := range []struct{ name, url, want string }{
		{"bad URL", "postgres://u:pw-s3cret@h:port/db", "does not parse"},
		{"unreachable", "postgres://u:pw-s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "cannot reach PostgreSQL"},
		{"wrong password", strings.Replace(pg.URL("postgres"), pgtest.Password, "pw-s3cret", 1), "cannot reach PostgreSQL"},
	} {
		err := pgStartErr(t, map[string]string{"AUTHNZERVER_AUTHDB": tt.url})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v; want %q and no password", tt.name, err, tt.want)
		}
	}
	// A newer schema, and another deployment's: refused, nothing written.
	url := pg.DB(t)
	if err := pgStartErr(t, map[string]string{"AUTHNZERVER_AUTHDB": url}); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	exec(fmt.Sprintf(`UPDATE authnzerver.deployment SET schema_version = %d`, pgstore.SchemaVersion+1))
	if err := pgStartErr(t, map[string]string{"AUTHNZERVER_AUTHDB": url}); !errors.Is(err, pgstore.ErrNewerSchema) {
		t.Errorf("newer schema: %v", err)
	}
	exec(fmt.Sprintf(`UPDATE authnzerver.deployment SET schema_version = %d, app = 'another'`, pgstore.SchemaVersion))
	if err := pgStartErr(t, map[string]string{"AUTHNZERVER_AUTHDB": url}); !errors.Is(err, pgstore.ErrForeignSchema) {
		t.Errorf("other deployment: %v", err)
	}
}

// TestPostgresRestartUnderLoad: PostgreSQL stopped (as by a crash) and
// started again while clients write: writes during the outage get 503,
// none acknowledged is lost, and the server resumes by itself.
func TestPostgresRestartUnderLoad(t *testing.T) {
	pgtest.Shared(t)
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_DATADIR", t.TempDir()), servertest.Env("AUTHNZERVER_AUTHDB", pg.DB(t)))
	var mu sync.Mutex
	var acked []string
	var refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, status := sessionNew(ts)
				switch status {
				case 200:
					mu.Lock()
					acked = append(acked, tok)
					mu.Unlock()
				case http.StatusServiceUnavailable:
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
				default:
					t.Errorf("status %d", status)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	pg.StopNow()
	time.Sleep(time.Second)
	if pgHealth(t, ts) != 500 {
		t.Error("/health during the outage is not 500")
	}
	if err := pg.Restart(); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for pgHealth(t, ts) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", ts.Srv.Store.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if refused.Load() == 0 {
		t.Error("no write was refused during the outage")
	}
	if len(acked) <= before {
		t.Error("no write was acknowledged after the restart")
	}
	// Every acknowledged session is in PostgreSQL: a restart loads it.
	ts.Restart()
	for _, tok := range acked {
		if r := ts.Do("session-exists", map[string]any{"session_token": tok}); !r.Success {
			t.Fatalf("acknowledged session lost (%d acknowledged, %d refused)", len(acked), refused.Load())
		}
	}
	if strings.Contains(ts.Log.String(), pgtest.Password) {
		t.Error("the database password is in the log")
	}
	if !strings.Contains(ts.Log.String(), "PostgreSQL is back") {
		t.Error("the recovery is not in the log")
	}
	t.Logf("%d sessions acknowledged, %d writes refused during the outage", len(acked), refused.Load())
}

// TestCrashSyncPostgres is TestCrashSync on PostgreSQL: the real binary
// killed with SIGKILL under concurrent durable writes, restarted on the
// same database; no acknowledged write is lost.
func TestCrashSyncPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	url := pgtest.Shared(t).DB(t)
	seed := crashSeed()
	t.Logf("AUTHNZERVER_CRASH_SEED=%d", seed)
	run := runCrashCycles(t, crashCycles(), seed, []string{"AUTHNZERVER_DURABILITY=sync", "AUTHNZERVER_AUTHDB=" + url, "AUTHNZERVER_DATADIR=" + t.TempDir()}, t.Errorf)
	t.Logf("postgres, durability=sync: %d cycles, %d acknowledged writes, %d checks, %d lost%s", run.cycles, run.acked, run.checked, run.lost, run.byKind())
	if run.acked == 0 {
		t.Errorf("no write was acknowledged: the test did not test anything")
	}
}
