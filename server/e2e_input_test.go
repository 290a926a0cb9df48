package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// problemsOf returns the param -> problem map of an invalid-parameters
// answer (docs/protocol.md, "Invalid parameters"), or nil when r is not one.
func problemsOf(r *client.Response) map[string]string {
	if r.StatusCode != 200 || r.Success {
		return nil
	}
	var env struct {
		Response struct {
			Response struct {
				Problems []struct{ Param, Problem string }
			}
		}
	}
	if json.Unmarshal(r.Raw, &env) != nil || len(env.Response.Response.Problems) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, p := range env.Response.Response.Problems {
		m[p.Param] = p.Problem
	}
	return m
}

// TestIntegerOutOfRangeIsInvalid: an integer that does not fit our id type
// is an invalid parameter, not "no id" (once, user-list answered with every
// user, and session-new made an anonymous session).
func TestIntegerOutOfRangeIsInvalid(t *testing.T) {
	ts := servertest.Start(t)
	ts.NewUser("range@example.org", "a-long-enough-passphrase-123")
	for _, v := range []json.Number{"18446744073709551617", "9223372036854775808", "-1", "1e300", "4.5"} {
		r := ts.Do("user-list", map[string]any{"user_id": v})
		if p := problemsOf(r); p["user_id"] != "incorrect type" {
			t.Errorf("user-list user_id %s: status %d success %v problems %v; want user_id incorrect type", v, r.StatusCode, r.Success, p)
		}
		if r.Response["user_info"] != nil {
			t.Errorf("user-list user_id %s: answered user_info %v", v, r.Response["user_info"])
		}
		r = ts.Do("session-new", map[string]any{
			"ip_address": "192.0.2.1", "user_agent": "range", "user_id": v,
			"expires": "2099-01-01T00:00:00.5", "extra_info_json": nil,
		})
		if p := problemsOf(r); p["user_id"] != "incorrect type" || r.Str("session_token") != "" {
			t.Errorf("session-new user_id %s: status %d success %v problems %v token %q; want user_id incorrect type and no session", v, r.StatusCode, r.Success, p, r.Str("session_token"))
		}
	}
	// The largest id of our type is valid, and simply names no user.
	r := ts.Do("user-list", map[string]any{"user_id": json.Number("9223372036854775807")})
	if r.StatusCode != 200 || !r.Success {
		t.Fatalf("user-list max int64: status %d success %v", r.StatusCode, r.Success)
	}
	if list, _ := r.Response["user_info"].([]any); len(list) != 0 {
		t.Errorf("user-list max int64: %d users; want none", len(list))
	}
}

