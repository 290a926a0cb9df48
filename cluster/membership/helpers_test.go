package membership

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authnzerver/authnzerver/cluster/etcdtest"
)

// Each cluster member of the tests runs in a process of its own (this
// test binary, started again in "node mode"): protoactor's Remote.Start
// sets gRPC's global logger, which races (go test -race) with every gRPC
// connection already running in the process, so several members cannot
// share one process under the race detector. One member per process is
// also what production runs, and a SIGKILL is a real crash.

const (
	clusterName = "test"
	kindEcho    = "echo"
	nodeEnv     = "MEMBERSHIP_TEST_NODE" // set: this process is a member
)

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		nodeMain()
		return
	}
	os.Exit(m.Run())
}

var (
	quiet  = slog.New(slog.NewTextHandler(io.Discard, nil))
	nopZap = zap.NewNop()
)

// nodeMain is a member: the echo grain kind, disthash placement, remote on
// the given loopback port, our provider. It answers commands, one a line,
// on stdin and exits at EOF.
func nodeMain() {
	fail := func(err error) { fmt.Println("fail", strings.ReplaceAll(err.Error(), "\n", " ")); os.Exit(1) }
	ttl, _ := time.ParseDuration(os.Getenv("NODE_TTL"))
	port, _ := strconv.Atoi(os.Getenv("NODE_PORT"))
	logger := quiet
	if os.Getenv("NODE_VERBOSE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", os.Getenv("NODE_NAME"))
	}
	p, err := New(Config{Endpoints: strings.Split(os.Getenv("NODE_ETCD"), ","), TTL: ttl, DialTimeout: 2 * time.Second, Logger: logger})
	if err != nil {
		fail(err)
	}
	var provider cluster.ClusterProvider = p
	if os.Getenv("NODE_PROTOACTOR_PROVIDER") != "" {
		// protoactor's own etcd provider (its TTL is fixed at 3 s), for
		// the comparison in TestProtoactorProviderLosesItself.
		provider, err = etcd.NewWithConfig("/"+DefaultPrefix, clientv3.Config{Endpoints: strings.Split(os.Getenv("NODE_ETCD"), ","), DialTimeout: 2 * time.Second, Logger: nopZap})
		if err != nil {
			fail(err)
		}
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	self := sys.ID
	echo := cluster.NewKind(kindEcho, actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			ctx.Respond(wrapperspb.String(self))
		}
	}))
	name := clusterName
	if n := os.Getenv("NODE_CLUSTER"); n != "" {
		name = n
	}
	c := cluster.New(sys, cluster.Configure(name, provider, disthash.New(), remote.Configure("127.0.0.1", port),
		cluster.WithKinds(echo), cluster.WithRequestTimeout(2*time.Second)))
	var mu sync.Mutex
	var members, left []string
	sys.EventStream.Subscribe(func(ev any) {
		if tp, ok := ev.(*cluster.ClusterTopology); ok {
			mu.Lock()
			members = members[:0]
			for _, m := range tp.Members {
				members = append(members, m.Id)
			}
			sort.Strings(members)
			for _, m := range tp.Left {
				left = append(left, m.Id)
			}
			mu.Unlock()
		}
	})
	c.StartMember() // includes a 1 s sleep of protoactor's
	fmt.Println("ready", self)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		var out string
		switch cmd {
		case "members", "left":
			mu.Lock()
			if cmd == "members" {
				out = strings.Join(members, ",")
			} else {
				out = strings.Join(left, ",")
			}
			mu.Unlock()
		case "health":
			out = "ok"
			if err := p.GetHealthStatus(); err != nil {
				out = "err " + err.Error()
			}
		case "blocked":
			out = strconv.FormatBool(c.GetBlockedMembers().Contains(arg))
		case "request":
			res, err := c.Request(arg, kindEcho, wrapperspb.String("ping"), cluster.WithTimeout(2*time.Second), cluster.WithRetryCount(5))
			if v, ok := res.(*wrapperspb.StringValue); ok && err == nil {
				out = "ok " + v.Value
			} else {
				out = fmt.Sprintf("err %v %T", err, res)
			}
		case "revoke":
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := p.client.Revoke(ctx, p.currentLease())
			cancel()
			out = fmt.Sprint("ok ", err)
		case "leave":
			c.Shutdown(true)
			fmt.Println("ok")
			os.Exit(0)
		}
		fmt.Println(strings.ReplaceAll(out, "\n", " "))
	}
	os.Exit(0)
}

