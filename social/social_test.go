package social_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/social"
	"github.com/authnzerver/authnzerver/social/socialtest"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gh-secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := `[
	 {"name":"github","kind":"github","client_id":"a","client_secret_file":"gh-secret","redirect_uris":["https://app.example/cb"]},
	 {"name":"corp","kind":"oidc","issuer":"https://id.corp.example","client_id":"b","client_secret":"c","redirect_uris":["http://127.0.0.1:8080/cb?x=1"],"scopes":["email"]},
	 {"name":"google","kind":"google","client_id":"d","client_secret":"e","redirect_uris":["https://app.example/g"]},
	 {"name":"x","kind":"x","client_id":"f","client_secret":"g","redirect_uris":["http://localhost/cb"],"api_url":"http://[::1]:9/2"}]`
	cfgs, err := social.Parse([]byte(good), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfgs[0].ClientSecret != "s3cret" || cfgs[2].Issuer != "https://accounts.google.com" {
		t.Errorf("parsed %+v", cfgs)
	}
	p, err := social.New(cfgs, social.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsOIDC("google") || !p.IsOIDC("corp") || p.IsOIDC("github") || p.Kind("nope") != "" {
		t.Error("kinds")
	}
	if !errors.Is(p.Check("github", "https://app.example/cb/"), social.ErrRedirectURI) || p.Check("github", "https://app.example/cb") != nil ||
		!errors.Is(p.Check("gh", "https://app.example/cb"), social.ErrUnknownProvider) {
		t.Error("Check")
	}
	// The authorization URL of a non-OIDC provider needs no network.
	u, err := p.AuthorizeURL(context.Background(), "github", "https://app.example/cb", "st", "verifier-verifier-verifier-verifier-verifier", "")
	if err != nil || !strings.HasPrefix(u, "https://github.com/login/oauth/authorize?") || !strings.Contains(u, "code_challenge_method=S256") ||
		!strings.Contains(u, "state=st") || strings.Contains(u, "verifier-") {
		t.Errorf("authorize URL %q %v", u, err)
	}

	one := func(fields string) string {
		return `[{"name":"p","client_id":"a","client_secret":"b","redirect_uris":["https://app.example/cb"],` + fields + `}]`
	}
	for _, tt := range []struct{ file, want string }{
		{`{}`, "not a JSON list"},
		{`[] []`, "trailing data"},
		{one(`"kind":"github","extra":1`), "unknown field"},
		{one(`"kind":"myspace"`), "is none of"},
		{one(`"kind":"oidc"`), "needs its issuer"},
		{one(`"kind":"oidc","issuer":"http://id.example"`), "must be https"},
		{one(`"kind":"oidc","issuer":"https://id.example","token_url":"https://id.example/t"`), "come from discovery"},
		{one(`"kind":"github","token_url":"http://10.0.0.1/t"`), "must be https"},
		{one(`"kind":"github","issuer":"https://id.example"`), "issuer is for"},
		{one(`"kind":"github","scopes":["a b"]`), "has spaces"},
		{`[{"name":"Bad Name","kind":"github","client_id":"a","client_secret":"b","redirect_uris":["https://a.example/"]}]`, "name must be"},
		{`[{"name":"p","kind":"github","client_id":"a","client_secret":"b","redirect_uris":["https://a.example/#f"]}]`, "no fragment"},
		{`[{"name":"p","kind":"github","client_id":"a","client_secret":"b","redirect_uris":["http://app.example/cb"]}]`, "must be https"},
		{`[{"name":"p","kind":"github","client_id":"a","client_secret":"b","redirect_uris":[]}]`, "redirect_uris is empty"},
		{`[{"name":"p","kind":"github","client_id":"a","redirect_uris":["https://a.example/"]}]`, "client_secret or client_secret_file is missing"},
		{`[{"name":"p","kind":"github","client_id":"a","client_secret_file":"missing","redirect_uris":["https://a.example/"]}]`, "client_secret_file"},
		{`[{"name":"p","kind":"github","client_id":"","client_secret":"b","redirect_uris":["https://a.example/"]}]`, "client_id is missing"},
		{`[` + one(`"kind":"github"`)[1:len(one(`"kind":"github"`))-1] + `,` + one(`"kind":"x"`)[1:], "used twice"},
	} {
		if _, err := social.Parse([]byte(tt.file), dir); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.file, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"name":"p","kind":"oidc","issuer":"https://id.example","client_id":"a","client_secret":"b","redirect_uris":["https://a.example/"]}]`))
	f.Add([]byte(`[{"name":"p","kind":"github","client_id":"a","client_secret":"b","redirect_uris":["http://[::1]:80/x"],"api_url":"http://127.0.0.1"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfgs, err := social.Parse(b, t.TempDir())
		if err != nil {
			return
		}
		if _, err := social.New(cfgs, social.Options{}); err != nil {
			t.Fatalf("a file that parses is refused by New: %v", err)
		}
	})
}

