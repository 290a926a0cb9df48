package httpfront

import (
	"errors"
	"testing"

	"github.com/authnzerver/authnzerver/passhash"
)

// TestHasherShare: a source gets at most its share of slots, other sources
// are not affected, and released slots are free again with nothing left in
// the map.
func TestHasherShare(t *testing.T) {
	g := &hasherShare{max: 2, held: map[string]int{}}
	var releases []func()
	for i, tc := range []struct {
		source string
		ok     bool
	}{
		{"10.0.0.1", true},
		{"10.0.0.1", true},
		{"10.0.0.1", false},
		{"10.0.0.2", true},
		{"10.0.0.1", false},
		{"10.0.0.2", true},
		{"10.0.0.2", false},
	} {
		release, err := g.take(tc.source)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, passhash.ErrHasherBusy)) {
			t.Fatalf("take %d from %s = %v; want ok %v", i, tc.source, err, tc.ok)
		}
		if err == nil {
			releases = append(releases, release)
		}
	}
	releases[0]()
	release, err := g.take("10.0.0.1")
	if err != nil {
		t.Fatalf("take after a release = %v; want a slot", err)
	}
	releases[0] = release
	for _, r := range releases {
		r()
	}
	if len(g.held) != 0 {
		t.Errorf("held after every release = %v; want empty", g.held)
	}
}
