package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/crypto/argon2"
)

// Errors returned by [Hasher.Run]. Only these fail a whole Run; a failure of one
// operation is in its [HashResult.Err].
var (
	// ErrHasherBusy means every worker is busy and the queue is full. It is
	// returned at once; the caller should answer "busy, retry later".
	ErrHasherBusy = errors.New("passhash: hasher pool busy")
	// ErrHasherStopped means [Hasher.Stop] has been called.
	ErrHasherStopped = errors.New("passhash: hasher pool stopped")
	// ErrHasherTimeout means the job was admitted but no reply came within
	// [HasherOptions.Timeout]. The job may still run.
	ErrHasherTimeout = errors.New("passhash: hasher pool timeout")
	// ErrHasherFault means an operation could not be computed: the hash
	// worker process died, stalled or answered nonsense, or the operation
	// panicked. It says nothing about the password, so a caller must answer
	// "busy, retry later", never "wrong password".
	ErrHasherFault = errors.New("passhash: hasher fault")
)

const (
	// hashDefaultTimeout bounds a Run's wait. With the default queue a job
	// waits behind at most 4 others of up to 3 operations each, about 1.5 s
	// with default parameters on 2 cores; 10 s only fires if something is wrong.
	hashDefaultTimeout = 10 * time.Second

	// hashMaxOpsPerRun bounds one job, so that QueueLen bounds work and not just
	// jobs. The most a request needs is 3 (user-changepass: 2 verifies and a
	// hash; docs/security.md, "Passwords and hashing").
	hashMaxOpsPerRun = 4
)

// HasherOptions configure [NewHasher]. A zero field means the default.
type HasherOptions struct {
	// Workers is the number of Argon2 workers, which is the number of hashes
	// computed at once. Default runtime.NumCPU(). Each worker holds up to
	// Params.MemoryKiB while hashing and up to 256 MiB while verifying a stored
	// string, so Workers × memory must fit the server's memory budget.
	Workers int
	// QueueLen is how many admitted jobs may wait for a worker. Default
	// 4 × Workers. Beyond Workers + QueueLen, Run refuses with ErrHasherBusy.
	QueueLen int
	// Params are the parameters of new hashes; each zero field takes the
	// field of DefaultHashParams.
	Params HashParams
	// Timeout bounds how long Run waits for a reply. Default 10 s.
	Timeout time.Duration

	// Process, when set, is the command of an isolated hash worker process
	// (one that calls [ServeHashWorker] on its stdin and stdout); the
	// hashes are computed there (see hashproc.go). Nil computes them in
	// this process.
	Process []string
	// Nice, from 0 to 19, lowers the worker process's priority below this
	// process's by that much: 0 splits the CPU evenly between logins and
	// the front under load, 19 gives logins only what the front leaves.
	Nice int

	// testHook, if set, is called by a worker before each operation.
	testHook func(HashOp)
}

// HashOp is one Argon2 operation of a [Hasher.Run].
//
// REQUIRES: the strings must not alias a buffer that is reused after Run
// returns (such as a fasthttp request body): a job that timed out still runs.
type HashOp struct {
	// Verify selects verification of Password against PHC; if false, Password
	// is hashed with the pool's current parameters and PHC is ignored.
	Verify   bool
	PHC      string
	Password string // cut to its first 256 characters by TruncatePassword
}

// HashResult is the outcome of one [HashOp].
type HashResult struct {
	// OK is true if the password matched (verify) or was hashed (hash).
	OK bool
	// PHC is the new PHC string of a hash operation.
	PHC string
	// NeedsRehash is true if a verification succeeded and the stored string's
	// parameters differ from the pool's (see PHC.NeedsRehash). The caller
	// should then hash the password and store the new string.
	NeedsRehash bool
	// Err is set only when a verification's stored string is not one we can
	// verify (ErrPHCMalformed, ErrPHCOutOfBounds, ErrPHCUnsupported): such a
	// string never matches. Any other failure fails the whole [Hasher.Run]
	// with ErrHasherFault. A wrong password is OK false with Err nil.
	Err error
}

