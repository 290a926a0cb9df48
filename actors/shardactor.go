package actors

import (
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
	// writes takes the shard's mutation records: the core's writer, or
	// in cluster mode the grain's, fenced by its lease.
	writes Enqueuer
	// changes are the watched users changed by the message being handled
	// (userview.go), reused.
	changes []shard.UserChange
	// index is the shard's number (single node), which views name their
	// watchers by.
	index int
}

// reply is what a shard sends back on a message's channel.
type reply struct {
	val    any
	err    error
	ticket *persist.Ticket // released when the change is durable; nil if none
}

// holdMsg occupies the shard until release is closed ([HoldShard]).
type holdMsg struct {
	held    chan struct{}
	release <-chan struct{}
}

// sweepTick asks a shard to delete expired records.
type sweepTick struct{}

func (a *shardActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *opMsg:
		a.handleOp(m)
	case *holdMsg:
		close(m.held)
		<-m.release
	case *rateMsg:
		a.rateCheck(m)
	case *rateRefund:
		a.state.RateRefund(m.key, m.rate)
	case sweepTick:
		muts := a.state.Sweep(a.core.opts.Now(), a.core.opts.SweepLimit)
		a.enqueue(muts)
		if a.noteChanges(muts); len(a.changes) > 0 {
			a.pushChanges(nil, reply{})
		}
		a.dropIdleViews()
	case *userInstall:
		a.state.InstallUserView(m.id, m.user, m.epoch)
	case *userPush:
		a.state.PushUserView(m.id, m.user)
	case *userUnwatch:
		a.state.UnwatchUser(m.id, m.watcher)
	}
}

func (a *shardActor) enqueue(muts []shard.Mutation) *persist.Ticket {
	if len(muts) == 0 || a.writes == nil {
		return nil
	}
	return a.writes.Enqueue(toOps(muts)...)
}