// TestResponseBound: a provider answer larger than the bound is refused as
// unavailable, and what is read is bounded.
func TestResponseBound(t *testing.T) {
	gh := socialtest.Start(t, socialtest.GitHub)
	gh.AddAccount("big", socialtest.Account{Subject: "1", Name: strings.Repeat("n", 4000), Email: "big@example.org", EmailVerified: true})
	cfg, _ := json.Marshal([]any{gh.Provider("gh", "http://127.0.0.1/cb")})
	cfgs, err := social.Parse(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		max  int64
		want error
	}{{1024, social.ErrUnavailable}, {1 << 20, nil}} {
		p, err := social.New(cfgs, social.Options{MaxResponseBytes: tt.max})
		if err != nil {
			t.Fatal(err)
		}
		verifier := strings.Repeat("v", 43)
		u, err := p.AuthorizeURL(context.Background(), "gh", "http://127.0.0.1/cb", "st", verifier, "")
		if err != nil {
			t.Fatal(err)
		}
		code, _, err := socialtest.Authorize(u, "big")
		if err != nil {
			t.Fatal(err)
		}
		id, err := p.Identify(context.Background(), "gh", "http://127.0.0.1/cb", code, verifier, "")
		if !errors.Is(err, tt.want) && (tt.want != nil || err != nil) {
			t.Errorf("bound %d: %+v %v; want %v", tt.max, id, err, tt.want)
		}
		if tt.want == nil && (id.Subject != "1" || id.Email != "big@example.org" || !id.EmailVerified) {
			t.Errorf("identity %+v", id)
		}
		// A wrong verifier is the provider's refusal, not an outage.
		u, _ = p.AuthorizeURL(context.Background(), "gh", "http://127.0.0.1/cb", "st", verifier, "")
		code, _, _ = socialtest.Authorize(u, "big")
		if _, err := p.Identify(context.Background(), "gh", "http://127.0.0.1/cb", code, strings.Repeat("w", 43), ""); !errors.Is(err, social.ErrRejected) {
			t.Errorf("wrong verifier: %v; want ErrRejected", err)
		}
	}
}

// TestNoRedirects: a provider API that redirects is not followed.
func TestNoRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	tok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer tok.Close()
	cfgs, err := social.Parse([]byte(`[{"name":"gh","kind":"github","client_id":"a","client_secret":"b","redirect_uris":["http://127.0.0.1/cb"],
		"auth_url":"`+tok.URL+`/a","token_url":"`+tok.URL+`/t","api_url":"`+tok.URL+`"}]`), "")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := social.New(cfgs, social.Options{Timeout: 2 * time.Second})
	if _, err := p.Identify(context.Background(), "gh", "http://127.0.0.1/cb", "c", "v", ""); !errors.Is(err, social.ErrUnavailable) {
		t.Errorf("redirecting token endpoint: %v", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the redirect was followed %d times", hits.Load())
	}
}
