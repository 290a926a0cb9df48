package persist

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one record to write. A nil Value deletes Key. The Writer keeps Key and
// Value until the batch is committed; the caller must not modify them.
type Op struct {
	Key   []byte
	Value []byte
}

// ErrClosed is returned for writes enqueued after Close.
var ErrClosed = errors.New("persist: writer closed")

// Ticket is released when the batch that holds a write has been committed.
type Ticket struct {
	done chan struct{} // closed by release; never sent on
	err  error         // written before done is closed
	once sync.Once
}

// release sets the ticket's error and releases it; only the first call
// counts (a ticket refused early is not released again by its commit).
func (t *Ticket) release(err error) {
	t.once.Do(func() {
		t.err = err
		close(t.done)
	})
}

// Wait blocks until the write is durable (or failed) and returns the commit's
// error.
func (t *Ticket) Wait() error {
	<-t.done
	return t.err
}

// Done returns a channel closed when the write is durable or failed.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Err returns the commit error; valid after Done is closed.
func (t *Ticket) Err() error { return t.err }

var doneTicket = func() *Ticket {
	t := &Ticket{done: make(chan struct{})}
	close(t.done)
	return t
}()

// DoneTicket returns a ticket that is already released, for requests that
// changed nothing durable.
func DoneTicket() *Ticket { return doneTicket }

// FailedTicket returns a released ticket carrying err.
func FailedTicket(err error) *Ticket {
	t := &Ticket{done: make(chan struct{}), err: err}
	close(t.done)
	return t
}

// Sink commits one batch: the store interface the [Writer] commits
// through. The pebble [Store] is one; the PostgreSQL store (package
// pgstore) is the other (docs/design.md, "The store interface"); tests use
// fakes (the pattern of pebble's commitEnv: test the pipeline without a DB).
type Sink interface {
	// Apply writes ops in order. With sync it may return before they are
	// durable; wait then blocks until they are (or failed). Batches are
	// applied in the order of the calls and become durable in that order.
	// An error is sticky: the writer fails every later ticket (see
	// [Writer.Refuse] for a fault the sink waits out instead).
	Apply(ops []Op, sync bool) (wait func() error, err error)
}

// WriterOptions configures a Writer. Zero fields mean the defaults.
type WriterOptions struct {
	// MaxPending bounds the records waiting for the next batch. Default 65536.
	MaxPending int
	// MaxBatch bounds the records in one commit. Default 8192.
	MaxBatch int
	// Async answers tickets as soon as the batch is handed to the store,
	// without waiting for fsync. It trades a bounded loss window on a crash
	// for latency; never the default.
	Async bool
}

// Stats are the writer's counters, for metrics.
type Stats struct {
	Batches   uint64
	Records   uint64
	SyncNanos uint64 // total time in commit
	Pending   int
}

// Writer batches records and commits them. See the package doc.
type Writer struct {
	// Static after NewWriter.
	sink Sink
	opts WriterOptions

	// Guarded by mu.
	mu      sync.Mutex
	cond    *sync.Cond // signalled when pending gains records or room, or on close
	pending []Op
	// ends are where each Enqueue's records end in pending: a batch is
	// cut only there, so the records of one call (one operation's
	// mutations) commit together or not at all.
	ends    []int
	waiting *Ticket // released with the batch that takes pending
	closed  bool
	err     error // sticky commit error
	// refusing is set while the disk is full and a write waits for room:
	// tickets are then failed at once (the records still go to the store
	// in order, and reach the disk once there is room, so what memory
	// holds and the disk holds agree again; an answer of failure only
	// says the write is not known to be durable).
	refusing    error
	outstanding map[*Ticket]struct{} // tickets not yet released

	// Shared: atomics.
	batches, records, syncNanos atomic.Uint64
	// failed holds the sticky error once set, so Err (asked by every
	// mutating request) does not contend for mu with the writer.
	failed atomic.Pointer[error]

	stopped chan struct{} // closed when run returns
}

// NewWriter starts a writer that commits through s.
func NewWriter(s Sink, opts WriterOptions) *Writer {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 65536
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 8192
	}
	w := &Writer{sink: s, opts: opts, stopped: make(chan struct{}), outstanding: map[*Ticket]struct{}{}}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Enqueue queues ops for the next batch and returns the ticket released when
