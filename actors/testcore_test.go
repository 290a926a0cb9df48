package actors

import (
	"encoding/json"
	"os"
	"testing"
)

// clusterTestEnv makes the flow tests of this package run on a two-node
// cluster (make test runs them so once, without the race detector: see
// cluster_test.go): every flow then crosses the wire between nodes.
var clusterTestEnv = os.Getenv("AUTHNZ_ACTORS_CLUSTER") == "1"

// startClusterForTest starts a two-node test cluster and returns its first
// core (cluster_test.go; nil under the race detector).
var startClusterForTest func(t testing.TB, opts Options) *Core

// startTestCore starts the core a test uses: one node, or with
// AUTHNZ_ACTORS_CLUSTER=1 the first of a two-node cluster.
func startTestCore(t testing.TB, opts Options) *Core {
	t.Helper()
	if clusterTestEnv && startClusterForTest != nil {
		return startClusterForTest(t, opts)
	}
	c, err := Start(NewActorSystem(opts.Logger), nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// asType returns an operation's answer, asked for as any, as a T: the
// value itself on one node, or decoded from the JSON that crossed the wire
// in a cluster (where an answer of type any arrives as a map).
func asType[T any](t testing.TB, got any) T {
	t.Helper()
	if v, ok := got.(T); ok {
		return v
	}
	b, err := json.Marshal(got)
	var v T
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		t.Fatalf("answer %T is not a %T: %v", got, v, err)
	}
	return v
}
