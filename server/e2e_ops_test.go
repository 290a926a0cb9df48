package server_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/server/servertest"
)

// scrape reads /metrics and returns each sample line as "name{labels}" →
// value (labels in the exposition's own order, which client_golang sorts).
func scrape(t *testing.T, ts *servertest.Server) map[string]float64 {
	t.Helper()
	addr := ts.Srv.MetricsAddr()
	if addr == nil {
		t.Fatal("metrics listener not started")
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsEndpoint(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_METRICSADDR", "127.0.0.1:0"))
	before := scrape(t, ts)
	for _, name := range []string{"authnzerver_users", "authnzerver_sessions", "authnzerver_hasher_queue_depth",
		"authnzerver_persist_pending_records", `authnzerver_shard_mailbox_depth{shard="3"}`, "authnzerver_hash_duration_seconds_count",
		"authnzerver_persist_commit_duration_seconds_sum", "go_goroutines",
		"authnzerver_persist_write_stalls_total", "authnzerver_persist_write_stall_seconds_total",
		"authnzerver_persist_flushes_total", "authnzerver_persist_compactions_total", "authnzerver_count_errors_total"} {
		if _, ok := before[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := before["authnzerver_count_errors_total"]; got != 0 {
		t.Errorf("count errors = %v on an idle server; want 0", got)
	}
	if got := before["authnzerver_users"]; got != 3 {
		t.Errorf("users = %v; want 3 (the system users)", got)
	}
	if got := before["authnzerver_hash_duration_seconds_count"]; got < 3 {
		t.Errorf("hash count = %v; want >= 3 (bootstrap hashed the system passwords)", got)
	}

	tok := ts.NewSession(0)
	for range 3 {
		ts.MustSucceed("session-exists", map[string]any{"session_token": tok})
	}
	ts.Do("session-exists", map[string]any{"session_token": "no-such-session"})
	ts.Do("no-such-request", nil)
	// A request with a bad token is refused with 401 before any handler.
	resp, err := ts.Client.Post(context.Background(), []byte("not-a-fernet-token"))
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("bad token: %v %v; want 401", resp, err)
	}

	after := scrape(t, ts)
	tests := []struct {
		name string
		want float64 // increase since before
	}{
		{`authnzerver_requests_total{outcome="success",type="session-exists"}`, 3},
		{`authnzerver_requests_total{outcome="failure",type="session-exists"}`, 1},
		{`authnzerver_requests_total{outcome="success",type="session-new"}`, 1},
		{`authnzerver_request_duration_seconds_count{type="session-exists"}`, 4},
		{`authnzerver_http_responses_total{status="200"}`, 5},
		{`authnzerver_http_responses_total{status="400"}`, 1},
		{`authnzerver_http_responses_total{status="401"}`, 1},
		{`authnzerver_sessions`, 1},
		{`authnzerver_persist_batch_records_sum`, 1}, // the new session
	}
	for _, tt := range tests {
		if got := after[tt.name] - before[tt.name]; got != tt.want {
			t.Errorf("%s rose by %v; want %v", tt.name, got, tt.want)
		}
	}
	if after[`authnzerver_busy_refusals_total{cause="hasher"}`] != 0 {
		t.Errorf("busy refusals counted without load")
	}
}

func TestMetricsOffByDefault(t *testing.T) {
	ts := servertest.Start(t)
	if a := ts.Srv.MetricsAddr(); a != nil {
		t.Errorf("metrics listening on %v without AUTHNZERVER_METRICSADDR", a)
	}
}

// optional sends a request that another capability may not have registered
// yet; it reports false (and logs) when the server answers "unknown request
// type", so the test covers whatever exists.
func optional(t *testing.T, ts *servertest.Server, reqType string, body map[string]any) (*client.Response, bool) {
	t.Helper()
	r := ts.Do(reqType, body)
	if r.StatusCode == 400 && strings.Contains(r.FailureReason, "unknown request type") {
		t.Logf("%s is not registered yet: that part of the flow is skipped", reqType)
		return r, false
	}
	return r, true
}

// TestLogHygiene runs a full sign-up, login and API-key flow with debug
// logging and checks that no password, token, key, salt or raw email (nor
// the client IP) reaches the log: they appear only as PII hashes.
func TestLogHygiene(t *testing.T) {
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_RATELIMITS", "none"))
	const (
		email    = "Hygiene.Tester@Example.org"
		password = "an-unguessable-passphrase-9431"
		wrongPW  = "a-wrong-passphrase-for-logs-7723"
	)
	secrets := []string{servertest.AdminPassword, servertest.AdminEmail, email, strings.ToLower(email),
		password, wrongPW, ts.Key, "test-pii-salt", "127.0.0.1"}
	keep := func(vals ...string) {
		for _, v := range vals {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}

	anon := ts.NewSession(0)
	keep(anon)
	ts.MustSucceed("session-exists", map[string]any{"session_token": anon})
	ts.MustSucceed("internal-session-edit", map[string]any{"target_session_token": anon, "update_dict": map[string]any{"cart": "1"}})
	ts.Do("session-exists", map[string]any{"session_token": "gone-" + anon}) // a failure, logged at info

	admin := ts.NewSession(1)
	keep(admin)

	uid := int64(0)
	if r, ok := optional(t, ts, "user-new", map[string]any{"full_name": "Hygiene Tester", "email": email, "password": password}); ok {
		if !r.Success {
			t.Fatalf("user-new: %q %q", r.FailureReason, r.Messages)
		}
		uid, _ = r.Int("user_id")
	}
	if uid != 0 {
		if _, ok := optional(t, ts, "internal-user-edit", map[string]any{"target_userid": uid, "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"}}); ok {
			optional(t, ts, "user-passcheck-nosession", map[string]any{"email": strings.ToLower(email), "password": wrongPW})
			pre := ts.NewSession(0)
			keep(pre)
			optional(t, ts, "user-login", map[string]any{"session_token": pre, "email": strings.ToLower(email), "password": wrongPW})
			pre = ts.NewSession(0)
			keep(pre)
			optional(t, ts, "user-login", map[string]any{"session_token": pre, "email": strings.ToLower(email), "password": password})
		}
	}
	pre := ts.NewSession(0)
	keep(pre)
	optional(t, ts, "user-login", map[string]any{"session_token": pre, "email": servertest.AdminEmail, "password": servertest.AdminPassword})

	// API keys, for the superuser (who exists whatever else is registered).
	r := ts.MustSucceed("session-exists", map[string]any{"session_token": admin})
	info := r.Map("session_info")
	if r, ok := optional(t, ts, "apikey-new", map[string]any{
		"issuer": "authnzerver", "audience": "test", "subject": "/api", "apiversion": 1, "expires_days": 1,
		"not_valid_before": 0, "user_id": 1, "user_role": "superuser", "ip_address": info["ip_address"],
		"user_agent": info["user_agent"], "session_token": admin,
	}); ok && r.Success {
		keep(r.Str("apikey"))
		var claims map[string]any
		if json.Unmarshal([]byte(r.Str("apikey")), &claims) == nil {
			tkn, _ := claims["tkn"].(string)
			keep(tkn)
			optional(t, ts, "apikey-verify", map[string]any{"apikey_dict": claims, "user_id": 1, "user_role": "superuser"})
		}
	}
	if r, ok := optional(t, ts, "apikey-new-nosession", map[string]any{
		"issuer": "authnzerver", "audience": "test", "subject": "/api", "apiversion": 1, "expires_seconds": 3600,
		"not_valid_before": 0, "user_id": 1, "user_role": "superuser", "ip_address": "10.0.0.9", "refresh_expires": 7200,
	}); ok && r.Success {
		keep(r.Str("apikey"), r.Str("refresh_token"))
		var claims map[string]any
		if json.Unmarshal([]byte(r.Str("apikey")), &claims) == nil {
			tkn, _ := claims["tkn"].(string)
			keep(tkn)
			optional(t, ts, "apikey-verify-nosession", map[string]any{"apikey_dict": claims, "user_id": 1, "user_role": "superuser"})
		}
	}
	optional(t, ts, "user-logout", map[string]any{"session_token": admin, "user_id": 1})
	ts.MustSucceed("session-delete", map[string]any{"session_token": anon})

	logs := ts.Log.String()
	lower := strings.ToLower(logs)
	for _, s := range secrets {
		if strings.Contains(logs, s) || strings.Contains(lower, strings.ToLower(s)) {
			t.Errorf("the log contains %q", s)
		}
	}
	// The flow was logged: one debug line per request, failures at info,
	// with the client as its hash.
	for _, want := range []string{"level=DEBUG msg=request type=session-exists outcome=success",
		"level=INFO msg=request type=session-exists outcome=failure", "client="} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key, and
// returns their paths and a pool that trusts the certificate.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "authnzerver test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t)
	ts := servertest.Start(t, servertest.Env("AUTHNZERVER_TLSCERTFILE", certFile), servertest.Env("AUTHNZERVER_TLSCERTKEY", keyFile))
	url := "https://" + ts.Srv.Addr.String() + "/"

	c, err := client.New(url, ts.Key)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}})
	r, err := c.Request(context.Background(), "session-new", map[string]any{
		"client_ipaddr": "10.0.0.1", "ip_address": "10.0.0.1", "user_agent": "tls-test", "user_id": nil,
		"expires": expiresIn(time.Hour), "extra_info_json": nil,
	})
	if err != nil {
		t.Fatalf("request over HTTPS: %v", err)
	}
	if r.StatusCode != 200 || !r.Success {
		t.Fatalf("session-new over HTTPS: status %d success %v", r.StatusCode, r.Success)
	}
	r, err = c.Request(context.Background(), "session-exists", map[string]any{"client_ipaddr": "10.0.0.1", "session_token": r.Str("session_token")})
	if err != nil || !r.Success {
		t.Fatalf("session-exists over HTTPS: %v %+v", err, r)
	}

	// Plain HTTP on the TLS port gets no answer it could read.
	if resp, err := http.Get("http://" + ts.Srv.Addr.String() + "/health"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP on the TLS port answered 200: %q", body)
		}
	}

	// TLS 1.0 and 1.1 are refused (docs/operations.md, "TLS").
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", ts.Srv.Addr.String(), &tls.Config{RootCAs: pool, MinVersion: v, MaxVersion: v})
		if err == nil {
			conn.Close()
			t.Errorf("handshake with TLS version %x succeeded; want refused", v)
		} else if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("handshake with TLS version %x: %v; want the server's protocol version alert", v, err)
		}
	}
	conn, err := tls.Dial("tcp", ts.Srv.Addr.String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Errorf("TLS 1.2 handshake: %v", err)
	} else {
		conn.Close()
	}
}
