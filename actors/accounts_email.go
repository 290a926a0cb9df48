package actors

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/mail"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// The email flows (docs/email.md, "Requests"): the sends of the sign-up and
// forgotten-password mail with a single-use code, and the requests that
// record a verification, a mail sent by the frontend, or use a code up. As
// for every flow, each request is one call here; the front reads and checks
// its parameters and words the answer.

// The refusals of the email flows.
const (
	// RefusedVerified: a sign-up mail for a user that is active already.
	RefusedVerified Refusal = "verified"
	// RefusedInFlight: a mail of the same purpose to the same user is being
	// sent right now.
	RefusedInFlight Refusal = "mail in flight"
	// RefusedTooSoon: the last forgotten-password mail to the user is less
	// than forgotPassSpacing old.
	RefusedTooSoon Refusal = "too soon"
	// RefusedMailFailed: the mail server did not take the mail (it is
	// logged, with addresses cleared, never the raw error text).
	RefusedMailFailed Refusal = "mail failed"
)

// A refused code is RefusedCodeInvalid (altered, of another purpose or
// address, or used already) or RefusedCodeExpired (accounts_manage.go).

// forgotPassSpacing is the least time between two forgotten-password mails
// to one user (docs/email.md, "Requests").
const forgotPassSpacing = 24 * time.Hour

// Mailer sends one mail and waits for its result ([mail.Mailer]).
type Mailer interface {
	Send(m mail.Mail) error
}

// Emails runs the email flows over the account flows, sending through a
// mailer and signing codes with a key. It is safe for concurrent use.
type Emails struct {
	a      *Accounts
	mailer Mailer // nil: every send fails as the mail server's fault
	key    CodeKey
	// inflight holds "purpose:user id" while a mail to that user is being
	// sent, so two concurrent requests cannot both pass the spacing check.
	inflight sync.Map
}

// NewEmails returns the email flows of a, sending with m (nil: none) and
// signing codes with key.
func NewEmails(a *Accounts, m Mailer, key CodeKey) *Emails {
	return &Emails{a: a, mailer: m, key: key}
}

// Key returns the key that signs the codes.
func (e *Emails) Key() CodeKey { return e.key }

// MailRequest is what the two sends take from their request: where and how
// to mail, and what the mail says. Fields are checked by the caller (no
// control characters, a sender address, a port).
type MailRequest struct {
	SMTP mail.SMTPSettings
	From string
	// Lifetime is how long the code lives.
	Lifetime time.Duration
	// Code is the frontend's own code (normalised), or "" to mint one.
	Code string
	// ServerName and ServerBaseURL name the frontend in the mail;
	// VerifyURL is the page, under ServerBaseURL, the code is for.
	ServerName, ServerBaseURL, VerifyURL string
	// Session is the session that asks for the mail: its user agent and
	// address are quoted in the mail.
	Session shard.SessionDigest
	// At is the time of the request: the sent mark and the code's expiry
	// are relative to it.
	At time.Time
}

