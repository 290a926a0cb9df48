package httpfront

import (
	"strings"

	"github.com/authnzerver/authnzerver/shard"
)

// This file is the one list of request types. Each row of requestTable says
// everything the pipeline needs to know about a type, and every other index
// (endpoints, the admission checks, the rate-limit rules, the metrics
// labels) is derived from it, so each fact is written once. The protocol
// of every type is in docs/protocol.md, "Request types"; the rate-limit
// columns follow its "Rate limits" section.
//
// client.RequestTypes and client.LegacyRequestTypes list the same names for
// the Go client; TestClientRequestTypes keeps the two in step.

// endpoint is one request type: one row of requestTable.
type endpoint struct {
	// name is the request type as the current protocol spells it.
	name string
	// aliases are older names answered exactly as name: same schema, same
	// handler, same rate-limit buckets (docs/protocol.md, "Legacy names").
	aliases []string
	// legacy is true for a type of the 2019–early 2020 protocol that has a
	// row of its own because its body differs from the current type's.
	legacy bool
	// params is the schema the body is validated against before handle runs.
	params []param
	// handle answers a request whose body passed validation.
	handle handler

	// readOnly is true for a type that changes no durable state; it is
	// answered from memory while the store refuses writes. A type that is
	// not marked counts as a write, the safe default.
	readOnly bool
	// hashes is true for a type whose handler may run Argon2 in the hasher
	// pool: admission refuses it while the pool is full or its source holds
	// its fair share (docs/design.md, "Overload"). A new type that hashes or
	// verifies a password or token must say so, or it escapes the share.
	hashes bool

	// group is the rate-limit group whose per-minute limit applies when the
	// type has no limit of its own. It is the group of the name's prefix,
	// as for types the server does not know.
	group rateGroup
	// perMinute is the type's built-in limit: perMinute requests a minute,
	// and as many at once. 0 means none: burst, then the group's limit.
	perMinute int64
	// emailTied is true for a type limited per email as well as per client
	// address. It holds for exactly the names that contain "email", the
	// rule the Python server applies to every name.
	emailTied bool
	// rateAs, for a legacy type with its own schema, is the current type
	// whose limits and buckets it shares, so that switching names gets a
	// client no more requests (or mail). "" means the type's own.
	rateAs string
}

// handler answers one request type. It returns the answer to seal, or an
// error when the request cannot be answered with an envelope (the core
// timed out or stopped, the store refuses writes, the hasher or mailer is
// busy or failed); the pipeline turns that error into its status answer,
// with statusOf, in one place. A failure the protocol defines (a wrong
// password, an unknown user) is a result, not an error.
type handler func(c *call) (result, error)

// rateGroup is a group limit of AUTHNZERVER_RATELIMITS.
type rateGroup uint8

const (
	otherGroup    rateGroup = iota // "ipaddr": any other prefix
	userGroup                      // "user": user-…
	sessionGroup                   // "session": session-…
	apikeyGroup                    // "apikey": apikey-…
	internalGroup                  // internal-…: a fixed internalPerMinute
)

// Parameter lists that several request types share.
var (
	paramsKeyDict = []param{arg("apikey_dict", tDict), arg("user_id", tInt), arg("user_role", tStr)}
	paramsPage    = []param{kwarg("page_after", tInt), kwarg("page_size", tInt)}
	paramsSMTP    = []param{
		kwarg("emailuser", tStr, tNone), kwarg("emailpass", tStr, tNone),
		kwarg("emailserver", tStr), kwarg("emailsender", tStr), kwarg("emailport", tInt),
	}
	// paramsLegacySMTP are the SMTP kwargs of the pre-2020 send-mail
	// types: their old names and the current ones, and the expiry they
	// lacked (it defaults).
	paramsLegacySMTP = []param{
		kwarg("smtp_user", tStr, tNone), kwarg("smtp_pass", tStr, tNone),
		kwarg("smtp_server", tStr), kwarg("smtp_sender", tStr), kwarg("smtp_port", tInt),
		kwarg("emailuser", tStr, tNone), kwarg("emailpass", tStr, tNone),
		kwarg("emailserver", tStr), kwarg("emailsender", tStr), kwarg("emailport", tInt),
		kwarg("verification_expiry", tInt),
	}
)