// Hasher is a fixed pool of Argon2 worker actors with a bounded queue.
// Its methods are safe for concurrent use. [Hasher.Run] blocks its caller, so
// call it from an HTTP goroutine, never from a shard actor's Receive.
//
// Invariants:
//
//  1. inflight counts jobs admitted and not yet finished by a worker, and
//     never exceeds capacity: Run increments it only by a compare-and-swap
//     below capacity, and the worker decrements it when the job is done.
//  2. load[i] counts jobs sent to worker i and not yet finished by it. Run
//     increments it only by a compare-and-swap from a value that was the
//     smallest of its scan, so a job goes to a busy worker only if no worker
//     looked idle.
//  3. Every admitted job gets exactly one reply. Run sends a job only while
//     holding mu for reading with stopped false, so every job is in a mailbox
//     before Stop's poison pills, which the workers take after it; a worker
//     recovers panics from each operation and always replies.
//
// Why not protoactor's tools: an actor.Bounded mailbox makes a sender spin
// while it is full, and the round-robin pool sends to busy workers while
// others are idle, so admission and routing are done here with atomics.
// A reply channel in the message costs about 1.5 µs and 1 allocation, where
// RequestFuture costs about 2.4 µs and 12.
type Hasher struct {
	// Static after NewHasher.
	root     *actor.RootContext
	pids     []*actor.PID
	params   HashParams
	dummyPHC string
	capacity int32 // Workers + QueueLen
	timeout  time.Duration
	testHook func(HashOp)
	proc     *hashProc // nil: compute in this process

	// Shared: atomics.
	inflight atomic.Int32   // invariant 1
	load     []atomic.Int32 // invariant 2; len(load) == len(pids)
	stats    hasherStats

	mu       sync.RWMutex
	stopped  bool // guarded by mu
	stopOnce sync.Once
}

// hashJob is the message a worker receives. Sent as a pointer, never reused.
type hashJob struct {
	ops [hashMaxOpsPerRun]HashOp // a copy, so the caller may reuse its slice
	n   int
	// reply is buffered (1) so the worker never blocks on a caller that timed
	// out. The worker sends exactly once; nobody closes it.
	reply chan []HashResult
}

// hashWorker is one worker actor. It has no state of its own: the counters it
// decrements are the pool's.
type hashWorker struct {
	h   *Hasher
	idx int // into h.pids and h.load
}

// NewHasher starts the pool's workers on system and computes [Hasher.DummyPHC]
// (one hash, so it takes as long as one hash with opts.Params).
// It panics if opts are negative or the parameters are outside the limits
// accepted from stored strings (the phc* constants).
func NewHasher(system *actor.ActorSystem, opts HasherOptions) *Hasher {
	if opts.Workers < 0 || opts.QueueLen < 0 || opts.Timeout < 0 {
		panic(fmt.Sprintf("passhash: NewHasher: negative option in %+v", opts))
	}
	if opts.Workers == 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = 4 * opts.Workers
	}
	if opts.Timeout == 0 {
		opts.Timeout = hashDefaultTimeout
	}
	params := opts.Params.withDefaults()
	if err := params.check(); err != nil {
		panic(fmt.Sprintf("passhash: NewHasher: params %+v: %v", params, err))
	}
	// The dummy hash is of a random password nobody knows, so no password
	// verifies against it.
	dummy, err := hashPassword(params, rand.Text(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("passhash: NewHasher: dummy hash: %v", err))
	}
	h := &Hasher{
		root:     system.Root,
		pids:     make([]*actor.PID, opts.Workers),
		params:   params,
		dummyPHC: dummy,
		capacity: int32(opts.Workers + opts.QueueLen),
		timeout:  opts.Timeout,
		testHook: opts.testHook,
		load:     make([]atomic.Int32, opts.Workers),
	}
	if len(opts.Process) > 0 {
		h.proc = newHashProc(opts.Process, opts.Nice, 2*opts.Timeout)
	}
	for i := range h.pids {
		props := actor.PropsFromProducer(func() actor.Actor { return &hashWorker{h: h, idx: i} })
		h.pids[i] = system.Root.SpawnPrefix(props, "hasher")
	}
	return h
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() HashParams { return h.params }

// DummyPHC returns the PHC string of a random password nobody knows, made
// with the pool's parameters at start. Verify against it where no user was
// found, so that the request costs as many verifications as when one was
// (docs/security.md, "Passwords and hashing"). It never verifies.
func (h *Hasher) DummyPHC() string { return h.dummyPHC }

// Capacity returns the most jobs admitted at once: Workers + QueueLen.
func (h *Hasher) Capacity() int { return int(h.capacity) }

