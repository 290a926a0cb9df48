package passhash

import (
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// hashGate lets a test hold workers inside an operation: an op whose password
// starts with "block" waits in the test hook until release is called, and one
// whose password is "panic" panics.
type hashGate struct {
	entered chan string   // receives the password of each op that blocks; buffered
	gate    chan struct{} // closed by release
	once    sync.Once
}

func newHashGate() *hashGate {
	return &hashGate{entered: make(chan string, 16), gate: make(chan struct{})}
}

func (g *hashGate) hook(op HashOp) {
	switch {
	case op.Password == "panic":
		panic("test panic")
	case strings.HasPrefix(op.Password, "block"):
		g.entered <- op.Password
		<-g.gate
	}
}

func (g *hashGate) release() { g.once.Do(func() { close(g.gate) }) }

// waitEntered waits until an op has blocked in the hook and returns its password.
func (g *hashGate) waitEntered(t *testing.T) string {
	t.Helper()
	select {
	case pw := <-g.entered:
		return pw
	case <-time.After(10 * time.Second):
		t.Fatal("no op reached the test hook")
		return ""
	}
}

// newTestHasher starts a pool with small parameters; zero fields of opts take
// test defaults. It is stopped when the test ends.
func newTestHasher(t testing.TB, opts HasherOptions) *Hasher {
	t.Helper()
	if opts.Params == (HashParams{}) {
		opts.Params = phcTestParams
	}
	system := newQuietActorSystem()
	h := NewHasher(system, opts)
	t.Cleanup(func() {
		h.Stop()
		system.Shutdown()
	})
	return h
}

// newQuietActorSystem returns an actor system that does not log.
func newQuietActorSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// runAsync starts h.Run(ops...) on its own goroutine.
func runAsync(h *Hasher, ops ...HashOp) <-chan error {
	done := make(chan error, 1)
	go func() {
		res, err := h.Run(ops...)
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		done <- err
	}()
	return done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestHasherRun(t *testing.T) {
	h := newTestHasher(t, HasherOptions{Workers: 2})

	res, err := h.Run(HashOp{Password: "hunter2 hunter2"})
	if err != nil || len(res) != 1 || !res[0].OK || res[0].Err != nil {
		t.Fatalf("Run(hash) = %+v, %v; want one OK result", res, err)
	}
	phc := res[0].PHC
	p, err := ParsePHC(phc)
	if err != nil || p.NeedsRehash(phcTestParams) {
		t.Fatalf("new hash %q: ParsePHC error %v, NeedsRehash %v; want nil, false", phc, err, p.NeedsRehash(phcTestParams))
	}

	// A login: dummy verification, then the real one, in one job. A stored
	// hash with other parameters verifies and asks for a rehash.
	old, err := hashPassword(HashParams{TimeCost: 2, MemoryKiB: 32, Threads: 2, KeyLen: 16, SaltLen: 8}, "hunter2 hunter2", strings.NewReader(strings.Repeat("s", 8)))
	if err != nil {
		t.Fatal(err)
	}
	res, err = h.Run(
		HashOp{Verify: true, PHC: h.DummyPHC(), Password: "hunter2 hunter2"},
		HashOp{Verify: true, PHC: phc, Password: "hunter2 hunter2"},
		HashOp{Verify: true, PHC: phc, Password: "wrong"},
		HashOp{Verify: true, PHC: old, Password: "hunter2 hunter2"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []HashResult{{OK: false}, {OK: true}, {OK: false}, {OK: true, NeedsRehash: true}}
	if len(res) != len(want) {
		t.Fatalf("got %d results; want %d", len(res), len(want))
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("result %d = %+v; want %+v", i, res[i], want[i])
		}
	}

	res, err = h.Run(HashOp{Verify: true, PHC: "$argon2d$v=19$m=65536,t=3,p=4$AAECAwQFBgcICQoLDA0ODw$d/VOqhZTKwCM/uQ6epxznw", Password: "x"})
	if err != nil || res[0].OK || !errors.Is(res[0].Err, ErrPHCUnsupported) {
		t.Errorf("Run(verify argon2d) = %+v, %v; want Err ErrPHCUnsupported", res, err)
	}

	if res, err := h.Run(); res != nil || err != nil {
		t.Errorf("Run() = %v, %v; want nil, nil", res, err)
	}
	if _, err := h.Run(make([]HashOp, hashMaxOpsPerRun+1)...); err == nil {
		t.Errorf("Run(%d ops) error nil; want an error", hashMaxOpsPerRun+1)
	}
}

func TestHasherDummyPHC(t *testing.T) {
	h := newTestHasher(t, HasherOptions{Workers: 1})
	p, err := ParsePHC(h.DummyPHC())
	if err != nil || p.NeedsRehash(h.Params()) {
		t.Fatalf("DummyPHC %q: ParsePHC error %v; want parameters %+v", h.DummyPHC(), err, h.Params())
	}
	h2 := newTestHasher(t, HasherOptions{Workers: 1})
	if h.DummyPHC() == h2.DummyPHC() {
		t.Errorf("two pools have the same DummyPHC %q; want random ones", h.DummyPHC())
	}
}

func TestHasherBusy(t *testing.T) {
	g := newHashGate()
	h := newTestHasher(t, HasherOptions{Workers: 1, QueueLen: 1, testHook: g.hook})
	defer g.release()

	first := runAsync(h, HashOp{Password: "block"})
	g.waitEntered(t) // the worker is busy
	second := runAsync(h, HashOp{Password: "queued"})
	waitFor(t, "the second job to be queued", func() bool { return h.QueueDepth() == 1 })

	start := time.Now()
	_, err := h.Run(HashOp{Password: "third"})
	if elapsed := time.Since(start); !errors.Is(err, ErrHasherBusy) || elapsed > time.Second {
		t.Fatalf("third Run = %v after %v; want ErrHasherBusy at once", err, elapsed)
	}

	g.release()
	for i, done := range []<-chan error{first, second} {
		if err := <-done; err != nil {
			t.Errorf("Run %d = %v; want nil", i+1, err)
		}
	}
	if _, err := h.Run(HashOp{Password: "after"}); err != nil {
		t.Errorf("Run after the queue drained = %v; want nil", err)
	}
	if n := h.inflight.Load(); n != 0 {
		t.Errorf("inflight = %d after all jobs; want 0", n)
	}
}

// TestHasherLeastLoaded: while one worker is held, every job goes to the
// other; a round-robin router would queue every second job behind the held one.
func TestHasherLeastLoaded(t *testing.T) {
	g := newHashGate()
	h := newTestHasher(t, HasherOptions{Workers: 2, QueueLen: 8, testHook: g.hook})
	defer g.release()

	held := runAsync(h, HashOp{Password: "block"})
	g.waitEntered(t)
	for i := range 6 {
		done := runAsync(h, HashOp{Password: "quick"})
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("job %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("job %d queued behind the held worker; want it on the idle one", i)
		}
	}
	g.release()
	if err := <-held; err != nil {
		t.Errorf("held job: %v", err)
	}
}

func TestHasherPick(t *testing.T) {
	tests := []struct {
		name string
		load []int32
		want int
	}{
		{"all idle", []int32{0, 0, 0}, 0},
		{"first busy", []int32{1, 0, 0}, 1},
		{"fewest queued", []int32{3, 2, 4}, 1},
		{"last idle", []int32{2, 1, 0}, 2},
		{"one worker", []int32{5}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Hasher{load: make([]atomic.Int32, len(tt.load))}
			for i, n := range tt.load {
				h.load[i].Store(n)
			}
			if got := h.pick(); got != tt.want {
				t.Fatalf("pick() = %d; want %d", got, tt.want)
			}
			if got := h.load[tt.want].Load(); got != tt.load[tt.want]+1 {
				t.Errorf("load[%d] = %d after pick; want %d", tt.want, got, tt.load[tt.want]+1)
			}
		})
	}
}

// TestHasherPanic: a panicking operation fails its whole Run with
// ErrHasherFault (it says nothing about the password), and the worker lives on.
func TestHasherPanic(t *testing.T) {
	h := newTestHasher(t, HasherOptions{Workers: 1, testHook: newHashGate().hook})
	res, err := h.Run(HashOp{Password: "panic"}, HashOp{Password: "fine"})
	if !errors.Is(err, ErrHasherFault) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("Run = %+v, %v; want ErrHasherFault about a panic", res, err)
	}
	if res, err := h.Run(HashOp{Password: "again"}); err != nil || !res[0].OK {
		t.Errorf("Run after a panic = %+v, %v; want OK", res, err)
	}
}

func TestHasherTimeout(t *testing.T) {
	g := newHashGate()
	h := newTestHasher(t, HasherOptions{Workers: 1, Timeout: 50 * time.Millisecond, testHook: g.hook})
	defer g.release()
	if _, err := h.Run(HashOp{Password: "block"}); !errors.Is(err, ErrHasherTimeout) {
		t.Fatalf("Run = %v; want ErrHasherTimeout", err)
	}
	g.release()
	waitFor(t, "the timed-out job to finish", func() bool { return h.inflight.Load() == 0 })
	if _, err := h.Run(HashOp{Password: "next"}); err != nil {
		t.Errorf("Run after a timeout = %v; want nil", err)
	}
}

// TestHasherStop: Stop lets admitted jobs finish with their replies, then
// refuses new ones.
func TestHasherStop(t *testing.T) {
	g := newHashGate()
	h := newTestHasher(t, HasherOptions{Workers: 1, QueueLen: 2, testHook: g.hook})
	running := runAsync(h, HashOp{Password: "block"})
	g.waitEntered(t)
	queued := runAsync(h, HashOp{Password: "queued"})
	waitFor(t, "the second job to be queued", func() bool { return h.QueueDepth() == 1 })

	stopped := make(chan struct{})
	go func() {
		h.Stop()
		close(stopped)
	}()
	waitFor(t, "Stop to begin", func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return h.stopped
	})
	if _, err := h.Run(HashOp{Password: "late"}); !errors.Is(err, ErrHasherStopped) {
		t.Errorf("Run during Stop = %v; want ErrHasherStopped", err)
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned while a job was running; want it to wait")
	default:
	}
	g.release()
	<-stopped
	for i, done := range []<-chan error{running, queued} {
		if err := <-done; err != nil {
			t.Errorf("job %d admitted before Stop = %v; want nil", i, err)
		}
	}
	h.Stop() // idempotent
}

