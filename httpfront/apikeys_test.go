package httpfront

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// apikeyHarness is an in-memory server (no store, no listener) for the API
// key benchmarks and handler tests.
type apikeyHarness struct {
	tb    testing.TB
	srv   *Server
	codec *wire.Codec
	core  *actors.Core
}

func newAPIKeyHarness(tb testing.TB) *apikeyHarness {
	tb.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	codec, err := wire.NewCodec([]string{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	system := actors.NewActorSystem(lg)
	core, err := actors.Start(system, nil, nil, actors.Options{Shards: 8, Logger: lg})
	if err != nil {
		tb.Fatal(err)
	}
	hasher := passhash.NewHasher(system, passhash.HasherOptions{Params: passhash.HashParams{TimeCost: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}})
	tb.Cleanup(func() { hasher.Stop(); core.Stop() })
	srv, err := New(Options{Logger: lg, RateLimits: "none"}, Deps{Codec: codec, Core: core, Hasher: hasher})
	if err != nil {
		tb.Fatal(err)
	}
	h := &apikeyHarness{tb: tb, srv: srv, codec: codec, core: core}
	for _, u := range []shard.User{{ID: 1, Role: "superuser", IsActive: true}, {ID: 4, Role: "authenticated", IsActive: true}} {
		if _, err := actors.Ask[shard.User](core, actors.CreateUser{User: u}); err != nil {
			tb.Fatal(err)
		}
	}
	return h
}

// sealed returns the request body of one request.
func (h *apikeyHarness) sealed(reqType string, body any) []byte {
	plain, err := json.Marshal(map[string]any{"request": reqType, "body": body, "reqid": 1, "client_ipaddr": "127.0.0.1"})
	if err != nil {
		h.tb.Fatal(err)
	}
	out, err := h.codec.Seal(plain)
	if err != nil {
		h.tb.Fatal(err)
	}
	return out
}

// serve runs one sealed request through the handler into ctx.
func (h *apikeyHarness) serve(ctx *fasthttp.RequestCtx, sealed []byte) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/")
	ctx.Request.Header.SetHost("localhost")
	ctx.Request.SetBody(sealed)
	h.srv.handle(ctx)
}

// do sends one request and returns the action's result object.
func (h *apikeyHarness) do(reqType string, body any) map[string]any {
	h.tb.Helper()
	var ctx fasthttp.RequestCtx
	h.serve(&ctx, h.sealed(reqType, body))
	if ctx.Response.StatusCode() != 200 {
		h.tb.Fatalf("%s: status %d", reqType, ctx.Response.StatusCode())
	}
	plain, err := h.codec.Open(ctx.Response.Body())
	if err != nil {
		h.tb.Fatal(err)
	}
	var env struct {
		Response map[string]any `json:"response"`
	}
	if err := json.Unmarshal(plain, &env); err != nil {
		h.tb.Fatal(err)
	}
	return env.Response
}

func (h *apikeyHarness) newFreeKey(uid int64, role string) map[string]any {
	h.tb.Helper()
	r := h.do("apikey-new-nosession", map[string]any{
		"issuer": "f", "audience": "a", "subject": "s", "apiversion": 1, "expires_seconds": 3600, "not_valid_before": -1,
		"user_id": uid, "user_role": role, "ip_address": "1.2.3.4", "refresh_expires": 3600, "refresh_nbf": 0,
	})
	if r["success"] != true {
		h.tb.Fatalf("apikey-new-nosession: %v", r)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(r["apikey"].(string)), &c); err != nil {
		h.tb.Fatal(err)
	}
	return c
}

func TestAPIKeyVerifyInProcess(t *testing.T) {
	h := newAPIKeyHarness(t)
	c := h.newFreeKey(4, "authenticated")
	for _, tt := range []struct {
		name string
		uid  int64
		role string
		ok   bool
	}{
		{"owner", 4, "authenticated", true},
		{"superuser", 1, "superuser", true},
		{"owner, wrong role", 4, "staff", false},
		{"unknown user", 5, "authenticated", false},
	} {
		r := h.do("apikey-verify-nosession", map[string]any{"apikey_dict": c, "user_id": tt.uid, "user_role": tt.role})
		if got := r["success"] == true; got != tt.ok {
			t.Errorf("%s: success %v; want %v (%v)", tt.name, got, tt.ok, r)
		}
	}
}

func TestDecodeKeyClaims(t *testing.T) {
	tok := strings.Repeat("a", 43)
	for _, tt := range []struct {
		in          string
		missing     bool
		uidOK, okTR bool
		uid         int64
		tkn, rol    string
	}{
		{`{"uid":4,"tkn":"` + tok + `","rol":"staff"}`, false, true, true, 4, tok, "staff"},
		{`{"uid":-4,"tkn":"` + tok + `","rol":"staff","extra":[1]}`, false, true, true, -4, tok, "staff"},
		{`{"uid":4.0,"tkn":"` + tok + `","rol":"staff"}`, false, false, true, 0, tok, "staff"},
		{`{"uid":"4","tkn":"` + tok + `","rol":"staff"}`, false, false, true, 0, tok, "staff"},
		{`{"uid":99999999999999999999,"tkn":"x","rol":"staff"}`, false, false, false, 0, "x", "staff"},
		{`{"uid":4,"tkn":"` + tok[:42] + `","rol":"staff"}`, false, true, false, 4, tok[:42], "staff"},
		{`{"uid":4,"tkn":"` + tok[:42] + `=","rol":"staff"}`, false, true, false, 4, tok[:42] + "=", "staff"},
		{`{"uid":4,"tkn":"` + tok + `","rol":""}`, false, true, false, 4, tok, ""},
		{`{"uid":4,"tkn":7,"rol":"staff"}`, false, true, false, 4, "", ""},
		{`{"uid":4,"tkn":"` + tok + `"}`, true, false, false, 0, "", ""},
		{`{"UID":4,"tkn":"` + tok + `","rol":"staff"}`, true, false, false, 0, "", ""},
		{`{"\u0075id":4,"tkn":"` + tok + `","rol":"st\u0061ff","uid":5}`, false, true, true, 5, tok, "staff"},
		{` { "uid" : 4 , "tkn" : "` + tok + `" , "rol" : "staff" , "n" : {"a":["}",{"b":"\""}]} } `, false, true, true, 4, tok, "staff"},
		{`{}`, true, false, false, 0, "", ""},
		{`null`, true, false, false, 0, "", ""},
		{`[1]`, true, false, false, 0, "", ""},
	} {
		cl, err := decodeKeyClaims(json.RawMessage(tt.in))
		if (err != nil) != tt.missing {
			t.Errorf("%s: err = %v; want missing %v", tt.in, err, tt.missing)
			continue
		}
		if err != nil {
			continue
		}
		if cl.uidOK != tt.uidOK || cl.okTR != tt.okTR || (cl.uidOK && cl.uid != tt.uid) || (cl.okTR && (cl.tkn != tt.tkn || cl.rol != tt.rol)) {
			t.Errorf("%s: got uid %d/%v tkn %q rol %q ok %v; want %d/%v %q %q %v", tt.in, cl.uid, cl.uidOK, cl.tkn, cl.rol, cl.okTR, tt.uid, tt.uidOK, tt.tkn, tt.rol, tt.okTR)
		}
	}
}

// FuzzDecodeKeyClaims feeds arbitrary apikey_dict values to the claims
// decoder and the claim copier: no panics, a token accepted only in the form
// we issue, and copied claim values always valid JSON.
func FuzzDecodeKeyClaims(f *testing.F) {
	tok := strings.Repeat("A", 43)
	f.Add(`{"uid":4,"tkn":"` + tok + `","rol":"staff","iss":"x","ver":1,"aud":"a","sub":"s"}`)
	f.Add(`{"uid":4.5,"tkn":"` + tok + `","rol":["staff"],"iss":{"a":[1,2]},"ver":null}`)
	f.Add(`{"uid":"4","tkn":"\u00e9\ud800","rol":"staff"}`)
	f.Add(`{"uid":1e99,"tkn":null,"rol":7}`)
	f.Add(`{"uid":4,"tkn":"` + tok + `","rol":"st\u0061ff","rol":"superuser","\u0072ol":"locked"}`)
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			// Never a body parameter (those are valid JSON); it must
			// still not panic.
			_, _ = decodeKeyClaims(json.RawMessage(in))
			return
		}
		cl, err := decodeKeyClaims(json.RawMessage(in))
		if err != nil {
			return
		}
		if cl.okTR && (len(cl.tkn) != apiKeyTokenLen || !isAPIKeyToken(cl.tkn) || cl.rol == "") {
			t.Fatalf("accepted token %q role %q", cl.tkn, cl.rol)
		}
		// The walker agrees with encoding/json about what is there.
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &m); err != nil {
			t.Fatalf("walker accepted what encoding/json refuses: %v", err)
		}
		for name, got := range map[string]json.RawMessage{"iss": cl.iss, "ver": cl.ver, "aud": cl.aud, "sub": cl.sub} {
			want, ok := m[name]
			if ok != (got != nil) || (ok && !bytes.Equal(compactJSON(want), compactJSON(got))) {
				t.Fatalf("claim %s: walker %q, encoding/json %q (present %v)", name, got, want, ok)
			}
			if v := claimValue(got); !json.Valid(v) {
				t.Fatalf("claim %s: %q copied as invalid JSON %q", name, got, v)
			}
		}
		if want, _ := jsonString(m["tkn"]); cl.okTR && cl.tkn != want {
			t.Fatalf("tkn %q; encoding/json says %q", cl.tkn, want)
		}
		var rol string
		if err := json.Unmarshal(m["rol"], &rol); err == nil && cl.okTR && cl.rol != rol {
			t.Fatalf("rol %q; encoding/json says %q", cl.rol, rol)
		}
		k := shard.APIKey{}
		out := (&claims{iss: claimValue(cl.iss), ver: claimValue(cl.ver), aud: claimValue(cl.aud),
			sub: claimValue(cl.sub), rol: cl.rol, tkn: cl.tkn, key: &k}).appendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("claims JSON invalid: %s", out)
		}
	})
}

