package actors

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/mail"
	"github.com/authnzerver/authnzerver/shard"
)

// The email flows, without HTTP: the sends, the verification, the
// frontend's sent marks and the use of a code, on a real core with a mailer
// that keeps what it is given.

// fakeMailer records the mails it is asked to send and answers err. When
// hold is set, Send waits on it (and says so on entered) first.
type fakeMailer struct {
	mu      sync.Mutex
	sent    []mail.Mail
	err     error
	hold    chan struct{}
	entered chan struct{}
}

func (m *fakeMailer) Send(ml mail.Mail) error {
	if m.hold != nil {
		m.entered <- struct{}{}
		<-m.hold
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.sent = append(m.sent, ml)
	return nil
}

func (m *fakeMailer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

// lastCode is the code in the last mail sent (unwrapped).
func (m *fakeMailer) lastCode(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sent) == 0 {
		t.Fatal("no mail sent")
	}
	var code strings.Builder
	in := false
	for _, l := range strings.Split(m.sent[len(m.sent)-1].Body, "\n") {
		if strings.HasPrefix(l, tokenPrefix) {
			in = true
		}
		if in && l == "" {
			break
		}
		if in {
			code.WriteString(l)
		}
	}
	if code.Len() == 0 {
		t.Fatal("no code in the mail")
	}
	return code.String()
}

type emailHarness struct {
	*accountsHarness
	*Emails
	mailer *fakeMailer
}

func startEmails(t *testing.T) *emailHarness {
	t.Helper()
	h := startAccounts(t, AccountOptions{})
	m := &fakeMailer{}
	return &emailHarness{accountsHarness: h, Emails: NewEmails(h.Accounts, m, DeriveCodeKey("test secret")), mailer: m}
}

// mailRequest is a send's request from a live session.
func (h *emailHarness) mailRequest(t *testing.T, token string) MailRequest {
	t.Helper()
	return MailRequest{
		SMTP: mail.SMTPSettings{Host: "smtp.example.org", Port: 25}, From: "server@example.org",
		Lifetime: 15 * time.Minute, ServerName: "Test", ServerBaseURL: "https://example.org", VerifyURL: "/verify",
		Session: h.newSession(t, token, shard.AnonymousID), At: h.clock(),
	}
}

// pending signs a user up: inactive, waiting for its verification.
func (h *emailHarness) pending(t *testing.T, email string) shard.User {
	t.Helper()
	r := h.signUp(t, signUpForm(email, goodPassword))
	if !r.OK() {
		t.Fatal(r.Refusal)
	}
	return r.User
}

func TestSendSignupCodeAndVerify(t *testing.T) {
	h := startEmails(t)
	u := h.pending(t, "new@example.org")
	h.advance(time.Minute)
	r, err := h.SendSignupCode("New@Example.org", u.ID, h.mailRequest(t, "s1"))
	if err != nil || !r.OK() {
		t.Fatalf("SendSignupCode = %q, %v; want success", r.Refusal, err)
	}
	if r.User.ID != u.ID || !r.User.EmailVerifySent.Equal(h.clock()) {
		t.Errorf("answer user %d sent %v; want %d sent now", r.User.ID, r.User.EmailVerifySent, u.ID)
	}
	sent := h.mailer.sent[0]
	if len(sent.To) != 1 || sent.To[0] != "new@example.org" || sent.From != "server@example.org" || !strings.Contains(sent.Body, "https://example.org/verify") {
		t.Errorf("mail %+v; want one to the user, from the sender, with the verify URL", sent)
	}
	code := h.mailer.lastCode(t)
	stored := h.getUser(t, u.ID)
	if len(stored.EmailTokens) != 1 || stored.EmailTokens[0].Digest != codeDigest(code) {
		t.Fatalf("stored codes %+v; want the mailed one", stored.EmailTokens)
	}

	// The code of another purpose, an altered one and no user are refused
	// without activating anyone.
	for _, tc := range []struct {
		name, email, code string
		want              Refusal
	}{
		{"altered code", "new@example.org", code[:len(code)-2] + "xx", RefusedCodeInvalid},
		{"empty code", "new@example.org", "", RefusedCodeInvalid},
		{"code of another address", "other@example.org", code, RefusedCodeInvalid},
		{"expired code", "new@example.org", code, RefusedCodeExpired},
	} {
		at := h.clock()
		if tc.want == RefusedCodeExpired {
			at = at.Add(time.Hour)
		}
		r, err := h.SetEmailVerified(tc.email, tc.code, true, at)
		if err != nil || r.Refusal != tc.want {
			t.Errorf("%s: SetEmailVerified = %q, %v; want %q", tc.name, r.Refusal, err, tc.want)
		}
	}
	if h.getUser(t, u.ID).IsActive {
		t.Fatal("a refused code activated the user")
	}

	r, err = h.SetEmailVerified("new@example.org", NormalizeCode(wrapCode(code)), true, h.clock())
	if err != nil || !r.OK() || !r.User.IsActive || r.User.Role != "authenticated" || r.User.ID != u.ID {
		t.Fatalf("SetEmailVerified = %q %+v, %v; want the user active and authenticated", r.Refusal, r.User, err)
	}
	// Used up: a second use is refused.
	if r, err := h.SetEmailVerified("new@example.org", code, true, h.clock()); err != nil || r.Refusal != RefusedCodeInvalid {
		t.Errorf("second use = %q, %v; want %q", r.Refusal, err, RefusedCodeInvalid)
	}
	// A verified user gets no sign-up mail.
	if r, err := h.SendSignupCode("new@example.org", u.ID, h.mailRequest(t, "s2")); err != nil || r.Refusal != RefusedVerified {
		t.Errorf("send to a verified user = %q, %v; want %q", r.Refusal, err, RefusedVerified)
	}
	if h.mailer.count() != 1 {
		t.Errorf("%d mails sent; want 1", h.mailer.count())
	}
}

func TestSendSignupCodeRefusals(t *testing.T) {
	h := startEmails(t)
	u := h.pending(t, "new@example.org")
	noSession := h.mailRequest(t, "s0")
	noSession.Session = shard.DigestSession("no such session")
	tests := []struct {
		name  string
		email string
		id    shard.UserID
		req   MailRequest
		fail  error
		want  Refusal
	}{
		{"unknown email", "nobody@example.org", u.ID, h.mailRequest(t, "s1"), nil, RefusedNoUser},
		{"another user's id", "new@example.org", u.ID + 1, h.mailRequest(t, "s2"), nil, RefusedNoUser},
		{"no session", "new@example.org", u.ID, noSession, nil, RefusedNoSession},
		{"mail server refuses", "new@example.org", u.ID, h.mailRequest(t, "s3"), &mail.MailError{Attempts: 2, Err: errors.New("550 no")}, RefusedMailFailed},
		{"mail server times out", "new@example.org", u.ID, h.mailRequest(t, "s4"), mail.ErrMailerTimeout, RefusedMailFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.mailer.err = tt.fail
			r, err := h.SendSignupCode(tt.email, tt.id, tt.req)
			if err != nil || r.Refusal != tt.want {
				t.Fatalf("SendSignupCode = %q, %v; want %q", r.Refusal, err, tt.want)
			}
		})
	}
	h.mailer.err = nil
	if h.mailer.count() != 0 || len(h.getUser(t, u.ID).EmailTokens) != 0 {
		t.Error("a refused send mailed or recorded a code")
	}
	// A full or stopped mailer is busy: an error, not a refusal.
	h.mailer.err = mail.ErrMailerBusy
	if _, err := h.SendSignupCode("new@example.org", u.ID, h.mailRequest(t, "s5")); !errors.Is(err, ErrBusy) {
		t.Errorf("busy mailer: err %v; want ErrBusy", err)
	}
	h.mailer.err = nil
	// No mailer: the mail server's fault.
	none := NewEmails(h.Accounts, nil, h.Key())
	if r, err := none.SendSignupCode("new@example.org", u.ID, h.mailRequest(t, "s6")); err != nil || r.Refusal != RefusedMailFailed {
		t.Errorf("no mailer: %q, %v; want %q", r.Refusal, err, RefusedMailFailed)
	}
}

