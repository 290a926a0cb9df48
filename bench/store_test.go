package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/pgstore/pgtest"
)

// TestStoreBothSmoke: -store both measures session-check, session-new and
// login on PostgreSQL beside pebble, and stops its PostgreSQL at the end.
func TestStoreBothSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if _, err := pgtest.FindBin(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Scenarios: []string{"session-check", "session-new", "login"}, Store: StoreBoth,
		Conns: 4, Duration: 200 * time.Millisecond, Runs: 1, Pool: 20, LoginConns: 4, LoginSessions: 20,
		CheapHash: true, Shards: 4, TempDir: t.TempDir(), Log: &log, Sample: 4,
	})
	if err != nil {
		t.Fatalf("suite: %v\nlog:\n%s", err, log.String())
	}
	var names []string
	for _, s := range rep.Scenarios {
		names = append(names, s.Name)
		if s.Skipped != "" || len(s.Measurements) == 0 {
			t.Errorf("%s: skipped %q, %d figures", s.Name, s.Skipped, len(s.Measurements))
			continue
		}
		for _, m := range s.Measurements {
			if d := m.Median; d.Requests == 0 || d.OK == 0 || d.Errors != 0 || d.BadAns != 0 {
				t.Errorf("%s %s: %+v", s.Name, m.Name, d)
			}
		}
	}
	if strings.Join(names, ",") != "session-check,session-new,login,session-check [postgres],session-new [postgres],login [postgres]" {
		t.Errorf("scenarios %q", names)
	}
	if _, err := Run(context.Background(), Config{Store: "mysql", TempDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "unknown store") {
		t.Errorf("unknown store: %v", err)
	}
}