func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// BenchmarkAPIKeyVerify measures apikey-verify-nosession through the whole
// handler (Fernet open, validation, shard hops, seal), next to
// session-exists measured the same way. The owner verifies their own key,
// the common case: one user lookup and one key lookup, run at once.
func BenchmarkAPIKeyVerify(b *testing.B) {
	h := newAPIKeyHarness(b)
	c := h.newFreeKey(4, "authenticated")
	verify := h.sealed("apikey-verify-nosession", map[string]any{"apikey_dict": c, "user_id": 4, "user_role": "authenticated"})
	tok, err := wire.RandomToken(32)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := actors.Ask[shard.Session](h.core, actors.CreateSession{Digest: shard.DigestSession(tok), UserID: 4, Expires: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	exists := h.sealed("session-exists", map[string]any{"session_token": tok})
	for _, bc := range []struct {
		name string
		body []byte
	}{{"apikey-verify-nosession", verify}, {"session-exists", exists}} {
		b.Run(bc.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			h.serve(&ctx, bc.body)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d", ctx.Response.StatusCode())
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					h.serve(&ctx, bc.body)
				}
			})
		})
	}
}

// BenchmarkAPIKeyVerifyCore measures the verify step alone (no Fernet, no
// envelope): the permission decision, the two shard hops and the answer.
func BenchmarkAPIKeyVerifyCore(b *testing.B) {
	h := newAPIKeyHarness(b)
	c := h.newFreeKey(4, "authenticated")
	raw, _ := json.Marshal(c)
	body := map[string]json.RawMessage{"apikey_dict": raw, "user_id": json.RawMessage("4"), "user_role": json.RawMessage(`"authenticated"`)}
	cl := &call{s: h.srv, reqType: "apikey-verify-nosession", body: body}
	if r, err := handleAPIKeyVerify(cl, shard.KeyNoSession); err != nil || !r.ok {
		b.Fatalf("verify failed: %+v, %v", r, err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := *cl
		for pb.Next() {
			handleAPIKeyVerify(&c, shard.KeyNoSession)
		}
	})
}
