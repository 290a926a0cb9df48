package membership

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Provider is an etcd cluster provider for protoactor-go (it implements
// cluster.ClusterProvider). Create it with [New], hand it to
// cluster.Configure, and shut it down through the cluster (graceful) or
// with [Provider.Shutdown].
type Provider struct {
	cfg    Config
	log    *slog.Logger
	client *clientv3.Client

	// Set by start, read-only afterwards (the run goroutine and Shutdown).
	cluster *cluster.Cluster
	isMbr   bool // member (registers itself) rather than client
	self    node
	key     string // own key (members)
	prefix  string // "/<prefix>/<cluster>/"
	cancel  context.CancelFunc
	done    chan struct{}

	// Owned by whoever holds the session: start, then the run goroutine.
	lease   clientv3.LeaseID
	entries map[string]entry // key → registered member, self included

	mu        sync.Mutex
	started   bool
	stopped   bool
	health    error             // nil: etcd answers and we are registered
	expelled  bool              // our key vanished while we ran: see ErrExpelled
	answered  time.Time         // etcd's last keep-alive answer (or the session's start)
	published []*cluster.Member // last topology handed to the member list
	leaseCopy clientv3.LeaseID  // p.lease, for GetHealthStatus's readers
	closeOnce sync.Once
}

// node is the value of a member's key.
type node struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Kinds []string `json:"kinds"`
}

func (n node) address() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// entry is a registered member and the revision its key was created at
// (which of two members on one address is the newer).
type entry struct {
	node
	created int64
}

// session is one registration (members) and one watch; it ends when etcd
// loses either, and the next session re-reads everything.
type session struct {
	ka     <-chan *clientv3.LeaseKeepAliveResponse // nil for clients
	watch  clientv3.WatchChan
	cancel context.CancelFunc // ends the keep-alive and the watch
}

var _ cluster.ClusterProvider = (*Provider)(nil)

// ErrExpelled (wrapped in GetHealthStatus's error, for good) says that this
// member's key vanished from etcd while it ran (its lease expired: it was
// cut off from etcd for longer than the TTL while the others were not).
// The other members then saw it leave, and protoactor's member list
// blocks a member that left for the life of their processes: they will
// not take this ID back even though we register again. Only a new actor
// system (a restart of the node) rejoins.
var ErrExpelled = errors.New("membership: our registration expired while we ran; the other members have blocked this member ID, restart the node to rejoin")

// New checks the configuration and that etcd answers within
// cfg.DialTimeout (see [Provider.Check]): an unreachable etcd or a bad
// endpoint is reported here, before protoactor's Cluster.StartMember,
// which panics on a provider error. The gRPC etcd client itself is
// created by StartMember/StartClient.
func New(cfg Config) (*Provider, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout)
	defer cancel()
	if err := p.Check(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Check asks each endpoint's /health (plain HTTP, see the package doc for
// why not gRPC) and fails, within cfg.DialTimeout or ctx's deadline, with
// "cannot reach etcd at …" unless one answers that it is healthy (it has
// a leader: it can serve reads and writes).
func (p *Provider) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	// No keep-alive: no idle connection (and its goroutines) outlives
	// the check.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var errs []error
	for _, ep := range p.cfg.Endpoints {
		err := checkHealth(ctx, hc, ep)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("membership: cannot reach etcd at %s: %w", strings.Join(p.cfg.Endpoints, ","), errors.Join(errs...))
}

func checkHealth(ctx context.Context, hc *http.Client, ep string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("%s: %w", ep, err)
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil || resp.StatusCode != http.StatusOK || h.Health != "true" {
		return fmt.Errorf("%s: not healthy: %d %s", ep, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// newClient creates the gRPC etcd client. It is created at StartMember,
// after protoactor's Remote.Start: that sets gRPC's global logger, a data
// race with any gRPC connection already running (see the package doc).
func (p *Provider) newClient() error {
	// Reconnect quickly after an etcd restart: with gRPC's default
	// back-off (up to 120 s) a member could stay away longer than its TTL
	// and be dropped by the others for good (protoactor blocks the IDs of
	// members that left).
	maxDelay := min(time.Second, p.cfg.TTL/3)
	client, err := clientv3.New(clientv3.Config{
		Endpoints: p.cfg.Endpoints,
		// No DialTimeout: a blocking dial would only cover the first
		// connection; each operation has its own deadline.
		Logger: zap.NewNop(), // our own log says what matters, without per-retry noise
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxDelay},
			MinConnectTimeout: p.cfg.DialTimeout,
		})},
	})
	if err != nil {
		return fmt.Errorf("etcd client for %s: %w", strings.Join(p.cfg.Endpoints, ","), err)
	}
	p.mu.Lock()
	p.client = client
	p.mu.Unlock()
	return nil
}

