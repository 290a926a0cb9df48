// Package httpfront is authnzerver's HTTP front: a fasthttp server that opens
// each request (Fernet + JSON: docs/protocol.md, "Encoding: the sealed
// body"), validates it against its request type's schema (docs/protocol.md,
// "Invalid parameters"), routes it to the shards that own its state, and
// seals the answer.
//
// A fasthttp handler goroutine runs the whole pipeline for one request:
// decode, validate, route, orchestrate the shard and hasher steps, encode.
// Nothing here holds shard state; every read and change goes through package
// actors. Buffers from fasthttp (PostBody, Host) are valid only until the
// handler returns, so everything a message carries is copied first (the
// codec's Open returns a fresh slice).
//
// requests.go holds the one table of request types, from which every
// per-type index is derived. Handlers return their errors; errors.go holds
// the only mapping from errors to HTTP statuses (answerOf, statusOf).
package httpfront
