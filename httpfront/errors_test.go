package httpfront

import (
	"errors"
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
)

// TestStatusOf: every failure of the hasher pool is a 503, like every other
// "busy, retry later" condition; other errors are 500.
func TestStatusOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("handler: %w", err) }
	for _, tc := range []struct {
		err  error
		want int
	}{
		{passhash.ErrHasherBusy, 503},
		{passhash.ErrHasherTimeout, 503},
		{passhash.ErrHasherStopped, 503},
		{wrap(fmt.Errorf("%w: op 1 of 1: %w", passhash.ErrHasherFault, passhash.ErrHashProcess)), 503},
		{wrap(fmt.Errorf("%w: op 1 of 1: %w", passhash.ErrHasherFault, passhash.ErrHasherTimeout)), 503},
		{wrap(errBusy), 503},
		{wrap(errUnwritable), 503},
		{actors.ErrTimeout, 503},
		{actors.ErrStopped, 503},
		{errors.New("something else"), 500},
	} {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d; want %d", tc.err, got, tc.want)
		}
	}
}

// TestPlain503RetryAfter: a 503 tells the client when to retry, with the
// protocol's busy text.
func TestPlain503RetryAfter(t *testing.T) {
	s := &Server{}
	var ctx fasthttp.RequestCtx
	s.plain(&ctx, 503)
	if got := ctx.Response.StatusCode(); got != 503 {
		t.Errorf("status %d; want 503", got)
	}
	if got := string(ctx.Response.Header.Peek("Retry-After")); got != "1" {
		t.Errorf("Retry-After %q; want 1", got)
	}
	if got := string(ctx.Response.Body()); got != text503 {
		t.Errorf("body %q; want %q", got, text503)
	}
}

// TestBusyCauseHasher: a 503 for a hasher fault is counted as the hasher's,
// not the store's.
func TestBusyCauseHasher(t *testing.T) {
	for _, err := range []error{
		passhash.ErrHasherBusy,
		passhash.ErrHasherTimeout,
		passhash.ErrHasherStopped,
		fmt.Errorf("%w: op 1 of 1: %w", passhash.ErrHasherFault, passhash.ErrHashProcess),
	} {
		if got := busyCause(err); got != BusyHasher {
			t.Errorf("busyCause(%v) = %v; want hasher", err, got)
		}
	}
}

// TestAnswerOf: a handler's error becomes the status answer statusOf gives
// it, whatever result came with it, and keeps the error as its cause; with
// no error the handler's result is the answer, a deliberate status included.
func TestAnswerOf(t *testing.T) {
	ok := success("fine").with("user_id", 4)
	tests := []struct {
		name       string
		res        result
		err        error
		wantStatus int
		wantOK     bool
	}{
		{"success", ok, nil, 0, true},
		{"failure", failure("no such user"), nil, 0, false},
		{"deliberate 400", result{status: 400}, nil, 400, false},
		{"timeout", result{}, actors.ErrTimeout, 503, false},
		{"wrapped busy", ok, fmt.Errorf("login: %w", passhash.ErrHasherBusy), 503, false},
		{"unwritable", result{}, errUnwritable, 503, false},
		{"other", result{}, errors.New("boom"), 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := answerOf(tt.res, tt.err)
			if got.status != tt.wantStatus || got.ok != tt.wantOK {
				t.Errorf("answerOf = status %d ok %v; want %d %v", got.status, got.ok, tt.wantStatus, tt.wantOK)
			}
			if got.cause != tt.err {
				t.Errorf("cause = %v; want %v", got.cause, tt.err)
			}
			if tt.err != nil && (len(got.fieldList()) != 0 || got.messageList() != nil) {
				t.Errorf("an error answer carries the handler's fields: %+v", got)
			}
		})
	}
}
