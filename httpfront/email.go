package httpfront

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	netmail "net/mail"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/mail"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// Email requests (docs/email.md, "Requests"): the server sends sign-up
// verification and forgotten-password mail through the mailer, with a
// single-use code, and records verification. Protocol choices are in
// docs/email.md.

// MailOptions configure the email requests.
type MailOptions struct {
	// SMTP are the default delivery settings; requests may override host,
	// port, user and password (docs/email.md, "Requests").
	SMTP mail.SMTPSettings
	// Sender is the default From address.
	Sender string
	// TokenKey signs the codes the server mints. Derive it from the
	// server's secret so codes survive a restart; nil means a random key
	// per start.
	TokenKey []byte
}

type mailExt struct {
	opts MailOptions
	// flows are the core's email flows, over the server's Accounts.
	flows *actors.Emails
}

// initMail takes the mail options, with a random code key if none is set,
// and sets up the email flows; it runs once Deps.Accounts is set.
func (s *Server) initMail() error {
	s.ext.mail.opts = s.opts.Mail
	if len(s.ext.mail.opts.TokenKey) == 0 {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return fmt.Errorf("httpfront: mail token key: %w", err)
		}
		s.ext.mail.opts.TokenKey = k
	}
	var m actors.Mailer
	if s.deps.Mailer != nil { // a nil *mail.Mailer must stay a nil Mailer
		m = s.deps.Mailer
	}
	s.ext.mail.flows = actors.NewEmails(s.deps.Accounts, m, s.ext.mail.opts.TokenKey)
	return nil
}

// legacy maps the pre-2020 parameter names (docs/protocol.md, "Legacy names")
// onto the current ones and runs h.
func legacy(h handler) handler {
	renames := [][2]string{
		{"fernet_verification_token", "verification_token"},
		{"smtp_user", "emailuser"}, {"smtp_pass", "emailpass"}, {"smtp_server", "emailserver"},
		{"smtp_sender", "emailsender"}, {"smtp_port", "emailport"},
	}
	return func(c *call) (result, error) {
		body := make(map[string]json.RawMessage, len(c.body)+2)
		for k, v := range c.body {
			body[k] = v
		}
		for _, r := range renames {
			if v, ok := body[r[0]]; ok {
				if _, has := body[r[1]]; !has {
					body[r[1]] = v
				}
				delete(body, r[0])
			}
		}
		if _, ok := body["verification_expiry"]; !ok {
			body["verification_expiry"] = json.RawMessage("900") // tokens.py's default TTL
		}
		c2 := *c
		c2.body = body
		return h(&c2)
	}
}

// readMailRequest reads the SMTP overrides, the sender, the lifetime, the
// frontend's code and what the mail quotes of the request. It returns a
// failure reason when the settings are missing ("settings") or a field
// could inject a header or a body line ("control").
func readMailRequest(c *call, fields ...string) (actors.MailRequest, string) {
	o := c.s.ext.mail.opts
	r := actors.MailRequest{SMTP: o.SMTP, From: o.Sender, At: c.now}
	if c.has("emailserver") {
		r.SMTP.Host = c.str("emailserver")
	}
	if n, ok := c.int("emailport"); ok {
		r.SMTP.Port = int(n)
	}
	if c.has("emailuser") {
		r.SMTP.User = c.str("emailuser")
	}
	if c.has("emailpass") {
		r.SMTP.Pass = c.str("emailpass")
	}
	if c.has("emailsender") {
		r.From = c.str("emailsender")
	}
	if r.SMTP.Host == "" || r.From == "" || r.SMTP.Port <= 0 || r.SMTP.Port > 65535 {
		return r, "settings"
	}
	r.Code = normalizeCode(c.str("verification_token"))
	for _, f := range append(fields, "email_address", "server_name", "server_baseurl", "emailsender", "emailserver") {
		if mail.HasControl(c.str(f)) {
			return r, "control"
		}
	}
	if len(r.Code) > actors.MaxCodeBytes || mail.HasControl(r.SMTP.User) {
		return r, "control"
	}
	if _, err := netmail.ParseAddress(r.From); err != nil || mail.HasControl(r.From) {
		return r, "control"
	}
	secs, _ := c.int("verification_expiry")
	r.Lifetime = min(max(time.Duration(secs)*time.Second, time.Second), maxTokenLifetime)
	r.ServerName, r.ServerBaseURL = c.str("server_name"), c.str("server_baseurl")
	r.Session = shard.DigestSession(c.str("session_token"))
	return r, ""
}

