package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// shardActor owns one shard's state.
type shardActor struct {
	// Shared, static.
	core *Core
	// Owned by Receive. Protoactor delivers one message at a time, so no
	// locks are needed.
	state *shard.Shard
}

// reply is what a shard sends back on a message's channel.
type reply struct {
	val    any
	err    error
	ticket *persist.Ticket // released when the change is durable; nil if none
}

// doOp runs fn on the shard.
type doOp struct {
	fn  func(s *shard.Shard, now time.Time) (any, []shard.Mutation, error)
	out chan reply // buffered, size 1; the shard sends exactly once
}

// sweepTick asks a shard to delete expired records.
type sweepTick struct{}

func (a *shardActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *opMsg:
		m.out <- a.runOp(m.op)
	case *doOp:
		m.out <- a.run(m.fn)
	case *checkSession:
		a.checkSession(m)
	case *fillSessionUser:
		a.fillSessionUser(m)
	case *rateMsg:
		a.rateCheck(m)
	case *rateRefund:
		a.state.RateRefund(m.key, m.rate)
	case sweepTick:
		muts := a.state.Sweep(a.core.opts.Now(), a.core.opts.SweepLimit)
		a.enqueue(muts)
	}
}

// run calls fn and enqueues its mutations. A panic in fn is turned into an
// error reply rather than an actor restart, so the caller is answered.
func (a *shardActor) run(fn func(s *shard.Shard, now time.Time) (any, []shard.Mutation, error)) (r reply) {
	defer func() {
		if p := recover(); p != nil {
			a.core.opts.Logger.Error("shard operation panicked", "panic", fmt.Sprint(p))
			r = reply{err: ErrShardBug}
		}
	}()
	v, muts, err := fn(a.state, a.core.opts.Now())
	return reply{val: v, err: err, ticket: a.enqueue(muts)}
}

func (a *shardActor) enqueue(muts []shard.Mutation) *persist.Ticket {
	if len(muts) == 0 || a.core.writes == nil {
		return nil
	}
	return a.core.writes.Enqueue(toOps(muts)...)
}
