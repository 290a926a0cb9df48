package bench

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

// Call is one request as the load generator sends it: a request type and
// its body. ClientIP goes into the envelope's client_ipaddr (the rate-limit
// key); empty means 127.0.0.1.
type Call struct {
	Type     string
	Body     map[string]any
	ClientIP string
}

// Gen returns the i-th call of a workload. It is called only while bodies
// are prepared, never in the measured loop.
type Gen func(i int) Call

// envelope builds the plaintext request envelope (docs/protocol.md, "The
// request envelope") for call c with reqid id (an integer, so the sampled
// answer can be matched back to the body that was sent).
func envelope(c Call, id int) ([]byte, error) {
	ip := c.ClientIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	body := c.Body
	if body == nil {
		body = map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"request": c.Type, "body": body, "reqid": id, "client_ipaddr": ip})
	if err != nil {
		return nil, fmt.Errorf("bench: encode %s: %w", c.Type, err)
	}
	return b, nil
}

// Bodies are request bodies sealed ahead of the measured window, so the
// load generator spends no time encrypting while it measures. Sealed
// tokens carry their creation time and the server refuses them after its
// freshness window (wire.DefaultMaxAge, 120 s), so long runs call Refresh
// (or StartRefresh) to re-seal in the background; the hot loop only loads
// an atomic pointer.
type Bodies struct {
	codec *wire.Codec
	plain [][]byte // envelopes; static after PrepareBodies
	types []string // request type of each body, for reports
	cur   atomic.Pointer[[][]byte]
	stop  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
	// sealedAt is when the current generation was sealed (unix nanos).
	sealedAt atomic.Int64
}

// PrepareBodies builds and seals n bodies from gen. Body i has reqid i.
func PrepareBodies(codec *wire.Codec, n int, gen Gen) (*Bodies, error) {
	if n <= 0 {
		return nil, fmt.Errorf("bench: no bodies to prepare")
	}
	b := &Bodies{codec: codec, plain: make([][]byte, n), types: make([]string, n), stop: make(chan struct{})}
	for i := range n {
		c := gen(i)
		p, err := envelope(c, i)
		if err != nil {
			return nil, err
		}
		b.plain[i], b.types[i] = p, c.Type
	}
	if err := b.Refresh(); err != nil {
		return nil, err
	}
	return b, nil
}

// Len is the number of distinct bodies.
func (b *Bodies) Len() int { return len(b.plain) }

// Type is the request type of body i.
func (b *Bodies) Type(i int) string { return b.types[i] }

// Get returns sealed body i (modulo Len). The slice is shared: callers must
// not modify it.
func (b *Bodies) Get(i int) []byte {
	s := *b.cur.Load()
	return s[i%len(s)]
}

// Age is how long ago the current generation was sealed.
func (b *Bodies) Age() time.Duration {
	return time.Since(time.Unix(0, b.sealedAt.Load()))
}

// Refresh re-seals every body with the current time and swaps the new
// generation in. Requests in flight keep the slices they loaded.
func (b *Bodies) Refresh() error {
	now := time.Now()
	sealed := make([][]byte, len(b.plain))
	for i, p := range b.plain {
		s, err := b.codec.SealAt(p, now)
		if err != nil {
			return err
		}
		sealed[i] = s
	}
	b.cur.Store(&sealed)
	b.sealedAt.Store(now.UnixNano())
	return nil
}

// StartRefresh re-seals every interval until Close, so bodies stay inside
// the server's freshness window however long the run is. An interval of
// half the window leaves the other half for bodies already handed out.
func (b *Bodies) StartRefresh(interval time.Duration) {
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				_ = b.Refresh() // only fails on a broken key, which PrepareBodies already caught
			}
		}
	}()
}

// Close stops the background refresh.
func (b *Bodies) Close() {
	b.once.Do(func() { close(b.stop) })
	b.done.Wait()
}

// SealedNow seals every body afresh with the current time and returns the
// new tokens without touching the generation Get hands out. The wrk driver
// (its section in bench/README.md) writes them to a file right before each
// run: a token's timestamp is then at most one run old.
func (b *Bodies) SealedNow() ([][]byte, error) {
	now := time.Now()
	out := make([][]byte, len(b.plain))
	for i, p := range b.plain {
		s, err := b.codec.SealAt(p, now)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}
