package mail

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
	mail "github.com/wneessen/go-mail"
)

func TestIsLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"[::1]", true},
		{"::ffff:127.0.0.1", true},
		{"localhost", true},
		{"LocalHost.", true},
		{"", false},
		{"0.0.0.0", false},
		{"::", false},
		{"10.0.0.1", false},
		{"192.0.2.2", false},
		{"fe80::1%lo", false},
		{"localhost.example.org", false},
		{"mail.localhost", false},
		{"mail.example.org", false},
		{"127.0.0.1.example.org", false},
	}
	for _, tt := range tests {
		if got := IsLoopbackHost(tt.host); got != tt.want {
			t.Errorf("IsLoopbackHost(%q) = %v; want %v", tt.host, got, tt.want)
		}
	}
}

func TestTLSPolicy(t *testing.T) {
	tests := []struct {
		mode MailTLS
		host string
		want mail.TLSPolicy
	}{
		{MailTLSStartTLS, "mail.example.org", mail.TLSMandatory},
		{MailTLSStartTLS, "192.0.2.2", mail.TLSMandatory},
		{MailTLSStartTLS, "127.0.0.1", mail.TLSOpportunistic},
		{MailTLSStartTLS, "::1", mail.TLSOpportunistic},
		{MailTLSStartTLS, "localhost", mail.TLSOpportunistic},
		{MailTLSRequired, "127.0.0.1", mail.TLSMandatory},
		{MailTLSRequired, "mail.example.org", mail.TLSMandatory},
		{MailTLSNone, "mail.example.org", mail.NoTLS},
		{MailTLSOpportunistic, "mail.example.org", mail.TLSOpportunistic},
	}
	for _, tt := range tests {
		if got := tlsPolicy(tt.mode, tt.host); got != tt.want {
			t.Errorf("tlsPolicy(%d, %q) = %v; want %v", tt.mode, tt.host, got, tt.want)
		}
	}
	var zero SMTPSettings
	if zero.TLS != MailTLSStartTLS {
		t.Errorf("zero SMTPSettings.TLS = %d; want MailTLSStartTLS, the safe default", zero.TLS)
	}
}

func TestMailErrorCause(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    []string
		notWant []string
	}{
		{"certificate", fmt.Errorf("mail: send mail: %w", x509.UnknownAuthorityError{}),
			[]string{"x509: certificate signed by unknown authority"}, nil},
		{"recipient in a reply", errors.New(`550 5.1.1 <jane.doe@example.org>: Recipient address rejected, affected recipient(s): jane.doe@example.org, affected message ID: <1.2@host>`),
			[]string{"550 5.1.1 [address] Recipient address rejected"}, []string{"jane", "example.org", "1.2@host"}},
		{"long", errors.New(strings.Repeat("é", 600)), []string{"…"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&MailError{Attempts: 1, Err: tt.err}).Cause()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Cause() = %q; want it to contain %q", got, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("Cause() = %q; want no %q", got, w)
				}
			}
			if len(got) > maxCauseBytes+len("…") || !utf8Valid(got) {
				t.Errorf("Cause() is %d bytes or not UTF-8", len(got))
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// A real SMTP relay (go-smtp) on loopback that records what it receives.
type relay struct {
	mu    sync.Mutex
	mails []bool // per mail: received over TLS
	addr  string
}

func (r *relay) NewSession(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r, c: c}, nil }

type relaySession struct {
	r *relay
	c *smtp.Conn
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *relaySession) Reset()                               {}
func (s *relaySession) Logout() error                        { return nil }
func (s *relaySession) Data(rd io.Reader) error {
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return err
	}
	_, overTLS := s.c.TLSConnectionState()
	s.r.mu.Lock()
	s.r.mails = append(s.r.mails, overTLS)
	s.r.mu.Unlock()
	return nil
}

func (r *relay) received() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.mails...)
}

