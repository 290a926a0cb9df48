package persist

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkWriterDurable prices a durable write through group commit: each
// parallel goroutine enqueues one record and waits for its ticket, as a
// request does. fs=mem has no real fsync (the pipeline's own cost);
// fs=disk fsyncs to the test's temporary directory.
func BenchmarkWriterDurable(b *testing.B) {
	for _, fsName := range []string{"mem", "disk"} {
		b.Run("fs="+fsName, func(b *testing.B) {
			var opts Options
			dir := b.TempDir()
			if fsName == "mem" {
				opts.FS = vfs.NewMem()
				dir = "db"
			}
			s, err := Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			w := s.Writer()
			var n atomic.Int64
			value := make([]byte, 120)
			b.ReportAllocs()
			b.SetParallelism(16) // many requests in flight, as under load
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := []byte(fmt.Sprintf("s/%016d", n.Add(1)))
					if err := w.Enqueue(Op{Key: k, Value: value}).Wait(); err != nil {
						b.Fatal(err)
					}
				}
			})
			st := w.Stats()
			if st.Batches > 0 {
				b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/batch")
			}
		})
	}
}
