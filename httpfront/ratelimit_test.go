package httpfront

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

func TestParseRateLimits(t *testing.T) {
	tests := []struct {
		in      string
		off     bool
		bad     bool
		session int64
		burst   int64
		extra   map[string]int64
	}{
		{in: "none", off: true},
		{in: " NoNe ", off: true},
		{in: "", session: 600, burst: 150},
		{in: "ipaddr:720; user:480; session:600; apikey:720; burst:150", session: 600, burst: 150},
		{in: "session : 10 ; burst:5;", session: 10, burst: 5},
		{in: "user-list:3", session: 600, burst: 150, extra: map[string]int64{"user-list": 3}},
		{in: "burst:0", session: 600, burst: 0},
		{in: "session:99999999999", session: maxRateValue, burst: 150},
		{in: "session", bad: true},
		{in: ":5", bad: true},
		{in: "session:abc", bad: true},
		{in: "session:0", bad: true},
		{in: "user-list:-3", bad: true},
		{in: "session:1:2", bad: true},
	}
	for _, tc := range tests {
		cfg, off, err := parseRateLimits(tc.in)
		if (err != nil) != tc.bad || off != tc.off {
			t.Errorf("%q: got off %v err %v; want off %v bad %v", tc.in, off, err, tc.off, tc.bad)
			continue
		}
		if tc.bad || tc.off {
			continue
		}
		if cfg.session != tc.session || cfg.burst != tc.burst {
			t.Errorf("%q: got session %d burst %d; want %d %d", tc.in, cfg.session, cfg.burst, tc.session, tc.burst)
		}
		for k, v := range tc.extra {
			if cfg.overrides[k] != v {
				t.Errorf("%q: got %s = %d; want %d", tc.in, k, cfg.overrides[k], v)
			}
		}
	}
}

// TestRateRules checks the precedence of docs/protocol.md, "Rate limits"
// (config entries override the built-in per-type limits).
func TestRateRules(t *testing.T) {
	cfg, _, err := parseRateLimits("ipaddr:100; user:200; session:300; apikey:400; burst:7; user-list:3; user-new:9")
	if err != nil {
		t.Fatal(err)
	}
	l := &rateLimiter{cfg: cfg}
	group := func(n int64) rateRule { return rateRule{ip: shard.PerMinute(n, cfg.burst)} }
	l.groupUser, l.groupSession, l.groupAPIKey = group(200), group(300), group(400)
	l.groupInternal, l.groupOther = group(internalPerMinute), group(100)
	tests := []struct {
		name      string
		ip        shard.Rate
		emailTied bool
		email     shard.Rate
	}{
		{name: "session-exists", ip: shard.PerMinute(300, 7)},
		{name: "user-list", ip: shard.PerMinute(3, 3)},
		{name: "user-new", ip: shard.PerMinute(9, 9)},
		{name: "user-login", ip: shard.PerMinute(10, 10)},
		{name: "user-passcheck-nosession", ip: shard.PerMinute(10, 10)},
		{name: "apikey-verify", ip: shard.PerMinute(400, 7)},
		{name: "apikey-healthcheck", ip: shard.PerMinute(400, 7)},
		{name: "internal-user-edit", ip: shard.PerMinute(3000, 7)},
		{name: "echo-something", ip: shard.PerMinute(100, 7)},
		{name: "user-lookup-email", ip: shard.PerMinute(200, 7), emailTied: true, email: shard.PerMinute(200, 200)},
		{name: "user-sendemail-signup", ip: shard.PerMinute(2, 2), emailTied: true, email: shard.PerMinute(2, 2)},
	}
	for _, tc := range tests {
		r := l.ruleOf(tc.name)
		if r.ip != tc.ip || r.emailTied != tc.emailTied || (tc.emailTied && r.email != tc.email) {
			t.Errorf("%s: got %+v; want ip %+v email-tied %v email %+v", tc.name, *r, tc.ip, tc.emailTied, tc.email)
		}
	}
}

func TestEmailKey(t *testing.T) {
	tests := []struct {
		body string
		want string
	}{
		{`{}`, ""},
		{`{"email": ""}`, ""},
		{`{"email": null, "email_address": " Jane@X.org "}`, "jane@x.org"},
		{`{"email": "a@b.c", "email_address": "d@e.f"}`, "a@b.c"},
		{`{"email": 12}`, "12"},
		// Every spelling that finds one account shares its bucket: the
		// lookups' normalisation (NFKC, case folding), not just ASCII case.
		{`{"email": "ｊａｎｅ＠ｘ．ｏｒｇ"}`, "jane@x.org"},
		{`{"email": "ＪＡＮＥ@x.org"}`, "jane@x.org"},
		{`{"email_address": "\u3000JANE@X.ORG"}`, "jane@x.org"},
		{`{"email": "Straße@x.org"}`, "strasse@x.org"},
	}
	for _, tc := range tests {
		var body map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
			t.Fatal(err)
		}
		if got := emailKey(body); got != tc.want {
			t.Errorf("%s: got %q; want %q", tc.body, got, tc.want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {59*time.Second + 500*time.Millisecond, 60}}
	for _, tc := range tests {
		if got := retryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("%v: got %d; want %d", tc.d, got, tc.want)
		}
	}
}

func FuzzParseRateLimits(f *testing.F) {
	f.Add("ipaddr:720; user:480; session:600; apikey:720; burst:150")
	f.Add("none")
	f.Add("user-list:3;;")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, off, err := parseRateLimits(s)
		if err != nil || off {
			return
		}
		for _, v := range []int64{cfg.ipaddr, cfg.user, cfg.session, cfg.apikey} {
			if v < 1 || v > maxRateValue {
				t.Fatalf("%q: limit %d out of range", s, v)
			}
		}
	})
}

// The legacy send-mail names share the buckets of the current ones, so a
// client cannot send more mail by switching names.
func TestLegacySendMailSharesLimits(t *testing.T) {
	l := newBenchServer(t, "").s.limits.(*rateLimiter)
	for _, tc := range []struct{ legacy, current string }{
		{"user-signup-email", "user-sendemail-signup"},
		{"user-signup-sendemail", "user-sendemail-signup"},
		{"user-forgotpass-email", "user-sendemail-forgotpass"},
		{"user-forgotpass-sendemail", "user-sendemail-forgotpass"},
	} {
		got, want := l.rules[tc.legacy], l.rules[tc.current]
		if got == nil || want == nil {
			t.Fatalf("%s or %s has no rule", tc.legacy, tc.current)
		}
		if *got != *want {
			t.Errorf("%s: rule %+v; want the rule of %s, %+v", tc.legacy, *got, tc.current, *want)
		}
	}
}
