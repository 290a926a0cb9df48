package server_test

import (
	"crypto/tls"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/shard"
)

// A real SMTP server on a loopback port that keeps what it receives.

type sentMail struct {
	from     string
	to       []string
	msg      *mail.Message
	body     string // decoded
	overTLS  bool   // the session had done STARTTLS
	authUser string // who authenticated, if anyone
}

type mailSink struct {
	mu   sync.Mutex
	msgs []sentMail
	port int
	// With user set, the sink refuses mail from unauthenticated sessions
	// (and go-smtp offers AUTH only after STARTTLS).
	user, pass string
	authTries  int // guarded by mu
}

func (k *mailSink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &sinkSession{k: k, conn: c}, nil
}

type sinkSession struct {
	k        *mailSink
	conn     *smtp.Conn
	from     string
	to       []string
	authUser string
}

func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		s.k.mu.Lock()
		s.k.authTries++
		s.k.mu.Unlock()
		if s.k.user == "" || user != s.k.user || pass != s.k.pass || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed // 535: permanent, as a real relay answers
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.k.user != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	var body []byte
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(m.Body))
	} else {
		body, err = io.ReadAll(m.Body)
	}
	if err != nil {
		return err
	}
	s.k.mu.Lock()
	_, overTLS := s.conn.TLSConnectionState()
	s.k.msgs = append(s.k.msgs, sentMail{from: s.from, to: s.to, msg: m, body: strings.ReplaceAll(string(body), "\r\n", "\n"),
		overTLS: overTLS, authUser: s.authUser})
	s.k.mu.Unlock()
	return nil
}

func (k *mailSink) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.msgs)
}

func (k *mailSink) last(t *testing.T) sentMail {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.msgs) == 0 {
		t.Fatal("no mail received")
	}
	return k.msgs[len(k.msgs)-1]
}

func startSMTP(t *testing.T) *mailSink {
	t.Helper()
	return startSMTPWith(t, &mailSink{}, nil)
}

// startSMTPTLS starts a sink that offers STARTTLS with a certificate for
// 127.0.0.1 and requires AUTH PLAIN as user/pass; caFile trusts it.
func startSMTPTLS(t *testing.T, user, pass string) (sink *mailSink, caFile string) {
	t.Helper()
	certFile, keyFile, _ := writeSelfSigned(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return startSMTPWith(t, &mailSink{user: user, pass: pass}, &tls.Config{Certificates: []tls.Certificate{cert}}), certFile
}

func startSMTPWith(t *testing.T, k *mailSink, tlsConfig *tls.Config) *mailSink {
	t.Helper()
	srv := smtp.NewServer(k)
	srv.TLSConfig = tlsConfig
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return k
}

// deadPort returns a loopback port nobody listens on.
func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func startWithMail(t *testing.T, port int, extra ...servertest.Option) *servertest.Server {
	opts := append([]servertest.Option{
		servertest.Env("AUTHNZERVER_EMAILSERVER", "127.0.0.1"),
		servertest.Env("AUTHNZERVER_EMAILPORT", strconv.Itoa(port)),
		servertest.Env("AUTHNZERVER_EMAILSENDER", "Example Server <noreply@example.org>"),
	}, extra...)
	return servertest.Start(t, opts...)
}

// codeOf reads the verification code out of a mail: the lines after the
// one that says where to enter it, up to the blank line.
func codeOf(t *testing.T, m sentMail) string {
	t.Helper()
	lines := strings.Split(m.body, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "azv1.") {
			var b strings.Builder
			for _, l := range lines[i:] {
				if strings.TrimSpace(l) == "" {
					break
				}
				b.WriteString(strings.TrimSpace(l))
			}
			return b.String()
		}
	}
	t.Fatalf("no code in mail body:\n%s", m.body)
	return ""
}

