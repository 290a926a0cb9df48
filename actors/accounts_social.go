package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/social"
	"github.com/authnzerver/authnzerver/wire"
)

// The flows of social logins (docs/social.md): one call per request, over
// the flows of [Accounts]. The calls to the provider run here, on the
// caller's goroutine, in the bounded pool of package social; never in a
// shard.

// The refusals of the social flows.
const (
	// RefusedUnknownProvider: no provider of that name is configured.
	RefusedUnknownProvider Refusal = "unknown provider"
	// RefusedRedirectURI: the redirect URI is not one of the provider's.
	RefusedRedirectURI Refusal = "redirect uri"
	// RefusedBadState: the state is unknown, used, expired, or was made
	// for another session, provider or redirect URI.
	RefusedBadState Refusal = "bad state"
	// RefusedProviderDown: the provider could not be reached, was too
	// slow, or did not answer its protocol.
	RefusedProviderDown Refusal = "provider down"
	// RefusedProviderRejected: the provider refused the code, or its
	// answer did not verify.
	RefusedProviderRejected Refusal = "provider rejected"
	// RefusedEmailNotLinkable: the identity's email belongs to a user it
	// may not be linked to (the provider or our user has not verified the
	// address), and a second user cannot have it.
	RefusedEmailNotLinkable Refusal = "email not linkable"
	// RefusedNotLinked: the identity is not linked to the user.
	RefusedNotLinked Refusal = "not linked"
	// RefusedLastLogin: unlinking would leave the user no way to log in.
	RefusedLastLogin Refusal = "last login"
)

// Providers is what the social flows need of the providers
// ([social.Providers]).
type Providers interface {
	Check(name, redirectURI string) error
	IsOIDC(name string) bool
	AuthorizeURL(ctx context.Context, name, redirectURI, state, verifier, nonce string) (string, error)
	Identify(ctx context.Context, name, redirectURI, code, verifier, nonce string) (social.Identity, error)
}

// SocialOptions configures the social flows. Zero fields mean the
// defaults.
type SocialOptions struct {
	// StateLifetime is how long a state is good for. Default 10 minutes.
	StateLifetime time.Duration
	// SessionLifetime is the lifetime of the session a login makes.
	// Default 30 days.
	SessionLifetime time.Duration
	// MaxSessionsPerUser caps a user's sessions (as StartSession).
	MaxSessionsPerUser int
}

// Social runs the flows of social logins. It is safe for concurrent use.
type Social struct {
	acc  *Accounts
	prov Providers
	opts SocialOptions
}

// NewSocial returns the social flows over acc and the providers prov.
func NewSocial(acc *Accounts, prov Providers, opts SocialOptions) *Social {
	if opts.StateLifetime <= 0 {
		opts.StateLifetime = 10 * time.Minute
	}
	if opts.SessionLifetime <= 0 {
		opts.SessionLifetime = 30 * 24 * time.Hour
	}
	return &Social{acc: acc, prov: prov, opts: opts}
}

// SocialStart is the answer of [Social.Start].
type SocialStart struct {
	Refusal      Refusal
	AuthorizeURL string
	State        string
	Expires      time.Time
}

// providerRefusal sorts an error of the providers: a refusal, or an error
// answered by status (ErrBusy for a full pool).
func providerRefusal(err error) (Refusal, error) {
	switch {
	case errors.Is(err, social.ErrUnknownProvider):
		return RefusedUnknownProvider, nil
	case errors.Is(err, social.ErrRedirectURI):
		return RefusedRedirectURI, nil
	case errors.Is(err, social.ErrBusy):
		return "", fmt.Errorf("%w: %w", ErrBusy, err)
	case errors.Is(err, social.ErrRejected):
		return RefusedProviderRejected, nil
	case errors.Is(err, social.ErrUnavailable):
		return RefusedProviderDown, nil
	}
	return "", err
}

