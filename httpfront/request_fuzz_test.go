package httpfront

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/wire"
)

// fuzzServer is one in-memory server (no store, no listener) shared by the
// fuzz targets of a process.
var fuzzServer = sync.OnceValues(func() (*Server, error) {
	lg := slog.New(slog.DiscardHandler)
	key, err := wire.GenerateKey()
	if err != nil {
		return nil, err
	}
	codec, err := wire.NewCodec([]string{key}, 0)
	if err != nil {
		return nil, err
	}
	system := actors.NewActorSystem(lg)
	core, err := actors.Start(system, nil, nil, actors.Options{Shards: 2, Logger: lg})
	if err != nil {
		return nil, err
	}
	hasher := passhash.NewHasher(system, passhash.HasherOptions{Workers: 1, QueueLen: 4,
		Params: passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}})
	return New(Options{Logger: lg, RateLimits: "none", PIISalt: "fuzz", MaxBodyBytes: 64 << 10, Observer: fuzzTimeouts},
		Deps{Codec: codec, Core: core, Hasher: hasher})
})

// fuzzTimeouts counts the fuzz server's requests that waited out a shard's
// ask timeout (answered 503, BusyTimeout): a request that waits for
// something that never comes, found without timing anything.
var fuzzTimeouts = &timeoutCounter{}

type timeoutCounter struct{ n atomic.Int64 }

func (c *timeoutCounter) RequestType(string) RequestObserver { return nopRequest{} }
func (c *timeoutCounter) Response(int)                       {}
func (c *timeoutCounter) Busy(cause BusyCause) {
	if cause == BusyTimeout {
		c.n.Add(1)
	}
}

type nopRequest struct{}

func (nopRequest) Done(Outcome, time.Duration) {}