// handleSendEmailSignup sends the sign-up verification mail (docs/email.md,
// "Requests").
func handleSendEmailSignup(c *call) (result, error) {
	email := c.str("email_address")
	var info struct {
		UserID           *int64 `json:"user_id"`
		SendVerification bool   `json:"send_verification"`
	}
	_ = json.Unmarshal(c.raw("created_info"), &info)
	var uid any
	if info.UserID != nil {
		uid = *info.UserID
	}
	fail := func(reason, msg string) result {
		return failure(reason, msg).with("user_id", uid).with("email_address", email).with("emailverify_sent_datetime", nil)
	}
	const invalid = "Invalid verify email request."
	r, bad := readMailRequest(c, "account_verify_url", "server_verify_url")
	switch bad {
	case "settings":
		return fail("invalid request: missing 'emailsender', 'emailserver', or 'emailport' in request", "Invalid email server settings provided. Can't send an email."), nil
	case "control":
		return fail("invalid request: control characters in email fields", invalid), nil
	}
	r.VerifyURL = c.str("account_verify_url")
	if !c.has("account_verify_url") {
		r.VerifyURL = c.str("server_verify_url")
	}
	if !info.SendVerification {
		return fail("not allowed to send verification email to target user, send_verification = False", "Not allowed to send an email verification request."), nil
	}
	if info.UserID == nil {
		return fail("target user for verification email does not exist", invalid), nil
	}
	a, err := c.s.ext.mail.flows.SendSignupCode(email, shard.UserID(*info.UserID), r)
	if err != nil {
		return result{}, err
	}
	switch a.Refusal {
	case "":
	case actors.RefusedVerified:
		return fail("target user for verification email already active and verified", "Not sending an verify email request to an existing user."), nil
	case actors.RefusedNoSession:
		return fail("invalid session for requesting a verification email", invalid), nil
	case actors.RefusedInFlight:
		return fail("verification email already being sent", "Could not send email for the verify email request."), nil
	case actors.RefusedMailFailed:
		return fail("verification email could not be sent because of an email server problem", "Could not send email for the verify email request."), nil
	default: // RefusedNoUser
		return fail("target user for verification email does not exist", invalid), nil
	}
	sent := any(nil)
	if !a.User.EmailVerifySent.IsZero() {
		sent = wire.FormatTime(a.User.EmailVerifySent)
	}
	return success("Verify email sent successfully.").with("user_id", int64(a.User.ID)).with("email_address", email).with("emailverify_sent_datetime", sent), nil
}

// handleSendEmailForgotPass sends the password reset mail (docs/email.md,
// "Requests").
func handleSendEmailForgotPass(c *call) (result, error) {
	email := c.str("email_address")
	fail := func(reason, msg string) result {
		return failure(reason, msg).with("user_id", nil).with("email_address", email).with("emailforgotpass_sent_datetime", nil)
	}
	const invalid = "Invalid password reset email request."
	r, bad := readMailRequest(c, "password_forgot_url")
	switch bad {
	case "settings":
		return fail("missing 'emailserver', 'emailsender', 'emailport' in request", "Invalid email server settings provided. Can't send an email."), nil
	case "control":
		return fail("invalid request: control characters in email fields", invalid), nil
	}
	r.VerifyURL = c.str("password_forgot_url")
	a, err := c.s.ext.mail.flows.SendForgotPassCode(email, r)
	if err != nil {
		return result{}, err
	}
	recipients := "['" + a.User.Email + "']" // the reference's Python list repr
	switch a.Refusal {
	case "":
	case actors.RefusedTooSoon, actors.RefusedInFlight: // in flight: a mail is on its way right now
		return fail("forgot-pass verification email sent less than 24 hours ago", invalid), nil
	case actors.RefusedNoSession:
		return fail("invalid session for forgot-pass request", "Invalid verification email request."), nil
	case actors.RefusedMailFailed:
		return fail("forgot-pass verification email could not be sent because email server issue",
			"Could not send email to "+recipients+" for the user password reset request."), nil
	default: // RefusedNoUser
		return fail("invalid user for forgot-pass email request", invalid), nil
	}
	return success("Password reset request sent successfully to "+recipients).
		with("user_id", int64(a.User.ID)).with("email_address", email).
		with("emailforgotpass_sent_datetime", wire.FormatTime(a.User.EmailForgotPassSent)), nil
}

