// Package wire is the authnzerver wire codec: the double base64 Fernet
// encoding that carries every request and response body (docs/protocol.md,
// "Encoding: the sealed body").
//
// It is shared by the server (httpfront), the Go client (client) and the
// benchmark suite (bench), so it imports nothing of ours. A [Codec] is
// immutable after [NewCodec] and safe for concurrent use.
package wire