// TestNonOKBodiesArePlainText: every non-200 answer of POST / is the
// reference's plain text, optionally followed by the reason, never a sealed
// envelope: the Python client shows the body as failure_reason.
func TestNonOKBodiesArePlainText(t *testing.T) {
	ts := servertest.Start(t, servertest.DefaultRateLimits())
	const text400 = "HTTP 400: Could not service this request because of invalid request parameters."
	tests := []struct {
		name, plain, reason string
	}{
		{"unknown request type", `{"request":"no-such-request","body":{},"reqid":1,"client_ipaddr":"1.2.3.4"}`, "unknown request type"},
		{"missing client_ipaddr", `{"request":"session-exists","body":{"session_token":"x"},"reqid":1}`, "client_ipaddr"},
		{"empty client_ipaddr", `{"request":"session-exists","body":{"session_token":"x"},"reqid":1,"client_ipaddr":""}`, "client_ipaddr"},
		{"missing reqid", `{"request":"session-exists","body":{"session_token":"x"},"client_ipaddr":"1.2.3.4"}`, "reqid"},
		{"body not an object", `{"request":"session-exists","body":[1],"reqid":1,"client_ipaddr":"1.2.3.4"}`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := post(t, ts.URL, "", seal(t, ts, tt.plain))
			if status != 400 {
				t.Fatalf("status %d; want 400 (body %q)", status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.HasPrefix(string(body), text400) || !strings.Contains(string(body), tt.reason) {
				t.Errorf("body %q; want the 400 text and a reason naming %q", body, tt.reason)
			}
			if _, err := ts.Client.Open(body); err == nil {
				t.Errorf("body %q is sealed", body)
			}
		})
	}
	// The Go client reports the text as the failure reason, as the Python
	// client does.
	r := ts.Do("no-such-request", map[string]any{})
	if r.StatusCode != 400 || r.Success || !strings.HasPrefix(r.FailureReason, text400) {
		t.Errorf("client: status %d success %v failure_reason %q", r.StatusCode, r.Success, r.FailureReason)
	}
}

// TestClientIPAddrAnyString: client_ipaddr may be any non-empty string, as
// in the reference: frontends pass X-Forwarded-For lists and host names.
// An address is canonicalised, anything else is an
// opaque rate-limit key, and a huge one is bounded.
func TestClientIPAddrAnyString(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "burst:2; session:1"))
	huge := strings.Repeat("x", 100<<10)
	for _, ip := range []string{"203.0.113.9, 10.0.0.1", "frontend.example.org", "unknown", huge} {
		r := ts.Do("session-exists", withIP(lookup, ip))
		if r.StatusCode != 200 || r.Raw == nil {
			t.Errorf("client_ipaddr %.40q: status %d %q; want 200", ip, r.StatusCode, r.FailureReason)
		}
	}
	// An opaque key is limited like an address: burst of 2 (one used
	// above), then 429; its neighbours have their own buckets.
	st, _ := statuses(ts, 3, "session-exists", "frontend.example.org", func(int) map[string]any { return lookup })
	if st[0] != 200 || st[1] != 429 || st[2] != 429 {
		t.Errorf("host name key: statuses %v; want [200 429 429]", st)
	}
	if r := ts.Do("session-exists", withIP(lookup, "other.example.org")); r.StatusCode != 200 {
		t.Errorf("another host name: status %d; want 200", r.StatusCode)
	}
	// Forms of one address share a key.
	st, _ = statuses(ts, 2, "session-exists", "::ffff:198.51.100.2", func(int) map[string]any { return lookup })
	if r := ts.Do("session-exists", withIP(lookup, " 198.51.100.2 ")); st[0] != 200 || st[1] != 200 || r.StatusCode != 429 {
		t.Errorf("mapped then plain IPv4: %v then %d; want [200 200] then 429", st, r.StatusCode)
	}
	// Two huge values that differ only after the bound share a key: the
	// key is cut, so memory per key stays bounded.
	second := ts.Do("session-exists", withIP(lookup, huge+"y")).StatusCode
	third := ts.Do("session-exists", withIP(lookup, huge+"z")).StatusCode
	if second != 200 || third != 429 {
		t.Errorf("more huge values: %d, %d; want 200 then 429 (one bounded key with the first)", second, third)
	}
}

// nested returns a JSON object nested depth levels deep.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
}

