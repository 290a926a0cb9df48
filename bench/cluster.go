package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authnzerver/authnzerver/cluster/etcdtest"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// The cluster scenario ("The cluster scenario" in bench/README.md): N
// node processes of the server binary on a throwaway etcd and PostgreSQL,
// and one single-node server process on PostgreSQL beside them. It
// measures session-exists sent to node A for sessions whose two shards
// (the session's, then its user's) are placed on A or elsewhere, so the
// remote hop is priced in req/s, latency and CPU seconds of all node
// processes per request; then the same uniform pool of sessions spread
// over the N nodes together vs sent to the one single-node server.

func init() { register("cluster", setupCluster) }

// clusterShardsDefault is the shard count of the cluster scenario without
// -shards: the server's default in cluster mode.
const clusterShardsDefault = 32

// The cases of a session check entering at node A, by where the session's
// shard (S) and its user's shard (U) are placed, with the messages between
// nodes each one takes (actors/cluster.go: a remote grain answers the
// caller directly, also after forwarding to the user's shard).
var clusterCases = []struct {
	name string
	msgs int // messages between nodes per check
	what string
}{
	{"local", 0, "S and U on A: no remote hop"},
	{"user-remote", 2, "S on A, U on B: A's grain asks B (one round trip)"},
	{"session-remote", 2, "S on B, U on A: A→B, B's grain forwards to U on A, which answers A's future"},
	{"remote-same", 2, "S and U on B: A→B, forwarded within B, B→A"},
	{"remote-split", 3, "S on B, U on C: A→B→C→A"},
}

// RendezvousOwner is the member that protoactor-go's disthash places a
// grain of identity on (cluster.Rendezvous.GetByClusterIdentity): the
// member with the highest FNV-1a 32 of the identity's bytes followed by
// the member's address ("host:port"); the first of equal scores; -1 when
// there are no members. members must be in the order of the member set;
// a tie between two addresses is reported by ok false (it depends on that
// order).
func RendezvousOwner(identity string, members []string) (owner int, ok bool) {
	owner, ok = -1, true
	var best uint32
	h := fnv.New32a()
	for i, m := range members {
		h.Reset()
		h.Write([]byte(identity))
		h.Write([]byte(m))
		score := h.Sum32()
		switch {
		case score > best:
			best, owner, ok = score, i, true
		case score == best && owner >= 0:
			ok = false
		}
	}
	if len(members) == 1 {
		return 0, true
	}
	return owner, ok
}

// ShardOwners places the grains of shards 0..shards-1 (kind "shard",
// identity the decimal shard number) on members: the index of each
// shard's member.
func ShardOwners(shards int, members []string) ([]int, error) {
	out := make([]int, shards)
	for i := range out {
		o, ok := RendezvousOwner(strconv.Itoa(i), members)
		if !ok || o < 0 {
			return nil, fmt.Errorf("bench: shard %d: no single rendezvous owner among %v", i, members)
		}
		out[i] = o
	}
	return out, nil
}

// procCPU is the CPU time (user + system, all threads) of process pid so
// far, from /proc/<pid>/stat (clock ticks of 1/100 s).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+2:])) // from field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// serverProc is one server process started by the cluster scenario.
type serverProc struct {
	name     string
	port     int
	nodePort int // cluster remote; 0 for the single-node server
	cmd      *exec.Cmd
	log      *lockedBuffer
	done     chan struct{}
	target   *Target
	call     *caller
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeLoopbackPort() (int, error) {
	ln, err := listenLoopback()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serverBinary is Config.ServerBin, or the server built now with go build
// (from the module this runs in).
func (s *Suite) serverBinary() (string, error) {
	if s.cfg.ServerBin != "" {
		return s.cfg.ServerBin, nil
	}
	dir, err := os.MkdirTemp(s.cfg.TempDir, "authnzbench-bin-")
	if err != nil {
		return "", err
	}
	s.closers = append(s.closers, func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "authnzerver")
	fmt.Fprintf(s.cfg.Log, "cluster: go build the server\n")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/authnzerver/authnzerver/cmd/authnzerver").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bench: building the server (run from the module, or give -server-bin): %v\n%s", err, out)
	}
	return bin, nil
}

