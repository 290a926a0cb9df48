package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// addUser creates an active user with role directly in the core (user-new
// and the admin requests are not part of this test's subject) and waits
// until it is durable.
func addUser(t *testing.T, ts *servertest.Server, role string, active bool) int64 {
	t.Helper()
	core := ts.Srv.Core
	id, err := core.NextUserID()
	if err != nil {
		t.Fatal(err)
	}
	// SignUp stores the id counter with the user.
	res, err := actors.Ask[shard.User](core, actors.SignUp{User: shard.User{
		ID: id, SystemID: fmt.Sprintf("test-%d", id), FullName: "Test User",
		Email: fmt.Sprintf("user%d@example.org", id), EmailVerified: true, IsActive: active, Role: role,
	}})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	if err := res.Durable(); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return int64(id)
}

// claimsOf decodes the apikey string of an issue answer.
func claimsOf(t *testing.T, r *client.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Str("apikey")), &m); err != nil {
		t.Fatalf("apikey %q is not JSON: %v", r.Str("apikey"), err)
	}
	return m
}

// newSessionKey issues a session-tied key for a fresh session of uid.
func newSessionKey(t *testing.T, ts *servertest.Server, uid int64, role string, days int, nbf float64) (map[string]any, string) {
	t.Helper()
	tok := ts.NewSession(uid)
	r := ts.MustSucceed("apikey-new", map[string]any{
		"issuer": "frontend", "audience": "api.example.org", "subject": "/data", "apiversion": 1,
		"expires_days": days, "not_valid_before": nbf, "user_id": uid, "user_role": role,
		"ip_address": "10.1.2.3", "user_agent": "servertest", "session_token": tok,
	})
	return claimsOf(t, r), tok
}

// newFreeKey issues a no-session key.
func newFreeKey(t *testing.T, ts *servertest.Server, uid int64, role string, expSec int, nbf, refreshExp, refreshNbf float64) (map[string]any, string) {
	t.Helper()
	r := ts.MustSucceed("apikey-new-nosession", map[string]any{
		"issuer": "frontend", "audience": "api.example.org", "subject": "/data", "apiversion": "v2",
		"expires_seconds": expSec, "not_valid_before": nbf, "user_id": uid, "user_role": role,
		"ip_address": "192.0.2.7", "refresh_expires": refreshExp, "refresh_nbf": refreshNbf,
	})
	return claimsOf(t, r), r.Str("refresh_token")
}

func keyBody(claims map[string]any, uid int64, role string) map[string]any {
	return map[string]any{"apikey_dict": claims, "user_id": uid, "user_role": role}
}

// verifyOK reports whether a verify request succeeded, failing the test on
// anything but a structured answer.
func verifyOK(t *testing.T, ts *servertest.Server, reqType string, claims map[string]any, uid int64, role string) (bool, string) {
	t.Helper()
	r := ts.Do(reqType, keyBody(claims, uid, role))
	if r.StatusCode != 200 {
		t.Fatalf("%s: status %d", reqType, r.StatusCode)
	}
	if !r.Success && r.FailureReason == "" {
		t.Fatalf("%s: failure without failure_reason: %q", reqType, r.Messages)
	}
	return r.Success, r.FailureReason
}

const (
	reasonInvalid    = "key validation failed, provided key does not match stored key or has expired"
	reasonNotAllowed = "originating user is not allowed to operate on this API key"
)

