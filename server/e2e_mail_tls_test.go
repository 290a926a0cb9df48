package server_test

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/authnzerver/authnzerver/server/servertest"
)

const forgotFailed = "forgot-pass verification email could not be sent because email server issue"

// nonLoopbackAddr returns an address of this machine that is not loopback
// (nor link-local), so that a relay there is "remote" to the TLS policy
// while the traffic stays on this machine.
func nonLoopbackAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() || ipn.IP.To4() == nil {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort(ipn.IP.String(), "0")); err == nil {
			ln.Close()
			return ipn.IP.String()
		}
	}
	// The TLS policy itself is tested without a network in actors
	// (TestSendTLSPolicy); this only needs a second local address.
	t.Skip("no non-loopback IPv4 address to put a relay on")
	return ""
}

// startSMTPOn starts a sink that offers no STARTTLS on host.
func startSMTPOn(t *testing.T, host string) *mailSink {
	t.Helper()
	k := &mailSink{}
	srv := smtp.NewServer(k)
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	k.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return k
}

// With the default AUTHNZERVER_EMAILTLS=starttls, mail to a relay that is
// not on loopback and offers no STARTTLS is refused (as the reference
// does), and the log says why; "opportunistic" and "none" still send.
func TestEmailDefaultTLSRefusesPlainRemoteRelay(t *testing.T) {
	host := nonLoopbackAddr(t)
	sink := startSMTPOn(t, host)
	for _, tt := range []struct {
		mode     string
		wantSent bool
	}{
		{"", false}, // the default
		{"starttls", false},
		{"opportunistic", true},
		{"none", true},
	} {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			opts := []servertest.Option{
				servertest.Env("AUTHNZERVER_EMAILSERVER", host),
				servertest.Env("AUTHNZERVER_EMAILPORT", strconv.Itoa(sink.port)),
				servertest.Env("AUTHNZERVER_EMAILSENDER", "Example Server <noreply@example.org>"),
			}
			if tt.mode != "" {
				opts = append(opts, servertest.Env("AUTHNZERVER_EMAILTLS", tt.mode))
			}
			ts := servertest.Start(t, opts...)
			const email = "remote@example.org"
			ts.NewUser(email, goodPassword)
			before := sink.count()
			r := ts.Do("user-sendemail-forgotpass", forgotMailBody(email, ts.NewSession(0)))
			if tt.wantSent {
				if !r.Success || sink.count() != before+1 {
					t.Fatalf("success %v reason %q mails %d->%d; want one mail", r.Success, r.FailureReason, before, sink.count())
				}
				return
			}
			if r.Success || r.FailureReason != forgotFailed || sink.count() != before {
				t.Fatalf("success %v reason %q mails %d->%d; want the email-server failure and no mail", r.Success, r.FailureReason, before, sink.count())
			}
			logs := ts.Log.String()
			if !strings.Contains(logs, "does not support STARTTLS") {
				t.Errorf("the log does not say why the mail was refused:\n%s", mailLines(logs))
			}
			if strings.Contains(logs, email) || strings.Contains(logs, "noreply@") {
				t.Errorf("the log holds an address:\n%s", mailLines(logs))
			}
		})
	}
}

// A relay on a loopback address or "localhost" may be plain under the
// default policy.
func TestEmailDefaultTLSPlainLoopbackRelay(t *testing.T) {
	sink := startSMTP(t) // 127.0.0.1, no STARTTLS
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			ts := startWithMail(t, sink.port, servertest.Env("AUTHNZERVER_EMAILSERVER", host))
			email := "loop-" + strings.ReplaceAll(host, ".", "-") + "@example.org"
			ts.NewUser(email, goodPassword)
			before := sink.count()
			ts.MustSucceed("user-sendemail-forgotpass", forgotMailBody(email, ts.NewSession(0)))
			if sink.count() != before+1 || sink.last(t).overTLS {
				t.Errorf("mails %d->%d; want one plain mail", before, sink.count())
			}
		})
	}
}

// A failed send logs its cause: here the certificate verification error of
// a relay whose certificate is not trusted.
func TestEmailFailureLogsCause(t *testing.T) {
	certFile, keyFile, _ := writeSelfSigned(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sink := startSMTPWith(t, &mailSink{}, &tls.Config{Certificates: []tls.Certificate{cert}})
	ts := startWithMail(t, sink.port) // STARTTLS offered, so used; no CA file
	const email = "untrusted@example.org"
	ts.NewUser(email, goodPassword)
	r := ts.Do("user-sendemail-forgotpass", forgotMailBody(email, ts.NewSession(0)))
	if r.Success || r.FailureReason != forgotFailed || sink.count() != 0 {
		t.Fatalf("success %v reason %q mails %d; want the email-server failure and no mail", r.Success, r.FailureReason, sink.count())
	}
	logs := mailLines(ts.Log.String())
	if !strings.Contains(logs, "certificate signed by unknown authority") {
		t.Errorf("the log does not give the certificate error:\n%s", logs)
	}
	if strings.Contains(logs, email) {
		t.Errorf("the log holds the recipient:\n%s", logs)
	}
}

// mailLines returns the log lines about mail.
func mailLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "mail") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
