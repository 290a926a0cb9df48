package server_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/persist/persisttest"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// smallReserve keeps the copies of crash images small.
var smallReserve = map[string]string{"AUTHNZERVER_DISKRESERVE": "1"}

// copyTree copies the regular files of src into dst (made 0700), leaving
// out the store's LOCK: a copy of a running server's data directory is
// what a crash leaves.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Name() == "LOCK" || !d.Type().IsRegular():
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashedDataDir runs a server, acknowledges n new sessions, and returns a
// copy of its data directory taken before it stopped (the sessions are in
// the write-ahead log only) with the tokens.
func crashedDataDir(t *testing.T, n int) (string, []string) {
	t.Helper()
	live := t.TempDir()
	f, err := startStoreServer(t, live, storeServerOpts{env: smallReserve})
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for i := range n {
		r := f.do(t, "session-new", newSessionBody(i))
		if !r.Success {
			t.Fatalf("session-new: %d %q", r.StatusCode, r.FailureReason)
		}
		tokens = append(tokens, r.Str("session_token"))
	}
	img := t.TempDir()
	copyTree(t, live, img)
	f.srv.Close()
	return img, tokens
}

// newestWAL returns the live write-ahead log of the store in dataDir.
func newestWAL(t *testing.T, dataDir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dataDir, "db", "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log in the crash image")
	}
	return logs[len(logs)-1]
}

// sessionsLeft counts the tokens the server still knows.
func sessionsLeft(t *testing.T, f *faultyServer, tokens []string) int {
	t.Helper()
	n := 0
	for _, tok := range tokens {
		if f.do(t, "session-exists", map[string]any{"session_token": tok}).Success {
			n++
		}
	}
	return n
}

// TestWALDamageAtStart: a byte flipped in the middle of the live
// write-ahead log stops the start with a message that says what would be
// lost and what to do; AUTHNZERVER_WALDAMAGE=skip starts without the
// commits after the damage and says so loudly in the log; a torn tail (the
// last write cut short by the crash) starts normally.
func TestWALDamageAtStart(t *testing.T) {
	const n = 20
	t.Run("damage refused", func(t *testing.T) {
		img, _ := crashedDataDir(t, n)
		flipMiddle(t, newestWAL(t, img))
		f, err := startStoreServer(t, img, storeServerOpts{env: smallReserve})
		if err == nil {
			f.srv.Close()
			t.Fatal("the server started on a write-ahead log damaged in the middle")
		}
		var dmg *persist.WALDamageError
		if !errors.As(err, &dmg) || dmg.LostRecords == 0 {
			t.Fatalf("start error %v; want a WALDamageError that counts the commits lost", err)
		}
		msg := err.Error()
		for _, want := range []string{"damaged at byte", "cannot be replayed", "backup", "AUTHNZERVER_WALDAMAGE=skip"} {
			if !strings.Contains(msg, want) {
				t.Errorf("start error %q lacks %q", msg, want)
			}
		}
	})
	t.Run("damage skipped", func(t *testing.T) {
		img, tokens := crashedDataDir(t, n)
		flipMiddle(t, newestWAL(t, img))
		logs := &servertest.LogBuffer{}
		env := map[string]string{"AUTHNZERVER_WALDAMAGE": "skip", "AUTHNZERVER_DISKRESERVE": "1"}
		f, err := startStoreServer(t, img, storeServerOpts{env: env, logs: logs})
		if err != nil {
			t.Fatalf("start with AUTHNZERVER_WALDAMAGE=skip: %v", err)
		}
		defer f.srv.Close()
		if left := sessionsLeft(t, f, tokens); left == 0 || left == n {
			t.Errorf("%d of %d sessions after skipping the damage; want those before it only", left, n)
		}
		out := logs.String()
		if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "lost_commits=") || !strings.Contains(out, "copy=") {
			t.Errorf("the skipped damage is not reported loudly:\n%s", out)
		}
	})
	t.Run("torn tail", func(t *testing.T) {
		img, tokens := crashedDataDir(t, n)
		wal := newestWAL(t, img)
		st, err := os.Stat(wal)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(wal, st.Size()-5); err != nil {
			t.Fatal(err)
		}
		f, err := startStoreServer(t, img, storeServerOpts{env: smallReserve})
		if err != nil {
			t.Fatalf("start after a torn tail: %v", err)
		}
		defer f.srv.Close()
		// The cut can only take the last session.
		if left := sessionsLeft(t, f, tokens); left < n-1 {
			t.Errorf("%d of %d sessions after a torn tail; want at least %d", left, n, n-1)
		}
	})
}

func flipMiddle(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedTableAtStart: a table file damaged on disk stops the start
// with an error naming the file and saying to restore from a backup, not
// with a panic.
func TestDamagedTableAtStart(t *testing.T) {
	dataDir := t.TempDir()
	f, err := startStoreServer(t, dataDir, storeServerOpts{env: smallReserve})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if r := f.do(t, "session-new", newSessionBody(i)); !r.Success {
			t.Fatalf("session-new: %d", r.StatusCode)
		}
	}
	if err := f.srv.Close(); err != nil { // flushes: everything is in tables
		t.Fatal(err)
	}
	tables := persisttest.DamageTables(t, filepath.Join(dataDir, "db"))
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("start on a damaged table panicked: %v", r)
			}
		}()
		f, err = startStoreServer(t, dataDir, storeServerOpts{env: smallReserve})
	}()
	if err == nil {
		f.srv.Close()
		t.Fatal("the server started on a damaged table file")
	}
	msg := err.Error()
	named := false
	for _, tb := range tables {
		named = named || strings.Contains(msg, tb)
	}
	if !named || !strings.Contains(msg, "restore") || !strings.Contains(msg, "backup") || strings.Contains(msg, "\n") {
		t.Errorf("start error %q; want one line naming the damaged file (one of %v) and saying to restore from a backup", msg, tables)
	}
}

// TestStoreFilesPrivateUnderUmask: under the usual umask of 022, nothing
// the server writes in its data directory or in a backup is readable by
// anyone but its user.
func TestStoreFilesPrivateUnderUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dataDir, backups := t.TempDir(), t.TempDir()
	f, err := startStoreServer(t, dataDir, storeServerOpts{env: map[string]string{"AUTHNZERVER_DISKRESERVE": "1", "AUTHNZERVER_BACKUPDIR": backups}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.srv.Close()
	for i := range 20 {
		f.do(t, "session-new", newSessionBody(i))
	}
	if _, err := f.srv.BackupNow(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, root := range []string{dataDir, backups} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || path == root {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %v; want no access for group or others", path, info.Mode().Perm())
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 10 {
		t.Errorf("only %d files checked", checked)
	}
}