func userRecord(t *testing.T, ts *servertest.Server, id int64) shard.User {
	t.Helper()
	res, err := actors.Ask[shard.User](ts.Srv.Core, actors.GetUser{ID: shard.UserID(id)})
	if err != nil {
		t.Fatalf("get user %d: %v", id, err)
	}
	return res.Value
}

// signUp creates an unverified user and returns its id and the created_info
// object a frontend passes on.
func signUp(t *testing.T, ts *servertest.Server, email string) (int64, map[string]any) {
	t.Helper()
	r := ts.MustSucceed("user-new", map[string]any{"full_name": "Jane Public", "email": email, "password": goodPassword})
	id, _ := r.Int("user_id")
	return id, map[string]any{"user_id": id, "user_email": r.Str("user_email"), "send_verification": true}
}

func signupMailBody(email, session string, created map[string]any) map[string]any {
	return map[string]any{
		"email_address": email, "session_token": session, "created_info": created,
		"server_name": "Example", "server_baseurl": "https://example.org", "account_verify_url": "/users/verify",
		"verification_expiry": 900,
	}
}

func forgotMailBody(email, session string) map[string]any {
	return map[string]any{
		"email_address": email, "session_token": session,
		"server_name": "Example", "server_baseurl": "https://example.org", "password_forgot_url": "/users/forgot",
		"verification_expiry": 900,
	}
}

func TestEmailSignupVerification(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	const email = "jane@example.org"
	id, created := signUp(t, ts, email)
	sess := ts.NewSession(0)

	r := ts.MustSucceed("user-sendemail-signup", signupMailBody(email, sess, created))
	if got, _ := r.Int("user_id"); got != id || r.Str("email_address") != email || r.Str("emailverify_sent_datetime") == "" {
		t.Errorf("reply %v", r.Response)
	}
	if len(r.Messages) != 1 || r.Messages[0] != "Verify email sent successfully." {
		t.Errorf("messages %q", r.Messages)
	}
	m := sink.last(t)
	if got, want := m.msg.Header.Get("Subject"), "[Example] Please verify your account sign up request"; got != want {
		t.Errorf("subject %q; want %q", got, want)
	}
	if len(m.to) != 1 || m.to[0] != email || m.from != "noreply@example.org" {
		t.Errorf("envelope from %q to %q", m.from, m.to)
	}
	for _, want := range []string{"https://example.org/users/verify", "10.1.2.3", "servertest", email, "(UTC time)"} {
		if !strings.Contains(m.body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.body)
		}
	}
	code := codeOf(t, m)

	// The code works once, and the user can then log in.
	r = ts.MustSucceed("user-set-emailverified", map[string]any{"email": email, "verification_token": code})
	if r.Response["is_active"] != true || r.Str("user_role") != "authenticated" {
		t.Errorf("verified: %v", r.Response)
	}
	r = ts.Do("user-set-emailverified", map[string]any{"email": email, "verification_token": code})
	if r.Success || r.FailureReason != "invalid verification token" {
		t.Errorf("reused code: success %v reason %q; want invalid verification token", r.Success, r.FailureReason)
	}
	ts.MustSucceed("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": goodPassword})

	// An active user gets no more sign-up mail.
	n := sink.count()
	r = ts.Do("user-sendemail-signup", signupMailBody(email, sess, created))
	if r.Success || r.FailureReason != "target user for verification email already active and verified" || sink.count() != n {
		t.Errorf("active user: success %v reason %q mails %d->%d", r.Success, r.FailureReason, n, sink.count())
	}
}

