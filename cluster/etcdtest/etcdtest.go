// Package etcdtest runs a throwaway etcd server for tests, the way
// pgstore/pgtest does for PostgreSQL: etcd on free loopback ports (client
// and peer), its data directory in a temporary directory, a wait until it
// answers, and nothing left running at the end of the test (t.Cleanup
// kills it and removes the directory, even when the test fails). No mock:
// the cluster membership tests run against the real thing.
//
// Stop, Kill and Restart let a test take etcd away and bring it back on the
// same ports with the same data (leases and keys survive, as they would in
// production).
//
// etcd runs as root without complaint, so no account switch is needed (as
// root the temporary directory is still private to root). Without the
// binary (Debian's etcd-server package) a test fails with a clear message
// when CI=true and is skipped otherwise.
package etcdtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timing keeps elections fast: etcd requires the election timeout to be at
// least five heartbeats; 25 ms / 250 ms keeps a restarted single-node etcd
// leader within a fraction of a second without spurious elections on a
// loaded 2-core machine.
const (
	heartbeatMS = 25
	electionMS  = 250
)

// Server is a running (or stopped, see Stop) throwaway etcd.
type Server struct {
	bin        string
	dir        string // temporary directory: data/ and etcd.log
	clientPort int
	peerPort   int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// FindBin returns the path of the etcd binary: from PATH, else
// /usr/bin/etcd.
func FindBin() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd", nil
	}
	return "", errors.New("etcdtest: etcd binary not found in PATH or /usr/bin; install Debian's etcd-server package (apt-get install -y etcd-server)")
}

// Start starts etcd for t and registers its cleanup. If etcd is not
// installed it fails t when CI=true and skips it otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := FindBin(); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("%v (CI=true makes this a failure)", err)
		}
		t.Fatalf("etcd for the tests: %v", err)
	}
	s, err := New()
	if err != nil {
		t.Fatalf("etcd for the tests: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts etcd; the caller must Close it.
func New() (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "authnzerver-etcd-")
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	s := &Server{bin: bin, dir: dir}
	// A port found free may be taken before etcd binds it: try new ports a
	// few times.
	for attempt := 0; attempt < 5; attempt++ {
		s.clientPort, s.peerPort = freePort(), freePort()
		if s.clientPort == s.peerPort {
			continue
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// Endpoints are the client URLs of the server.
func (s *Server) Endpoints() []string {
	return []string{fmt.Sprintf("http://127.0.0.1:%d", s.clientPort)}
}

// Addr is the client host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.clientPort) }

// Stop stops etcd gracefully (SIGTERM) and waits for it to exit. Restart
// brings it back.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill stops etcd at once (SIGKILL), as a crash would. Restart brings it
// back.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Restart starts a stopped etcd again on the same ports with the same data
// directory.
func (s *Server) Restart() error {
	var err error
	// The ports were ours a moment ago; a short retry covers the rare case
	// where the kernel has not released them yet.
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// Close kills etcd if it runs and removes its directory.
func (s *Server) Close() {
	s.Kill()
	os.RemoveAll(s.dir)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("etcdtest: etcd is already running")
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", s.clientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", s.peerPort)
	logf, err := os.OpenFile(filepath.Join(s.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin,
		"--name", "test",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer,
		"--initial-cluster-state", "new",
		"--heartbeat-interval", strconv.Itoa(heartbeatMS),
		"--election-timeout", strconv.Itoa(electionMS),
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
	)
	cmd.Dir = s.dir
	// A clean environment: an ETCD_* variable of the caller would
	// override the flags.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, etcd dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcdtest: start etcd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitReady(client, exited, 30*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
		return fmt.Errorf("etcdtest: etcd did not start: %w\n%s", err, tail(log, 4000))
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// waitReady polls /health, which answers true once the member has a leader
// and can serve requests.
func waitReady(client string, exited chan struct{}, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return errors.New("etcd exited")
		default:
		}
		resp, err := hc.Get(client + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"true"`) {
				return nil
			}
			err = fmt.Errorf("health: %d %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
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
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.exited = nil, nil
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
