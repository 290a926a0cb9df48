package passhash

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the hash worker process when this variable is
// set (see TestMain): "1" is the real worker; the other values are broken
// workers (see faultyHashWorker).
const hashWorkerEnv = "AUTHNZERVER_TEST_HASH_WORKER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(hashWorkerEnv); mode {
	case "":
		os.Exit(m.Run())
	case "1":
		if err := ServeHashWorker(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	default:
		faultyHashWorker(mode)
		os.Exit(3)
	}
}

// faultyHashWorker reads requests and answers each the broken way mode says:
// "exit" dies without an answer, "garbage" sends a frame that cannot be
// read and stays alive, "nophc" claims every hash succeeded with no PHC
// string, "error" reports an error that is not about a stored string, and
// "stall" never answers.
func faultyHashWorker(mode string) {
	r := bufio.NewReader(os.Stdin)
	for {
		var req hashProcRequest
		if err := readFrame(r, &req); err != nil {
			return
		}
		switch mode {
		case "exit":
			return
		case "garbage":
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], maxHashFrame+1)
			os.Stdout.Write(hdr[:])
		case "nophc":
			_ = writeFrame(os.Stdout, hashProcReply{ID: req.ID, OK: true})
		case "error":
			_ = writeFrame(os.Stdout, hashProcReply{ID: req.ID, Err: "disk on fire"})
		case "stall":
		}
	}
}

// childPID returns the pid of h's current worker process (0 if none).
func childPID(h *Hasher) int {
	h.proc.mu.Lock()
	defer h.proc.mu.Unlock()
	if h.proc.child == nil {
		return 0
	}
	return h.proc.child.cmd.Process.Pid
}

// processExists reports whether pid is a process, a zombie included: only a
// process that was waited for is gone.
func processExists(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestHashWorkerProcess(t *testing.T) {
	t.Setenv(hashWorkerEnv, "1")
	// The child is this test binary, built with -race: a 64 MiB verify in it
	// can take many seconds on a loaded machine, so the wait is generous.
	h := NewHasher(newQuietActorSystem(), HasherOptions{Workers: 2, Params: phcTestParams, Process: []string{os.Args[0]}, Timeout: 2 * time.Minute})
	defer h.Stop()
	rs, err := h.Run(HashOp{Password: "correct horse"})
	if err != nil || rs[0].Err != nil || rs[0].PHC == "" {
		t.Fatalf("hash in the worker process: %+v, %v", rs, err)
	}
	phc := rs[0].PHC
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pw := "correct horse"
			if i%2 == 1 {
				pw = "wrong"
			}
			rs, err := h.Run(HashOp{Verify: true, PHC: phc, Password: pw})
			if err != nil || rs[0].Err != nil {
				t.Errorf("verify: %+v, %v", rs, err)
				return
			}
			if rs[0].OK != (i%2 == 0) {
				t.Errorf("verify %q = %v", pw, rs[0].OK)
			}
		}(i)
	}
	wg.Wait()
	// The C.2 vector verifies in the child too, and says it needs a rehash
	// under other parameters.
	rs, err = h.Run(HashOp{Verify: true, PHC: phcTest212, Password: "correct horse battery staple"})
	if err != nil {
		t.Fatalf("C.2 vector in the child: %v", err)
	}
	if !rs[0].OK || !rs[0].NeedsRehash {
		t.Errorf("C.2 vector in the child: %+v", rs[0])
	}
}

