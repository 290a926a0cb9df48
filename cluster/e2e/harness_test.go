// Package e2e tests cluster mode end to end: several real server processes
// (the binary, built with the race detector) on loopback, a throwaway etcd
// and a throwaway PostgreSQL, driven through the wire protocol with the Go
// client, and hurt as operators and failures would: kill -9, SIGSTOP,
// restarts of nodes and of etcd.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/cluster/etcdtest"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testKey is the deployment's Fernet key, shared by every node.
const testKey = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="

var binOnce struct {
	sync.Once
	path string
	err  error
}

// serverBinary builds the server once per test process, with the race
// detector: the cluster code is checked here, in processes of their own
// (several protoactor-go remotes in one process race on gRPC's logger).
func serverBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "authnzerver-cluster-bin-")
		if err != nil {
			binOnce.err = err
			return
		}
		binOnce.path = filepath.Join(dir, "authnzerver")
		args := []string{"build", "-o", binOnce.path}
		if raceBuild() {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/authnzerver/authnzerver/cmd/authnzerver")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			binOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

// raceBuild reports whether the nodes are built with the race detector
// (whose exit status, when it saw a race, is 66).
func raceBuild() bool { return os.Getenv("AUTHNZ_CLUSTER_NORACE") == "" }

// testCluster is an etcd, a PostgreSQL database and the nodes on them.
type testCluster struct {
	t     *testing.T
	etcd  *etcdtest.Server
	pg    *pgtest.Server
	db    string // the database URL
	nodes []*node
	env   []string // extra environment of every node
}

// node is one server process of the cluster; it keeps its ports across
// restarts, as a real node keeps its address.
type node struct {
	c        *testCluster
	name     string
	port     int // HTTP
	nodePort int // cluster remote
	dataDir  string
	cmd      *exec.Cmd
	stderr   *syncBuffer // the output of the current (or last) process
	past     string      // the output of the processes before it
	done     chan struct{}
	client   *client.Client
}

func newCluster(t *testing.T, n int, env ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, etcd: etcdtest.Start(t), pg: pgtest.Shared(t), env: env}
	c.db = c.pg.DB(t)
	for i := range n {
		c.nodes = append(c.nodes, c.newNode(fmt.Sprintf("node%c", 'A'+i)))
	}
	// Started side by side, as an operator's nodes come up.
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Go(func() { nd.start() })
	}
	wg.Wait()
	for _, nd := range c.nodes {
		if err := nd.waitHealthy(60 * time.Second); err != nil {
			t.Fatalf("%s did not start: %v\n%s", nd.name, err, nd.stderr)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.stop()
		}
		if t.Failed() || os.Getenv("AUTHNZ_CLUSTER_LOGS") != "" {
			for _, nd := range c.nodes {
				t.Logf("--- %s stderr:\n%s%s", nd.name, nd.past, nd.stderr)
			}
		}
		for _, nd := range c.nodes {
			if races := nd.past + nd.stderr.String(); strings.Contains(races, "WARNING: DATA RACE") && raceInOurCode(races) {
				t.Errorf("%s: data race in authnzerver code:\n%s", nd.name, races)
			}
		}
	})
	return c
}

// raceInOurCode reports whether a race report has one of its two racing
// accesses made by a function of ours: the first frame under "Write at",
// "Read at", "Previous write at" or "Previous read at". protoactor-go has
// races of its own (doc of cluster/membership), some of whose stacks pass
// through our code further down: our membership provider calls
// MemberList.UpdateClusterTopology, which writes the member list while
// protoactor's gossip actor reads it without a lock. Those are not ours.
// (Frames of the runtime's helpers, such as map access, are skipped.)
func raceInOurCode(stderr string) bool {
	for _, rep := range strings.Split(stderr, "WARNING: DATA RACE")[1:] {
		end := strings.Index(rep, "==================")
		if end < 0 {
			end = len(rep)
		}
		lines := strings.Split(rep[:end], "\n")
		for k, ln := range lines {
			ln = strings.TrimSpace(ln)
			access := strings.HasPrefix(ln, "Write at") || strings.HasPrefix(ln, "Read at") ||
				strings.HasPrefix(ln, "Previous write at") || strings.HasPrefix(ln, "Previous read at")
			if !access {
				continue
			}
			// The first frame that is not the runtime's (map and
			// slice helpers) is the accessing function.
			for _, f := range lines[k+1:] {
				f = strings.TrimSpace(f)
				if f == "" || strings.HasPrefix(f, "/") || strings.HasPrefix(f, "<autogenerated>") ||
					strings.HasPrefix(f, "runtime.") || strings.HasPrefix(f, "internal/") || strings.HasPrefix(f, "sync/atomic.") {
					continue
				}
				if strings.HasPrefix(f, "github.com/authnzerver/authnzerver/") {
					return true
				}
				break
			}
		}
	}
	return false
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *testCluster) newNode(name string) *node {
	nd := &node{c: c, name: name, port: freePort(c.t), nodePort: freePort(c.t), dataDir: c.t.TempDir()}
	cl, err := client.New(fmt.Sprintf("http://127.0.0.1:%d/", nd.port), testKey)
	if err != nil {
		c.t.Fatal(err)
	}
	nd.client = cl
	return nd
}

