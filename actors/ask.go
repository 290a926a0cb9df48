package actors

import (
	"fmt"
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
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
	t := timerPool.Get().(*time.Timer)
	t.Reset(c.opts.AskTimeout)
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

// Result is the outcome of [Do]: the value fn returned and the ticket of its
// mutations.
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

// Do runs fn on the shard that owns route and returns what it returned. fn
// runs on the shard's goroutine: it may read and change s, must not block,
// and must not keep pointers into s. Its error is returned as is.
//
// Do and DoAll hand a closure to a shard, which no other node could run:
// they are for tests and benchmarks that set up or stall state. The server
// speaks to its shards in named operations ([Ask], ops.go).
func Do[R any](c *Core, route shard.Route, fn func(s *shard.Shard, now time.Time) (R, []shard.Mutation, error)) (Result[R], error) {
	if c.stopped.Load() {
		return Result[R]{}, ErrStopped
	}
	pid, _ := c.pidOf(route)
	ch := replyPool.Get().(chan reply)
	c.root.Send(pid, &doOp{
		fn: func(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
			return fn(s, now)
		},
		out: ch,
	})
	r, err := c.wait(ch)
	if err != nil {
		return Result[R]{}, err
	}
	res := Result[R]{Ticket: r.ticket}
	if r.val != nil {
		v, ok := r.val.(R)
		if !ok {
			return res, fmt.Errorf("actors: unexpected reply %T", r.val)
		}
		res.Value = v
	}
	return res, r.err
}

// DoAll runs fn on every shard concurrently and returns each shard's result
// in shard order, with the first error. It returns after every shard has
// answered, so a fan-out such as "delete all sessions of a user" is complete
// in memory when DoAll returns.
func DoAll[R any](c *Core, fn func(s *shard.Shard, now time.Time) (R, []shard.Mutation, error)) ([]Result[R], error) {
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	chans := make([]chan reply, len(c.pids))
	for i, pid := range c.pids {
		chans[i] = replyPool.Get().(chan reply)
		c.root.Send(pid, &doOp{
			fn: func(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
				return fn(s, now)
			},
			out: chans[i],
		})
	}
	out := make([]Result[R], len(c.pids))
	var first error
	for i, ch := range chans {
		r, err := c.wait(ch)
		if err == nil {
			err = r.err
			out[i].Ticket = r.ticket
			if v, ok := r.val.(R); ok {
				out[i].Value = v
			}
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

// WaitAll waits for the tickets of a DoAll and returns the first error.
func WaitAll[R any](rs []Result[R]) error {
	var first error
	for _, r := range rs {
		if err := r.Durable(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
