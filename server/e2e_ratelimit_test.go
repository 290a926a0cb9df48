package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/server/servertest"
)

// lookup is the cheapest request: a session-exists of a token that does not
// exist (answered 200 with success false).
var lookup = map[string]any{"session_token": "no-such-token"}

func withIP(body map[string]any, ip string) map[string]any {
	out := map[string]any{"client_ipaddr": ip}
	for k, v := range body {
		out[k] = v
	}
	return out
}

// statuses sends n requests of one type from ip and returns their statuses
// and the last Retry-After.
func statuses(ts *servertest.Server, n int, reqType, ip string, body func(i int) map[string]any) ([]int, string) {
	var out []int
	retry := ""
	for i := range n {
		b := map[string]any{}
		if body != nil {
			b = body(i)
		}
		r := ts.Do(reqType, withIP(b, ip))
		out = append(out, r.StatusCode)
		if r.StatusCode == 429 {
			retry = r.Header.Get("Retry-After")
		}
	}
	return out, retry
}

// count429 reports how many of the statuses are 429, and whether they all
// come after every other status.
func count429(st []int) (n int, tail bool) {
	tail = true
	for _, s := range st {
		if s == 429 {
			n++
		} else if n > 0 {
			tail = false
		}
	}
	return n, tail
}

func TestRateLimitBurstThenGroupLimit(t *testing.T) {
	// session:1 a minute after a burst of 5: nothing refills during the test.
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "burst:5; session:1"))
	st, retry := statuses(ts, 12, "session-new", "198.51.100.7", func(int) map[string]any {
		return map[string]any{"ip_address": "198.51.100.7", "user_agent": "t", "user_id": nil, "expires": expiresIn(time.Hour), "extra_info_json": nil}
	})
	if n, tail := count429(st); n != 7 || !tail {
		t.Errorf("got statuses %v; want 5 × 200 then 7 × 429", st)
	}
	for _, s := range st[:5] {
		if s != 200 {
			t.Errorf("got statuses %v; want 5 × 200 first", st)
			break
		}
	}
	// The next request passes one interval (60 s) after the last that
	// passed; Retry-After says so, in whole seconds rounded up.
	if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 60 {
		t.Errorf("got Retry-After %q; want 1..60 seconds", retry)
	}
	// Another client IP has its own buckets; another type from the same IP
	// too.
	if r := ts.Do("session-exists", withIP(lookup, "198.51.100.8")); r.StatusCode != 200 {
		t.Errorf("other IP: got status %d; want 200", r.StatusCode)
	}
	if r := ts.Do("session-exists", withIP(lookup, "198.51.100.7")); r.StatusCode != 200 {
		t.Errorf("other type, same IP: got status %d; want 200", r.StatusCode)
	}
	if r := ts.Do("session-new", withIP(nil, "198.51.100.7")); r.StatusCode != 429 || r.FailureReason != "HTTP 429: Could not service this request because the set rate limit has been exceeded." {
		t.Errorf("limited IP again: got %d %q; want 429 and the 429 text", r.StatusCode, r.FailureReason)
	}
}

func TestRateLimitRecovery(t *testing.T) {
	// 60 a minute: one per second after a burst of 2.
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "burst:2; session:60"))
	st, retry := statuses(ts, 3, "session-exists", "192.0.2.1", func(int) map[string]any { return lookup })
	if st[0] != 200 || st[1] != 200 || st[2] != 429 {
		t.Fatalf("got statuses %v; want [200 200 429]", st)
	}
	if retry != "1" {
		t.Errorf("got Retry-After %q; want 1", retry)
	}
	n, _ := strconv.Atoi(retry)
	time.Sleep(time.Duration(n) * time.Second)
	if r := ts.Do("session-exists", withIP(lookup, "192.0.2.1")); r.StatusCode != 200 {
		t.Errorf("after Retry-After: got status %d; want 200", r.StatusCode)
	}
}