// startRelay starts a relay on 127.0.0.1; with cfg it offers STARTTLS.
func startRelay(t *testing.T, cfg *tls.Config) *relay {
	t.Helper()
	r := &relay{}
	srv := smtp.NewServer(r)
	srv.Domain = "relay.test"
	srv.TLSConfig = cfg
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// relayCert returns a self-signed certificate for mail.example.org and
// 127.0.0.1, and a pool that trusts it.
func relayCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"mail.example.org"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestSendTLSPolicy delivers through the real SMTP path to relays with and
// without STARTTLS. Every connection goes to a relay on 127.0.0.1 (the dial
// hook), whatever host the mail names, so that the policy of a host that is
// not loopback is tested without a network.
func TestSendTLSPolicy(t *testing.T) {
	cert, trusted := relayCert(t)
	plain := startRelay(t, nil)
	withTLS := startRelay(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	tests := []struct {
		name      string
		relay     *relay
		host      string
		mode      MailTLS
		cas       *x509.CertPool
		wantSent  bool
		wantTLS   bool
		wantCause string
	}{
		{"default, remote relay without STARTTLS: refused", plain, "mail.example.org", MailTLSStartTLS, nil, false, false, "does not support STARTTLS"},
		{"default, remote address without STARTTLS: refused", plain, "192.0.2.2", MailTLSStartTLS, nil, false, false, "does not support STARTTLS"},
		{"default, name that is not localhost: refused", plain, "localhost.example.org", MailTLSStartTLS, nil, false, false, "does not support STARTTLS"},
		{"default, loopback address without STARTTLS: plain", plain, "127.0.0.1", MailTLSStartTLS, nil, true, false, ""},
		{"default, localhost without STARTTLS: plain", plain, "localhost", MailTLSStartTLS, nil, true, false, ""},
		{"default, remote relay with STARTTLS: TLS", withTLS, "mail.example.org", MailTLSStartTLS, trusted, true, true, ""},
		{"default, loopback relay with STARTTLS: TLS", withTLS, "127.0.0.1", MailTLSStartTLS, trusted, true, true, ""},
		{"default, untrusted certificate: refused", withTLS, "mail.example.org", MailTLSStartTLS, nil, false, false, "certificate"},
		{"required, loopback without STARTTLS: refused", plain, "127.0.0.1", MailTLSRequired, nil, false, false, "does not support STARTTLS"},
		{"opportunistic, remote relay without STARTTLS: plain", plain, "mail.example.org", MailTLSOpportunistic, nil, true, false, ""},
		{"none, remote relay with STARTTLS: plain", withTLS, "mail.example.org", MailTLSNone, nil, true, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.relay.addr
			m := newTestMailer(t, MailerOptions{Backoff: time.Millisecond, dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			}})
			_, port, _ := net.SplitHostPort(addr)
			var p int
			fmt.Sscan(port, &p)
			before := len(tt.relay.received())
			err := m.Send(Mail{
				SMTP: SMTPSettings{Host: tt.host, Port: p, TLS: tt.mode, RootCAs: tt.cas},
				From: "sender@example.org", To: []string{"jane@example.org"}, Subject: "test", Body: "hello",
			})
			got := tt.relay.received()[before:]
			if !tt.wantSent {
				var me *MailError
				if !errors.As(err, &me) || len(got) != 0 {
					t.Fatalf("Send = %v, relay got %d mails; want a MailError and none", err, len(got))
				}
				if c := me.Cause(); !strings.Contains(c, tt.wantCause) || strings.Contains(c, "jane") {
					t.Errorf("Cause() = %q; want it to say %q and no address", c, tt.wantCause)
				}
				if me.Attempts != 1 {
					t.Errorf("attempts = %d; want 1 (a policy refusal is permanent)", me.Attempts)
				}
				return
			}
			if err != nil || len(got) != 1 {
				t.Fatalf("Send = %v, relay got %d mails; want one", err, len(got))
			}
			if got[0] != tt.wantTLS {
				t.Errorf("over TLS = %v; want %v", got[0], tt.wantTLS)
			}
		})
	}
}
