package actors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authnzerver/authnzerver/shard"
)

// Cluster mode (docs/design.md, "Cluster mode"): the same shards run as
// protoactor-go cluster grains of kind "shard", identity the shard number,
// placed on the members by consistent hashing (disthash) and activated on
// demand. A grain takes its shard in the shared store when it activates
// (raising the shard's owner epoch), waits out the previous owner's lease,
// loads the shard, and answers only while its own lease holds; every write
// is fenced by its epoch. Operations reach a grain of this node through its
// mailbox, as in a single node; a grain of another node through protoactor
// remote, as sealed messages (clusterwire.go).

// GrainKind is the cluster kind of shard grains.
const GrainKind = "shard"

// ShardHost is the store's side of cluster mode: it hands this node's
// grains their shards and keeps their leases.
type ShardHost interface {
	// Take makes this node the owner of shard i: it raises the shard's
	// owner epoch, so every later write of a former owner is refused, and
	// returns once the former owner's lease has run out.
	Take(ctx context.Context, i int) (ShardLease, error)
}

// ShardLease is this node's hold on one shard.
type ShardLease interface {
	// Load calls fn with every record of the shard; fn copies what it
	// keeps.
	Load(fn func(key, value []byte) error) error
	// Writes takes the grain's mutation records; each batch is fenced by
	// the lease's epoch.
	Writes() Enqueuer
	// Valid reports whether the lease still holds: a grain answers
	// nothing once it does not.
	Valid() bool
	// Lost is closed once the lease is lost: not renewed in time, or the
	// shard taken by another node.
	Lost() <-chan struct{}
	// Release commits what is queued and gives the shard up, so that the
	// next owner need not wait out the lease.
	Release()
}

// ClusterConfig is what a core needs to run as a member of a cluster.
type ClusterConfig struct {
	// Name is the cluster's name; nodes of one cluster share it.
	Name string
	// Provider is the membership (the etcd provider of package
	// cluster/membership). Its reachability is checked by the caller
	// first: protoactor-go panics when a provider fails to start.
	Provider cluster.ClusterProvider
	// Host and Port are where this node's remote listens; Advertise is the
	// host:port the other nodes reach it at ("" means Host:Port).
	Host      string
	Port      int
	Advertise string
	// Shards hands shards to this node's grains.
	Shards ShardHost
	// Key authenticates the messages between nodes ([DeriveClusterKey]).
	Key []byte
	// UserIDs reserves n new user ids unique across the cluster and
	// returns the first.
	UserIDs func(ctx context.Context, n int) (int64, error)
	// ActivateTimeout bounds a grain's activation (taking the shard,
	// waiting out the old lease, loading). Default 60 s.
	ActivateTimeout time.Duration
	// LeaveGrace is how long a leaving node goes on serving after it left
	// the member list, while the others learn it left. Default 300 ms.
	LeaveGrace time.Duration
	// Excluded, if set, reports whether this node must take no shard:
	// the other members dropped it (membership.ErrExpelled), or it cannot
	// know that they did not (membership's Confirmed is false: etcd has
	// not answered its keep-alive within the TTL, as after a pause). The
	// others no longer route to a dropped node and own its shards.
	Excluded func() bool
}

// errIDSource wraps a failure to reserve user ids.
var errIDSource = errors.New("actors: cannot reserve new user ids")

// clusterRouter finds the grain of each shard, here or on another node.
type clusterRouter struct {
	c      *Core
	cfg    ClusterConfig
	cl     *cluster.Cluster
	n      int
	self   string                      // this node's remote address
	routes []atomic.Pointer[actor.PID] // last known grain of each shard
	local  []atomic.Pointer[actor.PID] // this node's serving grains
	depth  *mailboxDepth               // every local grain's mailbox
	ids    idBlocks
	// leaving is set once the node leaves: a grain activated then
	// refuses at once rather than take a shard.
	leaving atomic.Bool
	// replies counts the replies to other nodes that wait for their
	// operation's writes to be durable (stop sends them before leaving).
	replies sync.WaitGroup
	// activating holds the grains still taking their shard (*actor.PID).
	activating sync.Map
	// topo is closed (and replaced) at each topology change, and members
	// are the addresses of its members: a request that a leaving node
	// refused waits until that node is no longer a member.
	topoMu  sync.Mutex
	topo    chan struct{}
	members map[string]bool
}

