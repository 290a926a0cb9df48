package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
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
	f, err := startStoreServer(t, dataDir, storeServerOpts{fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	f.armed = armed
	return f
}

// storeServerOpts are the parts of a store test's server that vary.
type storeServerOpts struct {
	fs   vfs.FS            // nil: the OS's
	env  map[string]string // added to the test environment
	logs io.Writer         // nil: discarded
}

// startStoreServer starts a real server on dataDir and listens on a
// loopback port; it returns Start's error as it is.
func startStoreServer(t *testing.T, dataDir string, o storeServerOpts) (*faultyServer, error) {
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
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.DiscardHandler)
	if o.logs != nil {
		lg = slog.New(slog.NewTextHandler(o.logs, nil))
	}
	hp := servertest.CheapHash
	srv, err := server.Start(cfg, server.Options{
		Logger:     lg,
		Getenv:     func(k string) string { return env[k] },
		HashParams: &hp,
		StoreFS:    o.fs,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	url := "http://" + srv.Addr.String() + "/"
	c, err := client.New(url, crashKey)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return &faultyServer{srv: srv, c: c, url: url}, nil
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
	code, _ := f.healthBody(t)
	return code
}

// healthBody returns the status and the store's entry of GET /health.
func (f *faultyServer) healthBody(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(f.url + "health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Workers map[string]string `json:"Workers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("health body: %v", err)
	}
	return resp.StatusCode, body.Workers["store"]
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

// mountSmallFS mounts a tmpfs of size MiB in a new directory and unmounts
// it at the end of the test; it skips the test where mounting is not
// permitted (not root, no CAP_SYS_ADMIN).
func mountSmallFS(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s); the disk-full test needs root", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill: %v", err)
				}
				break
			}
		}
	}
	return path
}

// TestDiskFullOnSmallFilesystem fills the real filesystem under a running
// server: the write that meets the full disk is still made durable (on the
// freed reserve) or refused, never left hanging; from then on writes are
// answered 503 at once, reads keep working, /health answers 500 saying the
// store is failing because the disk is full, and the full disk is logged
// once. Once space is freed the server accepts writes again by itself, and
// a restart has every acknowledged write.
func TestDiskFullOnSmallFilesystem(t *testing.T) {
	mnt := mountSmallFS(t, 32)
	dataDir := filepath.Join(mnt, "data")
	logs := &servertest.LogBuffer{}
	f, err := startStoreServer(t, dataDir, storeServerOpts{env: map[string]string{"AUTHNZERVER_DISKRESERVE": "4"}, logs: logs})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { f.srv.Close() }()
	if code, store := f.healthBody(t); code != 200 || store != "ok" {
		t.Fatalf("health before the disk fills: %d %q", code, store)
	}
	filler := fill(t, mnt)

	// Big sessions, so the log and the memtable need new space soon.
	pad := strings.Repeat("p", 15<<10) // within the default extra-info bound (16 KiB)
	var acked []string
	refused := false
	for i := 0; i < 4000 && !refused; i++ {
		body := newSessionBody(i)
		body["extra_info_json"] = map[string]any{"n": i, "pad": pad}
		r := f.do(t, "session-new", body) // fails the test on a hang (30 s)
		switch {
		case r.Success:
			acked = append(acked, r.Str("session_token"))
		case r.StatusCode == 503:
			refused = true
		default:
			t.Fatalf("session-new on a filling disk: status %d %q; want success or 503", r.StatusCode, r.FailureReason)
		}
	}
	if !refused {
		t.Fatalf("%d writes on a full disk and none refused", len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("no write acknowledged before the disk filled: the test does not test the restart")
	}
	if code, store := f.healthBody(t); code != 500 || !strings.Contains(store, "failing") || !strings.Contains(store, "disk full") {
		t.Errorf("health on a full disk: %d %q; want 500 saying the store is failing: disk full", code, store)
	}
	if r := f.do(t, "session-new", newSessionBody(-1)); r.StatusCode != 503 {
		t.Errorf("write on a full disk: status %d; want 503", r.StatusCode)
	}
	if r := f.do(t, "session-exists", map[string]any{"session_token": acked[0]}); r.StatusCode != 200 || !r.Success {
		t.Errorf("read on a full disk: status %d success %v; want 200 true", r.StatusCode, r.Success)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, store := f.healthBody(t)
		if code == 200 && store == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health 60 s after space was freed: %d %q; want 200 ok", code, store)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := f.do(t, "session-new", newSessionBody(-2))
	if !r.Success {
		t.Fatalf("write after space was freed: status %d %q", r.StatusCode, r.FailureReason)
	}
	acked = append(acked, r.Str("session_token"))

	out := logs.String()
	if n := strings.Count(out, `msg="store: disk full`); n != 1 {
		t.Errorf("the full disk was logged %d times; want once:\n%s", n, out)
	}
	if strings.Contains(out, "goroutine ") {
		t.Errorf("a stack trace in the log:\n%s", out)
	}

	if err := f.srv.Close(); err != nil {
		t.Errorf("close after the disk recovered: %v", err)
	}
	f, err = startStoreServer(t, dataDir, storeServerOpts{env: map[string]string{"AUTHNZERVER_DISKRESERVE": "4"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range acked {
		if r := f.do(t, "session-exists", map[string]any{"session_token": tok}); !r.Success {
			t.Errorf("acknowledged session %d of %d lost across the full disk and a restart", i, len(acked))
		}
	}
}