func TestAPIKeySessionTied(t *testing.T) {
	ts := servertest.Start(t)
	tok := ts.NewSession(1)
	r := ts.MustSucceed("apikey-new", map[string]any{
		"issuer": "my-frontend", "audience": "https://api.example.org/v1?a=1&b=<2>", "subject": "/datasets/ünïcode \"quoted\"",
		"apiversion": 3, "expires_days": 30, "not_valid_before": -1.5, "user_id": 1, "user_role": "superuser",
		"ip_address": "10.1.2.3", "user_agent": "servertest", "session_token": tok,
	})
	c := claimsOf(t, r)
	want := map[string]any{
		"iss": "my-frontend", "ver": float64(3), "uid": float64(1), "rol": "superuser", "usa": "servertest",
		"aud": "https://api.example.org/v1?a=1&b=<2>", "sub": "/datasets/ünïcode \"quoted\"", "ipa": "10.1.2.3",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %#v; want %#v", k, c[k], v)
		}
	}
	if len(c) != 12 {
		t.Errorf("claims have %d keys; want 12: %v", len(c), c)
	}
	if order := claimOrder(r.Str("apikey")); order != "iss ver uid rol usa aud sub ipa tkn iat nbf exp" {
		t.Errorf("claim order %q", order)
	}
	tkn, _ := c["tkn"].(string)
	if len(tkn) != 43 {
		t.Errorf("tkn %q has %d chars; want 43", tkn, len(tkn))
	}
	iat, err1 := wire.ParseTime(c["iat"].(string))
	nbf, err2 := wire.ParseTime(c["nbf"].(string))
	exp, err3 := wire.ParseTime(c["exp"].(string))
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("times: %v %v %v", err1, err2, err3)
	}
	if got := nbf.Sub(iat); got != -1500*time.Millisecond {
		t.Errorf("nbf - iat = %v; want -1.5s", got)
	}
	if got := exp.Sub(iat); got != 30*24*time.Hour {
		t.Errorf("exp - iat = %v; want 720h", got)
	}
	if r.Str("expires") != c["exp"] || r.Messages[0] != "API key generated successfully, expires: "+c["exp"].(string)+"." {
		t.Errorf("expires %q, messages %q; claims exp %v", r.Str("expires"), r.Messages, c["exp"])
	}

	r = ts.MustSucceed("apikey-verify", keyBody(c, 1, "superuser"))
	if r.Messages[0] != "API key verified successfully. Expires: "+c["exp"].(string)+"." {
		t.Errorf("verify messages %q", r.Messages)
	}
	// The other table does not know it.
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", c, 1, "superuser"); ok || reason != reasonInvalid {
		t.Errorf("session-tied key verified as no-session: %v %q", ok, reason)
	}
	if r := ts.Do("apikey-revoke-nosession", keyBody(c, 1, "superuser")); r.Success {
		t.Errorf("session-tied key revoked as no-session")
	}
	// Revocation takes effect at once.
	r = ts.MustSucceed("apikey-revoke", keyBody(c, 1, "superuser"))
	if r.Messages[0] != "API key revocation processed." {
		t.Errorf("revoke messages %q", r.Messages)
	}
	if ok, reason := verifyOK(t, ts, "apikey-verify", c, 1, "superuser"); ok || reason != reasonInvalid {
		t.Errorf("revoked key: %v %q", ok, reason)
	}
	r = ts.Do("apikey-revoke", keyBody(c, 1, "superuser"))
	if r.Success || r.FailureReason != "" || r.Messages[0] != "API key revocation processed." {
		t.Errorf("second revoke: %v %q %q", r.Success, r.FailureReason, r.Messages)
	}
}

// claimOrder lists the keys of a JSON object in the order they appear.
func claimOrder(s string) string {
	dec := json.NewDecoder(strings.NewReader(s))
	var keys []string
	dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, fmt.Sprint(k))
		var v json.RawMessage
		dec.Decode(&v)
	}
	return strings.Join(keys, " ")
}

func TestAPIKeySessionTiedNeedsItsSession(t *testing.T) {
	ts := servertest.Start(t)
	c, tok := newSessionKey(t, ts, 1, "superuser", 1, 0)
	if ok, _ := verifyOK(t, ts, "apikey-verify", c, 1, "superuser"); !ok {
		t.Fatalf("fresh key does not verify")
	}
	ts.MustSucceed("session-delete", map[string]any{"session_token": tok})
	if ok, reason := verifyOK(t, ts, "apikey-verify", c, 1, "superuser"); ok || reason != reasonInvalid {
		t.Errorf("key of an ended session: %v %q", ok, reason)
	}
	// Still invalid after the lazy deletion, and gone from its shard.
	if ok, _ := verifyOK(t, ts, "apikey-verify", c, 1, "superuser"); ok {
		t.Errorf("key of an ended session verifies the second time")
	}
	if r := ts.Do("apikey-revoke", keyBody(c, 1, "superuser")); r.Success {
		t.Errorf("key of an ended session was still stored")
	}
}