// StartCluster starts a core whose shards are grains of the cluster cfg
// names. opts.Shards must be the cluster's shard count.
func StartCluster(system *actor.ActorSystem, cfg ClusterConfig, opts Options) (c *Core, err error) {
	opts = opts.withDefaults()
	if cfg.Shards == nil || cfg.Provider == nil || cfg.UserIDs == nil || len(cfg.Key) == 0 {
		return nil, errors.New("actors: cluster mode needs a shard host, a membership provider, user ids and a key")
	}
	if cfg.ActivateTimeout <= 0 {
		cfg.ActivateTimeout = time.Minute
	}
	if cfg.LeaveGrace <= 0 {
		cfg.LeaveGrace = 300 * time.Millisecond
	}
	if cfg.Name == "" {
		cfg.Name = "authnzerver"
	}
	// protoactor-go panics when its listener cannot bind: say why first.
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("actors: cluster node address %s: %w", addr, err)
	}
	ln.Close()
	c = &Core{
		opts:      opts,
		system:    system,
		root:      system.Root,
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	r := &clusterRouter{
		c: c, cfg: cfg, n: opts.Shards,
		routes: make([]atomic.Pointer[actor.PID], opts.Shards),
		local:  make([]atomic.Pointer[actor.PID], opts.Shards),
		depth:  &mailboxDepth{},
		topo:   make(chan struct{}),
	}
	r.ids.fetch = cfg.UserIDs
	c.cl = r
	props := actor.PropsFromProducer(func() actor.Actor { return &grain{r: r, index: -1} },
		actor.WithMailbox(answeringMailboxProducer(r.answerDropped, r.depth)))
	var ropts []remote.ConfigOption
	if cfg.Advertise != "" {
		ropts = append(ropts, remote.WithAdvertisedHost(cfg.Advertise))
	}
	rcfg := remote.Configure(cfg.Host, cfg.Port, ropts...)
	// A connection to a node that died is tried once, not five times:
	// protoactor's endpoint writer holds every message to that address
	// while it tries (2 s after each failure), and only then answers
	// them DeadLetterResponse (they were never sent, so they are resent
	// to the shard's new owner). With five tries, every request sent to a
	// dead node's shards in the seconds before it leaves the member list
	// timed out (503 after AskTimeout, 5 s) although it never ran.
	rcfg.MaxRetryCount = 1
	ccfg := cluster.Configure(cfg.Name, cfg.Provider, disthash.New(), rcfg,
		cluster.WithKinds(cluster.NewKind(GrainKind, props)),
		cluster.WithRequestTimeout(opts.AskTimeout))
	r.cl = cluster.New(system, ccfg)
	system.EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *cluster.ClusterTopology:
			// Grains move when members come and go: look each up again.
			for i := range r.routes {
				r.routes[i].Store(nil)
			}
			members := make(map[string]bool, len(e.Members))
			for _, m := range e.Members {
				members[m.Address()] = true
			}
			r.topoMu.Lock()
			r.members = members
			close(r.topo)
			r.topo = make(chan struct{})
			r.topoMu.Unlock()
		case *actor.DeadLetterEvent:
			r.answerDropped(e.Message, e.Sender)
		}
	})
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("actors: start cluster member: %v", p)
		}
	}()
	r.cl.StartMember()
	r.self = system.Address()
	go c.sweepLoop()
	return c, nil
}

// refuses reports whether this node takes no more shards: it is leaving,
// or excluded (expelled, or unsure it is still a member). An expelled node
// that went on taking shards (it still places them on itself: its own
// member list has it) would take them from the nodes the others route to,
// which would lose them and wait out its lease to take them back, until
// it exits.
func (r *clusterRouter) refuses() bool {
	return r.leaving.Load() || (r.cfg.Excluded != nil && r.cfg.Excluded())
}

