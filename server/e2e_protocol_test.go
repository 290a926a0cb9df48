package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/wire"
)

// post sends a raw body to POST / with the given Host header.
func post(t *testing.T, url, host string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func seal(t *testing.T, ts *servertest.Server, plain string) []byte {
	t.Helper()
	b, err := ts.Client.Seal([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProtocolErrors(t *testing.T) {
	ts := servertest.Start(t, servertest.DefaultRateLimits())
	other, _ := wire.GenerateKey()
	foreign, _ := wire.NewCodec([]string{other}, 0)
	foreignBody, _ := foreign.Seal([]byte(`{"request":"session-exists","body":{"session_token":"x"},"reqid":1,"client_ipaddr":"1.2.3.4"}`))
	old, _ := wire.NewCodec([]string{ts.Key}, 0)
	staleBody, _ := old.SealAt([]byte(`{"request":"session-exists","body":{"session_token":"x"},"reqid":1,"client_ipaddr":"1.2.3.4"}`), time.Now().Add(-10*time.Minute))
	tests := []struct {
		name   string
		body   []byte
		status int
		text   string
	}{
		{"garbage", []byte("hello"), 401, "HTTP 401: Could not service this request because of invalid request authentication token or violation of host restriction."},
		{"foreign key", foreignBody, 401, ""},
		{"stale token", staleBody, 401, ""},
		{"falsy payload", seal(t, ts, `{}`), 401, ""},
		{"null payload", seal(t, ts, `null`), 401, ""},
		{"not JSON", seal(t, ts, `{"request":`), 401, ""},
		{"array payload", seal(t, ts, `[1,2]`), 400, ""},
		{"echo on /", seal(t, ts, `{"request":"echo","body":{},"reqid":1,"client_ipaddr":"1.2.3.4"}`), 400, "HTTP 400: Could not service this request because of invalid request parameters."},
		{"missing reqid", seal(t, ts, `{"request":"session-exists","body":{"session_token":"x"},"client_ipaddr":"1.2.3.4"}`), 400, ""},
		{"null reqid", seal(t, ts, `{"request":"session-exists","body":{"session_token":"x"},"reqid":null,"client_ipaddr":"1.2.3.4"}`), 400, ""},
		{"missing client_ipaddr", seal(t, ts, `{"request":"session-exists","body":{"session_token":"x"},"reqid":1}`), 400, ""},
		{"body not an object", seal(t, ts, `{"request":"session-exists","body":[1],"reqid":1,"client_ipaddr":"1.2.3.4"}`), 400, ""},
		{"request not a string", seal(t, ts, `{"request":7,"body":{},"reqid":1,"client_ipaddr":"1.2.3.4"}`), 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := post(t, ts.URL, "", tt.body)
			if status != tt.status {
				t.Errorf("status = %d; want %d (body %q)", status, tt.status, body)
			}
			if tt.text != "" && string(body) != tt.text {
				t.Errorf("body = %q; want %q", body, tt.text)
			}
		})
	}
	// None of that changed state: the server still answers.
	if r := ts.Do("session-exists", map[string]any{"session_token": "nope"}); r.StatusCode != 200 || r.Success {
		t.Errorf("after bad input: status %d success %v", r.StatusCode, r.Success)
	}
}

func TestUnknownRequestType(t *testing.T) {
	ts := servertest.Start(t)
	r := ts.Do("no-such-request", map[string]any{"x": 1})
	if r.StatusCode != 400 {
		t.Fatalf("status = %d; want 400", r.StatusCode)
	}
	// The body is plain text, as the Python client expects: the
	// reference's text and the reason.
	if want := "HTTP 400: Could not service this request because of invalid request parameters. Reason: unknown request type."; r.Success || r.FailureReason != want {
		t.Errorf("success %v failure_reason %q; want false, %q", r.Success, r.FailureReason, want)
	}
}

func TestReqIDEchoedWithItsType(t *testing.T) {
	ts := servertest.Start(t)
	for _, id := range []any{"abc", 0, 7, 1.5, true, []any{1, "x"}, map[string]any{"a": 1}} {
		r, err := ts.Client.RequestWithID(context.Background(), "session-exists", map[string]any{"session_token": "x", "client_ipaddr": "1.2.3.4"}, id)
		if err != nil {
			t.Fatalf("reqid %v: %v", id, err)
		}
		want, _ := json.Marshal(id)
		var a, b any
		json.Unmarshal(r.ReqID, &a)
		json.Unmarshal(want, &b)
		if !jsonEqual(a, b) {
			t.Errorf("reqid = %s; want %s", r.ReqID, want)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestInvalidParamsShape(t *testing.T) {
	ts := servertest.Start(t)
	r, err := ts.Client.RequestWithID(context.Background(), "session-exists", map[string]any{"session_token": 123, "client_ipaddr": "1.2.3.4"}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 200 || r.Success {
		t.Fatalf("status %d success %v; want 200 false", r.StatusCode, r.Success)
	}
	if r.FailureReason != "" {
		t.Errorf("top-level failure_reason = %q; want none", r.FailureReason)
	}
	var env map[string]any
	json.Unmarshal(r.Raw, &env)
	inner := env["response"].(map[string]any)["response"].(map[string]any)
	if inner["failure_reason"] != "invalid request parameters" {
		t.Errorf("inner failure_reason = %v", inner["failure_reason"])
	}
	probs := inner["problems"].([]any)
	p := probs[0].(map[string]any)
	if p["param"] != "session_token" || p["problem"] != "incorrect type" || p["required_type"] != "str" || p["required_param"] != true {
		t.Errorf("problem = %v", p)
	}
	if len(r.Messages) != 1 || r.Messages[0] != "request 'session-exists' has invalid parameters" {
		t.Errorf("messages = %q", r.Messages)
	}
	// A missing arg, and a union type.
	r = ts.Do("session-new", map[string]any{"ip_address": "1.2.3.4", "user_agent": "x", "user_id": "four", "extra_info_json": nil})
	json.Unmarshal(r.Raw, &env)
	probs = env["response"].(map[string]any)["response"].(map[string]any)["problems"].([]any)
	got := map[string]any{}
	for _, p := range probs {
		m := p.(map[string]any)
		got[m["param"].(string)] = m
	}
	if m, ok := got["expires"].(map[string]any); !ok || m["problem"] != "missing" {
		t.Errorf("expires problem = %v; want missing", got["expires"])
	}
	if m, ok := got["user_id"].(map[string]any); !ok || m["problem"] != "incorrect type" || !jsonEqual(m["required_type"], []any{"int", "None"}) {
		t.Errorf("user_id problem = %v; want incorrect type [int None]", got["user_id"])
	}
}

func TestHostAllowListAndPaths(t *testing.T) {
	ts := servertest.Start(t)
	body := seal(t, ts, `{"request":"session-exists","body":{"session_token":"x"},"reqid":1,"client_ipaddr":"1.2.3.4"}`)
	if status, _, _ := post(t, ts.URL, "evil.example:13431", body); status != 404 {
		t.Errorf("foreign Host: status %d; want 404", status)
	}
	if status, _, _ := post(t, ts.URL, "LOCALHOST:1234", body); status != 200 {
		t.Errorf("localhost Host: status %d; want 200", status)
	}
	if status, _, _ := post(t, strings.TrimSuffix(ts.URL, "/")+"/nope", "", body); status != 404 {
		t.Errorf("unknown path: status %d; want 404", status)
	}
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET /: status %d; want 405", resp.StatusCode)
	}
}

func TestOversizedBodyRefused(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXBODYBYTES", "4096"))
	big := bytes.Repeat([]byte("A"), 8192)
	status, _, _ := post(t, ts.URL, "", big)
	if status != 413 {
		t.Errorf("status = %d; want 413", status)
	}
}

func TestHealth(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	resp, err := http.Get(strings.TrimSuffix(ts.URL, "/") + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h map[string]any
	json.NewDecoder(resp.Body).Decode(&h)
	if resp.StatusCode != 200 || h["Health-Ok"] != true {
		t.Errorf("health: %d %v", resp.StatusCode, h)
	}
}

func TestSpecVectorBodyAccepted(t *testing.T) {
	// The test vector of wire/codec_test.go, a 2020 token: accepted when the
	// freshness window is off.
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_TOKENMAXAGE", "0"))
	body := []byte("Z0FBQUFBQmZYaEFBQUFFQ0F3UUZCZ2NJQ1FvTERBME9EXzRRLU1Qd2pJdlI2RHN0RXFmN2otblQzS3E1ZnhScVROaDlrY3BycDlXUTJNQlplSkJCYVRkVDMzaURuUVlTaUZZWkxGZUhTQ2xpTDBISTZFbVV6UG8wOFhVcFBNU1BGOTlOUlFOYjhybmpvaVU2eDZWX1NuNV9NUVRmdndGX1hVWjBqTWMxQ0lPMWRpenJHUjdnb1JMSnBJMi1qMmx6b09wLVFFSk5qU1d3X0g2M1BBTWhTak1CcjNFRHphOU5BZz09\n")
	status, _, out := post(t, ts.URL, "", body)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	plain, err := ts.Client.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	json.Unmarshal(plain, &env)
	if env["reqid"] != float64(1) || env["success"] != false {
		t.Errorf("answer = %s", plain)
	}
	_ = base64.StdEncoding
}