// startProc starts the server binary with the suite's server settings and
// env; it is stopped with the suite.
func (s *Suite) startProc(bin, name string, env map[string]string) (*serverProc, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.cfg.TempDir, "authnzbench-node-*")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { os.RemoveAll(dir) })
	e := serverEnv()
	maps.Copy(e, map[string]string{
		"AUTHNZERVER_DATADIR":           dir,
		"AUTHNZERVER_PORT":              strconv.Itoa(port),
		"AUTHNZERVER_MAXAPIKEYSPERUSER": "-1",
		// Passwords are hashed only in setup (user-new): no figure here
		// includes a hash.
		"AUTHNZERVER_ARGON2":        "t=1,m=64,p=1",
		"AUTHNZERVER_HASHISOLATION": "off",
		"AUTHNZERVER_LOGLEVEL":      "info",
	})
	for k, v := range env {
		e[k] = v
	}
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHNZERVER_") {
			environ = append(environ, kv)
		}
	}
	for _, k := range sortedKeys(e) {
		environ = append(environ, k+"="+e[k])
	}
	p := &serverProc{name: name, port: port, log: &lockedBuffer{}, done: make(chan struct{})}
	if np := env["AUTHNZERVER_NODEADDR"]; np != "" {
		_, ps, _ := strings.Cut(np, ":")
		p.nodePort, _ = strconv.Atoi(ps)
	}
	cmd := exec.Command(bin)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the suite
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.closers = append(s.closers, p.stop)
	if p.target, err = NewTarget(name, fmt.Sprintf("http://127.0.0.1:%d/", port), benchKey); err != nil {
		return nil, err
	}
	p.call = newCaller(p.target, 16)
	s.closers = append(s.closers, p.call.close)
	return p, nil
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to stop (SIGTERM) and kills it after 20 s.
func (p *serverProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *serverProc) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("bench: %s exited during start:\n%s", p.name, tail(p.log.String(), 3000))
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", p.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s not healthy after %v:\n%s", p.name, limit, tail(p.log.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// takenRE matches the log line of a grain that took its shard
// (actors/cluster.go, text log handler).
var takenRE = regexp.MustCompile(`msg="cluster: took a shard" shard=(\d+)`)

// takes counts the "took a shard" lines of each shard in the node's log.
func (p *serverProc) takes() map[int]int {
	out := map[int]int{}
	for _, m := range takenRE.FindAllStringSubmatch(p.log.String(), -1) {
		i, _ := strconv.Atoi(m[1])
		out[i]++
	}
	return out
}

// cpuOf is the summed CPU time of procs.
func cpuOf(procs []*serverProc) (time.Duration, error) {
	var sum time.Duration
	for _, p := range procs {
		c, err := procCPU(p.pid())
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// clusterSess is a live session and its user.
type clusterSess struct {
	token string
	uid   int64
}

// cpuRun is one measured run's CPU time per request, in total and by
// process, and its req/s (to find the driver of a median in derive).
type cpuRun struct {
	rps     float64
	perReq  float64   // µs of CPU of all the figure's processes per request
	perProc []float64 // µs per request, by process
}

// clusterBench is the cluster scenario's state.
type clusterBench struct {
	s        *Suite
	nodes    []*serverProc
	single   *serverProc
	owners   []int // node of each shard
	shards   int
	mu       sync.Mutex
	cpu      map[string]map[string][]cpuRun // driver → figure → runs
	takes    []map[int]int                  // each node's takes after setup
	aggMix   map[string]float64             // share of each case in the aggregate pool, over all entry nodes
	idleRate float64                        // CPU seconds per second of the idle nodes together
}

func (cb *clusterBench) shardOf(r shard.Route) int { return int(uint64(r) % uint64(cb.shards)) }

// caseOf classifies a session check entering at node entry.
func (cb *clusterBench) caseOf(sess clusterSess, entry int) string {
	so := cb.owners[cb.shardOf(shard.SessionRoute(shard.DigestSession(sess.token)))]
	uo := cb.owners[cb.shardOf(shard.UserRoute(shard.UserID(sess.uid)))]
	switch {
	case so == entry && uo == entry:
		return "local"
	case so == entry:
		return "user-remote"
	case uo == entry:
		return "session-remote"
	case so == uo:
		return "remote-same"
	}
	return "remote-split"
}

func setupCluster(ctx context.Context, s *Suite) (*workload, error) {
	if s.cfg.URL != "" {
		return nil, skipf("the cluster scenario starts its own server processes; it does not run against -url")
	}
	n := s.cfg.ClusterNodes
	if n <= 0 {
		n = 3
	}
	if n < 2 {
		return nil, fmt.Errorf("bench: -cluster %d: a cluster needs at least 2 nodes", n)
	}
	shards := s.cfg.Shards
	if shards <= 0 {
		shards = clusterShardsDefault
	}
	bin, err := s.serverBinary()
	if err != nil {
		return nil, err
	}
	etcd, err := etcdtest.New()
	if err != nil {
		return nil, fmt.Errorf("bench: etcd: %w", err)
	}
	s.closers = append(s.closers, etcd.Close)
	pgEnv, err := s.postgresEnv()
	if err != nil {
		return nil, err
	}
	cb := &clusterBench{s: s, shards: shards, cpu: map[string]map[string][]cpuRun{}}

	// Node ports first: the placement is computed from the member
	// addresses before any node starts, as disthash will compute it.
	members := make([]string, n)
	for i := range members {
		p, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		members[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	if cb.owners, err = ShardOwners(shards, members); err != nil {
		return nil, err
	}
	for i := range n {
		if !slices.Contains(cb.owners, i) {
			return nil, fmt.Errorf("bench: node %c owns none of %d shards with these ports; run again", 'A'+i, shards)
		}
	}
	fmt.Fprintf(s.cfg.Log, "cluster: %d nodes, %d shards, etcd %s, shard owners %v\n", n, shards, etcd.Addr(), cb.owners)
	for i := range n {
		env := map[string]string{
			"AUTHNZERVER_AUTHDB":      pgEnv["AUTHNZERVER_AUTHDB"],
			"AUTHNZERVER_CLUSTER":     strings.Join(etcd.Endpoints(), ","),
			"AUTHNZERVER_NODEADDR":    members[i],
			"AUTHNZERVER_CLUSTERNAME": "authnzbench",
			"AUTHNZERVER_SHARDS":      strconv.Itoa(shards),
		}
		p, err := s.startProc(bin, fmt.Sprintf("node-%c", 'A'+i), env)
		if err != nil {
			return nil, err
		}
		cb.nodes = append(cb.nodes, p)
	}
	singleEnv, err := s.postgresEnv() // a database of its own
	if err != nil {
		return nil, err
	}
	if cb.single, err = s.startProc(bin, "single-node", map[string]string{
		"AUTHNZERVER_AUTHDB": singleEnv["AUTHNZERVER_AUTHDB"], "AUTHNZERVER_SHARDS": strconv.Itoa(shards),
	}); err != nil {
		return nil, err
	}
	for _, p := range append(slices.Clone(cb.nodes), cb.single) {
		if err := p.waitHealthy(90 * time.Second); err != nil {
			return nil, err
		}
	}
	// Nodes started together see each other within a few membership
	// refreshes; a grain activated before that could be placed on a node
	// that later hands it over, which the check below would catch.
	time.Sleep(3 * time.Second)

	// Users, made through node A, until every node owns some users' shards.
	a := cb.nodes[0]
	var users []int64
	tok, _ := wire.RandomToken(6)
	tag := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(tok))
	usersOn := func(node int) int {
		c := 0
		for _, u := range users {
			if cb.owners[cb.shardOf(shard.UserRoute(shard.UserID(u)))] == node {
				c++
			}
		}
		return c
	}
	enough := func() bool {
		for i := range n {
			if usersOn(i) < 2 {
				return false
			}
		}
		return len(users) >= 4*n
	}
	for !enough() {
		if len(users) >= 200 {
			return nil, errors.New("bench: cluster: 200 users and still a node owns no user's shard")
		}
		ids, err := makeUsers(a.call, fmt.Sprintf("cl%s-%d", tag, len(users)), 6)
		if err != nil {
			return nil, err
		}
		users = append(users, ids...)
	}
	fmt.Fprintf(s.cfg.Log, "cluster: %d users\n", len(users))

	// Sessions of each case entering at node A, made through node A.
	pool := s.cfg.Pool
	pools := map[string][]string{}
	var cases []string
	for _, c := range clusterCases {
		if c.name == "remote-split" && n < 3 {
			continue
		}
		cases = append(cases, c.name)
	}
	short := func() []string {
		var out []string
		for _, c := range cases {
			if len(pools[c]) < pool {
				out = append(out, c)
			}
		}
		return out
	}
	usersFor := func(c string) []int64 {
		var out []int64
		for _, u := range users {
			onA := cb.owners[cb.shardOf(shard.UserRoute(shard.UserID(u)))] == 0
			if onA == (c == "local" || c == "session-remote") {
				out = append(out, u)
			}
		}
		return out
	}
	made := 0
	for round := 0; len(short()) > 0; round++ {
		if made > 40*pool*len(cases) {
			return nil, fmt.Errorf("bench: cluster: %d sessions made and cases %v still short", made, short())
		}
		for _, c := range short() {
			us := usersFor(c)
			uid := us[round%len(us)]
			toks, err := makeSessions(a.call, 256, uid)
			if err != nil {
				return nil, err
			}
			made += len(toks)
			for _, t := range toks {
				k := cb.caseOf(clusterSess{t, uid}, 0)
				if len(pools[k]) < pool {
					pools[k] = append(pools[k], t)
				}
			}
		}
	}
	// The aggregate pool: sessions of every user in turn, so the session
	// shards are uniform and the user shards those of the users.
	agg, err := makeSessionsOf(a.call, pool, users)
	if err != nil {
		return nil, err
	}
	cb.aggMix = map[string]float64{}
	for e := range n {
		for _, sess := range agg {
			cb.aggMix[cb.caseOf(sess, e)] += 1 / float64(n*len(agg))
		}
	}
	// The single-node server's pool, made the same way.
	singleUsers, err := makeUsers(cb.single.call, "single"+tag, len(users))
	if err != nil {
		return nil, err
	}
	singlePool, err := makeSessionsOf(cb.single.call, pool, singleUsers)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(s.cfg.Log, "cluster: %d sessions made through node A for %d per case\n", made, pool)

	// The placement computed above must be where the grains run: every
	// shard taken exactly once, by its computed owner.
	verified, err := cb.verifyPlacement()
	if err != nil {
		return nil, err
	}
	// Background CPU of the idle nodes (lease renewals, membership).
	before, err := cpuOf(cb.nodes)
	if err != nil {
		return nil, err
	}
	idleStart := time.Now()
	time.Sleep(2 * time.Second)
	after, err := cpuOf(cb.nodes)
	if err != nil {
		return nil, err
	}
	cb.idleRate = (after - before).Seconds() / time.Since(idleStart).Seconds()

	w := &workload{}
	w.notes = append(w.notes,
		fmt.Sprintf("%d node processes (%s) on one etcd and one PostgreSQL, %d shards; a single-node server process on its own PostgreSQL database, same binary, same shards", n, strings.Join(members, ", "), shards),
		fmt.Sprintf("placement: computed by rendezvous (FNV-1a of shard number + member address) from the member addresses, checked against the nodes' logs: %s", verified),
		fmt.Sprintf("figures A <case>: session-exists sent to node A, %d sessions per case; CPU per request is the utime+stime of all %d node processes over the run (from /proc/<pid>/stat) / answers", pool, n),
		fmt.Sprintf("%d nodes / 1 node: the same uniform pool (%d sessions over %d users) driven by %d generators at once, %d connections each, one per node / all on the single-node server; p50/p99 of these rows are the worst of the generators'", n, pool, len(users), n, max(1, s.cfg.Conns/n)),
		fmt.Sprintf("idle CPU of the %d nodes together: %.1f ms/s (not subtracted)", n, 1000*cb.idleRate),
	)
	var mix []string
	for _, c := range cases {
		mix = append(mix, fmt.Sprintf("%s %.1f%%", c, 100*cb.aggMix[c]))
	}
	w.notes = append(w.notes, "cases of the aggregate pool (all entry nodes): "+strings.Join(mix, ", "))
	for _, c := range clusterCases {
		if slices.Contains(cases, c.name) {
			w.notes = append(w.notes, fmt.Sprintf("case %s: %s; %d messages between nodes", c.name, c.what, c.msgs))
		}
	}

	for _, c := range cases {
		b, err := s.prepare(a.target, len(pools[c]), sessionExistsCall(pools[c]))
		if err != nil {
			return nil, err
		}
		w.measures = append(w.measures, cb.measure("A "+c, cb.nodes, []*serverProc{a}, b))
	}
	toks := make([]string, len(agg))
	for i, x := range agg {
		toks[i] = x.token
	}
	aggBodies, err := s.prepare(a.target, len(toks), sessionExistsCall(toks))
	if err != nil {
		return nil, err
	}
	singleToks := make([]string, len(singlePool))
	for i, x := range singlePool {
		singleToks[i] = x.token
	}
	singleBodies, err := s.prepare(cb.single.target, len(singleToks), sessionExistsCall(singleToks))
	if err != nil {
		return nil, err
	}
	w.measures = append(w.measures,
		cb.measure("1 node (1 generator)", []*serverProc{cb.single}, []*serverProc{cb.single}, singleBodies),
		cb.measure(fmt.Sprintf("%d nodes", n), cb.nodes, cb.nodes, aggBodies),
		cb.measure("1 node", []*serverProc{cb.single}, slices.Repeat([]*serverProc{cb.single}, n), singleBodies),
	)
	w.derive = cb.derive
	return w, nil
}

// makeUsers signs up k active users (role authenticated) through c.
func makeUsers(c *caller, tag string, k int) ([]int64, error) {
	tok, _ := wire.RandomToken(6)
	made, err := c.many(k, 2, func(i int) Call {
		return Call{Type: "user-new", ClientIP: clientIP(i), Body: map[string]any{
			"full_name": "Bench User", "email": fmt.Sprintf("bench-%s-%d@example.com", tag, i), "password": "Qv7#tLm2!pXz9wRb-" + tok}}
	})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, k)
	for i, a := range made {
		id, ok := a.Response["user_id"].(float64)
		if !ok {
			return nil, errors.New("bench: user-new answered no user_id")
		}
		ids[i] = int64(id)
	}
	if _, err := c.many(k, 4, func(i int) Call {
		return Call{Type: "internal-user-edit", Body: map[string]any{
			"target_userid": ids[i], "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"}}}
	}); err != nil {
		return nil, err
	}
	return ids, nil
}

// makeSessionsOf makes k sessions through c, of users in turn.
func makeSessionsOf(c *caller, k int, users []int64) ([]clusterSess, error) {
	ans, err := c.many(k, 16, func(i int) Call { return sessionNew(i, users[i%len(users)]) })
	if err != nil {
		return nil, err
	}
	out := make([]clusterSess, k)
	for i, a := range ans {
		if out[i] = (clusterSess{a.str("session_token"), users[i%len(users)]}); out[i].token == "" {
			return nil, errors.New("bench: session-new answered no session_token")
		}
	}
	return out, nil
}

// verifyPlacement checks the nodes' logs: every shard that was activated
// was taken exactly once, by the node the computation names.
func (cb *clusterBench) verifyPlacement() (string, error) {
	cb.takes = nil
	seen := map[int][]int{}
	for i, p := range cb.nodes {
		t := p.takes()
		cb.takes = append(cb.takes, t)
		for sh, k := range t {
			for range k {
				seen[sh] = append(seen[sh], i)
			}
		}
	}
	var bad []string
	for sh := range cb.shards {
		got := seen[sh]
		switch {
		case len(got) == 0:
			bad = append(bad, fmt.Sprintf("shard %d never taken", sh))
		case len(got) > 1:
			bad = append(bad, fmt.Sprintf("shard %d taken %d times (nodes %v)", sh, len(got), got))
		case got[0] != cb.owners[sh]:
			bad = append(bad, fmt.Sprintf("shard %d taken by node %c, computed owner %c", sh, 'A'+got[0], 'A'+cb.owners[sh]))
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("bench: cluster: the grains are not where the rendezvous computation puts them: %s", strings.Join(bad, "; "))
	}
	per := make([]int, len(cb.nodes))
	for _, o := range cb.owners {
		per[o]++
	}
	return fmt.Sprintf("all %d shards taken once each, by the computed owner (shards per node %v)", cb.shards, per), nil
}

// measure is figure name: bodies sent to each of targets at once (one
// generator each, the suite's connections split between them), with the
// CPU time of procs per answer.
func (cb *clusterBench) measure(name string, procs, targets []*serverProc, b *Bodies) measure {
	s := cb.s
	return measure{name: name, run: func(ctx context.Context, label string) (map[string]Stats, error) {
		d := driverOf(ctx)
		if d == DriverWrk {
			// The check passes run before the CPU is read.
			for _, t := range targets {
				if err := s.wrkCheck(ctx, t.target, b, label); err != nil {
					return nil, err
				}
			}
		}
		before := make([]time.Duration, len(procs))
		for i, p := range procs {
			c, err := procCPU(p.pid())
			if err != nil {
				return nil, err
			}
			before[i] = c
		}
		var st Stats
		var err error
		if len(targets) == 1 {
			st, err = s.runOn(ctx, targets[0].target, b, Expect{}, label, 0)
		} else {
			st, err = s.runParallel(ctx, targets, b, label)
		}
		if err != nil {
			return map[string]Stats{name: st}, err
		}
		run := cpuRun{rps: st.RPS}
		for i, p := range procs {
			c, err := procCPU(p.pid())
			if err != nil {
				return nil, err
			}
			us := float64((c - before[i]).Microseconds()) / float64(max(st.Requests, 1))
			run.perProc = append(run.perProc, us)
			run.perReq += us
		}
		if _, warm := ctx.Value(warmupKey{}).(time.Duration); !warm {
			cb.mu.Lock()
			if cb.cpu[d] == nil {
				cb.cpu[d] = map[string][]cpuRun{}
			}
			cb.cpu[d][name] = append(cb.cpu[d][name], run)
			cb.mu.Unlock()
		}
		return map[string]Stats{name: st}, nil
	}}
}

// wrkCheck runs wrk's check pass of bodies on t unless it ran already
// (Suite.runWrk runs it on a first run; here it must not fall inside a
// window whose CPU is read, nor run from several goroutines).
func (s *Suite) wrkCheck(ctx context.Context, t *Target, b *Bodies, label string) error {
	key := wrkKey{t.URL, b}
	if _, ok := s.wrkChecked[key]; ok {
		return nil
	}
	chk, err := s.wrk.Drive(ctx, t, b, Expect{}, WrkOptions{Label: label + " check", Duration: wrkCheckWindow, Check: true, SampleEvery: s.cfg.Sample})
	if err != nil {
		return err
	}
	if chk.Errors > 0 || chk.Sampled == 0 || chk.BadAns > 0 {
		return fmt.Errorf("bench: run %s: wrk check pass on %s: %d answers, %d not 200 or lost, %d/%d sampled answers bad", label, t.Name, chk.Requests, chk.Errors, chk.BadAns, chk.Sampled)
	}
	s.wrkChecked[key] = chk
	return nil
}

// runParallel drives bodies at every target at once, one generator each
// with the suite's connections split between them, and sums the figures.
func (s *Suite) runParallel(ctx context.Context, targets []*serverProc, b *Bodies, label string) (Stats, error) {
	conns := max(1, s.cfg.Conns/len(targets))
	sts := make([]Stats, len(targets))
	errs := make([]error, len(targets))
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, "%-36s %d generators x %d conns, %v ...\n", label, len(targets), conns, s.window(ctx))
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			l := fmt.Sprintf("%s #%d", label, i+1)
			if driverOf(ctx) == DriverWrk {
				st, err := s.wrk.Drive(ctx, t.target, b, Expect{}, WrkOptions{Label: l, Conns: conns, Duration: s.window(ctx)})
				if err == nil && st.Errors > 0 {
					err = fmt.Errorf("bench: run %s: wrk counted %d of %d answers not 200 or lost", l, st.Errors, st.Requests)
				}
				chk := s.wrkChecked[wrkKey{t.target.URL, b}]
				st.Sampled, st.BadAns = chk.Sampled, chk.BadAns
				sts[i], errs[i] = st, err
				return
			}
			sts[i], errs[i] = Drive(ctx, t.target, b, Expect{}, RunOptions{Label: l, Conns: conns, Duration: s.window(ctx), SampleEvery: s.cfg.Sample})
		})
	}
	wg.Wait()
	return sumStats(sts), errors.Join(errs...)
}

