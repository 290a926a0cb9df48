package social

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/github"
)

// Errors of the provider calls. ErrUnavailable and ErrRejected wrap the
// cause, which may hold text from the provider: log it, never answer it.
var (
	// ErrUnknownProvider: no provider of that name is configured.
	ErrUnknownProvider = errors.New("social: unknown provider")
	// ErrRedirectURI: the redirect URI is not one of the provider's.
	ErrRedirectURI = errors.New("social: redirect_uri not configured for this provider")
	// ErrBusy: every slot of the pool is taken; retry later.
	ErrBusy = errors.New("social: too many provider calls in flight")
	// ErrUnavailable: the provider could not be reached, timed out, or
	// answered something that is not its protocol.
	ErrUnavailable = errors.New("social: provider unavailable")
	// ErrRejected: the provider refused the code, or its answer did not
	// verify (ID token signature, issuer, audience, expiry, nonce).
	ErrRejected = errors.New("social: provider answer rejected")
)

// Options bounds the provider calls. Zero fields mean the defaults.
type Options struct {
	// MaxConcurrent is the size of the pool of provider calls; a call
	// past it fails at once with ErrBusy. Default 32.
	MaxConcurrent int
	// Timeout bounds one call (the token exchange and the user lookups
	// together). Default 10 s.
	Timeout time.Duration
	// MaxResponseBytes bounds each response body read. Default 1 MiB.
	MaxResponseBytes int64
	// Transport is the HTTP transport (nil: a clone of the default).
	Transport http.RoundTripper
}

// Identity is who the provider says the user is.
type Identity struct {
	// Subject is the provider's stable id of the user.
	Subject string
	// Email is the user's address ("" when the provider gave none), and
	// EmailVerified whether the provider asserts that it is verified.
	Email         string
	EmailVerified bool
	// Name is the full name of the profile (may be "").
	Name string
}

// Providers is the set of configured providers. It is safe for concurrent
// use.
type Providers struct {
	opts   Options
	byName map[string]*provider
	names  []string
	slots  chan struct{}
	client *http.Client
}

type provider struct {
	cfg   ProviderConfig
	oauth oauth2.Config // Endpoint empty for OIDC until discovery

	mu   sync.Mutex
	oidc *oidc.Provider // OIDC: discovered on first use
}

// New returns the providers of cfgs (checked by Parse or LoadFile).
func New(cfgs []ProviderConfig, opts Options) (*Providers, error) {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 32
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 1 << 20
	}
	base := opts.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = opts.Timeout
		t.MaxIdleConnsPerHost = 8
		base = t
	}
	p := &Providers{
		opts:   opts,
		byName: make(map[string]*provider, len(cfgs)),
		slots:  make(chan struct{}, opts.MaxConcurrent),
		client: &http.Client{
			Transport: limitTransport{base: base, max: opts.MaxResponseBytes},
			Timeout:   opts.Timeout,
			// A provider's API answers; it does not send us elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, c := range cfgs {
		if _, dup := p.byName[c.Name]; dup {
			return nil, fmt.Errorf("social: provider %q configured twice", c.Name)
		}
		pr := &provider{cfg: c, oauth: oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes}}
		switch c.Kind {
		case KindGitHub:
			pr.oauth.Endpoint = github.Endpoint
			if len(c.Scopes) == 0 {
				pr.oauth.Scopes = []string{"read:user", "user:email"}
			}
		case KindX:
			pr.oauth.Endpoint = oauth2.Endpoint{
				AuthURL: "https://x.com/i/oauth2/authorize", TokenURL: "https://api.x.com/2/oauth2/token",
				AuthStyle: oauth2.AuthStyleInHeader,
			}
			if len(c.Scopes) == 0 {
				pr.oauth.Scopes = []string{"users.read", "tweet.read"}
			}
		case KindOIDC, KindGoogle:
			if len(c.Scopes) == 0 {
				pr.oauth.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
			} else if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
				pr.oauth.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
			}
		default:
			return nil, fmt.Errorf("social: provider %q: unknown kind %q", c.Name, c.Kind)
		}
		if c.AuthURL != "" {
			pr.oauth.Endpoint.AuthURL = c.AuthURL
		}
		if c.TokenURL != "" {
			pr.oauth.Endpoint.TokenURL = c.TokenURL
		}
		p.byName[c.Name] = pr
		p.names = append(p.names, c.Name)
	}
	return p, nil
}