func TestHashWorkerProcessRestartsAfterDeath(t *testing.T) {
	t.Setenv(hashWorkerEnv, "1")
	h := NewHasher(newQuietActorSystem(), HasherOptions{Workers: 1, Params: phcTestParams, Process: []string{os.Args[0]}})
	defer h.Stop()
	if rs, err := h.Run(HashOp{Password: "x"}); err != nil || rs[0].Err != nil {
		t.Fatalf("first hash: %+v %v", rs, err)
	}
	h.proc.mu.Lock()
	h.proc.child.cmd.Process.Kill()
	h.proc.mu.Unlock()
	// The op in flight when the child dies (if any) fails; later ones work.
	for i := 0; i < 20; i++ {
		rs, err := h.Run(HashOp{Password: "x"})
		if err == nil && rs[0].Err == nil {
			return
		}
		if !errors.Is(err, ErrHasherFault) || !errors.Is(err, ErrHashProcess) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	t.Fatal("hash worker process was not restarted")
}

// TestHashWorkerFaultsAreErrors: whatever way the worker process fails, Run
// fails with ErrHasherFault; it never reports a password as not matching.
// Only a stored string the server cannot verify is a
// result: it never matches.
func TestHashWorkerFaultsAreErrors(t *testing.T) {
	stored := "$argon2d$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A"
	verify := HashOp{Verify: true, PHC: phcTest212, Password: "correct horse battery staple"}
	hash := HashOp{Password: "correct horse battery staple"}
	for _, tc := range []struct {
		name, mode string
		op         HashOp
		want       []error // Run's error wraps each; nil: Run succeeds
		wantStored error   // with Run succeeding: the result's Err
	}{
		{name: "dies", mode: "exit", op: verify, want: []error{ErrHasherFault, ErrHashProcess}},
		{name: "bad frame", mode: "garbage", op: verify, want: []error{ErrHasherFault, ErrHashProcess}},
		{name: "hash without phc", mode: "nophc", op: hash, want: []error{ErrHasherFault}},
		{name: "error reply", mode: "error", op: verify, want: []error{ErrHasherFault, ErrHashProcess}},
		{name: "stalls", mode: "stall", op: verify, want: []error{ErrHasherTimeout}},
		{name: "cannot start", mode: "1", op: verify, want: []error{ErrHasherFault, ErrHashProcess}},
		{name: "stored argon2d", mode: "1", op: HashOp{Verify: true, PHC: stored, Password: "password"}, wantStored: ErrPHCUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(hashWorkerEnv, tc.mode)
			command := []string{os.Args[0]}
			if tc.name == "cannot start" {
				command = []string{t.TempDir() + "/no-such-worker"}
			}
			h := newTestHasher(t, HasherOptions{Workers: 1, Params: phcTestParams, Process: command, Timeout: 30 * time.Second})
			if tc.mode == "stall" {
				h.timeout = 200 * time.Millisecond // the caller gives up long before the child is killed
			}
			rs, err := h.Run(tc.op)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Run = %+v, %v; want an error wrapping %v", rs, err, w)
				}
			}
			if tc.want != nil {
				return
			}
			if err != nil || rs[0].OK || !errors.Is(rs[0].Err, tc.wantStored) {
				t.Errorf("Run = %+v, %v; want no match with Err %v", rs, err, tc.wantStored)
			}
		})
	}
}

