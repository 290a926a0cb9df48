// Package persist is authnzerver's durable store: pebble underneath (or,
// through [Backend] and [Sink], PostgreSQL in package pgstore), opaque
// keys and values on top, written behind the in-memory state with group
// commit.
//
// # Write-behind with group commit
//
// Shard actors hand their mutation records to a [Writer] with Enqueue, which
// never waits for the disk. One goroutine takes everything queued, writes it
// as one pebble batch, syncs it, and then releases the [Ticket]s of that batch.
// While one sync runs, the next batch fills. A request that changed durable
// state is answered only after its ticket is released, so nothing
// acknowledged is lost in a crash.
//
// # Concurrency
//
// Enqueue is safe from any goroutine. The input is bounded: when MaxPending
// records are waiting, Enqueue blocks, which stalls the callers and so pushes
// back on the HTTP front. A failed commit is sticky: every later ticket fails
// with the same error and [Writer.Err] reports it, so the server refuses
// writes rather than acknowledging what it did not store.
//
// # Full disk, damage, file modes
//
// A full disk is not such a failure: the store keeps a reserve file and
// frees it at the first ENOSPC, so that pebble finishes what it has begun;
// a write that still finds no room waits for it instead of failing inside
// pebble (which cannot go on after a failed log write), while the tickets
// in flight are failed at once with [ErrDiskFull] (their records reach the
// disk later, so disk and memory agree). [Store.Healthy] reports
// ErrDiskFull meanwhile (the server answers writes 503), and the store
// recovers by itself once its probe finds room. Repeated pebble errors are
// logged once per kind and minute, with a count. A write-ahead log damaged
// before its end is refused at open ([WALDamageError]) unless
// [Options.SkipWALDamage]; a damaged table file is reported as a
// [DamagedStoreError] naming it. Files are 0600 and directories 0700
// whatever the umask.
//
// This package imports nothing of ours.
package persist
