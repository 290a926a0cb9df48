package bench

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

func testCodec(t testing.TB) *wire.Codec {
	t.Helper()
	c, err := wire.NewCodec([]string{benchKey}, wire.DefaultMaxAge)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPrepareBodies(t *testing.T) {
	t.Parallel() // it sleeps a second
	codec := testCodec(t)
	gen := func(i int) Call {
		return Call{Type: "session-exists", Body: map[string]any{"session_token": "tok"}, ClientIP: clientIP(i)}
	}
	b, err := PrepareBodies(codec, 5, gen)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Len() != 5 {
		t.Fatalf("Len = %d; want 5", b.Len())
	}
	for i := range 7 {
		plain, err := codec.Open(b.Get(i))
		if err != nil {
			t.Fatalf("body %d does not open: %v", i, err)
		}
		var env struct {
			Request  string         `json:"request"`
			Body     map[string]any `json:"body"`
			ReqID    int            `json:"reqid"`
			ClientIP string         `json:"client_ipaddr"`
		}
		if err := json.Unmarshal(plain, &env); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if env.Request != "session-exists" || env.ReqID != i%5 || env.ClientIP != clientIP(i%5) || env.Body["session_token"] != "tok" {
			t.Errorf("body %d = %+v; want session-exists, reqid %d, client_ipaddr %s", i, env, i%5, clientIP(i%5))
		}
	}
	old := b.Get(0)
	time.Sleep(1100 * time.Millisecond) // Fernet timestamps have second resolution
	if err := b.Refresh(); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(old, b.Get(0)) {
		t.Error("Refresh kept the old sealed body")
	}
	p1, _ := codec.Open(old)
	p2, _ := codec.Open(b.Get(0))
	if !bytes.Equal(p1, p2) {
		t.Errorf("Refresh changed the plaintext: %s vs %s", p1, p2)
	}
	if b.Age() > time.Second {
		t.Errorf("Age after Refresh = %v; want under a second", b.Age())
	}
}

func TestBodiesStartRefresh(t *testing.T) {
	b, err := PrepareBodies(testCodec(t), 1, func(int) Call { return Call{Type: "x"} })
	if err != nil {
		t.Fatal(err)
	}
	first := b.sealedAt.Load()
	b.StartRefresh(10 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for b.sealedAt.Load() == first && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.Close()
	b.Close() // idempotent
	if b.sealedAt.Load() == first {
		t.Error("background refresh never re-sealed")
	}
}

func TestPrepareBodiesNone(t *testing.T) {
	if _, err := PrepareBodies(testCodec(t), 0, nil); err == nil {
		t.Error("PrepareBodies(0) succeeded; want an error")
	}
}