// StartMember registers this actor system as a member and starts watching
// the others. protoactor panics if this fails: call [New] (which checks
// etcd) right before starting the cluster.
func (p *Provider) StartMember(c *cluster.Cluster) error { return p.start(c, true) }

// StartClient watches the members without registering.
func (p *Provider) StartClient(c *cluster.Cluster) error { return p.start(c, false) }

func (p *Provider) start(c *cluster.Cluster, member bool) (err error) {
	p.mu.Lock()
	if p.started || p.stopped {
		p.mu.Unlock()
		return errors.New("membership: provider already started or shut down (one provider per cluster start)")
	}
	p.started = true
	p.mu.Unlock()
	// Without a run goroutine, done is closed here so that Shutdown does
	// not wait for one.
	defer func() {
		if err != nil {
			close(p.done)
		}
	}()

	name := c.Config.Name
	if p.cfg.ClusterName != "" && p.cfg.ClusterName != name {
		return fmt.Errorf("membership: configured cluster name %q differs from the protoactor cluster's %q", p.cfg.ClusterName, name)
	}
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("membership: cluster name %q: must be non-empty without '/'", name)
	}
	p.cluster, p.isMbr = c, member
	p.prefix = "/" + p.cfg.Prefix + "/" + name + "/"
	if member {
		host, port, err := net.SplitHostPort(c.ActorSystem.Address())
		if err != nil {
			return fmt.Errorf("membership: actor system address %q: %w", c.ActorSystem.Address(), err)
		}
		portN, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("membership: actor system address %q: %w", c.ActorSystem.Address(), err)
		}
		kinds := c.GetClusterKinds()
		sort.Strings(kinds)
		// The member ID is the actor system's ID: protoactor's gossip,
		// block list and BroadcastEvent all identify members by it.
		p.self = node{ID: c.ActorSystem.ID, Host: host, Port: portN, Kinds: kinds}
		p.key = p.prefix + p.self.ID
	}

	if err := p.newClient(); err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	s, err := p.establish(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("membership: first registration in etcd: %w", err)
	}
	if member {
		p.log.Info("membership: registered", "cluster", name, "id", p.self.ID, "address", p.self.address(), "ttl", p.cfg.TTL)
	}
	go p.run(ctx, s)
	return nil
}

// establish registers (members: a new lease, the key put under it), reads
// the full member list in the same transaction, publishes it, and watches
// from the revision after that read, so no change between the read and the
// watch is missed.
func (p *Provider) establish(ctx context.Context) (*session, error) {
	opCtx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var ops []clientv3.Op
	var lease clientv3.LeaseID
	again := p.isMbr && p.lease != 0
	if again {
		// Was our key still there? If not it expired, and the others
		// have seen us leave (ErrExpelled).
		ops = append(ops, clientv3.OpGet(p.key, clientv3.WithCountOnly()))
	}
	if p.isMbr {
		g, err := p.client.Grant(opCtx, int64(p.cfg.TTL/time.Second))
		if err != nil {
			return nil, fmt.Errorf("grant lease: %w", err)
		}
		lease = g.ID
		val, err := json.Marshal(p.self)
		if err != nil {
			return nil, fmt.Errorf("encode member: %w", err)
		}
		ops = append(ops, clientv3.OpPut(p.key, string(val), clientv3.WithLease(lease)))
	}
	ops = append(ops, clientv3.OpGet(p.prefix, clientv3.WithPrefix()))
	tr, err := p.client.Txn(opCtx).Then(ops...).Commit()
	if err != nil {
		if lease != 0 {
			p.revoke(lease)
		}
		return nil, fmt.Errorf("register and read members under %s: %w", p.prefix, err)
	}
	if again && tr.Responses[0].GetResponseRange().Count == 0 {
		p.expel()
	}
	// The previous lease holds no key any more (the put moved ours to the
	// new lease); revoking it just spares etcd the wait for its expiry.
	if p.lease != 0 {
		p.revoke(p.lease)
	}
	p.lease = lease
	p.mu.Lock()
	p.leaseCopy = lease
	p.mu.Unlock()

	entries := map[string]entry{}
	for _, kv := range tr.Responses[len(ops)-1].GetResponseRange().Kvs {
		n, err := decode(kv.Value)
		if err != nil {
			p.log.Warn("membership: ignoring a malformed member entry", "key", string(kv.Key), "error", err)
			continue
		}
		entries[string(kv.Key)] = entry{node: n, created: kv.CreateRevision}
	}
	p.entries = entries
	p.publish()

	sctx, scancel := context.WithCancel(ctx)
	s := &session{cancel: scancel}
	if p.isMbr {
		s.ka, err = p.client.KeepAlive(sctx, lease)
		if err != nil {
			scancel()
			return nil, fmt.Errorf("keep lease alive: %w", err)
		}
	}
	// WithRequireLeader ends the watch when our etcd node loses its
	// quorum (else a partitioned node's watch stalls in silence).
	s.watch = p.client.Watch(clientv3.WithRequireLeader(sctx), p.prefix,
		clientv3.WithPrefix(), clientv3.WithRev(tr.Header.Revision+1))
	p.setHealth(nil)
	return s, nil
}

