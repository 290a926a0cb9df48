package membership

import (
	"net"
	"testing"
)

// FuzzDecodeMember: a member's value, written to etcd by another node (or
// by anyone who can write there), never panics the decoder, and what it
// accepts is a usable address.
func FuzzDecodeMember(f *testing.F) {
	f.Add([]byte(`{"id":"abc","host":"127.0.0.1","port":7100,"kinds":["shard"]}`))
	f.Add([]byte(`{"id":"abc","host":"::1","port":65536}`))
	f.Add([]byte(`{"id":"","host":"h","port":1}`))
	f.Add([]byte(`{"id":"x","host":"h","port":-1,"kinds":null}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decode(b)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error repeats an unbounded value: %d bytes", len(err.Error()))
			}
			return
		}
		if n.ID == "" || n.Host == "" || n.Port < 1 || n.Port > 65535 {
			t.Fatalf("accepted an unusable member %+v", n)
		}
		if _, _, err := net.SplitHostPort(n.address()); err != nil {
			t.Fatalf("address %q of an accepted member does not split: %v", n.address(), err)
		}
	})
}
