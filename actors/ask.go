package actors

import (
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/persist"
)

var replyPool = sync.Pool{New: func() any { return make(chan reply, 1) }}

// timerPool keeps stopped timers, so a wait for a shard does not allocate one.
var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// wait receives the reply on ch, or gives up after the core's timeout. A
// channel is returned to the pool only when its reply was received: after a
// timeout the shard may still send on it.
func (c *Core) wait(ch chan reply) (reply, error) {
	return c.waitFor(ch, c.opts.AskTimeout)
}

// waitUntil is wait with a deadline rather than the core's timeout.
func (c *Core) waitUntil(ch chan reply, deadline time.Time) (reply, error) {
	return c.waitFor(ch, max(time.Until(deadline), time.Millisecond))
}

func (c *Core) waitFor(ch chan reply, d time.Duration) (reply, error) {
	// An idle shard runs a message on the sender's goroutine (mailbox.go),
	// so the reply is often there already: take it without a timer.
	select {
	case r := <-ch:
		replyPool.Put(ch)
		return r, nil
	default:
	}
	t := timerPool.Get().(*time.Timer)
	t.Reset(d)
	select {
	case r := <-ch:
		t.Stop()
		timerPool.Put(t)
		replyPool.Put(ch)
		return r, nil
	case <-t.C:
		timerPool.Put(t)
		return reply{}, ErrTimeout
	}
}

// Result is the outcome of an operation ([Ask]): the value it answered and
// the ticket of its mutations.
type Result[R any] struct {
	Value  R
	Ticket *persist.Ticket // nil when fn changed nothing durable
}

// Durable waits until the mutations of the operation are on disk.
func (r Result[R]) Durable() error {
	if r.Ticket == nil {
		return nil
	}
	return r.Ticket.Wait()
}

// HoldShard is for tests: it queues on shard i a message that occupies the
// shard's goroutine until release is closed, a stand-in for a shard stuck
// behind a slow step (no operation ever blocks), and returns a channel
// closed once the shard is held. Every message queued behind it waits.
func HoldShard(c *Core, i int, release <-chan struct{}) <-chan struct{} {
	held := make(chan struct{})
	// Posted from a goroutine of its own: an idle shard runs a message on
	// the posting goroutine, which would then be the one held.
	if c.cl != nil {
		go c.root.Send(c.cl.pid(i), &holdMsg{held: held, release: release})
		return held
	}
	go c.root.Send(c.pids[i], &holdMsg{held: held, release: release})
	return held
}

// WaitAll waits for the tickets of an [AskAll] and returns the first error.
func WaitAll[R any](rs []Result[R]) error {
	var first error
	for _, r := range rs {
		if err := r.Durable(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