// sumStats adds up runs made at the same time: counts and req/s are
// summed, latency percentiles and maximum are the worst run's, the mean is
// weighted by answers, and the curve is the run with the worst p99's.
func sumStats(sts []Stats) Stats {
	var out Stats
	var weighted float64
	for _, s := range sts {
		out.Requests += s.Requests
		out.OK += s.OK
		out.Busy += s.Busy
		out.Limited += s.Limited
		out.Errors += s.Errors
		out.Sampled += s.Sampled
		out.BadAns += s.BadAns
		out.RPS += s.RPS
		out.Seconds = max(out.Seconds, s.Seconds)
		weighted += s.Mean * float64(s.Requests)
		out.P50 = max(out.P50, s.P50)
		out.P90 = max(out.P90, s.P90)
		out.P999 = max(out.P999, s.P999)
		out.Max = max(out.Max, s.Max)
		if s.P99 >= out.P99 {
			out.P99, out.Curve = s.P99, s.Curve
		}
	}
	if out.Requests > 0 {
		out.Mean = weighted / float64(out.Requests)
	}
	return out
}

// cpuMedians are the medians of the recorded CPU figures of the driver
// whose median req/s of each figure is med's.
func (cb *clusterBench) cpuMedians(med map[string]Stats) map[string]cpuRun {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	out := map[string]cpuRun{}
	for name, st := range med {
		bestDiff := math.Inf(1)
		for _, byName := range cb.cpu {
			runs := byName[name]
			if len(runs) == 0 {
				continue
			}
			var rps, tot []float64
			per := make([][]float64, len(runs[0].perProc))
			for _, r := range runs {
				rps = append(rps, r.rps)
				tot = append(tot, r.perReq)
				for i, v := range r.perProc {
					per[i] = append(per[i], v)
				}
			}
			if diff := math.Abs(median(rps) - st.RPS); diff < bestDiff {
				bestDiff = diff
				m := cpuRun{rps: median(rps), perReq: median(tot)}
				for _, v := range per {
					m.perProc = append(m.perProc, median(v))
				}
				out[name] = m
			}
		}
	}
	return out
}

