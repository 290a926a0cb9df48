package etcdtest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kv talks to etcd's JSON gateway, so that this package's test needs no
// etcd client.
func kv(t *testing.T, s *Server, op, body string) (string, error) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Post(s.Endpoints()[0]+"/v3/kv/"+op, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d %s", op, resp.StatusCode, b)
	}
	return string(b), err
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestStopRestartKill: data survives Stop/Restart and Kill/Restart on the
// same ports; etcd is unreachable while stopped; Close leaves no process.
func TestStopRestartKill(t *testing.T) {
	s := Start(t)
	if _, err := kv(t, s, "put", fmt.Sprintf(`{"key":%q,"value":%q}`, b64("k"), b64("v"))); err != nil {
		t.Fatal(err)
	}
	endpoints := s.Endpoints()
	for _, stop := range []func(){s.Stop, s.Kill} {
		stop()
		if _, err := kv(t, s, "range", fmt.Sprintf(`{"key":%q}`, b64("k"))); err == nil {
			t.Fatal("etcd still answers after Stop/Kill")
		}
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		if got := s.Endpoints(); got[0] != endpoints[0] {
			t.Fatalf("endpoints changed across restart: %v then %v", endpoints, got)
		}
		out, err := kv(t, s, "range", fmt.Sprintf(`{"key":%q}`, b64("k")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, b64("v")) {
			t.Fatalf("key lost across restart: %s", out)
		}
	}
	pid := s.cmd.Process.Pid
	s.Close()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("etcd (pid %d) still runs after Close", pid)
	}
}