func TestAPIKeyNewSessionChecks(t *testing.T) {
	ts := servertest.Start(t)
	tok := ts.NewSession(1)
	staff := addUser(t, ts, "staff", true)
	staffTok := ts.NewSession(staff)
	base := func() map[string]any {
		return map[string]any{
			"issuer": "f", "audience": "a", "subject": "s", "apiversion": "1", "expires_days": 1, "not_valid_before": 0,
			"user_id": 1, "user_role": "superuser", "ip_address": "10.1.2.3", "user_agent": "servertest", "session_token": tok,
		}
	}
	const reasonSession = "invalid session for user requesting API key issuance"
	unknown := "x" + tok[1:] // a token of the same form that is not tok
	if unknown == tok {
		unknown = "y" + tok[1:]
	}
	for _, tt := range []struct {
		name   string
		edit   map[string]any
		reason string
		msg    string
	}{
		{"unknown session", map[string]any{"session_token": unknown}, reasonSession, "Invalid session token for API key issuance request."},
		{"other IP", map[string]any{"ip_address": "10.1.2.4"}, reasonSession, "DB session user_id, ip_address, user_agent, user_role does not match provided session info."},
		{"other agent", map[string]any{"user_agent": "curl"}, reasonSession, "DB session user_id, ip_address, user_agent, user_role does not match provided session info."},
		{"other user's session", map[string]any{"session_token": staffTok}, reasonSession, "DB session user_id, ip_address, user_agent, user_role does not match provided session info."},
		{"wrong role", map[string]any{"user_role": "staff"}, "user not allowed to issue API key", "API key issuance failed. You are not allowed to issue an API key."},
		{"anonymous", map[string]any{"user_id": 2, "user_role": "anonymous"}, "user not allowed to issue API key", "API key issuance failed. You are not allowed to issue an API key."},
		{"locked", map[string]any{"user_id": 3, "user_role": "locked"}, "user not allowed to issue API key", "API key issuance failed. You are not allowed to issue an API key."},
		{"unknown user", map[string]any{"user_id": 999, "user_role": "superuser"}, "user not allowed to issue API key", "API key issuance failed. You are not allowed to issue an API key."},
		{"unknown role", map[string]any{"user_role": "wizard"}, "user not allowed to issue API key", "API key issuance failed. You are not allowed to issue an API key."},
		{"huge lifetime", map[string]any{"expires_days": 1 << 40}, "invalid API key lifetime or not-before value", "API key issuance failed. The requested key lifetime is out of range."},
		{"huge nbf", map[string]any{"not_valid_before": 1e300}, "invalid API key lifetime or not-before value", "API key issuance failed. The requested key lifetime is out of range."},
	} {
		body := base()
		for k, v := range tt.edit {
			body[k] = v
		}
		r := ts.Do("apikey-new", body)
		if r.StatusCode != 200 || r.Success || r.FailureReason != tt.reason || len(r.Messages) != 1 || r.Messages[0] != tt.msg {
			t.Errorf("%s: status %d success %v reason %q messages %q", tt.name, r.StatusCode, r.Success, r.FailureReason, r.Messages)
		}
		if tt.reason == reasonSession {
			if v, ok := r.Response["apikey"]; !ok || v != nil {
				t.Errorf("%s: apikey = %v, present %v; want null", tt.name, v, ok)
			}
		}
	}
	// An authenticated user issues a key for their own session.
	auth := addUser(t, ts, "authenticated", true)
	c, _ := newSessionKey(t, ts, auth, "authenticated", 1, 0)
	if ok, reason := verifyOK(t, ts, "apikey-verify", c, auth, "authenticated"); !ok {
		t.Errorf("authenticated user's key: %q", reason)
	}
}

func TestAPIKeyExpiryAndNotBefore(t *testing.T) {
	ts := servertest.Start(t)
	expired, _ := newSessionKey(t, ts, 1, "superuser", 0, 0)
	early, _ := newSessionKey(t, ts, 1, "superuser", 1, 3600)
	freeExpired, _ := newFreeKey(t, ts, 1, "superuser", 0, 0, 60, 0)
	freeEarly, _ := newFreeKey(t, ts, 1, "superuser", 60, 3600, 60, 0)
	for name, tt := range map[string]struct {
		c       map[string]any
		reqType string
	}{
		"session-tied expired": {expired, "apikey-verify"}, "session-tied early": {early, "apikey-verify"},
		"no-session expired": {freeExpired, "apikey-verify-nosession"}, "no-session early": {freeEarly, "apikey-verify-nosession"},
	} {
		if ok, reason := verifyOK(t, ts, tt.reqType, tt.c, 1, "superuser"); ok || reason != reasonInvalid {
			t.Errorf("%s: %v %q", name, ok, reason)
		}
	}

	// A key that becomes valid, and one that stops being valid, over about
	// a second.
	soon, _ := newFreeKey(t, ts, 1, "superuser", 60, 0.5, 60, 0)
	brief, _ := newFreeKey(t, ts, 1, "superuser", 1, 0, 60, 0)
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", soon, 1, "superuser"); ok {
		t.Errorf("key verified before its not-before")
	}
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", brief, 1, "superuser"); !ok {
		t.Errorf("key failed before its expiry: %q", reason)
	}
	waitPast(t, brief["exp"].(string))
	waitPast(t, soon["nbf"].(string))
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", soon, 1, "superuser"); !ok {
		t.Errorf("key failed after its not-before: %q", reason)
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", brief, 1, "superuser"); ok {
		t.Errorf("key verified after its expiry")
	}
}

