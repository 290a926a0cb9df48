// Package shard holds the state of one shard of authnzerver and every
// operation on it, as plain Go.
//
// A [Shard] owns users, sessions, the email index and the other tables whose
// keys hash to it (see [SessionRoute], [UserRoute], [EmailRoute]). Its methods
// are deterministic: they take the current time as an argument, change memory
// at once and return the [Mutation] records that the caller must persist.
// There are no goroutines, locks or I/O here.
//
// # Concurrency
//
// A Shard is not safe for concurrent use. In the server exactly one actor
// owns each Shard and its mailbox serialises every call (see package actors).
// Values returned by methods are copies, never pointers into the shard's
// maps, so they may cross goroutines freely. Byte slices inside records
// (ExtraInfo) are never modified in place once stored: an update replaces the
// slice, so sharing them is safe.
//
// This package imports nothing of ours.
package shard