// they are committed. Enqueue with no ops returns a released ticket. It blocks
// while MaxPending records are waiting (back-pressure).
func (w *Writer) Enqueue(ops ...Op) *Ticket {
	if len(ops) == 0 {
		return doneTicket
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// No back-pressure while refusing: the commit in flight waits for disk
	// space, and a shard must not wait with it (the server refuses writes
	// meanwhile, so little comes here).
	for !w.closed && w.err == nil && w.refusing == nil && len(w.pending) > 0 && len(w.pending)+len(ops) > w.opts.MaxPending {
		w.cond.Wait()
	}
	if w.closed {
		return FailedTicket(ErrClosed)
	}
	if w.err != nil {
		return FailedTicket(w.err)
	}
	if w.waiting == nil {
		w.waiting = &Ticket{done: make(chan struct{})}
		w.outstanding[w.waiting] = struct{}{}
	}
	w.pending = append(w.pending, ops...)
	w.ends = append(w.ends, len(w.pending))
	w.cond.Broadcast()
	if w.refusing != nil {
		return FailedTicket(w.refusing)
	}
	return w.waiting
}

// refuse fails every outstanding ticket with err at once, and every ticket
// handed out until Refuse(nil); the records are committed all the same.
// The store calls it while a write waits for disk space.
func (w *Writer) Refuse(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refusing = err
	w.cond.Broadcast() // Enqueues blocked by back-pressure go on
	if err == nil {
		return
	}
	for t := range w.outstanding {
		t.release(err)
		delete(w.outstanding, t)
	}
	// The records queued so far go without a ticket; later ones get a new
	// one (released, as always, only when all before it are committed).
	w.waiting = nil
}

// Err returns the sticky commit error, if any. It takes no lock.
func (w *Writer) Err() error {
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	p := len(w.pending)
	w.mu.Unlock()
	return Stats{Batches: w.batches.Load(), Records: w.records.Load(), SyncNanos: w.syncNanos.Load(), Pending: p}
}

// Close commits what is queued, stops the writer and waits for it.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.stopped
	return w.Err()
}

// run takes the queued records batch by batch and applies them; it does not
// wait for a batch's fsync before applying the next (pebble syncs them
// together), which is how one sync serves several batches. The syncer
// releases the tickets, in order, as the syncs complete.
func (w *Writer) run() {
	syncq := make(chan syncItem, maxSyncsInFlight) // bounded: a full one stalls run, and so Enqueue
	go w.syncer(syncq)
	defer close(syncq)
	for {
		w.mu.Lock()
		for len(w.pending) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.pending) == 0 && w.closed {
			w.mu.Unlock()
			return
		}
		// Take everything queued, up to MaxBatch records; a ticket is
		// released only with the batch that takes its last record.
		// The cut is the last Enqueue boundary within MaxBatch; a first
		// call larger than MaxBatch goes whole.
		cut, k := w.ends[0], 1
		for ; k < len(w.ends) && w.ends[k] <= w.opts.MaxBatch; k++ {
			cut = w.ends[k]
		}
		var batch []Op
		var t *Ticket
		if cut == len(w.pending) {
			batch, w.pending, w.ends = w.pending, nil, nil
			t, w.waiting = w.waiting, nil
		} else {
			batch = append([]Op(nil), w.pending[:cut]...)
			w.pending = append(w.pending[:0:0], w.pending[cut:]...)
			rest := make([]int, 0, len(w.ends)-k)
			for _, e := range w.ends[k:] {
				rest = append(rest, e-cut)
			}
			w.ends = rest
		}
		err := w.err
		w.cond.Broadcast() // room for blocked Enqueues
		w.mu.Unlock()

		item := syncItem{ticket: t, records: len(batch), start: time.Now(), err: err}
		if err == nil {
			item.wait, item.err = w.sink.Apply(batch, !w.opts.Async)
			if item.err != nil {
				w.fail(fmt.Errorf("persist: commit %d records: %w", len(batch), item.err))
			}
		}
		syncq <- item
	}
}

// maxSyncsInFlight bounds the batches applied and waiting for their fsync.
const maxSyncsInFlight = 8

type syncItem struct {
	wait    func() error // nil when nothing is to be waited for
	err     error        // set when the batch was not applied
	ticket  *Ticket      // nil when the batch holds no ticket's last record
	records int
	start   time.Time
}

// syncer waits for each applied batch's fsync, in order, and releases its
// ticket. It ends when run closes syncq, after which the writer is stopped.
func (w *Writer) syncer(syncq <-chan syncItem) {
	defer close(w.stopped)
	// syncErr is the first failed sync: every batch after it is not
	// trusted (it went to the log behind what may be lost). A batch whose
	// Apply failed later does not make an earlier, committed one untrue.
	var syncErr error
	for it := range syncq {
		err := it.err
		if err == nil && it.wait != nil {
			if werr := it.wait(); werr != nil {
				err = fmt.Errorf("persist: sync %d records: %w", it.records, werr)
				w.fail(err)
				if syncErr == nil {
					syncErr = err
				}
			}
		}
		if err == nil {
			err = syncErr
		}
		w.syncNanos.Add(uint64(time.Since(it.start)))
		w.batches.Add(1)
		w.records.Add(uint64(it.records))
		if it.ticket != nil {
			it.ticket.release(err)
			w.mu.Lock()
			delete(w.outstanding, it.ticket)
			w.mu.Unlock()
		}
	}
}

// fail records the first commit error; it is sticky.
func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.failed.Store(&err)
	}
}
