package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The failure tests (issue 16) run a bounded load of writes through the
// nodes while they hurt the cluster, keep a ledger of every write a node
// acknowledged, and check each one at the end through every live node:
// an acknowledged write must never be lost.

// longRun reports whether the long variant runs (`make cluster-long`:
// AUTHNZ_CLUSTER_LONG=1): more cycles and longer load.
func longRun() bool { return os.Getenv("AUTHNZ_CLUSTER_LONG") != "" }

// outcome of one request of the load.
type outcome struct {
	node       string
	op         string
	start, end time.Time
	ok         bool
	status     int // HTTP status; 0 for a transport error
	detail     string
}

// sessRec is what the ledger knows of a session a worker made.
type sessRec struct {
	uid     int64
	deleted int // 0: no delete tried; 1: a delete acknowledged; 2: a delete of unknown outcome
}

// userRec is what the ledger knows of a worker's user.
type userRec struct {
	email   string
	acked   string   // the last acknowledged full_name
	unknown []string // names sent after it whose outcome is unknown
}

// load is a set of workers writing through the nodes.
type load struct {
	c        *testCluster
	stop     chan struct{}
	haltOnce sync.Once
	wg       sync.WaitGroup
	down     []atomic.Bool // per node: do not send to it
	mu       sync.Mutex
	sess     map[string]*sessRec
	users    map[int64]*userRec
	events   []outcome
	// inflight are the requests sent and not yet answered, by worker.
	inflight map[int]outcome
	pause    time.Duration
	workers  int
}

// startLoad starts workers writers, pinned round-robin to the nodes; each
// has a user of its own (made before the load starts) and makes sessions,
// deletes some, and renames its user, one request at a time with pause
// between them.
func startLoad(t *testing.T, c *testCluster, workers int, pause time.Duration) *load {
	t.Helper()
	l := &load{c: c, stop: make(chan struct{}), down: make([]atomic.Bool, len(c.nodes)),
		sess: map[string]*sessRec{}, users: map[int64]*userRec{}, inflight: map[int]outcome{}, pause: pause, workers: workers}
	uids := make([]int64, workers)
	for w := range workers {
		email := fmt.Sprintf("load%d-%d@example.org", w, time.Now().UnixNano())
		uids[w] = newUser(t, c.nodes[w%len(c.nodes)], email)
		l.users[uids[w]] = &userRec{email: email, acked: "Cluster User"}
	}
	// Probes: sessions on every shard (24 on 8), read through the nodes
	// by a request of its own every 50 ms, so that a request hanging on a
	// dead node does not hold the next ones back (each worker sends one
	// request at a time): the recovery time is that of requests sent.
	var probes []string
	for range 24 {
		tok := c.nodes[0].must("session-new", sessionBody(uids[0])).Str("session_token")
		probes = append(probes, tok)
		l.sess[tok] = &sessRec{uid: uids[0]} // in the ledger too
	}
	l.wg.Go(func() { l.probe(probes) })
	for w := range workers {
		l.wg.Go(func() { l.worker(w, w%len(c.nodes), uids[w]) })
	}
	return l
}

// probe checks a probe session through the nodes in turn every 50 ms,
// each check in a goroutine of its own, until the load stops.
func (l *load) probe(tokens []string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		ni := k % len(l.c.nodes)
		if l.down[ni].Load() {
			continue
		}
		nd, tok, id := l.c.nodes[ni], tokens[k%len(tokens)], -1-k
		wg.Go(func() {
			start := time.Now()
			l.mu.Lock()
			l.inflight[id] = outcome{node: nd.name, op: "probe", start: start}
			l.mu.Unlock()
			exists, err := sessionExists(nd, tok)
			o := outcome{node: nd.name, op: "probe", start: start, end: time.Now(), ok: err == nil && exists, status: 200}
			if err != nil {
				o.status, o.detail = 0, err.Error()
				if strings.Contains(o.detail, "status 503") {
					o.status = 503
				}
			} else if !exists {
				o.detail = "a probe session does not exist"
			}
			l.mu.Lock()
			delete(l.inflight, id)
			l.events = append(l.events, o)
			l.mu.Unlock()
		})
	}
}

// maxLiveSessions keeps each worker's user well below the server's cap
// of sessions per user (100), past which the oldest is deleted.
const maxLiveSessions = 40

