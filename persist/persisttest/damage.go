// Package persisttest damages a store's files the way a failing disk would,
// for the tests of the packages that must survive it.
package persisttest

import (
	"os"
	"path/filepath"
	"testing"
)

// DamageTables flips 32 bytes in the middle of every table file of the
// pebble store in dir and returns their paths. It fails the test when the
// store has no table file (flush or close the store first).
func DamageTables(t testing.TB, dir string) []string {
	t.Helper()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatalf("no table file in %s", dir)
	}
	for _, p := range tables {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 4; i < len(b)/4+32 && i < len(b); i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return tables
}
