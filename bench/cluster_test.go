package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
)

// TestRendezvousMatchesProtoactor: the placement the cluster scenario
// computes is protoactor-go's own (cluster.Rendezvous, which disthash
// uses) for the same members, over many member sets and every shard
// identity.
func TestRendezvousMatchesProtoactor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 2 + trial%5
		addrs := make([]string, n)
		var members cluster.Members
		for i := range addrs {
			port := 1024 + rng.IntN(60000)
			addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
			members = append(members, &cluster.Member{Id: fmt.Sprintf("m%d-%d", trial, i), Host: "127.0.0.1", Port: int32(port), Kinds: []string{"shard"}})
		}
		rdv := cluster.NewRendezvous()
		rdv.UpdateMembers(members)
		// Rendezvous keeps its members in the member set's order.
		order := make([]string, 0, n)
		for _, m := range members.ToSet().Members() {
			order = append(order, m.Address())
		}
		owners, err := ShardOwners(64, order)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range owners {
			want := rdv.GetByClusterIdentity(&cluster.ClusterIdentity{Kind: "shard", Identity: strconv.Itoa(i)})
			if order[o] != want {
				t.Fatalf("members %v, shard %d: computed %s, protoactor-go places it on %s", order, i, order[o], want)
			}
		}
	}
	if o, ok := RendezvousOwner("3", []string{"127.0.0.1:1"}); o != 0 || !ok {
		t.Fatalf("one member: %d %v", o, ok)
	}
	if o, _ := RendezvousOwner("3", nil); o != -1 {
		t.Fatalf("no member: %d", o)
	}
}

// TestExpectedCPU: the model's case probabilities add up to one for every
// N, one node is all local, and many nodes tend to the split case.
func TestExpectedCPU(t *testing.T) {
	ones := map[string]float64{"local": 1, "user-remote": 1, "session-remote": 1, "remote-same": 1, "remote-split": 1}
	for N := 1; N <= 100; N++ {
		if e := expectedCPU(N, ones); math.Abs(e-1) > 1e-12 {
			t.Fatalf("N=%d: probabilities add up to %v", N, e)
		}
	}
	c := map[string]float64{"local": 10, "user-remote": 20, "session-remote": 20, "remote-same": 20, "remote-split": 30}
	if e := expectedCPU(1, c); e != 10 {
		t.Fatalf("N=1: %v, want local", e)
	}
	// N=2: 1/4 local, 3/4 one round trip, none split.
	if e := expectedCPU(2, c); math.Abs(e-17.5) > 1e-9 {
		t.Fatalf("N=2: %v, want 17.5", e)
	}
	if e := expectedCPU(1000, c); math.Abs(e-30) > 0.1 {
		t.Fatalf("N=1000: %v, want about the split case", e)
	}
}

func TestProcCPU(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 50*time.Millisecond {
		t.Fatalf("200 ms of spinning counted as %v of CPU (%d)", after-before, x)
	}
}

func TestSumStats(t *testing.T) {
	got := sumStats([]Stats{
		{Requests: 100, RPS: 10, Mean: 1, P50: 1, P99: 5, Seconds: 10, Curve: []Pct{{P: 0, Ms: 1}}},
		{Requests: 300, RPS: 30, Mean: 2, P50: 2, P99: 3, Seconds: 10},
	})
	if got.Requests != 400 || got.RPS != 40 || got.P50 != 2 || got.P99 != 5 || len(got.Curve) != 1 || math.Abs(got.Mean-1.75) > 1e-9 {
		t.Fatalf("%+v", got)
	}
}

// TestClusterScenario runs the cluster scenario for one short round
// (etcd, PostgreSQL and three node processes): set AUTHNZBENCH_CLUSTER=1.
// It checks that every figure has answers, no error and a clean sample,
// and that the placement held; speed is never asserted.
func TestClusterScenario(t *testing.T) {
	if os.Getenv("AUTHNZBENCH_CLUSTER") == "" {
		t.Skip("a benchmark of three server processes on etcd and PostgreSQL: set AUTHNZBENCH_CLUSTER=1")
	}
	driver := DriverGo
	if _, err := FindWrk(""); err == nil {
		driver = "both"
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Config{
		Scenarios: []string{"cluster"}, Duration: time.Second, Runs: 1, Pool: 100, Conns: 6,
		Driver: driver, TempDir: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	sr := rep.scenario("cluster")
	if sr == nil || len(sr.Measurements) == 0 {
		t.Fatalf("no cluster figures: %+v\n%s", rep.Scenarios, log.String())
	}
	for _, m := range sr.Measurements {
		if m.Median.Requests == 0 || m.Median.Errors > 0 || m.Median.BadAns > 0 || m.Median.Sampled == 0 {
			t.Errorf("%s (%s): %+v", m.Name, m.Driver, m.Median)
		}
	}
	for _, k := range []string{"cpu_us_per_req A local", "cpu_us_per_req A remote-split", "cpu_us_per_message (pooled)", "model_cpu_us_per_req N=08", "rps_3nodes_vs_1node"} {
		if v, ok := sr.Derived[k]; !ok || v <= 0 {
			t.Errorf("derived %q = %v (%v)", k, v, ok)
		}
	}
	if v := sr.Derived["grains_taken_after_setup"]; v != 0 {
		t.Errorf("%v shards taken during the runs", v)
	}
	var out strings.Builder
	rep.WriteTable(&out)
	t.Log(out.String())
}
