package persist

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// isWrite reports whether op needs free space.
func isWrite(op errorfs.Op) bool {
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpReuseForWrite, errorfs.OpFileWrite, errorfs.OpFileWriteAt,
		errorfs.OpFilePreallocate, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return true
	}
	return false
}

// waitFor polls cond with a generous deadline (the tests run under -race
// on a busy machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestDiskFullRefusesAndResumes models a disk that is full as long as the
// reserve file takes its space: the write that meets ENOSPC frees the
// reserve and is made durable and acknowledged, the store then reports
// the disk full (the server answers writes 503), the probe finds no room
// while the disk stays full, and once space is back the store re-creates
// its reserve and reports healthy again by itself. It logs the episode
// once, not once per error.
func TestDiskFullRefusesAndResumes(t *testing.T) {
	const reserve = 256 << 10
	mem := vfs.NewMem()
	var full atomic.Bool
	var refusedProbes atomic.Int64
	reservePath := mem.PathJoin("db", reserveName)
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !full.Load() || !isWrite(op) {
			return nil
		}
		if _, err := mem.Stat(reservePath); err != nil {
			return nil // the reserve is gone: its space is free
		}
		if op.Path == reservePath {
			refusedProbes.Add(1)
		}
		return syscall.ENOSPC
	}))
	var logs lockedBuffer
	s, err := Open("db", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Reserve: reserve, ProbeEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := mem.Stat(reservePath); err != nil || fi.Size() != reserve {
		t.Fatalf("reserve file: %v, %v; want %d bytes", fi, err, reserve)
	}
	w := s.Writer()
	if err := w.Enqueue(Op{Key: key(0), Value: []byte("before")}).Wait(); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	if err := w.Enqueue(Op{Key: key(1), Value: []byte("meets ENOSPC")}).Wait(); err != nil {
		t.Fatalf("the write that met ENOSPC: %v; want it durable on the freed reserve", err)
	}
	herr := s.Healthy()
	if !errors.Is(herr, ErrDiskFull) {
		t.Fatalf("Healthy() = %v; want ErrDiskFull", herr)
	}
	if r, ok := herr.(interface{ Reason() string }); !ok || r.Reason() != "disk full" {
		t.Errorf("Healthy() = %#v; want a Reason of \"disk full\"", herr)
	}
	// The probe tries to re-create the reserve and finds no room.
	waitFor(t, "three refused probes", func() bool { return refusedProbes.Load() >= 3 })
	if !errors.Is(s.Healthy(), ErrDiskFull) {
		t.Fatalf("Healthy() = %v while the disk is still full; want ErrDiskFull", s.Healthy())
	}

	full.Store(false)
	waitFor(t, "the store to find space again", func() bool { return s.Healthy() == nil })
	if fi, err := mem.Stat(reservePath); err != nil || fi.Size() != reserve {
		t.Errorf("reserve after recovery: %v, %v; want %d bytes", fi, err, reserve)
	}
	if err := w.Enqueue(Op{Key: key(2), Value: []byte("after")}).Wait(); err != nil {
		t.Errorf("write after the disk recovered: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	if n := strings.Count(out, "store: disk full"); n != 1 {
		t.Errorf("disk full logged %d times; want once:\n%s", n, out)
	}
	if !strings.Contains(out, "store: disk space is back") || !strings.Contains(out, "disk_full_errors=") {
		t.Errorf("recovery not logged with the count of errors:\n%s", out)
	}

	s, err = Open("db", Options{FS: mem, Logger: quiet, Reserve: reserve})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, want := range []string{"before", "meets ENOSPC", "after"} {
		if v, ok, err := s.Get(key(i)); err != nil || !ok || string(v) != want {
			t.Errorf("record %d after reopen: %q, %v, %v; want %q", i, v, ok, err, want)
		}
	}
}

// TestRepeatedStoreErrorsLoggedOnce: a table file that cannot be created
// makes every flush fail, and pebble retries at once, in a loop. The store
// logs that once and then counts it, never with a stack trace; the writes
// held by the failing flushes complete once the disk works again.
func TestRepeatedStoreErrorsLoggedOnce(t *testing.T) {
	mem := vfs.NewMem()
	var failing atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	var logs lockedBuffer
	s, err := Open("db", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Writer: WriterOptions{MaxBatch: 64},
		tune: func(o *pebble.Options) {
			o.MemTableSize = 256 << 10
		}})
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	value := bytes.Repeat([]byte("v"), 1024)
	var tickets []*Ticket
	for i := range 1024 {
		tickets = append(tickets, s.Writer().Enqueue(Op{Key: key(i), Value: value}))
	}
	waitFor(t, "20 failed flushes", func() bool { return s.Events().BackgroundErrs >= 20 })
	failing.Store(false)
	for i, tk := range tickets {
		if err := tk.Wait(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	failures := s.Events().BackgroundErrs
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "store background error"); n > 2 {
		t.Errorf("%d failed flushes logged %d times; want once and a count:\n%s", failures, n, out)
	}
	if !strings.Contains(out, "repeated=") {
		t.Errorf("no count of the errors not logged:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("log line that is not a record (a stack trace?): %q", line)
		}
	}
}

// fullDisk is an in-memory filesystem that fails every write with ENOSPC
// while full is set.
func fullDisk() (*vfs.MemFS, vfs.FS, *atomic.Bool, *atomic.Int64) {
	mem := vfs.NewMem()
	var full atomic.Bool
	var hits atomic.Int64
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && isWrite(op) && op.Kind != errorfs.OpFileSync && op.Kind != errorfs.OpFileSyncData && op.Kind != errorfs.OpFileSyncTo {
			hits.Add(1)
			return syscall.ENOSPC
		}
		return nil
	}))
	return mem, fs, &full, &hits
}