// Start begins a login at provider for the browser's live session: it
// makes the state (single-use, bound to the session, provider and redirect
// URI, good for StateLifetime), the PKCE verifier and, for OpenID Connect,
// the nonce, keeps them in the state's shard, and answers the provider's
// authorization URL.
func (s *Social) Start(session shard.SessionDigest, provider, redirectURI string) (SocialStart, error) {
	if err := s.prov.Check(provider, redirectURI); err != nil {
		why, err := providerRefusal(err)
		return SocialStart{Refusal: why}, err
	}
	if _, ok, err := s.acc.session(session); err != nil || !ok {
		if err == nil {
			return SocialStart{Refusal: RefusedNoSession}, nil
		}
		return SocialStart{}, err
	}
	state, err1 := wire.RandomToken(32)
	verifier, err2 := wire.RandomToken(32)
	nonce, err3 := wire.RandomToken(24)
	if err := errors.Join(err1, err2, err3); err != nil {
		return SocialStart{}, fmt.Errorf("actors: social state: %w", err)
	}
	if !s.prov.IsOIDC(provider) {
		nonce = ""
	}
	u, err := s.prov.AuthorizeURL(context.Background(), provider, redirectURI, state, verifier, nonce)
	if err != nil {
		s.acc.log.Warn("social start", "provider", provider, "err", err)
		why, err := providerRefusal(err)
		return SocialStart{Refusal: why}, err
	}
	expires := s.acc.core.Now().Add(s.opts.StateLifetime)
	st := shard.SocialState{
		Provider: provider, Session: session, RedirectURI: redirectURI, Verifier: verifier, Nonce: nonce, Expires: expires,
	}
	if _, err := askDurable[any](s.acc.core, PutSocialState{Digest: shard.DigestSession(state), State: st}); err != nil {
		return SocialStart{}, err
	}
	return SocialStart{AuthorizeURL: u, State: state, Expires: expires.UTC()}, nil
}

// SocialLogin is a finished login's request.
type SocialLogin struct {
	Session     shard.SessionDigest
	Provider    string
	Code        string
	State       string
	RedirectURI string
}

// SocialAnswer is the answer of [Social.Finish].
type SocialAnswer struct {
	Answer
	// Token and Session are the new session of a successful login.
	Token   string
	Session shard.Session
	// NewUser is true when the login made the user.
	NewUser bool
}

// Finish ends a login: it takes the state (whatever follows, it is spent),
// checks it was made for this session, provider and redirect URI, exchanges
// the code at the provider, and finds the user (docs/social.md, "Which
// user"). A locked or inactive user is refused as a password login would
// be. On success the presented session has ended and a new one for the
// user is in the answer.
func (s *Social) Finish(r SocialLogin) (SocialAnswer, error) {
	if err := s.prov.Check(r.Provider, r.RedirectURI); err != nil {
		why, err := providerRefusal(err)
		return SocialAnswer{Answer: refused(why, shard.User{})}, err
	}
	taken, err := askDurable[TakenState](s.acc.core, TakeSocialState{Digest: shard.DigestSession(r.State)})
	if err != nil {
		return SocialAnswer{}, err
	}
	st := taken.State
	if !taken.Found || st.Provider != r.Provider || st.Session != r.Session || st.RedirectURI != r.RedirectURI {
		return SocialAnswer{Answer: refused(RefusedBadState, shard.User{})}, nil
	}
	sess, ok, err := s.acc.session(r.Session)
	if err != nil {
		return SocialAnswer{}, err
	}
	if !ok {
		return SocialAnswer{Answer: refused(RefusedNoSession, shard.User{})}, nil
	}
	ident, err := s.prov.Identify(context.Background(), r.Provider, r.RedirectURI, r.Code, st.Verifier, st.Nonce)
	if errors.Is(err, social.ErrBusy) {
		// The code never left: give the state back, so that the retry
		// the 503 asks for can succeed.
		if _, perr := askDurable[any](s.acc.core, PutSocialState{Digest: shard.DigestSession(r.State), State: st}); perr != nil {
			s.acc.log.Warn("social: give back state", "err", perr)
		}
	}
	if err != nil {
		s.acc.log.Warn("social login", "provider", r.Provider, "err", err)
		why, err := providerRefusal(err)
		return SocialAnswer{Answer: refused(why, shard.User{})}, err
	}
	u, isNew, why, err := s.resolve(r.Provider, ident)
	if err != nil || why != "" {
		return SocialAnswer{Answer: refused(why, shard.User{})}, err
	}
	u = s.acc.unlockIfDue(u)
	// The presented session ends in all cases, as in a password login.
	if _, err := s.acc.endSession(r.Session); err != nil {
		return SocialAnswer{}, err
	}
	if inactiveOrLocked(&u) {
		s.acc.recordLoginTry(u.ID, false)
		return SocialAnswer{Answer: refused(RefusedInactive, u)}, nil
	}
	s.acc.recordLoginTry(u.ID, true)
	token, ns, why, err := s.acc.StartSession(SessionRequest{
		UserID: u.ID, IPAddress: sess.IPAddress, UserAgent: sess.UserAgent,
		Expires: s.acc.core.Now().Add(s.opts.SessionLifetime), MaxPerUser: s.opts.MaxSessionsPerUser,
	})
	if err != nil || why != "" {
		return SocialAnswer{Answer: refused(why, shard.User{})}, err
	}
	s.acc.log.Info("social login", "provider", r.Provider, "user", s.acc.pii(u.ID), "new_user", isNew)
	return SocialAnswer{Answer: Answer{User: u}, Token: token, Session: ns, NewUser: isNew}, nil
}