func TestSendInFlight(t *testing.T) {
	h := startEmails(t)
	u := h.pending(t, "new@example.org")
	h.mailer.hold, h.mailer.entered = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan Answer)
	go func() {
		r, err := h.SendSignupCode("new@example.org", u.ID, h.mailRequest(t, "s1"))
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-h.mailer.entered
	second := make(chan Answer, 1)
	req := h.mailRequest(t, "s2")
	go func() {
		r, err := h.SendSignupCode("new@example.org", u.ID, req)
		if err != nil {
			t.Error(err)
		}
		second <- r
	}()
	select {
	case r := <-second:
		if r.Refusal != RefusedInFlight {
			t.Errorf("send while one is in flight = %q; want %q", r.Refusal, RefusedInFlight)
		}
	case <-h.mailer.entered:
		t.Error("a second send went to the mailer while one was in flight")
	case <-time.After(10 * time.Second):
		t.Fatal("the second send did not answer")
	}
	close(h.mailer.hold)
	if r := <-done; !r.OK() {
		t.Errorf("the first send = %q; want success", r.Refusal)
	}
	h.mailer.hold = nil
	// Once it is out, the next one may go.
	if r, err := h.SendSignupCode("new@example.org", u.ID, h.mailRequest(t, "s3")); err != nil || !r.OK() {
		t.Errorf("send after the first = %q, %v; want success", r.Refusal, err)
	}
}

