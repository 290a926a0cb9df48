package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/persist/persisttest"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// TestDamagedStoreStartMessage: the server refuses to start on a damaged
// table file with one line on stderr that names the file and says to
// restore from a backup, and exit status 1, not a Go panic.
func TestDamagedStoreStartMessage(t *testing.T) {
	ts := servertest.Start(t)
	for range 20 {
		ts.NewSession(0)
	}
	ts.Stop() // flushes: the records are in table files now
	tables := persisttest.DamageTables(t, filepath.Join(ts.DataDir(), "db"))
	env := adminEnv(ts, "AUTHNZERVER_PORT", "0", "AUTHNZERVER_HASHISOLATION", "off", "AUTHNZERVER_LOGLEVEL", "error")
	code, _, stderr := runCmd(t, env, "")
	if code != 1 {
		t.Errorf("exit status %d; want 1", code)
	}
	var msg string
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(line, "authnzerver: ") {
			msg = line
		}
	}
	named := false
	for _, p := range tables {
		named = named || strings.Contains(msg, filepath.Base(p))
	}
	if !named || !strings.Contains(msg, "restore") || !strings.Contains(msg, "backup") {
		t.Errorf("stderr %q; want a line naming the damaged file and saying to restore from a backup", stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr has a Go panic:\n%s", stderr)
	}
}

// TestWALDamageFlag: the server refuses to start on a write-ahead log
// damaged in the middle, saying how to go on, and starts with
// --waldamage skip. (A cancelled context makes run stop as soon as it
// serves.)
func TestWALDamageFlag(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_DISKRESERVE", "1"))
	for range 20 {
		ts.NewSession(0)
	}
	// A copy taken while the server runs is what a crash leaves: the
	// sessions are in the write-ahead log only.
	img := t.TempDir()
	src := filepath.Join(ts.DataDir(), "db")
	if err := os.Mkdir(filepath.Join(img, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "LOCK" || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, "db", e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ts.Stop()
	logs, _ := filepath.Glob(filepath.Join(img, "db", "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log")
	}
	wal := logs[len(logs)-1]
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}

	env := adminEnv(ts, "AUTHNZERVER_AUTHDB", img, "AUTHNZERVER_PORT", "0", "AUTHNZERVER_HASHISOLATION", "off",
		"AUTHNZERVER_LOGLEVEL", "error", "AUTHNZERVER_DISKRESERVE", "1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	run1 := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, env, &out, &errb)
		return code, errb.String()
	}
	if code, stderr := run1(); code != 1 || !strings.Contains(stderr, "is damaged at byte") || !strings.Contains(stderr, "AUTHNZERVER_WALDAMAGE=skip") {
		t.Errorf("start on a damaged log: exit %d, stderr %q; want 1 and how to go on", code, stderr)
	}
	if code, stderr := run1("--waldamage", "skip"); code != 0 || !strings.Contains(stderr, "lost_commits=") {
		t.Errorf("start with --waldamage skip: exit %d, stderr %q; want 0 and the loss logged", code, stderr)
	}
	if code, stderr := run1("--waldamage", "ignore"); code != 2 || !strings.Contains(stderr, "waldamage") {
		t.Errorf("--waldamage ignore: exit %d, stderr %q; want 2 and the option named", code, stderr)
	}
}