// endpointNames lists every registered request type (legacy aliases
// included), sorted so a fuzz input's index picks the same one each run.
func endpointNames() []string {
	names := make([]string, 0, len(endpoints))
	for n := range endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fuzzSeeds adds, for every endpoint, a body that passes validation and a
// few that do not.
func fuzzSeeds(add func(name string, body []byte)) {
	for _, name := range endpointNames() {
		ep := endpoints[name]
		good := map[string]any{}
		for _, p := range ep.params {
			switch p.types[0] {
			case tStr:
				good[p.name] = "x"
			case tInt:
				good[p.name] = 4
			case tFloat:
				good[p.name] = 1.5
			case tDict:
				good[p.name] = map[string]any{"a": 1}
			case tList:
				good[p.name] = []any{1}
			case tBool:
				good[p.name] = true
			case tAny:
				good[p.name] = "any"
			case tNone:
				good[p.name] = nil
			}
		}
		b, _ := json.Marshal(good)
		add(name, b)
		add(name, []byte(`{}`))
		add(name, []byte(`{"`+firstParam(ep)+`":[{"deep":[[[null]]]}],"extra":1e999}`))
		// Integers out of our range.
		for _, p := range ep.params {
			if p.types[0] == tInt {
				for _, v := range []string{"18446744073709551617", "-1", "1e300", "4.5", "-9223372036854775809"} {
					add(name, []byte(`{"`+p.name+`":`+v+`}`))
				}
			}
		}
	}
}

func firstParam(ep *endpoint) string {
	if len(ep.params) == 0 {
		return "x"
	}
	return ep.params[0].name
}

// FuzzRequest drives the whole POST / pipeline (docs/protocol.md, "The
// pipeline of `POST /`": decrypt, envelope decode, schema validation,
// admission, the handler itself) with arbitrary plaintexts sealed with the
// server's key, and with arbitrary raw bodies. No input may panic, and every
// answer is a status the protocol knows.
func FuzzRequest(f *testing.F) {
	s, err := fuzzServer()
	if err != nil {
		f.Fatal(err)
	}
	fuzzSeeds(func(name string, body []byte) {
		env := `{"request":` + quote(name) + `,"body":` + string(body) + `,"reqid":1,"client_ipaddr":"1.2.3.4"}`
		f.Add(true, []byte(env))
	})
	f.Add(true, []byte(`{"request":"session-exists","body":{"session_token":"x"},"reqid":null}`))
	f.Add(true, []byte(`{"request":7,"body":[],"reqid":{"a":[1]},"client_ipaddr":{}}`))
	f.Add(true, []byte(`[]`))
	f.Add(true, []byte(`"\ud800"`))
	// Issue 14 item 13: a reqid that is not UTF-8, and deep nesting.
	f.Add(true, []byte("{\"request\":\"session-exists\",\"body\":{\"session_token\":\"x\"},\"reqid\":\"\xff\",\"client_ipaddr\":\"1.2.3.4\"}"))
	f.Add(true, []byte(`{"request":"session-exists","body":{"session_token":"x"},"reqid":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`,"client_ipaddr":"1.2.3.4"}`))
	f.Add(true, []byte(`{"request":"session-new","body":{"ip_address":"1.2.3.4","user_agent":"x","user_id":null,"expires":"2099-01-01T00:00:00","extra_info_json":{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}},"reqid":1,"client_ipaddr":"1.2.3.4"}`))
	f.Add(false, []byte("gAAAAABfXhAAAAECAwQFBgcICQoLDA0ODw=="))
	f.Add(false, []byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, sealed bool, payload []byte) {
		body := payload
		if sealed {
			b, err := s.deps.Codec.Seal(payload)
			if err != nil {
				t.Fatal(err)
			}
			body = b
		}
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/")
		ctx.Request.Header.SetHost("localhost")
		ctx.Request.SetBody(body)
		timeouts := fuzzTimeouts.n.Load()
		s.Handler()(&ctx)
		if fuzzTimeouts.n.Load() != timeouts {
			t.Fatalf("the request waited out a shard's ask timeout (payload %q)", payload)
		}
		switch st := ctx.Response.StatusCode(); st {
		case 200, 400, 401, 413, 429, 503:
		default:
			t.Fatalf("status %d for payload %q", st, payload)
		}
		if ctx.Response.StatusCode() != 200 {
			// Plain text that the Python client shows as failure_reason.
			if b := ctx.Response.Body(); !utf8.Valid(b) || !bytes.HasPrefix(b, []byte("HTTP ")) {
				t.Fatalf("status %d body %q is not the plain error text", ctx.Response.StatusCode(), b)
			}
			return
		}
		plain, err := s.deps.Codec.Open(ctx.Response.Body())
		if err != nil {
			t.Fatalf("200 answer does not open: %v", err)
		}
		// Python's json.loads must read every answer.
		if !utf8.Valid(plain) || !json.Valid(plain) || jsonDepth(plain) > maxJSONDepth+4 {
			t.Fatalf("answer %q is not UTF-8 JSON of bounded depth", plain)
		}
	})
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// FuzzValidate checks every registered request's body validation with
// arbitrary bodies: it never panics, and a body it passes holds every
// required parameter with one of its types and no falsy kwarg.
func FuzzValidate(f *testing.F) {
	names := endpointNames()
	idx := map[string]int{}
	for i, n := range names {
		idx[n] = i
	}
	fuzzSeeds(func(name string, body []byte) { f.Add(uint16(idx[name]), body) })
	f.Fuzz(func(t *testing.T, which uint16, raw []byte) {
		ep := endpoints[names[int(which)%len(names)]]
		var body map[string]json.RawMessage
		if json.Unmarshal(raw, &body) != nil {
			return
		}
		probs := validate(ep.params, body)
		if len(probs) > 0 {
			// The problems answer must encode.
			res := invalidParams(ep.name, probs)
			appendEnvelope(nil, &res, []byte("1"))
			return
		}
		for _, p := range ep.params {
			v, ok := body[p.name]
			if !ok {
				if p.required {
					t.Fatalf("%s: required %q missing but passed", ep.name, p.name)
				}
				continue
			}
			if !p.required && falsy(v) {
				t.Fatalf("%s: falsy kwarg %q kept", ep.name, p.name)
			}
			good := false
			for _, ty := range p.types {
				good = good || matches(v, ty)
			}
			if !good {
				t.Fatalf("%s: %q = %s passed with the wrong type", ep.name, p.name, v)
			}
		}
	})
}