func TestEmailTokenAlteredExpiredCrossPurpose(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	sess := ts.NewSession(0)

	const email = "alter@example.org"
	id, created := signUp(t, ts, email)
	ts.MustSucceed("user-sendemail-signup", signupMailBody(email, sess, created))
	code := codeOf(t, sink.last(t))

	// Altered: one character of the claims or the signature changed.
	for _, i := range []int{10, len(code) - 3} {
		b := []byte(code)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		r := ts.Do("user-set-emailverified", map[string]any{"email": email, "verification_token": string(b)})
		if r.Success || r.FailureReason != "invalid verification token" {
			t.Errorf("altered at %d: success %v reason %q", i, r.Success, r.FailureReason)
		}
	}
	// Right code, wrong purpose or wrong address.
	if r := ts.Do("user-verify-emailtoken", map[string]any{"email": email, "verification_token": code, "purpose": "forgotpass"}); r.Success {
		t.Error("sign-up code accepted for a password reset")
	}
	ts.NewUser("other@example.org", goodPassword)
	if r := ts.Do("user-set-emailverified", map[string]any{"email": "other@example.org", "verification_token": code}); r.Success {
		t.Error("code accepted for another address")
	}
	if u := userRecord(t, ts, id); u.IsActive {
		t.Fatal("user activated by a refused code")
	}
	// A new mail replaces the old code.
	ts.MustSucceed("user-sendemail-signup", signupMailBody(email, sess, created))
	code2 := codeOf(t, sink.last(t))
	if r := ts.Do("user-set-emailverified", map[string]any{"email": email, "verification_token": code}); r.Success {
		t.Error("replaced code accepted")
	}
	// The code survives line wrapping and a restart of the server.
	ts.Restart()
	ts.MustSucceed("user-set-emailverified", map[string]any{"email": email, "verification_token": code2[:70] + "\n " + code2[70:]})

	// Expired: a one-second lifetime.
	const email2 = "expire@example.org"
	id2, created2 := signUp(t, ts, email2)
	body := signupMailBody(email2, ts.NewSession(0), created2)
	body["verification_expiry"] = 1
	ts.MustSucceed("user-sendemail-signup", body)
	code = codeOf(t, sink.last(t))
	time.Sleep(1100 * time.Millisecond)
	r := ts.Do("user-set-emailverified", map[string]any{"email": email2, "verification_token": code})
	if r.Success || r.FailureReason != "verification token expired" {
		t.Errorf("expired: success %v reason %q", r.Success, r.FailureReason)
	}
	if u := userRecord(t, ts, id2); u.IsActive {
		t.Error("user activated by an expired code")
	}
}

func TestEmailForgotPassword(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	const email = "forgot@example.org"
	id := ts.NewUser(email, goodPassword)
	sess := ts.NewSession(0)

	r := ts.MustSucceed("user-sendemail-forgotpass", forgotMailBody(email, sess))
	if want := "Password reset request sent successfully to ['" + email + "']"; len(r.Messages) != 1 || r.Messages[0] != want {
		t.Errorf("messages %q; want %q", r.Messages, want)
	}
	if got, _ := r.Int("user_id"); got != id || r.Str("emailforgotpass_sent_datetime") == "" {
		t.Errorf("reply %v", r.Response)
	}
	m := sink.last(t)
	if got, want := m.msg.Header.Get("Subject"), "[Example] Please verify your password reset request"; got != want {
		t.Errorf("subject %q; want %q", got, want)
	}
	if !strings.Contains(m.body, "https://example.org/users/forgot") {
		t.Errorf("body lacks the reset URL:\n%s", m.body)
	}
	code := codeOf(t, m)

	// Spacing: no second mail within 24 hours.
	n := sink.count()
	r = ts.Do("user-sendemail-forgotpass", forgotMailBody(email, sess))
	if r.Success || r.FailureReason != "forgot-pass verification email sent less than 24 hours ago" || sink.count() != n {
		t.Errorf("second mail: success %v reason %q mails %d->%d", r.Success, r.FailureReason, n, sink.count())
	}

	// A sign-up verification cannot use a reset code.
	if r := ts.Do("user-set-emailverified", map[string]any{"email": email, "verification_token": code}); r.Success {
		t.Error("reset code accepted for sign-up verification")
	}
	// The code is checked and used up server-side, once.
	r = ts.MustSucceed("user-verify-emailtoken", map[string]any{"email": email, "verification_token": code, "purpose": "forgotpass"})
	if got, _ := r.Int("user_id"); got != id {
		t.Errorf("user_id %d; want %d", got, id)
	}
	r = ts.Do("user-verify-emailtoken", map[string]any{"email": email, "verification_token": code, "purpose": "forgotpass"})
	if r.Success || r.FailureReason != "invalid verification token" {
		t.Errorf("reused reset code: success %v reason %q", r.Success, r.FailureReason)
	}
	// Then the password is reset.
	const newPassword = "Tr0ub4dor&3-Horse!"
	ts.MustSucceed("user-resetpass-nosession", map[string]any{"email_address": email, "new_password": newPassword, "required_active": true})
	ts.MustSucceed("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": newPassword})
}