func TestNewHasherDefaults(t *testing.T) {
	h := newTestHasher(t, HasherOptions{Params: HashParams{MemoryKiB: 64, TimeCost: 1}})
	if got, want := len(h.pids), runtime.NumCPU(); got != want {
		t.Errorf("workers = %d; want NumCPU = %d", got, want)
	}
	if got, want := h.capacity, int32(5*runtime.NumCPU()); got != want {
		t.Errorf("capacity = %d; want %d", got, want)
	}
	want := DefaultHashParams()
	want.MemoryKiB, want.TimeCost = 64, 1
	if h.Params() != want {
		t.Errorf("Params() = %+v; want %+v", h.Params(), want)
	}
	if h.timeout != hashDefaultTimeout {
		t.Errorf("timeout = %v; want %v", h.timeout, hashDefaultTimeout)
	}
}

func TestNewHasherPanics(t *testing.T) {
	tests := []struct {
		name string
		opts HasherOptions
	}{
		{"negative workers", HasherOptions{Workers: -1}},
		{"negative queue", HasherOptions{QueueLen: -1}},
		{"negative timeout", HasherOptions{Timeout: -1}},
		{"memory above bound", HasherOptions{Params: HashParams{MemoryKiB: phcMaxMemoryKiB + 1}}},
		{"salt below bound", HasherOptions{Params: HashParams{MemoryKiB: 64, TimeCost: 1, SaltLen: 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHasher(%+v) did not panic", tt.opts)
				}
			}()
			NewHasher(newQuietActorSystem(), tt.opts)
		})
	}
}
