package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

// objectKeys are the keys of the JSON object raw, in order.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %v: %s", err, raw)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			// Values are skipped whole, so every string at depth 1 is a key.
			if depth == 1 {
				keys = append(keys, v)
				var skip json.RawMessage
				if err := d.Decode(&skip); err != nil {
					t.Fatalf("value of %s: %v", v, err)
				}
			}
		}
	}
	if len(keys) != len(m) {
		t.Fatalf("keys %q of %s; the object has %d", keys, raw, len(m))
	}
	return keys
}

// TestCodecStick: a sealed answer of the codec stick opens with our codec
// and is a session-exists success with our server's keys, in its order and
// of about its size, echoing the reqid as sent; stale and foreign tokens
// are refused.
func TestCodecStick(t *testing.T) {
	cs, err := newCodecStick(benchKey)
	if err != nil {
		t.Fatal(err)
	}
	codec := testCodec(t)

	// Our server's answer to the same request, for the keys and the size.
	l := startTestLocal(t)
	c := newCaller(l.Target, 2)
	defer c.close()
	toks, err := makeSessions(c, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	req, err := envelope(Call{Type: "session-exists", Body: map[string]any{"session_token": toks[0]}, ClientIP: clientIP(3)}, 12345)
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := c.post(req)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := codec.Open(body)
	if err != nil {
		t.Fatal(err)
	}

	sealed, err := codec.Seal(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cs.answer(sealed)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := codec.Open(out)
	if err != nil {
		t.Fatalf("the stick's answer does not open with wire.Codec: %v", err)
	}
	var got, want struct {
		Success  bool            `json:"success"`
		Response json.RawMessage `json:"response"`
		ReqID    json.RawMessage `json:"reqid"`
		Messages []string        `json:"messages"`
	}
	if err := json.Unmarshal(plain, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ours, &want); err != nil {
		t.Fatal(err)
	}
	if !got.Success || string(got.ReqID) != "12345" || !slices.Equal(got.Messages, want.Messages) {
		t.Errorf("stick answer %s; want success, reqid 12345, messages %q", plain, want.Messages)
	}
	if g, w := objectKeys(t, plain), objectKeys(t, ours); !slices.Equal(g, w) {
		t.Errorf("envelope keys %q; our server's %q", g, w)
	}
	if g, w := objectKeys(t, got.Response), objectKeys(t, want.Response); !slices.Equal(g, w) {
		t.Errorf("response keys %q; our server's %q", g, w)
	}
	var gr, wr struct {
		Success     bool            `json:"success"`
		SessionInfo json.RawMessage `json:"session_info"`
	}
	_ = json.Unmarshal(got.Response, &gr)
	_ = json.Unmarshal(want.Response, &wr)
	gk, wk := objectKeys(t, gr.SessionInfo), objectKeys(t, wr.SessionInfo)
	if !gr.Success || len(gk) != 18 || !slices.Equal(gk, wk) {
		t.Errorf("session_info keys %q (%d); our server's %q", gk, len(gk), wk)
	}
	// Same shape and values of the same kinds: the sizes are within a few
	// bytes (timestamps may drop their microseconds).
	if d := len(plain) - len(ours); d < -16 || d > 16 {
		t.Errorf("stick answer %d bytes, our server's %d:\n%s\n%s", len(plain), len(ours), plain, ours)
	}

	// A string reqid comes back as sent.
	req2, _ := json.Marshal(map[string]any{"request": "session-exists", "body": map[string]any{"session_token": "x"}, "reqid": "abc-1", "client_ipaddr": "10.0.0.1"})
	sealed2, _ := codec.Seal(req2)
	out2, err := cs.answer(sealed2)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := codec.Open(out2)
	if err := json.Unmarshal(p2, &got); err != nil || string(got.ReqID) != `"abc-1"` {
		t.Errorf("string reqid answered %s (%v)", got.ReqID, err)
	}

	// Stale (past our server's freshness window) and foreign tokens.
	stale, _ := codec.SealAt(req, time.Now().Add(-wire.DefaultMaxAge-time.Minute))
	other, _ := wire.NewCodec([]string{"BBECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, 0)
	foreign, _ := other.Seal(req)
	for name, b := range map[string][]byte{"stale": stale, "foreign key": foreign, "not base64": []byte("!!")} {
		if _, err := cs.answer(b); !errors.Is(err, wire.ErrUnauthenticated) {
			t.Errorf("%s token: %v; want ErrUnauthenticated", name, err)
		}
	}
	noReqID, _ := codec.Seal([]byte(`{"request":"session-exists","body":{}}`))
	if _, err := cs.answer(noReqID); !errors.Is(err, errStickRequest) {
		t.Errorf("no reqid: %v; want errStickRequest", err)
	}
}
