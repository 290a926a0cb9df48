// Package servertest starts a real authnzerver on a loopback port for
// end-to-end tests, with a client that speaks the real wire protocol.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/server"
)

// pgTests holds the names of the tests whose servers run on PostgreSQL.
var pgTests sync.Map

// OnPostgres makes the servers that Start starts for t and its subtests
// run on PostgreSQL: a fresh database of the package's shared throwaway
// server (pgtest.Shared; the package's TestMain calls pgtest.Main), with
// the local files in a temporary data directory. An option that sets
// AUTHNZERVER_AUTHDB still chooses the store.
func OnPostgres(t testing.TB) {
	pgTests.Store(t.Name(), true)
	t.Cleanup(func() { pgTests.Delete(t.Name()) })
}

// OnPostgresNow reports whether Start would run t's server on PostgreSQL.
func OnPostgresNow(t testing.TB) bool {
	name := t.Name()
	for {
		if _, ok := pgTests.Load(name); ok {
			return true
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return false
		}
		name = name[:i]
	}
}

// CheapHash are Argon2id parameters that keep tests fast. Never use them in
// production.
var CheapHash = passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

// AdminPassword is the superuser password of test servers.
const AdminPassword = "correct-horse-battery-staple-42"

// AdminEmail is the superuser email of test servers.
const AdminEmail = "admin@example.org"

// Server is a running test server.
type Server struct {
	t      testing.TB
	Srv    *server.Server
	Config *config.Config
	Client *client.Client
	URL    string
	Key    string
	Log    *LogBuffer
	env    map[string]string
	opts   server.Options
	// skew is added to the real time to make the server's clock; Advance
	// moves it (it survives Restart).
	skew atomic.Int64
}

// Option changes the configuration variables of a test server.
type Option func(env map[string]string)

// DefaultRateLimits turns on the server's default rate limits
// (docs/protocol.md, "Rate limits").
func DefaultRateLimits() Option {
	return Env("AUTHNZERVER_RATELIMITS", "ipaddr:720; user:480; session:600; apikey:720; burst:150")
}

// SocialTimeout is the name of a test-only setting: the timeout of calls
// to social login providers, as a Go duration (the server's default is
// 10 s).
const SocialTimeout = "servertest.socialtimeout"

// SocialPool is the name of a test-only setting: the size of the pool of
// calls to social login providers.
const SocialPool = "servertest.socialpool"

// Env sets one configuration variable.
func Env(name, value string) Option { return func(env map[string]string) { env[name] = value } }

// Start starts a server on 127.0.0.1 with a fresh data directory and stops
// it at the end of the test.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	env := map[string]string{
		"AUTHNZERVER_AUTHDB":         t.TempDir(),
		"AUTHNZERVER_PORT":           "0",
		"AUTHNZERVER_SECRET":         key,
		"AUTHNZERVER_PIISALT":        "test-pii-salt",
		"AUTHNZERVER_ADMIN_EMAIL":    AdminEmail,
		"AUTHNZERVER_ADMIN_PASSWORD": AdminPassword,
		"AUTHNZERVER_SHARDS":         "4",
		"AUTHNZERVER_FQDN":           "authnzerver.test",
		// Functional tests make more sign-ups and logins from one address
		// than the default limits allow; the rate-limit tests set their own.
		"AUTHNZERVER_RATELIMITS": "none",
	}
	if OnPostgresNow(t) {
		env["AUTHNZERVER_DATADIR"] = env["AUTHNZERVER_AUTHDB"]
		env["AUTHNZERVER_AUTHDB"] = pgtest.Shared(t).DB(t)
	}
	for _, o := range opts {
		o(env)
	}
	s := &Server{t: t, env: env, Key: strings.Split(env["AUTHNZERVER_SECRET"], ",")[0], Log: &LogBuffer{}}
	s.start()
	t.Cleanup(func() { s.Stop() })
	return s
}

// StartErr starts a server as Start does and returns the error of a start
// that fails (nil, the server stopped again, when it starts).
func StartErr(t testing.TB, opts ...Option) error {
	t.Helper()
	env := map[string]string{
		"AUTHNZERVER_AUTHDB": t.TempDir(), "AUTHNZERVER_PORT": "0", "AUTHNZERVER_SECRET": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"AUTHNZERVER_PIISALT": "test-pii-salt", "AUTHNZERVER_ADMIN_EMAIL": AdminEmail, "AUTHNZERVER_ADMIN_PASSWORD": AdminPassword,
		"AUTHNZERVER_SHARDS": "2", "AUTHNZERVER_RATELIMITS": "none",
	}
	for _, o := range opts {
		o(env)
	}
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		return err
	}
	hp := CheapHash
	srv, err := server.Start(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(logSink(), nil)), Getenv: func(k string) string { return env[k] }, HashParams: &hp})
	if err != nil {
		return err
	}
	return srv.Close()
}