func TestResetWithCodeInOneStep(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	const email = "onestep@example.org"
	ts.NewUser(email, goodPassword)
	ts.MustSucceed("user-sendemail-forgotpass", forgotMailBody(email, ts.NewSession(0)))
	code := codeOf(t, sink.last(t))
	const newPassword = "Tr0ub4dor&3-Horse!"
	body := func(tok string) map[string]any {
		return map[string]any{"email_address": email, "new_password": newPassword, "session_token": ts.NewSession(0), "verification_token": tok}
	}
	altered := code[:len(code)-2] + "xx"
	if altered == code {
		altered = code[:len(code)-2] + "yy"
	}
	if r := ts.Do("user-resetpass", body(altered)); r.Success || r.FailureReason != "invalid verification token" {
		t.Errorf("altered code: success %v reason %q", r.Success, r.FailureReason)
	}
	if !login(ts, email, goodPassword) {
		t.Fatal("a refused reset changed the password")
	}
	ts.MustSucceed("user-resetpass", body(code))
	if r := ts.Do("user-resetpass", body(code)); r.Success || r.FailureReason != "invalid verification token" {
		t.Errorf("reused code: success %v reason %q", r.Success, r.FailureReason)
	}
	if !login(ts, email, newPassword) {
		t.Error("new password does not log in")
	}
}

