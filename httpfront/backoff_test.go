package httpfront

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/wire"
)

// A verification that failed because of the hasher is an error answered by
// status, never a wrong password (which would count as a failure); a stored
// hash this server cannot verify never matches.
func TestVerifyOpErr(t *testing.T) {
	tests := []struct {
		err       error
		wantFault bool
	}{
		{nil, false},
		{fmt.Errorf("parse: %w", passhash.ErrPHCMalformed), false},
		{fmt.Errorf("parse: %w", passhash.ErrPHCOutOfBounds), false},
		{fmt.Errorf("parse: %w", passhash.ErrPHCUnsupported), false},
		{fmt.Errorf("%w: broken pipe", passhash.ErrHashProcess), true},
		{passhash.ErrHasherTimeout, true},
		{passhash.ErrHasherStopped, true},
		{errors.New("passhash: hasher op panicked: boom"), true},
	}
	for _, tt := range tests {
		got := verifyOpErr(tt.err)
		if (got != nil) != tt.wantFault {
			t.Errorf("verifyOpErr(%v) = %v; want a fault: %v", tt.err, got, tt.wantFault)
		}
		if got != nil && !errors.Is(got, tt.err) {
			t.Errorf("verifyOpErr(%v) = %v; does not wrap the cause", tt.err, got)
		}
	}
}

func TestProtectedWindowGrowsToLockTime(t *testing.T) {
	tests := []struct {
		k        int
		lockTime time.Duration
		want     time.Duration
	}{
		{0, time.Hour, 40 * time.Second},
		{1, time.Hour, 40 * time.Second},
		{2, time.Hour, 80 * time.Second},
		{3, time.Hour, 160 * time.Second},
		{7, time.Hour, 2560 * time.Second},
		{8, time.Hour, time.Hour},
		{1000, time.Hour, time.Hour}, // no overflow
		{1, 10 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := protectedWindow(tt.k, tt.lockTime); got != tt.want {
			t.Errorf("protectedWindow(%d, %v) = %v; want %v", tt.k, tt.lockTime, got, tt.want)
		}
	}
}

// A hash worker process that dies answers every verification with an
// error: the request is answered by status, and however often it happens,
// the account is never counted as failing (no lock answer later).
func TestHasherFaultNeverAPasswordFailure(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	system := actors.NewActorSystem(lg)
	core, err := actors.Start(system, nil, nil, actors.Options{Shards: 2, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	hasher := passhash.NewHasher(system, passhash.HasherOptions{
		Params:  passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16},
		Process: []string{"false"}, // exits at once: every operation fails
		Timeout: time.Minute,
	})
	t.Cleanup(func() { hasher.Stop(); core.Stop() })
	codec, err := wire.NewCodec([]string{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const tries = 2
	srv, err := New(Options{Logger: lg, RateLimits: "none", Users: UserOptions{LockTries: tries}}, Deps{Codec: codec, Core: core, Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < tries+2; i++ {
		ok, resp, msgs, reason, err := srv.Call("user-passcheck-nosession", map[string]any{"email": "fault@example.org", "password": "whatever"})
		if err == nil {
			t.Fatalf("attempt %d with a dead hash worker: success %v reason %q messages %q (%v); want an error status", i, ok, reason, msgs, resp)
		}
		if !strings.Contains(err.Error(), "answered HTTP 5") {
			t.Errorf("attempt %d: %v; want a 5xx answer", i, err)
		}
	}
}
