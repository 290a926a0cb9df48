// Package social talks to the identity providers of social logins
// (docs/social.md): GitHub, Google, X and any OpenID Connect provider. It
// builds authorization URLs and turns an authorization code into a
// verified identity; it keeps no state and knows nothing of users or
// sessions (the flow that does is actors.Social). Every call to a provider
// runs in a bounded pool, with a timeout and a bound on response sizes.
package social

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The kinds of provider.
const (
	KindGitHub = "github"
	KindGoogle = "google"
	KindX      = "x"
	KindOIDC   = "oidc"
)

// ProviderConfig is one provider of the providers file
// (AUTHNZERVER_SOCIALPROVIDERS; docs/social.md, "Configuration").
type ProviderConfig struct {
	// Name is what requests call the provider: 1–32 of a-z, 0-9, '-', '_'.
	Name string `json:"name"`
	Kind string `json:"kind"`
	// ClientID and the client secret (or a file holding it) of the app
	// registered at the provider.
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	// RedirectURIs are the frontend's callback URLs registered at the
	// provider; a login names one of them exactly.
	RedirectURIs []string `json:"redirect_uris"`
	// Scopes replace the kind's default scopes.
	Scopes []string `json:"scopes,omitempty"`
	// Issuer is the OpenID Connect issuer (kind oidc; google defaults to
	// https://accounts.google.com); discovery reads
	// Issuer + "/.well-known/openid-configuration".
	Issuer string `json:"issuer,omitempty"`
	// AuthURL, TokenURL and APIURL override the endpoints of kinds github
	// and x (GitHub Enterprise, tests). APIURL is the base of the user API
	// (GitHub: https://api.github.com; X: https://api.x.com/2).
	AuthURL  string `json:"auth_url,omitempty"`
	TokenURL string `json:"token_url,omitempty"`
	APIURL   string `json:"api_url,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// LoadFile reads and checks a providers file: a JSON list of providers. A
// client_secret_file relative to it is read from its directory.
func LoadFile(path string) ([]ProviderConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("social providers file: %w", err)
	}
	cfgs, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("social providers file %s: %w", path, err)
	}
	return cfgs, nil
}

// Parse checks the text of a providers file and reads the secret files
// (relative paths against dir).
func Parse(b []byte, dir string) ([]ProviderConfig, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var cfgs []ProviderConfig
	if err := dec.Decode(&cfgs); err != nil {
		return nil, fmt.Errorf("not a JSON list of providers: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the list of providers")
	}
	seen := map[string]bool{}
	for i := range cfgs {
		c := &cfgs[i]
		if err := c.check(dir); err != nil {
			return nil, fmt.Errorf("provider %d (%q): %w", i+1, c.Name, err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("provider %d: name %q used twice", i+1, c.Name)
		}
		seen[c.Name] = true
	}
	return cfgs, nil
}

func (c *ProviderConfig) check(dir string) error {
	if !nameRE.MatchString(c.Name) {
		return errors.New("name must be 1-32 of a-z, 0-9, '-' and '_'")
	}
	switch c.Kind {
	case KindGitHub, KindX:
		if c.Issuer != "" {
			return fmt.Errorf("issuer is for kinds oidc and google, not %s", c.Kind)
		}
	case KindGoogle:
		if c.Issuer == "" {
			c.Issuer = "https://accounts.google.com"
		}
		fallthrough
	case KindOIDC:
		if c.Issuer == "" {
			return errors.New("an oidc provider needs its issuer")
		}
		if c.AuthURL != "" || c.TokenURL != "" || c.APIURL != "" {
			return errors.New("an OpenID Connect provider's endpoints come from discovery; set issuer only")
		}
	default:
		return fmt.Errorf("kind %q is none of github, google, x, oidc", c.Kind)
	}
	if c.ClientID == "" {
		return errors.New("client_id is missing")
	}
	switch {
	case c.ClientSecret != "" && c.ClientSecretFile != "":
		return errors.New("give client_secret or client_secret_file, not both")
	case c.ClientSecretFile != "":
		p := c.ClientSecretFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("client_secret_file: %w", err)
		}
		c.ClientSecret = strings.TrimSpace(string(b))
		if c.ClientSecret == "" {
			return errors.New("client_secret_file is empty")
		}
	case c.ClientSecret == "":
		return errors.New("client_secret or client_secret_file is missing")
	}
	if len(c.RedirectURIs) == 0 {
		return errors.New("redirect_uris is empty")
	}
	for _, u := range c.RedirectURIs {
		if err := checkURL(u, true); err != nil {
			return fmt.Errorf("redirect_uri %q: %w", u, err)
		}
	}
	for name, u := range map[string]string{"issuer": c.Issuer, "auth_url": c.AuthURL, "token_url": c.TokenURL, "api_url": c.APIURL} {
		if u == "" {
			continue
		}
		if err := checkURL(u, false); err != nil {
			return fmt.Errorf("%s %q: %w", name, u, err)
		}
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return fmt.Errorf("scope %q is empty or has spaces", s)
		}
	}
	return nil
}

// checkURL accepts an absolute https URL, or an http one on a loopback
// host (docs/social.md, "Configuration"). A redirect URI may carry a query
// but no fragment.
func checkURL(raw string, redirect bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("must be an absolute URL with a host, no user info and no fragment")
	}
	if !redirect && u.RawQuery != "" {
		return errors.New("must have no query")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must be https (http only on a loopback address)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