func TestEmailRefusals(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	sess := ts.NewSession(0)
	const active = "active@example.org"
	ts.NewUser(active, goodPassword)
	const pending = "pending@example.org"
	_, created := signUp(t, ts, pending)

	with := func(b map[string]any, k string, v any) map[string]any { b[k] = v; return b }
	tests := []struct {
		name, request string
		body          map[string]any
		reason        string
	}{
		{"forgot: CRLF in address", "user-sendemail-forgotpass", forgotMailBody(active+"\r\nBcc: victim@example.net", sess), "invalid request: control characters in email fields"},
		{"forgot: LF in server name", "user-sendemail-forgotpass", with(forgotMailBody(active, sess), "server_name", "Example\nBcc: victim@example.net"), "invalid request: control characters in email fields"},
		{"forgot: CRLF in sender", "user-sendemail-forgotpass", with(forgotMailBody(active, sess), "emailsender", "Evil <a@example.org>\r\nBcc: victim@example.net"), "invalid request: control characters in email fields"},
		{"forgot: bad sender", "user-sendemail-forgotpass", with(forgotMailBody(active, sess), "emailsender", "not an address"), "invalid request: control characters in email fields"},
		{"forgot: malformed address", "user-sendemail-forgotpass", forgotMailBody("not-an-address", sess), "invalid user for forgot-pass email request"},
		{"forgot: unknown user", "user-sendemail-forgotpass", forgotMailBody("nobody@example.org", sess), "invalid user for forgot-pass email request"},
		{"forgot: inactive user", "user-sendemail-forgotpass", forgotMailBody(pending, sess), "invalid user for forgot-pass email request"},
		{"forgot: anonymous user", "user-sendemail-forgotpass", forgotMailBody("anonuser@localhost", sess), "invalid user for forgot-pass email request"},
		{"forgot: no session", "user-sendemail-forgotpass", forgotMailBody(active, "no-such-session"), "invalid session for forgot-pass request"},
		{"signup: CRLF in name", "user-sendemail-signup", with(signupMailBody(pending, sess, created), "server_name", "X\r\nBcc: victim@example.net"), "invalid request: control characters in email fields"},
		{"signup: CRLF in address", "user-sendemail-signup", signupMailBody(pending+"\r\nBcc: victim@example.net", sess, created), "invalid request: control characters in email fields"},
		{"signup: send_verification false", "user-sendemail-signup", signupMailBody(pending, sess, map[string]any{"user_id": created["user_id"], "send_verification": false}), "not allowed to send verification email to target user, send_verification = False"},
		{"signup: wrong user id", "user-sendemail-signup", signupMailBody(pending, sess, map[string]any{"user_id": 1, "send_verification": true}), "target user for verification email does not exist"},
		{"signup: unknown user", "user-sendemail-signup", signupMailBody("nobody@example.org", sess, created), "target user for verification email does not exist"},
		{"signup: no session", "user-sendemail-signup", signupMailBody(pending, "no-such-session", created), "invalid session for requesting a verification email"},
	}
	for _, tc := range tests {
		r := ts.Do(tc.request, tc.body)
		if r.StatusCode != 200 || r.Success || r.FailureReason != tc.reason {
			t.Errorf("%s: status %d success %v reason %q; want %q", tc.name, r.StatusCode, r.Success, r.FailureReason, tc.reason)
		}
	}
	if n := sink.count(); n != 0 {
		t.Errorf("%d mails sent by refused requests; want 0", n)
	}
	// email_address is a string (the reference's schema said int): an
	// integer is invalid.
	r := ts.Do("user-sendemail-forgotpass", with(forgotMailBody("", sess), "email_address", 42))
	if r.Success || len(r.Messages) != 1 || r.Messages[0] != "request 'user-sendemail-forgotpass' has invalid parameters" {
		t.Errorf("integer email_address: success %v messages %q", r.Success, r.Messages)
	}
}

func TestEmailServerDown(t *testing.T) {
	ts := startWithMail(t, deadPort(t))
	sess := ts.NewSession(0)
	const email = "down@example.org"
	id, created := signUp(t, ts, email)
	before := userRecord(t, ts, id)

	r := ts.Do("user-sendemail-signup", signupMailBody(email, sess, created))
	if r.StatusCode != 200 || r.Success || r.FailureReason != "verification email could not be sent because of an email server problem" {
		t.Fatalf("signup mail, server down: status %d success %v reason %q", r.StatusCode, r.Success, r.FailureReason)
	}
	if len(r.Messages) != 1 || r.Messages[0] != "Could not send email for the verify email request." || r.Response["emailverify_sent_datetime"] != nil {
		t.Errorf("reply %v messages %q", r.Response, r.Messages)
	}
	after := userRecord(t, ts, id)
	if !after.EmailVerifySent.Equal(before.EmailVerifySent) || len(after.EmailTokens) != 0 {
		t.Errorf("user changed by a failed mail: sent %v -> %v, tokens %d", before.EmailVerifySent, after.EmailVerifySent, len(after.EmailTokens))
	}

	const active = "down-active@example.org"
	aid := ts.NewUser(active, goodPassword)
	r = ts.Do("user-sendemail-forgotpass", forgotMailBody(active, sess))
	if r.Success || r.FailureReason != "forgot-pass verification email could not be sent because email server issue" {
		t.Fatalf("forgot mail, server down: success %v reason %q", r.Success, r.FailureReason)
	}
	if want := "Could not send email to ['" + active + "'] for the user password reset request."; len(r.Messages) != 1 || r.Messages[0] != want {
		t.Errorf("messages %q; want %q", r.Messages, want)
	}
	if u := userRecord(t, ts, aid); !u.EmailForgotPassSent.IsZero() || len(u.EmailTokens) != 0 {
		t.Errorf("user changed by a failed mail: %v, tokens %d", u.EmailForgotPassSent, len(u.EmailTokens))
	}
	// Nothing half-changed: the failed attempt does not count against the
	// 24-hour spacing, so a mail server that is back (here chosen by the
	// request's override) gets the mail at once.
	sink := startSMTP(t)
	body := forgotMailBody(active, sess)
	body["emailport"] = sink.port
	ts.MustSucceed("user-sendemail-forgotpass", body)
	if sink.count() != 1 {
		t.Errorf("mails %d; want 1", sink.count())
	}
	logs := ts.Log.String()
	if !strings.Contains(logs, "mail not sent") {
		t.Error("failed mail not logged")
	}
	for _, secret := range []string{email, active, codeOf(t, sink.last(t))} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q", secret)
		}
	}
}

