package persist

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// gateSink blocks each commit until the test lets it go, and records batches.
type gateSink struct {
	mu      sync.Mutex
	batches [][]Op
	gate    chan struct{}
	fail    error
}

func (g *gateSink) Apply(ops []Op, sync bool) (func() error, error) {
	return nil, g.commit(ops, sync)
}

func (g *gateSink) commit(ops []Op, sync bool) error {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.batches = append(g.batches, append([]Op(nil), ops...))
	return g.fail
}

func op(i int) Op { return Op{Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte("v")} }

func TestGroupCommitCoalesces(t *testing.T) {
	g := &gateSink{gate: make(chan struct{})}
	w := NewWriter(g, WriterOptions{})
	first := w.Enqueue(op(0)) // taken by the first commit, which blocks on the gate
	// Wait until the writer has taken the first record.
	for w.Stats().Pending != 0 {
	}
	var tickets []*Ticket
	for i := 1; i <= 50; i++ {
		tickets = append(tickets, w.Enqueue(op(i)))
	}
	close(g.gate)
	if err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tickets {
		if err := tk.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(g.batches); got != 2 {
		t.Errorf("batches = %d; want 2 (one in flight, the next 50 records grouped)", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStickyError(t *testing.T) {
	boom := errors.New("disk on fire")
	g := &gateSink{fail: boom}
	w := NewWriter(g, WriterOptions{})
	if err := w.Enqueue(op(1)).Wait(); !errors.Is(err, boom) {
		t.Fatalf("first commit error = %v; want %v", err, boom)
	}
	g.fail = nil
	if err := w.Enqueue(op(2)).Wait(); !errors.Is(err, boom) {
		t.Errorf("write after a failed commit: error = %v; want the sticky %v", err, boom)
	}
	if !errors.Is(w.Err(), boom) {
		t.Errorf("Err() = %v; want %v", w.Err(), boom)
	}
	w.Close()
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	g := &gateSink{}
	w := NewWriter(g, WriterOptions{})
	tk := w.Enqueue(op(1), op(2))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(); err != nil {
		t.Fatalf("queued write lost on Close: %v", err)
	}
	if err := w.Enqueue(op(3)).Wait(); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v; want ErrClosed", err)
	}
}

func TestBackPressureSplitsBatches(t *testing.T) {
	g := &gateSink{}
	w := NewWriter(g, WriterOptions{MaxPending: 8, MaxBatch: 3})
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := w.Enqueue(op(i), op(i+1000)).Wait(); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	w.Close()
	n := 0
	for _, b := range g.batches {
		if len(b) > 3 {
			t.Errorf("batch of %d records; want at most MaxBatch=3", len(b))
		}
		n += len(b)
	}
	if n != 80 {
		t.Errorf("committed %d records; want 80", n)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Writer()
	if err := w.Enqueue(Op{Key: []byte("u/1"), Value: []byte("one")}, Op{Key: []byte("u/2"), Value: []byte("two")}, Op{Key: []byte("s/x"), Value: []byte("sx")}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := w.Enqueue(Op{Key: []byte("u/2")}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	if err := s.Scan([]byte("u/"), func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "u/1=one" {
		t.Errorf("scan u/ = %q; want [u/1=one]", got)
	}
	if v, ok, err := s.Get([]byte("s/x")); err != nil || !ok || string(v) != "sx" {
		t.Errorf("Get(s/x) = %q, %v, %v; want sx", v, ok, err)
	}
}

// TestRefuseFailsTicketsAtOnceAndStillCommits: while the store refuses
// (a commit waits for disk space), the tickets in flight and new ones fail
// at once, Enqueue does not block on back-pressure, and every record is
// still committed, in order, once the commit goes on.
func TestRefuseFailsTicketsAtOnceAndStillCommits(t *testing.T) {
	g := &gateSink{gate: make(chan struct{})}
	w := NewWriter(g, WriterOptions{MaxPending: 8, MaxBatch: 4})
	first := w.Enqueue(op(0)) // its commit blocks on the gate
	for w.Stats().Pending != 0 {
	}
	queued := w.Enqueue(op(1)) // waits behind it
	full := errors.New("disk full")
	w.Refuse(full)
	for _, tk := range []*Ticket{first, queued} {
		if err := tk.Wait(); !errors.Is(err, full) {
			t.Fatalf("ticket in flight: %v; want %v at once", err, full)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 2; i < 100; i++ { // far past MaxPending
			if err := w.Enqueue(op(i)).Wait(); !errors.Is(err, full) {
				t.Errorf("write %d while refusing: %v; want %v", i, err, full)
			}
		}
	}()
	<-done // a blocked Enqueue would hang here
	w.Refuse(nil)
	close(g.gate)
	if err := w.Enqueue(op(100)).Wait(); err != nil {
		t.Fatalf("write after refusing ended: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range g.batches {
		for _, o := range b {
			got = append(got, string(o.Key))
		}
	}
	if len(got) != 101 {
		t.Fatalf("%d records committed; want all 101", len(got))
	}
	for i, k := range got {
		if want := string(op(i).Key); k != want {
			t.Fatalf("record %d committed is %s; want %s (in order)", i, k, want)
		}
	}
}

// TestRefuseEnds: once refusing ends, a new write gets a ticket of its own,
// not the one refused with the records queued before it.
func TestRefuseEnds(t *testing.T) {
	g := &gateSink{gate: make(chan struct{})}
	w := NewWriter(g, WriterOptions{})
	first := w.Enqueue(op(0)) // its commit blocks on the gate
	for w.Stats().Pending != 0 {
	}
	queued := w.Enqueue(op(1))
	full := errors.New("disk full")
	w.Refuse(full)
	if err := queued.Wait(); !errors.Is(err, full) {
		t.Fatalf("queued write: %v; want %v", err, full)
	}
	w.Refuse(nil)
	after := w.Enqueue(op(2))
	close(g.gate)
	if err := after.Wait(); err != nil {
		t.Errorf("write after refusing ended: %v; want it committed", err)
	}
	first.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// scriptSink answers each Apply with the next of its results; a batch's
// wait returns once release is closed.
type scriptSink struct {
	mu      sync.Mutex
	n       int
	fails   map[int]error // by batch number (from 0): Apply fails
	release chan struct{}
	applied chan int // each batch number as it is applied
}

func (s *scriptSink) Apply(ops []Op, _ bool) (func() error, error) {
	s.mu.Lock()
	i := s.n
	s.n++
	s.mu.Unlock()
	defer func() { s.applied <- i }()
	if err := s.fails[i]; err != nil {
		close(s.release) // the earlier batch's wait ends only now
		return nil, err
	}
	return func() error { <-s.release; return nil }, nil
}

// A batch committed before a later batch's Apply failed is acknowledged:
// the later failure (a PostgreSQL writer fenced by a new owner, say) does
// not make it untrue. Only a failed sync poisons what follows it.
func TestLaterApplyFailureKeepsEarlierCommit(t *testing.T) {
	s := &scriptSink{fails: map[int]error{1: errors.New("fenced")}, release: make(chan struct{}), applied: make(chan int, 2)}
	w := NewWriter(s, WriterOptions{MaxBatch: 1})
	defer w.Close()
	first := w.Enqueue(Op{Key: []byte("a"), Value: []byte("1")})
	<-s.applied // the first batch (and its ticket) is taken
	second := w.Enqueue(Op{Key: []byte("b"), Value: []byte("2")})
	if err := first.Wait(); err != nil {
		t.Errorf("committed batch reported as failed: %v", err)
	}
	if err := second.Wait(); err == nil {
		t.Error("failed batch acknowledged")
	}
}

// The records of one Enqueue (one operation's mutations) are never split
// over two batches: a batch that commits while the next fails must not
// leave half an operation in the store. A call larger than MaxBatch goes
// whole.
func TestBatchesKeepEachCallWhole(t *testing.T) {
	g := &gateSink{gate: make(chan struct{})}
	w := NewWriter(g, WriterOptions{MaxBatch: 5})
	first := w.Enqueue(op(0)) // taken at once; holds the writer at the gate
	var tickets []*Ticket
	for i := 1; i <= 6; i++ {
		tickets = append(tickets, w.Enqueue(op(i), op(i+100), op(i+200)))
	}
	big := w.Enqueue(op(300), op(301), op(302), op(303), op(304), op(305), op(306))
	close(g.gate)
	for _, tk := range append(tickets, first, big) {
		if err := tk.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	for _, b := range g.batches {
		// Every call of three starts with k0001..k0006 and comes whole.
		for i := 0; i < len(b); i++ {
			k := string(b[i].Key)
			if k >= "k0001" && k <= "k0006" {
				if i+2 >= len(b) || string(b[i+2].Key) != fmt.Sprintf("k%04d", 200+int(k[4]-'0')) {
					t.Fatalf("a call was split: batch %q", keysOf(b))
				}
				i += 2
			}
		}
		if len(b) > 5 && !(len(b) == 7 && string(b[0].Key) == "k0300") {
			t.Errorf("batch of %d records past MaxBatch=5 that is not one call: %q", len(b), keysOf(b))
		}
	}
}

func keysOf(b []Op) []string {
	out := make([]string, len(b))
	for i, o := range b {
		out[i] = string(o.Key)
	}
	return out
}
