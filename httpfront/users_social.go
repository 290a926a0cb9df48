package httpfront

import (
	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// The social login requests (docs/social.md, "Requests"): each makes one
// call to the core's social flows (actors.Social) and words its answer.

const (
	msgSocialFailed      = "Sorry, the login with that provider didn't work."
	reasonSocialOff      = "social logins are not configured"
	reasonSocialProvider = "unknown provider"
	reasonSocialRedirect = "redirect_uri is not one of the provider's configured redirect URIs"
	reasonSocialState    = "state is invalid, used, expired, or was made for another session, provider or redirect_uri"
	reasonSocialDown     = "the provider could not be reached, was too slow, or answered something that is not its protocol"
	reasonSocialRejected = "the provider refused the code, or its answer did not verify"
	reasonSocialEmail    = "the provider's email belongs to an account that cannot be linked to this identity (its email is not verified by the provider or here)"
	reasonSocialRaced    = "a parallel change to this identity won; retry"
	reasonSocialSuper    = "the provider's email belongs to a superuser or system account, which social logins never link"
)

// socialReasons words the refusals of Start and Finish.
var socialReasons = map[actors.Refusal]string{
	actors.RefusedUnknownProvider:  reasonSocialProvider,
	actors.RefusedRedirectURI:      reasonSocialRedirect,
	actors.RefusedNoSession:        reasonNoSession,
	actors.RefusedBadState:         reasonSocialState,
	actors.RefusedProviderDown:     reasonSocialDown,
	actors.RefusedProviderRejected: reasonSocialRejected,
	actors.RefusedEmailNotLinkable: reasonSocialEmail,
	actors.RefusedRaced:            reasonSocialRaced,
	actors.RefusedProtected:        reasonSocialSuper,
}

// socialFailure words a refusal of Start or Finish.
func socialFailure(why actors.Refusal, provider string) result {
	reason, ok := socialReasons[why]
	if !ok {
		reason = string(why)
	}
	return failure(reason, msgSocialFailed).with("user_id", nil).with("provider", provider)
}

// handleUserSocialStart begins a login at a provider for the browser's
// session: the authorization URL to send the browser to, and the state.
func handleUserSocialStart(c *call) (result, error) {
	provider := c.str("provider")
	if c.s.deps.Social == nil {
		return socialOff(provider), nil
	}
	a, err := c.s.deps.Social.Start(shard.DigestSession(c.str("session_token")), provider, c.str("redirect_uri"))
	if err != nil {
		return result{}, err
	}
	if a.Refusal != "" {
		return socialFailure(a.Refusal, provider).with("authorize_url", nil).with("state", nil).with("expires", nil), nil
	}
	return success("Send the browser to authorize_url.").with("authorize_url", a.AuthorizeURL).
		with("state", a.State).with("expires", wire.FormatTime(a.Expires)).with("provider", provider), nil
}

func socialOff(provider string) result {
	return failure(reasonSocialOff, msgSocialFailed).with("user_id", nil).with("provider", provider)
}

// handleUserSocialFinish ends a login: the state checked and spent, the
// code exchanged, the user found, linked or made, the presented session
// ended and a new one made. The success answer is user-login's, plus the
// new session and new_user.
func handleUserSocialFinish(c *call) (result, error) {
	provider := c.str("provider")
	if c.s.deps.Social == nil {
		return socialOff(provider), nil
	}
	a, err := c.s.deps.Social.Finish(actors.SocialLogin{
		Session: shard.DigestSession(c.str("session_token")), Provider: provider,
		Code: c.str("code"), State: c.str("state"), RedirectURI: c.str("redirect_uri"),
	})
	if err != nil {
		return result{}, err
	}
	switch a.Refusal {
	case "":
		return success("Login successful.").with("user_id", int64(a.User.ID)).with("user_role", a.User.Role).
			with("session_token", a.Token).with("expires", wire.FormatTime(a.Session.Expires)).
			with("new_user", a.NewUser).with("provider", provider), nil
	case actors.RefusedInactive:
		return failure(reasonInactive, msgBadLogin).with("user_id", int64(a.User.ID)).with("provider", provider), nil
	}
	return socialFailure(a.Refusal, provider), nil
}

// handleUserSocialList lists the identities linked to user_id, whose
// session session_token must be.
func handleUserSocialList(c *call) (result, error) {
	uid, _ := c.int("user_id")
	if c.s.deps.Social == nil {
		return failure(reasonSocialOff, "No linked identities.").with("user_id", uid).with("identities", nil), nil
	}
	ids, why, err := c.s.deps.Social.List(shard.DigestSession(c.str("session_token")), shard.UserID(uid))
	if err != nil {
		return result{}, err
	}
	switch why {
	case "":
	case actors.RefusedNoSession:
		return failure("session does not exist or does not belong to user_id", "No linked identities.").with("user_id", uid).with("identities", nil), nil
	default:
		return failure("user does not exist", "No linked identities.").with("user_id", uid).with("identities", nil), nil
	}
	list := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		list = append(list, map[string]any{
			"provider": id.Provider, "subject": id.Subject, "email": nilIfEmpty(id.Email),
			"linked_on": wire.FormatTime(id.CreatedOn),
		})
	}
	return success("Linked identities found.").with("user_id", uid).with("identities", list), nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// handleUserSocialUnlink removes an identity of user_id, unless the user
// would have no way left to log in.
func handleUserSocialUnlink(c *call) (result, error) {
	uid, _ := c.int("user_id")
	provider, subject := c.str("provider"), c.str("subject")
	fail := func(reason string) result {
		return failure(reason, "Could not unlink that identity.").with("user_id", uid).
			with("provider", provider).with("subject", subject)
	}
	if c.s.deps.Social == nil {
		return fail(reasonSocialOff), nil
	}
	a, err := c.s.deps.Social.Unlink(shard.DigestSession(c.str("session_token")), shard.UserID(uid), provider, subject)
	if err != nil {
		return result{}, err
	}
	switch a.Refusal {
	case "":
		return success("Identity unlinked.").with("user_id", uid).with("provider", provider).with("subject", subject), nil
	case actors.RefusedNoSession:
		return fail("session does not exist or does not belong to user_id"), nil
	case actors.RefusedNotLinked:
		return fail("that identity is not linked to this user"), nil
	case actors.RefusedLastLogin:
		return fail("the user has no password and no other identity: unlinking would leave no way to log in"), nil
	case actors.RefusedRaced:
		return fail(reasonSocialRaced), nil
	}
	return fail("user does not exist"), nil
}
