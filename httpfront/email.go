package httpfront

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"sync"
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
	// inflight holds "purpose:user id" while a mail to that user is being
	// sent, so two concurrent requests cannot both pass the spacing check.
	inflight sync.Map
}

// initMail takes the mail options, with a random code key if none is set.
func (s *Server) initMail() error {
	s.ext.mail.opts = s.opts.Mail
	if len(s.ext.mail.opts.TokenKey) == 0 {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return fmt.Errorf("httpfront: mail token key: %w", err)
		}
		s.ext.mail.opts.TokenKey = k
	}
	return nil
}

// sanitizeLine makes text from a session (user agent, IP) safe for one line
// of a mail body.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
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

// mailRequest is what the two send requests share.
type mailRequest struct {
	smtp     mail.SMTPSettings
	sender   string
	lifetime time.Duration
	code     string // the frontend's, or "" to mint one
}

// readMailRequest reads the SMTP overrides, the sender and the lifetime.
// It returns a failure reason when the settings are missing ("settings")
// or a field could inject a header or a body line ("control").
func readMailRequest(c *call, fields ...string) (mailRequest, string) {
	o := c.s.ext.mail.opts
	r := mailRequest{smtp: o.SMTP, sender: o.Sender}
	if c.has("emailserver") {
		r.smtp.Host = c.str("emailserver")
	}
	if n, ok := c.int("emailport"); ok {
		r.smtp.Port = int(n)
	}
	if c.has("emailuser") {
		r.smtp.User = c.str("emailuser")
	}
	if c.has("emailpass") {
		r.smtp.Pass = c.str("emailpass")
	}
	if c.has("emailsender") {
		r.sender = c.str("emailsender")
	}
	if r.smtp.Host == "" || r.sender == "" || r.smtp.Port <= 0 || r.smtp.Port > 65535 {
		return r, "settings"
	}
	r.code = normalizeCode(c.str("verification_token"))
	for _, f := range append(fields, "email_address", "server_name", "server_baseurl", "emailsender", "emailserver") {
		if mail.HasControl(c.str(f)) {
			return r, "control"
		}
	}
	if len(r.code) > maxCodeBytes || mail.HasControl(r.smtp.User) {
		return r, "control"
	}
	if _, err := netmail.ParseAddress(r.sender); err != nil || mail.HasControl(r.sender) {
		return r, "control"
	}
	secs, _ := c.int("verification_expiry")
	r.lifetime = min(max(time.Duration(secs)*time.Second, time.Second), maxTokenLifetime)
	return r, ""
}

// claimInflight marks a mail to user id for purpose as being sent; false
// when one already is.
func (e *mailExt) claimInflight(purpose string, id shard.UserID) (release func(), ok bool) {
	k := fmt.Sprintf("%s:%d", purpose, id)
	if _, busy := e.inflight.LoadOrStore(k, struct{}{}); busy {
		return nil, false
	}
	return func() { e.inflight.Delete(k) }, true
}

// composeAndSend mints (or takes) the code, renders the template and sends
// the mail, waiting for the result. It returns the code as mailed.
func composeAndSend(c *call, r mailRequest, purpose string, u shard.User, sess shard.Session, verifyURL string) (string, error) {
	code := r.code
	if code == "" {
		var err error
		code, err = mintToken(c.s.ext.mail.opts.TokenKey, emailClaims{
			Purpose: purpose, UserID: u.ID, Email: u.Email,
			IssuedAt: c.now.Unix(), Expires: c.now.Add(r.lifetime).Unix(),
		})
		if err != nil {
			return "", err
		}
	}
	tmpl := "signup.txt"
	if purpose == purposeForgotPass {
		tmpl = "forgotpass.txt"
	}
	subject, body, err := mail.Render(tmpl, mail.Fields{
		ServerName:         c.str("server_name"),
		ServerBaseURL:      c.str("server_baseurl"),
		UserEmail:          u.Email,
		BrowserIdentifier:  sanitizeLine(strings.ReplaceAll(sess.UserAgent, "_", ".")),
		IPAddress:          sanitizeLine(sess.IPAddress),
		VerificationCode:   wrapCode(code),
		VerifyURL:          c.str("server_baseurl") + verifyURL,
		VerificationExpiry: wire.FormatTime(c.now.Add(r.lifetime)) + " (UTC time)",
	})
	if err != nil {
		return "", err
	}
	if c.s.deps.Mailer == nil {
		return "", &mail.MailError{Err: errors.New("no mailer configured")}
	}
	err = c.s.deps.Mailer.Send(mail.Mail{SMTP: r.smtp, From: r.sender, To: []string{u.Email}, Subject: subject, Body: body})
	return code, err
}