// resolve finds or makes the user of an identity (docs/social.md, "Which
// user"): the user it is linked to; else the user with the same email, if
// the provider asserts the address verified and our user has verified it
// too (the identity is linked to it; never to a superuser or system user:
// RefusedProtected); else a new user, with the email only if the provider
// asserts it verified.
func (s *Social) resolve(provider string, ident social.Identity) (u shard.User, isNew bool, why Refusal, err error) {
	c := s.acc.core
	found, err := askDurable[FoundIdentity](c, LookupIdentity{Provider: provider, Subject: ident.Subject})
	if err != nil {
		return u, false, "", err
	}
	if found.Found {
		u, ok, err := s.acc.user(found.Identity.UserID)
		if err == nil && !ok {
			// Linked to a user not stored yet (a parallel login is making
			// it) or being deleted (its identities go next); a link left
			// by a crash is dropped at the next start.
			return u, false, RefusedRaced, nil
		}
		return u, false, "", err
	}
	norm := ""
	if ident.Email != "" {
		norm = passpolicy.NormalizeEmail(ident.Email)
		if passpolicy.ValidateEmail(norm, nil) != nil {
			norm, ident.EmailVerified = "", false // not an address we can keep
		}
	}
	if norm != "" {
		owner, ok, err := s.acc.UserByEmail(norm)
		if err != nil {
			return u, false, "", err
		}
		if ok {
			if !ident.EmailVerified || !owner.EmailVerified {
				return u, false, RefusedEmailNotLinkable, nil
			}
			// A provider's word never makes anyone the superuser or a
			// system user.
			if owner.ID < shard.FirstUserID || owner.Role == "superuser" {
				return u, false, RefusedProtected, nil
			}
			link, err := askDurable[Link](c, LinkIdentity{Identity: shard.Identity{
				Provider: provider, Subject: ident.Subject, UserID: owner.ID, Email: norm,
			}})
			if err != nil {
				return u, false, "", err
			}
			if link.Owner != owner.ID { // a parallel login linked it first
				u, ok, err := s.acc.user(link.Owner)
				if err == nil && !ok {
					return u, false, RefusedRaced, nil
				}
				return u, false, "", err
			}
			s.acc.log.Info("social identity linked by email", "provider", provider, "user", s.acc.pii(owner.ID))
			return owner, false, "", nil
		}
	}
	if !ident.EmailVerified {
		// An address the provider does not vouch for is not kept: claimed
		// by a new user, it would keep its real owner from signing up.
		norm = ""
	}
	return s.newUser(provider, ident, norm)
}

