package actors

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/social"
)

// The social flows on a real core, without HTTP: the providers are a
// stand-in that answers the identity registered for each code (the
// protocols themselves are tested end to end, server/e2e_social_test.go).

type stubProviders struct {
	mu    sync.Mutex
	codes map[string]social.Identity
}

func (p *stubProviders) Check(name, redirectURI string) error {
	if name != "p" {
		return social.ErrUnknownProvider
	}
	if redirectURI != "https://app.example/cb" {
		return social.ErrRedirectURI
	}
	return nil
}

func (p *stubProviders) IsOIDC(string) bool { return true }

func (p *stubProviders) AuthorizeURL(_ context.Context, _, redirectURI, state, verifier, nonce string) (string, error) {
	return "https://p.example/auth?" + url.Values{"state": {state}, "nonce": {nonce}, "v": {verifier}, "r": {redirectURI}}.Encode(), nil
}

func (p *stubProviders) Identify(_ context.Context, _, _, code, verifier, nonce string) (social.Identity, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.codes[code+"|"+verifier+"|"+nonce]
	if !ok {
		return social.Identity{}, fmt.Errorf("%w: unknown code", social.ErrRejected)
	}
	return id, nil
}

// socialStart starts a login of the identity id from a new session and
// returns the finish to send.
func socialStart(t *testing.T, h *accountsHarness, s *Social, p *stubProviders, token string, id social.Identity) SocialLogin {
	t.Helper()
	sess := h.newSession(t, token, shard.AnonymousID)
	st, err := s.Start(sess, "p", "https://app.example/cb")
	if err != nil || st.Refusal != "" {
		t.Fatalf("start: %v %q", err, st.Refusal)
	}
	u, _ := url.Parse(st.AuthorizeURL)
	q := u.Query()
	p.mu.Lock()
	p.codes["code-"+token+"|"+q.Get("v")+"|"+q.Get("nonce")] = id
	p.mu.Unlock()
	return SocialLogin{Session: sess, Provider: "p", Code: "code-" + token, State: st.State, RedirectURI: "https://app.example/cb"}
}

// socialLogin starts and finishes one login of the identity id.
func socialLogin(t *testing.T, h *accountsHarness, s *Social, p *stubProviders, token string, id social.Identity) SocialAnswer {
	t.Helper()
	a, err := s.Finish(socialStart(t, h, s, p, token, id))
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	return a
}

func TestSocialRacingLoginsMakeOneUser(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	p := &stubProviders{codes: map[string]social.Identity{}}
	s := NewSocial(h.Accounts, p, SocialOptions{})
	id := social.Identity{Subject: "s-1", Email: "racer@example.org", EmailVerified: true, Name: "Racer"}
	const n = 8
	answers := make([]SocialAnswer, n)
	errs := make([]error, n)
	logins := make([]SocialLogin, n)
	for i := range n {
		logins[i] = socialStart(t, h, s, p, fmt.Sprintf("tok-%d", i), id)
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			answers[i], errs[i] = s.Finish(logins[i])
		}()
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("login %d: %v", i, err)
		}
	}
	created, uid := 0, shard.UserID(0)
	for _, a := range answers {
		if a.OK() {
			uid = a.User.ID
		}
	}
	for i, a := range answers {
		if !a.OK() && a.Refusal != RefusedRaced {
			t.Errorf("login %d: %q", i, a.Refusal)
		}
		if a.OK() && a.User.ID != uid {
			t.Errorf("login %d: user %d; another got %d", i, a.User.ID, uid)
		}
		if a.NewUser {
			created++
		}
	}
	if created != 1 || uid == 0 {
		t.Errorf("%d logins made a user; want 1", created)
	}
	if u, ok, _ := h.UserByEmail("racer@example.org"); !ok || u.ID != uid || u.PasswordPHC != "" || u.Role != "authenticated" {
		t.Errorf("the user: %+v %v", u, ok)
	}
}

func TestSocialDeletedUserLosesIdentities(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	p := &stubProviders{codes: map[string]social.Identity{}}
	s := NewSocial(h.Accounts, p, SocialOptions{})
	a := socialLogin(t, h, s, p, "t1", social.Identity{Subject: "s-2", Name: "No Email"})
	if !a.OK() || !a.NewUser || a.Token == "" {
		t.Fatalf("login: %+v", a)
	}
	ids, why, err := s.List(shard.DigestSession(a.Token), a.User.ID)
	if err != nil || why != "" || len(ids) != 1 || ids[0].Subject != "s-2" {
		t.Fatalf("list: %v %q %+v", err, why, ids)
	}
	if _, err := h.DeleteUser(a.User.ID); err != nil {
		t.Fatal(err)
	}
	rs, err := AskAll[[]shard.Identity](h.core, ListIdentities{UserID: a.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if len(r.Value) != 0 {
			t.Errorf("shard %d keeps %+v of a deleted user", i, r.Value)
		}
	}
}