// Names lists the configured providers, in the file's order.
func (p *Providers) Names() []string { return slices.Clone(p.names) }

// Kind reports the kind of provider name ("" when unknown).
func (p *Providers) Kind(name string) string {
	if pr, ok := p.byName[name]; ok {
		return pr.cfg.Kind
	}
	return ""
}

// IsOIDC reports whether provider name identifies users by ID tokens (and
// so needs a nonce).
func (p *Providers) IsOIDC(name string) bool {
	k := p.Kind(name)
	return k == KindOIDC || k == KindGoogle
}

// Check reports ErrUnknownProvider or ErrRedirectURI for a login with
// provider name and redirect URI, before any state is made.
func (p *Providers) Check(name, redirectURI string) error {
	pr, ok := p.byName[name]
	if !ok {
		return ErrUnknownProvider
	}
	if !slices.Contains(pr.cfg.RedirectURIs, redirectURI) {
		return ErrRedirectURI
	}
	return nil
}

// acquire takes a slot of the pool, or fails with ErrBusy at once.
func (p *Providers) acquire() (release func(), err error) {
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	default:
		return nil, ErrBusy
	}
}

// InFlight reports the provider calls running now.
func (p *Providers) InFlight() int { return len(p.slots) }

func (p *Providers) context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, p.opts.Timeout)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	return oidc.ClientContext(ctx, p.client), cancel
}

// AuthorizeURL returns the provider's authorization URL for a login with
// state, the PKCE verifier and (OpenID Connect) nonce. An OpenID Connect
// provider's first use runs its discovery, in the pool.
func (p *Providers) AuthorizeURL(ctx context.Context, name, redirectURI, state, verifier, nonce string) (string, error) {
	if err := p.Check(name, redirectURI); err != nil {
		return "", err
	}
	pr := p.byName[name]
	cfg := pr.oauth
	cfg.RedirectURL = redirectURI
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if p.IsOIDC(name) {
		op := pr.discovered()
		if op == nil { // the first use: discovery, a provider call
			release, err := p.acquire()
			if err != nil {
				return "", err
			}
			defer release()
			ctx, cancel := p.context(ctx)
			defer cancel()
			if op, err = pr.discover(ctx); err != nil {
				return "", err
			}
		}
		cfg.Endpoint = op.Endpoint()
		opts = append(opts, oidc.Nonce(nonce))
	}
	return cfg.AuthCodeURL(state, opts...), nil
}

// discovered returns the provider's discovery document if it was fetched.
func (pr *provider) discovered() *oidc.Provider {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.oidc
}

// discover returns the provider's discovery document, fetching it once.
func (pr *provider) discover(ctx context.Context) (*oidc.Provider, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.oidc != nil {
		return pr.oidc, nil
	}
	op, err := oidc.NewProvider(ctx, pr.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery of %s: %w", ErrUnavailable, pr.cfg.Issuer, err)
	}
	pr.oidc = op
	return op, nil
}

// Identify exchanges code (with the PKCE verifier) at provider name and
// returns the identity the provider vouches for: for OpenID Connect the
// verified ID token (signature, issuer, audience, expiry, and nonce), for
// GitHub its user API and verified primary email, for X its users/me API.
// The tokens are used for this call only and kept nowhere.
func (p *Providers) Identify(ctx context.Context, name, redirectURI, code, verifier, nonce string) (Identity, error) {
	if err := p.Check(name, redirectURI); err != nil {
		return Identity{}, err
	}
	release, err := p.acquire()
	if err != nil {
		return Identity{}, err
	}
	defer release()
	ctx, cancel := p.context(ctx)
	defer cancel()
	pr := p.byName[name]
	cfg := pr.oauth
	cfg.RedirectURL = redirectURI
	var op *oidc.Provider
	if p.IsOIDC(name) {
		if op, err = pr.discover(ctx); err != nil {
			return Identity{}, err
		}
		cfg.Endpoint = op.Endpoint()
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, exchangeError(err)
	}
	var id Identity
	switch pr.cfg.Kind {
	case KindGitHub:
		id, err = p.github(ctx, pr, tok)
	case KindX:
		id, err = p.x(ctx, pr, tok)
	default:
		id, err = p.idToken(ctx, pr, op, tok, nonce)
	}
	if err == nil && (len(id.Subject) > MaxSubjectBytes || !utf8.ValidString(id.Subject)) {
		err = fmt.Errorf("%w: a subject of %d bytes", ErrUnavailable, len(id.Subject))
	}
	if len(id.Name) > maxNameBytes {
		id.Name = ""
	}
	return id, err
}

