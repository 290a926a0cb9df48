package mail

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/textproto"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func newTestMailer(t *testing.T, opts MailerOptions) *Mailer {
	t.Helper()
	system := newQuietActorSystem()
	m := NewMailer(system, opts)
	t.Cleanup(func() {
		m.Stop()
		system.Shutdown()
	})
	return m
}

// newQuietActorSystem returns an actor system that does not log.
func newQuietActorSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

func TestParseMailTLS(t *testing.T) {
	tests := []struct {
		in      string
		want    MailTLS
		wantErr bool
	}{
		{"", MailTLSStartTLS, false},
		{"starttls", MailTLSStartTLS, false},
		{" StartTLS ", MailTLSStartTLS, false},
		{"Required", MailTLSRequired, false},
		{"mandatory", MailTLSRequired, false},
		{"none", MailTLSNone, false},
		{"off", MailTLSNone, false},
		{"opportunistic", MailTLSOpportunistic, false},
		{"tls", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseMailTLS(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseMailTLS(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMailerRetries(t *testing.T) {
	tests := []struct {
		name         string
		errs         []error // per attempt; nil = delivered
		retries      int
		wantAttempts int
		wantErr      bool
	}{
		{"first try", []error{nil}, 2, 1, false},
		{"refused then delivered", []error{errRefused, errRefused, nil}, 2, 3, false},
		{"refused every time", []error{errRefused, errRefused, errRefused, errRefused}, 2, 3, true},
		{"4xx is retried", []error{&textproto.Error{Code: 451, Msg: "try later"}, nil}, 2, 2, false},
		{"5xx is not retried", []error{&textproto.Error{Code: 550, Msg: "no such user"}, nil}, 2, 1, true},
		{"policy error is not retried", []error{errors.New("STARTTLS required"), nil}, 2, 1, true},
		{"no retries", []error{errRefused, nil}, -1, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			m := newTestMailer(t, MailerOptions{Retries: tc.retries, Backoff: time.Millisecond, send: func(ctx context.Context, _ *Mail) error {
				i := int(n.Add(1)) - 1
				return tc.errs[i]
			}})
			err := m.Send(Mail{To: []string{"a@example.org"}})
			if got := int(n.Load()); got != tc.wantAttempts {
				t.Errorf("attempts = %d; want %d", got, tc.wantAttempts)
			}
			var me *MailError
			if tc.wantErr != (err != nil) || (err != nil && (!errors.As(err, &me) || me.Attempts != tc.wantAttempts)) {
				t.Errorf("Send = %v; want error %v after %d attempts", err, tc.wantErr, tc.wantAttempts)
			}
		})
	}
}

// TestMailerBusy fills the workers and the queue and checks that the next
// Send is refused at once, and that the queued mails are still delivered.
func TestMailerBusy(t *testing.T) {
	release := make(chan struct{})
	var sent atomic.Int32
	m := newTestMailer(t, MailerOptions{Workers: 1, QueueLen: 2, send: func(ctx context.Context, _ *Mail) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		sent.Add(1)
		return nil
	}})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- m.Send(Mail{}) }()
	}
	for m.inflight.Load() != 3 {
		time.Sleep(time.Millisecond)
	}
	if err := m.Send(Mail{}); !errors.Is(err, ErrMailerBusy) {
		t.Errorf("Send on a full queue = %v; want ErrMailerBusy", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("queued Send = %v; want nil", err)
		}
	}
	if sent.Load() != 3 {
		t.Errorf("sent %d; want 3", sent.Load())
	}
}

// TestMailerTimeout checks that a caller waits no longer than Wait and that
// a job whose caller gave up is not sent. The first attempt ignores its
// deadline (as a stuck SMTP server would), so the worker stays busy until
// both callers have given up, whatever the goroutines' start order.
func TestMailerTimeout(t *testing.T) {
	block := make(chan struct{})
	var sent atomic.Int32
	m := newTestMailer(t, MailerOptions{Workers: 1, Wait: 50 * time.Millisecond, send: func(ctx context.Context, _ *Mail) error {
		sent.Add(1)
		<-block
		return nil
	}})
	done := make(chan error, 2)
	go func() { done <- m.Send(Mail{}) }()
	go func() { done <- m.Send(Mail{}) }()
	for range 2 {
		if err := <-done; !errors.Is(err, ErrMailerTimeout) {
			t.Errorf("Send = %v; want ErrMailerTimeout", err)
		}
	}
	close(block)
	for m.inflight.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	if n := sent.Load(); n != 1 {
		t.Errorf("attempts %d; want 1 (the queued job's caller gave up)", n)
	}
}

func TestMailerStop(t *testing.T) {
	started := make(chan struct{})
	m := newTestMailer(t, MailerOptions{Workers: 1, send: func(ctx context.Context, _ *Mail) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}})
	done := make(chan error, 1)
	go func() { done <- m.Send(Mail{}) }()
	<-started
	m.Stop()
	if err := <-done; !errors.Is(err, ErrMailerStopped) {
		t.Errorf("Send cut off by Stop = %v; want ErrMailerStopped", err)
	}
	if err := m.Send(Mail{}); !errors.Is(err, ErrMailerStopped) {
		t.Errorf("Send after Stop = %v; want ErrMailerStopped", err)
	}
}
