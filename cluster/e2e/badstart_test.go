package e2e

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// shardOwners reads who owns each shard and under which epoch.
func shardOwners(t *testing.T, db string) map[int]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT shard, epoch, owner FROM authnzerver.shard_owner ORDER BY shard`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for rows.Next() {
		var sh int
		var epoch int64
		var owner string
		if err := rows.Scan(&sh, &epoch, &owner); err != nil {
			t.Fatal(err)
		}
		out[sh] = fmt.Sprintf("epoch %d owner %s", epoch, owner)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClusterBadStart (issue 16, 6): a node started with a bad setting or
// beside a fault exits non-zero with a clear message, and changes no
// shard's ownership (epochs and owners in PostgreSQL are as before) while
// the running nodes keep serving.
func TestClusterBadStart(t *testing.T) {
	c := newCluster(t, 3)
	uid := newUser(t, c.nodes[0], "badstart@example.org")
	var tokens []string
	for range 24 { // sessions on every shard: every grain is active
		tokens = append(tokens, c.nodes[0].must("session-new", sessionBody(uid)).Str("session_token"))
	}
	serving := func(when string) {
		t.Helper()
		for _, nd := range c.nodes {
			for _, tok := range tokens {
				if ok, err := sessionExists(nd, tok); !ok || err != nil {
					t.Fatalf("%s: %s: session check exists=%v err=%v", when, nd.name, ok, err)
				}
			}
		}
	}
	serving("before")
	before := shardOwners(t, c.db)
	if len(before) != 8 {
		t.Fatalf("shard owners before: %v", before)
	}
	pgPort := strconv.Itoa(c.pg.Port())
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"etcd unreachable", []string{"AUTHNZERVER_CLUSTER=http://127.0.0.1:1"}, "cannot reach etcd at 127.0.0.1:1"},
		{"node address in use", []string{"AUTHNZERVER_NODEADDR=127.0.0.1:" + strconv.Itoa(c.nodes[1].nodePort)},
			"cluster node address 127.0.0.1:" + strconv.Itoa(c.nodes[1].nodePort)},
		{"another shard count", []string{"AUTHNZERVER_SHARDS=16"}, "this database's cluster has 8 shards; start every node with AUTHNZERVER_SHARDS=8"},
		{"database unreachable", []string{"AUTHNZERVER_AUTHDB=" + strings.Replace(c.db, ":"+pgPort+"/", ":1/", 1)}, "cannot reach PostgreSQL at authnz@127.0.0.1:1/"},
		{"no PostgreSQL", []string{"AUTHNZERVER_AUTHDB="}, "cluster mode (AUTHNZERVER_CLUSTER) needs the shared PostgreSQL store"},
	}
	if !strings.Contains(c.db, ":"+pgPort+"/") {
		t.Fatalf("database URL %q does not name port %s", c.db, pgPort)
	}
	for _, tc := range cases {
		nd := c.newNode("bad")
		started := time.Now()
		nd.startWith(tc.env...)
		if !nd.waitExit(60 * time.Second) {
			nd.kill()
			t.Errorf("%s: still running after 60 s\n%s", tc.name, nd.stderr)
			continue
		}
		out := nd.stderr.String()
		code := nd.exitCode()
		t.Logf("%s: exit status %d after %v: %s", tc.name, code, time.Since(started).Round(time.Millisecond), lastLine(out))
		if code == 0 {
			t.Errorf("%s: exit status 0\n%s", tc.name, out)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: the output does not say %q:\n%s", tc.name, tc.want, out)
		}
		if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
			t.Errorf("%s: a panic or stack dump instead of a message:\n%s", tc.name, out)
		}
		if after := shardOwners(t, c.db); !maps.Equal(before, after) {
			t.Errorf("%s: shard ownership changed:\nbefore %v\nafter  %v", tc.name, before, after)
		}
		serving("after " + tc.name)
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