// newUser makes the user of a new identity: the identity linked to a new
// id, the email (if any) claimed for it, then the user stored; each claim
// is given back when a later step fails.
func (s *Social) newUser(provider string, ident social.Identity, norm string) (u shard.User, isNew bool, why Refusal, err error) {
	c := s.acc.core
	link, err := askDurable[Link](c, LinkNewIdentity{Provider: provider, Subject: ident.Subject, Email: norm})
	if err != nil {
		return u, false, "", err
	}
	if !link.Linked { // a parallel login of the same identity won
		u, ok, err := s.acc.user(link.Owner)
		if err == nil && !ok {
			return u, false, RefusedRaced, nil
		}
		return u, false, "", err
	}
	id := link.Owner
	unlink := func() {
		if _, err := askDurable[bool](c, UnlinkIdentity{Provider: provider, Subject: ident.Subject, UserID: id}); err != nil {
			s.acc.log.Warn("social: give back identity", "err", err)
		}
	}
	if norm != "" {
		_, ok, err := s.acc.claimKey(norm, id)
		if err != nil || !ok {
			unlink()
			if err == nil {
				why = RefusedEmailNotLinkable // taken since we looked
			}
			return u, false, why, err
		}
	}
	name := passpolicy.NormalizeFullName(ident.Name)
	if passpolicy.CheckFullName(name) != nil {
		name = ""
	}
	nu := shard.User{
		ID: id, SystemID: newUUID(), FullName: name, Email: norm, EmailVerified: norm != "",
		IsActive: true, Role: "authenticated",
	}
	stored, err := askDurable[shard.User](c, NewSocialUser{User: nu})
	if err != nil {
		unlink()
		if norm != "" {
			s.acc.releaseKey(norm, id)
		}
		return u, false, "", err
	}
	s.acc.log.Info("user created by social login", "provider", provider, "user", s.acc.pii(id))
	return stored, true, "", nil
}

// sessionUser checks that the live session belongs to user uid.
func (s *Social) sessionUser(session shard.SessionDigest, uid shard.UserID) (shard.User, Refusal, error) {
	sess, ok, err := s.acc.session(session)
	if err != nil {
		return shard.User{}, "", err
	}
	if !ok || sess.UserID != uid {
		return shard.User{}, RefusedNoSession, nil
	}
	u, ok, err := s.acc.user(uid)
	if err != nil {
		return shard.User{}, "", err
	}
	if !ok {
		return shard.User{}, RefusedNoUser, nil
	}
	return u, "", nil
}

// identities lists the identities of uid from every shard, sorted.
func (s *Social) identities(uid shard.UserID) ([]shard.Identity, error) {
	rs, err := AskAll[[]shard.Identity](s.acc.core, ListIdentities{UserID: uid})
	if err != nil {
		return nil, err
	}
	var out []shard.Identity
	for _, r := range rs {
		out = append(out, r.Value...)
	}
	slices.SortFunc(out, func(a, b shard.Identity) int {
		return strings.Compare(shard.IdentityKey(a.Provider, a.Subject), shard.IdentityKey(b.Provider, b.Subject))
	})
	return out, nil
}

// List answers the identities linked to user uid, whose live session
// session must be. Refusals: RefusedNoSession, RefusedNoUser.
func (s *Social) List(session shard.SessionDigest, uid shard.UserID) ([]shard.Identity, Refusal, error) {
	if _, why, err := s.sessionUser(session, uid); err != nil || why != "" {
		return nil, why, err
	}
	ids, err := s.identities(uid)
	return ids, "", err
}

// Unlink removes the identity (provider, subject) of user uid, whose live
// session session must be, unless the user would be left with no way to
// log in (no password and no other identity). Refusals: RefusedNoSession,
// RefusedNoUser, RefusedNotLinked, RefusedLastLogin.
func (s *Social) Unlink(session shard.SessionDigest, uid shard.UserID, provider, subject string) (Answer, error) {
	u, why, err := s.sessionUser(session, uid)
	if err != nil || why != "" {
		return refused(why, shard.User{}), err
	}
	ids, err := s.identities(uid)
	if err != nil {
		return Answer{}, err
	}
	if !slices.ContainsFunc(ids, func(id shard.Identity) bool { return id.Provider == provider && id.Subject == subject }) {
		return refused(RefusedNotLinked, u), nil
	}
	if u.PasswordPHC == "" && len(ids) == 1 {
		return refused(RefusedLastLogin, u), nil
	}
	ok, err := askDurable[bool](s.acc.core, UnlinkIdentity{Provider: provider, Subject: subject, UserID: uid})
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return refused(RefusedRaced, u), nil
	}
	return Answer{User: u, Count: 1}, nil
}
