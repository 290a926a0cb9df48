// Package socialtest runs identity providers for tests, on loopback: real
// HTTP servers that speak each provider's protocol (docs/social.md,
// "Testing"). An OpenID Connect provider (discovery, JWKS, authorize and
// token endpoints, RS256-signed ID tokens), a GitHub-like OAuth app (its
// user and emails APIs) and an X-like OAuth 2.0 provider (PKCE, Basic
// client authentication, users/me). Every one checks what the real one
// checks of a client: client id and secret, redirect URI, PKCE verifier,
// single-use codes. Tests play the browser with [Server.Authorize].
package socialtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kinds of test provider.
const (
	OIDC   = "oidc"
	GitHub = "github"
	X      = "x"
)

// Account is a user at the test provider.
type Account struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// Mode makes the provider misbehave.
type Mode int

// The modes.
const (
	Normal  Mode = iota
	Slow         // token and API answers wait Delay first
	Garbage      // token and API answers are not the protocol
)

// Server is one test provider.
type Server struct {
	*httptest.Server
	Kind                   string
	ClientID, ClientSecret string

	mu       sync.Mutex
	accounts map[string]Account // login name → account
	codes    map[string]grant
	tokens   map[string]string // access token → login
	key      *rsa.PrivateKey
	kid      string
	mode     Mode
	delay    time.Duration
	// claims edits the claims of the next ID tokens; signer replaces the
	// key that signs them.
	claims func(map[string]any)
	signer *rsa.PrivateKey
	// Exchanges counts successful token exchanges.
	exchanges int
	stalled   int      // requests the Slow mode has held
	issued    []string // every access and ID token and code handed out
}

type grant struct {
	login, redirectURI, challenge, nonce string
}

// Start starts a provider of kind on 127.0.0.1 and stops it at the end of
// the test.
func Start(t interface {
	Helper()
	Cleanup(func())
	Fatalf(string, ...any)
}, kind string) *Server {
	t.Helper()
	key, err := testKey(0)
	if err != nil {
		t.Fatalf("socialtest: key: %v", err)
	}
	s := &Server{
		Kind: kind, ClientID: "client-" + kind, ClientSecret: "secret-" + kind + "-" + randString(8),
		accounts: map[string]Account{}, codes: map[string]grant{}, tokens: map[string]string{},
		key: key, kid: "k1",
	}
	mux := http.NewServeMux()
	switch kind {
	case OIDC:
		mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
		mux.HandleFunc("GET /jwks", s.jwks)
		mux.HandleFunc("GET /authorize", s.authorize)
		mux.HandleFunc("POST /token", s.token)
	case GitHub:
		mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
		mux.HandleFunc("POST /login/oauth/access_token", s.token)
		mux.HandleFunc("GET /api/user", s.githubUser)
		mux.HandleFunc("GET /api/user/emails", s.githubEmails)
	case X:
		mux.HandleFunc("GET /i/oauth2/authorize", s.authorize)
		mux.HandleFunc("POST /2/oauth2/token", s.token)
		mux.HandleFunc("GET /2/users/me", s.xMe)
	default:
		t.Fatalf("socialtest: unknown kind %q", kind)
	}
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// AddAccount adds (or replaces) a user who logs in as login.
func (s *Server) AddAccount(login string, a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[login] = a
}

// SetMode makes the provider misbehave (Slow waits delay).
func (s *Server) SetMode(m Mode, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode, s.delay = m, delay
}

// EditClaims makes the next ID tokens with their claims passed through
// edit (nil: as issued).
func (s *Server) EditClaims(edit func(map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims = edit
}

// SignWithOtherKey signs the next ID tokens with a key the JWKS does not
// hold (false: the real key).
func (s *Server) SignWithOtherKey(other bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signer = nil
	if other {
		k, err := testKey(1)
		if err != nil {
			panic(err) // crypto/rand failing: nothing to test
		}
		s.signer = k
	}
}

// Issued returns every access token, ID token and exchanged code the
// provider handed out, and its client secret (tests check that none of
// them is logged).
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{s.ClientSecret}, s.issued...)
}

// Stalled reports how many requests the Slow mode has held so far.
func (s *Server) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// Exchanges reports how many codes were exchanged for tokens.
func (s *Server) Exchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// Provider returns the entry of a providers file for this server, named
// name, with redirect URI redirect.
func (s *Server) Provider(name, redirect string) map[string]any {
	p := map[string]any{
		"name": name, "kind": s.Kind, "client_id": s.ClientID, "client_secret": s.ClientSecret,
		"redirect_uris": []string{redirect},
	}
	switch s.Kind {
	case OIDC:
		p["issuer"] = s.URL
	case GitHub:
		p["auth_url"], p["token_url"], p["api_url"] = s.URL+"/login/oauth/authorize", s.URL+"/login/oauth/access_token", s.URL+"/api"
	case X:
		p["auth_url"], p["token_url"], p["api_url"] = s.URL+"/i/oauth2/authorize", s.URL+"/2/oauth2/token", s.URL+"/2"
	}
	return p
}