// TestFullDiskWithoutReserve: with no reserve to free, a write that meets
// ENOSPC waits for room rather than failing inside pebble (which cannot go
// on after a failed log write, and crashes when one fails while it switches
// log files). The writes in flight are answered at once with ErrDiskFull,
// none hangs; their records reach the disk once there is room, so the disk
// then holds what memory holds, and writes are taken again.
func TestFullDiskWithoutReserve(t *testing.T) {
	mem, fs, full, hits := fullDisk()
	tune := func(o *pebble.Options) { o.MemTableSize = 256 << 10 } // log switches soon
	var logs lockedBuffer
	s, err := Open("db", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logs, nil)), ProbeEvery: 5 * time.Millisecond, tune: tune})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Writer()
	for i := range 10 {
		if err := w.Enqueue(Op{Key: key(i), Value: []byte("ok")}).Wait(); err != nil {
			t.Fatal(err)
		}
	}

	full.Store(true)
	value := bytes.Repeat([]byte("r"), 64<<10)
	var answered, refused atomic.Int64
	for i := 10; i < 30; i++ {
		go func(i int) {
			err := w.Enqueue(Op{Key: key(i), Value: value}).Wait()
			if errors.Is(err, ErrDiskFull) {
				refused.Add(1)
			} else if err != nil {
				t.Errorf("write %d: %v; want success or ErrDiskFull", i, err)
			}
			answered.Add(1)
		}(i)
	}
	waitFor(t, "every write on the full disk to be answered", func() bool { return answered.Load() == 20 })
	if refused.Load() == 0 || hits.Load() == 0 {
		t.Fatalf("%d writes refused, %d ENOSPC injected; want some of each", refused.Load(), hits.Load())
	}
	if !errors.Is(s.Healthy(), ErrDiskFull) {
		t.Fatalf("Healthy() = %v; want ErrDiskFull", s.Healthy())
	}
	// A write the server applied in memory meanwhile (a delete): refused
	// at once, stored later.
	if err := w.Enqueue(Op{Key: key(0)}).Wait(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("delete on a full disk: %v; want ErrDiskFull at once", err)
	}

	full.Store(false)
	waitFor(t, "the store to find room again", func() bool { return s.Healthy() == nil })
	if err := w.Enqueue(Op{Key: key(30), Value: []byte("after")}).Wait(); err != nil {
		t.Fatalf("write after room came back: %v", err)
	}
	check := func(s *Store) {
		t.Helper()
		if _, ok, err := s.Get(key(0)); ok || err != nil {
			t.Errorf("k0: present %v, %v; want deleted, as memory has it", ok, err)
		}
		for i := 1; i <= 30; i++ {
			want := "ok"
			switch {
			case i >= 10 && i < 30:
				want = string(value)
			case i == 30:
				want = "after"
			}
			if v, ok, err := s.Get(key(i)); err != nil || !ok || string(v) != want {
				t.Errorf("record %d: %.20q, %v, %v; want %.20q", i, v, ok, err, want)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "store: disk full"); n != 1 {
		t.Errorf("disk full logged %d times; want once:\n%s", n, logs.String())
	}
	s, err = Open("db", Options{FS: mem, Logger: quiet, tune: tune})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// TestCloseOnFullDisk: closing while a write waits for room returns at
// once with an error instead of hanging or crashing.
func TestCloseOnFullDisk(t *testing.T) {
	_, fs, full, _ := fullDisk()
	s, err := Open("db", Options{FS: fs, Logger: quiet, ProbeEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if err := s.Writer().Enqueue(Op{Key: key(1), Value: []byte("x")}).Wait(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("write on a full disk: %v; want ErrDiskFull", err)
	}
	if err := s.Close(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Close on a full disk: %v; want an error saying the disk is full", err)
	}
}
