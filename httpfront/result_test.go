package httpfront

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " backslash \`, "<tag>&amp;", "tab\tnl\ncr\r", "\x00\x1f", "ünïcødé ✓", "bad \xff utf8", "line\u2028sep\u2029", "emoji 😀"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s; want %s", s, got, want)
		}
	}
}

func TestEnvelopeShape(t *testing.T) {
	tests := []struct {
		name string
		r    result
		want string
	}{
		{"success", success("ok").with("n", 1), `{"success":true,"response":{"success":true,"n":1,"messages":["ok"]},"messages":["ok"],"reqid":"x"}`},
		{"failure with reason", failure("why", "no").with("user_id", nil), `{"success":false,"response":{"success":false,"user_id":null,"messages":["no"],"failure_reason":"why"},"messages":["no"],"reqid":"x","failure_reason":"why"}`},
		{"failure without reason", result{messages: []string{"m"}}, `{"success":false,"response":{"success":false,"messages":["m"]},"messages":["m"],"reqid":"x"}`},
		{"no messages", success(), `{"success":true,"response":{"success":true,"messages":[]},"messages":[],"reqid":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendEnvelope(nil, &tt.r, []byte(`"x"`))
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON")
			}
		})
	}
}

func TestSessionInfoKeysInOrder(t *testing.T) {
	info := actors.SessionInfo{
		Session: shard.Session{UserID: 2, IPAddress: "1.2.3.4", Created: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), Expires: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)},
		User:    shard.User{ID: 2, Email: "anonuser@localhost", Role: "anonymous", ExtraInfo: json.RawMessage(`{"a":1}`)},
	}
	b := (&sessionInfo{info: info, token: []byte("tok")}).appendJSON(nil)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token()
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	want := []string{"user_id", "system_id", "full_name", "email", "extra_info", "email_verified", "emailverify_sent_datetime", "is_active", "last_login_try", "last_login_success", "created_on", "user_role", "session_token", "ip_address", "user_agent", "created", "expires", "extra_info_json"}
	if len(keys) != len(want) {
		t.Fatalf("keys = %v", keys)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("key %d = %s; want %s", i, keys[i], want[i])
		}
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["created"] != "2026-01-02T03:04:05.123456" || m["expires"] != "2026-01-03T00:00:00" || m["last_login_try"] != nil {
		t.Errorf("datetimes: created %v expires %v last_login_try %v", m["created"], m["expires"], m["last_login_try"])
	}
}

func TestValidate(t *testing.T) {
	params := []param{arg("s", tStr), arg("i", tInt, tNone), kwarg("f", tFloat), kwarg("d", tDict, tNone), arg("b", tBool), arg("a", tAny)}
	tests := []struct {
		name string
		body string
		bad  map[string]string // param -> problem
	}{
		{"all good", `{"s":"x","i":3,"f":1.5,"d":{},"b":true,"a":[1]}`, nil},
		{"null union", `{"s":"x","i":null,"b":false,"a":0}`, nil},
		{"missing", `{"i":1,"b":true,"a":1}`, map[string]string{"s": "missing"}},
		{"bool is not int", `{"s":"x","i":true,"b":true,"a":1}`, map[string]string{"i": "incorrect type"}},
		{"float literal is not int", `{"s":"x","i":1.0,"b":true,"a":1}`, map[string]string{"i": "incorrect type"}},
		{"int is a float", `{"s":"x","i":1,"f":2,"b":true,"a":1}`, nil},
		{"falsy kwarg skipped", `{"s":"x","i":1,"f":0,"d":"","b":true,"a":1}`, nil},
		{"truthy wrong kwarg", `{"s":"x","i":1,"d":"str","b":true,"a":1}`, map[string]string{"d": "incorrect type"}},
		{"Any refuses null", `{"s":"x","i":1,"b":true,"a":null}`, map[string]string{"a": "incorrect type"}},
		{"number as string", `{"s":5,"i":"5","b":"true","a":1}`, map[string]string{"s": "incorrect type", "i": "incorrect type", "b": "incorrect type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.body), &body); err != nil {
				t.Fatal(err)
			}
			probs := validate(params, body)
			got := map[string]string{}
			for _, p := range probs {
				got[p.Param] = p.Problem
			}
			if len(got) != len(tt.bad) {
				t.Fatalf("problems = %v; want %v", got, tt.bad)
			}
			for k, v := range tt.bad {
				if got[k] != v {
					t.Errorf("problem[%s] = %q; want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestSessionDigestBytes keeps the front's digest of a token held as bytes
// equal to the shard's of the token as a string.
func TestSessionDigestBytes(t *testing.T) {
	for _, tok := range []string{"", "x", "bench-session-token-0123456789abcdefghijklmno", strings.Repeat("é", 40), "\x00\xff"} {
		if got, want := sessionDigest([]byte(tok)), shard.DigestSession(tok); got != want {
			t.Errorf("sessionDigest(%q) = %x; want %x", tok, got, want)
		}
	}
}

// TestResultFieldsInOrder checks that fields keep their order however many
// there are and however they were added, and that messages are encoded the
// same way whether one or many.
func TestResultFieldsInOrder(t *testing.T) {
	r := success("a").with("f1", 1).with("f2", "x").with("f3", nil).with("f4", true)
	r.addMessage("b")
	got := string(appendResultObject(nil, &r))
	want := `{"success":true,"f1":1,"f2":"x","f3":null,"f4":true,"messages":["a","b"]}`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	r = result{fields: []field{{"lit", 1}}}.with("after", 2)
	if got, want := string(appendResultObject(nil, &r)), `{"success":false,"lit":1,"after":2,"messages":[]}`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	r = failure("why", "m1", "m2", "m3")
	if got, want := string(appendResultObject(nil, &r)), `{"success":false,"messages":["m1","m2","m3"],"failure_reason":"why"}`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if got := r.messageList(); len(got) != 3 {
		t.Errorf("messageList = %q", got)
	}
}

// TestAppendJSONStringBytes checks that the string and byte forms of the
// encoder agree, on the cases that escape.
func TestAppendJSONStringBytes(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "<&>", "\x00\x1f\n", "é\u2028\u2029", "bad\xffutf8\xc3", "\xe2\x80"} {
		if a, b := appendString(nil, s), appendJSONString(nil, []byte(s)); string(a) != string(b) {
			t.Errorf("%q: string form %s, bytes form %s", s, a, b)
		}
	}
}

// FuzzAppendString judges the hand-written string encoder against
// encoding/json, byte for byte, in both of its forms.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "<&>", "\x00\x1f\n\x7f", "é\u2028\u2029", "bad\xffutf8\xc3", "\xe2\x80", "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s; want %s", s, got, want)
		}
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Errorf("appendJSONString(%q as bytes) = %s; want %s", s, got, want)
		}
	})
}
