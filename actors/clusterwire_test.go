package actors

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// Every sentinel a caller tests with errors.Is is still one after crossing
// the wire, wrapped or not, and keeps its Reason.
func TestWireErrorsKeepSentinels(t *testing.T) {
	for code, s := range wireSentinels {
		for _, err := range []error{s, fmt.Errorf("context: %w", s), fmt.Errorf("%w: %w", ErrUnwritable, s)} {
			b := encodeReply(testWireKey, reply{err: err}, nil)
			r, derr := decodeReply(testWireKey, b)
			if derr != nil {
				t.Fatalf("%s: %v", code, derr)
			}
			if !errors.Is(r.err, s) || r.err.Error() != err.Error() {
				t.Errorf("%s: %v came back as %v", code, err, r.err)
			}
		}
	}
	type reasoned interface{ Reason() string }
	b := encodeReply(testWireKey, reply{}, reasonErr{})
	r, err := decodeReply(testWireKey, b)
	if err != nil {
		t.Fatal(err)
	}
	derr := r.ticket.Wait()
	var re reasoned
	if !errors.As(derr, &re) || re.Reason() != "disk says no" || !errors.Is(derr, persist.ErrDiskFull) {
		t.Errorf("durability error came back as %v", derr)
	}
}

type reasonErr struct{}

func (reasonErr) Error() string  { return "full: " + persist.ErrDiskFull.Error() }
func (reasonErr) Reason() string { return "disk says no" }
func (reasonErr) Unwrap() error  { return persist.ErrDiskFull }

var testWireKey = DeriveClusterKey([]byte("wire test"))

// Values come back as the caller's type; requests carry every operation.
func TestWireRoundTrip(t *testing.T) {
	for _, op := range sampleOps() {
		b, err := encodeRequest(testWireKey, 3, op)
		if err != nil {
			t.Fatalf("%T: %v", op, err)
		}
		i, got, err := decodeRequest(testWireKey, b)
		if err != nil || i != 3 || opName(got) != opName(op) {
			t.Fatalf("%T: %d %T %v", op, i, got, err)
		}
	}
	t0 := time.Date(2026, 12, 1, 1, 2, 3, 4000, time.UTC)
	info := SessionInfo{Session: shard.Session{UserID: 7, Expires: t0, IPAddress: "192.0.2.1"}, User: shard.User{ID: 7, Email: "a@b.org", Role: "staff", CreatedOn: t0}}
	r, err := decodeReply(testWireKey, encodeReply(testWireKey, reply{val: info}, nil))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resultOf[SessionInfo](r)
	if err != nil || res.Value.User.Email != "a@b.org" || !res.Value.Session.Expires.Equal(t0) || res.Ticket != nil {
		t.Fatalf("SessionInfo came back as %+v, %v", res, err)
	}
}

// A message of another key, another version, another kind, cut short or
// changed in one byte is refused, never run.
func TestWireRefusesForeignMessages(t *testing.T) {
	good, err := encodeRequest(testWireKey, 1, GetUser{ID: 9})
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	otherVersion := bytes.Clone(good)
	otherVersion[0] = ClusterWireVersion + 1
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"other key":     {mustEncode(t, DeriveClusterKey([]byte("other")), GetUser{ID: 9}), ErrPeerMessage},
		"other version": {otherVersion, ErrPeerVersion},
		"a reply":       {encodeReply(testWireKey, reply{}, nil), ErrPeerMessage},
		"cut short":     {good[:len(good)-1], ErrPeerMessage},
		"body changed":  {flip(5), ErrPeerMessage},
		"empty":         {nil, ErrPeerMessage},
		"oversized":     {make([]byte, maxWireBytes+1), ErrPeerMessage},
	}
	for name, tc := range cases {
		if _, _, err := decodeRequest(testWireKey, tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func mustEncode(t *testing.T, key []byte, op broadcastOp) []byte {
	t.Helper()
	b, err := encodeRequest(key, 1, op)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzClusterMessages: the decoders of everything another node sends (a
// request, a reply, sealed or not) never panic, and what they accept
// encodes again.
func FuzzClusterMessages(f *testing.F) {
	for _, op := range sampleOps()[:8] {
		b, _ := encodeRequest(testWireKey, 2, op)
		f.Add(b)
		f.Add(b[2 : len(b)-wireMACLen])
	}
	f.Add(encodeReply(testWireKey, reply{val: 42, err: shard.ErrUserNotFound}, persist.ErrDiskFull))
	f.Add([]byte(`{"value":{"a":1},"err":{"codes":["busy","nope"],"msg":"x","reason":"r"},"durable":{"msg":""}}`))
	f.Add([]byte(`{"shard":-1,"op":{"op":"GetUser","args":{"id":1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if i, op, err := decodeRequest(testWireKey, b); err == nil {
			if _, err := encodeRequest(testWireKey, i, op); err != nil {
				t.Fatalf("accepted request does not encode: %v", err)
			}
		}
		if i, op, err := decodeRequestBody(b); err == nil {
			if i < 0 {
				t.Fatalf("negative shard accepted")
			}
			if _, err := EncodeOp(op); err != nil {
				t.Fatalf("accepted operation does not encode: %v", err)
			}
		}
		if r, err := decodeReplyBody(b); err == nil {
			_ = encodeReply(testWireKey, r, nil)
			if r.err != nil {
				_ = r.err.Error()
				_ = errors.Is(r.err, ErrBusy)
			}
			if r.ticket != nil {
				_ = r.ticket.Wait()
			}
			if wv, ok := r.val.(wireValue); ok {
				_, _ = decodeWireValue[SessionInfo](wv)
			}
		}
		_, _ = decodeReply(testWireKey, b)
	})
}
