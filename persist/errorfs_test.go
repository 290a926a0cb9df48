package persist

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// faultFS is an in-memory filesystem that fails the chosen write-side
// operations on WAL files while armed.
type faultFS struct {
	mem   *vfs.MemFS
	fs    *errorfs.FS
	armed atomic.Bool
	kinds map[errorfs.OpKind]bool
	hits  atomic.Int64
}

func newFaultFS(kinds ...errorfs.OpKind) *faultFS {
	f := &faultFS{mem: vfs.NewMem(), kinds: map[errorfs.OpKind]bool{}}
	for _, k := range kinds {
		f.kinds[k] = true
	}
	f.fs = errorfs.Wrap(f.mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if f.armed.Load() && f.kinds[op.Kind] && strings.HasSuffix(op.Path, ".log") {
			f.hits.Add(1)
			return errorfs.ErrInjected
		}
		return nil
	}))
	return f
}

// quiet drops pebble's log lines (a fault makes it log at error level).
var quiet = slog.New(slog.DiscardHandler)

func key(i int) []byte { return []byte(fmt.Sprintf("k/%05d", i)) }

// TestDiskFaultNeverAcknowledged: a write whose WAL write or sync fails is
// answered with an error, never released as durable; the error is sticky
// (later writes fail too, even after the disk recovers), and what was
// acknowledged before the fault is still there after a reopen.
func TestDiskFaultNeverAcknowledged(t *testing.T) {
	for _, tt := range []struct {
		name string
		kind []errorfs.OpKind
	}{
		{"sync fails", []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}},
		{"write fails", []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ff := newFaultFS(tt.kind...)
			s, err := Open("db", Options{FS: ff.fs, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			w := s.Writer()
			for i := range 10 {
				if err := w.Enqueue(Op{Key: key(i), Value: []byte("ok")}).Wait(); err != nil {
					t.Fatalf("write %d before the fault: %v", i, err)
				}
			}
			ff.armed.Store(true)
			// Concurrent writers: every one must get an error.
			var wg sync.WaitGroup
			var acked atomic.Int64
			for i := 10; i < 30; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if err := w.Enqueue(Op{Key: key(i), Value: []byte("lost")}).Wait(); err == nil {
						acked.Add(1)
					}
				}(i)
			}
			wg.Wait()
			if n := acked.Load(); n != 0 {
				t.Errorf("%d writes acknowledged while the disk failed; want 0", n)
			}
			if ff.hits.Load() == 0 {
				t.Fatalf("no fault was injected: the test does not test anything")
			}
			if w.Err() == nil {
				t.Errorf("Writer.Err() = nil after a failed commit; want the sticky error")
			}
			ff.armed.Store(false)
			if err := w.Enqueue(Op{Key: key(99), Value: []byte("after")}).Wait(); err == nil {
				t.Errorf("write after the disk recovered was acknowledged; want the sticky error (restart needed)")
			}
			// Close may report the sticky error; it must not panic or hang.
			_ = s.Close()

			// A restart on the same (now healthy) disk opens cleanly and has
			// every acknowledged record.
			s, err = Open("db", Options{FS: ff.mem, Logger: quiet})
			if err != nil {
				t.Fatalf("reopen after the fault: %v", err)
			}
			defer s.Close()
			for i := range 10 {
				v, ok, err := s.Get(key(i))
				if err != nil || !ok || string(v) != "ok" {
					t.Errorf("acknowledged record %d after reopen: %q, %v, %v; want ok", i, v, ok, err)
				}
			}
			if err := s.Writer().Enqueue(Op{Key: key(100), Value: []byte("new")}).Wait(); err != nil {
				t.Errorf("write after a restart on a healthy disk: %v", err)
			}
		})
	}
}

// TestDiskFaultErrorIsTheCause: the ticket's error names the injected fault,
// so the log says why writes are refused.
func TestDiskFaultErrorIsTheCause(t *testing.T) {
	ff := newFaultFS(errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo)
	s, err := Open("db", Options{FS: ff.fs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ff.armed.Store(true)
	err = s.Writer().Enqueue(Op{Key: key(1), Value: []byte("x")}).Wait()
	if err == nil {
		t.Fatal("failed sync acknowledged")
	}
	if !strings.Contains(err.Error(), "injected") {
		t.Errorf("error = %v; want it to carry the injected fault", err)
	}
	if !errors.Is(s.Writer().Err(), err) && s.Writer().Err().Error() != err.Error() {
		t.Errorf("Err() = %v; want the ticket's error %v", s.Writer().Err(), err)
	}
}