func TestSendForgotPassCode(t *testing.T) {
	h := startEmails(t)
	h.addUser(t, 10, "alice@example.org", goodPassword, "authenticated")
	h.addUser(t, 11, "held@example.org", goodPassword, "locked")
	h.addUser(t, 12, "anon@example.org", goodPassword, "anonymous")
	pending := h.pending(t, "pending@example.org")
	for _, tc := range []struct{ name, email string }{
		{"unknown", "nobody@example.org"}, {"locked", "held@example.org"},
		{"anonymous", "anon@example.org"}, {"inactive", pending.Email},
	} {
		if r, err := h.SendForgotPassCode(tc.email, h.mailRequest(t, "x-"+tc.name)); err != nil || r.Refusal != RefusedNoUser {
			t.Errorf("%s: SendForgotPassCode = %q, %v; want %q", tc.name, r.Refusal, err, RefusedNoUser)
		}
	}
	if h.mailer.count() != 0 {
		t.Fatal("a refused user was mailed")
	}

	h.mailer.err = &mail.MailError{Err: errors.New("down")}
	r, err := h.SendForgotPassCode("alice@example.org", h.mailRequest(t, "f0"))
	if err != nil || r.Refusal != RefusedMailFailed || r.User.Email != "alice@example.org" {
		t.Fatalf("mail server down = %q %q, %v; want %q naming the user's address", r.Refusal, r.User.Email, err, RefusedMailFailed)
	}
	h.mailer.err = nil

	r, err = h.SendForgotPassCode("Alice@Example.org", h.mailRequest(t, "f1"))
	if err != nil || !r.OK() || r.User.ID != 10 || r.User.Email != "alice@example.org" || !r.User.EmailForgotPassSent.Equal(h.clock()) {
		t.Fatalf("SendForgotPassCode = %q %d %v, %v; want success, sent now", r.Refusal, r.User.ID, r.User.EmailForgotPassSent, err)
	}
	code := h.mailer.lastCode(t)
	// At most one a day.
	h.advance(23 * time.Hour)
	if r, err := h.SendForgotPassCode("alice@example.org", h.mailRequest(t, "f2")); err != nil || r.Refusal != RefusedTooSoon {
		t.Errorf("second mail within a day = %q, %v; want %q", r.Refusal, err, RefusedTooSoon)
	}
	// The code is for resets only, and spent once.
	at := h.clock().Add(-23 * time.Hour)
	if r, err := h.UseCode("alice@example.org", shard.PurposeSignup, code, at); err != nil || r.Refusal != RefusedCodeInvalid {
		t.Errorf("code used for another purpose = %q, %v; want %q", r.Refusal, err, RefusedCodeInvalid)
	}
	if r, err := h.UseCode("alice@example.org", shard.PurposeForgotPass, code, at); err != nil || !r.OK() || r.User.ID != 10 {
		t.Errorf("UseCode = %q %d, %v; want success for user 10", r.Refusal, r.User.ID, err)
	}
	if r, err := h.UseCode("alice@example.org", shard.PurposeForgotPass, code, at); err != nil || r.Refusal != RefusedCodeInvalid {
		t.Errorf("second UseCode = %q, %v; want %q", r.Refusal, err, RefusedCodeInvalid)
	}
	h.advance(time.Hour)
	if r, err := h.SendForgotPassCode("alice@example.org", h.mailRequest(t, "f3")); err != nil || !r.OK() {
		t.Errorf("mail after a day = %q, %v; want success", r.Refusal, err)
	}
	// The frontend's own code is mailed as it is and checked by its digest;
	// past its lifetime it is expired.
	h.advance(25 * time.Hour)
	req := h.mailRequest(t, "f4")
	req.Code = "frontend-code-123"
	if r, err := h.SendForgotPassCode("alice@example.org", req); err != nil || !r.OK() || h.mailer.lastCodeLine(t) != "frontend-code-123" {
		t.Fatalf("send with the frontend's code = %q, %v", r.Refusal, err)
	}
	if r, err := h.UseCode("alice@example.org", shard.PurposeForgotPass, "frontend-code-123", h.clock().Add(time.Hour)); err != nil || r.Refusal != RefusedCodeExpired {
		t.Errorf("expired frontend code = %q, %v; want %q", r.Refusal, err, RefusedCodeExpired)
	}
	if r, err := h.UseCode("nobody@example.org", shard.PurposeForgotPass, "frontend-code-123", h.clock()); err != nil || r.Refusal != RefusedCodeInvalid {
		t.Errorf("code for an unknown address = %q, %v; want %q", r.Refusal, err, RefusedCodeInvalid)
	}
}