// TestAnswersAreReadableJSON: answers are always valid UTF-8 JSON that
// Python's json.loads reads: a plaintext that is not UTF-8 is refused (the
// reqid was echoed raw), and free-form JSON is bounded in depth, so nothing
// nested 9,000 deep is stored and sent back.
func TestAnswersAreReadableJSON(t *testing.T) {
	ts := servertest.Start(t)
	// A reqid, and a parameter, with bytes that are not UTF-8.
	for _, plain := range []string{
		"{\"request\":\"session-exists\",\"body\":{\"session_token\":\"x\"},\"reqid\":\"a\xff\xfeb\",\"client_ipaddr\":\"1.2.3.4\"}",
		"{\"request\":\"session-exists\",\"body\":{\"session_token\":\"x\xc3\"},\"reqid\":1,\"client_ipaddr\":\"1.2.3.4\"}",
	} {
		status, _, body := post(t, ts.URL, "", seal(t, ts, plain))
		if status == 200 {
			opened, err := ts.Client.Open(body)
			t.Errorf("plaintext %q: answered 200 (valid UTF-8: %v, open error %v)", plain, utf8.Valid(opened), err)
			continue
		}
		if status != 401 || !utf8.Valid(body) || !strings.HasPrefix(string(body), "HTTP 401: ") {
			t.Errorf("plaintext %q: status %d body %q; want the plain 401 text", plain, status, body)
		}
	}
	// A reqid nested too deeply is refused; 32 levels are echoed.
	if status, _, body := post(t, ts.URL, "", seal(t, ts, `{"request":"session-exists","body":{"session_token":"x"},"reqid":`+nested(9000)+`,"client_ipaddr":"1.2.3.4"}`)); status != 400 {
		t.Errorf("reqid 9000 deep: status %d body %.80q; want 400", status, body)
	}
	var deepID any
	json.Unmarshal([]byte(nested(32)), &deepID)
	if r, err := ts.Client.RequestWithID(t.Context(), "session-exists", map[string]any{"session_token": "x", "client_ipaddr": "1.2.3.4"}, deepID); err != nil || r.StatusCode != 200 {
		t.Errorf("reqid 32 deep: %v %v; want 200", r, err)
	}

	newSession := func(extra string) *client.Response {
		var v any
		if err := json.Unmarshal([]byte(extra), &v); err != nil {
			t.Fatal(err)
		}
		return ts.Do("session-new", map[string]any{
			"ip_address": "192.0.2.1", "user_agent": "depth", "user_id": nil,
			"expires": "2099-01-01T00:00:00.5", "extra_info_json": v,
		})
	}
	// json.Marshal refuses nothing here; the client sends what it is given.
	for _, depth := range []int{33, 9000} {
		r := newSession(nested(depth))
		if p := problemsOf(r); p["extra_info_json"] != "nested too deeply" || r.Str("session_token") != "" {
			t.Errorf("extra_info_json %d deep: status %d success %v problems %v; want nested too deeply", depth, r.StatusCode, r.Success, p)
		}
	}
	r := newSession(nested(32))
	if !r.Success {
		t.Fatalf("extra_info_json 32 deep: %d %q %v", r.StatusCode, r.FailureReason, problemsOf(r))
	}
	tok := r.Str("session_token")
	// An edit cannot make it deeper either.
	var deep any
	json.Unmarshal([]byte(nested(40)), &deep)
	r = ts.Do("internal-session-edit", map[string]any{"target_session_token": tok, "update_dict": map[string]any{"b": deep}})
	if p := problemsOf(r); p["update_dict"] != "nested too deeply" {
		t.Errorf("internal-session-edit 41 deep: status %d success %v problems %v; want nested too deeply", r.StatusCode, r.Success, p)
	}
	// What is stored comes back as JSON of bounded depth.
	status, _, body := post(t, ts.URL, "", seal(t, ts, `{"request":"session-exists","body":{"session_token":"`+tok+`"},"reqid":1,"client_ipaddr":"1.2.3.4"}`))
	opened, err := ts.Client.Open(body)
	if status != 200 || err != nil || !utf8.Valid(opened) || !json.Valid(opened) {
		t.Fatalf("session-exists: status %d open %v", status, err)
	}
	if d := depthOf(opened); d > 40 {
		t.Errorf("session-exists answer is %d deep", d)
	}
}

