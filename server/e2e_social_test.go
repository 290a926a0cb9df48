package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/social/socialtest"
)

// Social logins end to end (docs/social.md): the wire protocol against
// test providers on loopback that speak OpenID Connect, GitHub's and X's
// protocols. The test plays the browser: it follows authorize_url, logs
// in at the provider, takes the code from the redirect and finishes.

const (
	socialRedirect  = "http://127.0.0.1:9/auth/callback"
	socialRedirect2 = "http://127.0.0.1:9/auth/other"
)

// Failure reasons of docs/protocol.md, "Social logins".
const (
	reasonState    = "state is invalid, used, expired, or was made for another session, provider or redirect_uri"
	reasonDown     = "the provider could not be reached, was too slow, or answered something that is not its protocol"
	reasonRejected = "the provider refused the code, or its answer did not verify"
	reasonEmail    = "the provider's email belongs to an account that cannot be linked to this identity (its email is not verified by the provider or here)"
	reasonRedirect = "redirect_uri is not one of the provider's configured redirect URIs"
)

type socialEnv struct {
	t            *testing.T
	ts           *servertest.Server
	corp, gh, xp *socialtest.Server
}

func startSocial(t *testing.T, opts ...servertest.Option) *socialEnv {
	t.Helper()
	e := &socialEnv{t: t, corp: socialtest.Start(t, socialtest.OIDC), gh: socialtest.Start(t, socialtest.GitHub), xp: socialtest.Start(t, socialtest.X)}
	corp := e.corp.Provider("corp", socialRedirect)
	corp["redirect_uris"] = []string{socialRedirect, socialRedirect2}
	b, err := json.Marshal([]any{corp, e.gh.Provider("gh", socialRedirect), e.xp.Provider("x", socialRedirect)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	opts = append([]servertest.Option{
		servertest.Env("AUTHNZERVER_SOCIALPROVIDERS", path), servertest.Env(servertest.SocialTimeout, "1s"),
	}, opts...)
	e.ts = servertest.Start(t, opts...)
	return e
}

// start begins a login at provider for session.
func (e *socialEnv) start(provider, session string) (authorizeURL, state string) {
	e.t.Helper()
	r := e.ts.MustSucceed("user-social-start", map[string]any{"provider": provider, "redirect_uri": socialRedirect, "session_token": session})
	return r.Str("authorize_url"), r.Str("state")
}

// browse follows authorizeURL as the browser, logging in as login.
func (e *socialEnv) browse(authorizeURL, wantState, login string) string {
	e.t.Helper()
	code, state, err := socialtest.Authorize(authorizeURL, login)
	if err != nil {
		e.t.Fatalf("at the provider: %v", err)
	}
	if state != wantState || code == "" {
		e.t.Fatalf("redirect with state %q code %q; want state %q", state, code, wantState)
	}
	return code
}

func (e *socialEnv) finish(provider, session, code, state string) *client.Response {
	e.t.Helper()
	return e.ts.Do("user-social-finish", map[string]any{
		"provider": provider, "code": code, "state": state, "session_token": session, "redirect_uri": socialRedirect,
	})
}

// login runs a whole login at provider as login, from a new anonymous
// session; it returns the answer and the anonymous session's token.
func (e *socialEnv) login(provider, login string) (*client.Response, string) {
	e.t.Helper()
	anon := e.ts.NewSession(0)
	u, state := e.start(provider, anon)
	code := e.browse(u, state, login)
	return e.finish(provider, anon, code, state), anon
}

// noSecretsLogged fails the test if the server's log holds any token,
// code or secret of the providers.
func (e *socialEnv) noSecretsLogged() {
	e.t.Helper()
	log := e.ts.Log.String()
	for _, p := range []*socialtest.Server{e.corp, e.gh, e.xp} {
		for _, secret := range p.Issued() {
			if strings.Contains(log, secret) {
				e.t.Errorf("the log holds a provider's token, code or secret %.12s…", secret)
			}
		}
	}
}

func mustFail(t *testing.T, what string, r *client.Response, reason string) {
	t.Helper()
	if r.StatusCode != 200 || r.Success || r.FailureReason != reason {
		t.Errorf("%s: status %d success %v failure_reason %q; want %q", what, r.StatusCode, r.Success, r.FailureReason, reason)
	}
}

func mustLogin(t *testing.T, what string, r *client.Response, wantNew bool) int64 {
	t.Helper()
	uid, _ := r.Int("user_id")
	if r.StatusCode != 200 || !r.Success || uid < 4 || r.Str("session_token") == "" {
		t.Fatalf("%s: status %d success %v failure_reason %q user_id %d", what, r.StatusCode, r.Success, r.FailureReason, uid)
	}
	if got, _ := r.Response["new_user"].(bool); got != wantNew {
		t.Errorf("%s: new_user %v; want %v", what, got, wantNew)
	}
	return uid
}

func TestSocialOIDCLogin(t *testing.T) {
	e := startSocial(t)
	e.corp.AddAccount("alice", socialtest.Account{Subject: "a-1", Email: "Alice@Corp.example", EmailVerified: true, Name: "Alice Liddell"})
	r, anon := e.login("corp", "alice")
	uid := mustLogin(t, "new user", r, true)
	if r.Str("user_role") != "authenticated" || r.Str("provider") != "corp" || r.Str("expires") == "" {
		t.Errorf("answer %v", r.Response)
	}
	// The presented session ended; the new one is the user's.
	mustFail(t, "anonymous session after login", e.ts.Do("session-exists", map[string]any{"session_token": anon}), "session does not exist or expired")
	info := e.ts.MustSucceed("session-exists", map[string]any{"session_token": r.Str("session_token")}).Map("session_info")
	if info["user_id"] != float64(uid) || info["email"] != "alice@corp.example" || info["full_name"] != "Alice Liddell" ||
		info["is_active"] != true || info["email_verified"] != true {
		t.Errorf("session_info %v", info)
	}
	// Returning user, also after a restart: the identity link is durable.
	e.ts.Restart()
	r, _ = e.login("corp", "alice")
	if got := mustLogin(t, "returning user", r, false); got != uid {
		t.Errorf("returning user got id %d; want %d", got, uid)
	}
	// No password: a password login is refused cleanly.
	anon = e.ts.NewSession(0)
	mustFail(t, "password login of a social user", e.ts.Do("user-login", map[string]any{
		"session_token": anon, "email": "alice@corp.example", "password": "",
	}), "user does not exist or password doesn't match")
	// The reset flow gives the user a password; then both logins work.
	e.ts.MustSucceed("user-resetpass-nosession", map[string]any{
		"email_address": "alice@corp.example", "new_password": "alice-now-has-a-long-passphrase-7", "required_active": true,
	})
	anon = e.ts.NewSession(0)
	e.ts.MustSucceed("user-login", map[string]any{"session_token": anon, "email": "alice@corp.example", "password": "alice-now-has-a-long-passphrase-7"})
	r, _ = e.login("corp", "alice")
	mustLogin(t, "social login after a password was set", r, false)
	// A locked user is refused as a password login would be.
	e.ts.MustSucceed("internal-user-lock", map[string]any{"target_userid": uid, "action": "lock"})
	r, _ = e.login("corp", "alice")
	mustFail(t, "locked user", r, "user exists but is inactive")
	e.noSecretsLogged()
	if r.Str("session_token") != "" {
		t.Errorf("locked user got a session")
	}
}

func TestSocialLinkByEmail(t *testing.T) {
	e := startSocial(t, servertest.Env("AUTHNZERVER_ADMIN_EMAIL", "boss@example.org"))
	bob := e.ts.NewUser("bob@example.org", "bob-has-a-long-passphrase-1")
	e.gh.AddAccount("bob", socialtest.Account{Subject: "1001", Email: "BOB@example.org", EmailVerified: true, Name: "Bob"})
	r, _ := e.login("gh", "bob")
	if got := mustLogin(t, "link by verified email", r, false); got != bob {
		t.Fatalf("linked to %d; want bob %d", got, bob)
	}
	sess := r.Str("session_token")
	l := e.ts.MustSucceed("user-social-list", map[string]any{"session_token": sess, "user_id": bob})
	ids, _ := l.Response["identities"].([]any)
	if len(ids) != 1 || ids[0].(map[string]any)["provider"] != "gh" || ids[0].(map[string]any)["subject"] != "1001" {
		t.Fatalf("identities %v", l.Response["identities"])
	}
	// Another user's session may not list or unlink bob's identities.
	other := e.ts.NewSession(0)
	mustFail(t, "list with another session", e.ts.Do("user-social-list", map[string]any{"session_token": other, "user_id": bob}),
		"session does not exist or does not belong to user_id")
	// Bob has a password, so his only identity may go.
	e.ts.MustSucceed("user-social-unlink", map[string]any{"session_token": sess, "user_id": bob, "provider": "gh", "subject": "1001"})
	l = e.ts.MustSucceed("user-social-list", map[string]any{"session_token": sess, "user_id": bob})
	if ids, _ := l.Response["identities"].([]any); len(ids) != 0 {
		t.Errorf("identities after unlink %v", ids)
	}

	// An address the provider does not vouch for is not linked, and a
	// second user cannot have it.
	carol := e.ts.NewUser("carol@example.org", "carol-has-a-long-passphrase-2")
	e.corp.AddAccount("mallory", socialtest.Account{Subject: "m-1", Email: "carol@example.org", EmailVerified: false, Name: "Mallory"})
	r, _ = e.login("corp", "mallory")
	mustFail(t, "link by an email the provider did not verify", r, reasonEmail)
	// Nor one our user has not verified.
	e.ts.MustSucceed("user-new", map[string]any{"full_name": "Dave", "email": "dave@example.org", "password": "dave-has-a-long-passphrase-3"})
	e.corp.AddAccount("dave", socialtest.Account{Subject: "d-1", Email: "dave@example.org", EmailVerified: true, Name: "Dave"})
	r, _ = e.login("corp", "dave")
	mustFail(t, "link to an unverified user", r, reasonEmail)
	// A provider's word never makes anyone the superuser.
	e.corp.AddAccount("boss", socialtest.Account{Subject: "b-1", Email: "boss@example.org", EmailVerified: true, Name: "Boss"})
	r, _ = e.login("corp", "boss")
	mustFail(t, "link to the superuser", r, "the provider's email belongs to a superuser or system account, which social logins never link")
	// Carol's account is untouched and has no identity.
	cs := e.ts.NewSession(carol)
	l = e.ts.MustSucceed("user-social-list", map[string]any{"session_token": cs, "user_id": carol})
	if ids, _ := l.Response["identities"].([]any); len(ids) != 0 {
		t.Errorf("carol's identities %v", ids)
	}
}

func TestSocialXAndUnlink(t *testing.T) {
	e := startSocial(t)
	e.xp.AddAccount("xena", socialtest.Account{Subject: "9000", Name: "Xena"})
	r, _ := e.login("x", "xena")
	uid := mustLogin(t, "X new user", r, true)
	sess := r.Str("session_token")
	info := e.ts.MustSucceed("session-exists", map[string]any{"session_token": sess}).Map("session_info")
	if info["email"] != "" || info["email_verified"] != false || info["full_name"] != "Xena" {
		t.Errorf("X user %v", info)
	}
	// A user without an email survives a restart, identity and all.
	e.ts.Restart()
	r, _ = e.login("x", "xena")
	if got := mustLogin(t, "X returning user after a restart", r, false); got != uid {
		t.Fatalf("returning X user %d; want %d", got, uid)
	}
	sess = r.Str("session_token")
	// Her only way to log in: not unlinkable.
	mustFail(t, "unlink the last identity", e.ts.Do("user-social-unlink", map[string]any{"session_token": sess, "user_id": uid, "provider": "x", "subject": "9000"}),
		"the user has no password and no other identity: unlinking would leave no way to log in")
	mustFail(t, "unlink an identity not linked", e.ts.Do("user-social-unlink", map[string]any{"session_token": sess, "user_id": uid, "provider": "gh", "subject": "9000"}),
		"that identity is not linked to this user")
	// GitHub's primary email unverified: no email is taken from it.
	e.gh.AddAccount("gus", socialtest.Account{Subject: "77", Email: "gus@example.org", EmailVerified: false, Name: "Gus"})
	r, _ = e.login("gh", "gus")
	mustLogin(t, "GitHub user with an unverified primary email", r, true)
	info = e.ts.MustSucceed("session-exists", map[string]any{"session_token": r.Str("session_token")}).Map("session_info")
	if info["email"] != "" {
		t.Errorf("GitHub user got unverified email %v", info["email"])
	}
	// Nor from an OpenID Connect provider that does not vouch for it: the
	// address stays free for its owner.
	e.corp.AddAccount("squatter", socialtest.Account{Subject: "sq", Email: "owner@example.org", EmailVerified: false, Name: "Squatter"})
	r, _ = e.login("corp", "squatter")
	mustLogin(t, "OIDC user with an unverified email", r, true)
	if info := e.ts.MustSucceed("session-exists", map[string]any{"session_token": r.Str("session_token")}).Map("session_info"); info["email"] != "" {
		t.Errorf("OIDC user got unverified email %v", info["email"])
	}
	e.ts.MustSucceed("user-new", map[string]any{"full_name": "Owner", "email": "owner@example.org", "password": "owner-has-a-long-passphrase-9"})
	// A deleted user's identity goes with it: the next login makes a new user.
	e.ts.MustSucceed("internal-user-delete", map[string]any{"target_userid": uid})
	r, _ = e.login("x", "xena")
	if got := mustLogin(t, "X login after the user was deleted", r, true); got == uid {
		t.Errorf("deleted user's id %d came back", got)
	}
}

func TestSocialState(t *testing.T) {
	e := startSocial(t)
	e.corp.AddAccount("alice", socialtest.Account{Subject: "a-1", Email: "alice@corp.example", EmailVerified: true})
	e.gh.AddAccount("alice", socialtest.Account{Subject: "5", Email: "alice@corp.example", EmailVerified: true})

	// Replayed: the state is spent by its first use.
	anon := e.ts.NewSession(0)
	u, state := e.start("corp", anon)
	code := e.browse(u, state, "alice")
	r := e.finish("corp", anon, code, state)
	mustLogin(t, "first use", r, true)
	mustFail(t, "replayed state", e.finish("corp", anon, code, state), reasonState)

	// Forged.
	before := e.corp.Exchanges()
	anon = e.ts.NewSession(0)
	u, state = e.start("corp", anon)
	code = e.browse(u, state, "alice")
	mustFail(t, "forged state", e.finish("corp", anon, code, state[:len(state)-2]+"AA"), reasonState)
	// Made for another session: spent, so not usable by the right one
	// either.
	other := e.ts.NewSession(0)
	mustFail(t, "state of another session", e.finish("corp", other, code, state), reasonState)
	mustFail(t, "state after a misuse", e.finish("corp", anon, code, state), reasonState)
	// Made for another provider.
	u, state = e.start("gh", anon)
	code = e.browse(u, state, "alice")
	mustFail(t, "state of another provider", e.finish("corp", anon, code, state), reasonState)
	if n := e.corp.Exchanges(); n != before {
		t.Errorf("the provider was asked to exchange %d codes of bad states", n-before)
	}

	// Expired after 10 minutes.
	anon = e.ts.NewSession(0)
	u, state = e.start("corp", anon)
	code = e.browse(u, state, "alice")
	e.ts.Advance(10*time.Minute + time.Second)
	mustFail(t, "expired state", e.finish("corp", anon, code, state), reasonState)

	// A redirect URI that is not configured, at either end.
	r = e.ts.Do("user-social-start", map[string]any{"provider": "corp", "redirect_uri": "https://evil.example/cb", "session_token": anon})
	mustFail(t, "start with another redirect_uri", r, reasonRedirect)
	if r.Str("authorize_url") != "" {
		t.Errorf("authorize_url for a foreign redirect: %q", r.Str("authorize_url"))
	}
	_, state = e.start("corp", anon)
	mustFail(t, "finish with another redirect_uri", e.ts.Do("user-social-finish", map[string]any{
		"provider": "corp", "code": "c", "state": state, "session_token": anon, "redirect_uri": socialRedirect + "/x",
	}), reasonRedirect)
	// Made for the provider's other redirect URI.
	r = e.ts.MustSucceed("user-social-start", map[string]any{"provider": "corp", "redirect_uri": socialRedirect2, "session_token": anon})
	code = e.browse(r.Str("authorize_url"), r.Str("state"), "alice")
	mustFail(t, "state of another redirect_uri", e.finish("corp", anon, code, r.Str("state")), reasonState)
	mustFail(t, "unknown provider", e.ts.Do("user-social-start", map[string]any{"provider": "nope", "redirect_uri": socialRedirect, "session_token": anon}), "unknown provider")
	mustFail(t, "start without a live session", e.ts.Do("user-social-start", map[string]any{"provider": "corp", "redirect_uri": socialRedirect, "session_token": "no-such-session"}), "session does not exist")
}

func TestSocialIDTokenChecks(t *testing.T) {
	e := startSocial(t)
	e.corp.AddAccount("alice", socialtest.Account{Subject: "a-1", Email: "alice@corp.example", EmailVerified: true})
	for _, tt := range []struct {
		name  string
		edit  func(map[string]any)
		other bool
	}{
		{"wrong nonce", func(c map[string]any) { c["nonce"] = "not-the-nonce" }, false},
		{"no nonce", func(c map[string]any) { delete(c, "nonce") }, false},
		{"wrong audience", func(c map[string]any) { c["aud"] = "someone-else" }, false},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, false},
		{"expired", func(c map[string]any) {
			c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
			c["iat"] = time.Now().Add(-20 * time.Minute).Unix()
		}, false},
		{"signed with another key", nil, true},
	} {
		e.corp.EditClaims(tt.edit)
		e.corp.SignWithOtherKey(tt.other)
		r, anon := e.login("corp", "alice")
		mustFail(t, tt.name, r, reasonRejected)
		if r.Str("session_token") != "" {
			t.Errorf("%s: got a session", tt.name)
		}
		// The state is spent and the session kept: the browser may start again.
		e.ts.MustSucceed("session-exists", map[string]any{"session_token": anon})
	}
	e.corp.EditClaims(nil)
	e.corp.SignWithOtherKey(false)
	r, _ := e.login("corp", "alice")
	mustLogin(t, "a good token after the bad ones", r, true) // none of the bad ones made the user
	e.noSecretsLogged()
}

func TestSocialProviderFaults(t *testing.T) {
	e := startSocial(t, servertest.Env(servertest.SocialPool, "1"))
	e.gh.AddAccount("gail", socialtest.Account{Subject: "42", Email: "gail@example.org", EmailVerified: true})
	e.xp.AddAccount("xavi", socialtest.Account{Subject: "43"})

	e.gh.SetMode(socialtest.Garbage, 0)
	r, _ := e.login("gh", "gail")
	mustFail(t, "garbage", r, reasonDown)

	e.gh.SetMode(socialtest.Slow, 2*time.Second)
	t0 := time.Now()
	r, _ = e.login("gh", "gail")
	mustFail(t, "slow", r, reasonDown)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("a slow provider held the request %v; the timeout is 1s", d)
	}

	// A slow provider holds the pool's one slot; another login gets 503
	// at once rather than waiting.
	var wg sync.WaitGroup
	anon := e.ts.NewSession(0)
	u, state := e.start("gh", anon)
	code := e.browse(u, state, "gail")
	anon2 := e.ts.NewSession(0)
	u2, state2 := e.start("x", anon2)
	code2 := e.browse(u2, state2, "xavi")
	stalled := e.gh.Stalled()
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.finish("gh", anon, code, state)
	}()
	for deadline := time.Now().Add(900 * time.Millisecond); e.gh.Stalled() == stalled && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	t1 := time.Now()
	busy := e.finish("x", anon2, code2, state2)
	if busy.StatusCode != 503 || time.Since(t1) > 500*time.Millisecond {
		t.Errorf("login while the pool is full: status %d after %v; want 503 at once", busy.StatusCode, time.Since(t1))
	}
	wg.Wait()
	// The code was never sent: the state was given back, and the retry
	// the 503 asks for succeeds.
	r = e.finish("x", anon2, code2, state2)
	mustLogin(t, "retry after 503", r, true)
	e.gh.SetMode(socialtest.Normal, 0)
	r, _ = e.login("gh", "gail")
	mustLogin(t, "after the faults", r, true)

	// Down.
	anon3 := e.ts.NewSession(0)
	u, state = e.start("x", anon3)
	code = e.browse(u, state, "xavi")
	e.xp.Close()
	mustFail(t, "provider down", e.finish("x", anon3, code, state), reasonDown)
}

func TestSocialProvidersFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, file, want string
	}{
		{"not https", `[{"name":"gh","kind":"github","client_id":"a","client_secret":"b","redirect_uris":["https://app.example/cb"],"token_url":"http://gh.example/token"}]`, "must be https"},
		{"unknown kind", `[{"name":"fb","kind":"facebook","client_id":"a","client_secret":"b","redirect_uris":["https://app.example/cb"]}]`, "is none of github"},
		{"not JSON", `{`, "not a JSON list"},
	} {
		path := filepath.Join(dir, tt.name+".json")
		if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
			t.Fatal(err)
		}
		err := servertest.StartErr(t, servertest.Env("AUTHNZERVER_SOCIALPROVIDERS", path))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: start error %v; want one naming the file and %q", tt.name, err, tt.want)
		}
	}
}