func (p *Provider) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), min(p.cfg.DialTimeout, time.Second))
	defer cancel()
	_, _ = p.client.Revoke(ctx, lease) // best effort: it expires anyway
}

func decode(b []byte) (node, error) {
	var n node
	if err := json.Unmarshal(b, &n); err != nil {
		return n, err
	}
	if n.ID == "" || n.Host == "" || n.Port <= 0 || n.Port > 65535 {
		// Cut the bytes, not the quoted text: %.Nq bounds runes, and each
		// byte that is not UTF-8 quotes as four characters.
		return n, fmt.Errorf("incomplete member %q", b[:min(len(b), 64)])
	}
	return n, nil
}

// run serves sessions until Shutdown; when one breaks it starts another,
// retrying with a back-off while etcd is away.
func (p *Provider) run(ctx context.Context, s *session) {
	defer close(p.done)
	for {
		err := p.serve(ctx, s)
		s.cancel()
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("membership: etcd session lost; registering again and re-reading the members", "error", err)
		p.setHealthQuiet(err) // just logged
		wait := 50 * time.Millisecond
		for attempt := 1; ; attempt++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, time.Second, p.cfg.TTL/3)
			s, err = p.establish(ctx)
			if err == nil {
				p.log.Info("membership: registered again", "id", p.self.ID, "attempts", attempt)
				break
			}
			if ctx.Err() != nil {
				return
			}
			p.setHealth(err)
		}
	}
}

// serve applies the watch's events until the session breaks: the lease is
// lost (expired, etcd unreachable longer than the TTL), the watch fails
// or our own key disappears.
func (p *Provider) serve(ctx context.Context, s *session) error {
	// Health: keep-alive answers arrive every TTL/3; two missed ones
	// mean etcd is unreachable. Clients have no lease and probe instead.
	tick := time.NewTicker(p.cfg.TTL / 3)
	defer tick.Stop()
	lastAnswer := time.Now()
	p.setAnswered(lastAnswer)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ka, ok := <-s.ka:
			if !ok {
				return fmt.Errorf("lease %x lost (expired, or etcd unreachable for longer than the TTL)", p.lease)
			}
			if ka != nil {
				lastAnswer = time.Now()
				p.setAnswered(lastAnswer)
				p.setHealth(nil)
			}
		case wr, ok := <-s.watch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			if err := p.apply(wr.Events); err != nil {
				return err
			}
			p.publish()
		case <-tick.C:
			if p.isMbr {
				if since := time.Since(lastAnswer); since > 2*p.cfg.TTL/3+100*time.Millisecond {
					p.setHealth(fmt.Errorf("membership: etcd at %s has not answered a keep-alive for %v", strings.Join(p.cfg.Endpoints, ","), since.Round(time.Millisecond)))
				}
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, p.cfg.TTL/3)
			_, err := p.client.Get(pctx, p.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			cancel()
			if err != nil && ctx.Err() == nil {
				p.setHealth(fmt.Errorf("membership: cannot reach etcd at %s: %w", strings.Join(p.cfg.Endpoints, ","), err))
			} else {
				p.setHealth(nil)
			}
		}
	}
}

// apply folds watch events into the entries. Our own key's deletion ends
// the session: the next one registers us again (protoactor's provider
// instead drops itself from its own list and never comes back).
func (p *Provider) apply(evs []*clientv3.Event) error {
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		switch ev.Type {
		case clientv3.EventTypePut:
			n, err := decode(ev.Kv.Value)
			if err != nil {
				p.log.Warn("membership: ignoring a malformed member entry", "key", key, "error", err)
				continue
			}
			p.entries[key] = entry{node: n, created: ev.Kv.CreateRevision}
		case clientv3.EventTypeDelete:
			delete(p.entries, key)
			if p.isMbr && key == p.key {
				p.expel()
				return errors.New("our own member key was deleted (lease expired or removed by hand)")
			}
		}
	}
	return nil
}

