package httpfront

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/passhash"
)

// Admission control: the one place, in the pipeline before any handler
// runs, that refuses a request the server cannot serve well right now.
//
//   - A request that may change durable state is refused with 503 while the
//     store refuses writes: while the disk is full (until the store finds
//     space again by itself), and after a failed WAL write or sync (sticky
//     until a restart: see docs/reliability.md, "Disk faults"). Checking
//     before the handler means a refused write changes no memory either, so
//     what the server answers stays what a restart will load. Reads keep
//     being answered from memory. Which types are reads is the readOnly
//     column of requestTable.
//   - Every request is refused with 503 while a shard's mailbox holds more
//     than MaxShardQueue messages, so overload is answered at once instead of
//     queueing without bound (the hasher pool refuses on its own when full).
//   - A request that runs Argon2 is refused with 503 while the hasher pool
//     is full, before its handler's shard hops, back-off bookkeeping and
//     timers: under a flood of password requests, refusing must cost little,
//     or the front takes the CPU the hash worker needs. And one source (the
//     end user's client_ipaddr, else the connection's address) may have at
//     most a fair share of the pool's slots in such requests at once, so a
//     flood from one source cannot take every slot from the others.

// sampleEvery is how often the mailbox depths are sampled; between samples
// the last verdict holds. Sampling reads one atomic per shard.
const sampleEvery = time.Millisecond

type overloadExt struct {
	maxDepth   int64        // <= 0: no bound
	nextSample atomic.Int64 // unix nanos of the next sample
	shedding   atomic.Bool  // a shard's mailbox was over maxDepth at the last sample
	warned     atomic.Bool  // the store failure in progress was logged
	hasher     hasherShare
}

// hasherShare counts, per source, the requests of hashing types between
// admission and the end of their handler. That span includes the handler's
// other work and a failed login's back-off delay, so it bounds a source's
// hold on the pool's slots from above: a source in its back-off waits
// cannot start more password checks either.
type hasherShare struct {
	max  int // per source; 0: no hasher, no bound
	mu   sync.Mutex
	held map[string]int // guarded by mu; no zero values
}

// initOverload sets the mailbox bound and the hasher's fair share.
func (s *Server) initOverload() {
	s.ext.overload.maxDepth = int64(s.opts.MaxShardQueue)
	if h := s.deps.Hasher; h != nil {
		// A quarter of the pool: four flooding sources leave room for
		// the others, and a source alone still gets two workers' worth
		// with the defaults (2 workers, 8 queued).
		s.ext.overload.hasher.max = max(1, h.Capacity()/4)
		s.ext.overload.hasher.held = make(map[string]int)
	}
}

func noRelease() {}

// admit decides whether a request of type ep may run. It returns errBusy
// under overload, errUnwritable for a write while the store is failing, and
// passhash.ErrHasherBusy for a type that runs Argon2 (ep.hashes) while the
// pool is full or its source holds its share; statusOf maps them all to 503.
// A type not marked ep.readOnly counts as a write. When it admits, the
// caller must call release once the handler has returned.
func (s *Server) admit(ctx *fasthttp.RequestCtx, ep *endpoint, c *call) (release func(), err error) {
	if s.overloaded(c.now) {
		return nil, errBusy
	}
	if s.deps.Healthy != nil && !ep.readOnly {
		if err := s.deps.Healthy(); err != nil {
			if !s.ext.overload.warned.Swap(true) {
				s.log.Error("store refuses writes; answering writes with 503", "err", err)
			}
			return nil, errUnwritable
		}
		if s.ext.overload.warned.Load() && s.ext.overload.warned.Swap(false) {
			s.log.Warn("store accepts writes again")
		}
	}
	if !ep.hashes || s.ext.overload.hasher.max == 0 {
		return noRelease, nil
	}
	// Racy, and meant to be: a job admitted meanwhile is refused by Run
	// itself. This only saves a doomed request its handler's work.
	if h := s.deps.Hasher; h.InFlight() >= h.Capacity() {
		return nil, passhash.ErrHasherBusy
	}
	source := c.client()
	if source == "" {
		source = ctx.RemoteIP().String()
	}
	return s.ext.overload.hasher.take(source)
}

// take counts one more request of source, or refuses it with
// passhash.ErrHasherBusy if source holds its share already.
func (g *hasherShare) take(source string) (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held[source] >= g.max {
		return nil, passhash.ErrHasherBusy
	}
	g.held[source]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.held[source]--; g.held[source] <= 0 {
			delete(g.held, source)
		}
	}, nil
}

// overloaded reports whether some shard's mailbox was deeper than the bound
// at the last sample, taking a new sample when the last is older than
// sampleEvery. One caller takes each sample; the others use the verdict.
func (s *Server) overloaded(now time.Time) bool {
	o := &s.ext.overload
	if o.maxDepth <= 0 {
		return false
	}
	n := now.UnixNano()
	next := o.nextSample.Load()
	if n >= next && o.nextSample.CompareAndSwap(next, n+int64(sampleEvery)) {
		over := false
		for _, d := range s.deps.Core.MailboxDepths() {
			if d > o.maxDepth {
				over = true
				break
			}
		}
		o.shedding.Store(over)
	}
	return o.shedding.Load()
}