// tnode is the test's handle on a member process.
type tnode struct {
	name string
	port int
	id   string
	cmd  *exec.Cmd
	log  *os.File // the member's stderr

	mu     sync.Mutex
	in     io.WriteCloser
	out    *bufio.Reader
	exited chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNode starts a member process on port (0: a free one); it is killed
// at the end of the test, and a data race it reported fails the test.
func startNode(t *testing.T, e *etcdtest.Server, name string, ttl time.Duration, port int, env ...string) *tnode {
	t.Helper()
	return startNodeOn(t, e.Endpoints(), name, ttl, port, env...)
}

// startNodeAt starts a member on a free port with the given etcd
// endpoints.
func startNodeAt(t *testing.T, endpoints []string, name string, ttl time.Duration, env ...string) *tnode {
	t.Helper()
	return startNodeOn(t, endpoints, name, ttl, 0, env...)
}

func startNodeOn(t *testing.T, endpoints []string, name string, ttl time.Duration, port int, env ...string) *tnode {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	logf, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	n := &tnode{name: name, port: port, log: logf, exited: make(chan struct{})}
	n.cmd = exec.Command(os.Args[0], "-test.run=^$")
	n.cmd.Env = append(os.Environ(), nodeEnv+"=1", "NODE_NAME="+name, "NODE_PORT="+strconv.Itoa(port),
		"NODE_TTL="+ttl.String(), "NODE_ETCD="+strings.Join(endpoints, ","))
	n.cmd.Env = append(n.cmd.Env, env...)
	if testing.Verbose() {
		n.cmd.Env = append(n.cmd.Env, "NODE_VERBOSE=1")
	}
	n.cmd.Stderr = logf
	// A member is this test binary, built with -race when the tests are.
	// protoactor-go has data races of its own (remote.BlockList.IsBlocked
	// reads without its lock, disthash.Manager swaps its rendezvous
	// unsynchronised, gossip state is marshalled while written): the
	// member goes on after a report, and classifyRaces fails the test only
	// for a race whose access is in our code.
	n.cmd.Env = append(n.cmd.Env, "GORACE=halt_on_error=0")
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if n.in, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.out = bufio.NewReader(stdout)
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.kill()
		b, _ := os.ReadFile(logf.Name())
		if testing.Verbose() {
			t.Logf("member %s's log:\n%s", name, b)
		}
		ours, theirs := classifyRaces(string(b))
		if theirs > 0 {
			t.Logf("member %s: %d data race reports inside protoactor-go or gRPC (not ours; see the package doc)", name, theirs)
		}
		for _, r := range ours {
			t.Errorf("member %s: data race in our code:\n%s", name, r)
		}
	})
	ready := make(chan string, 1)
	go func() { line, _ := n.out.ReadString('\n'); ready <- strings.TrimSpace(line) }()
	select {
	case line := <-ready:
		id, ok := strings.CutPrefix(line, "ready ")
		if !ok {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("member %s did not start: %q\n%s", name, line, b)
		}
		n.id = id
	case <-time.After(20 * time.Second):
		t.Fatalf("member %s did not start within 20 s", name)
	}
	return n
}

// call sends a command and returns the answer line ("" if the member is
// gone).
func (n *tnode) call(cmd string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := fmt.Fprintln(n.in, cmd); err != nil {
		return ""
	}
	line, _ := n.out.ReadString('\n')
	return strings.TrimSpace(line)
}

// kill crashes the member (SIGKILL): no deregistration, its key expires
// with its lease.
func (n *tnode) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// leave shuts the member down gracefully, as protoactor does (it waits
// 2 s for hand-overs after deregistering); it returns at once and closes
// the channel when the process has exited.
func (n *tnode) leave() <-chan struct{} {
	go n.call("leave")
	return n.exited
}

func (n *tnode) members() string { return n.call("members") }