// waitPast sleeps until the wall clock is past an ISO time of a claim.
func waitPast(t *testing.T, iso string) {
	t.Helper()
	at, err := wire.ParseTime(iso)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(at); d > -10*time.Millisecond {
		time.Sleep(d + 20*time.Millisecond)
	}
}

func TestAPIKeyNoSession(t *testing.T) {
	ts := servertest.Start(t)
	r := ts.MustSucceed("apikey-new-nosession", map[string]any{
		"issuer": "iss-1", "audience": "aud & <co>", "subject": "sub/ü", "apiversion": "2.0",
		"expires_seconds": 600, "not_valid_before": 0, "user_id": 1, "user_role": "superuser",
		"ip_address": "::FFFF:1.2.3.4", "refresh_expires": 3600, "refresh_nbf": 0,
	})
	c := claimsOf(t, r)
	want := map[string]any{"iss": "iss-1", "ver": "2.0", "uid": float64(1), "rol": "superuser", "aud": "aud & <co>", "sub": "sub/ü", "ipa": "::FFFF:1.2.3.4"}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %#v; want %#v", k, c[k], v)
		}
	}
	if order := claimOrder(r.Str("apikey")); order != "iss ver uid rol aud sub ipa tkn iat nbf exp" {
		t.Errorf("claim order %q", order)
	}
	iat, _ := wire.ParseTime(c["iat"].(string))
	rexp, err := wire.ParseTime(r.Str("refresh_token_expires"))
	if err != nil || rexp.Sub(iat) != time.Hour {
		t.Errorf("refresh_token_expires %q (%v); want iat + 1h", r.Str("refresh_token_expires"), err)
	}
	if rt := r.Str("refresh_token"); len(rt) != 43 || rt == c["tkn"] {
		t.Errorf("refresh_token %q", rt)
	}
	r = ts.MustSucceed("apikey-verify-nosession", keyBody(c, 1, "superuser"))
	if r.Messages[0] != "No-session API key verified successfully. Expires: "+c["exp"].(string)+"." {
		t.Errorf("verify messages %q", r.Messages)
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify", c, 1, "superuser"); ok {
		t.Errorf("no-session key verified as session-tied")
	}
	r = ts.MustSucceed("apikey-revoke-nosession", keyBody(c, 1, "superuser"))
	if r.Messages[0] != "API key revocation processed." {
		t.Errorf("revoke messages %q", r.Messages)
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, 1, "superuser"); ok {
		t.Errorf("revoked key verifies")
	}
}

func refreshBody(c map[string]any, rt string, uid int64, role string) map[string]any {
	return map[string]any{
		"apikey_dict": c, "user_id": uid, "user_role": role, "refresh_token": rt, "ip_address": "198.51.100.9",
		"expires_seconds": 600, "not_valid_before": 0, "refresh_expires": 3600, "refresh_nbf": 0,
	}
}

const (
	msgRefresh       = "API key refresh failed. The API key presented does not have a valid refresh token. You may need to login again to generate a new API key."
	msgRefreshJoined = "API key refresh failed. The API key presented does not have a valid refresh token.You may need to login again to generate a new API key."
)

