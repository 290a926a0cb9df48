package pgstore

import (
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authnzerver/authnzerver/persist"
)

// FuzzNewBatch: any records (keys of any kind with any bytes) make a batch
// without panicking, with a row for each table's columns, every key once,
// and its shards in range.
func FuzzNewBatch(f *testing.F) {
	f.Add([]byte("u/\x00\x00\x00\x00\x00\x00\x00\x01"), []byte(`{"id":1,"email":"a@b","extra_info":{"a":"\u0000"}}`), []byte("s/x"), []byte{1, 2, 3})
	f.Add([]byte("e/\x00sid:1"), []byte("7"), []byte("ka/"), []byte(`{"uid":1}`))
	f.Add([]byte("fa/a@b"), []byte(`{"n":1,"last":"x"}`), []byte("m/next_user_id"), []byte{0, 0, 0, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 []byte) {
		ops := []persist.Op{{Key: k1, Value: v1}, {Key: k2, Value: v2}, {Key: k1}}
		for _, plain := range []bool{false, true} {
			b := newBatch(ops, 3, plain)
			n := 0
			for _, t0 := range b.rows {
				n += len(t0.keys) + len(t0.deletes)
				for _, c := range derefAll(t0.cols) {
					if l := lenOf(c); l != len(t0.keys) {
						t.Fatalf("a column of %d rows for %d keys", l, len(t0.keys))
					}
				}
			}
			if want := map[bool]int{true: 1, false: 2}[string(k1) == string(k2)]; n != want {
				t.Fatalf("%d rows; want %d", n, want)
			}
			for _, s := range b.shards {
				if s < 0 || s >= 3 {
					t.Fatalf("shard %d", s)
				}
			}
			if len(b.shards) == 0 {
				t.Fatal("a batch that fences no shard")
			}
			for _, t0 := range b.rows {
				if len(t0.routes) != len(t0.keys) {
					t.Fatalf("%d routes for %d keys", len(t0.routes), len(t0.keys))
				}
			}
			b.queue(&pgx.Batch{}, b.shards, make([]int64, len(b.shards)), 1)
		}
	})
}

func lenOf(c any) int { return reflect.ValueOf(c).Len() }
