// Package membership is the etcd cluster provider of authnzerver's cluster
// mode: it implements protoactor-go's cluster.ClusterProvider on
// go.etcd.io/etcd/client/v3, in place of protoactor's own etcd provider
// (cluster/clusterproviders/etcd), whose bugs it fixes.
//
// # Use
//
//	p, err := membership.New(membership.Config{Endpoints: []string{"http://10.0.0.5:2379"}})
//	if err != nil { ... } // bad endpoint, or etcd unreachable within DialTimeout
//	c := cluster.New(system, cluster.Configure("authnz", p, disthash.New(), remote.Configure(host, port), cluster.WithKinds(...)))
//	c.StartMember()
//	...
//	if err := p.GetHealthStatus(); err != nil { ... } // readiness
//	if !p.Confirmed() { ... } // not sure we are still a member: take no new work
//	c.Shutdown(true) // deregisters at once
//
// # Keys
//
// Each member puts /<Prefix>/<cluster>/<actor system ID> under a lease of
// TTL (default 3 s) kept alive by the etcd client; the value is JSON
// {"id","host","port","kinds"}. The member ID is the actor system's ID
// (fresh per process), which protoactor's gossip, block list and
// BroadcastEvent use.
//
// # What it fixes in protoactor's etcd provider
//
//   - A member is always in its own member list while it runs. protoactor's
//     provider, seeing its own key deleted (lease expired while etcd was
//     away), drops itself and then "skips self" when it puts the key
//     again, so it never comes back into its own list.
//   - Every session (registration + watch) starts with one transaction
//     that puts our key under a new lease and reads the whole member list;
//     the full topology is published and the watch starts at the revision
//     after that read. When the lease is lost (etcd unreachable for longer
//     than the TTL, restarted, lease expired), the watch fails, or our own
//     key is deleted, a new session starts (back-off up to 1 s), so no join
//     or leave is ever missed. protoactor's provider re-watches from "now"
//     after a watch error and loses what happened in the gap.
//   - New checks that etcd answers (GET /health on each endpoint, within
//     DialTimeout) and returns a clear error ("cannot reach etcd at
//     127.0.0.1:1: …"); protoactor's Cluster.StartMember panics on a
//     provider error, so call New right before starting the cluster. Bad
//     endpoints (other schemes than http://, empty entries, no port) are
//     refused by New with the entry named.
//   - gRPC's reconnect back-off is capped at min(1 s, TTL/3) (default: up
//     to 120 s), so after an etcd restart the members are back long
//     before anyone's lease could expire.
//
// # Behaviours of protoactor-go (v0.0.0-20240822202345) to know
//
// Block list. MemberList.UpdateClusterTopology blocks (remote.BlockList)
// every member that leaves, for the life of the process, and filters
// blocked IDs out of every later topology; gossip spreads block lists and
// also blocks members whose gossip heartbeat is older than
// HeartbeatExpiration (20 s) and members that left gracefully. A member
// ID that left is therefore never taken back. Consequences: a member must
// never be reported as leaving while it lives, and a member that was
// (its key expired while it was cut off from etcd and the others were
// not) must restart its actor system to rejoin. This provider registers
// such a member again (so its own view is right) and reports
// [ErrExpelled] from GetHealthStatus for good, so that a readiness probe
// restarts it. etcd itself being away does not expel anyone: etcd
// extends every lease on restart, and the members re-register within
// about a second.
//
// Same host:port. Remote endpoints are keyed by address, members by ID.
// When a member leaves, the member list publishes EndpointTerminatedEvent
// for its address, which tears down the connection to that address. After
// a crash and a fast restart on the same host:port, the predecessor's key
// lives until its lease expires; had it then "left", the live successor's
// connections would have been torn down. The provider's view therefore
// keeps, of several members with one address, only the newest key
// (highest create revision; always ourselves for our own address): the
// predecessor leaves the moment the successor joins, in one topology
// update, and its key's later expiry changes nothing.
//
// Data races. protoactor-go's Remote.Start sets gRPC's global logger
// (grpclog.SetLoggerV2), a data race with any gRPC connection already
// open in the process; so the provider creates its gRPC etcd client in
// StartMember (after Remote.Start) and New checks etcd over plain HTTP.
// Several remotes in one process race anyway, so the tests run each
// member in a process of its own. protoactor-go also has races of its own
// (remote.BlockList.IsBlocked reads without its lock; disthash.Manager
// replaces its rendezvous table while requests read it; gossip state is
// marshalled while written); the tests report those without failing.
//
// A member's own ID. A member that publishes a topology without itself
// blocks its own ID in its own member list, which then never lists
// itself again: this is why this provider always includes itself, and
// what makes bug (1) of protoactor's provider permanent. That provider
// also ignores member values without "alive":true, watches its cluster's
// prefix without a trailing slash (cluster "a" sees the members of "ab"),
// and names members "<cluster>@<system ID>" while gossip uses the bare
// system ID.
//
// Confirmed. A member that etcd has not answered within the TTL (paused,
// or cut off) may have been dropped by the others without knowing it yet:
// it learns it only when it registers again. Confirmed reads the time
// since etcd's last keep-alive answer on the monotonic clock when asked,
// so a member resumed from a long pause is unconfirmed at once;
// authnzerver's nodes take no shard while unconfirmed (a node dropped by
// the others would otherwise take shards from the nodes they route to).
//
// Dead grain owners. Until a crashed member leaves the topology (its TTL
// plus up to about half a second; at once after a graceful leave),
// disthash still maps its grains to it and sends each activation request
// to the dead member's partition-activator with a hard-coded 5 s timeout
// that the request's WithTimeout does not shorten: requests for its
// grains fail after 2 to 7 s (measured: "request failed: context deadline
// exceeded"). Once it left, the next request activates the grain afresh on
// its new owner (grains are not migrated; their in-memory state is gone).
// The PID cache (cluster.PidCache) has no expiry: an entry goes when its
// member leaves (RemoveByMember, by address) or when a request to it times
// out or dead-letters (then the request retries through the lookup).
//
// Timing. Cluster.StartMember sleeps 1 s after starting the provider.
// Cluster.Shutdown(true) shuts the provider down (our lease is revoked:
// the others drop the member within tens of milliseconds), then sleeps
// 2 s for hand-overs and stops gRPC gracefully with a 10 s cap.
// Cluster.Shutdown(false) does not call the provider at all: call
// Provider.Shutdown yourself (graceful or not).
//
// Topology to placement. UpdateClusterTopology publishes the
// ClusterTopology on the actor system's event stream synchronously; the
// disthash manager's subscriber rebuilds its rendezvous table (by member
// address) in the publishing goroutine (ours) and sends the topology to
// the local partition-activator actor, which poisons the grains it hosts
// that now belong elsewhere. Grain placement thus follows this provider's
// view within one event.
package membership