func TestAPIKeyRefresh(t *testing.T) {
	ts := servertest.Start(t)
	c, rt := newFreeKey(t, ts, 1, "superuser", 600, 0, 3600, 0)

	// Another token of the same form: change the last character (one of the
	// 16 that end a 32-byte base64url string) to a different one.
	wrong := rt[:42] + "A"
	if wrong == rt {
		wrong = rt[:42] + "E"
	}
	r := ts.Do("apikey-refresh-nosession", refreshBody(c, wrong, 1, "superuser"))
	if r.Success || r.FailureReason != "provided refresh token does not match stored refresh token" || r.Messages[0] != msgRefresh {
		t.Errorf("wrong refresh token: %v %q %q", r.Success, r.FailureReason, r.Messages)
	}
	for _, bad := range []string{rt[:20], "", rt + "A", c["tkn"].(string)} {
		r := ts.Do("apikey-refresh-nosession", refreshBody(c, bad, 1, "superuser"))
		if r.Success || r.FailureReason != "provided refresh token does not match stored refresh token" {
			t.Errorf("refresh token %q: %v %q", bad, r.Success, r.FailureReason)
		}
	}
	// A refresh token is not a key.
	asKey := map[string]any{"uid": 1, "rol": "superuser", "tkn": rt}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", asKey, 1, "superuser"); ok {
		t.Errorf("refresh token verified as a key")
	}

	r = ts.MustSucceed("apikey-refresh-nosession", refreshBody(c, rt, 1, "superuser"))
	c2 := claimsOf(t, r)
	rt2 := r.Str("refresh_token")
	if c2["tkn"] == c["tkn"] || rt2 == rt || len(rt2) != 43 {
		t.Errorf("refresh did not rotate: tkn %v -> %v, refresh token changed %v", c["tkn"], c2["tkn"], rt2 != rt)
	}
	for _, k := range []string{"iss", "ver", "aud", "sub", "uid", "rol"} {
		if c2[k] != c[k] {
			t.Errorf("claim %s = %v after refresh; want %v", k, c2[k], c[k])
		}
	}
	if c2["ipa"] != "198.51.100.9" {
		t.Errorf("ipa after refresh = %v; want the request's", c2["ipa"])
	}
	if !strings.HasPrefix(r.Messages[0], "API key generated successfully, expires: ") || r.Str("refresh_token_expires") == "" {
		t.Errorf("refresh answer: %q %v", r.Messages, r.Response)
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, 1, "superuser"); ok {
		t.Errorf("old key verifies after refresh")
	}
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", c2, 1, "superuser"); !ok {
		t.Errorf("new key does not verify: %q", reason)
	}
	// The old pair is spent; the new refresh token belongs to the new key.
	r = ts.Do("apikey-refresh-nosession", refreshBody(c, rt, 1, "superuser"))
	if r.Success || r.FailureReason != "provided API key has no stored refresh token, probably invalid" {
		t.Errorf("second refresh of the old key: %v %q", r.Success, r.FailureReason)
	}
	if r := ts.Do("apikey-refresh-nosession", refreshBody(c2, rt, 1, "superuser")); r.Success {
		t.Errorf("new key refreshed with the old refresh token")
	}
	r = ts.MustSucceed("apikey-refresh-nosession", refreshBody(c2, rt2, 1, "superuser"))
	if c3 := claimsOf(t, r); c3["tkn"] == c2["tkn"] {
		t.Errorf("third key has the second key's token")
	}

	// Refresh windows: not yet open, and already closed. An expired key
	// with an open window refreshes.
	early, rtEarly := newFreeKey(t, ts, 1, "superuser", 600, 0, 3600, 3600)
	closed, rtClosed := newFreeKey(t, ts, 1, "superuser", 600, 0, 0, 0)
	expired, rtExpired := newFreeKey(t, ts, 1, "superuser", 0, 0, 3600, 0)
	for name, tt := range map[string]struct {
		c  map[string]any
		rt string
	}{"refresh not yet usable": {early, rtEarly}, "refresh expired": {closed, rtClosed}} {
		r := ts.Do("apikey-refresh-nosession", refreshBody(tt.c, tt.rt, 1, "superuser"))
		if r.Success || r.FailureReason != "provided API key has no stored refresh token, probably invalid" || r.Messages[0] != msgRefresh {
			t.Errorf("%s: %v %q %q", name, r.Success, r.FailureReason, r.Messages)
		}
	}
	ts.MustSucceed("apikey-refresh-nosession", refreshBody(expired, rtExpired, 1, "superuser"))
}

func TestAPIKeyRevokeAll(t *testing.T) {
	ts := servertest.Start(t)
	other := addUser(t, ts, "authenticated", true)
	var keys []map[string]any
	for range 4 {
		c, _ := newFreeKey(t, ts, 1, "superuser", 600, 0, 3600, 0)
		keys = append(keys, c)
	}
	otherKey, _ := newFreeKey(t, ts, other, "authenticated", 600, 0, 3600, 0)
	bound, _ := newSessionKey(t, ts, 1, "superuser", 1, 0)

	r := ts.Do("apikey-revokeall-nosession", keyBody(map[string]any{"uid": 1, "rol": "superuser", "tkn": strings.Repeat("A", 43)}, 1, "superuser"))
	if r.Success || r.FailureReason != "provided API key is invalid, revoke-all operation requires a valid key to start with" || r.Messages[0] != "All API keys revocation failed. The API key presented is invalid." {
		t.Errorf("revoke-all with an invalid key: %v %q %q", r.Success, r.FailureReason, r.Messages)
	}
	r = ts.Do("apikey-revokeall-nosession", keyBody(keys[0], other, "authenticated"))
	if r.Success || r.FailureReason != "originating user is not allowed to delete API keys" || r.Messages[0] != "All API keys revocation failed. You are not allowed to delete API keys." {
		t.Errorf("revoke-all of another user's keys: %v %q %q", r.Success, r.FailureReason, r.Messages)
	}
	r = ts.MustSucceed("apikey-revokeall-nosession", keyBody(keys[0], 1, "superuser"))
	if n, _ := r.Int("revoked_keys"); n != 4 || r.Messages[0] != "All API keys revocation processed." {
		t.Errorf("revoked_keys = %d, messages %q; want 4", n, r.Messages)
	}
	for i, c := range keys {
		if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, 1, "superuser"); ok {
			t.Errorf("key %d verifies after revoke-all", i)
		}
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", otherKey, other, "authenticated"); !ok {
		t.Errorf("another user's key was revoked")
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify", bound, 1, "superuser"); !ok {
		t.Errorf("a session-tied key was revoked")
	}
	// With every key gone, the presented key is invalid.
	if r := ts.Do("apikey-revokeall-nosession", keyBody(keys[1], 1, "superuser")); r.Success {
		t.Errorf("second revoke-all succeeded")
	}
}

