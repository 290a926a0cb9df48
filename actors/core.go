package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// Errors of the core.
var (
	ErrTimeout  = errors.New("actors: shard did not answer in time")
	ErrStopped  = errors.New("actors: core stopped")
	ErrShardBug = errors.New("actors: shard operation panicked")
)

// Enqueuer is where shard actors send their mutation records: the persist
// writer in the server, a fake in tests. Keeping it this narrow lets a
// cluster deployment put another store behind the same shards.
type Enqueuer interface {
	Enqueue(ops ...persist.Op) *persist.Ticket
}

// Options configures the core. Zero fields mean the defaults.
type Options struct {
	// Shards is the number of shard actors. Default 4×GOMAXPROCS. It may
	// change between restarts: records are re-routed when loaded.
	Shards int
	// AskTimeout bounds the wait for a shard's reply. Default 5 s. Shard
	// operations never block, so only a stuck process reaches it.
	AskTimeout time.Duration
	// SweepInterval is how often each shard sweeps expired records.
	// Default 1 minute.
	SweepInterval time.Duration
	// SweepLimit bounds the records of each kind one sweep of one shard
	// looks at (and so deletes), so a sweep never holds a shard for long:
	// about 0.2 ms however many sessions the shard holds. Default 10000.
	SweepLimit int
	// Shard configures each shard's state.
	Shard shard.Options
	// Logger is the logger of the core and of protoactor-go itself (which
	// logs at warning and above only). Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests pass a fake.
	Now func() time.Time
}

// Core is the running set of shard actors.
type Core struct {
	// Static after Start.
	opts   Options
	system *actor.ActorSystem
	root   *actor.RootContext
	pids   []*actor.PID
	depths []*mailboxDepth
	states []*shard.Shard // each owned by its actor once Start returns
	writes Enqueuer
	cl     *clusterRouter // nil for a single node

	// Shared.
	nextUserID atomic.Int64 // next user id to hand out; persisted with each user
	stopOnce   sync.Once
	stopSweep  chan struct{} // closed by Stop
	sweepDone  chan struct{}
	stopped    atomic.Bool
}