// MaxSubjectBytes bounds the subject a provider gives (OpenID Connect:
// at most 255 ASCII characters).
const MaxSubjectBytes = 255

// maxNameBytes bounds a profile's name worth keeping.
const maxNameBytes = 256

// exchangeError sorts a failed token exchange: a refusal by the provider
// (an OAuth error answer, e.g. invalid_grant) or a failure to reach it.
func exchangeError(err error) error {
	// Only the status and the OAuth error code: the body of an error
	// answer is the provider's text, not ours to log.
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		if re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			return fmt.Errorf("%w: token exchange: status %d %q", ErrRejected, re.Response.StatusCode, re.ErrorCode)
		}
		return fmt.Errorf("%w: token exchange: status %d", ErrUnavailable, re.Response.StatusCode)
	}
	return fmt.Errorf("%w: token exchange: %w", ErrUnavailable, err)
}

func (p *Providers) idToken(ctx context.Context, pr *provider, op *oidc.Provider, tok *oauth2.Token, nonce string) (Identity, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, fmt.Errorf("%w: no id_token in the token answer", ErrUnavailable)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: pr.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		if ctx.Err() != nil {
			return Identity{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return Identity{}, fmt.Errorf("%w: id token: %w", ErrRejected, err)
	}
	if nonce == "" || idt.Nonce != nonce {
		return Identity{}, fmt.Errorf("%w: id token: nonce does not match", ErrRejected)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: id token claims: %w", ErrRejected, err)
	}
	if idt.Subject == "" {
		return Identity{}, fmt.Errorf("%w: id token without subject", ErrRejected)
	}
	// Some providers send the boolean as a string.
	verified := claims.EmailVerified == true || claims.EmailVerified == "true"
	return Identity{Subject: idt.Subject, Email: claims.Email, EmailVerified: verified && claims.Email != "", Name: claims.Name}, nil
}

// apiURL is the base of a kind's user API.
func (pr *provider) apiURL() string {
	if pr.cfg.APIURL != "" {
		return strings.TrimRight(pr.cfg.APIURL, "/")
	}
	if pr.cfg.Kind == KindX {
		return "https://api.x.com/2"
	}
	return "https://api.github.com"
}

// getJSON GETs url with the access token and decodes its JSON answer.
func (p *Providers) getJSON(ctx context.Context, url string, tok *oauth2.Token, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrUnavailable, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrUnavailable, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: status %d", ErrUnavailable, req.URL.Path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: GET %s: %w", ErrUnavailable, req.URL.Path, err)
	}
	return nil
}

func (p *Providers) github(ctx context.Context, pr *provider, tok *oauth2.Token) (Identity, error) {
	var user struct {
		ID    json.Number `json:"id"`
		Login string      `json:"login"`
		Name  string      `json:"name"`
	}
	if err := p.getJSON(ctx, pr.apiURL()+"/user", tok, &user); err != nil {
		return Identity{}, err
	}
	if _, err := strconv.ParseInt(string(user.ID), 10, 64); err != nil || user.ID == "" {
		return Identity{}, fmt.Errorf("%w: GitHub user without a numeric id", ErrUnavailable)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := p.getJSON(ctx, pr.apiURL()+"/user/emails", tok, &emails); err != nil {
		return Identity{}, err
	}
	id := Identity{Subject: string(user.ID), Name: user.Name}
	if id.Name == "" {
		id.Name = user.Login
	}
	// Only the primary address, and only when GitHub verified it.
	for _, e := range emails {
		if e.Primary && e.Verified && e.Email != "" {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	return id, nil
}

func (p *Providers) x(ctx context.Context, pr *provider, tok *oauth2.Token) (Identity, error) {
	var me struct {
		Data struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Username string `json:"username"`
		} `json:"data"`
	}
	if err := p.getJSON(ctx, pr.apiURL()+"/users/me", tok, &me); err != nil {
		return Identity{}, err
	}
	if me.Data.ID == "" {
		return Identity{}, fmt.Errorf("%w: X users/me without an id", ErrUnavailable)
	}
	name := me.Data.Name
	if name == "" {
		name = me.Data.Username
	}
	return Identity{Subject: me.Data.ID, Name: name}, nil
}

// limitTransport bounds the body of every response it returns.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

// errTooLarge: a response body over the bound.
var errTooLarge = errors.New("social: provider response too large")

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the bound from a larger one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
