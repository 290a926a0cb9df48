// Package actors runs authnzerver's core on protoactor-go: one shard actor
// per shard of state and the link to the write-behind persister. Its exported functions are the core's API for the
// HTTP front.
//
// # Ownership
//
// Each shard actor owns one [shard.Shard]; nothing else touches it. Callers
// send a message and wait for the reply on a channel carried by the message
// (cheaper than a RequestFuture: one allocation instead of twelve). The
// shard applies a change in memory at once, hands its mutation records to the
// persister and replies with a [persist.Ticket]; a caller that must not
// acknowledge before the change is durable waits on that ticket, so the shard
// itself never waits for the disk.
//
// Work that takes more than microseconds never runs on a shard actor: Argon2
// runs in the hasher pool (package passhash), and callers (HTTP goroutines) orchestrate the steps
// of a request that needs both.
//
// This package may import shard, persist, passhash and mail, never httpfront
// or fasthttp.
package actors