// start starts the node's process (it must not be running).
func (nd *node) start() { nd.startWith() }

// startWith starts the node's process with extra environment (later
// entries win).
func (nd *node) startWith(extra ...string) {
	cmd := exec.Command(serverBinary(nd.c.t))
	cmd.Env = append(nd.environ(), extra...)
	if nd.stderr != nil {
		nd.past += nd.stderr.String() + "\n--- " + nd.name + " restarted ---\n"
	}
	nd.stderr = &syncBuffer{}
	cmd.Stderr = nd.stderr
	cmd.Stdout = nd.stderr
	nd.done = make(chan struct{})
	if err := cmd.Start(); err != nil {
		nd.c.t.Fatal(err)
	}
	nd.cmd = cmd
	done := nd.done
	go func() { cmd.Wait(); close(done) }()
}

// exitCode is the exit status of the node's last process (-1 if killed
// by a signal or still running).
func (nd *node) exitCode() int {
	if nd.cmd == nil || nd.running() || nd.cmd.ProcessState == nil {
		return -1
	}
	return nd.cmd.ProcessState.ExitCode()
}

// waitExit waits up to limit for the node's process to exit.
func (nd *node) waitExit(limit time.Duration) bool {
	select {
	case <-nd.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// environ is the node's environment.
func (nd *node) environ() []string {
	env := append(os.Environ(),
		"AUTHNZERVER_AUTHDB="+nd.c.db,
		"AUTHNZERVER_DATADIR="+nd.dataDir,
		"AUTHNZERVER_PORT="+strconv.Itoa(nd.port),
		"AUTHNZERVER_LISTEN=127.0.0.1",
		"AUTHNZERVER_CLUSTER="+strings.Join(nd.c.etcd.Endpoints(), ","),
		"AUTHNZERVER_NODEADDR=127.0.0.1:"+strconv.Itoa(nd.nodePort),
		"AUTHNZERVER_CLUSTERNAME=e2e",
		"AUTHNZERVER_SHARDS=8",
		"AUTHNZERVER_SECRET="+testKey,
		"AUTHNZERVER_PIISALT=cluster-test-salt",
		"AUTHNZERVER_ARGON2=t=1,m=64,p=1",
		"AUTHNZERVER_HASHISOLATION=off",
		"AUTHNZERVER_RATELIMITS=none",
		"AUTHNZERVER_ADMIN_EMAIL=admin@example.org",
		"AUTHNZERVER_ADMIN_PASSWORD=correct-horse-battery-staple-42",
		"AUTHNZERVER_LOGLEVEL=info",
		"GORACE=halt_on_error=0",
	)
	return append(env, nd.c.env...)
}

func (nd *node) running() bool {
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

func (nd *node) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if !nd.running() {
			return errors.New("process exited")
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", nd.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (nd *node) kill() {
	if nd.running() {
		_ = nd.cmd.Process.Signal(syscall.SIGKILL)
		<-nd.done
	}
}

// stop asks the node to stop (SIGTERM) and waits, killing it after 30 s.
func (nd *node) stop() {
	if !nd.running() {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it paused
	_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.done:
	case <-time.After(30 * time.Second):
		nd.kill()
	}
}

func (nd *node) signal(sig syscall.Signal) {
	if err := nd.cmd.Process.Signal(sig); err != nil {
		nd.c.t.Fatalf("%s: %v: %v", nd.name, sig, err)
	}
}

// do sends one request; transport errors come back as a nil response.
func (nd *node) do(reqType string, body map[string]any) (*client.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return nd.client.Request(ctx, reqType, body)
}

// must sends one request that must succeed.
func (nd *node) must(reqType string, body map[string]any) *client.Response {
	nd.c.t.Helper()
	r, err := nd.do(reqType, body)
	if err != nil || r.StatusCode != 200 || !r.Success {
		nd.c.t.Fatalf("%s %s: %+v %v", nd.name, reqType, r, err)
	}
	return r
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