func TestAPIKeyPermissions(t *testing.T) {
	ts := servertest.Start(t)
	alice := addUser(t, ts, "authenticated", true)
	bob := addUser(t, ts, "authenticated", true)
	staff := addUser(t, ts, "staff", true)
	inactive := addUser(t, ts, "authenticated", false)
	c, rt := newFreeKey(t, ts, alice, "authenticated", 600, 0, 3600, 0)
	bound, _ := newSessionKey(t, ts, alice, "authenticated", 1, 0)

	for _, tt := range []struct {
		name    string
		reqType string
		key     map[string]any
		uid     int64
		role    string
		ok      bool
	}{
		{"owner verifies", "apikey-verify-nosession", c, alice, "authenticated", true},
		{"owner verifies session-tied", "apikey-verify", bound, alice, "authenticated", true},
		{"other user verifies", "apikey-verify-nosession", c, bob, "authenticated", false},
		{"other user verifies session-tied", "apikey-verify", bound, bob, "authenticated", false},
		{"staff verifies another's", "apikey-verify-nosession", c, staff, "staff", false},
		{"anonymous verifies", "apikey-verify-nosession", c, 2, "anonymous", false},
		{"locked user verifies", "apikey-verify-nosession", c, 3, "locked", false},
		{"owner claims a higher role", "apikey-verify-nosession", c, alice, "superuser", false},
		{"unknown user", "apikey-verify-nosession", c, 999, "superuser", false},
		{"superuser verifies another's", "apikey-verify-nosession", c, 1, "superuser", true},
		{"superuser verifies another's session-tied", "apikey-verify", bound, 1, "superuser", true},
		{"other user revokes", "apikey-revoke-nosession", c, bob, "authenticated", false},
		{"other user revokes session-tied", "apikey-revoke", bound, bob, "authenticated", false},
		{"staff revokes another's", "apikey-revoke-nosession", c, staff, "staff", false},
	} {
		r := ts.Do(tt.reqType, keyBody(c0(tt.key), tt.uid, tt.role))
		if r.StatusCode != 200 || r.Success != tt.ok {
			t.Errorf("%s: status %d success %v; want %v (%q)", tt.name, r.StatusCode, r.Success, tt.ok, r.FailureReason)
			continue
		}
		if !tt.ok {
			wantMsg := "API key verification failed. You are not allowed to operate on this API key."
			if strings.Contains(tt.reqType, "revoke") {
				wantMsg = "API key revocation failed. You are not allowed to operate on this API key."
			}
			if r.FailureReason != reasonNotAllowed || r.Messages[0] != wantMsg {
				t.Errorf("%s: reason %q messages %q", tt.name, r.FailureReason, r.Messages)
			}
		}
	}
	// Nothing above revoked Alice's keys.
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, alice, "authenticated"); !ok {
		t.Errorf("Alice's key was revoked by someone else")
	}
	// Issuing: anonymous, locked and inactive users cannot.
	for _, u := range []struct {
		uid  int64
		role string
	}{{2, "anonymous"}, {3, "locked"}, {inactive, "authenticated"}} {
		r := ts.Do("apikey-new-nosession", map[string]any{
			"issuer": "f", "audience": "a", "subject": "s", "apiversion": 1, "expires_seconds": 60, "not_valid_before": 0,
			"user_id": u.uid, "user_role": u.role, "ip_address": "1.2.3.4", "refresh_expires": 60, "refresh_nbf": 0,
		})
		if r.Success || r.FailureReason != "originating user is not allowed to issue an API key" || r.Messages[0] != "API key issuance failed. You are not allowed to issue an API key." {
			t.Errorf("user %d (%s) issued a key: %v %q", u.uid, u.role, r.Success, r.FailureReason)
		}
	}
	// Refreshing someone else's key, even with its refresh token.
	r := ts.Do("apikey-refresh-nosession", refreshBody(c, rt, bob, "authenticated"))
	if r.Success || r.FailureReason != "user from provided API key not allowed to revoke old key" || r.Messages[0] != msgRefreshJoined {
		t.Errorf("Bob refreshed Alice's key: %v %q %q", r.Success, r.FailureReason, r.Messages)
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, alice, "authenticated"); !ok {
		t.Errorf("a refused refresh revoked the old key")
	}
	// The owner may revoke.
	if r := ts.MustSucceed("apikey-revoke-nosession", keyBody(c, alice, "authenticated")); !r.Success {
		t.Errorf("owner could not revoke")
	}
	if r := ts.MustSucceed("apikey-revoke", keyBody(bound, 1, "superuser")); !r.Success {
		t.Errorf("superuser could not revoke another's key")
	}
}

