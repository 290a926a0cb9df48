package pgstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
	"github.com/authnzerver/authnzerver/pgstore/pgtest"
	"github.com/authnzerver/authnzerver/shard"
)

func openCluster(t *testing.T, url string, shards int) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(pgstore.Options{URL: url, Shards: shards, Cluster: true, Logger: quiet(), ProbeEvery: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("open in cluster mode: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sessionKey is a session record's key whose route is r (a session routes
// by the first 8 bytes of its digest); tag tells records of one route
// apart.
func sessionKey(r uint64, tag byte) []byte {
	k := make([]byte, 2+32)
	copy(k, "s/")
	binary.BigEndian.PutUint64(k[2:], r)
	k[len(k)-1] = tag
	return k
}

func routeOf(t *testing.T, key []byte) (uint64, bool) {
	t.Helper()
	r, ok, err := shard.RouteOfKey(key)
	if err != nil || !ok {
		return 0, false
	}
	return uint64(r), true
}

// keyOfShard is a session key of shard sh among n.
func keyOfShard(sh, n int, tag byte) []byte { return sessionKey(uint64(sh+n*1000), tag) }

func loadShard(t *testing.T, s *pgstore.Store, sh int) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := s.LoadShard(context.Background(), sh, func(k, v []byte) error { got[string(k)] = string(v); return nil }); err != nil {
		t.Fatalf("load shard %d: %v", sh, err)
	}
	return got
}

func TestTakeShardLeases(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).DB(t)
	a := openCluster(t, url, 8)
	b := openCluster(t, url, 8)
	if v := query(t, url, `SELECT count(*) FROM authnzerver.shard_owner`); v[0] != int64(0) {
		t.Fatalf("a cluster open took shards: %v rows", v[0])
	}
	// A missing row is created, with nothing to wait for.
	ca, err := a.TakeShard(ctx, 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Shard != 3 || ca.Epoch != 1 || ca.Wait != 0 {
		t.Errorf("first take = %+v; want shard 3, epoch 1, no wait", ca)
	}
	// Taken at once by another: it waits out the lease left.
	cb, err := b.TakeShard(ctx, 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Epoch != ca.Epoch+1 || cb.Wait <= time.Second || cb.Wait > 2*time.Second {
		t.Errorf("second take = %+v; want epoch %d and a wait in (1 s, 2 s]", cb, ca.Epoch+1)
	}
	// The new lease starts where the old one ends.
	if v := query(t, url, `SELECT extract(epoch FROM lease_until - now())::float8 FROM authnzerver.shard_owner WHERE shard = 3`); v[0].(float64) < 3 {
		t.Errorf("lease after a take from a live lease ends in %v s; want > 3 s", v[0])
	}
	// A release by the old owner (stale epoch) changes nothing; the
	// holder's release lets the next one in at once.
	if err := a.ReleaseShard(ctx, ca); err != nil {
		t.Fatal(err)
	}
	if v := query(t, url, `SELECT lease_until > now() + interval '1 second' FROM authnzerver.shard_owner WHERE shard = 3`); v[0] != true {
		t.Error("a stale claim's release ended the holder's lease")
	}
	if err := b.ReleaseShard(ctx, cb); err != nil {
		t.Fatal(err)
	}
	ca2, err := a.TakeShard(ctx, 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ca2.Epoch != cb.Epoch+1 || ca2.Wait != 0 {
		t.Errorf("take after a release = %+v; want epoch %d, no wait", ca2, cb.Epoch+1)
	}
	for _, sh := range []int{-1, 8} {
		if _, err := a.TakeShard(ctx, sh, time.Second); err == nil {
			t.Errorf("take shard %d of 8: no error", sh)
		}
	}
}

func TestRenewLeases(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).DB(t)
	a := openCluster(t, url, 8)
	b := openCluster(t, url, 8)
	a3, err := a.TakeShard(ctx, 3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a4, err := a.TakeShard(ctx, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeShard(ctx, 3, time.Second); err != nil {
		t.Fatal(err)
	}
	ok, err := a.RenewLeases(ctx, []pgstore.ShardClaim{a3, a4}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ok) != 2 || ok[0] || !ok[1] {
		t.Errorf("renewed = %v; want [false true]", ok)
	}
	v := query(t, url, `SELECT shard, lease_until > now() + interval '30 seconds' FROM authnzerver.shard_owner ORDER BY shard`)
	if fmt.Sprint(v) != "[3 false 4 true]" {
		t.Errorf("shard, renewed lease = %v; want [3 false 4 true]", v)
	}
	if ok, err := a.RenewLeases(ctx, nil, time.Minute); err != nil || len(ok) != 0 {
		t.Errorf("renew nothing: %v, %v", ok, err)
	}
}

func TestShardWriterFencing(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).DB(t)
	const n = 8
	a := openCluster(t, url, n)
	b := openCluster(t, url, n)
	a3, err := a.TakeShard(ctx, 3, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a4, err := a.TakeShard(ctx, 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w3 := a.ShardWriter(a3, persist.WriterOptions{})
	defer w3.Close()
	w4 := a.ShardWriter(a4, persist.WriterOptions{})
	defer w4.Close()
	k3, k3b, k4 := keyOfShard(3, n, 1), keyOfShard(3, n, 2), keyOfShard(4, n, 1)
	if err := w3.Enqueue(persist.Op{Key: k3, Value: []byte("1")}).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeShard(ctx, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := w3.Enqueue(persist.Op{Key: k3b, Value: []byte("2")}).Wait(); !errors.Is(err, pgstore.ErrFenced) {
		t.Fatalf("write of a taken shard: err = %v; want ErrFenced", err)
	}
	if err := w3.Enqueue(persist.Op{Key: k3b, Value: []byte("3")}).Wait(); !errors.Is(err, pgstore.ErrFenced) {
		t.Errorf("later write of a taken shard: err = %v; want ErrFenced (sticky)", err)
	}
	if err := w4.Enqueue(persist.Op{Key: k4, Value: []byte("4")}).Wait(); err != nil {
		t.Errorf("write of another shard after one was taken: %v", err)
	}
	if err := a.Healthy(); err != nil {
		t.Errorf("the store after one shard writer was fenced: Healthy = %v", err)
	}
	if got := loadShard(t, b, 3); len(got) != 1 || got[string(k3)] != "1" {
		t.Errorf("shard 3 = %q; want only the record committed before the take", got)
	}
	if got := loadShard(t, a, 4); len(got) != 1 || got[string(k4)] != "4" {
		t.Errorf("shard 4 = %q", got)
	}
	// The store's own writer has no shard to fence by in cluster mode.
	if err := a.Writer().Enqueue(persist.Op{Key: k4, Value: []byte("x")}).Wait(); err == nil {
		t.Error("the store's writer committed in cluster mode")
	}
}

// TestShardWriterTakenInFlight: batches keep coming while another node
// takes the shard; each either committed before the take (and the new
// owner's load holds it) or failed, and none lands afterwards.
func TestShardWriterTakenInFlight(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).DB(t)
	const n = 4
	a := openCluster(t, url, n)
	b := openCluster(t, url, n)
	ca, err := a.TakeShard(ctx, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := a.ShardWriter(ca, persist.WriterOptions{MaxBatch: 16})
	defer w.Close()
	type write struct {
		key    string
		ticket *persist.Ticket
	}
	var writes []write
	done := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		// Until the writer is fenced (bounded, should the take never
		// come): a slow machine must not end the writes before it.
		until := time.Now().Add(10 * time.Second)
		for i := 0; w.Err() == nil && time.Now().Before(until); i++ {
			k := sessionKey(uint64(1+n*i), 0)
			writes = append(writes, write{string(k), w.Enqueue(persist.Op{Key: k, Value: []byte("v")})})
			if i == 50 {
				close(started)
			}
			if i%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	<-started
	if _, err := b.TakeShard(ctx, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	loaded := loadShard(t, b, 1)
	<-done
	acked, failed := 0, 0
	for _, wr := range writes {
		switch err := wr.ticket.Wait(); {
		case err == nil:
			acked++
			if _, ok := loaded[wr.key]; !ok {
				t.Errorf("record %x acknowledged but not in the new owner's load", wr.key)
			}
		case errors.Is(err, pgstore.ErrFenced):
			failed++
		default:
			t.Errorf("write: %v", err)
		}
	}
	if failed == 0 {
		t.Error("no write failed: the take did not happen while writing")
	}
	if after := loadShard(t, b, 1); len(after) != len(loaded) {
		t.Errorf("%d records after the writes ended, %d at the take: a batch landed after the take", len(after), len(loaded))
	}
	// A failed ticket may cover records stored before the fence: one
	// ticket spans every record enqueued while it waited, which may be
	// split over a committed batch and a fenced one. Its writer says
	// "failed"; the outcome of those records is unknown to the caller, as
	// with any error after a write was sent. Acknowledged ones must all be
	// there (checked above), and nothing may land after the take.
	t.Logf("%d acknowledged, %d fenced, %d stored", acked, failed, len(loaded))
}

// routes are awkward routes: both ends of the int8 range, negative ones,
// and pseudo-random ones.
func testRoutes() []uint64 {
	rs := []uint64{0, 1, 2, 6, 7, math.MaxInt64, 1 << 63, 1<<63 + 1, math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64 - 6}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		rs = append(rs, rng.Uint64())
	}
	return rs
}

func TestLoadShard(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, n := range []int{1, 3, 7, 8} {
		t.Run(fmt.Sprint(n, " shards"), func(t *testing.T) {
			url := pg.DB(t)
			s := open(t, url, n)
			defer s.Close()
			ops := records(t)
			for i, r := range testRoutes() {
				ops = append(ops, persist.Op{Key: sessionKey(r, byte(i)), Value: []byte{byte(i)}})
			}
			if err := s.Writer().Enqueue(ops...).Wait(); err != nil {
				t.Fatal(err)
			}
			all := scanAll(t, s, nil)
			negative, union := 0, 0
			for sh := range n {
				want := map[string]string{}
				for k, v := range all {
					if r, ok := routeOf(t, []byte(k)); ok && r%uint64(n) == uint64(sh) {
						want[k] = v
						if int64(r) < 0 {
							negative++
						}
					}
				}
				got := loadShard(t, s, sh)
				union += len(got)
				if len(got) != len(want) {
					t.Errorf("shard %d: %d records; want %d", sh, len(got), len(want))
				}
				for k, v := range want {
					if g, ok := got[k]; !ok || g != v {
						t.Errorf("shard %d: record %x = %q, %v; want %q", sh, k, g, ok, v)
					}
				}
			}
			if negative == 0 {
				t.Error("no route negative as int8 was tried")
			}
			if unrouted := len(all) - union; unrouted != 2 { // the next user id and the record of an unknown kind
				t.Errorf("%d records of no shard; want 2", unrouted)
			}
		})
	}
}

func TestReserveUserIDs(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, tt := range []struct {
		name      string
		maxUser   int64 // 0: none
		meta      int64 // 0: no record
		wantFirst int64
	}{
		{"empty", 0, 0, 1},
		{"users above the record", 900, 800, 901},
		{"record above the users", 500, 800, 800},
		{"record only", 0, 42, 42},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := pg.DB(t)
			s := open(t, url, 4) // a single-node server wrote these
			var ops []persist.Op
			if tt.maxUser > 0 {
				k := binary.BigEndian.AppendUint64([]byte("u/"), uint64(tt.maxUser))
				ops = append(ops, persist.Op{Key: k, Value: []byte(`{}`)}, persist.Op{Key: binary.BigEndian.AppendUint64([]byte("u/"), 3), Value: []byte(`{}`)})
			}
			if tt.meta > 0 {
				m := shard.EncodeNextUserID(shard.UserID(tt.meta))
				ops = append(ops, persist.Op{Key: m.Key, Value: m.Value})
			}
			if err := s.Commit(ops); err != nil {
				t.Fatal(err)
			}
			s.Close()
			a := openCluster(t, url, 4)
			b := openCluster(t, url, 4)
			first, err := a.ReserveUserIDs(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if first != tt.wantFirst {
				t.Errorf("first id = %d; want %d", first, tt.wantFirst)
			}
			// Two nodes reserving at once never hand out an id twice.
			var mu sync.Mutex
			seen := map[int64]bool{first: true}
			var wg sync.WaitGroup
			for _, st := range []*pgstore.Store{a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 25 {
						f, err := st.ReserveUserIDs(context.Background(), 3)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for id := f; id < f+3; id++ {
							if seen[id] || id <= tt.maxUser || id < tt.meta {
								t.Errorf("id %d handed out twice or not above the stored ones", id)
							}
							seen[id] = true
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(seen) != 1+4*25*3 {
				t.Errorf("%d ids; want %d", len(seen), 1+4*25*3)
			}
		})
	}
	if _, err := openCluster(t, pg.DB(t), 2).ReserveUserIDs(context.Background(), 0); err == nil {
		t.Error("reserve 0 ids: no error")
	}
}

// TestMigrateFromV1: a database a version 1 build made, with records,
// opens at version 2 with every record's route filled in.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).DB(t)
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	stmts := append([]string{`CREATE SCHEMA authnzerver`}, pgstore.SchemaV1...)
	stmts = append(stmts,
		`INSERT INTO authnzerver.deployment (id, app, deployment_id, schema_version, shard_count) VALUES (1, 'authnzerver-go', 'x', 1, 4)`,
		`INSERT INTO authnzerver.shard_owner (shard, epoch, owner, taken_at) SELECT g, 5, 'old', now() FROM generate_series(0, 3) g`,
		// More sessions than a page of the backfill, half of them with
		// a route negative as int8.
		`INSERT INTO authnzerver.sessions (key, value) SELECT '\x732f'::bytea || decode(md5(g::text) || md5(g::text), 'hex'), '\x00' FROM generate_series(1, 6000) g`,
		`INSERT INTO authnzerver.users (key, value, user_id) VALUES ('\x752f0000000000000007', '{}', 7)`,
		`INSERT INTO authnzerver.emails (key, value) VALUES ('e/ann@example.org', '7')`,
		`INSERT INTO authnzerver.metadata (key, value) VALUES ('m/next_user_id', '\x0000000000000008')`,
	)
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	c.Close(ctx)

	s := openCluster(t, url, 4)
	if v := query(t, url, `SELECT schema_version, shard_count FROM authnzerver.deployment`); v[0] != int32(pgstore.SchemaVersion) || v[1] != int32(4) {
		t.Errorf("deployment after the migration = %v", v)
	}
	rows := 0
	for _, table := range []string{"sessions", "users", "emails", "metadata"} {
		v := query(t, url, `SELECT key, route FROM authnzerver.`+table)
		for i := 0; i < len(v); i += 2 {
			rows++
			key := v[i].([]byte)
			r, ok := routeOf(t, key)
			switch {
			case !ok && v[i+1] != nil:
				t.Errorf("%s %x: route %v; want NULL", table, key, v[i+1])
			case ok && v[i+1] != int64(r):
				t.Errorf("%s %x: route %v; want %d", table, key, v[i+1], int64(r))
			}
		}
	}
	if rows != 6003 {
		t.Errorf("%d rows after the migration; want 6003", rows)
	}
	total := 0
	for sh := range 4 {
		total += len(loadShard(t, s, sh))
	}
	if total != 6002 {
		t.Errorf("the shards hold %d records; want 6002", total)
	}
	if first, err := s.ReserveUserIDs(ctx, 1); err != nil || first != 8 {
		t.Errorf("first reserved user id = %d, %v; want 8", first, err)
	}
}

func TestClusterOpenShardCount(t *testing.T) {
	pg := pgtest.Shared(t)
	for _, tt := range []struct {
		name  string
		first func(t *testing.T, url string) // makes the deployment, with 4 shards
	}{
		{"cluster", func(t *testing.T, url string) { openCluster(t, url, 4).Close() }},
		{"single node", func(t *testing.T, url string) { open(t, url, 4).Close() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := pg.DB(t)
			tt.first(t, url)
			before := query(t, url, `SELECT shard_count, (SELECT array_agg(epoch ORDER BY shard) FROM authnzerver.shard_owner) FROM authnzerver.deployment`)
			_, err := pgstore.Open(pgstore.Options{URL: url, Shards: 6, Cluster: true, Logger: quiet()})
			if err == nil || !strings.Contains(err.Error(), "has 4 shards") || !strings.Contains(err.Error(), "AUTHNZERVER_SHARDS=4") {
				t.Errorf("cluster open with 6 shards on a deployment of 4: %v", err)
			}
			if after := query(t, url, `SELECT shard_count, (SELECT array_agg(epoch ORDER BY shard) FROM authnzerver.shard_owner) FROM authnzerver.deployment`); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("a refused open changed the deployment: %v, then %v", before, after)
			}
			openCluster(t, url, 4).Close()
		})
	}
}

// TestSingleNodeRefusedWhileLeased: the leases of a cluster whose nodes
// are gone (crashed, say) keep a single-node server out until they end.
func TestSingleNodeRefusedWhileLeased(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).DB(t)
	a := openCluster(t, url, 4)
	epochs := func() string {
		return fmt.Sprint(query(t, url, `SELECT array_agg(epoch ORDER BY shard) FROM authnzerver.shard_owner`))
	}
	long, err := a.TakeShard(ctx, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.TakeShard(ctx, 2, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	a.Close()
	before := epochs()
	_, err = pgstore.Open(pgstore.Options{URL: url, Shards: 4, Logger: quiet()})
	if !errors.Is(err, pgstore.ErrInUse) || !strings.Contains(err.Error(), "under a lease") {
		t.Fatalf("single-node open under a cluster's leases: %v; want ErrInUse", err)
	}
	if after := epochs(); after != before {
		t.Errorf("a refused open took shards: epochs %s, then %s", before, after)
	}
	b := openCluster(t, url, 4)
	if err := b.ReleaseShard(ctx, long); err != nil {
		t.Fatal(err)
	}
	b.Close()
	time.Sleep(400 * time.Millisecond) // shard 2's lease runs out
	s := open(t, url, 4)
	defer s.Close()
	if v := query(t, url, `SELECT count(*) FROM authnzerver.shard_owner WHERE lease_until IS NOT NULL`); v[0] != int64(0) {
		t.Errorf("%v shards still leased after a single-node open", v[0])
	}
}

// TestSingleNodeAndClusterExclude: a single-node server and cluster nodes
// never run on one database together, whichever came first.
func TestSingleNodeAndClusterExclude(t *testing.T) {
	url := pgtest.Shared(t).DB(t)
	c := openCluster(t, url, 4)
	c2 := openCluster(t, url, 4) // cluster nodes run side by side
	_, err := pgstore.Open(pgstore.Options{URL: url, Shards: 4, Logger: quiet()})
	if !errors.Is(err, pgstore.ErrInUse) || !strings.Contains(err.Error(), "cluster nodes are running") {
		t.Errorf("single-node open beside cluster nodes: %v; want ErrInUse", err)
	}
	c.Close()
	c2.Close()
	s := open(t, url, 4)
	defer s.Close()
	_, err = pgstore.Open(pgstore.Options{URL: url, Shards: 4, Cluster: true, Logger: quiet()})
	if !errors.Is(err, pgstore.ErrInUse) || !strings.Contains(err.Error(), "single-node") {
		t.Errorf("cluster open beside a single-node server: %v; want ErrInUse", err)
	}
	if v := query(t, url, `SELECT count(*) FROM authnzerver.shard_owner WHERE lease_until IS NOT NULL`); v[0] != int64(0) {
		t.Errorf("a refused cluster open leased %v shards", v[0])
	}
}

// TestShardWriterOutage: a shard writer waits out a lost PostgreSQL as the
// store's writer does: tickets fail with ErrUnreachable meanwhile (never
// acknowledged), nothing sticks, and it commits again once PostgreSQL is
// back.
func TestShardWriterOutage(t *testing.T) {
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		if _, ferr := pgtest.FindBin(); ferr != nil && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer pg.Stop()
	url := pg.DB(t)
	s := openCluster(t, url, 4)
	c, err := s.TakeShard(context.Background(), 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := s.ShardWriter(c, persist.WriterOptions{})
	defer w.Close()
	acked := map[string]bool{}
	put := func(i int) error {
		k := keyOfShard(2, 4, byte(i))
		err := w.Enqueue(persist.Op{Key: k, Value: []byte("v")}).Wait()
		if err == nil {
			acked[string(k)] = true
		}
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	pg.StopNow()
	failed := 0
	for i := 1; i < 6; i++ {
		if err := put(i); err != nil {
			failed++
			if !errors.Is(err, pgstore.ErrUnreachable) {
				t.Errorf("write during the outage: %v", err)
			}
		}
	}
	if failed == 0 {
		t.Error("every write during the outage was acknowledged")
	}
	if err := w.Err(); err != nil {
		t.Errorf("the outage stuck to the shard writer: %v", err)
	}
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 6; put(i) != nil; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the shard writer does not commit after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := loadShard(t, s, 2)
	for k := range acked {
		if _, ok := got[k]; !ok {
			t.Errorf("acknowledged record %x lost", k)
		}
	}
}

// TestClusterVersion: a node of another wire version is refused while a
// node of the running version holds a shard, and taken once none does (an
// upgrade stops every node first).
func TestClusterVersion(t *testing.T) {
	pg := pgtest.Shared(t)
	url := pg.DB(t)
	openV := func(v int) (*pgstore.Store, error) {
		return pgstore.Open(pgstore.Options{URL: url, Shards: 4, Cluster: true, ClusterVersion: v, Logger: quiet()})
	}
	a, err := openV(1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	claim, err := a.TakeShard(context.Background(), 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openV(2); !errors.Is(err, pgstore.ErrClusterVersion) || !strings.Contains(err.Error(), "version 1, this node 2") {
		t.Fatalf("a version-2 node beside a running version-1 node: %v", err)
	}
	b, err := openV(1)
	if err != nil {
		t.Fatalf("a node of the running version: %v", err)
	}
	b.Close()
	if err := a.ReleaseShard(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
	c, err := openV(2)
	if err != nil {
		t.Fatalf("version 2 once no node holds a shard: %v", err)
	}
	c.Close()
	d, err := openV(1)
	if err != nil {
		t.Fatalf("back to version 1 with no node running: %v", err)
	}
	d.Close()
}