// derive turns the medians into the scenario's figures: CPU per request
// of each figure, the cost of the remote hop, the aggregate vs one node,
// and the model's predictions for N machines.
func (cb *clusterBench) derive(med map[string]Stats) map[string]float64 {
	out := map[string]float64{}
	cpu := cb.cpuMedians(med)
	n := len(cb.nodes)
	for name, c := range cpu {
		out["cpu_us_per_req "+name] = c.perReq
		if strings.HasPrefix(name, "A ") {
			for i, v := range c.perProc {
				out[fmt.Sprintf("cpu_us_per_req %s @%s", name, cb.nodes[i].name)] = v
			}
		}
	}
	local, ok := cpu["A local"]
	if !ok {
		return out
	}
	// Per message between nodes: the extra CPU of the remote cases over
	// local, pooled over the cases by their message counts.
	var extra, msgs float64
	costs := map[string]float64{}
	for _, c := range clusterCases {
		r, ok := cpu["A "+c.name]
		if !ok {
			continue
		}
		costs[c.name] = r.perReq
		if c.msgs > 0 {
			out["remote_extra_cpu_us "+c.name] = r.perReq - local.perReq
			extra += r.perReq - local.perReq
			msgs += float64(c.msgs)
		}
	}
	if msgs > 0 {
		out["cpu_us_per_message (pooled)"] = extra / msgs
	}
	single, ok1 := cpu["1 node"]
	agg, ok2 := cpu[fmt.Sprintf("%d nodes", n)]
	if ok1 && ok2 {
		out[fmt.Sprintf("rps_%dnodes_vs_1node", n)] = ratio(med[fmt.Sprintf("%d nodes", n)].RPS, med["1 node"].RPS)
		out[fmt.Sprintf("cpu_per_req_%dnodes_vs_1node", n)] = ratio(agg.perReq, single.perReq)
		var pred float64
		for c, share := range cb.aggMix {
			pred += share * costs[c]
		}
		out[fmt.Sprintf("model_cpu_us_per_req %d nodes (this pool's mix)", n)] = pred
	}
	// The model for N machines with shards spread evenly and sessions and
	// users uniform over shards: the entry node holds S with probability
	// 1/N and U independently with 1/N.
	if len(costs) == len(clusterCases) {
		for _, N := range []int{1, 2, 3, 4, 8, 16, 64} {
			e := expectedCPU(N, costs)
			out[fmt.Sprintf("model_cpu_us_per_req N=%02d", N)] = e
			if ok1 {
				// Throughput of N machines like one single-node server,
				// CPU-bound, in units of one single-node server.
				out[fmt.Sprintf("model_throughput_vs_1node N=%02d", N)] = float64(N) * single.perReq / e
			}
		}
	}
	if t := cb.movedSince(); t >= 0 {
		out["grains_taken_after_setup"] = float64(t)
	}
	return out
}

// expectedCPU is the CPU per session check on a cluster of N nodes with
// shards spread evenly: a weighted mixture of the measured cases.
func expectedCPU(N int, c map[string]float64) float64 {
	f := float64(N)
	p1 := 1 / (f * f)                     // S and U on the entry node
	pOne := (f - 1) / (f * f)             // each of user-remote, session-remote, remote-same
	pSplit := (f - 1) * (f - 2) / (f * f) // S and U on two other nodes
	return p1*c["local"] + pOne*(c["user-remote"]+c["session-remote"]+c["remote-same"]) + pSplit*c["remote-split"]
}

// movedSince counts the shards taken after setup (a grain moved or
// re-activated during the runs): the figures assume none.
func (cb *clusterBench) movedSince() int {
	if cb.takes == nil {
		return -1
	}
	moved := 0
	for i, p := range cb.nodes {
		for sh, k := range p.takes() {
			moved += k - cb.takes[i][sh]
		}
	}
	return moved
}