// c0 returns a copy of claims (requests must not share maps).
func c0(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestAPIKeyBadInput(t *testing.T) {
	ts := servertest.Start(t)
	c, rt := newFreeKey(t, ts, 1, "superuser", 600, 0, 3600, 0)
	bound, _ := newSessionKey(t, ts, 1, "superuser", 1, 0)
	tkn := c["tkn"].(string)
	altered := []byte(tkn)
	altered[10] ^= 1
	with := func(k string, v any) map[string]any {
		m := c0(c)
		m[k] = v
		return m
	}
	without := func(k string) map[string]any {
		m := c0(c)
		delete(m, k)
		return m
	}
	for _, reqType := range []string{"apikey-verify-nosession", "apikey-verify", "apikey-revoke-nosession", "apikey-revoke", "apikey-revokeall-nosession"} {
		for _, tt := range []struct {
			name string
			key  map[string]any
		}{
			{"truncated tkn", with("tkn", tkn[:20])},
			{"altered tkn", with("tkn", string(altered))},
			{"foreign tkn", with("tkn", "Zm9yZWlnbi10b2tlbi10aGF0LWxvb2tzLXJpZ2h0LW9r")},
			{"tkn with bad characters", with("tkn", strings.Repeat("!", 43))},
			{"empty tkn", with("tkn", "")},
			{"numeric tkn", with("tkn", 12345)},
			{"null tkn", with("tkn", nil)},
			{"string uid", with("uid", "1")},
			{"float uid", with("uid", 1.5)},
			{"huge uid", with("uid", 1e30)},
			{"other uid", with("uid", 4)},
			{"list rol", with("rol", []any{"superuser"})},
			{"other rol", with("rol", "staff")},
			{"refresh token as tkn", with("tkn", rt)},
			{"session-tied key with the wrong kind", c0(bound)},
		} {
			if (reqType == "apikey-verify" || reqType == "apikey-revoke") && tt.name == "session-tied key with the wrong kind" {
				continue
			}
			r := ts.Do(reqType, keyBody(tt.key, 1, "superuser"))
			if r.StatusCode != 200 || r.Success {
				t.Errorf("%s %s: status %d success %v", reqType, tt.name, r.StatusCode, r.Success)
			}
			if strings.Contains(reqType, "verify") && r.FailureReason == "" {
				t.Errorf("%s %s: no failure_reason", reqType, tt.name)
			}
		}
		// Missing claims are the reference's 400.
		for _, k := range []string{"uid", "tkn", "rol"} {
			if r := ts.Do(reqType, keyBody(without(k), 1, "superuser")); r.StatusCode != 400 {
				t.Errorf("%s without %s: status %d; want 400", reqType, k, r.StatusCode)
			}
		}
	}
	// Refresh with bad claims.
	for name, key := range map[string]map[string]any{
		"truncated tkn": with("tkn", tkn[:42]), "altered tkn": with("tkn", string(altered)), "string uid": with("uid", "1"),
	} {
		r := ts.Do("apikey-refresh-nosession", refreshBody(key, rt, 1, "superuser"))
		if r.StatusCode != 200 || r.Success || r.FailureReason != "provided API key has no stored refresh token, probably invalid" {
			t.Errorf("refresh with %s: status %d success %v reason %q", name, r.StatusCode, r.Success, r.FailureReason)
		}
	}
	if r := ts.Do("apikey-refresh-nosession", refreshBody(without("aud"), rt, 1, "superuser")); r.StatusCode != 400 {
		t.Errorf("refresh without aud: status %d; want 400", r.StatusCode)
	}
	// Wrong types in the body are invalid parameters.
	r := ts.Do("apikey-verify-nosession", map[string]any{"apikey_dict": "not a dict", "user_id": 1, "user_role": "superuser"})
	if r.StatusCode != 200 || r.Success || r.Messages[0] != "request 'apikey-verify-nosession' has invalid parameters" {
		t.Errorf("string apikey_dict: status %d %q", r.StatusCode, r.Messages)
	}
	// After all that, the real keys still work.
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, 1, "superuser"); !ok {
		t.Errorf("key broken by bad input")
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify", bound, 1, "superuser"); !ok {
		t.Errorf("session-tied key broken by bad input")
	}
	if strings.Contains(ts.Log.String(), tkn) || strings.Contains(ts.Log.String(), rt) {
		t.Errorf("a key or refresh token was logged")
	}
}

