package actors

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the hash worker process when this variable is
// set (see TestMain).
const hashWorkerEnv = "AUTHNZERVER_TEST_HASH_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(hashWorkerEnv) == "1" {
		if err := ServeHashWorker(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHashWorkerProcess(t *testing.T) {
	t.Setenv(hashWorkerEnv, "1")
	// The child is this test binary, built with -race: a 64 MiB verify in it
	// can take many seconds on a loaded machine, so the wait is generous.
	h := NewHasher(NewActorSystem(nil), HasherOptions{Workers: 2, Params: phcTestParams, Process: []string{os.Args[0]}, Timeout: 2 * time.Minute})
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
	h := NewHasher(NewActorSystem(nil), HasherOptions{Workers: 1, Params: phcTestParams, Process: []string{os.Args[0]}})
	defer h.Stop()
	if rs, err := h.Run(HashOp{Password: "x"}); err != nil || rs[0].Err != nil {
		t.Fatalf("first hash: %+v %v", rs, err)
	}
	h.proc.mu.Lock()
	h.proc.cmd.Process.Kill()
	h.proc.mu.Unlock()
	// The op in flight when the child dies (if any) fails; later ones work.
	for i := 0; i < 20; i++ {
		rs, err := h.Run(HashOp{Password: "x"})
		if err == nil && rs[0].Err == nil {
			return
		}
		if err == nil && !errors.Is(rs[0].Err, ErrHashProcess) {
			t.Fatalf("unexpected error %v", rs[0].Err)
		}
	}
	t.Fatal("hash worker process was not restarted")
}

func FuzzHashFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req hashProcRequest
		_ = readFrame(bytes.NewReader(b), &req) // an error is fine; a panic is not
	})
}