// SendSignupCode mails the sign-up verification code of the user userID,
// who must own email and still wait for its verification, and records the
// code. The answer's User is the user with its sent mark; the refusals are
// RefusedNoUser, RefusedVerified, RefusedNoSession, RefusedInFlight and
// RefusedMailFailed.
func (e *Emails) SendSignupCode(email string, userID shard.UserID, r MailRequest) (Answer, error) {
	u, found, err := e.a.UserByEmail(email)
	if err != nil {
		return Answer{}, err
	}
	if !found || u.ID != userID {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	if u.IsActive || u.Role != "locked" {
		return refused(RefusedVerified, shard.User{}), nil
	}
	return e.send(u, shard.PurposeSignup, r, "sign-up verification")
}

// SendForgotPassCode mails a password reset code to the user that owns
// email, at most once per forgotPassSpacing, and records the code. Only an
// active user that is not locked or anonymous gets one. The answer's User
// is the user with its sent mark; the refusals are RefusedNoUser,
// RefusedTooSoon, RefusedNoSession, RefusedInFlight and RefusedMailFailed
// (then User is the user, whose address the front quotes).
func (e *Emails) SendForgotPassCode(email string, r MailRequest) (Answer, error) {
	u, found, err := e.a.UserByEmail(email)
	if err != nil {
		return Answer{}, err
	}
	if !found || !u.IsActive || u.Role == "locked" || u.Role == "anonymous" {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	if !u.EmailForgotPassSent.IsZero() && r.At.Sub(u.EmailForgotPassSent) < forgotPassSpacing {
		return refused(RefusedTooSoon, shard.User{}), nil
	}
	return e.send(u, shard.PurposeForgotPass, r, "password reset")
}

// send is the part the sends share: the session, the in-flight mark, the
// mail, and the code recorded once the mail is out.
func (e *Emails) send(u shard.User, purpose string, r MailRequest, what string) (Answer, error) {
	sess, ok, err := e.a.session(r.Session)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return refused(RefusedNoSession, shard.User{}), nil
	}
	release, ok := e.claimInflight(purpose, u.ID)
	if !ok {
		return refused(RefusedInFlight, shard.User{}), nil
	}
	defer release()
	code, err := e.composeAndSend(r, purpose, u, sess)
	if err != nil {
		if mailSendError(err) {
			e.logMailFailure(what, &u, err)
			return refused(RefusedMailFailed, u), nil
		}
		return Answer{}, mailerError(err)
	}
	tok := shard.EmailToken{Purpose: purpose, Digest: codeDigest(code), Expires: r.At.Add(r.Lifetime)}
	st, err := askDurable[EmailState](e.a.core, RecordEmailCode{ID: u.ID, Token: tok, At: r.At})
	if errors.Is(err, shard.ErrUserNotFound) {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	if err != nil {
		return Answer{}, err
	}
	return Answer{User: withState(u, st)}, nil
}

// claimInflight marks a mail to user id for purpose as being sent; false
// when one already is.
func (e *Emails) claimInflight(purpose string, id shard.UserID) (release func(), ok bool) {
	k := fmt.Sprintf("%s:%d", purpose, id)
	if _, busy := e.inflight.LoadOrStore(k, struct{}{}); busy {
		return nil, false
	}
	return func() { e.inflight.Delete(k) }, true
}

// composeAndSend mints (or takes) the code, renders the template and sends
// the mail, waiting for the result. It returns the code as mailed.
func (e *Emails) composeAndSend(r MailRequest, purpose string, u shard.User, sess shard.Session) (string, error) {
	code := r.Code
	if code == "" {
		var err error
		code, err = e.key.mint(emailClaims{
			Purpose: purpose, UserID: u.ID, Email: u.Email,
			IssuedAt: r.At.Unix(), Expires: r.At.Add(r.Lifetime).Unix(),
		})
		if err != nil {
			return "", err
		}
	}
	tmpl := "signup.txt"
	if purpose == shard.PurposeForgotPass {
		tmpl = "forgotpass.txt"
	}
	subject, body, err := mail.Render(tmpl, mail.Fields{
		ServerName:         r.ServerName,
		ServerBaseURL:      r.ServerBaseURL,
		UserEmail:          u.Email,
		BrowserIdentifier:  sanitizeLine(strings.ReplaceAll(sess.UserAgent, "_", ".")),
		IPAddress:          sanitizeLine(sess.IPAddress),
		VerificationCode:   wrapCode(code),
		VerifyURL:          r.ServerBaseURL + r.VerifyURL,
		VerificationExpiry: wire.FormatTime(r.At.Add(r.Lifetime)) + " (UTC time)",
	})
	if err != nil {
		return "", err
	}
	if e.mailer == nil {
		return "", &mail.MailError{Err: errors.New("no mailer configured")}
	}
	err = e.mailer.Send(mail.Mail{SMTP: r.SMTP, From: r.From, To: []string{u.Email}, Subject: subject, Body: body})
	return code, err
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

// logMailFailure logs why a mail was not sent, with the error text cleared
// of addresses (MailError.Cause), never the raw text, which can name the
// recipient.
func (e *Emails) logMailFailure(what string, u *shard.User, err error) {
	class, attempts, cause := "timeout", 0, ""
	var me *mail.MailError
	if errors.As(err, &me) {
		class, attempts, cause = me.Class(), me.Attempts, me.Cause()
	}
	e.a.log.Warn(what+" mail not sent", "user", e.a.piiText(u.Email), "class", class, "attempts", attempts, "cause", cause)
}

// mailSendError reports whether err is the mail server's fault (a refusal)
// rather than ours (an error).
func mailSendError(err error) bool {
	var me *mail.MailError
	return errors.As(err, &me) || errors.Is(err, mail.ErrMailerTimeout)
}

// mailerError is the error a mailer failure is answered by: a full or
// stopped mailer is ErrBusy, anything else is itself.
func mailerError(err error) error {
	if errors.Is(err, mail.ErrMailerBusy) || errors.Is(err, mail.ErrMailerStopped) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// SetEmailVerified marks the address of the user that holds email verified
// and activates the user (user-set-emailverified). With withCode, code (the
// normalised sign-up code) must be the user's outstanding one, and is used
// up in the same step. The answer's User holds the fields of an
// [EmailState]; the refusals are RefusedCodeInvalid, RefusedCodeExpired and
// RefusedNoUser.
func (e *Emails) SetEmailVerified(email, code string, withCode bool, at time.Time) (Answer, error) {
	op := VerifyEmail{WithCode: withCode, At: at}
	if withCode {
		var err error
		if op.Code, err = e.key.checkCode(code, shard.PurposeSignup, email, at); err != nil {
			return codeRefused(err)
		}
	}
	id, found, err := e.a.lookupEmail(email)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	op.ID = id
	st, err := askDurable[EmailState](e.a.core, op)
	switch {
	case codeRefusal(err) != "":
		return refused(codeRefusal(err), shard.User{}), nil
	case errors.Is(err, shard.ErrUserNotFound):
		return refused(RefusedNoUser, shard.User{}), nil
	case err != nil:
		return Answer{}, err
	}
	return Answer{User: withState(shard.User{}, st)}, nil
}

// NoteEmailSent records that the frontend mailed a code of its own for
// purpose (shard.PurposeSignup or shard.PurposeForgotPass) to the user that
// holds email (user-set-emailsent). The answer's User holds the fields of an
// [EmailState]; the refusal is RefusedNoUser.
func (e *Emails) NoteEmailSent(email, purpose string, at time.Time) (Answer, error) {
	id, found, err := e.a.lookupEmail(email)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	st, err := askDurable[EmailState](e.a.core, MarkEmailSent{ID: id, Purpose: purpose, At: at})
	if errors.Is(err, shard.ErrUserNotFound) {
		return refused(RefusedNoUser, shard.User{}), nil
	}
	if err != nil {
		return Answer{}, err
	}
	return Answer{User: withState(shard.User{}, st)}, nil
}

// UseCode checks code (normalised), a mailed code of purpose for the user
// that holds email, and uses it up (user-verify-emailtoken: the frontend
// acts on it later). The answer's User holds the fields of an
// [EmailState]; the refusals are RefusedCodeInvalid (also for an address
// with no user: a code tells nothing about who exists) and
// RefusedCodeExpired.
func (e *Emails) UseCode(email, purpose, code string, at time.Time) (Answer, error) {
	mc, err := e.key.checkCode(code, purpose, email, at)
	if err != nil {
		return codeRefused(err)
	}
	id, found, err := e.a.lookupEmail(email)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return refused(RefusedCodeInvalid, shard.User{}), nil
	}
	st, err := askDurable[EmailState](e.a.core, UseEmailCode{ID: id, Code: mc, At: at})
	switch {
	case codeRefusal(err) != "":
		return refused(codeRefusal(err), shard.User{}), nil
	case errors.Is(err, shard.ErrUserNotFound):
		return refused(RefusedCodeInvalid, shard.User{}), nil
	case err != nil:
		return Answer{}, err
	}
	return Answer{User: withState(shard.User{}, st)}, nil
}

// codeRefused answers a failed code check: its refusal, or err itself
// when it is not about the code.
func codeRefused(err error) (Answer, error) {
	if r := codeRefusal(err); r != "" {
		return refused(r, shard.User{}), nil
	}
	return Answer{}, err
}

// withState is u with the fields of st, the state after an email operation.
func withState(u shard.User, st EmailState) shard.User {
	u.ID, u.IsActive, u.Role = st.ID, st.IsActive, st.Role
	u.EmailVerifySent, u.EmailForgotPassSent = st.EmailVerifySent, st.EmailForgotPassSent
	return u
}

// lookupEmail returns the id of the user that holds email in the index
// (any spelling), without reading the user.
func (a *Accounts) lookupEmail(email string) (shard.UserID, bool, error) {
	res, err := Ask[shard.UserID](a.core, LookupEmail{Email: passpolicy.NormalizeEmail(email)})
	if errors.Is(err, shard.ErrUserNotFound) {
		return 0, false, nil
	}
	return res.Value, err == nil, err
}

// piiText is what the logs show of a piece of personal data (an email).
func (a *Accounts) piiText(v string) string {
	if a.opts.PII == nil {
		return "-"
	}
	return a.opts.PII(v)
}

// ResetPassword is [Accounts.ResetPassword] for a request that may bring a
// mailed reset code (code, "" for none): the code is checked here as far as
// it can be without the user record, and spent with the change.
func (e *Emails) ResetPassword(r PasswordReset, code string) (Answer, error) {
	if code != "" {
		mc, err := e.key.checkCode(code, shard.PurposeForgotPass, r.Email, r.At)
		if r.CodeRefusal = codeRefusal(err); r.CodeRefusal == "" {
			r.Code = &mc
		}
	}
	return e.a.ResetPassword(r)
}