func (n *tnode) hasLeft(id string) bool { return strings.Contains(n.call("left"), id) }

func (n *tnode) health() error {
	h := n.call("health")
	if h == "ok" {
		return nil
	}
	return fmt.Errorf("%s", strings.TrimPrefix(h, "err "))
}

// request asks the echo grain id through n and returns the ID of the
// member that hosts it.
func (n *tnode) request(id string) (string, error) {
	r := n.call("request " + id)
	if host, ok := strings.CutPrefix(r, "ok "); ok {
		return host, nil
	}
	return "", fmt.Errorf("%s", r)
}

func ids(nodes ...*tnode) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.id)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// waitMembers waits until every observer's topology (protoactor's member
// list, not only our provider's view) is exactly want (sorted IDs, comma
// separated), and returns how long it took.
func waitMembers(t *testing.T, limit time.Duration, want string, observers ...*tnode) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok := true
		for _, o := range observers {
			if got := o.members(); got != want {
				ok = false
				if time.Since(start) > limit {
					t.Fatalf("after %v, %s's members are %q, want %q", limit, o.name, got, want)
				}
			}
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("after %v: not %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// requestAll asks grains g0…g(count-1) through each node and checks that
// all answer and that each grain has one host whoever asks; it returns
// identity → host.
func requestAll(t *testing.T, count int, nodes ...*tnode) map[string]string {
	t.Helper()
	hosts := map[string]string{}
	for _, n := range nodes {
		for i := 0; i < count; i++ {
			id := fmt.Sprintf("g%d", i)
			host, err := n.request(id)
			if err != nil {
				t.Fatalf("grain %s through %s: %v", id, n.name, err)
			}
			if h, ok := hosts[id]; ok && h != host {
				t.Fatalf("grain %s is hosted by %s when asked through %s, by %s before", id, host, n.name, h)
			}
			hosts[id] = host
		}
	}
	return hosts
}

// etcdKeys lists the member IDs registered in etcd.
func etcdKeys(t *testing.T, e *etcdtest.Server) string {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second, Logger: nopZap})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	prefix := "/" + DefaultPrefix + "/" + clusterName + "/"
	r, err := c.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range r.Kvs {
		keys = append(keys, strings.TrimPrefix(string(kv.Key), prefix))
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// ourGoroutines lists the goroutines running code of this package's
// provider or of the etcd client.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "cluster/membership.(*Provider)") || strings.Contains(g, "go.etcd.io/etcd/client") {
			out = append(out, g)
		}
	}
	return out
}

// classifyRaces splits the race detector's reports in a member's log into
// those where one of the two racing accesses is made by our (non-test)
// code, returned in full, and the others, counted.
func classifyRaces(log string) (ours []string, theirs int) {
	const sep = "WARNING: DATA RACE"
	parts := strings.Split(log, sep)
	for _, r := range parts[1:] {
		lines := strings.Split(r, "\n")
		mine := false
		for i, l := range lines {
			l = strings.TrimSpace(l)
			access := strings.HasPrefix(l, "Read at") || strings.HasPrefix(l, "Write at") ||
				strings.HasPrefix(l, "Previous read at") || strings.HasPrefix(l, "Previous write at")
			if !access || i+1 >= len(lines) {
				continue
			}
			// The accessing frame: the first function line, whose file
			// line follows it.
			for j := i + 1; j+1 < len(lines) && j < i+5; j++ {
				fn := strings.TrimSpace(lines[j])
				if strings.HasPrefix(fn, "runtime.race") || strings.HasPrefix(fn, "<autogenerated>") {
					continue
				}
				file := strings.TrimSpace(lines[j+1])
				if strings.Contains(fn, "authnzerver/cluster/membership.") && !strings.Contains(file, "_test.go") {
					mine = true
				}
				break
			}
		}
		if mine {
			ours = append(ours, sep+r)
		} else {
			theirs++
		}
	}
	return ours, theirs
}

// proxy forwards TCP connections to etcd and can cut them (all current
// connections closed, new ones refused) to cut one member off etcd while
// the others still reach it.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if cut {
				c.Close()
				continue
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); d.Close() }()
			go func() { _, _ = io.Copy(c, d); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
