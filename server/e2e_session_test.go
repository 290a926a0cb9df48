package server_test

import (
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/server/servertest"
)

func expiresIn(d time.Duration) string {
	return time.Now().UTC().Add(d).Format("2006-01-02T15:04:05.000000")
}

func TestSessionLifecycle(t *testing.T) {
	ts := servertest.Start(t)
	r := ts.MustSucceed("session-new", map[string]any{
		"ip_address": "::FFFF:1.2.3.4", "user_agent": "Mozilla/5.0", "user_id": nil,
		"expires": "2099-01-01T00:00:00.5Z", "extra_info_json": map[string]any{"theme": "dark"},
	})
	tok := r.Str("session_token")
	if len(tok) != 43 {
		t.Errorf("token %q has %d chars; want 43", tok, len(tok))
	}
	if got := r.Str("expires"); got != "2099-01-01T00:00:00.500000" {
		t.Errorf("expires = %q; want 2099-01-01T00:00:00.500000", got)
	}
	r = ts.MustSucceed("session-exists", map[string]any{"session_token": tok})
	info := r.Map("session_info")
	if len(info) != 18 {
		t.Errorf("session_info has %d keys; want 18", len(info))
	}
	checks := map[string]any{"user_id": float64(2), "user_role": "anonymous", "email": "anonuser@localhost", "session_token": tok, "user_agent": "Mozilla/5.0"}
	for k, want := range checks {
		if info[k] != want {
			t.Errorf("session_info[%s] = %v; want %v", k, info[k], want)
		}
	}
	if extra, _ := info["extra_info_json"].(map[string]any); extra["theme"] != "dark" {
		t.Errorf("extra_info_json = %v", info["extra_info_json"])
	}
	// internal-session-edit merges, and __delete__ removes.
	r = ts.MustSucceed("internal-session-edit", map[string]any{"target_session_token": tok, "update_dict": map[string]any{"a": 1, "theme": "__delete__"}})
	if si := r.Map("session_info"); len(si) != 7 || si["extra_info_json"].(map[string]any)["a"] != float64(1) || si["extra_info_json"].(map[string]any)["theme"] != nil {
		t.Errorf("edited session_info = %v", si)
	}
	r = ts.MustSucceed("session-delete", map[string]any{"session_token": tok})
	if r.Messages[0] != "Session delete processed, success: True." {
		t.Errorf("messages = %q", r.Messages)
	}
	r = ts.Do("session-exists", map[string]any{"session_token": tok})
	if r.Success || r.FailureReason != "session does not exist or expired" {
		t.Errorf("deleted session still found: %v %q", r.Success, r.FailureReason)
	}
	r = ts.Do("session-delete", map[string]any{"session_token": tok})
	if r.Success || r.FailureReason != "" || r.Messages[0] != "Session delete processed, success: False." {
		t.Errorf("second delete: success %v reason %q messages %q", r.Success, r.FailureReason, r.Messages)
	}
}

func TestSessionNewFailures(t *testing.T) {
	ts := servertest.Start(t)
	for _, tt := range []struct {
		name string
		body map[string]any
	}{
		{"leading zero IPv4", map[string]any{"ip_address": "01.2.3.4", "user_agent": "x", "user_id": nil, "expires": expiresIn(time.Hour), "extra_info_json": nil}},
		{"bad expires", map[string]any{"ip_address": "1.2.3.4", "user_agent": "x", "user_id": nil, "expires": "tomorrow", "extra_info_json": nil}},
		{"unknown user", map[string]any{"ip_address": "1.2.3.4", "user_agent": "x", "user_id": 999, "expires": expiresIn(time.Hour), "extra_info_json": nil}},
	} {
		r := ts.Do("session-new", tt.body)
		if r.Success || r.FailureReason != "DB error when making new session" {
			t.Errorf("%s: success %v reason %q", tt.name, r.Success, r.FailureReason)
		}
	}
	// Without a fraction is accepted (a reference bug fixed).
	ts.MustSucceed("session-new", map[string]any{"ip_address": "1.2.3.4", "user_agent": "x", "user_id": 0, "expires": "2099-01-01T00:00:00", "extra_info_json": nil})
}