// logMailFailure logs why a mail was not sent, with the error text cleared
// of addresses (MailError.Cause), never the raw text, which can name the
// recipient.
func logMailFailure(c *call, what string, u *shard.User, err error) {
	class, attempts, cause := "timeout", 0, ""
	var me *mail.MailError
	if errors.As(err, &me) {
		class, attempts, cause = me.Class(), me.Attempts, me.Cause()
	}
	c.s.log.Warn(what+" mail not sent", "user", c.s.pii(u.Email), "class", class, "attempts", attempts, "cause", cause)
}

// mailSendError reports whether err is the mail server's fault (answered
// with the protocol's failure) rather than ours (answered with a status).
func mailSendError(err error) bool {
	var me *mail.MailError
	return errors.As(err, &me) || errors.Is(err, mail.ErrMailerTimeout)
}

// mailerError is the error a mailer failure is answered by: a full or
// stopped mailer is busy, anything else as statusOf maps it.
func mailerError(err error) error {
	if errors.Is(err, mail.ErrMailerBusy) || errors.Is(err, mail.ErrMailerStopped) {
		return errBusy
	}
	return err
}

// askEmailOp runs op, an email operation (actors/ops_email.go), and waits
// until its edit is durable.
func askEmailOp(s *Server, op actors.Op) (actors.EmailState, error) {
	res, err := actors.Ask[actors.EmailState](s.deps.Core, op)
	if err != nil {
		return actors.EmailState{}, err
	}
	if err := durable(res); err != nil {
		return actors.EmailState{}, err
	}
	return res.Value, nil
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
	verifyURL := c.str("account_verify_url")
	if !c.has("account_verify_url") {
		verifyURL = c.str("server_verify_url")
	}
	if !info.SendVerification {
		return fail("not allowed to send verification email to target user, send_verification = False", "Not allowed to send an email verification request."), nil
	}
	var u shard.User
	found := false
	if info.UserID != nil {
		var err error
		if u, found, err = userByEmail(c.s, email); err != nil {
			return result{}, err
		}
	}
	if !found || int64(u.ID) != *info.UserID {
		return fail("target user for verification email does not exist", invalid), nil
	}
	if u.IsActive || u.Role != "locked" {
		return fail("target user for verification email already active and verified", "Not sending an verify email request to an existing user."), nil
	}
	sess, ok, err := lookupSession(c.s, c.str("session_token"))
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail("invalid session for requesting a verification email", invalid), nil
	}
	release, ok := c.s.ext.mail.claimInflight(purposeSignup, u.ID)
	if !ok {
		return fail("verification email already being sent", "Could not send email for the verify email request."), nil
	}
	defer release()
	code, err := composeAndSend(c, r, purposeSignup, u, sess, verifyURL)
	if err != nil {
		if mailSendError(err) {
			logMailFailure(c, "sign-up verification", &u, err)
			return fail("verification email could not be sent because of an email server problem", "Could not send email for the verify email request."), nil
		}
		return result{}, mailerError(err)
	}
	tok := shard.EmailToken{Purpose: purposeSignup, Digest: codeDigest(code), Expires: c.now.Add(r.lifetime)}
	st, err := askEmailOp(c.s, actors.RecordEmailCode{ID: u.ID, Token: tok, At: c.now})
	if err != nil {
		if errors.Is(err, shard.ErrUserNotFound) {
			return fail("target user for verification email does not exist", invalid), nil
		}
		return result{}, err
	}
	sent := any(nil)
	if !st.EmailVerifySent.IsZero() {
		sent = wire.FormatTime(st.EmailVerifySent)
	}
	return success("Verify email sent successfully.").with("user_id", int64(st.ID)).with("email_address", email).with("emailverify_sent_datetime", sent), nil
}

