package persist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/authnzerver/authnzerver/persist/persisttest"
)

// crashImage writes n synced records to a store in a new directory and
// returns a copy of its files taken while it is open, as a crash leaves
// them (the WAL holds the records; nothing was flushed).
func crashImage(t *testing.T, n int) string {
	t.Helper()
	return crashImageOf(t, t.TempDir(), n)
}

// crashImageOf is crashImage on the store in live (created if need be).
func crashImageOf(t *testing.T, live string, n int) string {
	t.Helper()
	s, err := Open(live, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Writer().Enqueue(Op{Key: key(i), Value: []byte(fmt.Sprintf("value %d", i))}).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	img := t.TempDir()
	ents, err := os.ReadDir(live)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "LOCK" || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(live, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	return img
}

// liveWAL returns the path of the newest write-ahead log in dir.
func liveWAL(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no WAL in the crash image")
	}
	return logs[len(logs)-1] // zero-padded numbers sort as strings
}

// TestWALDamage: a byte flipped in the middle of the live WAL is refused
// by default with a report of what would be lost, and opened when the
// operator asks to skip it (the records before the damage kept, the
// damaged log copied aside); a torn tail (a crash cut the last write
// short) opens normally with every complete record.
func TestWALDamage(t *testing.T) {
	const n = 400
	for _, tt := range []struct {
		name    string
		damage  func(b []byte) []byte
		skip    bool
		refused bool
	}{
		{"flipped byte refused", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }, false, true},
		{"flipped byte skipped", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }, true, false},
		{"torn tail", func(b []byte) []byte { return b[:len(b)-5] }, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := crashImage(t, n)
			wal := liveWAL(t, img)
			b, err := os.ReadFile(wal)
			if err != nil {
				t.Fatal(err)
			}
			damaged := tt.damage(b)
			if err := os.WriteFile(wal, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs lockedBuffer
			s, err := Open(img, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), SkipWALDamage: tt.skip})
			var dmg *WALDamageError
			if tt.refused {
				if !errors.As(err, &dmg) {
					t.Fatalf("Open = %v; want a *WALDamageError", err)
				}
				if dmg.LostRecords == 0 || dmg.LostWrites == 0 || dmg.Offset <= 0 || !strings.HasSuffix(dmg.File, filepath.Base(wal)) {
					t.Errorf("damage report %+v; want the file, the offset and the commits lost", dmg)
				}
				if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "lost_commits=") {
					t.Errorf("no loud log of the damage:\n%s", logs.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			got := 0
			if err := s.Scan(nil, func(k, v []byte) error { got++; return nil }); err != nil {
				t.Fatal(err)
			}
			if tt.skip {
				if got == 0 || got >= n {
					t.Errorf("%d records after skipping the damage; want some but not all %d", got, n)
				}
				out := logs.String()
				if !strings.Contains(out, "lost_commits=") || !strings.Contains(out, "copy=") {
					t.Errorf("skipping the damage was not logged loudly:\n%s", out)
				}
				aside, _ := filepath.Glob(img + ".damaged-*/*.log")
				if len(aside) != 1 {
					t.Errorf("damaged log copies %v; want one", aside)
				} else if c, _ := os.ReadFile(aside[0]); !bytes.Equal(c, damaged) {
					t.Errorf("the copy set aside differs from the damaged log")
				}
				return
			}
			// A torn tail loses at most the record that was cut.
			if got < n-1 {
				t.Errorf("%d records after a torn tail; want at least %d", got, n-1)
			}
		})
	}
}