func TestAPIKeyRestart(t *testing.T) {
	ts := servertest.Start(t)
	user := addUser(t, ts, "authenticated", true)
	bound, _ := newSessionKey(t, ts, user, "authenticated", 1, 0)
	boundRevoked, _ := newSessionKey(t, ts, user, "authenticated", 1, 0)
	free, rt := newFreeKey(t, ts, user, "authenticated", 600, 0, 3600, 0)
	freeRevoked, _ := newFreeKey(t, ts, user, "authenticated", 600, 0, 3600, 0)
	ts.MustSucceed("apikey-revoke", keyBody(boundRevoked, user, "authenticated"))
	ts.MustSucceed("apikey-revoke-nosession", keyBody(freeRevoked, user, "authenticated"))

	ts.Restart()

	for _, tt := range []struct {
		name    string
		reqType string
		key     map[string]any
		ok      bool
	}{
		{"session-tied", "apikey-verify", bound, true},
		{"revoked session-tied", "apikey-verify", boundRevoked, false},
		{"no-session", "apikey-verify-nosession", free, true},
		{"revoked no-session", "apikey-verify-nosession", freeRevoked, false},
	} {
		if ok, reason := verifyOK(t, ts, tt.reqType, tt.key, user, "authenticated"); ok != tt.ok {
			t.Errorf("%s after restart: %v (%q); want %v", tt.name, ok, reason, tt.ok)
		}
	}
	// The refresh hash survived too, and a refresh's revocation survives
	// the next restart.
	r := ts.MustSucceed("apikey-refresh-nosession", refreshBody(free, rt, user, "authenticated"))
	fresh := claimsOf(t, r)
	ts.Restart()
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", free, user, "authenticated"); ok {
		t.Errorf("refreshed-away key verifies after restart")
	}
	if ok, reason := verifyOK(t, ts, "apikey-verify-nosession", fresh, user, "authenticated"); !ok {
		t.Errorf("refreshed key after restart: %q", reason)
	}
}

// TestAPIKeysGoWithTheirUser: deleting a user deletes its session-less keys
// at once, from memory and disk, and no one else's.
func TestAPIKeysGoWithTheirUser(t *testing.T) {
	ts := servertest.Start(t)
	doomed := addUser(t, ts, "authenticated", true)
	other := addUser(t, ts, "authenticated", true)
	var doomedKeys []map[string]any
	for range 3 {
		c, _ := newFreeKey(t, ts, doomed, "authenticated", 600, 0, 3600, 0)
		doomedKeys = append(doomedKeys, c)
	}
	otherKey, _ := newFreeKey(t, ts, other, "authenticated", 600, 0, 3600, 0)
	keyCount := func() int {
		t.Helper()
		n, err := ts.Srv.Core.Counts()
		if err != nil {
			t.Fatal(err)
		}
		return n.APIKeys
	}
	before := keyCount()
	ts.MustSucceed("internal-user-delete", map[string]any{"target_userid": doomed})
	if got := keyCount(); got != before-3 {
		t.Errorf("API keys after deleting their user: %d; want %d", got, before-3)
	}
	ts.Restart()
	if got := keyCount(); got != before-3 {
		t.Errorf("API keys after a restart: %d; want %d (deleted from disk too)", got, before-3)
	}
	for i, c := range doomedKeys {
		if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", c, doomed, "authenticated"); ok {
			t.Errorf("deleted user's key %d verifies", i)
		}
	}
	if ok, _ := verifyOK(t, ts, "apikey-verify-nosession", otherKey, other, "authenticated"); !ok {
		t.Errorf("another user's key went with the deleted user")
	}
}
