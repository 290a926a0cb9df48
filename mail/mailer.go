package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	mail "github.com/wneessen/go-mail"
)

// Errors returned by [Mailer.Send]. A mail that reached a worker and could
// not be delivered is a *[MailError] instead.
var (
	// ErrMailerBusy means every worker is busy and the queue is full. It is
	// returned at once, so a request never waits on a backlog of mail.
	ErrMailerBusy = errors.New("mail: mailer busy")
	// ErrMailerStopped means [Mailer.Stop] has been called.
	ErrMailerStopped = errors.New("mail: mailer stopped")
	// ErrMailerTimeout means no result came within MailerOptions.Wait. The
	// mail is then not sent: a worker drops a job whose caller gave up, and
	// an attempt in progress is cut off at the same deadline.
	ErrMailerTimeout = errors.New("mail: mailer timeout")
)

// MailError is a mail that could not be delivered after the allowed
// attempts. Err is the last attempt's error. Its text may hold addresses
// (the library and SMTP replies name recipients): log [MailError.Class]
// instead.
type MailError struct {
	Attempts int
	Err      error
}

// Class describes the failure without personal data, for logs: "network",
// "smtp <code>", "timeout", or "refused" (TLS or address policy, AUTH).
func (e *MailError) Class() string {
	var te *textproto.Error
	var se *mail.SendError
	var ne net.Error
	switch {
	case errors.As(e.Err, &te):
		return fmt.Sprintf("smtp %d", te.Code)
	case errors.As(e.Err, &se) && se.ErrorCode() > 0:
		return fmt.Sprintf("smtp %d", se.ErrorCode())
	case errors.Is(e.Err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(e.Err, &ne):
		return "network"
	}
	return "refused"
}

// maxCauseBytes bounds [MailError.Cause].
const maxCauseBytes = 512

// Cause is the last attempt's error text for logs, with every word that
// holds an "@" (addresses of recipients and senders, message ids) replaced
// by "[address]", and at most maxCauseBytes long. It says why a send
// failed: "x509: certificate signed by unknown authority", "target host
// does not support STARTTLS", an SMTP reply.
func (e *MailError) Cause() string {
	if e.Err == nil {
		return ""
	}
	words := strings.Fields(e.Err.Error())
	for i, w := range words {
		if strings.Contains(w, "@") {
			words[i] = "[address]"
		}
	}
	c := strings.Join(words, " ")
	if len(c) > maxCauseBytes {
		c = strings.ToValidUTF8(c[:maxCauseBytes], "") + "…"
	}
	return c
}

func (e *MailError) Error() string {
	return fmt.Sprintf("mail: mail not sent after %d attempt(s): %v", e.Attempts, e.Err)
}

func (e *MailError) Unwrap() error { return e.Err }

// MailTLS is how a mail connection uses STARTTLS.
type MailTLS int

const (
	// MailTLSStartTLS (the default, "starttls") requires STARTTLS, as the
	// reference does, except to a relay on a loopback address (see
	// [IsLoopbackHost]), where it is used when offered and plain text is
	// accepted otherwise: mail to a local relay never crosses a network, and
	// a local relay often has no certificate.
	MailTLSStartTLS MailTLS = iota
	// MailTLSRequired refuses to send unless STARTTLS succeeds, to any
	// relay.
	MailTLSRequired
	// MailTLSNone never uses TLS (a relay that cannot do it, on a network
	// the operator trusts).
	MailTLSNone
	// MailTLSOpportunistic ("opportunistic") upgrades with STARTTLS when the
	// relay offers it and sends in the clear otherwise, to any relay. NB: a
	// network attacker can strip the offer; choose it knowingly.
	MailTLSOpportunistic
)

// ParseMailTLS reads the AUTHNZERVER_EMAILTLS value: "starttls" (also
// ""), "required" (or "mandatory"), "none" (or "off"), "opportunistic".
func ParseMailTLS(s string) (MailTLS, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "starttls":
		return MailTLSStartTLS, nil
	case "required", "mandatory":
		return MailTLSRequired, nil
	case "none", "off":
		return MailTLSNone, nil
	case "opportunistic":
		return MailTLSOpportunistic, nil
	}
	return 0, fmt.Errorf("mail: email TLS mode %q: want starttls, required, none or opportunistic", s)
}

// IsLoopbackHost reports whether an SMTP relay host names this machine for
// certain: an IP address in 127.0.0.0/8 or ::1 (also IPv4-mapped), or the
// name "localhost" (RFC 6761 reserves it for the loopback address; it is
// also the default relay). Any other name is not loopback, even one that
// resolves to a loopback address: the answer must not depend on DNS, which
// an attacker may control.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// tlsPolicy is the go-mail TLS policy of mode for a relay at host.
func tlsPolicy(mode MailTLS, host string) mail.TLSPolicy {
	switch mode {
	case MailTLSRequired:
		return mail.TLSMandatory
	case MailTLSNone:
		return mail.NoTLS
	case MailTLSOpportunistic:
		return mail.TLSOpportunistic
	}
	if IsLoopbackHost(host) {
		return mail.TLSOpportunistic
	}
	return mail.TLSMandatory
}

