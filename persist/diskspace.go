package persist

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrDiskFull is wrapped by [Store.Healthy] while the disk holding the store
// is full. The store keeps working on its reserve; the server refuses
// writes until the store has found space again by itself.
var ErrDiskFull = errors.New("persist: disk full")

// diskFullError is Healthy's error while the disk is full.
type diskFullError struct{ since time.Time }

func (e diskFullError) Error() string {
	return fmt.Sprintf("%v since %s: writes are refused until space is freed", ErrDiskFull, e.since.UTC().Format(time.RFC3339))
}
func (e diskFullError) Unwrap() error { return ErrDiskFull }

// Reason is the short state /health shows.
func (e diskFullError) Reason() string { return "disk full" }

// reserveName is the reserve file in the store directory (pebble leaves
// files it does not know alone).
const reserveName = "authnzerver-reserve"

// probeSize is what is written to find out whether the disk has room again
// when there is no reserve to re-create.
const probeSize = 1 << 20

// diskSpace handles a full disk. Every ENOSPC pebble meets goes first to
// full (vfs.OnDiskFull), which deletes the reserve file, so that the write
// that met it, retried by pebble once, and the flushes and log rotations
// pebble has begun find room, and marks the disk full: the server then
// answers writes 503 at once instead of letting them pile up behind a
// store that cannot flush. A write is therefore never acknowledged without
// being durable, and never left half applied: the writes refused are
// refused before they change anything. The store's probe re-creates the
// reserve once there is room for it and as much again, and that ends the
// disk-full state.
type diskSpace struct {
	fs      vfs.FS // the filesystem under pebble's ENOSPC wrapper
	dir     string
	reserve int64
	limited *limitedLog

	isFull atomic.Bool

	mu    sync.Mutex // guards since, hits and the reserve file
	since time.Time
	hits  int // ENOSPC errors met since the disk filled
}

func (d *diskSpace) path() string { return d.fs.PathJoin(d.dir, reserveName) }

// start creates the reserve if it is missing. A disk too full for it
// starts the store refusing writes, as if it had just filled.
func (d *diskSpace) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reserve <= 0 {
		_ = d.fs.Remove(d.path()) // a reserve configured before is given back
		return
	}
	if fi, err := d.fs.Stat(d.path()); err == nil && fi.Size() == d.reserve {
		return
	}
	if err := d.writeFile(d.path(), d.reserve); err != nil {
		d.markFull(fmt.Sprintf("store: no room for the %d-byte disk reserve; answering writes 503 until space is freed", d.reserve), err)
	}
}

// full is pebble's disk-full callback. pebble holds every new write while
// it runs, so it only deletes a file and logs.
func (d *diskSpace) full() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hits++
	if d.isFull.Load() {
		return
	}
	msg := "store: disk full; answering writes 503 until space is freed"
	if d.reserve > 0 {
		if err := d.fs.Remove(d.path()); err == nil {
			msg = fmt.Sprintf("store: disk full; freed the %d-byte disk reserve and answering writes 503 until space is freed", d.reserve)
		}
	}
	d.markFull(msg, nil)
}

// markFull enters the disk-full state. d.mu is held.
func (d *diskSpace) markFull(msg string, err error) {
	d.since = time.Now()
	d.isFull.Store(true)
	args := []any{"dir", d.dir}
	if err != nil {
		args = append(args, "err", firstLine(err.Error()))
	}
	// A disk with a little room flaps between full and not; say so once
	// per LogEvery, with a count.
	d.limited.error("disk full", msg, args...)
}

// err is Healthy's disk-full part.
func (d *diskSpace) err() error {
	if !d.isFull.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return diskFullError{since: d.since}
}

// tryRecover ends the disk-full state if there is room for the reserve (or
// a probe file) and as much again besides.
func (d *diskSpace) tryRecover() {
	size := d.reserve
	if size <= 0 {
		size = probeSize
	}
	if u, err := d.fs.GetDiskUsage(d.dir); err == nil && u.AvailBytes < uint64(2*size) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.isFull.Load() {
		return
	}
	path := d.path()
	if d.reserve <= 0 {
		path = d.fs.PathJoin(d.dir, reserveName+".probe")
	}
	if err := d.writeFile(path, size); err != nil {
		return // still full: try again at the next probe
	}
	if d.reserve <= 0 {
		_ = d.fs.Remove(path)
	}
	d.isFull.Store(false)
	d.limited.log(slog.LevelWarn, "disk space back", "store: disk space is back; accepting writes again",
		"dir", d.dir, "full_for", time.Since(d.since).Round(time.Millisecond), "disk_full_errors", d.hits)
	d.hits = 0
}

// writeFile writes size zero bytes to a new private file and syncs it, or
// leaves no file behind.
func (d *diskSpace) writeFile(path string, size int64) (err error) {
	fs := newPrivateFS(d.fs)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = d.fs.Remove(path)
		}
	}()
	if fd := f.Fd(); fd != vfs.InvalidFd {
		// Allocating is as good as writing zeros and much faster; a
		// filesystem without fallocate gets the zeros.
		err := fallocate(fd, size)
		if err == nil {
			return f.Sync()
		}
		if !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
			return err
		}
	}
	buf := make([]byte, min(size, 256<<10))
	for left := size; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			return err
		}
	}
	return f.Sync()
}

// probe checks a full disk for space every interval until Close.
func (s *Store) probe(every time.Duration) {
	defer close(s.probed)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.disk.isFull.Load() {
			s.disk.tryRecover()
		}
	}
}
