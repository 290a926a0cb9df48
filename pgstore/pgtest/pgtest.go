// Package pgtest runs a throwaway PostgreSQL server for tests: initdb into
// a temporary directory, the server on a free loopback port (and a unix
// socket in that directory), a fresh database per test, and nothing left
// running at the end (call [Main] from TestMain). No mock: the tests of the
// PostgreSQL store run against the real thing (docs/operations.md,
// "PostgreSQL").
//
// PostgreSQL refuses to run as root; as root, initdb and the server run as
// the "postgres" account (else "nobody"), which owns the temporary
// directory. Without the binaries (Debian's postgresql package) a test
// fails with a clear message when CI=true and is skipped otherwise.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Role and Password are the unprivileged role that owns the test
// databases: the store needs no superuser.
const (
	Role     = "authnz"
	Password = "authnz-test-password"
)

// Options configure a server.
type Options struct {
	// Fsync keeps PostgreSQL's fsync on (benchmarks). Tests leave it off:
	// a process crash or restart loses nothing either way, and the 2-core
	// CI machine is faster without it.
	Fsync bool
}

// Server is a running throwaway PostgreSQL.
type Server struct {
	dir    string // temporary directory: data/, the socket, the log
	bin    string // directory of the binaries
	port   int
	cred   *syscall.Credential // nil: run as ourselves
	opts   Options
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	dbs    atomic.Int64
}

// FindBin returns the directory holding initdb and postgres: from PATH,
// else the newest /usr/lib/postgresql/*/bin.
func FindBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(m, func(i, j int) bool { return pgVersion(m[i]) > pgVersion(m[j]) })
	if len(m) > 0 {
		return filepath.Dir(m[0]), nil
	}
	return "", errors.New("pgtest: PostgreSQL binaries (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin; install Debian's postgresql package (apt-get install -y postgresql)")
}

func pgVersion(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}

// Start initialises and starts a server.
func Start(opts Options) (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "authnzerver-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, opts: opts}
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	pwfile := filepath.Join(dir, "pw")
	if err := s.writeOwned(pwfile, "postgres-test-password\n"); err != nil {
		s.cleanup()
		return nil, err
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pwfile, "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	if err := s.start(); err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.admin(context.Background(), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", Role, Password)); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root and no postgres or nobody account to run PostgreSQL as")
}

func (s *Server) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if s.cred != nil {
		return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
	}
	return nil
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.cred != nil {
		cmd.SysProcAttr.Credential = s.cred
	}
	return cmd
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// start starts postgres on a free port and waits until it accepts
// connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port == 0 || attempt > 0 {
			s.port = freePort()
		}
		fsync := "off"
		if s.opts.Fsync {
			fsync = "on"
		}
		logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir(), "-p", strconv.Itoa(s.port),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
			"-c", "fsync="+fsync, "-c", "full_page_writes="+fsync, "-c", "max_connections=300",
			"-c", "shared_buffers=128MB", "-c", "max_wal_size=2GB", "-c", "log_min_messages=warning")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("pgtest: start postgres: %w", err)
		}
		logf.Close()
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		s.cmd, s.exited = cmd, exited
		if lastErr = s.waitReady(exited, 60*time.Second); lastErr == nil {
			return nil
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return fmt.Errorf("pgtest: postgres did not start: %v\n%s", lastErr, log)
}

func (s *Server) waitReady(exited chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return errors.New("postgres exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.adminURL())
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 15432
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// adminURL connects as the superuser over the unix socket (trust).
func (s *Server) adminURL() string {
	return fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", s.dir, s.port)
}

// admin runs statements as the superuser.
func (s *Server) admin(ctx context.Context, sqls ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.adminURL())
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer c.Close(ctx)
	for _, q := range sqls {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgtest: %s: %w", q, err)
		}
	}
	return nil
}

// Admin runs statements as the superuser in database db ("" for the
// postgres database).
func (s *Server) Admin(db string, sqls ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := s.adminURL()
	if db != "" {
		url = strings.Replace(url, "/postgres?", "/"+db+"?", 1)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer c.Close(ctx)
	for _, q := range sqls {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgtest: %s: %w", q, err)
		}
	}
	return nil
}

// NewDatabase creates an empty database owned by [Role] and returns its
// name.
func (s *Server) NewDatabase() (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	if err := s.admin(context.Background(), fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, Role)); err != nil {
		return "", err
	}
	return name, nil
}

// URL is the connection URL of database db as [Role], over TCP with its
// password.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", Role, Password, s.port, db)
}

// URLNoPassword is URL without the password (for AUTHNZERVER_AUTHDBPASSFILE).
func (s *Server) URLNoPassword(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Role, s.port, db)
}

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// DB creates a fresh database for t and returns its URL.
func (s *Server) DB(t testing.TB) string {
	t.Helper()
	db, err := s.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return s.URL(db)
}

// StopNow stops the server at once, as a crash would (SIGQUIT: immediate
// shutdown, recovery at the next start). Restart starts it again on the
// same port.
func (s *Server) StopNow() { s.signal(syscall.SIGQUIT) }

// Stop stops the server (fast shutdown) and removes its directory.
func (s *Server) Stop() {
	s.signal(syscall.SIGINT)
	s.cleanup()
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart() error {
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := s.start()
		if err == nil || attempt == 3 {
			return err
		}
		s.port = port
	}
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

func (s *Server) cleanup() { os.RemoveAll(s.dir) }

// Shared: one server per test binary, started on first use and stopped by
// Main.
var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Shared returns the package's shared server, starting it on first use. If
// PostgreSQL is not installed it fails t when CI=true and skips it
// otherwise.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start(Options{})
	}
	if sharedErr != nil {
		if _, err := FindBin(); err != nil && os.Getenv("CI") != "true" {
			t.Skipf("%v (CI=true makes this a failure)", err)
		}
		t.Fatalf("PostgreSQL for the tests: %v", sharedErr)
	}
	return shared
}

// Main runs the tests and then stops the shared server: call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	sharedMu.Unlock()
	os.Exit(code)
}
