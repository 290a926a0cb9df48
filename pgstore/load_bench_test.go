package pgstore_test

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/shard"
)

// TestLoadTimeVsPebble measures how long a start takes to load N sessions
// (AUTHNZERVER_LOADBENCH_N, e.g. 1000000; skipped when unset) from
// PostgreSQL and from pebble: actors.Start on each store, 3 runs, medians.
// Figures are in docs/operations.md ("PostgreSQL").
func TestLoadTimeVsPebble(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("AUTHNZERVER_LOADBENCH_N"))
	if n <= 0 {
		t.Skip("set AUTHNZERVER_LOADBENCH_N (e.g. 1000000) to measure")
	}
	pg, err := pgtest.Start(pgtest.Options{Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	url := pg.DB(t)
	const shards = 8
	now := time.Now()
	sh := shard.New(shard.Options{})
	batch := func(from, to int) []persist.Op {
		ops := make([]persist.Op, 0, to-from)
		for i := from; i < to; i++ {
			var seed [8]byte
			binary.BigEndian.PutUint64(seed[:], uint64(i))
			d := shard.SessionDigest(sha256.Sum256(seed[:]))
			_, m := sh.CreateSession(d, shard.NewSession{UserID: 2, IPAddress: "10.0.0." + strconv.Itoa(i%250), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
				Expires: now.Add(24 * time.Hour), ExtraInfo: []byte(`{"theme":"dark"}`)}, now)
			for _, mu := range m {
				ops = append(ops, persist.Op{Key: mu.Key, Value: mu.Value})
			}
		}
		return ops
	}
	dir := filepath.Join(t.TempDir(), "db")
	ps, err := persist.Open(dir, persist.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ss := open(t, url, shards)
	start := time.Now()
	for i := 0; i < n; i += 50000 {
		ops := batch(i, min(n, i+50000))
		tp := ps.Writer().Enqueue(ops...)
		tq := ss.Writer().Enqueue(ops...)
		if err := tp.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := tq.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d sessions to both stores in %v", n, time.Since(start))
	ps.Close()
	ss.Close()
	measure := func(name string, openStore func() (persist.Backend, error)) time.Duration {
		var runs []time.Duration
		for range 3 {
			st, err := openStore()
			if err != nil {
				t.Fatal(err)
			}
			sys := actors.NewActorSystem(quiet())
			t0 := time.Now()
			core, err := actors.Start(sys, st, st.Writer(), actors.Options{Shards: shards, Logger: quiet()})
			d := time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := core.Counts()
			if c.Sessions != n {
				t.Errorf("%s: loaded %d sessions; want %d", name, c.Sessions, n)
			}
			core.Stop()
			sys.Shutdown()
			st.Close()
			runs = append(runs, d)
		}
		slices.Sort(runs)
		// The scan alone (no decoding into shards), for where the time goes.
		st, err := openStore()
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		seen := 0
		if err := st.Scan(nil, func(k, v []byte) error { seen++; return nil }); err != nil {
			t.Fatal(err)
		}
		scan := time.Since(t0)
		st.Close()
		t.Logf("%s: load of %d sessions: median %v (runs %v); the scan alone %v (%d records)", name, n, runs[1], runs, scan, seen)
		return runs[1]
	}
	p := measure("pebble", func() (persist.Backend, error) { return persist.Open(dir, persist.Options{Logger: quiet()}) })
	q := measure("postgres", func() (persist.Backend, error) {
		return pgstore.Open(pgstore.Options{URL: url, Shards: shards, Logger: quiet()})
	})
	t.Logf("postgres/pebble load time: %.2f×", float64(q)/float64(p))
}