func TestRateLimitAggressiveAndOverrides(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "ipaddr:720; user:480; session:600; apikey:720; burst:150; user-list:3; user-login:4;"))
	signup := func(i int) map[string]any {
		return map[string]any{"email": fmt.Sprintf("u%d@example.org", i), "password": "a perfectly fine passphrase 77", "full_name": "U"}
	}
	tests := []struct {
		reqType string
		body    func(i int) map[string]any
		want    int // requests that pass a quick burst
	}{
		{"user-new", signup, 5},              // aggressive, built in
		{"user-list", nil, 3},                // config override of a group type
		{"user-login", nil, 4},               // config override of an aggressive type (the documented fix)
		{"user-sendemail-signup", signup, 2}, // aggressive and email-tied
		{"apikey-new", nil, 30},
	}
	for _, tc := range tests {
		st, retry := statuses(ts, tc.want+2, tc.reqType, "203.0.113.50", tc.body)
		if n, tail := count429(st); n != 2 || !tail {
			t.Errorf("%s: got statuses %v; want %d passed then 2 × 429", tc.reqType, st, tc.want)
		}
		if retry == "" {
			t.Errorf("%s: 429 without Retry-After", tc.reqType)
		}
	}
}

// TestRateLimitFloodBeforeHasher sends a concurrent flood of logins from one
// address: only the aggressive limit's worth gets past the limiter, which
// runs before the handler, so no more than that can reach the hasher pool.
func TestRateLimitFloodBeforeHasher(t *testing.T) {
	ts := servertest.Start(t, servertest.DefaultRateLimits())
	var passed, limited atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				r, err := ts.Client.Request(context.Background(), "user-login", map[string]any{
					"client_ipaddr": "203.0.113.9", "session_token": "x", "email": fmt.Sprintf("x%d-%d@example.org", g, i), "password": "wrong",
				})
				if err != nil {
					t.Error(err)
					return
				}
				if r.StatusCode == 429 {
					limited.Add(1)
				} else {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 10 || limited.Load() != 70 {
		t.Errorf("got %d passed, %d limited; want 10 and 70", passed.Load(), limited.Load())
	}
}

func TestRateLimitConcurrentCannotExceed(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "burst:20; session:1"))
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				r, err := ts.Client.Request(context.Background(), "session-exists", withIP(lookup, "192.0.2.99"))
				if err != nil {
					t.Error(err)
					return
				}
				if r.StatusCode == 200 {
					passed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := passed.Load(); got != 20 {
		t.Errorf("got %d of 200 concurrent requests passed; want 20", got)
	}
}

func TestRateLimitEmailTied(t *testing.T) {
	ts := servertest.Start(t, servertest.DefaultRateLimits())
	// No email at all: 429 at once, before validation (docs/protocol.md,
	// "Rate limits").
	r := ts.Do("user-lookup-email", withIP(nil, "192.0.2.5"))
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Errorf("no email: got status %d Retry-After %q; want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := ts.Do("user-lookup-email", withIP(map[string]any{"email": ""}, "192.0.2.5")); r.StatusCode != 429 {
		t.Errorf("empty email: got status %d; want 429", r.StatusCode)
	}
	// email_address is the fallback.
	if r := ts.Do("user-lookup-email", withIP(map[string]any{"email_address": "a@example.org"}, "192.0.2.5")); r.StatusCode == 429 {
		t.Errorf("email_address: got 429; want it limited by that address")
	}
	// user-set-emailsent: 2 a minute per IP and per email. The email's
	// bucket holds across IPs; a request refused by it does not use the
	// new IP's allowance.
	sent := func(email, ip string) int {
		return ts.Do("user-set-emailsent", withIP(map[string]any{"email": email, "emailsent_type": "signup"}, ip)).StatusCode
	}
	got := []int{sent("v@example.org", "192.0.2.6"), sent("V@Example.org", "192.0.2.6"), sent("v@example.org", "192.0.2.7"), sent("v@example.org", "192.0.2.7")}
	if got[0] == 429 || got[1] == 429 || got[2] != 429 || got[3] != 429 {
		t.Errorf("same email from two IPs: got %v; want two passed, then 429 from the email's bucket", got)
	}
	got = []int{sent("w@example.org", "192.0.2.7"), sent("x@example.org", "192.0.2.7"), sent("y@example.org", "192.0.2.7")}
	if got[0] == 429 || got[1] == 429 || got[2] != 429 {
		t.Errorf("fresh emails from the second IP: got %v; want its full allowance of 2, then 429", got)
	}
}

