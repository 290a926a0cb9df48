// Package perm owns the permission model of the auth server: the reference's
// JSON file format, its default model (packaged here), the access decision
// of user-check-access and the role limit check of user-check-limit
// (docs/protocol.md, "Access and limit checks").
//
// The package is pure: no I/O except [LoadFile], no goroutines, no clock. It
// imports only the standard library and nothing of ours, so any layer (shard,
// actors, httpfront, cmd) may import it.
//
// # Concurrency
//
// A [*Model] is immutable once [Load] or [LoadFile] has returned it, and all of
// its methods are safe for concurrent use without locks. To change the model at
// run time, load a new one and swap the pointer (for example with an
// atomic.Pointer[Model]); requests that already hold the old one keep a
// consistent view. [Default] returns the same shared *Model on every call.
//
// # Errors
//
// Load rejects a bad model with a [*ModelError] naming the offending key
// (errors.Is(err, [ErrInvalidModel]) holds). The checks return
// [ErrUnknownRole] (wrapped) for a role the model does not declare; every
// other odd input (unknown item, action or visibility, a malformed shared-with
// list, a value that cannot be cast) is a denial, never an error and never a
// panic.
package perm