// Authorize plays the browser: it follows authorizeURL, logs in at the
// provider as login, and returns the code and state of the redirect to the
// frontend. It fails if the provider refused.
func Authorize(authorizeURL, login string) (code, state string, err error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("login", login)
	u.RawQuery = q.Encode()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := c.Get(u.String())
	if err != nil {
		return "", "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("socialtest: authorize: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", "", err
	}
	return loc.Query().Get("code"), loc.Query().Get("state"), nil
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer": s.URL, "authorization_endpoint": s.URL + "/authorize", "token_endpoint": s.URL + "/token",
		"jwks_uri": s.URL + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "kid": s.kid, "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// authorize checks the authorization request as a provider would, logs
// in the account named by the extra parameter "login", and redirects.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("response_type") != "code", q.Get("client_id") != s.ClientID:
		http.Error(w, "bad response_type or client_id", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case q.Get("state") == "" || q.Get("redirect_uri") == "":
		http.Error(w, "state and redirect_uri required", http.StatusBadRequest)
		return
	case s.Kind == OIDC && (q.Get("nonce") == "" || !strings.Contains(" "+q.Get("scope")+" ", " openid ")):
		http.Error(w, "nonce and scope openid required", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	_, ok := s.accounts[q.Get("login")]
	code := randString(24)
	if ok {
		s.codes[code] = grant{login: q.Get("login"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce")}
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "login failed", http.StatusForbidden)
		return
	}
	to, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	tq := to.Query()
	tq.Set("code", code)
	tq.Set("state", q.Get("state"))
	to.RawQuery = tq.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// misbehave applies the mode; it reports whether the answer was written.
func (s *Server) misbehave(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	m, d := s.mode, s.delay
	s.mu.Unlock()
	switch m {
	case Slow:
		s.mu.Lock()
		s.stalled++
		s.mu.Unlock()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return true
		}
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "<html>{{ not json")
		return true
	}
	return false
}

func oauthError(w http.ResponseWriter, code int, e string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e})
}

// token exchanges a code: client authentication (Basic, or in the form
// except for X), redirect URI, PKCE verifier, and each code once.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if s.misbehave(w, r) {
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		if s.Kind == X {
			oauthError(w, 401, "invalid_client")
			return
		}
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		oauthError(w, 401, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, 400, "unsupported_grant_type")
		return
	}
	s.mu.Lock()
	g, ok := s.codes[r.PostForm.Get("code")]
	delete(s.codes, r.PostForm.Get("code"))
	acct := s.accounts[g.login]
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || g.redirectURI != r.PostForm.Get("redirect_uri") || b64(sum[:]) != g.challenge {
		oauthError(w, 400, "invalid_grant")
		return
	}
	access := randString(32)
	answer := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": 3600}
	if s.Kind == OIDC {
		tok, err := s.idToken(acct, g.nonce)
		if err != nil {
			oauthError(w, 500, "server_error")
			return
		}
		answer["id_token"] = tok
	}
	s.mu.Lock()
	s.tokens[access] = g.login
	s.exchanges++
	s.issued = append(s.issued, access, r.PostForm.Get("code"))
	if t, ok := answer["id_token"].(string); ok {
		s.issued = append(s.issued, t)
	}
	s.mu.Unlock()
	writeJSON(w, answer)
}

func (s *Server) idToken(a Account, nonce string) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss": s.URL, "sub": a.Subject, "aud": s.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": nonce, "name": a.Name,
	}
	if a.Email != "" {
		claims["email"], claims["email_verified"] = a.Email, a.EmailVerified
	}
	s.mu.Lock()
	edit, key := s.claims, s.key
	if s.signer != nil {
		key = s.signer
	}
	s.mu.Unlock()
	if edit != nil {
		edit(claims)
	}
	head, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64(head) + "." + b64(body)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

// bearer returns the account of the request's access token.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (Account, bool) {
	if s.misbehave(w, r) {
		return Account{}, false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	login, known := s.tokens[tok]
	a := s.accounts[login]
	s.mu.Unlock()
	if !ok || !known {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return Account{}, false
	}
	return a, true
}

func (s *Server) githubUser(w http.ResponseWriter, r *http.Request) {
	a, ok := s.bearer(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{"id": json.Number(a.Subject), "login": strings.ToLower(strings.ReplaceAll(a.Name, " ", "")), "name": a.Name, "email": nil})
}

func (s *Server) githubEmails(w http.ResponseWriter, r *http.Request) {
	a, ok := s.bearer(w, r)
	if !ok {
		return
	}
	list := []map[string]any{{"email": a.Subject + "+noreply@users.github.example", "primary": false, "verified": true}}
	if a.Email != "" {
		list = append(list, map[string]any{"email": a.Email, "primary": true, "verified": a.EmailVerified})
	}
	writeJSON(w, list)
}

func (s *Server) xMe(w http.ResponseWriter, r *http.Request) {
	a, ok := s.bearer(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{"data": map[string]any{"id": a.Subject, "name": a.Name, "username": "u" + a.Subject}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand failing: nothing to test
	}
	return b64(b)
}

// Two RSA keys, made once per process (2048-bit key generation is slow
// under the race detector): 0 signs, 1 is the stranger's.
var (
	keysOnce sync.Once
	keys     [2]*rsa.PrivateKey
	keysErr  error
)

func testKey(i int) (*rsa.PrivateKey, error) {
	keysOnce.Do(func() {
		for j := range keys {
			if keys[j], keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
				return
			}
		}
	})
	return keys[i], keysErr
}