// TestHashWorkerKilledMidOperation: the operation in flight when the worker
// process is killed fails with ErrHasherFault, not as a wrong password, and
// the next one gets a new process.
func TestHashWorkerKilledMidOperation(t *testing.T) {
	t.Setenv(hashWorkerEnv, "1")
	h := newTestHasher(t, HasherOptions{Workers: 1, Params: phcTestParams, Process: []string{os.Args[0]}, Timeout: 2 * time.Minute})
	rs, err := h.Run(HashOp{Password: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	phc := rs[0].PHC
	pid := childPID(h)
	// Stopped, the child holds the request until it is killed.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		rs  []HashResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		rs, err := h.Run(HashOp{Verify: true, PHC: phc, Password: "correct horse"})
		done <- answer{rs, err}
	}()
	waitFor(t, "the request to reach the child", func() bool {
		h.proc.mu.Lock()
		defer h.proc.mu.Unlock()
		return len(h.proc.pending) == 1
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if !errors.Is(a.err, ErrHasherFault) || !errors.Is(a.err, ErrHashProcess) {
		t.Fatalf("Run while the worker was killed = %+v, %v; want ErrHasherFault", a.rs, a.err)
	}
	rs, err = h.Run(HashOp{Verify: true, PHC: phc, Password: "correct horse"})
	if err != nil || !rs[0].OK {
		t.Fatalf("Run after the kill = %+v, %v; want a match in a new process", rs, err)
	}
	if childPID(h) == pid {
		t.Error("the killed process is still the worker")
	}
}

// TestHashWorkerStalledIsKilled: a worker process that does not answer is
// killed and reaped once its operation's wait ends, so the next operation
// gets a new process instead of waiting on the stalled one.
func TestHashWorkerStalledIsKilled(t *testing.T) {
	t.Setenv(hashWorkerEnv, "1")
	h := newTestHasher(t, HasherOptions{Workers: 1, Params: phcTestParams, Process: []string{os.Args[0]}, Timeout: 2 * time.Minute})
	// Set before the first Run, which the worker's reads happen after. It
	// must cover starting the (race-instrumented) child and one cheap hash.
	h.proc.timeout = 3 * time.Second
	if _, err := h.Run(HashOp{Password: "x"}); err != nil {
		t.Fatal(err)
	}
	pid := childPID(h)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	h.timeout = 100 * time.Millisecond // read only by Run, on this goroutine
	if _, err := h.Run(HashOp{Password: "x"}); !errors.Is(err, ErrHasherTimeout) {
		t.Fatalf("Run on a stalled worker = %v; want ErrHasherTimeout", err)
	}
	waitFor(t, "the stalled worker to be killed and reaped", func() bool { return !processExists(pid) })
	h.timeout = 2 * time.Minute
	if rs, err := h.Run(HashOp{Password: "x"}); err != nil || !rs[0].OK {
		t.Fatalf("Run after the stall = %+v, %v; want a hash from a new process", rs, err)
	}
}

// TestHasherStopReapsWorker: Stop ends the worker process and waits for it,
// so no child is left running or a zombie, even one that
// is stopped and would never read the end of its input.
func TestHasherStopReapsWorker(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "stopped"}[stopped]
		t.Run(name, func(t *testing.T) {
			t.Setenv(hashWorkerEnv, "1")
			h := NewHasher(newQuietActorSystem(), HasherOptions{Workers: 1, Params: phcTestParams, Process: []string{os.Args[0]}})
			if _, err := h.Run(HashOp{Password: "x"}); err != nil {
				h.Stop()
				t.Fatal(err)
			}
			pid := childPID(h)
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if stopped {
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			h.Stop()
			if processExists(pid) {
				t.Errorf("worker process %d still exists after Stop", pid)
			}
		})
	}
}

func FuzzHashFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req hashProcRequest
		_ = readFrame(bytes.NewReader(b), &req) // an error is fine; a panic is not
	})
}

// TestHashWorkerNice: by default the worker process runs at the server's
// priority (under nice 19 it got almost no CPU while the front was busy
// refusing a flood); HasherOptions.Nice lowers it by that much, for every
// thread of the worker.
func TestHashWorkerNice(t *testing.T) {
	t.Setenv(hashWorkerEnv, "1")
	self, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, nice := range []int{0, 7} {
		h := newTestHasher(t, HasherOptions{Workers: 1, Params: phcTestParams, Process: []string{os.Args[0]}, Nice: nice, Timeout: 2 * time.Minute})
		if _, err := h.Run(HashOp{Password: "x"}); err != nil {
			t.Fatal(err)
		}
		// The raw syscall answers 20 - nice: a lower value is a lower priority.
		child, err := syscall.Getpriority(syscall.PRIO_PROCESS, childPID(h))
		if err != nil {
			t.Fatal(err)
		}
		if self-child != nice {
			t.Errorf("Nice %d: worker priority %d, server's %d; want the worker %d below", nice, child, self, nice)
		}
	}
}
