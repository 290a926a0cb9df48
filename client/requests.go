package client

import "context"

// RequestTypes lists every current request type the server answers, sorted.
// Each has a method of [Client] below, named after it.
var RequestTypes = []string{
	"apikey-new", "apikey-new-nosession", "apikey-refresh-nosession",
	"apikey-revoke", "apikey-revoke-nosession", "apikey-revokeall-nosession",
	"apikey-verify", "apikey-verify-nosession",
	"internal-session-edit", "internal-user-delete", "internal-user-edit", "internal-user-lock",
	"session-delete", "session-delete-userid", "session-exists", "session-new",
	"user-changepass", "user-changepass-nosession", "user-check-access", "user-check-limit",
	"user-delete", "user-edit", "user-list", "user-lock", "user-login", "user-logout",
	"user-lookup-email", "user-lookup-match", "user-new",
	"user-passcheck", "user-passcheck-nosession", "user-resetpass", "user-resetpass-nosession",
	"user-sendemail-forgotpass", "user-sendemail-signup", "user-set-emailsent", "user-set-emailverified",
	"user-social-finish", "user-social-list", "user-social-start", "user-social-unlink",
	"user-validatepass", "user-verify-emailtoken",
}

// LegacyRequestTypes lists the request types of the 2019–early 2020
// protocol that the server still answers (docs/protocol.md, "Legacy
// names"), sorted. They have no methods: send them with [Client.Request].
var LegacyRequestTypes = []string{
	"session-setinfo",
	"user-forgotpass-email", "user-forgotpass-sendemail",
	"user-signup-email", "user-signup-sendemail",
	"user-verify-email", "user-verify-emailaddr",
}

// Body is a request's parameters. Put the end user's address in
// "client_ipaddr" (the server needs it while rate limiting is on).
type Body = map[string]any

// One method per request type of RequestTypes, as the Python APIClient has;
// each sends body as that request. Keep the methods, RequestTypes and the
// server's table of request types (httpfront/requests.go) in step: tests
// on both sides compare them.

// APIKeyNew sends a apikey-new request.
func (c *Client) APIKeyNew(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-new", body)
}

// APIKeyNewNoSession sends a apikey-new-nosession request.
func (c *Client) APIKeyNewNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-new-nosession", body)
}

// APIKeyRefreshNoSession sends a apikey-refresh-nosession request.
func (c *Client) APIKeyRefreshNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-refresh-nosession", body)
}

// APIKeyRevoke sends a apikey-revoke request.
func (c *Client) APIKeyRevoke(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-revoke", body)
}

// APIKeyRevokeNoSession sends a apikey-revoke-nosession request.
func (c *Client) APIKeyRevokeNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-revoke-nosession", body)
}

// APIKeyRevokeAllNoSession sends a apikey-revokeall-nosession request.
func (c *Client) APIKeyRevokeAllNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-revokeall-nosession", body)
}

// APIKeyVerify sends a apikey-verify request.
func (c *Client) APIKeyVerify(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-verify", body)
}

// APIKeyVerifyNoSession sends a apikey-verify-nosession request.
func (c *Client) APIKeyVerifyNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "apikey-verify-nosession", body)
}

// InternalSessionEdit sends a internal-session-edit request.
func (c *Client) InternalSessionEdit(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "internal-session-edit", body)
}

// InternalUserDelete sends a internal-user-delete request.
func (c *Client) InternalUserDelete(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "internal-user-delete", body)
}

// InternalUserEdit sends a internal-user-edit request.
func (c *Client) InternalUserEdit(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "internal-user-edit", body)
}

// InternalUserLock sends a internal-user-lock request.
func (c *Client) InternalUserLock(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "internal-user-lock", body)
}

// SessionDelete sends a session-delete request.
func (c *Client) SessionDelete(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "session-delete", body)
}

// SessionDeleteUserID sends a session-delete-userid request.
func (c *Client) SessionDeleteUserID(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "session-delete-userid", body)
}

// SessionExists sends a session-exists request.
func (c *Client) SessionExists(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "session-exists", body)
}

// SessionNew sends a session-new request.
func (c *Client) SessionNew(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "session-new", body)
}

// UserChangepass sends a user-changepass request.
func (c *Client) UserChangepass(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-changepass", body)
}

// UserChangepassNoSession sends a user-changepass-nosession request.
func (c *Client) UserChangepassNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-changepass-nosession", body)
}

// UserCheckAccess sends a user-check-access request.
func (c *Client) UserCheckAccess(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-check-access", body)
}

// UserCheckLimit sends a user-check-limit request.
func (c *Client) UserCheckLimit(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-check-limit", body)
}

// UserDelete sends a user-delete request.
func (c *Client) UserDelete(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-delete", body)
}

// UserEdit sends a user-edit request.
func (c *Client) UserEdit(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-edit", body)
}

// UserList sends a user-list request.
func (c *Client) UserList(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-list", body)
}

// UserLock sends a user-lock request.
func (c *Client) UserLock(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-lock", body)
}

// UserLogin sends a user-login request.
func (c *Client) UserLogin(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-login", body)
}

// UserLogout sends a user-logout request.
func (c *Client) UserLogout(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-logout", body)
}

// UserLookupEmail sends a user-lookup-email request.
func (c *Client) UserLookupEmail(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-lookup-email", body)
}

// UserLookupMatch sends a user-lookup-match request.
func (c *Client) UserLookupMatch(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-lookup-match", body)
}

// UserNew sends a user-new request.
func (c *Client) UserNew(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-new", body)
}

// UserPasscheck sends a user-passcheck request.
func (c *Client) UserPasscheck(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-passcheck", body)
}

// UserPasscheckNoSession sends a user-passcheck-nosession request.
func (c *Client) UserPasscheckNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-passcheck-nosession", body)
}

// UserResetpass sends a user-resetpass request.
func (c *Client) UserResetpass(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-resetpass", body)
}

// UserResetpassNoSession sends a user-resetpass-nosession request.
func (c *Client) UserResetpassNoSession(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-resetpass-nosession", body)
}

// UserSendEmailForgotpass sends a user-sendemail-forgotpass request.
func (c *Client) UserSendEmailForgotpass(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-sendemail-forgotpass", body)
}

// UserSendEmailSignup sends a user-sendemail-signup request.
func (c *Client) UserSendEmailSignup(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-sendemail-signup", body)
}

// UserSetEmailSent sends a user-set-emailsent request.
func (c *Client) UserSetEmailSent(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-set-emailsent", body)
}

// UserSetEmailVerified sends a user-set-emailverified request.
func (c *Client) UserSetEmailVerified(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-set-emailverified", body)
}

// UserValidatepass sends a user-validatepass request.
func (c *Client) UserValidatepass(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-validatepass", body)
}

// UserVerifyEmailToken sends a user-verify-emailtoken request.
func (c *Client) UserVerifyEmailToken(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-verify-emailtoken", body)
}

// UserSocialStart sends a user-social-start request.
func (c *Client) UserSocialStart(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-social-start", body)
}

// UserSocialFinish sends a user-social-finish request.
func (c *Client) UserSocialFinish(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-social-finish", body)
}

// UserSocialList sends a user-social-list request.
func (c *Client) UserSocialList(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-social-list", body)
}

// UserSocialUnlink sends a user-social-unlink request.
func (c *Client) UserSocialUnlink(ctx context.Context, body Body) (*Response, error) {
	return c.Request(ctx, "user-social-unlink", body)
}
