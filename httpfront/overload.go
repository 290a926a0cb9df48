package httpfront

import (
	"sync/atomic"
	"time"
)

// Admission control: the one place, in the pipeline before any handler
// runs, that refuses a request the server cannot serve well right now.
//
//   - A request that may change durable state is refused with 503 while the
//     store refuses writes: while the disk is full (until the store finds
//     space again by itself), and after a failed WAL write or sync (sticky
//     until a restart: see README.md, "Reliability"). Checking before the
//     handler means a refused write changes no memory either, so what the
//     server answers stays what a restart will load. Reads keep being
//     answered from memory.
//   - Every request is refused with 503 while a shard's mailbox holds more
//     than MaxShardQueue messages, so overload is answered at once instead of
//     queueing without bound (the hasher pool refuses on its own when full).

// readOnlyRequests are the request types that change no durable state; all
// others count as writes. Unknown to this list means "write", the safe
// default: a new read-only request type should be added here, or it is
// refused while the disk is failing.
var readOnlyRequests = map[string]bool{
	"session-exists":          true,
	"user-lookup-email":       true,
	"user-lookup-match":       true,
	"user-list":               true,
	"user-check-access":       true,
	"user-check-limit":        true,
	"user-validatepass":       true,
	"apikey-verify":           true,
	"apikey-verify-nosession": true,
}

// sampleEvery is how often the mailbox depths are sampled; between samples
// the last verdict holds. Sampling reads one atomic per shard.
const sampleEvery = time.Millisecond

type overloadExt struct {
	maxDepth   int64        // <= 0: no bound
	nextSample atomic.Int64 // unix nanos of the next sample
	shedding   atomic.Bool  // a shard's mailbox was over maxDepth at the last sample
	warned     atomic.Bool  // the store failure in progress was logged
}

func init() {
	extInits = append(extInits, func(s *Server) error {
		s.ext.overload.maxDepth = int64(s.opts.MaxShardQueue)
		return nil
	})
}

// admit decides whether a request of type ep may run. It returns errBusy
// under overload and errUnwritable for a write while the store is failing;
// statusOf maps both to 503.
func (s *Server) admit(ep *endpoint, now time.Time) error {
	if s.overloaded(now) {
		return errBusy
	}
	if s.deps.Healthy != nil && !readOnlyRequests[ep.name] {
		if err := s.deps.Healthy(); err != nil {
			if !s.ext.overload.warned.Swap(true) {
				s.log.Error("store refuses writes; answering writes with 503", "err", err)
			}
			return errUnwritable
		}
		if s.ext.overload.warned.Load() && s.ext.overload.warned.Swap(false) {
			s.log.Warn("store accepts writes again")
		}
	}
	return nil
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