// forgotPassSpacing is the least time between two forgotten-password mails
// to one user (docs/email.md, "Requests").
const forgotPassSpacing = 24 * time.Hour

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
	u, found, err := userByEmail(c.s, email)
	if err != nil {
		return result{}, err
	}
	if !found || !u.IsActive || u.Role == "locked" || u.Role == "anonymous" {
		return fail("invalid user for forgot-pass email request", invalid), nil
	}
	tooSoon := func(x *shard.User) bool {
		return !x.EmailForgotPassSent.IsZero() && c.now.Sub(x.EmailForgotPassSent) < forgotPassSpacing
	}
	const spacingReason = "forgot-pass verification email sent less than 24 hours ago"
	if tooSoon(&u) {
		return fail(spacingReason, invalid), nil
	}
	sess, ok, err := lookupSession(c.s, c.str("session_token"))
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail("invalid session for forgot-pass request", "Invalid verification email request."), nil
	}
	release, ok := c.s.ext.mail.claimInflight(purposeForgotPass, u.ID)
	if !ok {
		return fail(spacingReason, invalid), nil // a mail is on its way right now
	}
	defer release()
	recipients := "['" + u.Email + "']" // the reference's Python list repr
	code, err := composeAndSend(c, r, purposeForgotPass, u, sess, c.str("password_forgot_url"))
	if err != nil {
		if mailSendError(err) {
			logMailFailure(c, "password reset", &u, err)
			return fail("forgot-pass verification email could not be sent because email server issue",
				"Could not send email to "+recipients+" for the user password reset request."), nil
		}
		return result{}, mailerError(err)
	}
	tok := shard.EmailToken{Purpose: purposeForgotPass, Digest: codeDigest(code), Expires: c.now.Add(r.lifetime)}
	st, err := askEmailOp(c.s, actors.RecordEmailCode{ID: u.ID, Token: tok, At: c.now})
	if err != nil {
		if errors.Is(err, shard.ErrUserNotFound) {
			return fail("invalid user for forgot-pass email request", invalid), nil
		}
		return result{}, err
	}
	return success("Password reset request sent successfully to "+recipients).
		with("user_id", int64(st.ID)).with("email_address", email).
		with("emailforgotpass_sent_datetime", wire.FormatTime(st.EmailForgotPassSent)), nil
}

// handleSetEmailVerified marks a sign-up verified and activates the user
// (docs/email.md, "Requests"). With verification_token, the mailed sign-up
// code must be valid and is used up in the same step.
func handleSetEmailVerified(c *call) (result, error) {
	email := c.str("email")
	fail := func(reason string) result {
		return failure(reason, "Email verification toggle request failed.").
			with("user_id", nil).with("is_active", false).with("user_role", "locked")
	}
	key := c.s.ext.mail.opts.TokenKey
	code := normalizeCode(c.str("verification_token"))
	op := actors.VerifyEmail{WithCode: c.has("verification_token"), At: c.now}
	if op.WithCode {
		err := precheckCode(key, code, purposeSignup, email, c.now)
		if err == nil {
			op.Code, err = mailedCode(key, code, purposeSignup)
		}
		if reason := codeReason(err); reason != "" {
			return fail(reason), nil
		}
	}
	id, ok, err := lookupEmail(c.s, email)
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail("could not find user in DB by email"), nil
	}
	op.ID = id
	st, err := askEmailOp(c.s, op)
	switch {
	case errors.Is(err, errTokenExpired):
		return fail("verification token expired"), nil
	case errors.Is(err, errTokenInvalid):
		return fail("invalid verification token"), nil
	case errors.Is(err, shard.ErrUserNotFound):
		return fail("could not find user in DB by email"), nil
	case err != nil:
		return result{}, err
	}
	return success("Email verification toggle request succeeded.").
		with("user_id", int64(st.ID)).with("is_active", st.IsActive).with("user_role", st.Role), nil
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
	id, ok, err := lookupEmail(c.s, email)
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail("could not update the email sent status in DB", "Email sent notification request failed."), nil
	}
	st, err := askEmailOp(c.s, actors.MarkEmailSent{ID: id, Purpose: emailType, At: c.now})
	if errors.Is(err, shard.ErrUserNotFound) {
		return fail("could not update the email sent status in DB", "Email sent notification request failed."), nil
	}
	if err != nil {
		return result{}, err
	}
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
	key := c.s.ext.mail.opts.TokenKey
	code := normalizeCode(c.str("verification_token"))
	err := precheckCode(key, code, purpose, email, c.now)
	var mc shard.EmailCode
	if err == nil {
		mc, err = mailedCode(key, code, purpose)
	}
	if reason := codeReason(err); reason != "" {
		return fail(reason), nil
	}
	id, ok, err := lookupEmail(c.s, email)
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail("invalid verification token"), nil
	}
	st, err := askEmailOp(c.s, actors.UseEmailCode{ID: id, Code: mc, At: c.now})
	switch {
	case errors.Is(err, errTokenExpired):
		return fail("verification token expired"), nil
	case errors.Is(err, errTokenInvalid), errors.Is(err, shard.ErrUserNotFound):
		return fail("invalid verification token"), nil
	case err != nil:
		return result{}, err
	}
	return success("Verification code accepted.").with("user_id", int64(st.ID)).with("email", email), nil
}
