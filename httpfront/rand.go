package httpfront

import "crypto/rand"

// randRead fills b from crypto/rand, which does not fail on supported
// platforms (Go 1.24+ crashes the program rather than return an error).
func randRead(b []byte) { _, _ = rand.Read(b) }