func (o Options) withDefaults() Options {
	if o.Shards <= 0 {
		o.Shards = DefaultShards()
	}
	if o.AskTimeout <= 0 {
		o.AskTimeout = 5 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.SweepLimit <= 0 {
		o.SweepLimit = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DefaultShards is the number of shards when none is configured: four per
// processor, so that a shard's mailbox is rarely the one all requests wait
// on.
func DefaultShards() int { return 4 * runtime.GOMAXPROCS(0) }

// NewActorSystem returns a protoactor-go actor system whose own log lines go
// to lg at warning level and above (its default logger prints colourised
// INFO lines to stderr).
func NewActorSystem(lg *slog.Logger) *actor.ActorSystem {
	if lg == nil {
		lg = slog.Default()
	}
	h := minLevel{Handler: lg.Handler(), min: slog.LevelWarn}
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(h).With("component", "protoactor")
	}))
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{Handler: m.Handler.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(n string) slog.Handler {
	return minLevel{Handler: m.Handler.WithGroup(n), min: m.min}
}

// Loader is the read side of the store, scanned once at start.
type Loader interface {
	Scan(prefix []byte, fn func(key, value []byte) error) error
}

// Start loads every record from load (nil: start empty), then spawns the
// shard actors on system. Records that do not decode stop the start: a
// corrupt store is an operator's problem to look at, not to paper over.
func Start(system *actor.ActorSystem, load Loader, writes Enqueuer, opts Options) (*Core, error) {
	opts = opts.withDefaults()
	c := &Core{
		opts:      opts,
		system:    system,
		root:      system.Root,
		writes:    writes,
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	for range opts.Shards {
		c.states = append(c.states, shard.New(opts.Shard))
	}
	if err := c.load(load); err != nil {
		return nil, err
	}
	// Loading leaves garbage (scan buffers, decoded strings that were
	// interned); give it back now rather than carry it as resident memory.
	debug.FreeOSMemory()
	for i := range opts.Shards {
		depth := &mailboxDepth{}
		st := c.states[i]
		props := actor.PropsFromProducer(func() actor.Actor {
			// A restart after a panic gets a new actor value but the same
			// state: the shard's memory is not lost with the actor.
			return &shardActor{core: c, state: st, writes: c.writes, index: i}
		}, actor.WithMailbox(inlineMailboxProducer(depth)))
		pid, err := c.root.SpawnNamed(props, fmt.Sprintf("shard-%d", i))
		if err != nil {
			return nil, fmt.Errorf("actors: spawn shard %d: %w", i, err)
		}
		c.pids = append(c.pids, pid)
		c.depths = append(c.depths, depth)
	}
	go c.sweepLoop()
	return c, nil
}

func (c *Core) load(l Loader) error {
	var nextStored shard.UserID
	if l != nil {
		var err error
		if nextStored, err = c.loadParallel(l); err != nil {
			return err
		}
	}
	next := max(nextStored, shard.FirstUserID)
	for _, s := range c.states {
		next = max(next, s.MaxUserID()+1)
	}
	c.nextUserID.Store(int64(next))
	// An email claim is written before its user record; a crash between the
	// two leaves a claim with no user. Drop those so the address can sign up.
	var fix []persist.Op
	for _, s := range c.states {
		var orphans []string
		var owners []shard.UserID
		s.EmailEntries(func(email string, id shard.UserID) {
			if _, err := c.stateOf(shard.UserRoute(id)).GetUser(id); err != nil {
				orphans = append(orphans, email)
				owners = append(owners, id)
			}
		})
		for i, e := range orphans {
			fix = append(fix, toOps(s.ReleaseEmail(e, owners[i]))...)
		}
	}
	// A social login links the identity to a new id before it stores the
	// user (actors/accounts_social.go); drop links whose user is gone, so
	// that a reused id never inherits them.
	for _, s := range c.states {
		var gone []shard.Identity
		s.IdentityEntries(func(id shard.Identity) {
			if _, err := c.stateOf(shard.UserRoute(id.UserID)).GetUser(id.UserID); err != nil {
				gone = append(gone, id)
			}
		})
		for _, id := range gone {
			fix = append(fix, toOps(s.DropIdentity(id.Provider, id.Subject))...)
		}
	}
	if len(fix) > 0 && c.writes != nil {
		c.opts.Logger.Warn("dropping email claims and identities without a user", "count", len(fix))
		if err := c.writes.Enqueue(fix...).Wait(); err != nil {
			return fmt.Errorf("actors: drop orphan email claims: %w", err)
		}
	}
	return nil
}

func (c *Core) stateOf(r shard.Route) *shard.Shard {
	return c.states[uint64(r)%uint64(len(c.states))]
}

func (c *Core) pidOf(r shard.Route) (*actor.PID, int) {
	i := int(uint64(r) % uint64(len(c.pids)))
	return c.pids[i], i
}

// NumShards reports the number of shards.
func (c *Core) NumShards() int {
	if c.cl != nil {
		return c.cl.n
	}
	return len(c.pids)
}

// MailboxDepths reports the number of messages waiting in each shard's
// mailbox.
func (c *Core) MailboxDepths() []int64 {
	if c.cl != nil {
		// One count for every grain of this node (their mailboxes share
		// it): what waits here, whichever shard it is for.
		return []int64{c.cl.depth.n.Load()}
	}
	out := make([]int64, len(c.depths))
	for i, d := range c.depths {
		out[i] = d.n.Load()
	}
	return out
}

// NextUserID hands out a new user id. Ids are never reused: on a single node
// the counter is persisted with every user created (see
// [shard.EncodeNextUserID]) and recomputed from the users at start; in a
// cluster, ids come in blocks reserved in the shared store.
func (c *Core) NextUserID() (shard.UserID, error) {
	if c.cl != nil {
		return c.cl.ids.take()
	}
	return shard.UserID(c.nextUserID.Add(1) - 1), nil
}

// PeekNextUserID returns the id the next call to NextUserID will hand out on
// a single node.
func (c *Core) PeekNextUserID() shard.UserID { return shard.UserID(c.nextUserID.Load()) }

// Now returns the core's clock.
func (c *Core) Now() time.Time { return c.opts.Now() }

// Stop stops the sweeper and the shard actors. Replies already queued are
// still delivered.
func (c *Core) Stop() {
	c.stopOnce.Do(func() {
		c.stopped.Store(true)
		close(c.stopSweep)
		<-c.sweepDone
		if c.cl != nil {
			c.cl.stop()
			return
		}
		for _, pid := range c.pids {
			c.root.StopFuture(pid).Wait()
		}
	})
}

func (c *Core) sweepLoop() {
	defer close(c.sweepDone)
	t := time.NewTicker(c.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stopSweep:
			return
		case <-t.C:
			pids := c.pids
			if c.cl != nil {
				pids = c.cl.localPIDs()
			}
			for _, pid := range pids {
				c.root.Send(pid, sweepTick{})
			}
		}
	}
}

// mailboxDepth counts messages posted but not yet received.
type mailboxDepth struct{ n atomic.Int64 }

func (d *mailboxDepth) MailboxStarted()     {}
func (d *mailboxDepth) MessagePosted(any)   { d.n.Add(1) }
func (d *mailboxDepth) MessageReceived(any) { d.n.Add(-1) }
func (d *mailboxDepth) MailboxEmpty()       {}
func toOps(muts []shard.Mutation) []persist.Op {
	if len(muts) == 0 {
		return nil
	}
	ops := make([]persist.Op, len(muts))
	for i, m := range muts {
		ops[i] = persist.Op{Key: m.Key, Value: m.Value}
	}
	return ops
}

// loadParallel scans the store once and hands the records, in batches, to
// one goroutine per group of shards, which decode and insert them: a restart
// loads millions of sessions, and decoding is most of the work.
func (c *Core) loadParallel(l Loader) (shard.UserID, error) {
	workers := max(1, min(runtime.GOMAXPROCS(0), len(c.states)))
	type rec struct{ key, value []byte }
	const batchLen = 512
	chans := make([]chan []rec, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		chans[w] = make(chan []rec, 4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range chans[w] {
				if errs[w] != nil {
					continue // drain
				}
				for _, r := range batch {
					route, _, _ := shard.RouteOfKey(r.key)
					if err := c.stateOf(route).Load(r.key, r.value); err != nil {
						errs[w] = fmt.Errorf("actors: load %q: %w", r.key[:min(len(r.key), 2)], err)
						break
					}
				}
			}
		}()
	}
	batches := make([][]rec, workers)
	var nextStored shard.UserID
	n := 0
	err := l.Scan(nil, func(k, v []byte) error {
		n++
		r, ok, err := shard.RouteOfKey(k)
		if err != nil {
			return fmt.Errorf("actors: load record %d: %w", n, err)
		}
		if !ok {
			if string(k) == string(shard.MetaNextUserID) {
				id, err := shard.DecodeNextUserID(v)
				if err != nil {
					return err
				}
				nextStored = id
			}
			return nil
		}
		// Every record of one shard goes to the same worker, in key order,
		// so a shard is only ever touched by one goroutine.
		w := int(uint64(r) % uint64(len(c.states)) % uint64(workers))
		key, value := cloneRecord(k, v) // the scan's slices are reused
		batches[w] = append(batches[w], rec{key, value})
		if len(batches[w]) == batchLen {
			chans[w] <- batches[w]
			batches[w] = make([]rec, 0, batchLen)
		}
		return nil
	})
	for w := range workers {
		if len(batches[w]) > 0 {
			chans[w] <- batches[w]
		}
		close(chans[w])
	}
	wg.Wait()
	if err != nil {
		return 0, err
	}
	for _, e := range errs {
		if e != nil {
			return 0, e
		}
	}
	return nextStored, nil
}

// cloneRecord copies a record a store scan handed out (its slices are
// reused by the next one) into one allocation.
func cloneRecord(k, v []byte) (key, value []byte) {
	buf := make([]byte, len(k)+len(v))
	copy(buf, k)
	copy(buf[len(k):], v)
	return buf[:len(k):len(k)], buf[len(k):]
}