func (s *Server) start() {
	s.t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return s.env[k] }, io.Discard)
	if err != nil {
		s.t.Fatalf("config: %v", err)
	}
	lg := slog.New(slog.NewTextHandler(io.MultiWriter(s.Log, logSink()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.opts = server.Options{Logger: lg, Getenv: func(k string) string { return s.env[k] }, Now: s.now}
	if d, err := time.ParseDuration(s.env[SocialTimeout]); err == nil {
		s.opts.Social.Timeout = d
	}
	if n, err := strconv.Atoi(s.env[SocialPool]); err == nil {
		s.opts.Social.MaxConcurrent = n
	}
	if s.env["AUTHNZERVER_ARGON2"] == "" {
		hp := CheapHash // unless the test asks for real parameters
		s.opts.HashParams = &hp
	}
	srv, err := server.Start(cfg, s.opts)
	if err != nil {
		s.t.Fatalf("start server: %v", err)
	}
	if err := srv.Listen(); err != nil {
		s.t.Fatalf("listen: %v", err)
	}
	s.Srv, s.Config = srv, cfg
	s.URL = "http://" + srv.Addr.String() + "/"
	c, err := client.New(s.URL, s.Key)
	if err != nil {
		s.t.Fatal(err)
	}
	s.Client = c
}

// Stop stops the server (idempotent).
func (s *Server) Stop() {
	if s.Srv != nil {
		if err := s.Srv.Close(); err != nil {
			s.t.Errorf("close server: %v", err)
		}
		s.Srv = nil
	}
}

// Restart stops the server and starts it again on the same data directory
// (on a new port).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.env["AUTHNZERVER_PORT"] = "0"
	s.start()
}

// SetEnv changes a configuration variable for the next Restart.
func (s *Server) SetEnv(name, value string) { s.env[name] = value }

// DataDir is the server's data directory.
func (s *Server) DataDir() string {
	if d := s.env["AUTHNZERVER_DATADIR"]; d != "" {
		return d
	}
	return s.env["AUTHNZERVER_AUTHDB"]
}

// AuthDB is the server's store: its data directory, or a PostgreSQL URL.
func (s *Server) AuthDB() string { return s.env["AUTHNZERVER_AUTHDB"] }

// Do sends one request from client IP 127.0.0.1 and fails the test on a
// transport error.
func (s *Server) Do(reqType string, body map[string]any) *client.Response {
	s.t.Helper()
	if _, ok := body["client_ipaddr"]; !ok {
		// A copy: callers pass shared maps, which must not keep this
		// address for the next request that sets its own.
		withIP := maps.Clone(body)
		if withIP == nil {
			withIP = map[string]any{}
		}
		withIP["client_ipaddr"] = "127.0.0.1"
		body = withIP
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := s.Client.Request(ctx, reqType, body)
	if err != nil {
		s.t.Fatalf("%s: %v", reqType, err)
	}
	return r
}

// MustSucceed sends a request and fails the test unless it succeeded.
func (s *Server) MustSucceed(reqType string, body map[string]any) *client.Response {
	s.t.Helper()
	r := s.Do(reqType, body)
	if r.StatusCode != 200 || !r.Success {
		s.t.Fatalf("%s: status %d success %v failure_reason %q messages %q", reqType, r.StatusCode, r.Success, r.FailureReason, r.Messages)
	}
	return r
}

// NewUser signs up a user and activates it (as email verification would),
// and returns its id.
func (s *Server) NewUser(email, password string) int64 {
	s.t.Helper()
	r := s.MustSucceedOrExists("user-new", map[string]any{"full_name": "Test User", "email": email, "password": password})
	id, _ := r.Int("user_id")
	s.MustSucceed("internal-user-edit", map[string]any{"target_userid": id, "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"}})
	return id
}

// MustSucceedOrExists is MustSucceed that also accepts "user exists".
func (s *Server) MustSucceedOrExists(reqType string, body map[string]any) *client.Response {
	s.t.Helper()
	r := s.Do(reqType, body)
	if r.StatusCode != 200 || (!r.Success && r.FailureReason != "user exists") {
		s.t.Fatalf("%s: status %d success %v failure_reason %q messages %q", reqType, r.StatusCode, r.Success, r.FailureReason, r.Messages)
	}
	return r
}

func (s *Server) now() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }

// Advance moves the server's clock forward by d (sessions, codes, locks and
// waits measured in hours can then be tested without waiting).
func (s *Server) Advance(d time.Duration) { s.skew.Add(int64(d)) }

// NewSession creates a session for user id (0: anonymous) and returns its
// token.
func (s *Server) NewSession(userID int64) string {
	s.t.Helper()
	var uid any
	if userID != 0 {
		uid = userID
	}
	r := s.MustSucceed("session-new", map[string]any{
		"ip_address": "10.1.2.3", "user_agent": "servertest", "user_id": uid,
		"expires": s.now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"), "extra_info_json": nil,
	})
	return r.Str("session_token")
}

func logSink() io.Writer {
	if os.Getenv("AUTHNZERVER_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// LogBuffer keeps everything the server logged, for log-hygiene tests.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

// Write implements io.Writer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
