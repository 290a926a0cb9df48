package server_test

import (
	"encoding/json"
	"testing"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// problemsOf returns the param -> problem map of an invalid-parameters
// answer (spec §1.6.3), or nil when r is not one.
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
// is an invalid parameter, not "no id" (issue 14 item 12: user-list
// answered with every user, session-new made an anonymous session).
func TestIntegerOutOfRangeIsInvalid(t *testing.T) {
	ts := servertest.Start(t)
	ts.NewUser("range@example.org", "a-long-enough-passphrase-123")
	for _, v := range []json.Number{"18446744073709551617", "9223372036854775808", "-1", "1e300", "4.5"} {
		r := ts.Do("user-list", map[string]any{"user_id": v})
		if p := problemsOf(r); p["user_id"] != "incorrect type" {
			t.Errorf("user-list user_id %s: status %d success %v problems %v; want user_id incorrect type", v, r.StatusCode, r.Success, p)
		}
		if n := len(r.Map("user_info")); n != 0 || r.Response["user_info"] != nil {
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