func TestRateLimitMissingClientIP(t *testing.T) {
	ts := servertest.Start(t, servertest.DefaultRateLimits())
	for _, ip := range []any{nil, "", false, 0} {
		body := map[string]any{"session_token": "x"}
		if ip != nil {
			body["client_ipaddr"] = ip
		}
		r, err := ts.Client.Request(context.Background(), "session-exists", body)
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != 400 {
			t.Errorf("client_ipaddr %#v: got status %d; want 400", ip, r.StatusCode)
		}
		// The 400 is the reference's plain text, with the reason.
		if r.Raw != nil || r.Success || !strings.Contains(r.FailureReason, "client_ipaddr") {
			t.Errorf("client_ipaddr %#v: failure_reason %q; want the plain 400 text naming client_ipaddr", ip, r.FailureReason)
		}
	}
	// Any other truthy value is a rate-limit key, as in the reference.
	for _, ip := range []any{"not-an-ip", "01.2.3.4", true, 7} {
		r, err := ts.Client.Request(context.Background(), "session-exists", map[string]any{"session_token": "x", "client_ipaddr": ip})
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode != 200 {
			t.Errorf("client_ipaddr %#v: got status %d %q; want 200", ip, r.StatusCode, r.FailureReason)
		}
	}
	// An IPv4-mapped address is the same client as its IPv4 form.
	for _, ip := range []string{"::ffff:198.51.100.2", " 198.51.100.2 "} {
		if r := ts.Do("session-exists", map[string]any{"session_token": "x", "client_ipaddr": ip}); r.StatusCode != 200 {
			t.Errorf("client_ipaddr %q: status %d; want 200", ip, r.StatusCode)
		}
	}
}

func health(t *testing.T, ts *servertest.Server) (int, string) {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(ts.URL, "/") + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestRateLimitHealth(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "burst:2; apikey:1"))
	var got []int
	for range 3 {
		s, _ := health(t, ts)
		got = append(got, s)
	}
	if got[0] != 200 || got[1] != 200 || got[2] != 429 {
		t.Errorf("health: got %v; want [200 200 429] (apikey-healthcheck by socket IP)", got)
	}
	// Requests with client_ipaddr 127.0.0.1 are another type: unaffected.
	if r := ts.Do("session-exists", lookup); r.StatusCode != 200 {
		t.Errorf("session-exists after health limit: got %d; want 200", r.StatusCode)
	}
}

func TestRateLimitNone(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "None"))
	st, _ := statuses(ts, 200, "session-exists", "192.0.2.1", func(int) map[string]any { return lookup })
	if n, _ := count429(st); n != 0 {
		t.Errorf("got %d × 429 with rate limits off; want 0", n)
	}
	st, _ = statuses(ts, 8, "user-new", "192.0.2.1", nil)
	if n, _ := count429(st); n != 0 {
		t.Errorf("user-new: got %d × 429 with rate limits off; want 0", n)
	}
	// client_ipaddr is optional then.
	r, err := ts.Client.Request(context.Background(), "session-exists", map[string]any{"session_token": "x"})
	if err != nil || r.StatusCode != 200 {
		t.Errorf("no client_ipaddr: got %v, %v; want 200", r, err)
	}
	// Health works and is not limited (the reference fails with 500).
	for i := range 5 {
		if s, _ := health(t, ts); s != 200 {
			t.Fatalf("health %d: got %d; want 200", i, s)
		}
	}
}

func TestRateLimitBadConfigStopsStart(t *testing.T) {
	for _, bad := range []string{"session:abc", "burst", "user-list:-1", "ipaddr:0"} {
		err := startErr(t, map[string]string{"AUTHNZERVER_RATELIMITS": bad})
		if err == nil || !strings.Contains(err.Error(), "ratelimits") {
			t.Errorf("ratelimits %q: got %v; want an error naming ratelimits", bad, err)
		}
	}
}
