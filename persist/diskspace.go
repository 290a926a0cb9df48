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
// store that cannot flush (the server refuses them before they change
// anything). A write that finds no room even so waits for it (roomFS), and
// the writes then in flight are answered with ErrDiskFull at once but still
// reach the disk, in order, once there is room: no write is acknowledged
// without being durable, and the disk ends up holding what memory holds.
// The store's probe re-creates the reserve once there is room for it and as
// much again, and that ends the disk-full state.
type diskSpace struct {
	fs      vfs.FS // the filesystem under pebble's ENOSPC wrapper
	dir     string
	reserve int64
	limited *limitedLog

	probeEvery time.Duration
	stop       <-chan struct{}        // closed when the store closes
	writer     atomic.Pointer[Writer] // set once the store's writer runs

	isFull atomic.Bool

	mu      sync.Mutex // guards since, hits, waiters and the reserve file
	since   time.Time
	hits    int // ENOSPC errors met since the disk filled
	waiters int // writes waiting for room (roomFS)
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
	return d.errLocked()
}

func (d *diskSpace) errLocked() error { return diskFullError{since: d.since} }

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
	// Writes are taken before the state says so, so that nothing is
	// refused once Healthy is nil.
	if w := d.writer.Load(); w != nil {
		w.Refuse(nil)
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

// roomFS makes a write that meets ENOSPC wait for room instead of failing,
// once the disk-full callback (which frees the reserve) has not helped.
// pebble cannot go on after a failed log write (it stops taking writes
// until it is reopened, and a failure while it switches log files crashes
// the process), and it retries a failed flush at once, in a loop. So the
// write waits; the store meanwhile fails the tickets of the writes in
// flight at once (the server answers them 503) and the server refuses new
// ones, and the records reach the disk when the probe finds room. Syncs are
// not retried: after a failed fsync the kernel may have dropped the data.
type roomFS struct {
	vfs.FS
	d *diskSpace
}

func (r roomFS) Unwrap() vfs.FS { return r.FS }

func (r roomFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	for {
		f, err := r.FS.Create(name, cat)
		if !r.d.waitRoom(err) {
			return r.file(f, err)
		}
	}
}

func (r roomFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	for {
		f, err := r.FS.OpenReadWrite(name, cat, opts...)
		if !r.d.waitRoom(err) {
			return r.file(f, err)
		}
	}
}

func (r roomFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	for {
		f, err := r.FS.ReuseForWrite(oldname, newname, cat)
		if !r.d.waitRoom(err) {
			return r.file(f, err)
		}
	}
}

func (r roomFS) file(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return roomFile{File: f, d: r.d}, nil
}

type roomFile struct {
	vfs.File
	d *diskSpace
}

// Write resumes after what a short write took, so no byte is written twice.
func (f roomFile) Write(p []byte) (int, error) {
	n := 0
	for {
		m, err := f.File.Write(p[n:])
		n += m
		if !f.d.waitRoom(err) {
			return n, err
		}
	}
}

func (f roomFile) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	for {
		m, err := f.File.WriteAt(p[n:], off+int64(n))
		n += m
		if !f.d.waitRoom(err) {
			return n, err
		}
	}
}

func (f roomFile) Preallocate(off, length int64) error {
	for {
		err := f.File.Preallocate(off, length)
		if !f.d.waitRoom(err) {
			return err
		}
	}
}

// waitRoom reports whether err is ENOSPC and the disk has room again, so
// the write should be tried again; it waits for that, and returns false
// (give up) once the store is closing.
func (d *diskSpace) waitRoom(err error) bool {
	if err == nil || !errors.Is(err, syscall.ENOSPC) {
		return false
	}
	if d.writer.Load() == nil {
		return false // opening: fail the open, nothing would wake the wait
	}
	if !d.isFull.Load() {
		// The probe found room after this ENOSPC: try again. Another
		// ENOSPC goes through the disk-full callback first, which marks
		// the disk full again, so this does not spin.
		return true
	}
	d.mu.Lock()
	d.hits++
	d.waiters++
	if d.waiters == 1 {
		if w := d.writer.Load(); w != nil {
			w.Refuse(d.errLocked())
		}
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.waiters--
		// The probe may have found room between this write's ENOSPC and
		// its refusal; then no one else takes writes again.
		if d.waiters == 0 && !d.isFull.Load() {
			if w := d.writer.Load(); w != nil {
				w.Refuse(nil)
			}
		}
		d.mu.Unlock()
	}()
	t := time.NewTicker(d.probeEvery)
	defer t.Stop()
	for d.isFull.Load() {
		select {
		case <-d.stop:
			return false
		case <-t.C:
		}
	}
	return true
}

// waiting reports whether a write waits for room.
func (d *diskSpace) waiting() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiters > 0
}
