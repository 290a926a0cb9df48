package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// faultyServer is a real server whose pebble store runs on a filesystem
// that fails WAL writes and syncs while armed.
type faultyServer struct {
	srv   *server.Server
	c     *client.Client
	url   string
	armed *atomic.Bool
}

func startFaulty(t *testing.T, dataDir string, armed *atomic.Bool) *faultyServer {
	t.Helper()
	env := map[string]string{
		"AUTHNZERVER_AUTHDB":         dataDir,
		"AUTHNZERVER_PORT":           "0",
		"AUTHNZERVER_SECRET":         crashKey,
		"AUTHNZERVER_PIISALT":        "test-pii-salt",
		"AUTHNZERVER_ADMIN_EMAIL":    servertest.AdminEmail,
		"AUTHNZERVER_ADMIN_PASSWORD": servertest.AdminPassword,
		"AUTHNZERVER_SHARDS":         "4",
		"AUTHNZERVER_RATELIMITS":     "none",
	}
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !armed.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			return errorfs.ErrInjected
		}
		return nil
	}))
	hp := servertest.CheapHash
	srv, err := server.Start(cfg, server.Options{
		Logger:     slog.New(slog.DiscardHandler),
		Getenv:     func(k string) string { return env[k] },
		HashParams: &hp,
		StoreFS:    fs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + srv.Addr.String() + "/"
	c, err := client.New(url, crashKey)
	if err != nil {
		t.Fatal(err)
	}
	return &faultyServer{srv: srv, c: c, url: url, armed: armed}
}

func (f *faultyServer) do(t *testing.T, reqType string, body map[string]any) *client.Response {
	t.Helper()
	body["client_ipaddr"] = "127.0.0.1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := f.c.Request(ctx, reqType, body)
	if err != nil {
		t.Fatalf("%s: %v", reqType, err)
	}
	return r
}

func (f *faultyServer) health(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(f.url + "health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func newSessionBody(n int) map[string]any {
	return map[string]any{
		"ip_address": "10.0.0.1", "user_agent": "diskfault", "user_id": nil,
		"expires":         time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"),
		"extra_info_json": map[string]any{"n": n},
	}
}

// TestDiskFault: when the disk fails, no write is acknowledged, reads keep
// being answered, writes are refused with 503 without changing state,
// /health says 500, and a restart on a healthy disk has every acknowledged
// write.
func TestDiskFault(t *testing.T) {
	dataDir := t.TempDir()
	var armed atomic.Bool
	f := startFaulty(t, dataDir, &armed)
	defer func() { f.srv.Close() }()

	r := f.do(t, "session-new", newSessionBody(1))
	if !r.Success {
		t.Fatalf("session-new on a healthy disk: %d %q", r.StatusCode, r.FailureReason)
	}
	tok := r.Str("session_token")
	if got := f.health(t); got != 200 {
		t.Fatalf("health on a healthy disk = %d; want 200", got)
	}

	armed.Store(true)
	// The write that meets the fault: its commit fails, so it is answered
	// 503, never success.
	if r := f.do(t, "session-new", newSessionBody(2)); r.StatusCode != 503 || r.Success {
		t.Errorf("write during the fault: status %d success %v; want 503", r.StatusCode, r.Success)
	}
	if got := f.health(t); got != 500 {
		t.Errorf("health with a failed store = %d; want 500", got)
	}
	// Reads keep working.
	r = f.do(t, "session-exists", map[string]any{"session_token": tok})
	if r.StatusCode != 200 || !r.Success {
		t.Errorf("read during the fault: status %d success %v; want 200 true", r.StatusCode, r.Success)
	}
	// Later writes are refused before they touch memory: the session is
	// neither deleted nor edited.
	armed.Store(false) // even with the disk back: the error is sticky
	if r := f.do(t, "session-delete", map[string]any{"session_token": tok}); r.StatusCode != 503 {
		t.Errorf("session-delete on a failed store: status %d; want 503", r.StatusCode)
	}
	if r := f.do(t, "internal-session-edit", map[string]any{"target_session_token": tok, "update_dict": map[string]any{"n": 99}}); r.StatusCode != 503 {
		t.Errorf("internal-session-edit on a failed store: status %d; want 503", r.StatusCode)
	}
	r = f.do(t, "session-exists", map[string]any{"session_token": tok})
	if !r.Success {
		t.Fatalf("refused delete changed memory: session gone")
	}
	if extra, _ := r.Map("session_info")["extra_info_json"].(map[string]any); extra["n"] != float64(1) {
		t.Errorf("refused edit changed memory: extra_info_json = %v; want n=1", extra)
	}
	if r.StatusCode != 200 {
		t.Errorf("status %d", r.StatusCode)
	}

	// Restart on the healthy disk: the acknowledged session is there, and
	// writes work again.
	f.srv.Close() // may report the sticky error
	f = startFaulty(t, dataDir, &armed)
	if got := f.health(t); got != 200 {
		t.Errorf("health after restart = %d; want 200", got)
	}
	r = f.do(t, "session-exists", map[string]any{"session_token": tok})
	if !r.Success {
		t.Errorf("acknowledged session lost across the fault and restart")
	}
	if r := f.do(t, "session-new", newSessionBody(3)); !r.Success {
		t.Errorf("write after restart: status %d %q", r.StatusCode, r.FailureReason)
	}
}