// shardIndex is the shard that owns route r.
func (r *clusterRouter) shardIndex(route shard.Route) int { return int(uint64(route) % uint64(r.n)) }

// pid returns the grain of shard i: the cached one, or one the cluster
// activates now (which blocks while the owner is asked).
func (r *clusterRouter) pid(i int) *actor.PID {
	if p := r.local[i].Load(); p != nil {
		return p
	}
	if p := r.routes[i].Load(); p != nil {
		return p
	}
	p := r.cl.Get(strconv.Itoa(i), GrainKind)
	if p != nil {
		r.routes[i].Store(p)
	}
	return p
}

// forget drops the cached grain of shard i after it refused or vanished.
func (r *clusterRouter) forget(i int, p *actor.PID) {
	r.routes[i].CompareAndSwap(p, nil)
	r.cl.PidCache.Remove(strconv.Itoa(i), GrainKind)
}

// waitLeft returns at once if the node at addr is no longer a member, and
// otherwise at the next topology change (which may or may not be its
// leave: a refusal again waits again), or false at deadline.
func (r *clusterRouter) waitLeft(addr string, deadline time.Time) bool {
	r.topoMu.Lock()
	ch, member := r.topo, r.members[addr]
	r.topoMu.Unlock()
	if !member {
		return true
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// send posts op for shard i to its grain without waiting: in-process
// through the mailbox when the grain is here, sealed over remote when not.
func (r *clusterRouter) send(i int, op broadcastOp, deadline time.Time) pendingOp {
	p := r.pid(i)
	if p == nil {
		return pendingOp{err: ErrNotOwner, shard: i, op: op, deadline: deadline}
	}
	if p.Address == r.self {
		m := opMsgPool.Get().(*opMsg)
		m.op, m.out = op, replyPool.Get().(chan reply)
		r.c.root.Send(p, m)
		return pendingOp{m: m, shard: i, op: op, pid: p, deadline: deadline}
	}
	b, err := encodeRequest(r.cfg.Key, i, op)
	if err != nil {
		return pendingOp{err: err}
	}
	f := r.c.root.RequestFuture(p, &wrapperspb.BytesValue{Value: b}, max(time.Until(deadline), time.Millisecond))
	return pendingOp{f: f, shard: i, op: op, pid: p, deadline: deadline}
}

// await receives the reply of a sent operation. An operation the grain did
// not run (it had moved, or was gone) is sent again to the shard's current
// grain until the deadline: nothing ran, so nothing runs twice.
func (r *clusterRouter) await(p pendingOp) (reply, error) {
	backoff := 5 * time.Millisecond
	for {
		rep, err := r.awaitOnce(p)
		refusal := err // the operation's own error when it was delivered
		if refusal == nil {
			refusal = rep.err
		}
		if !errors.Is(refusal, ErrNotOwner) || p.op == nil || time.Now().Add(backoff).After(p.deadline) {
			return rep, err
		}
		if p.pid != nil {
			r.forget(p.shard, p.pid)
		}
		if errors.Is(refusal, ErrLeaving) && p.pid != nil {
			// The shard maps to a leaving node until it leaves: wait
			// for a topology without it rather than ask it again (a
			// message that reaches it after it left is never
			// answered). A refusal that came from a further hop (a
			// forwarded operation) waits for the next topology too.
			if !r.waitLeft(p.pid.Address, p.deadline) {
				return rep, err
			}
		} else {
			time.Sleep(backoff)
			backoff = min(2*backoff, 250*time.Millisecond)
		}
		p = r.send(p.shard, p.op, p.deadline)
	}
}

func (r *clusterRouter) awaitOnce(p pendingOp) (reply, error) {
	switch {
	case p.err != nil:
		return reply{}, p.err
	case p.m != nil:
		rep, err := r.c.waitUntil(p.m.out, p.deadline)
		if err != nil {
			return reply{}, err // the grain may still answer on it: not pooled
		}
		p.m.op, p.m.out = nil, nil
		opMsgPool.Put(p.m)
		return rep, nil
	}
	res, err := p.f.Result()
	if err != nil {
		if errors.Is(err, actor.ErrDeadLetter) {
			return reply{}, ErrNotOwner
		}
		return reply{}, ErrTimeout
	}
	switch v := res.(type) {
	case *wrapperspb.BytesValue:
		return decodeReply(r.cfg.Key, v.Value)
	case *actor.DeadLetterResponse:
		return reply{}, ErrNotOwner // the grain was gone: nothing ran
	default:
		return reply{}, fmt.Errorf("%w: reply of type %T", ErrPeerMessage, res)
	}
}

// forward hands m on to the grain of op's shard (a Forward answer): the
// caller's channel travels along when that grain is here; otherwise a
// goroutine asks the remote grain and answers the channel.
func (r *clusterRouter) forward(m *opMsg, op Op) {
	i := r.shardIndex(op.Route())
	if p := r.local[i].Load(); p != nil {
		m.op = op
		r.c.root.Send(p, m)
		return
	}
	go func() {
		rep, err := r.await(r.send(i, op, time.Now().Add(r.c.opts.AskTimeout)))
		if err != nil {
			rep = reply{err: err}
		}
		m.out <- rep
	}()
}

// forwardRemote hands a request from another node on to the grain of op's
// shard, which answers the original sender itself.
func (r *clusterRouter) forwardRemote(op Op, sender *actor.PID) {
	i := r.shardIndex(op.Route())
	b, err := encodeRequest(r.cfg.Key, i, op)
	if err != nil {
		r.answer(sender, reply{err: err}, nil)
		return
	}
	if p := r.local[i].Load(); p != nil {
		r.c.root.RequestWithCustomSender(p, &wrapperspb.BytesValue{Value: b}, sender)
		return
	}
	go func() {
		p := r.pid(i)
		if p == nil {
			r.answer(sender, reply{err: ErrNotOwner}, nil)
			return
		}
		r.c.root.RequestWithCustomSender(p, &wrapperspb.BytesValue{Value: b}, sender)
	}()
}

// answerDropped answers a message that no grain will run (its grain
// stopped, or never existed), so that its caller resends it at once
// instead of waiting for a timeout.
func (r *clusterRouter) answerDropped(msg any, sender *actor.PID) {
	notRun := ErrNotOwner
	if r.leaving.Load() {
		notRun = ErrLeaving
	}
	switch m := msg.(type) {
	case *opMsg:
		m.out <- reply{err: notRun}
	case *wrapperspb.BytesValue:
		if sender != nil {
			r.answer(sender, reply{err: notRun}, nil)
		}
	case *grainReady:
		// The grain stopped while it took its shard: give it back.
		if m.lease != nil {
			m.lease.Release()
		}
	}
}

// answer seals rep (with the error of making its change durable) and sends
// it to the sender of a request from another node.
func (r *clusterRouter) answer(sender *actor.PID, rep reply, durableErr error) {
	r.c.root.Send(sender, &wrapperspb.BytesValue{Value: encodeReply(r.cfg.Key, rep, durableErr)})
}

// localPIDs returns this node's serving grains.
func (r *clusterRouter) localPIDs() []*actor.PID {
	var out []*actor.PID
	for i := range r.local {
		if p := r.local[i].Load(); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// stop leaves the cluster. The grains stop first, while this node is
// still a member: each runs what is queued before its stop, answers what
// waited for its activation "not run here" (ErrNotOwner, so the sender
// sends it again), commits its writes and releases its shard; the replies
// to the other nodes are sent. Only then does membership end, so the other
// nodes route to the shards' new owners, which take them without waiting
// out a lease; then the actor system stops after LeaveGrace.
//
// The other order (leave first) loses replies: a node that sees this one
// leave blocks its member id (protoactor's block list), so a reply sent
// after that never arrives and its request times out (503) although it
// ran; and the new owners, taking the shards before they were released,
// wait out a whole lease. Until membership ends, messages to this node's
// grains are answered ErrNotOwner (a dead letter, or a grain activated
// while leaving, which stops at once) and resent by their senders with
// back-off: nothing is lost, nothing runs twice.
func (r *clusterRouter) stop() {
	r.leaving.Store(true)
	pids := r.localPIDs()
	r.activating.Range(func(k, _ any) bool {
		pids = append(pids, k.(*actor.PID))
		return true
	})
	for _, p := range pids {
		_ = r.c.root.PoisonFuture(p).Wait()
	}
	// Replies of operations made durable by the grains' last commit.
	waited := make(chan struct{})
	go func() { r.replies.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		r.c.opts.Logger.Warn("cluster: leaving with replies to other nodes still waiting for their writes")
	}
	if err := r.cfg.Provider.Shutdown(true); err != nil {
		r.c.opts.Logger.Warn("cluster: leaving the member list", "err", err)
	}
	time.Sleep(r.cfg.LeaveGrace)
	r.cl.Shutdown(false)
}

// idBlocks hands out user ids from blocks reserved in the shared store, so
// that most sign-ups do not wait for it.
type idBlocks struct {
	mu        sync.Mutex
	next, end int64
	fetch     func(ctx context.Context, n int) (int64, error)
}

const idBlockLen = 64

func (b *idBlocks) take() (shard.UserID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= b.end {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		first, err := b.fetch(ctx, idBlockLen)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%w: %w: %w", ErrUnwritable, errIDSource, err)
		}
		b.next, b.end = first, first+idBlockLen
	}
	id := b.next
	b.next++
	return shard.UserID(id), nil
}

// grain is a shard's actor in cluster mode: a shardActor once its shard
// is taken and loaded, with a lease it checks before every message.
type grain struct {
	shardActor
	r      *clusterRouter
	index  int
	self   *actor.PID
	lease  ShardLease
	ready  bool
	stash  []stashed
	cancel context.CancelFunc // ends the activation (Stopping)
}

type stashed struct {
	msg    any
	sender *actor.PID
}

// maxStash bounds what waits for a grain's activation.
const maxStash = 100000

// grainReady ends a grain's activation.
type grainReady struct {
	state *shard.Shard
	lease ShardLease
	err   error
}

// grainLost tells a grain its lease is gone.
type grainLost struct{}

func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.self = ctx.Self()
		id := cluster.GetClusterIdentity(ctx)
		i, err := strconv.Atoi(id.Identity)
		if err != nil || i < 0 || i >= g.r.n {
			g.r.c.opts.Logger.Error("cluster: asked to activate an unknown shard", "identity", id.Identity, "shards", g.r.n)
			ctx.Stop(ctx.Self())
			return
		}
		g.index = i
		if g.r.refuses() {
			ctx.Stop(ctx.Self())
			return
		}
		g.r.activating.Store(g.self, struct{}{})
		actx, cancel := context.WithTimeout(context.Background(), g.r.cfg.ActivateTimeout)
		g.cancel = cancel
		go g.activate(actx, cancel, i, ctx.Self())
	case *grainReady:
		g.onReady(ctx, m)
	case *grainLost:
		g.r.c.opts.Logger.Warn("cluster: lost the lease on a shard; stopping its grain", "shard", g.index)
		ctx.Poison(ctx.Self())
	case *actor.Stopping:
		if g.cancel != nil {
			g.cancel() // a shard taken after this is given back (activate)
		}
		g.r.activating.Delete(g.self)
		g.r.local[max(g.index, 0)].CompareAndSwap(g.self, nil)
		for _, s := range g.stash {
			g.r.answerDropped(s.msg, s.sender)
		}
		g.stash = nil
		if g.lease != nil {
			g.lease.Release()
		}
	case *actor.Stopped, *actor.Restarting:
	default:
		if !g.ready {
			if len(g.stash) >= maxStash {
				g.r.answerDropped(m, ctx.Sender())
				return
			}
			g.stash = append(g.stash, stashed{msg: m, sender: ctx.Sender()})
			return
		}
		g.handle(ctx, m, ctx.Sender())
	}
}

// activate takes and loads the shard off the grain's goroutine (waiting
// out a former owner's lease can take seconds) and tells the grain. ctx
// ends when the grain stops (the shard moved to another member while it
// was being taken, or this node leaves): a shard taken by then is given
// back at once rather than held, and renewed, by nobody.
func (g *grain) activate(ctx context.Context, cancel context.CancelFunc, i int, self *actor.PID) {
	defer cancel()
	start := time.Now()
	lease, err := g.r.cfg.Shards.Take(ctx, i)
	var st *shard.Shard
	if err == nil {
		st = shard.New(g.r.c.opts.Shard)
		n := 0
		err = lease.Load(func(k, v []byte) error {
			route, ok, err := shard.RouteOfKey(k)
			if err != nil || !ok || g.r.shardIndex(route) != i {
				return nil // not this shard's: the store's filter is not trusted blindly
			}
			n++
			return st.Load(cloneRecord(k, v))
		})
		if err != nil {
			lease.Release()
			lease = nil
		} else {
			g.r.c.opts.Logger.Info("cluster: took a shard", "shard", i, "records", n, "took", time.Since(start).Round(time.Millisecond).String())
		}
	}
	if lease != nil && ctx.Err() != nil {
		lease.Release() // the grain stopped meanwhile
		return
	}
	// A grain that stops after this check gets the message as a dead
	// letter, and answerDropped releases the lease.
	g.r.c.root.Send(self, &grainReady{state: st, lease: lease, err: err})
}

func (g *grain) onReady(ctx actor.Context, m *grainReady) {
	g.r.activating.Delete(g.self)
	if m.err != nil {
		g.r.c.opts.Logger.Error("cluster: cannot take a shard; its grain stops and the next request tries again", "shard", g.index, "err", m.err)
		ctx.Stop(ctx.Self())
		return
	}
	if g.r.refuses() {
		// This node left, or was expelled, meanwhile: hand the shard
		// back (Stopping releases it and answers what waited).
		g.lease = m.lease
		ctx.Stop(ctx.Self())
		return
	}
	g.shardActor = shardActor{core: g.r.c, state: m.state, writes: m.lease.Writes()}
	g.lease, g.ready = m.lease, true
	g.r.local[g.index].Store(g.self)
	lost, self, root := m.lease.Lost(), g.self, g.r.c.root
	go func() {
		<-lost
		root.Send(self, &grainLost{})
	}()
	stash := g.stash
	g.stash = nil
	for _, s := range stash {
		g.handle(ctx, s.msg, s.sender)
	}
}

// handle runs one message of a serving grain.
func (g *grain) handle(ctx actor.Context, msg any, sender *actor.PID) {
	if !g.lease.Valid() {
		// Past the lease another node may own the shard: answer nothing
		// from this memory.
		g.r.answerDropped(msg, sender)
		if g.ready {
			g.ready = false
			g.r.local[g.index].CompareAndSwap(g.self, nil)
			ctx.Poison(ctx.Self())
		}
		return
	}
	switch m := msg.(type) {
	case *opMsg:
		g.handleOp(m)
	case *wrapperspb.BytesValue:
		g.handleRemote(m, sender)
	case sweepTick:
		g.enqueue(g.state.Sweep(g.core.opts.Now(), g.core.opts.SweepLimit))
	case *holdMsg:
		close(m.held)
		<-m.release
	}
}

// handleRemote runs a request from another node (or forwarded by a grain)
// and answers its sender once the change is durable.
func (g *grain) handleRemote(m *wrapperspb.BytesValue, sender *actor.PID) {
	if sender == nil {
		return // nobody to answer: not a request
	}
	i, op, err := decodeRequest(g.r.cfg.Key, m.Value)
	if err != nil {
		g.core.opts.Logger.Warn("cluster: refused a message from another node", "err", err)
		g.r.answer(sender, reply{err: err}, nil)
		return
	}
	if i != g.index {
		g.r.answer(sender, reply{err: ErrNotOwner}, nil)
		return
	}
	rep := g.runOp(op)
	if f, ok := rep.val.(Forward); ok && rep.err == nil {
		g.r.forwardRemote(f.Op, sender)
		return
	}
	if rep.ticket == nil {
		g.r.answer(sender, rep, nil)
		return
	}
	g.r.replies.Go(func() { g.r.answer(sender, rep, rep.ticket.Wait()) })
}
