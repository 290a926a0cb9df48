// Package passhash hashes and verifies passwords with Argon2id: a bounded
// pool of protoactor-go worker actors (Hasher) that refuses work at once
// when full, PHC strings ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so that
// parameters can change and old hashes still verify, and the isolated
// hash-worker child process that computes by default.
//
// A fault of the pool or of the worker (a dead, stalled or confused worker,
// a panic) fails Run with an error, never a "no match": a caller must not
// mistake a broken hasher for a wrong password. Only a stored string this
// package cannot verify is a per-operation result, and it never matches.
//
// This package imports none of the server's core (docs/design.md,
// "Packages").
package passhash