func TestEmailTLSRequired(t *testing.T) {
	sink := startSMTP(t) // offers no STARTTLS
	ts := startWithMail(t, sink.port, servertest.Env("AUTHNZERVER_EMAILTLS", "required"))
	const active = "tls@example.org"
	ts.NewUser(active, goodPassword)
	r := ts.Do("user-sendemail-forgotpass", forgotMailBody(active, ts.NewSession(0)))
	if r.Success || r.FailureReason != "forgot-pass verification email could not be sent because email server issue" || sink.count() != 0 {
		t.Errorf("TLS required, not offered: success %v reason %q mails %d", r.Success, r.FailureReason, sink.count())
	}
}

// TestEmailSTARTTLSAndAuth: against a server that offers STARTTLS with a
// certificate from AUTHNZERVER_EMAILCAFILE and requires AUTH, mail goes out
// encrypted and authenticated; a wrong password or an untrusted
// certificate is the "email server issue" failure and sends nothing.
func TestEmailSTARTTLSAndAuth(t *testing.T) {
	const smtpUser, smtpPass = "mailer", "relay-secret-1"
	sink, caFile := startSMTPTLS(t, smtpUser, smtpPass)
	const failed = "forgot-pass verification email could not be sent because email server issue"
	tests := []struct {
		name    string
		env     []servertest.Option
		wantOK  bool
		wantTLS bool
	}{
		{"required, trusted CA, right password", []servertest.Option{
			servertest.Env("AUTHNZERVER_EMAILTLS", "required"), servertest.Env("AUTHNZERVER_EMAILCAFILE", caFile),
			servertest.Env("AUTHNZERVER_EMAILUSER", smtpUser), servertest.Env("AUTHNZERVER_EMAILPASS", smtpPass)}, true, true},
		{"opportunistic, trusted CA, right password", []servertest.Option{
			servertest.Env("AUTHNZERVER_EMAILCAFILE", caFile),
			servertest.Env("AUTHNZERVER_EMAILUSER", smtpUser), servertest.Env("AUTHNZERVER_EMAILPASS", smtpPass)}, true, true},
		{"wrong password", []servertest.Option{
			servertest.Env("AUTHNZERVER_EMAILTLS", "required"), servertest.Env("AUTHNZERVER_EMAILCAFILE", caFile),
			servertest.Env("AUTHNZERVER_EMAILUSER", smtpUser), servertest.Env("AUTHNZERVER_EMAILPASS", "wrong")}, false, false},
		{"no credentials", []servertest.Option{
			servertest.Env("AUTHNZERVER_EMAILTLS", "required"), servertest.Env("AUTHNZERVER_EMAILCAFILE", caFile)}, false, false},
		{"untrusted certificate", []servertest.Option{
			servertest.Env("AUTHNZERVER_EMAILTLS", "required"),
			servertest.Env("AUTHNZERVER_EMAILUSER", smtpUser), servertest.Env("AUTHNZERVER_EMAILPASS", smtpPass)}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startWithMail(t, sink.port, tc.env...)
			const email = "relay@example.org"
			ts.NewUser(email, goodPassword)
			before := sink.count()
			sink.mu.Lock()
			triesBefore := sink.authTries
			sink.mu.Unlock()
			r := ts.Do("user-sendemail-forgotpass", forgotMailBody(email, ts.NewSession(0)))
			if tc.wantOK {
				if !r.Success || sink.count() != before+1 {
					t.Fatalf("success %v reason %q mails %d->%d; want one mail", r.Success, r.FailureReason, before, sink.count())
				}
				if m := sink.last(t); m.overTLS != tc.wantTLS || m.authUser != smtpUser {
					t.Errorf("mail over TLS %v as %q; want TLS %v as %q", m.overTLS, m.authUser, tc.wantTLS, smtpUser)
				}
				return
			}
			if r.Success || r.FailureReason != failed || sink.count() != before {
				t.Errorf("success %v reason %q mails %d->%d; want the email-server failure and no mail", r.Success, r.FailureReason, before, sink.count())
			}
			// A refused password is a permanent failure: not retried.
			sink.mu.Lock()
			tries := sink.authTries - triesBefore
			sink.mu.Unlock()
			if tries > 1 {
				t.Errorf("AUTH tried %d times; want at most once", tries)
			}
		})
	}
}

func TestEmailCAFileUnreadableStopsStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		err := startErr(t, map[string]string{"AUTHNZERVER_EMAILCAFILE": path})
		if err == nil || !strings.Contains(err.Error(), "email CA file") {
			t.Errorf("AUTHNZERVER_EMAILCAFILE=%s: got %v; want a start-up error naming the email CA file", path, err)
		}
	}
}

func TestEmailFrontendTokenAndLegacyNames(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	sess := ts.NewSession(0)
	const email = "legacy@example.org"
	id, created := signUp(t, ts, email)

	// The 0.1.x name with its old parameter names and a frontend's own code.
	const frontendCode = "gAAAAABfrontend-made-token-0123456789"
	ts.MustSucceed("user-signup-sendemail", map[string]any{
		"email_address": email, "session_token": sess, "created_info": created,
		"server_name": "Example", "server_baseurl": "https://example.org",
		"fernet_verification_token": frontendCode, "smtp_port": sink.port,
	})
	if body := sink.last(t).body; !strings.Contains(body, frontendCode) {
		t.Fatalf("frontend code not mailed:\n%s", body)
	}
	// The frontend's code is single-use too.
	ts.MustSucceed("user-verify-emailaddr", map[string]any{"email": email, "verification_token": frontendCode})
	if r := ts.Do("user-verify-email", map[string]any{"email": email, "verification_token": frontendCode}); r.Success {
		t.Error("frontend code accepted twice")
	}
	if u := userRecord(t, ts, id); !u.IsActive || !u.EmailVerified || u.Role != "authenticated" {
		t.Errorf("after verification: active %v verified %v role %q", u.IsActive, u.EmailVerified, u.Role)
	}

	// Without a code, user-set-emailverified trusts the frontend, as the
	// reference does (docs/email.md, "Codes: format, lifetime, single use").
	const email2 = "nocode@example.org"
	signUp(t, ts, email2)
	r := ts.MustSucceed("user-set-emailverified", map[string]any{"email": email2})
	if r.Response["is_active"] != true || r.Str("user_role") != "authenticated" {
		t.Errorf("no-code verification: %v", r.Response)
	}
	if r := ts.Do("user-set-emailverified", map[string]any{"email": "nobody@example.org"}); r.Success || r.FailureReason != "could not find user in DB by email" {
		t.Errorf("unknown email: success %v reason %q", r.Success, r.FailureReason)
	}
}