// InFlight returns how many admitted jobs are not yet finished by a worker
// (a job whose caller timed out still counts). It is a snapshot.
func (h *Hasher) InFlight() int { return int(h.inflight.Load()) }

// QueueDepth returns how many admitted jobs are waiting for a busy worker.
// It is a snapshot, for metrics.
func (h *Hasher) QueueDepth() int {
	d := 0
	for i := range h.load {
		if n := h.load[i].Load(); n > 1 {
			d += int(n - 1)
		}
	}
	return d
}

// Run performs ops in order on one worker and returns one result per op.
// The list is admitted or refused as a unit, so a login's dummy and real
// verifications either both run or neither does.
//
// Run returns an error only if the job did not run to completion for the
// caller: [ErrHasherBusy] at once if the pool is full, [ErrHasherStopped],
// [ErrHasherTimeout], an error wrapping [ErrHasherFault] if any operation
// failed for a reason other than its stored string (see [HashResult.Err]),
// or an error for more than 4 ops (a programming error). A fault is never
// turned into a non-match: nothing was learnt about the password.
// Run with no ops returns nil, nil.
func (h *Hasher) Run(ops ...HashOp) ([]HashResult, error) {
	if len(ops) > hashMaxOpsPerRun {
		return nil, fmt.Errorf("passhash: hasher run: %d ops, max %d", len(ops), hashMaxOpsPerRun)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	job := &hashJob{n: len(ops), reply: make(chan []HashResult, 1)}
	copy(job.ops[:], ops)

	h.mu.RLock()
	if h.stopped {
		h.mu.RUnlock()
		return nil, ErrHasherStopped
	}
	if !h.admit() {
		h.mu.RUnlock()
		h.stats.refused.Add(1)
		return nil, ErrHasherBusy
	}
	h.root.Send(h.pids[h.pick()], job) // unbounded mailbox: does not block
	h.mu.RUnlock()

	t := time.NewTimer(h.timeout)
	defer t.Stop()
	select {
	case res := <-job.reply:
		for i := range res {
			if err := checkResult(job.ops[i], res[i]); err != nil {
				return nil, fmt.Errorf("%w: op %d of %d: %w", ErrHasherFault, i+1, len(res), err)
			}
		}
		return res, nil
	case <-t.C:
		return nil, ErrHasherTimeout
	}
}

// checkResult returns why res is not a genuine outcome of op, or nil. Only a
// verification's stored-string error is an outcome (the string never
// matches); anything else, including a hash without a valid PHC string (a
// worker process that answered nonsense), is a fault.
func checkResult(op HashOp, res HashResult) error {
	if res.Err != nil {
		if op.Verify && isStoredHashError(res.Err) {
			return nil
		}
		return res.Err
	}
	if !op.Verify {
		if !res.OK {
			return errors.New("hash not computed")
		}
		if _, err := ParsePHC(res.PHC); err != nil {
			return fmt.Errorf("hash result: %w", err)
		}
	}
	return nil
}

// isStoredHashError reports whether err says that a stored PHC string cannot
// be verified, rather than that the pool failed.
func isStoredHashError(err error) bool {
	return errors.Is(err, ErrPHCMalformed) || errors.Is(err, ErrPHCOutOfBounds) || errors.Is(err, ErrPHCUnsupported)
}

// admit takes one of the pool's capacity slots, or reports that there is none.
func (h *Hasher) admit() bool {
	for {
		n := h.inflight.Load()
		if n >= h.capacity {
			return false
		}
		if h.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// pick chooses the worker with the fewest jobs, counts the new job against it
// and returns its index. Workers are few, so a scan is cheapest.
func (h *Hasher) pick() int {
	for {
		best, bestN := 0, h.load[0].Load()
		for i := 1; i < len(h.load) && bestN > 0; i++ {
			if n := h.load[i].Load(); n < bestN {
				best, bestN = i, n
			}
		}
		if h.load[best].CompareAndSwap(bestN, bestN+1) {
			return best
		}
	}
}

// Stop refuses new jobs, lets the workers finish the jobs already admitted
// (each still gets its reply) and stops them. It waits up to 10 s per worker
// (protoactor's PoisonFuture timeout). Calls after the first wait for the
// first to finish and do nothing.
func (h *Hasher) Stop() {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		h.stopped = true
		h.mu.Unlock()
		futures := make([]*actor.Future, len(h.pids))
		for i, pid := range h.pids {
			futures[i] = h.root.PoisonFuture(pid)
		}
		for _, f := range futures {
			_ = f.Wait() // a timeout leaves the worker draining; nothing more to do
		}
		if h.proc != nil {
			h.proc.close()
		}
	})
}

// Receive runs a job's operations in order and replies. Protoactor delivers
// one message at a time, so a worker computes one hash at a time.
func (w *hashWorker) Receive(c actor.Context) {
	job, ok := c.Message().(*hashJob)
	if !ok {
		return // lifecycle messages
	}
	res := make([]HashResult, job.n)
	start := time.Now()
	for i := range res {
		res[i] = w.h.runOp(job.ops[i])
	}
	w.h.stats.record(job.n, time.Since(start))
	// Free the slot before replying, so a caller that runs again at once
	// finds it free.
	w.h.load[w.idx].Add(-1)
	w.h.inflight.Add(-1)
	job.reply <- res
}

// runOp performs one operation. A panic becomes the result's Err, so the job
// still gets its reply and the worker is not restarted.
func (h *Hasher) runOp(op HashOp) (res HashResult) {
	defer func() {
		if r := recover(); r != nil {
			res = HashResult{Err: fmt.Errorf("passhash: hasher op panicked: %v", r)}
		}
	}()
	if h.testHook != nil {
		h.testHook(op)
	}
	if h.proc != nil {
		return h.proc.run(op, h.params)
	}
	return computeOp(op, h.params)
}

// hashPassword hashes the first 256 characters of password with Argon2id,
// params and a salt read from rand, and returns the PHC string.
func hashPassword(params HashParams, password string, rand io.Reader) (string, error) {
	if err := params.check(); err != nil {
		return "", fmt.Errorf("passhash: hash password: %w", err)
	}
	salt := make([]byte, params.SaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("passhash: hash password: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(TruncatePassword(password)), salt,
		params.TimeCost, params.MemoryKiB, params.Threads, params.KeyLen)
	return PHC{
		Variant:   PHCArgon2id,
		Version:   PHCVersion13,
		MemoryKiB: params.MemoryKiB,
		TimeCost:  params.TimeCost,
		Threads:   params.Threads,
		Salt:      salt,
		Key:       key,
	}.String(), nil
}

// verifyPassword reports whether the first 256 characters of password match
// the PHC string phc, comparing in constant time, and returns the parsed
// string. err is set, and ok false, if phc cannot be parsed or computed
// (ErrPHCMalformed, ErrPHCOutOfBounds, ErrPHCUnsupported).
func verifyPassword(phc, password string) (ok bool, parsed PHC, err error) {
	p, err := ParsePHC(phc)
	if err != nil {
		return false, p, err
	}
	if err := p.computable(); err != nil {
		return false, p, err
	}
	pw := []byte(TruncatePassword(password))
	var key []byte
	switch p.Variant {
	case PHCArgon2id:
		key = argon2.IDKey(pw, p.Salt, p.TimeCost, p.MemoryKiB, p.Threads, uint32(len(p.Key)))
	case PHCArgon2i:
		key = argon2.Key(pw, p.Salt, p.TimeCost, p.MemoryKiB, p.Threads, uint32(len(p.Key)))
	}
	return subtle.ConstantTimeCompare(key, p.Key) == 1, p, nil
}

// HasherStats are the hasher pool's cumulative counters, for metrics.
type HasherStats struct {
	// Ops is the number of hash and verify operations run.
	Ops uint64
	// Nanos is the total time workers spent computing them.
	Nanos uint64
	// Refused is the number of Run calls refused because the pool was full.
	Refused uint64
}

// hasherStats holds the counters behind [Hasher.Stats]. Shared: atomics,
// written by the workers and by Run.
type hasherStats struct {
	ops, nanos, refused atomic.Uint64
}

func (s *hasherStats) record(ops int, d time.Duration) {
	s.ops.Add(uint64(ops))
	s.nanos.Add(uint64(d))
}

// Stats returns the pool's counters. It is a snapshot, safe from any
// goroutine.
func (h *Hasher) Stats() HasherStats {
	return HasherStats{Ops: h.stats.ops.Load(), Nanos: h.stats.nanos.Load(), Refused: h.stats.refused.Load()}
}
