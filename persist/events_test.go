package persist

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWriteStallCountedAndLogged holds pebble's flushes (sstable creation
// blocks) until durable writes stall behind full memtables, and checks that
// the stall is counted, timed and logged at warning level, and that the
// held writes complete once the disk moves again.
func TestWriteStallCountedAndLogged(t *testing.T) {
	var holding atomic.Bool
	holding.Store(true)
	release := make(chan struct{})
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") && holding.Load() {
			<-release
		}
		return nil
	}))
	var logs lockedBuffer
	s, err := Open("db", Options{
		FS: fs,
		// Small commits, as many requests make: one commit of all 4 MiB
		// (the writer takes all that is queued) would be a single large
		// batch and might never stall.
		Writer: WriterOptions{MaxBatch: 64},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		tune: func(o *pebble.Options) {
			o.MemTableSize = 256 << 10
			o.MemTableStopWritesThreshold = 2
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// 4 MiB of records: far more than two 256 KiB memtables.
	tickets := make(chan *Ticket, 4096)
	go func() {
		defer close(tickets)
		value := bytes.Repeat([]byte("v"), 1024)
		for i := range 4096 {
			tickets <- s.Writer().Enqueue(Op{Key: key(i), Value: value})
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.Events().WriteStalls == 0 {
		if time.Now().After(deadline) {
			holding.Store(false)
			close(release)
			t.Fatal("no write stall while flushes were held")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a stall of measurable length
	holding.Store(false)
	close(release)
	for tk := range tickets {
		if err := tk.Wait(); err != nil {
			t.Fatalf("a write held by the stall failed: %v", err)
		}
	}
	ev := s.Events()
	if ev.WriteStallNanos < uint64(10*time.Millisecond) {
		t.Errorf("stall time %v; want at least the 20 ms it was held", time.Duration(ev.WriteStallNanos))
	}
	if ev.Flushes == 0 {
		t.Errorf("no flush counted after the release")
	}
	out := logs.String()
	for _, want := range []string{"level=WARN msg=\"store write stall: durable writes wait for pebble to catch up\"", "level=WARN msg=\"store write stall ended\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