// lastCodeLine is the line of the last mail that follows the verify URL's
// paragraph: where the code is.
func (m *fakeMailer) lastCodeLine(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	lines := strings.Split(m.sent[len(m.sent)-1].Body, "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "/verify.") && i+2 < len(lines) {
			return lines[i+2]
		}
	}
	t.Fatal("no code line in the mail")
	return ""
}

func TestSetEmailVerifiedAndNoteEmailSent(t *testing.T) {
	h := startEmails(t)
	u := h.pending(t, "new@example.org")
	if r, err := h.SetEmailVerified("nobody@example.org", "", false, h.clock()); err != nil || r.Refusal != RefusedNoUser {
		t.Errorf("unknown email = %q, %v; want %q", r.Refusal, err, RefusedNoUser)
	}
	if r, err := h.NoteEmailSent("nobody@example.org", shard.PurposeSignup, h.clock()); err != nil || r.Refusal != RefusedNoUser {
		t.Errorf("NoteEmailSent of an unknown email = %q, %v; want %q", r.Refusal, err, RefusedNoUser)
	}
	h.advance(time.Hour)
	r, err := h.NoteEmailSent("NEW@example.org", shard.PurposeForgotPass, h.clock())
	if err != nil || !r.OK() || r.User.ID != u.ID || !r.User.EmailForgotPassSent.Equal(h.clock()) || r.User.IsActive {
		t.Fatalf("NoteEmailSent = %q %+v, %v; want the forgot-pass mark set now", r.Refusal, r.User, err)
	}
	if got := h.getUser(t, u.ID).EmailForgotPassSent; !got.Equal(h.clock()) {
		t.Errorf("stored forgot-pass mark %v; want now", got)
	}
	// Without a code, the verification is the frontend's word.
	r, err = h.SetEmailVerified("new@example.org", "", false, h.clock())
	if err != nil || !r.OK() || !r.User.IsActive || r.User.Role != "authenticated" {
		t.Fatalf("SetEmailVerified without a code = %q %+v, %v", r.Refusal, r.User, err)
	}
	if got := h.getUser(t, u.ID); !got.IsActive || !got.EmailVerified {
		t.Errorf("stored user %+v; want active and verified", got)
	}
}