func (l *load) worker(w, ni int, uid int64) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	var mine []string // sessions of this worker not yet deleted
	seq := 0
	for {
		select {
		case <-l.stop:
			return
		case <-time.After(l.pause):
		}
		if l.down[ni].Load() {
			continue
		}
		nd := l.c.nodes[ni]
		op := "session-new"
		switch k := rng.IntN(10); {
		case len(mine) >= maxLiveSessions || k < 3 && len(mine) > 0:
			op = "session-delete"
		case k < 5:
			op = "internal-user-edit"
		}
		var body map[string]any
		var token, name string
		switch op {
		case "session-new":
			body = sessionBody(uid)
		case "session-delete":
			j := rng.IntN(len(mine))
			token = mine[j]
			mine = slices.Delete(mine, j, j+1)
			body = map[string]any{"session_token": token}
		case "internal-user-edit":
			seq++
			name = fmt.Sprintf("Worker %d rename %d", w, seq)
			body = map[string]any{"target_userid": uid, "update_dict": map[string]any{"full_name": name}}
		}
		start := time.Now()
		l.mu.Lock()
		l.inflight[w] = outcome{node: nd.name, op: op, start: start}
		l.mu.Unlock()
		r, err := nd.do(op, body)
		o := outcome{node: nd.name, op: op, start: start, end: time.Now()}
		if err != nil {
			o.detail = err.Error()
		} else {
			o.status = r.StatusCode
			o.ok = r.StatusCode == 200 && r.Success
			if !o.ok {
				o.detail = fmt.Sprintf("%s %v", r.FailureReason, r.Messages)
			}
		}
		l.mu.Lock()
		delete(l.inflight, w)
		l.events = append(l.events, o)
		switch op {
		case "session-new":
			if o.ok {
				tok := r.Str("session_token")
				l.sess[tok] = &sessRec{uid: uid}
				mine = append(mine, tok)
			}
		case "session-delete":
			if o.ok {
				l.sess[token].deleted = 1
			} else {
				l.sess[token].deleted = 2
			}
		case "internal-user-edit":
			u := l.users[uid]
			if o.ok {
				u.acked, u.unknown = name, nil
			} else {
				u.unknown = append(u.unknown, name)
			}
		}
		l.mu.Unlock()
	}
}

// halt stops the workers and waits for them; it may be called again.
func (l *load) halt() {
	l.haltOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// setDown stops (or resumes) sending to node i.
func (l *load) setDown(i int, down bool) { l.down[i].Store(down) }

// failures are the failed requests through nodes that ended after since.
func (l *load) failures(since time.Time, nodes []*node) []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []outcome
	for _, o := range l.events {
		if !o.ok && o.end.After(since) && nodeIn(o.node, nodes) {
			out = append(out, o)
		}
	}
	return out
}

func nodeIn(name string, nodes []*node) bool {
	for _, nd := range nodes {
		if nd.name == name {
			return true
		}
	}
	return false
}

// waitRecovered waits until every request through nodes has succeeded for
// quiet (at least minOK requests, every one started after the last
// failure, and none in flight for longer than a second: a request to a
// dead grain owner hangs until its timeout), and returns the time from
// since to the end of the last failed request through those nodes, and
// to the start of the last request that failed (0 if none failed). It
// fails t after limit.
func (l *load) waitRecovered(t *testing.T, since time.Time, nodes []*node, quiet time.Duration, limit time.Duration) (lastEnd, lastStart time.Duration) {
	t.Helper()
	const minOK = 10
	deadline := since.Add(limit)
	for {
		time.Sleep(100 * time.Millisecond)
		l.mu.Lock()
		var lastFail, lastFailStart time.Time
		for _, o := range l.events {
			if !o.ok && o.end.After(since) && nodeIn(o.node, nodes) {
				if o.end.After(lastFail) {
					lastFail = o.end
				}
				if o.start.After(lastFailStart) {
					lastFailStart = o.start
				}
			}
		}
		from := since
		if !lastFail.IsZero() {
			from = lastFail
		}
		okAfter := 0
		for _, o := range l.events {
			if o.ok && o.start.After(from) && nodeIn(o.node, nodes) {
				okAfter++
			}
		}
		hanging := 0
		for _, o := range l.inflight {
			if nodeIn(o.node, nodes) && time.Since(o.start) > time.Second {
				hanging++
			}
		}
		l.mu.Unlock()
		if okAfter >= minOK && hanging == 0 && time.Since(from) >= quiet {
			if lastFail.IsZero() {
				return 0, 0
			}
			return lastFail.Sub(since), max(lastFailStart.Sub(since), 0)
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests through %v did not all succeed again within %v of the event (last failure %v after it; %d successes since; %d requests hanging)",
				names(nodes), limit, lastFail.Sub(since), okAfter, hanging)
		}
	}
}

func names(nodes []*node) []string {
	var out []string
	for _, nd := range nodes {
		out = append(out, nd.name)
	}
	return out
}