func TestSessionExpiry(t *testing.T) {
	ts := servertest.Start(t)
	r := ts.MustSucceed("session-new", map[string]any{"ip_address": "1.2.3.4", "user_agent": "x", "user_id": nil, "expires": expiresIn(1500 * time.Millisecond), "extra_info_json": nil})
	tok := r.Str("session_token")
	ts.MustSucceed("session-exists", map[string]any{"session_token": tok})
	time.Sleep(1600 * time.Millisecond)
	if r := ts.Do("session-exists", map[string]any{"session_token": tok}); r.Success {
		t.Errorf("expired session still passes")
	}
}

func TestSessionDeleteUserID(t *testing.T) {
	ts := servertest.Start(t)
	var toks []string
	for range 6 {
		toks = append(toks, ts.NewSession(1))
	}
	other := ts.NewSession(0)
	r := ts.MustSucceed("session-delete-userid", map[string]any{"session_token": toks[0], "user_id": 1, "keep_current_session": true})
	if r.Messages[0] != "Sessions delete processed. Success: True." {
		t.Errorf("messages %q", r.Messages)
	}
	if r := ts.Do("session-exists", map[string]any{"session_token": toks[0]}); !r.Success {
		t.Errorf("kept session is gone")
	}
	for _, tok := range toks[1:] {
		if r := ts.Do("session-exists", map[string]any{"session_token": tok}); r.Success {
			t.Errorf("session of user 1 survived")
		}
	}
	if r := ts.Do("session-exists", map[string]any{"session_token": other}); !r.Success {
		t.Errorf("another user's session was deleted")
	}
	ts.MustSucceed("session-delete-userid", map[string]any{"session_token": toks[0], "user_id": 1, "keep_current_session": false})
	if r := ts.Do("session-exists", map[string]any{"session_token": toks[0]}); r.Success {
		t.Errorf("keep_current_session=false kept the session")
	}
}

func TestSessionsSurviveRestart(t *testing.T) {
	ts := servertest.Start(t)
	var toks []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := ts.NewSession(0)
			mu.Lock()
			toks = append(toks, tok)
			mu.Unlock()
		}()
	}
	wg.Wait()
	deleted := toks[0]
	ts.MustSucceed("session-delete", map[string]any{"session_token": deleted})
	// Restart with another shard count: records are re-routed as they load.
	ts.SetEnv("AUTHNZERVER_SHARDS", "7")
	ts.Restart()
	if n := ts.Srv.Core.NumShards(); n != 7 {
		t.Fatalf("shards after restart = %d; want 7", n)
	}
	for _, tok := range toks[1:] {
		ts.MustSucceed("session-exists", map[string]any{"session_token": tok})
	}
	if r := ts.Do("session-exists", map[string]any{"session_token": deleted}); r.Success {
		t.Errorf("deleted session came back after restart")
	}
	// The system users are not created twice.
	if ts.Srv.FirstStart {
		t.Errorf("restart bootstrapped again")
	}
}

func TestLegacySessionSetInfo(t *testing.T) {
	ts := servertest.Start(t)
	tok := ts.NewSession(0)
	r := ts.MustSucceed("session-setinfo", map[string]any{"session_token": tok, "extra_info": map[string]any{"a": 1}})
	if info := r.Map("session_info"); len(info) != 6 || info["extra_info_json"].(map[string]any)["a"] != float64(1) {
		t.Errorf("session_info = %v", info)
	}
	r = ts.MustSucceed("session-exists", map[string]any{"session_token": tok})
	if extra := r.Map("session_info")["extra_info_json"].(map[string]any); extra["a"] != float64(1) {
		t.Errorf("extra after setinfo = %v", extra)
	}
}