// handleSetEmailVerified marks a sign-up verified and activates the user
// (docs/email.md, "Requests"). With verification_token, the mailed sign-up
// code must be valid and is used up in the same step.
func handleSetEmailVerified(c *call) (result, error) {
	fail := func(reason string) result {
		return failure(reason, "Email verification toggle request failed.").
			with("user_id", nil).with("is_active", false).with("user_role", "locked")
	}
	a, err := c.s.ext.mail.flows.SetEmailVerified(c.str("email"), normalizeCode(c.str("verification_token")), c.has("verification_token"), c.now)
	if err != nil {
		return result{}, err
	}
	if !a.OK() {
		if reason := codeFailure(a.Refusal); reason != "" {
			return fail(reason), nil
		}
		return fail("could not find user in DB by email"), nil // RefusedNoUser
	}
	return success("Email verification toggle request succeeded.").
		with("user_id", int64(a.User.ID)).with("is_active", a.User.IsActive).with("user_role", a.User.Role), nil
}

// handleSetEmailSent records that a mail was sent by the frontend itself
// (docs/email.md, "Requests").
func handleSetEmailSent(c *call) (result, error) {
	email := c.str("email")
	emailType := c.str("email_type")
	fail := func(reason, msg string) result {
		return failure(reason, msg).with("email", email).with("emailverify_sent_datetime", nil).
			with("emailforgotpass_sent_datetime", nil).with("user_id", nil).with("is_active", nil).with("user_role", nil)
	}
	if emailType != purposeSignup && emailType != purposeForgotPass {
		return fail("invalid request: invalid email_type requested", "Invalid email sent notification request."), nil
	}
	a, err := c.s.ext.mail.flows.NoteEmailSent(email, emailType, c.now)
	if err != nil {
		return result{}, err
	}
	if !a.OK() { // RefusedNoUser
		return fail("could not update the email sent status in DB", "Email sent notification request failed."), nil
	}
	st := a.User
	return success("Email sent notification request succeeded.").
		with("email", email).
		with("emailverify_sent_datetime", rawJSON(wire.AppendTime(nil, st.EmailVerifySent))).
		with("emailforgotpass_sent_datetime", rawJSON(wire.AppendTime(nil, st.EmailForgotPassSent))).
		with("user_id", int64(st.ID)).with("is_active", st.IsActive).with("user_role", st.Role), nil
}

// handleVerifyEmailToken checks a mailed code server-side and uses it up (an
// extension, docs/email.md, "Requests"): for a frontend that lets the user
// enter the code on one page and acts on it with a later request.
func handleVerifyEmailToken(c *call) (result, error) {
	email := c.str("email")
	purpose := c.str("purpose")
	fail := func(reason string) result {
		return failure(reason, "The verification code is not valid.").with("user_id", nil).with("email", email)
	}
	if purpose != purposeSignup && purpose != purposeForgotPass {
		return fail("invalid request: purpose must be 'signup' or 'forgotpass'"), nil
	}
	a, err := c.s.ext.mail.flows.UseCode(email, purpose, normalizeCode(c.str("verification_token")), c.now)
	if err != nil {
		return result{}, err
	}
	if !a.OK() {
		return fail(codeFailure(a.Refusal)), nil
	}
	return success("Verification code accepted.").with("user_id", int64(a.User.ID)).with("email", email), nil
}