// TestDamagedTableFile: a table file whose content no longer matches its
// checksums makes the load fail with an error that names the file and
// says to restore from a backup, instead of pebble's panic.
func TestDamagedTableFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := s.Writer().Enqueue(Op{Key: key(i), Value: bytes.Repeat([]byte("v"), 64)}).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil { // flushes: the records are in a table now
		t.Fatal(err)
	}
	persisttest.DamageTables(t, dir)
	var serr error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("reading a damaged table panicked: %v", r)
			}
		}()
		s, serr = Open(dir, Options{Logger: quiet})
		if serr == nil {
			defer s.Close()
			serr = s.Scan(nil, func(k, v []byte) error { return nil })
		}
	}()
	var dmg *DamagedStoreError
	if !errors.As(serr, &dmg) {
		t.Fatalf("error = %v; want a *DamagedStoreError", serr)
	}
	msg := serr.Error()
	if !strings.Contains(msg, ".sst") || !strings.Contains(msg, "backup") || strings.Contains(msg, "\n") {
		t.Errorf("error %q; want one line naming the table file and saying to restore from a backup", msg)
	}
}

// TestStoreFilesPrivate: under a umask of 022 every file the store and its
// checkpoints (backups) create is 0600 and every directory 0700.
func TestStoreFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	root := t.TempDir()
	dir := filepath.Join(root, "db")
	s, err := Open(dir, Options{Logger: quiet, Reserve: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := s.Writer().Enqueue(Op{Key: key(i), Value: []byte("v")}).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(filepath.Join(root, "backup", "db")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s is %v; want %v", path, info.Mode().Perm(), want)
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Errorf("only %d files checked", checked)
	}
}

// TestWALDamageAfterUpgrade: a store written by the previous version (an
// older pebble format, whose log records no synced offsets) is upgraded at
// its first open so that the log of that very run already tells damage
// from a torn tail.
func TestWALDamageAfterUpgrade(t *testing.T) {
	live := t.TempDir()
	old, err := Open(live, Options{Logger: quiet, tune: func(o *pebble.Options) { o.FormatMajorVersion = pebble.FormatMinSupported }})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Writer().Enqueue(Op{Key: []byte("old"), Value: []byte("v")}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	img := crashImageOf(t, live, 400)
	wal := liveWAL(t, img)
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var dmg *WALDamageError
	if _, err := Open(img, Options{Logger: quiet}); !errors.As(err, &dmg) {
		t.Fatalf("Open = %v; want a *WALDamageError in the first run after the upgrade", err)
	}
}

// FuzzWALDamage: reading a write-ahead log of any content for damage never
// panics, and a damage found lies inside the file. Seeded with a real log,
// whole, torn and with a flipped byte.
func FuzzWALDamage(f *testing.F) {
	mem := vfs.NewMem()
	s, err := Open("db", Options{FS: mem, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	// A small log: the fuzzer minimises what it finds, and a big seed
	// makes that slow.
	for i := range 8 {
		if err := s.Writer().Enqueue(Op{Key: key(i), Value: bytes.Repeat([]byte{byte(i)}, i*8)}).Wait(); err != nil {
			f.Fatal(err)
		}
	}
	names, _ := mem.List("db")
	for _, n := range names {
		if !strings.HasSuffix(n, ".log") {
			continue
		}
		fl, err := mem.Open(mem.PathJoin("db", n))
		if err != nil {
			f.Fatal(err)
		}
		b, _ := io.ReadAll(fl)
		fl.Close()
		if num, err := strconv.ParseUint(strings.TrimSuffix(n, ".log"), 10, 64); err == nil && len(b) > 10 {
			f.Add(b, num)
			f.Add(b[:len(b)-7], num)
			flipped := bytes.Clone(b)
			flipped[len(b)/2] ^= 1
			f.Add(flipped, num)
		}
	}
	s.Close()
	f.Add([]byte{}, uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, num uint64) {
		fs := vfs.NewMem()
		fl, err := fs.Create("000001.log", vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		fl.Write(b)
		fl.Close()
		dmg, err := walDamage(fs, "000001.log", num)
		if err != nil {
			return
		}
		if dmg != nil && (dmg.Offset < 0 || dmg.Offset > int64(len(b)) || dmg.LostRecords < 0) {
			t.Fatalf("damage %+v outside a %d-byte log", dmg, len(b))
		}
	})
}
