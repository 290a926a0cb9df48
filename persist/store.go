package persist

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures a Store. Zero fields mean the defaults.
type Options struct {
	// FS is the filesystem; nil means the OS's. Tests pass vfs.NewMem() or a
	// fault-injecting errorfs.
	FS vfs.FS
	// Writer configures the group-commit writer.
	Writer WriterOptions
	// Logger receives pebble's own log lines (at info and above); nil means
	// slog.Default().
	Logger *slog.Logger
	// Reserve is the size of the reserve file kept in the store directory
	// and deleted when the disk fills, so that pebble can finish the work it
	// has begun while writes are refused (0: no reserve). See [ErrDiskFull].
	Reserve int64
	// ProbeEvery is how often a full disk is checked for space again.
	// Default 1 s.
	ProbeEvery time.Duration
	// LogEvery is how often one kind of repeated store error is logged
	// again, with the count of those not logged. Default 1 minute.
	LogEvery time.Duration
	// SkipWALDamage opens a store whose write-ahead log is damaged in the
	// middle (not merely torn at its end by a crash) by dropping the
	// records from the damage on, after logging what is dropped and copying
	// the log aside. Without it Open refuses such a store with a
	// [*WALDamageError].
	SkipWALDamage bool

	// tune adjusts pebble's options in tests (tiny memtables).
	tune func(*pebble.Options)
}

// Store is an open pebble database with its group-commit writer.
type Store struct {
	dir    string
	db     *pebble.DB
	w      *Writer
	events *storeEvents
	disk   *diskSpace
	stop   chan struct{} // closed by Close: ends the disk probe
	closed sync.Once
	probed chan struct{} // closed when the disk probe has ended
}

// formatVersion is the on-disk format the store is created with or
// upgraded to: the first one whose write-ahead log records how far it was
// synced, so that recovery tells damage in the middle of the log (refused,
// see [WALDamageError]) from a tail torn by a crash (replayed up to the
// tear).
const formatVersion = pebble.FormatWALSyncChunks

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	base := opts.FS
	if base == nil {
		base = vfs.Default
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("persist: create %s: %w", dir, err)
		}
		if err := tightenModes(dir); err != nil {
			return nil, err
		}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if opts.ProbeEvery <= 0 {
		opts.ProbeEvery = time.Second
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = time.Minute
	}
	limited := newLimitedLog(lg, opts.LogEvery)
	events := &storeEvents{log: lg, limited: limited}
	stop := make(chan struct{})
	disk := &diskSpace{fs: base, dir: dir, reserve: opts.Reserve, limited: limited, probeEvery: opts.ProbeEvery, stop: stop}
	popts := &pebble.Options{
		// Every ENOSPC, whichever file it hits, goes through disk.full
		// first (pebble retries the failed write once after it), and
		// then waits for room (roomFS).
		FS:                 newPrivateFS(roomFS{vfs.OnDiskFull(base, disk.full), disk}),
		Logger:             pebbleLogger{lg, limited},
		EventListener:      events.listener(),
		FormatMajorVersion: formatVersion,
	}
	if opts.tune != nil {
		opts.tune(popts)
	}
	if err := base.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("persist: create %s: %w", dir, err)
	}
	disk.start()
	upgrade := needsFormat(base, dir)
	db, err := openRecovering(dir, popts, opts.SkipWALDamage, lg)
	if err != nil {
		return nil, err
	}
	if upgrade {
		// pebble creates the log of an open before it sets the format
		// version of a new (or older) store, so that log would lack the
		// synced offsets; the log of every later open has them.
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("persist: reopen new store %s: %w", dir, err)
		}
		if db, err = openRecovering(dir, popts, opts.SkipWALDamage, lg); err != nil {
			return nil, err
		}
	}
	s := &Store{db: db, dir: dir, events: events, disk: disk, stop: stop, probed: make(chan struct{})}
	s.w = NewWriter(pebbleSink{db}, opts.Writer)
	disk.writer.Store(s.w)
	go s.probe(opts.ProbeEvery)
	return s, nil
}

// needsFormat reports whether dir holds no store yet, or one whose format
// is older than formatVersion (its marker file's name ends with it).
func needsFormat(fs vfs.FS, dir string) bool {
	names, _ := fs.List(dir)
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, "marker.format-version."); ok {
			_, v, _ := strings.Cut(rest, ".")
			if n, err := strconv.Atoi(v); err == nil {
				return n < int(formatVersion)
			}
		}
	}
	return true
}

// Events returns the counters of pebble's background work.
func (s *Store) Events() StoreEvents { return s.events.snapshot() }

// Writer returns the store's group-commit writer.
func (s *Store) Writer() *Writer { return s.w }

// Scan calls fn for every record whose key starts with prefix (all records
// when prefix is empty), in key order. key and value are valid only during
// the call.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	o := &pebble.IterOptions{}
	if len(prefix) > 0 {
		o.LowerBound = prefix
		o.UpperBound = prefixEnd(prefix)
	}
	it, err := s.db.NewIter(o)
	if err != nil {
		return s.damaged(fmt.Errorf("persist: scan: %w", err))
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return s.damaged(fmt.Errorf("persist: scan value: %w", err))
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return s.damaged(fmt.Errorf("persist: scan: %w", err))
	}
	return nil
}

