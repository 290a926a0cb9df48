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

// TestRepeatedStoreErrorsLoggedOnce: with no reserve, a full disk makes
// every flush fail, and pebble retries at once, in a loop. The store says
// so once, with a count, not once per failure, and never with a stack
// trace; writes held by the failing flushes complete once space is back.
func TestRepeatedStoreErrorsLoggedOnce(t *testing.T) {
	mem := vfs.NewMem()
	var full atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		// The log keeps its room (pebble reuses log files); tables and the
		// probe file find none.
		if full.Load() && op.Kind == errorfs.OpCreate && !strings.HasSuffix(op.Path, ".log") {
			return syscall.ENOSPC
		}
		return nil
	}))
	var logs lockedBuffer
	s, err := Open("db", Options{FS: fs, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		ProbeEvery: 5 * time.Millisecond,
		tune: func(o *pebble.Options) {
			o.MemTableSize = 256 << 10
		}})
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	value := bytes.Repeat([]byte("v"), 1024)
	var tickets []*Ticket
	for i := range 1024 {
		tickets = append(tickets, s.Writer().Enqueue(Op{Key: key(i), Value: value}))
	}
	waitFor(t, "20 failed flushes", func() bool { return s.Events().BackgroundErrs >= 20 })
	if !errors.Is(s.Healthy(), ErrDiskFull) {
		t.Errorf("Healthy() = %v while flushes fail for want of space; want ErrDiskFull", s.Healthy())
	}
	full.Store(false)
	for i, tk := range tickets {
		if err := tk.Wait(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	waitFor(t, "the store to find space again", func() bool { return s.Healthy() == nil })
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