// requestTable lists every request type the server answers, in the order
// of docs/protocol.md, "Request types".
var requestTable = []endpoint{
	// Sessions (sessions.go).
	{name: "session-new", group: sessionGroup, handle: handleSessionNew, params: []param{
		arg("ip_address", tStr), arg("user_agent", tStr), arg("user_id", tInt, tNone),
		arg("expires", tStr), arg("extra_info_json", tDict, tNone),
	}},
	{name: "session-exists", group: sessionGroup, readOnly: true, handle: handleSessionExists, params: []param{
		arg("session_token", tStr),
	}},
	{name: "session-delete", group: sessionGroup, handle: handleSessionDelete, params: []param{
		arg("session_token", tStr),
	}},
	{name: "session-delete-userid", group: sessionGroup, handle: handleSessionDeleteUserID, params: []param{
		arg("session_token", tStr), arg("user_id", tInt), arg("keep_current_session", tBool),
	}},
	{name: "internal-session-edit", group: internalGroup, handle: handleInternalSessionEdit, params: []param{
		arg("target_session_token", tStr), arg("update_dict", tDict),
	}},

	// Logins and password checks (users_login.go).
	{name: "user-login", group: userGroup, perMinute: 10, hashes: true, handle: handleUserLogin, params: []param{
		arg("session_token", tStr), arg("email", tStr), arg("password", tStr),
	}},
	{name: "user-logout", group: userGroup, perMinute: 10, handle: handleUserLogout, params: []param{
		arg("session_token", tStr), arg("user_id", tInt),
	}},
	{name: "user-passcheck", group: userGroup, perMinute: 10, hashes: true, handle: handleUserPasscheck, params: []param{
		arg("session_token", tStr), arg("password", tStr),
	}},
	{name: "user-passcheck-nosession", group: userGroup, perMinute: 10, hashes: true, handle: handleUserPasscheckNoSession, params: []param{
		arg("email", tStr), arg("password", tStr),
	}},

	// Social logins (users_social.go; docs/social.md).
	{name: "user-social-start", group: userGroup, perMinute: 10, handle: handleUserSocialStart, params: []param{
		arg("provider", tStr), arg("redirect_uri", tStr), arg("session_token", tStr),
	}},
	{name: "user-social-finish", group: userGroup, perMinute: 10, handle: handleUserSocialFinish, params: []param{
		arg("provider", tStr), arg("code", tStr), arg("state", tStr), arg("session_token", tStr), arg("redirect_uri", tStr),
	}},
	{name: "user-social-list", group: userGroup, readOnly: true, handle: handleUserSocialList, params: []param{
		arg("session_token", tStr), arg("user_id", tInt),
	}},
	{name: "user-social-unlink", group: userGroup, perMinute: 10, handle: handleUserSocialUnlink, params: []param{
		arg("session_token", tStr), arg("user_id", tInt), arg("provider", tStr), arg("subject", tStr),
	}},

	// Users (users_signup.go, users_account.go, users_admin.go,
	// users_edit.go).
	{name: "user-new", group: userGroup, perMinute: 5, hashes: true, handle: handleUserNew, params: []param{
		arg("full_name", tStr), arg("email", tStr), arg("password", tStr),
		kwarg("extra_info", tDict, tNone), kwarg("verify_retry_wait", tInt, tNone), kwarg("system_id", tStr, tNone),
	}},
	{name: "user-changepass", group: userGroup, perMinute: 5, hashes: true, handle: handleUserChangepass, params: []param{
		arg("user_id", tInt), arg("session_token", tStr), arg("full_name", tStr), arg("email", tStr),
		arg("current_password", tStr), arg("new_password", tStr),
	}},
	{name: "user-changepass-nosession", group: userGroup, perMinute: 5, hashes: true, handle: handleUserChangepass, params: []param{
		arg("user_id", tInt), arg("full_name", tStr), arg("email", tStr),
		arg("current_password", tStr), arg("new_password", tStr),
	}},
	// verification_token (an extension) of the resets: the code of a
	// forgot-password mail, checked and used up in the same step as the new
	// password is stored.
	{name: "user-resetpass", group: userGroup, perMinute: 5, hashes: true, handle: handleUserResetpass, params: []param{
		arg("email_address", tStr), arg("new_password", tStr), arg("session_token", tStr),
		kwarg("verification_token", tStr, tNone),
	}},
	{name: "user-resetpass-nosession", group: userGroup, perMinute: 5, hashes: true, handle: handleUserResetpass, params: []param{
		arg("email_address", tStr), arg("new_password", tStr), arg("required_active", tBool),
		kwarg("verification_token", tStr, tNone),
	}},
	{name: "user-delete", group: userGroup, perMinute: 5, hashes: true, handle: handleUserDelete, params: []param{
		arg("email", tStr), arg("user_id", tInt), arg("password", tStr),
	}},
	{name: "user-validatepass", group: userGroup, readOnly: true, handle: handleUserValidatepass, params: []param{
		arg("password", tStr), arg("email", tStr), arg("full_name", tStr),
		kwarg("min_pass_length", tInt), kwarg("max_unsafe_similarity", tInt),
		kwarg("max_character_frequency", tFloat), kwarg("min_pwned_matches", tInt),
	}},
	{name: "user-list", group: userGroup, readOnly: true, handle: handleUserList, params: append([]param{
		arg("user_id", tInt, tNone),
	}, paramsPage...)},
	{name: "user-lookup-email", group: userGroup, readOnly: true, emailTied: true, handle: handleUserLookupEmail, params: []param{
		arg("email", tStr),
	}},
	{name: "user-lookup-match", group: userGroup, readOnly: true, handle: handleUserLookupMatch, params: append([]param{
		arg("by", tStr), arg("match", tAny),
	}, paramsPage...)},
	{name: "user-edit", group: userGroup, perMinute: 10, handle: handleUserEdit, params: []param{
		arg("user_id", tInt), arg("user_role", tStr), arg("session_token", tStr),
		arg("target_userid", tInt), arg("update_dict", tDict),
	}},
	{name: "user-lock", group: userGroup, handle: handleUserLock, params: []param{
		arg("user_id", tInt), arg("user_role", tStr), arg("session_token", tStr),
		arg("target_userid", tInt), arg("action", tStr),
	}},
	{name: "internal-user-lock", group: internalGroup, handle: handleInternalUserLock, params: []param{
		arg("target_userid", tInt), arg("action", tStr),
	}},
	{name: "internal-user-delete", group: internalGroup, handle: handleInternalUserDelete, params: []param{
		arg("target_userid", tInt),
	}},
	{name: "internal-user-edit", group: internalGroup, handle: handleInternalUserEdit, params: []param{
		arg("target_userid", tInt), arg("update_dict", tDict),
	}},

	// Email (email.go; docs/email.md).
	{name: "user-sendemail-signup", group: userGroup, perMinute: 2, emailTied: true, handle: handleSendEmailSignup, params: append([]param{
		arg("email_address", tStr), arg("session_token", tStr), arg("created_info", tDict),
		arg("server_name", tStr), arg("server_baseurl", tStr),
		kwarg("account_verify_url", tStr), kwarg("server_verify_url", tStr),
		kwarg("verification_token", tStr, tNone), arg("verification_expiry", tInt),
	}, paramsSMTP...)},
	{name: "user-sendemail-forgotpass", group: userGroup, perMinute: 2, emailTied: true, handle: handleSendEmailForgotPass, params: append([]param{
		arg("email_address", tStr), arg("session_token", tStr),
		arg("server_name", tStr), arg("server_baseurl", tStr), arg("password_forgot_url", tStr),
		kwarg("verification_token", tStr, tNone), arg("verification_expiry", tInt),
	}, paramsSMTP...)},
	{name: "user-set-emailverified", aliases: []string{"user-verify-email", "user-verify-emailaddr"}, group: userGroup, emailTied: true, handle: handleSetEmailVerified, params: []param{
		arg("email", tStr), kwarg("verification_token", tStr, tNone),
	}},
	{name: "user-set-emailsent", group: userGroup, perMinute: 2, emailTied: true, handle: handleSetEmailSent, params: []param{
		arg("email", tStr), arg("email_type", tStr),
	}},
	{name: "user-verify-emailtoken", group: userGroup, perMinute: 5, emailTied: true, handle: handleVerifyEmailToken, params: []param{
		arg("email", tStr), arg("verification_token", tStr), arg("purpose", tStr),
	}},

	// API keys (apikeys.go).
	{name: "apikey-new", group: apikeyGroup, perMinute: 30, handle: handleAPIKeyNew, params: []param{
		arg("issuer", tStr), arg("audience", tStr), arg("subject", tStr), arg("apiversion", tStr, tInt),
		arg("expires_days", tInt), arg("not_valid_before", tFloat, tInt), arg("user_id", tInt),
		arg("user_role", tStr), arg("ip_address", tStr), arg("user_agent", tStr), arg("session_token", tStr),
	}},
	{name: "apikey-verify", group: apikeyGroup, readOnly: true, handle: apiKeyVerify(shard.KeySession), params: paramsKeyDict},
	{name: "apikey-revoke", group: apikeyGroup, handle: apiKeyRevoke(shard.KeySession), params: paramsKeyDict},
	{name: "apikey-new-nosession", group: apikeyGroup, perMinute: 30, hashes: true, handle: handleAPIKeyNewNoSession, params: []param{
		arg("issuer", tStr), arg("audience", tStr), arg("subject", tStr), arg("apiversion", tStr, tInt),
		arg("expires_seconds", tInt), arg("not_valid_before", tFloat, tInt), arg("user_id", tInt),
		arg("user_role", tStr), arg("ip_address", tStr), arg("refresh_expires", tInt), arg("refresh_nbf", tFloat, tInt),
	}},
	{name: "apikey-verify-nosession", group: apikeyGroup, readOnly: true, handle: apiKeyVerify(shard.KeyNoSession), params: paramsKeyDict},
	{name: "apikey-revoke-nosession", group: apikeyGroup, handle: apiKeyRevoke(shard.KeyNoSession), params: paramsKeyDict},
	{name: "apikey-revokeall-nosession", group: apikeyGroup, handle: handleAPIKeyRevokeAll, params: paramsKeyDict},
	{name: "apikey-refresh-nosession", group: apikeyGroup, perMinute: 30, hashes: true, handle: handleAPIKeyRefresh, params: []param{
		arg("apikey_dict", tDict), arg("user_id", tInt), arg("user_role", tStr), arg("refresh_token", tStr),
		arg("ip_address", tStr), arg("expires_seconds", tInt), arg("not_valid_before", tInt, tFloat),
		arg("refresh_expires", tInt), arg("refresh_nbf", tInt, tFloat),
	}},

	// Access and limit checks (access.go).
	{name: "user-check-access", group: userGroup, readOnly: true, handle: handleCheckAccess, params: []param{
		arg("user_id", tInt), arg("user_role", tStr), arg("action", tStr),
		arg("target_name", tStr), arg("target_owner", tInt),
		arg("target_visibility", tStr), arg("target_sharedwith", tStr),
	}},
	{name: "user-check-limit", group: userGroup, readOnly: true, handle: handleCheckLimit, params: []param{
		arg("user_id", tInt), arg("user_role", tStr), arg("limit_name", tStr),
		arg("value_to_check", tAny),
	}},

	// Legacy types whose bodies differ from the current type's
	// (legacy.go, email.go). Names that only changed are aliases above.
	{name: "session-setinfo", legacy: true, group: sessionGroup, handle: handleSessionSetInfo, params: []param{
		arg("session_token", tStr), arg("extra_info", tDict, tNone),
	}},
	{name: "user-signup-email", aliases: []string{"user-signup-sendemail"}, legacy: true, group: userGroup, emailTied: true, rateAs: "user-sendemail-signup",
		handle: legacy(handleSendEmailSignup), params: append([]param{
			arg("email_address", tStr), arg("session_token", tStr), arg("created_info", tDict),
			arg("server_name", tStr), arg("server_baseurl", tStr),
			kwarg("account_verify_url", tStr), kwarg("fernet_verification_token", tStr, tNone),
			kwarg("verification_token", tStr, tNone),
		}, paramsLegacySMTP...)},
	{name: "user-forgotpass-email", aliases: []string{"user-forgotpass-sendemail"}, legacy: true, group: userGroup, emailTied: true, rateAs: "user-sendemail-forgotpass",
		handle: legacy(handleSendEmailForgotPass), params: append([]param{
			arg("email_address", tStr), arg("session_token", tStr),
			arg("server_name", tStr), arg("server_baseurl", tStr),
			kwarg("password_forgot_url", tStr), kwarg("fernet_verification_token", tStr, tNone),
			kwarg("verification_token", tStr, tNone),
		}, paramsLegacySMTP...)},
}

// endpoints maps every request type and alias to its row of requestTable.
var endpoints = indexEndpoints(requestTable)

// indexEndpoints maps each row's name and aliases to the row. It panics on
// a name listed twice: a programmer error, found as the package loads.
func indexEndpoints(table []endpoint) map[string]*endpoint {
	m := make(map[string]*endpoint, len(table)+8)
	for i := range table {
		ep := &table[i]
		for _, n := range append([]string{ep.name}, ep.aliases...) {
			if _, dup := m[n]; dup {
				panic("httpfront: request type listed twice: " + n)
			}
			m[n] = ep
		}
	}
	return m
}

// groupOf is the rate-limit group of a request type's name prefix: the
// group of a type that has no row, and (a test checks) of every row.
func groupOf(name string) rateGroup {
	switch {
	case strings.HasPrefix(name, "user-"):
		return userGroup
	case strings.HasPrefix(name, "session-"):
		return sessionGroup
	case strings.HasPrefix(name, "apikey-"):
		return apikeyGroup
	case strings.HasPrefix(name, "internal-"):
		return internalGroup
	}
	return otherGroup
}