// view is the topology to publish: the registered members, ourselves
// always (while we run we are a member, whatever etcd says at the moment),
// and of several members on one host:port only the newest: only one
// process can listen there, so the older ones are dead predecessors whose
// keys wait for their lease to expire. Dropping them at once matters: the
// member list reacts to a member leaving by tearing down the remote
// endpoint of its address, which is the live successor's (see the package
// doc).
func (p *Provider) view() []*cluster.Member {
	byAddr := map[string]entry{}
	for _, e := range p.entries {
		a := e.address()
		if p.isMbr && (e.ID == p.self.ID || a == p.self.address()) {
			continue
		}
		if old, ok := byAddr[a]; ok && old.created > e.created {
			continue
		}
		byAddr[a] = e
	}
	if p.isMbr {
		byAddr[p.self.address()] = entry{node: p.self}
	}
	out := make([]*cluster.Member, 0, len(byAddr))
	for _, e := range byAddr {
		kinds := append([]string{}, e.Kinds...)
		out = append(out, &cluster.Member{Id: e.ID, Host: e.Host, Port: int32(e.Port), Kinds: kinds})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// publish hands the whole topology to protoactor's member list (which
// works out who joined and left) and logs the changes.
func (p *Provider) publish() {
	members := p.view()
	p.mu.Lock()
	old := p.published
	p.published = members
	p.mu.Unlock()
	before := map[string]bool{}
	for _, m := range old {
		before[m.Id] = true
	}
	changed := len(old) != len(members)
	for _, m := range members {
		if !before[m.Id] {
			changed = true
			p.log.Info("membership: member joined", "id", m.Id, "address", m.Address(), "kinds", m.Kinds)
		}
		delete(before, m.Id)
	}
	for id := range before {
		changed = true
		p.log.Info("membership: member left", "id", id)
	}
	if changed {
		p.log.Info("membership: topology", "members", len(members))
	}
	p.cluster.MemberList.UpdateClusterTopology(members)
}

// Members returns the topology last handed to protoactor's member list.
func (p *Provider) Members() []*cluster.Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*cluster.Member(nil), p.published...)
}

// GetHealthStatus returns nil while etcd answers and this member is
// registered, else why not.
func (p *Provider) GetHealthStatus() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errors.New("membership: provider shut down")
	}
	if !p.started {
		return errors.New("membership: provider not started")
	}
	if p.expelled {
		if p.health == nil {
			return ErrExpelled
		}
		return fmt.Errorf("%w; and: %w", ErrExpelled, p.health)
	}
	return p.health
}

func (p *Provider) setAnswered(t time.Time) {
	p.mu.Lock()
	p.answered = t
	p.mu.Unlock()
}

// Confirmed reports whether this member knows it is still a member: it
// was not expelled, and etcd answered a keep-alive of its registration
// within the TTL. A member paused (SIGSTOP) or cut off from etcd for
// longer than that may have been dropped by the others without knowing it
// yet; it is not confirmed until etcd answers again (or, if it was
// dropped, ever: then GetHealthStatus reports ErrExpelled). The elapsed
// time is read when asked, on the monotonic clock (which runs on while
// the process is stopped), so a member resumed after a long pause is
// unconfirmed at once, before any of its timers fired. authnzerver's
// nodes take no shard while unconfirmed.
func (p *Provider) Confirmed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started && !p.stopped && !p.expelled && !p.answered.IsZero() && time.Since(p.answered) <= p.cfg.TTL
}

func (p *Provider) expel() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.expelled {
		p.expelled = true
		p.log.Error("membership: our key expired while we ran", "id", p.self.ID, "error", ErrExpelled)
	}
}

func (p *Provider) setHealth(err error) { p.updateHealth(err, true) }

func (p *Provider) setHealthQuiet(err error) { p.updateHealth(err, false) }

func (p *Provider) updateHealth(err error, logIt bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.health == nil && !p.expelled && logIt {
		p.log.Warn("membership: etcd unhealthy", "error", err)
	} else if err == nil && p.health != nil {
		p.log.Info("membership: etcd healthy again")
	}
	p.health = err
}

// Shutdown stops the watch and the keep-alive and closes the etcd client;
// no goroutine of ours is left. Graceful: the member's key is removed at
// once (lease revoked), so the others drop it now. Not graceful: the key
// is left to expire with its lease within the TTL, as after a crash.
// protoactor calls this only from a graceful Cluster.Shutdown.
func (p *Provider) Shutdown(graceful bool) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	started := p.started
	p.mu.Unlock()
	var err error
	if started {
		if p.cancel != nil {
			p.cancel()
		}
		<-p.done
		if graceful && p.isMbr && p.lease != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DialTimeout)
			if _, rerr := p.client.Revoke(ctx, p.lease); rerr != nil {
				err = fmt.Errorf("membership: deregister %s: %w", p.key, rerr)
			} else {
				p.log.Info("membership: deregistered", "id", p.self.ID)
			}
			cancel()
		}
	}
	p.closeClient()
	return err
}

func (p *Provider) closeClient() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		c := p.client
		p.mu.Unlock()
		if c != nil {
			_ = c.Close()
		}
	})
}

// currentLease is for tests (their goroutine races with run's).
func (p *Provider) currentLease() clientv3.LeaseID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaseCopy
}
