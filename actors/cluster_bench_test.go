//go:build !race

// Several protoactor-go remotes in one process race on gRPC's logger (see
// cluster_test.go): like the in-process cluster tests, these benchmarks
// are left out of race builds.

package actors

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// BenchmarkClusterSessionCheck prices the session check (CheckSession:
// the session's shard, forwarded to the user's shard) on an in-process
// two-node cluster, without HTTP or the wire protocol, called on node 0:
//
//   - local: both shards' grains are on node 0 (mailboxes only);
//   - remote: both are on node 1: node 0 sends the sealed request over
//     protoactor remote (gRPC on loopback) to the session's grain, which
//     hands it to the user's grain on its node, which answers node 0
//     (two messages between nodes, one round trip);
//   - *-parallel: the same from GOMAXPROCS×4 goroutines, so the cores are
//     busy and ns/op is the throughput's inverse rather than a round trip.
//
// Both nodes run in this process, so the process's CPU time (getrusage,
// user + system) covers both sides of a hop: it is reported per check as
// cpu-ns/op. remote's cpu-ns/op minus local's is the CPU cost of the
// remote round trip (sealing, gRPC, both nodes' goroutines and syscalls).
//
//	go test -run='^$' -bench=ClusterSessionCheck -benchmem -count=6 ./actors/
func BenchmarkClusterSessionCheck(b *testing.B) {
	const shards = 8
	st := newMemStore(shards)
	cores := startTestCluster(b, 2, st, Options{})
	// Activate every grain (disthash places each on its owner), then read
	// where each shard's grain runs.
	if _, err := AskAll[shard.Counts](cores[0], CountRecords{}); err != nil {
		b.Fatal(err)
	}
	on := func(i int) int {
		switch {
		case cores[0].cl.local[i].Load() != nil:
			return 0
		case cores[1].cl.local[i].Load() != nil:
			return 1
		}
		return -1
	}
	shardOf := func(r shard.Route) int { return cores[0].cl.shardIndex(r) }
	// A user and a session whose shards are both on node n.
	session := func(n int) shard.SessionDigest {
		var uid shard.UserID
		for id := shard.UserID(100); ; id++ {
			if on(shardOf(shard.UserRoute(id))) == n {
				uid = id
				break
			}
		}
		if _, err := Ask[shard.User](cores[0], CreateUser{User: shard.User{ID: uid, Email: "u" + strconv.Itoa(int(uid)) + "@example.org", IsActive: true, Role: "authenticated"}}); err != nil {
			b.Fatal(err)
		}
		for k := 0; ; k++ {
			d := shard.DigestSession(fmt.Sprintf("bench-token-%d-%d", n, k))
			if on(shardOf(shard.SessionRoute(d))) != n {
				continue
			}
			if _, err := Ask[shard.Session](cores[0], CreateSession{Digest: d, UserID: uid, Expires: time.Now().Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			return d
		}
	}
	cases := []struct {
		name string
		d    shard.SessionDigest
	}{{"local", session(0)}, {"remote", session(1)}}
	for _, c := range cases {
		if info, err := CheckSession(cores[0], c.d); err != nil || info.User.ID == 0 {
			b.Fatalf("%s: %+v %v", c.name, info, err)
		}
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := CheckSession(cores[0], c.d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
	for _, c := range cases {
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := CheckSession(cores[0], c.d); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
