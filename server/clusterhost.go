package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
)

// Shard leases in cluster mode (docs/operations.md, "Running several
// nodes"). A node holds each shard it serves under a lease in PostgreSQL,
// renewed every leaseRenew for leaseTime. It counts its lease from the
// moment it sent the renewal, on its own monotonic clock, so it stops
// serving no later than PostgreSQL's record of the lease runs out; a node
// taking the shard waits until then (measured on PostgreSQL's clock). So a
// paused or cut-off node never answers from its memory once another node
// could have changed the shard.
const (
	// leaseTime is how long a lease lasts past its last renewal: the
	// longest a new owner waits for a node that vanished.
	leaseTime = 3 * time.Second
	// leaseRenew is how often leases are renewed: three tries within a
	// lease, and well within the membership's TTL (3 s), so a node that is
	// still in the member list always holds its leases.
	leaseRenew = time.Second
)

// shardHost hands this node's grains their shards ([actors.ShardHost]) and
// renews the leases of those it holds.
type shardHost struct {
	st    *pgstore.Store
	wopts persist.WriterOptions
	log   *slog.Logger
	base  time.Time // monotonic origin of the deadlines

	mu   sync.Mutex
	held map[int]*shardLease

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newShardHost(st *pgstore.Store, wopts persist.WriterOptions, lg *slog.Logger) *shardHost {
	h := &shardHost{st: st, wopts: wopts, log: lg, base: time.Now(), held: map[int]*shardLease{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go h.renewLoop()
	return h
}

// mono is the host's monotonic clock: it runs on while the process is
// stopped (SIGSTOP), which is what a lease needs.
func (h *shardHost) mono() int64 { return int64(time.Since(h.base)) }

// Take implements actors.ShardHost.
func (h *shardHost) Take(ctx context.Context, i int) (actors.ShardLease, error) {
	start := h.mono()
	claim, err := h.st.TakeShard(ctx, i, leaseTime)
	if err != nil {
		return nil, fmt.Errorf("server: take shard %d: %w", i, err)
	}
	if claim.Wait > 0 {
		h.log.Info("cluster: waiting out the former owner's lease on a shard", "shard", i, "wait", claim.Wait.Round(time.Millisecond).String())
		t := time.NewTimer(claim.Wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			// The grain stopped (the shard moved on while it was
			// being taken). The claim already raised the epoch and
			// set a lease that starts where the former owner's ends:
			// give it back once that is over (before, the former
			// owner may still serve), so the next owner need not wait
			// out a lease nobody uses.
			go func() {
				<-t.C
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := h.st.ReleaseShard(rctx, claim); err != nil {
					h.log.Debug("cluster: giving back a shard not served", "shard", i, "err", err)
				}
			}()
			return nil, fmt.Errorf("server: take shard %d: %w", i, ctx.Err())
		}
	}
	l := &shardLease{h: h, claim: claim, lost: make(chan struct{})}
	l.deadline.Store(start + int64(claim.Wait+leaseTime))
	l.w = h.st.ShardWriter(claim, h.wopts)
	h.mu.Lock()
	if old := h.held[i]; old != nil {
		old.lose() // taken again: the older grain of ours is past
	}
	h.held[i] = l
	h.mu.Unlock()
	return l, nil
}

// renewLoop renews every held lease each leaseRenew, and gives up those
// another node took, whose writes were fenced, or that ran out.
func (h *shardHost) renewLoop() {
	defer close(h.done)
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		leases := make([]*shardLease, 0, len(h.held))
		claims := make([]pgstore.ShardClaim, 0, len(h.held))
		for _, l := range h.held {
			leases = append(leases, l)
			claims = append(claims, l.claim)
		}
		h.mu.Unlock()
		if len(leases) == 0 {
			continue
		}
		start := h.mono()
		ctx, cancel := context.WithTimeout(context.Background(), leaseRenew)
		kept, err := h.st.RenewLeases(ctx, claims, leaseTime)
		cancel()
		if err != nil {
			h.log.Warn("cluster: cannot renew the shard leases; this node stops serving them when they run out", "shards", len(leases), "err", err)
		}
		now := h.mono()
		for k, l := range leases {
			switch {
			case err == nil && !kept[k]:
				h.log.Warn("cluster: another node took a shard of this one", "shard", l.claim.Shard)
				l.lose()
			case l.w.Err() != nil && errors.Is(l.w.Err(), pgstore.ErrFenced):
				l.lose()
			case err == nil:
				l.deadline.Store(start + int64(leaseTime))
			case now >= l.deadline.Load():
				l.lose()
			}
		}
	}
}

// close stops renewing; the grains released their leases before.
func (h *shardHost) close() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}

// shardLease is a held shard ([actors.ShardLease]).
type shardLease struct {
	h        *shardHost
	claim    pgstore.ShardClaim
	w        *persist.Writer
	deadline atomic.Int64 // on h.mono
	lost     chan struct{}
	lostOnce sync.Once
	released sync.Once
}

func (l *shardLease) Load(fn func(key, value []byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return l.h.st.LoadShard(ctx, l.claim.Shard, fn)
}

func (l *shardLease) Writes() actors.Enqueuer { return l.w }

func (l *shardLease) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	return l.h.mono() < l.deadline.Load()
}

func (l *shardLease) Lost() <-chan struct{} { return l.lost }

func (l *shardLease) lose() {
	l.lostOnce.Do(func() { close(l.lost) })
	l.h.mu.Lock()
	if l.h.held[l.claim.Shard] == l {
		delete(l.h.held, l.claim.Shard)
	}
	l.h.mu.Unlock()
}

// Release commits what the grain queued, then hands the shard over at
// once (a lease already lost is left to run out: another node has it).
func (l *shardLease) Release() {
	l.released.Do(func() {
		wasLost := !l.Valid()
		l.lose()
		if err := l.w.Close(); err != nil && !errors.Is(err, pgstore.ErrFenced) {
			l.h.log.Warn("cluster: committing a released shard's last writes", "shard", l.claim.Shard, "err", err)
		}
		if wasLost {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := l.h.st.ReleaseShard(ctx, l.claim); err != nil {
			l.h.log.Warn("cluster: releasing a shard; the next owner waits out its lease", "shard", l.claim.Shard, "err", err)
		}
	})
}