// summary counts the requests through nodes in [from, to): all, failed,
// and of the failed those answered 503.
func (l *load) summary(from, to time.Time, nodes []*node) (all, failed, unavailable int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.events {
		if o.end.Before(from) || !o.end.Before(to) || !nodeIn(o.node, nodes) {
			continue
		}
		all++
		if !o.ok {
			failed++
			if o.status == 503 {
				unavailable++
			}
		}
	}
	return
}

// logFailures logs up to n failed requests of fs.
func logFailures(t *testing.T, what string, since time.Time, fs []outcome, n int) {
	t.Helper()
	for k, o := range fs {
		if k == n {
			t.Logf("%s: ... and %d more", what, len(fs)-n)
			break
		}
		t.Logf("%s: %s %s at +%v (took %v): status %d %s", what, o.node, o.op,
			o.start.Sub(since).Round(time.Millisecond), o.end.Sub(o.start).Round(time.Millisecond), o.status, o.detail)
	}
}

// verify checks every acknowledged write of the ledger through each of
// nodes: a session made and not deleted exists, a session whose delete
// was acknowledged does not, and each user's name is its last acknowledged
// one (or one sent after it whose outcome was unknown).
func (l *load) verify(t *testing.T, nodes ...*node) {
	t.Helper()
	l.mu.Lock()
	sess := make(map[string]sessRec, len(l.sess))
	for k, v := range l.sess {
		sess[k] = *v
	}
	users := make(map[int64]userRec, len(l.users))
	for k, v := range l.users {
		users[k] = *v
	}
	l.mu.Unlock()
	tokens := make([]string, 0, len(sess))
	for tok := range sess {
		tokens = append(tokens, tok)
	}
	sort.Strings(tokens)
	live, deleted := 0, 0
	for _, tok := range tokens {
		switch sess[tok].deleted {
		case 0:
			live++
		case 1:
			deleted++
		}
	}
	for _, nd := range nodes {
		var mu sync.Mutex
		var bad []string
		work := make(chan string)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for tok := range work {
					rec := sess[tok]
					if rec.deleted == 2 {
						continue
					}
					exists, err := sessionExists(nd, tok)
					switch {
					case err != nil:
						exists, err = sessionExistsRetry(nd, tok)
					}
					var msg string
					switch {
					case err != nil:
						msg = fmt.Sprintf("session %.12s…: %v", tok, err)
					case rec.deleted == 0 && !exists:
						msg = fmt.Sprintf("acknowledged session %.12s… of user %d is lost", tok, rec.uid)
					case rec.deleted == 1 && exists:
						msg = fmt.Sprintf("session %.12s… whose delete was acknowledged exists", tok)
					}
					if msg != "" {
						mu.Lock()
						bad = append(bad, msg)
						mu.Unlock()
					}
				}
			})
		}
		for _, tok := range tokens {
			work <- tok
		}
		close(work)
		wg.Wait()
		for uid, u := range users {
			r, err := nd.do("user-lookup-email", map[string]any{"email": u.email})
			if err != nil || r.StatusCode != 200 || !r.Success {
				bad = append(bad, fmt.Sprintf("user %d: lookup %+v %v", uid, r, err))
				continue
			}
			got, _ := r.Map("user_info")["full_name"].(string)
			if got != u.acked && !slices.Contains(u.unknown, got) {
				bad = append(bad, fmt.Sprintf("user %d is named %q; the last acknowledged name is %q (unknown after it: %q)", uid, got, u.acked, u.unknown))
			}
		}
		for k, b := range bad {
			if k == 20 {
				t.Errorf("%s: ... and %d more", nd.name, len(bad)-20)
				break
			}
			t.Errorf("%s: %s", nd.name, b)
		}
		t.Logf("ledger checked through %s: %d sessions live, %d deleted (acknowledged), %d of unknown delete, %d users; %d problems",
			nd.name, live, deleted, len(tokens)-live-deleted, len(users), len(bad))
	}
}

// sessionExistsRetry asks again a few times when a node does not answer:
// verification runs after the cluster recovered, but a node that just
// rejoined may still be taking shards.
func sessionExistsRetry(nd *node, tok string) (bool, error) {
	var err error
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		var ok bool
		if ok, err = sessionExists(nd, tok); err == nil {
			return ok, nil
		}
	}
	return false, err
}

// counts returns how many requests of each op the load made and how many
// succeeded.
func (l *load) counts() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	all, ok := map[string]int{}, map[string]int{}
	for _, o := range l.events {
		all[o.op]++
		if o.ok {
			ok[o.op]++
		}
	}
	s := ""
	for _, op := range []string{"session-new", "session-delete", "internal-user-edit", "probe"} {
		s += fmt.Sprintf("%s %d/%d ", op, ok[op], all[op])
	}
	return s
}

// median of ds.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