// depthOf is the nesting depth of a JSON text, counted by decoding it.
func depthOf(b []byte) int {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	depth, most := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			most = max(most, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// TestStoredSizesBounded: ip_address and user_agent are bounded by the
// reference's columns (280 characters), and a session's extra_info_json by
// AUTHNZERVER_MAXEXTRAINFOBYTES (once, 64 KB of extra data and a 4 KB user
// agent were accepted, at 110 KB of memory per session).
func TestStoredSizesBounded(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXEXTRAINFOBYTES", "1024"))
	session := func(ua string, extra map[string]any) *client.Response {
		return ts.Do("session-new", map[string]any{
			"ip_address": "192.0.2.1", "user_agent": ua, "user_id": nil,
			"expires": "2099-01-01T00:00:00.5", "extra_info_json": extra,
		})
	}
	// 280 characters pass however many bytes they take; 281 do not.
	if r := session(strings.Repeat("é", 280), nil); !r.Success {
		t.Errorf("user_agent of 280 characters: %d %q %v", r.StatusCode, r.FailureReason, problemsOf(r))
	}
	for _, ua := range []string{strings.Repeat("a", 281), strings.Repeat("a", 4096)} {
		if r := session(ua, nil); problemsOf(r)["user_agent"] != "too long" {
			t.Errorf("user_agent of %d characters: status %d success %v problems %v; want too long", len(ua), r.StatusCode, r.Success, problemsOf(r))
		}
	}
	r := ts.Do("apikey-new-nosession", map[string]any{"ip_address": strings.Repeat("1", 281)})
	if problemsOf(r)["ip_address"] != "too long" {
		t.Errorf("ip_address of 281 characters: status %d problems %v; want too long", r.StatusCode, problemsOf(r))
	}
	// extra_info_json within the bound is stored; beyond it the session is
	// refused, not made without it.
	if r := session("ua", map[string]any{"k": strings.Repeat("v", 900)}); !r.Success {
		t.Errorf("extra of 900 bytes: %d %q", r.StatusCode, r.FailureReason)
	}
	r = session("ua", map[string]any{"k": strings.Repeat("v", 2000)})
	if r.Success || r.Str("session_token") != "" || !strings.Contains(r.FailureReason, "extra_info_json") {
		t.Errorf("extra of 2000 bytes: success %v token %q reason %q; want refused", r.Success, r.Str("session_token"), r.FailureReason)
	}
	tok := ts.NewSession(0)
	r = ts.Do("internal-session-edit", map[string]any{"target_session_token": tok, "update_dict": map[string]any{"k": strings.Repeat("v", 2000)}})
	if r.Success {
		t.Errorf("internal-session-edit past the bound: success")
	}
}

// getOnConn sends one keep-alive request on c and returns the status, or
// the error that ended the exchange.
func getOnConn(c net.Conn, br *bufio.Reader) (int, error) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestConnectionsPerAddressBounded: one client address cannot hold every
// connection slot; beyond AUTHNZERVER_MAXCONNSPERIP its connections are
// refused as they are accepted, other addresses are served, and a slot it
// gives back can be used again.
func TestConnectionsPerAddressBounded(t *testing.T) {
	const limit = 4
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_MAXCONNSPERIP", strconv.Itoa(limit)))
	addr := ts.Srv.Addr.String()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if st, err := getOnConn(c, bufio.NewReader(c)); err != nil || st != 404 {
			t.Fatalf("connection %d: status %d, %v; want served (404)", i+1, st, err)
		}
	}
	// One more from the same address is refused at once: a 429 or a
	// closed connection, never a served request.
	c, err := net.Dial("tcp", addr)
	if err == nil {
		st, err := getOnConn(c, bufio.NewReader(c))
		c.Close()
		if err == nil && st != 429 {
			t.Errorf("connection %d from one address: status %d; want refused", limit+1, st)
		}
	}
	// Another address is not affected (Linux routes all of 127/8 to lo).
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if c, err := d.Dial("tcp", addr); err != nil {
		t.Logf("cannot dial from 127.0.0.2 (%v): the other-address check is skipped", err)
	} else {
		st, err := getOnConn(c, bufio.NewReader(c))
		c.Close()
		if err != nil || st != 404 {
			t.Errorf("other address: status %d, %v; want served", st, err)
		}
	}
	// A slot given back is free again once the server has seen the close.
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			st, err := getOnConn(c, bufio.NewReader(c))
			if err == nil && st == 404 {
				held = append(held, c)
				break
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("a freed slot was not usable again within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionEditUnknownTokenHasNullInfo: internal-session-edit of an
// unknown token answers "session_info": null, as the reference does;
// clients index it.
func TestSessionEditUnknownTokenHasNullInfo(t *testing.T) {
	ts := servertest.Start(t)
	for _, reqType := range []string{"internal-session-edit", "session-setinfo"} {
		body := map[string]any{"target_session_token": "no-such-token", "update_dict": map[string]any{"a": 1}}
		if reqType == "session-setinfo" {
			body = map[string]any{"session_token": "no-such-token", "extra_info": map[string]any{"a": 1}}
		}
		r := ts.Do(reqType, body)
		if r.StatusCode != 200 || r.Success || r.FailureReason != "no such session" {
			t.Fatalf("%s: status %d success %v reason %q", reqType, r.StatusCode, r.Success, r.FailureReason)
		}
		if v, ok := r.Response["session_info"]; !ok || v != nil {
			t.Errorf("%s: response %v; want \"session_info\": null", reqType, r.Response)
		}
	}
}

// TestDuplicateSignupUsesNoID: a sign-up of a taken address does not use
// up a user id; the next sign-up gets the next id.
func TestDuplicateSignupUsesNoID(t *testing.T) {
	ts := servertest.Start(t)
	signup := func(email string) *client.Response {
		return ts.Do("user-new", map[string]any{"full_name": "Id Counter", "email": email, "password": "a-long-enough-passphrase-123"})
	}
	r := signup("first@example.org")
	first, ok := r.Int("user_id")
	if !r.Success || !ok {
		t.Fatalf("first sign-up: %v %q", r.Success, r.FailureReason)
	}
	for range 3 {
		if r := signup("first@example.org"); r.Success || r.FailureReason != "user exists" {
			t.Fatalf("duplicate sign-up: success %v reason %q; want user exists", r.Success, r.FailureReason)
		}
	}
	r = signup("second@example.org")
	if second, _ := r.Int("user_id"); !r.Success || second != first+1 {
		t.Errorf("next sign-up: success %v user_id %d; want %d", r.Success, second, first+1)
	}
}