// Commit writes ops as one synced pebble batch, bypassing the writer's
// queue: all of them or none are in the store when it returns (the import
// of docs/operations.md, "Moving from the Python server"). Nothing else
// may be writing meanwhile.
func (s *Store) Commit(ops []Op) error {
	if err := s.w.Err(); err != nil {
		return fmt.Errorf("persist: commit: %w", err)
	}
	wait, err := pebbleSink{s.db}.Apply(ops, true)
	if err == nil && wait != nil {
		err = wait()
	}
	if err != nil {
		return fmt.Errorf("persist: commit %d records: %w", len(ops), err)
	}
	return nil
}

// Get reads one record; ok is false when key is absent.
func (s *Store) Get(key []byte) (value []byte, ok bool, err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.damaged(fmt.Errorf("persist: get: %w", err))
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// Checkpoint writes a consistent copy of the database to dir, which must not
// exist. It is safe while the server runs.
func (s *Store) Checkpoint(dir string) error {
	if err := s.disk.err(); err != nil {
		// It would wait for room, holding up the backup signal.
		return fmt.Errorf("persist: checkpoint to %s: %w", dir, err)
	}
	if err := s.db.Checkpoint(filepath.Clean(dir), pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("persist: checkpoint to %s: %w", dir, err)
	}
	return nil
}

// Close commits what is queued and closes the database. After a failed
// commit pebble may refuse to close cleanly; Close then reports the error
// rather than panicking, and a restart recovers from the WAL.
func (s *Store) Close() (err error) {
	if s.disk.waiting() {
		// A commit waits for disk space, and pebble cannot fail it
		// safely: leave the store as a crash would (nothing waiting was
		// acknowledged), the process is about to end.
		return fmt.Errorf("persist: close: %w: the writes waiting for space were not stored (none was acknowledged)", s.disk.err())
	}
	s.closed.Do(func() { close(s.stop) })
	<-s.probed
	defer s.events.limited.flush()
	werr := s.w.Close()
	defer func() {
		if r := recover(); r != nil {
			err = errors.Join(werr, fmt.Errorf("persist: close: %w", panicError(r)))
		}
	}()
	// Flush the memtable, so the next start reads sstables instead of
	// replaying the WAL (a restart loads everything).
	if werr == nil {
		if ferr := s.db.Flush(); ferr != nil {
			werr = fmt.Errorf("persist: flush on close: %w", ferr)
		}
	}
	if err := s.db.Close(); err != nil {
		return errors.Join(werr, fmt.Errorf("persist: close: %w", err))
	}
	return werr
}

// Healthy returns nil while the store accepts writes; an error wrapping
// [ErrDiskFull] while the disk is full (it clears by itself once space is
// back); and the sticky commit error once a write or sync has failed for
// another reason (a restart is needed then).
func (s *Store) Healthy() error {
	if err := s.w.Err(); err != nil {
		return err
	}
	return s.disk.err()
}

// ErrFatal wraps a fatal error reported by pebble (a failed WAL write or
// sync, a failed MANIFEST update). The store accepts no more writes after
// one; restart the process once the disk is healthy.
var ErrFatal = errors.New("persist: fatal store error")

// fatalPanic is the value pebbleLogger.Fatalf panics with, so recover sites
// can tell pebble's fatal errors from other panics.
type fatalPanic struct{ msg string }

func panicError(r any) error {
	if f, ok := r.(fatalPanic); ok {
		return fmt.Errorf("%w: %s", ErrFatal, f.msg)
	}
	if e, ok := r.(error); ok {
		return fmt.Errorf("%w: panic: %w", ErrFatal, e)
	}
	return fmt.Errorf("%w: panic: %v", ErrFatal, r)
}

type pebbleSink struct{ db *pebble.DB }

// commit writes ops as one batch. pebble treats a failed WAL write or sync
// as fatal (Logger.Fatalf, which panics through [pebbleLogger]) because its
// commit pipeline cannot go on; commit turns that panic back into an error,
// so the writer's error becomes sticky and the server refuses writes and
// keeps serving reads instead of dying. No commit is tried after one failed:
// the writer's error is sticky, so the broken pipeline is never used again.
func (p pebbleSink) Apply(ops []Op, sync bool) (wait func() error, err error) {
	defer func() {
		if r := recover(); r != nil {
			wait, err = nil, panicError(r)
		}
	}()
	b := p.db.NewBatchWithSize(len(ops) * 64)
	for _, op := range ops {
		var err error
		if op.Value == nil {
			err = b.Delete(op.Key, nil)
		} else {
			err = b.Set(op.Key, op.Value, nil)
		}
		if err != nil {
			b.Close()
			return nil, err
		}
	}
	if !sync {
		defer b.Close()
		return nil, b.Commit(pebble.NoSync)
	}
	// Applied in order now; the fsync is waited for by the writer's syncer,
	// so the next batch is applied while this one syncs and pebble's WAL
	// writer syncs both at once. NB: pebble marks ApplyNoSyncWait
	// experimental; the crash test (server/crash_test.go) is what checks
	// that acknowledged writes survive with it.
	if err := p.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		return nil, err
	}
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicError(r)
			}
		}()
		defer b.Close()
		return b.SyncWait()
	}, nil
}

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// pebbleLogger routes pebble's log lines into slog: Infof at debug (pebble
// is chatty about compactions), Errorf at error but each kind of message at
// most once per LogEvery with a count (a full disk makes pebble retry and
// fail in a loop), Fatalf at error and then the panic pebble expects.
type pebbleLogger struct {
	l       *slog.Logger
	limited *limitedLog
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.limited.error(msg, msg, "component", "pebble") // kinds by message: formats like "%s" say nothing
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(firstLine(msg), "component", "pebble")
	panic(fatalPanic{msg})
}