// SMTPSettings say where and how to deliver one mail. Requests may override
// the configured ones (docs/email.md, "Configuration"), so they travel with
// each mail.
type SMTPSettings struct {
	Host string
	Port int
	// User and Pass enable SMTP AUTH (mechanism discovered from the
	// server) when User is not empty. The library refuses to send a
	// password over an unencrypted connection.
	User, Pass string
	TLS        MailTLS
	// RootCAs verify the server's STARTTLS certificate; nil means the
	// system's roots.
	RootCAs *x509.CertPool
}

// LoadMailCAs reads a PEM file of CA certificates for SMTPSettings.RootCAs.
func LoadMailCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mail: email CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("mail: email CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Mail is one plain-text message. The caller has checked that no header
// field holds a line break; the library checks the addresses again.
type Mail struct {
	SMTP    SMTPSettings
	From    string   // "Name <addr>" or "addr"
	To      []string // bare addresses
	Subject string
	Body    string
}

// MailerOptions configure [NewMailer]. A zero field means the default.
type MailerOptions struct {
	// Workers is how many mails are sent at once. Default 2.
	Workers int
	// QueueLen is how many admitted mails may wait for a worker. Default
	// 16. Beyond Workers + QueueLen, Send refuses with ErrMailerBusy.
	QueueLen int
	// AttemptTimeout bounds one delivery attempt (connect, TLS, AUTH,
	// DATA). Default 10 s.
	AttemptTimeout time.Duration
	// Retries is how many times a temporary failure (connection refused,
	// timeout, 4xx reply) is retried. Default 2; negative means none.
	// Permanent failures (5xx) are not retried.
	Retries int
	// Backoff is the wait before the first retry; it doubles each time.
	// Default 500 ms.
	Backoff time.Duration
	// Wait bounds how long Send waits for the result, from admission,
	// including time in the queue. Default 25 s: below the 30 s a frontend
	// typically allows a request.
	Wait time.Duration

	// send replaces the SMTP delivery in tests.
	send func(ctx context.Context, m *Mail) error
	// dial, when set, makes the SMTP connections of the real delivery, in
	// tests: a relay named by any host can then be one on loopback.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Mailer is a small pool of SMTP worker actors with a bounded queue. Its
// methods are safe for concurrent use. [Mailer.Send] blocks its caller
// (bounded by Wait), so call it from an HTTP goroutine, never from a shard
// actor's Receive.
//
// Invariant: inflight counts jobs admitted and not yet finished, and never
// exceeds capacity (Send increments it only by a compare-and-swap below
// capacity; the worker decrements it). Every admitted job gets exactly one
// reply on its buffered channel, so a worker never blocks on a caller.
type Mailer struct {
	// Static after NewMailer.
	root     *actor.RootContext
	pids     []*actor.PID
	capacity int32
	opts     MailerOptions
	ctx      context.Context // cancelled by Stop: cuts off attempts in progress
	cancel   context.CancelFunc

	// Shared: atomics.
	inflight atomic.Int32
	next     atomic.Uint32 // round-robin worker choice

	mu       sync.RWMutex
	stopped  bool // guarded by mu
	stopOnce sync.Once
}

type mailJob struct {
	mail     Mail
	deadline time.Time // the caller stops waiting here
	reply    chan error
}

type mailWorker struct{ m *Mailer }

// NewMailer starts the workers on system.
func NewMailer(system *actor.ActorSystem, opts MailerOptions) *Mailer {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 16
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.Retries == 0 {
		opts.Retries = 2
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 500 * time.Millisecond
	}
	if opts.Wait <= 0 {
		opts.Wait = 25 * time.Second
	}
	if opts.send == nil {
		dial := opts.dial
		opts.send = func(ctx context.Context, m *Mail) error { return sendSMTP(ctx, m, dial) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mailer{
		root:     system.Root,
		pids:     make([]*actor.PID, opts.Workers),
		capacity: int32(opts.Workers + opts.QueueLen),
		opts:     opts,
		ctx:      ctx,
		cancel:   cancel,
	}
	for i := range m.pids {
		props := actor.PropsFromProducer(func() actor.Actor { return &mailWorker{m: m} })
		m.pids[i] = system.Root.SpawnPrefix(props, "mailer")
	}
	return m
}

// Send delivers mail and returns nil once the SMTP server accepted it.
// It returns ErrMailerBusy at once when the queue is full, ErrMailerStopped,
// ErrMailerTimeout, or a *MailError when delivery failed.
func (m *Mailer) Send(mail Mail) error {
	job := &mailJob{mail: mail, deadline: time.Now().Add(m.opts.Wait), reply: make(chan error, 1)}
	job.mail.To = append([]string(nil), mail.To...)
	m.mu.RLock()
	if m.stopped {
		m.mu.RUnlock()
		return ErrMailerStopped
	}
	if !m.admit() {
		m.mu.RUnlock()
		return ErrMailerBusy
	}
	// Jobs are few and slow, so round robin is good enough: a busy worker's
	// queue drains in seconds either way.
	m.root.Send(m.pids[int(m.next.Add(1))%len(m.pids)], job)
	m.mu.RUnlock()

	// A little slack, so a job that ran up to its deadline still reports
	// its own error rather than a bare timeout.
	t := time.NewTimer(m.opts.Wait + 250*time.Millisecond)
	defer t.Stop()
	select {
	case err := <-job.reply:
		return err
	case <-t.C:
		return ErrMailerTimeout
	}
}

func (m *Mailer) admit() bool {
	for {
		n := m.inflight.Load()
		if n >= m.capacity {
			return false
		}
		if m.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Stop refuses new mail, cuts off attempts in progress (their callers get
// ErrMailerStopped) and stops the workers. Calls after the first do nothing.
func (m *Mailer) Stop() {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.stopped = true
		m.mu.Unlock()
		m.cancel()
		futures := make([]*actor.Future, len(m.pids))
		for i, pid := range m.pids {
			futures[i] = m.root.PoisonFuture(pid)
		}
		for _, f := range futures {
			_ = f.Wait()
		}
	})
}

// Receive delivers one mail with retries. Protoactor delivers one message at
// a time, so each worker holds at most one SMTP connection.
func (w *mailWorker) Receive(c actor.Context) {
	job, ok := c.Message().(*mailJob)
	if !ok {
		return // lifecycle messages
	}
	err := w.m.deliver(job)
	w.m.inflight.Add(-1)
	job.reply <- err
}

// deliver makes up to 1+Retries attempts before the job's deadline, with
// doubling back-off between them, retrying only temporary failures.
func (m *Mailer) deliver(job *mailJob) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("mail: mail send panicked: %v", r)
		}
	}()
	ctx, cancel := context.WithDeadline(m.ctx, job.deadline)
	defer cancel()
	if ctx.Err() != nil {
		return m.ctxErr(ctx) // the caller gave up while the job queued
	}
	backoff := m.opts.Backoff
	attempts := 0
	for {
		attempts++
		actx, acancel := context.WithTimeout(ctx, m.opts.AttemptTimeout)
		err = m.opts.send(actx, &job.mail)
		acancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return m.ctxErr(ctx)
		}
		if attempts > m.opts.Retries || !temporary(err) {
			return &MailError{Attempts: attempts, Err: err}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &MailError{Attempts: attempts, Err: err}
		}
		backoff *= 2
	}
}

func (m *Mailer) ctxErr(ctx context.Context) error {
	if m.ctx.Err() != nil {
		return ErrMailerStopped
	}
	return ErrMailerTimeout
}

// temporary reports whether a failed attempt may succeed later: network
// errors and SMTP 4xx replies. A 5xx reply (bad recipient, authentication
// refused) or a policy failure (TLS required but not offered) will fail the
// same way again.
func temporary(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) {
		return se.IsTemp()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// sendSMTP delivers one mail over SMTP with go-mail. dial, when not nil,
// replaces the network dialer (tests).
func sendSMTP(ctx context.Context, m *Mail, dial mail.DialContextFunc) error {
	msg := mail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return fmt.Errorf("mail: mail sender: %w", err)
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("mail: mail recipient: %w", err)
	}
	if from, err := msg.GetSender(false); err == nil {
		msg.SetGenHeader(mail.Header("Sender"), from)
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, m.Body)

	opts := []mail.Option{
		mail.WithPort(m.SMTP.Port),
		mail.WithTimeout(timeoutOf(ctx)),
	}
	opts = append(opts, mail.WithTLSPolicy(tlsPolicy(m.SMTP.TLS, m.SMTP.Host)))
	if m.SMTP.RootCAs != nil {
		opts = append(opts, mail.WithTLSConfig(&tls.Config{ServerName: m.SMTP.Host, RootCAs: m.SMTP.RootCAs, MinVersion: tls.VersionTLS12}))
	}
	if dial != nil {
		opts = append(opts, mail.WithDialContextFunc(dial))
	}
	if m.SMTP.User != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(m.SMTP.User), mail.WithPassword(m.SMTP.Pass))
	}
	c, err := mail.NewClient(m.SMTP.Host, opts...)
	if err != nil {
		return fmt.Errorf("mail: mail client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send mail: %w", err)
	}
	return nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if t := time.Until(d); t > 0 {
			return t
		}
	}
	return time.Second
}