func TestEmailSetEmailSent(t *testing.T) {
	ts := servertest.Start(t)
	const email = "sent@example.org"
	id := ts.NewUser(email, goodPassword)
	r := ts.MustSucceed("user-set-emailsent", map[string]any{"email": email, "email_type": "forgotpass"})
	if r.Str("emailforgotpass_sent_datetime") == "" || r.Str("emailverify_sent_datetime") == "" {
		t.Errorf("reply %v", r.Response)
	}
	if got, _ := r.Int("user_id"); got != id || r.Messages[0] != "Email sent notification request succeeded." {
		t.Errorf("reply %v messages %q", r.Response, r.Messages)
	}
	for _, tc := range []struct{ email, typ, reason string }{
		{email, "changepass", "invalid request: invalid email_type requested"},
		{"nobody@example.org", "signup", "could not update the email sent status in DB"},
	} {
		r := ts.Do("user-set-emailsent", map[string]any{"email": tc.email, "email_type": tc.typ})
		if r.Success || r.FailureReason != tc.reason {
			t.Errorf("%s/%s: success %v reason %q; want %q", tc.email, tc.typ, r.Success, r.FailureReason, tc.reason)
		}
	}
	// The recorded time counts for the spacing rule.
	r = ts.Do("user-sendemail-forgotpass", forgotMailBody(email, ts.NewSession(0)))
	if r.FailureReason != "forgot-pass verification email sent less than 24 hours ago" {
		t.Errorf("after set-emailsent: reason %q", r.FailureReason)
	}
}

// TestSignUpResendReplacesCode: a sign-up for an unverified address after its
// retry wait replaces the first (docs/email.md, "Codes: format, lifetime,
// single use"); the code mailed for the first no longer activates the account
// (it would activate the second sign-up's password), the code mailed for the
// second does, and only the second password logs in.
func TestSignUpResendReplacesCode(t *testing.T) {
	sink := startSMTP(t)
	ts := startWithMail(t, sink.port)
	const email = "resend@example.org"
	const secondPassword = "another correct horse battery staple 7"
	id, created := signUp(t, ts, email)
	longLived := func(sess string) map[string]any {
		b := signupMailBody(email, sess, created)
		b["verification_expiry"] = 24 * 3600 // outlives the clock jump below
		return b
	}
	ts.MustSucceed("user-sendemail-signup", longLived(ts.NewSession(0)))
	firstCode := codeOf(t, sink.last(t))

	again := map[string]any{"full_name": "Jane Public", "email": email, "password": secondPassword}
	r := ts.Do("user-new", again)
	if r.Success || r.FailureReason != "user exists" || r.Response["send_verification"] != false {
		t.Fatalf("sign-up again within the retry wait: success %v reason %q send_verification %v", r.Success, r.FailureReason, r.Response["send_verification"])
	}
	ts.Advance(7 * time.Hour) // past the default 6-hour verify_retry_wait
	r = ts.Do("user-new", again)
	if r.Success || r.FailureReason != "user exists" || r.Response["send_verification"] != true {
		t.Fatalf("sign-up again after the retry wait: success %v reason %q send_verification %v", r.Success, r.FailureReason, r.Response["send_verification"])
	}
	if got, _ := r.Int("user_id"); got != id {
		t.Errorf("resend answered user_id %d; want %d (the same account)", got, id)
	}

	r = ts.Do("user-set-emailverified", map[string]any{"email": email, "verification_token": firstCode})
	if r.Success || r.FailureReason != "invalid verification token" {
		t.Errorf("first sign-up's code after the resend: success %v reason %q; want invalid verification token", r.Success, r.FailureReason)
	}
	if u := userRecord(t, ts, id); u.IsActive {
		t.Fatal("the replaced sign-up's code activated the account")
	}
	ts.MustSucceed("user-sendemail-signup", longLived(ts.NewSession(0)))
	ts.MustSucceed("user-set-emailverified", map[string]any{"email": email, "verification_token": codeOf(t, sink.last(t))})
	if r := ts.Do("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": goodPassword}); r.Success {
		t.Error("the replaced sign-up's password logs in")
	}
	ts.MustSucceed("user-login", map[string]any{"session_token": ts.NewSession(0), "email": email, "password": secondPassword})
}
