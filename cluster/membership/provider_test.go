package membership

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authnzerver/authnzerver/cluster/etcdtest"
)

// TestEndpoints: the accepted spellings are normalised to host:port; the
// others are refused with a message naming the entry.
func TestEndpoints(t *testing.T) {
	good := map[string]string{
		"127.0.0.1:2379":         "127.0.0.1:2379",
		"http://127.0.0.1:2379":  "127.0.0.1:2379",
		"http://127.0.0.1:2379/": "127.0.0.1:2379",
		" etcd.local:2379 ":      "etcd.local:2379",
		"http://[::1]:2379":      "[::1]:2379",
	}
	for in, want := range good {
		got, err := normalizeEndpoint(in)
		if err != nil || got != want {
			t.Errorf("normalizeEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                          "empty",
		"  ":                        "empty",
		"ftp://x":                   `scheme "ftp" not supported`,
		"https://127.0.0.1:2379":    `scheme "https" not supported`,
		"127.0.0.1":                 "want host:port",
		"http://127.0.0.1:2379/v3":  "no user, path or query",
		"http://u:p@127.0.0.1:2379": "no user, path or query",
		"127.0.0.1:0":               "bad port",
		":2379":                     "no host",
	}
	for in, want := range bad {
		if _, err := normalizeEndpoint(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("normalizeEndpoint(%q) = %v; want an error with %q", in, err, want)
		}
	}
	for _, eps := range [][]string{nil, {}, {"127.0.0.1:2379", ""}, {"ftp://x"}} {
		if _, err := New(Config{Endpoints: eps}); err == nil {
			t.Errorf("New(%q) accepted", eps)
		} else if !strings.HasPrefix(err.Error(), "membership: ") {
			t.Errorf("New(%q): %v: want a message starting with membership:", eps, err)
		}
	}
	if _, err := New(Config{Endpoints: []string{"127.0.0.1:2379"}, TTL: 1500 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "whole seconds") {
		t.Errorf("TTL 1.5 s: %v", err)
	}
}

// TestUnreachable: New fails within the dial timeout, with the address,
// instead of letting Cluster.StartMember panic later; no goroutine stays.
func TestUnreachable(t *testing.T) {
	start := time.Now()
	_, err := New(Config{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond, Logger: quiet})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "cannot reach etcd at 127.0.0.1:1") {
		t.Fatalf("New: %v", err)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("New took %v with a 500 ms dial timeout", took)
	}
	t.Logf("unreachable etcd reported in %v: %v", took.Round(time.Millisecond), err)
	waitUntil(t, 3*time.Second, "etcd client goroutines gone", func() bool { return len(ourGoroutines()) == 0 })

	// An address that does not answer at all (a listener that never
	// accepts: the connection hangs): the dial timeout bounds the wait.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan net.Conn, 8)
	defer func() {
		ln.Close()
		for len(hung) > 0 {
			(<-hung).Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hung <- c // held open, never answered
		}
	}()
	start = time.Now()
	_, err = New(Config{Endpoints: []string{ln.Addr().String()}, DialTimeout: 300 * time.Millisecond, Logger: quiet})
	took = time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "cannot reach etcd at "+ln.Addr().String()) {
		t.Fatalf("New: %v", err)
	}
	if took > time.Second {
		t.Fatalf("New took %v with a 300 ms dial timeout", took)
	}
	t.Logf("silent etcd reported in %v: %v", took.Round(time.Millisecond), err)
}

// TestJoinLeaveKill: three members see each other (each itself included)
// and serve grains; one that shuts down gracefully leaves the others'
// lists at once; one killed (SIGKILL, no deregistration) leaves within
// TTL plus slack; grains keep answering through the survivor.
func TestJoinLeaveKill(t *testing.T) {
	e := etcdtest.Start(t)
	const ttl = 2 * time.Second
	nodes := make([]*tnode, 3)
	var wg sync.WaitGroup
	for i, name := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() { defer wg.Done(); nodes[i] = startNode(t, e, name, ttl, 0) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	took := waitMembers(t, 5*time.Second, ids(a, b, c), a, b, c)
	t.Logf("3 members see each other %v after the last start", took.Round(time.Millisecond))
	for _, n := range nodes {
		if err := n.health(); err != nil {
			t.Fatalf("%s: health: %v", n.name, err)
		}
	}
	hosts := requestAll(t, 12, a, b, c)
	used := map[string]bool{}
	for _, h := range hosts {
		used[h] = true
	}
	t.Logf("12 grains spread over %d members", len(used))

	// Graceful leave: the provider revokes its lease, the key goes now.
	leaving := time.Now()
	done := c.leave()
	took = waitMembers(t, 3*time.Second, ids(a, b), a, b)
	t.Logf("gracefully leaving member gone from the others' lists after %v", took.Round(time.Millisecond))

	// Kill: the key stays until its lease expires.
	b.kill()
	took = waitMembers(t, ttl+1500*time.Millisecond, ids(a), a)
	t.Logf("killed member gone from the survivor's list after %v (TTL %v)", took.Round(time.Millisecond), ttl)
	if took < ttl/2 {
		t.Errorf("killed member left after %v: before its lease could expire?", took)
	}
	requestAll(t, 12, a)
	select {
	case <-done:
		t.Logf("protoactor's graceful Cluster.Shutdown took %v", time.Since(leaving).Round(time.Millisecond))
	case <-time.After(100 * time.Millisecond):
		t.Logf("protoactor's graceful Cluster.Shutdown still running after %v (its gRPC GracefulStop waits up to 10 s)", time.Since(leaving).Round(time.Millisecond))
	}
	if got := etcdKeys(t, e); got != a.id {
		t.Fatalf("keys in etcd: %v, want only %s", got, a.id)
	}
}

// TestEtcdRestart: etcd goes away for longer than the TTL and comes back
// with its data. Every member's list again holds all live members, itself
// included, nobody was dropped meanwhile (protoactor would block a dropped
// member for good), the health status said etcd was away and then that
// it is back, and grains answer through every member.
func TestEtcdRestart(t *testing.T) {
	e := etcdtest.Start(t)
	const ttl = time.Second
	var a, b *tnode
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = startNode(t, e, "a", ttl, 0) }()
	go func() { defer wg.Done(); b = startNode(t, e, "b", ttl, 0) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	all := ids(a, b)
	waitMembers(t, 5*time.Second, all, a, b)

	e.Stop()
	stopped := time.Now()
	took := waitUntil(t, 3*ttl, "unhealthy while etcd is down", func() bool {
		return a.health() != nil && b.health() != nil
	})
	t.Logf("health reports etcd down %v after it stopped: %v", took.Round(time.Millisecond), a.health())
	time.Sleep(3*ttl - time.Since(stopped)) // beyond the TTL: the clients' leases are gone
	if err := e.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitUntil(t, 5*time.Second, "healthy after the restart", func() bool {
		return a.health() == nil && b.health() == nil
	})
	took = time.Since(restarted)
	waitMembers(t, 5*time.Second, all, a, b)
	t.Logf("healthy and registered again %v after etcd restarted (down %v)", took.Round(time.Millisecond), restarted.Sub(stopped).Round(time.Millisecond))
	requestAll(t, 8, a, b)
	// Beyond the old leases' lifetime: the keys live on the new leases.
	time.Sleep(ttl + 1500*time.Millisecond)
	if got := etcdKeys(t, e); got != all {
		t.Fatalf("keys in etcd %v, want %v", got, all)
	}
	waitMembers(t, time.Second, all, a, b)
	for _, n := range []*tnode{a, b} {
		if l := n.call("left"); l != "" {
			t.Errorf("%s saw %s leave during the outage (it would block them for good)", n.name, l)
		}
	}
	requestAll(t, 8, a, b)
}

// TestRestartSamePort: a member killed and started again at once on the
// same host:port (new actor system ID) replaces its predecessor in the
// others' lists right away (not a TTL later), and the grains it owns
// answer, also after the predecessor's key expired.
func TestRestartSamePort(t *testing.T) {
	e := etcdtest.Start(t)
	const ttl = 2 * time.Second
	var a, b *tnode
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = startNode(t, e, "a", ttl, 0) }()
	go func() { defer wg.Done(); b = startNode(t, e, "b", ttl, 0) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitMembers(t, 5*time.Second, ids(a, b), a, b)
	hosts := requestAll(t, 12, a, b)
	var ownedByB []string
	for id, h := range hosts {
		if h == b.id {
			ownedByB = append(ownedByB, id)
		}
	}
	if len(ownedByB) == 0 {
		t.Fatal("no grain on b")
	}
	oldB := b.id
	b.kill()
	start := time.Now()
	b2 := startNode(t, e, "b2", ttl, b.port)
	took := waitMembers(t, 3*time.Second, ids(a, b2), a, b2)
	t.Logf("restarted member replaced its predecessor in a's list %v after its start returned (%v after the kill)", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if since := time.Since(start); since > ttl+time.Second {
		t.Logf("(slow start: the predecessor's lease may have expired first)")
	}
	check := func(when string) {
		t.Helper()
		for _, id := range ownedByB {
			for _, n := range []*tnode{a, b2} {
				host, err := n.request(id)
				if err != nil {
					t.Fatalf("%s: grain %s through %s: %v", when, id, n.name, err)
				}
				if host != b2.id {
					t.Fatalf("%s: grain %s hosted by %s, want the new b %s", when, id, host, b2.id)
				}
			}
		}
	}
	check("before the old key expired")
	if !a.hasLeft(oldB) {
		t.Errorf("a never saw the old b leave")
	}
	// The predecessor's key expires now: nothing must change.
	took = waitUntil(t, ttl+2*time.Second, "old key expired", func() bool { return etcdKeys(t, e) == ids(a, b2) })
	t.Logf("predecessor's key expired %v later", took.Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	waitMembers(t, time.Second, ids(a, b2), a, b2)
	check("after the old key expired")
	requestAll(t, 12, a, b2)
}

// TestOwnKeyLost: a member whose key is deleted under it (its lease
// revoked, as when it is cut off from etcd longer than the TTL while the
// others are not) keeps itself in its own list, registers again, and
// reports ErrExpelled: the others have blocked its ID for good.
func TestOwnKeyLost(t *testing.T) {
	e := etcdtest.Start(t)
	const ttl = 2 * time.Second
	var a, b *tnode
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = startNode(t, e, "a", ttl, 0) }()
	go func() { defer wg.Done(); b = startNode(t, e, "b", ttl, 0) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitMembers(t, 5*time.Second, ids(a, b), a, b)

	if r := b.call("revoke"); r != "ok <nil>" {
		t.Fatalf("revoke: %s", r)
	}
	waitMembers(t, 2*time.Second, a.id, a)
	took := waitUntil(t, 3*time.Second, "b registered again", func() bool { return etcdKeys(t, e) == ids(a, b) })
	t.Logf("b registered again %v after a dropped it", took.Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	if got := b.members(); got != ids(a, b) {
		t.Fatalf("b's own list %v, want %v (itself included)", got, ids(a, b))
	}
	if err := b.health(); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("b's health: %v, want ErrExpelled", err)
	}
	// protoactor's block list: a does not take b back although its key
	// is there again.
	time.Sleep(500 * time.Millisecond)
	if got := a.members(); got != a.id {
		t.Fatalf("a's list %v", got)
	}
	if a.call("blocked "+b.id) != "true" {
		t.Fatalf("a has not blocked b")
	}
}

// TestNoGoroutineLeft: after Shutdown no goroutine of the provider or of
// its etcd client is left, the key is gone (graceful), and Shutdown is
// idempotent. In process, without starting remote (see helpers_test.go).
func TestNoGoroutineLeft(t *testing.T) {
	e := etcdtest.Start(t)
	if g := ourGoroutines(); len(g) != 0 {
		t.Fatalf("goroutines before: %v", g)
	}
	p, err := New(Config{Endpoints: e.Endpoints(), TTL: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c := inProcess(p, 1)
	sys := c.ActorSystem
	if err := p.StartMember(c); err != nil {
		t.Fatal(err)
	}
	if got := p.Members(); len(got) != 1 || got[0].Id != sys.ID {
		t.Fatalf("members %v, want only itself", got)
	}
	if err := p.GetHealthStatus(); err != nil {
		t.Fatal(err)
	}
	if len(ourGoroutines()) == 0 {
		t.Fatal("no provider goroutine while running?")
	}
	if err := p.Shutdown(true); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 3*time.Second, "no goroutine left", func() bool { return len(ourGoroutines()) == 0 })
	if err := p.GetHealthStatus(); err == nil {
		t.Fatal("healthy after shutdown")
	}
	if got := etcdKeys(t, e); got != "" {
		t.Fatalf("keys left: %s", got)
	}
	if err := p.StartMember(c); err == nil {
		t.Fatal("StartMember after Shutdown accepted")
	}
}

// TestDeadOwner measures what a caller sees when the member hosting a
// grain crashes: requests fail (or wait) until the member's lease expires
// and it leaves the topology, then the grain is activated on a survivor.
func TestDeadOwner(t *testing.T) {
	e := etcdtest.Start(t)
	const ttl = 2 * time.Second
	var a, b *tnode
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = startNode(t, e, "a", ttl, 0) }()
	go func() { defer wg.Done(); b = startNode(t, e, "b", ttl, 0) }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitMembers(t, 5*time.Second, ids(a, b), a, b)
	var onB string
	for id, h := range requestAll(t, 12, a, b) {
		if h == b.id {
			onB = id
			break
		}
	}
	if onB == "" {
		t.Fatal("no grain on b")
	}
	b.kill()
	killed := time.Now()
	var errs []string
	for {
		start := time.Now()
		host, err := a.request(onB)
		if err == nil {
			if host != a.id {
				t.Fatalf("grain %s answered by %s after b died", onB, host)
			}
			t.Logf("grain of the dead member answers (on the survivor) %v after the kill (TTL %v); failed attempts before: %q",
				time.Since(killed).Round(time.Millisecond), ttl, errs)
			break
		}
		errs = append(errs, fmt.Sprintf("%v after %v", err, time.Since(start).Round(time.Millisecond)))
		if time.Since(killed) > ttl+15*time.Second {
			t.Fatalf("grain %s still failing %v after the kill: %q", onB, time.Since(killed), errs)
		}
	}
	if got := a.members(); got != a.id {
		t.Fatalf("a's members %s", got)
	}
}

// TestProtoactorProviderLosesItself shows bug (1) of protoactor's own etcd
// provider, which TestOwnKeyLost shows ours does not have: when its key is
// deleted (lease expired or revoked) it drops itself from its own member
// list, and when its keep-alive loop puts the key again under a new lease
// its watch "skips self", so it never comes back into its own list.
func TestProtoactorProviderLosesItself(t *testing.T) {
	e := etcdtest.Start(t)
	n := startNode(t, e, "theirs", 3*time.Second, 0, "NODE_PROTOACTOR_PROVIDER=1")
	self := clusterName + "@" + n.id // that provider's member ID
	waitUntil(t, 3*time.Second, "their member lists itself", func() bool { return n.members() == self })

	c, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second, Logger: nopZap})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := "/" + DefaultPrefix + "/" + clusterName + "/" + self
	r, err := c.Get(ctx, key)
	if err != nil || len(r.Kvs) != 1 {
		t.Fatalf("their key %s: %v %v", key, r, err)
	}
	if _, err := c.Revoke(ctx, clientv3.LeaseID(r.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	// Its keep-alive loop notices and puts the key again (1 s retry).
	waitUntil(t, 5*time.Second, "their key put again", func() bool {
		r, err := c.Get(ctx, key)
		return err == nil && len(r.Kvs) == 1
	})
	time.Sleep(500 * time.Millisecond)
	if got := n.members(); got != "" {
		t.Fatalf("their member list %q: bug (1) fixed upstream?", got)
	}
	t.Logf("protoactor's provider: key registered again, but its own member list stays empty")
}

// inProcess builds a protoactor cluster around p without starting remote
// (see helpers_test.go): enough for the provider, whose topology goes to
// the member list.
func inProcess(p *Provider, port int, name ...string) *cluster.Cluster {
	cn := clusterName
	if len(name) > 0 {
		cn = name[0]
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	rc := remote.Configure("127.0.0.1", port)
	c := cluster.New(sys, cluster.Configure(cn, p, nil, rc))
	sys.ProcessRegistry.Address = rc.Address()
	c.Remote = remote.NewRemote(sys, rc) // not started: the member list needs its block list
	return c
}

// TestClientMode: a client (StartClient) lists the members without
// registering itself, and follows a member's graceful leave.
func TestClientMode(t *testing.T) {
	e := etcdtest.Start(t)
	mp, err := New(Config{Endpoints: e.Endpoints(), TTL: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mc := inProcess(mp, 1)
	if err := mp.StartMember(mc); err != nil {
		t.Fatal(err)
	}
	cp, err := New(Config{Endpoints: e.Endpoints(), TTL: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.StartClient(inProcess(cp, 2)); err != nil {
		t.Fatal(err)
	}
	defer cp.Shutdown(true)
	if got := cp.Members(); len(got) != 1 || got[0].Id != mc.ActorSystem.ID {
		t.Fatalf("client sees %v, want only the member", got)
	}
	if err := cp.GetHealthStatus(); err != nil {
		t.Fatal(err)
	}
	if err := mp.Shutdown(true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Second, "the client sees the member leave", func() bool { return len(cp.Members()) == 0 })
	if got := etcdKeys(t, e); got != "" {
		t.Fatalf("keys: %s (the client registered?)", got)
	}
}

// TestGapNotMissed shows bug (2) of protoactor's etcd provider and that
// ours has not: a member is cut off etcd (not etcd itself: the others go
// on) for less than the TTL; meanwhile one member leaves, another joins
// and etcd compacts its history, so the watch cannot resume where it
// stopped. protoactor's provider re-watches from "now" and never learns
// of the leave and the join; ours re-reads the full list.
func TestGapNotMissed(t *testing.T) {
	e := etcdtest.Start(t)
	for _, mode := range []string{"ours", "theirs"} {
		t.Run(mode, func(t *testing.T) {
			px := newProxy(t, e.Addr())
			name := "gap" + mode
			env := []string{"NODE_CLUSTER=" + name}
			if mode == "theirs" {
				env = append(env, "NODE_PROTOACTOR_PROVIDER=1")
			}
			n := startNodeAt(t, []string{"http://" + px.Addr()}, "o", 3*time.Second, env...)
			self := n.id
			if mode == "theirs" {
				self = name + "@" + n.id
			}
			// x and y: members written straight into etcd, in a JSON both
			// providers read (protoactor's wants "alive").
			c, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second, Logger: nopZap})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			put := func(id string, port int) {
				v := fmt.Sprintf(`{"id":%q,"name":%q,"host":"127.0.0.1","address":"127.0.0.1","port":%d,"kinds":[],"alive":true}`, id, id, port)
				if _, err := c.Put(ctx, "/"+DefaultPrefix+"/"+name+"/"+id, v); err != nil {
					t.Fatal(err)
				}
			}
			put("x", freePort(t))
			want := strings.Join(sorted(self, "x"), ",")
			waitUntil(t, 3*time.Second, "the observer sees x", func() bool { return n.members() == want })

			px.Cut()
			if _, err := c.Delete(ctx, "/"+DefaultPrefix+"/"+name+"/x"); err != nil {
				t.Fatal(err)
			}
			put("y", freePort(t))
			compact(t, e)
			time.Sleep(500 * time.Millisecond)
			px.Restore()

			want = strings.Join(sorted(self, "y"), ",")
			start := time.Now()
			for n.members() != want && time.Since(start) < 4*time.Second {
				time.Sleep(50 * time.Millisecond)
			}
			got := n.members()
			switch {
			case mode == "ours" && got != want:
				t.Fatalf("after the gap our member lists %q, want %q", got, want)
			case mode == "ours":
				t.Logf("ours: the leave and the join during the gap seen %v after etcd was reachable again", time.Since(start).Round(time.Millisecond))
			case got == want:
				t.Fatalf("protoactor's provider saw the gap's changes: bug (2) fixed upstream?")
			default:
				t.Logf("theirs: 4 s after the gap it still lists %q (x left, y joined meanwhile)", got)
			}
		})
	}
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

// compact compacts etcd's history up to now.
func compact(t *testing.T, e *etcdtest.Server) {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 2 * time.Second, Logger: nopZap})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := c.Get(ctx, "compact")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(ctx, r.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
}
