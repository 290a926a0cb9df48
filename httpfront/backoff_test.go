package httpfront

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/wire"
)

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
	accounts := actors.NewAccounts(core, hasher, actors.AccountOptions{LockTries: tries, Logger: lg})
	srv, err := New(Options{Logger: lg, RateLimits: "none"}, Deps{Codec: codec, Core: core, Hasher: hasher, Accounts: accounts})
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
