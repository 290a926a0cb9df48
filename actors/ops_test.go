package actors

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// sampleOps holds one operation of every registered type, with fields set
// to values that would be lost by a careless codec.
func sampleOps() []broadcastOp {
	var all []broadcastOp
	for _, ops := range [][]broadcastOp{sampleCoreOps(), sampleSessionOps(), sampleUserOps(), sampleEmailOps(), sampleAPIKeyOps(), sampleSocialOps()} {
		all = append(all, ops...)
	}
	return all
}

// sampleCoreOps holds one operation of each type of ops.go.
func sampleCoreOps() []broadcastOp {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)
	return []broadcastOp{
		GetUser{ID: 1<<62 + 5},
		CreateUser{User: shard.User{
			ID: 42, SystemID: "sys-42", FullName: "Zoë \u2028 O'Brien", PasswordPHC: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
			Email: "zoe@example.org", EmailVerified: true, IsActive: true, EmailVerifySent: t0,
			LastLoginTry: t0.Add(time.Hour), ExtraInfo: json.RawMessage(`{"a":[1,2,{"b":null}]}`),
			CreatedOn: t0, LastUpdated: t0, Role: "staff", AutoUnlockAt: t0.Add(2 * time.Hour),
			EmailTokens: []shard.EmailToken{{}},
		}},
		ClaimEmail{Email: "\x00sid:abc", ID: 7},
		ReleaseEmail{Email: "a@b.org", ID: 9},
		PurgeSessions{OlderThan: 36 * time.Hour},
		CountRecords{},
		SetRateBuckets{Cap: 1000},
		RateTake{Key: 1<<63 + 3, Rate: shard.Rate{Burst: 5, Interval: 1500 * time.Millisecond}, PeekOnly: true},
		RateGiveBack{Key: 1<<64 - 1, Rate: shard.Rate{Burst: 1, Interval: time.Nanosecond}},
	}
}

func TestOpCodecRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range sampleOps() {
		b, err := EncodeOp(op)
		if err != nil {
			t.Fatalf("encode %T: %v", op, err)
		}
		got, err := DecodeOp(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, op) {
			t.Errorf("%T round trip:\n got %#v\nwant %#v", op, got, op)
		}
		seen[opName(op)] = true
	}
	for name := range opTypes {
		if !seen[name] {
			t.Errorf("operation %s has no sample in sampleOps: add one", name)
		}
	}
}

func TestDecodeOpRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not JSON", `{"op":`},
		{"not an object", `[1,2]`},
		{"unknown operation", `{"op":"FormatDisk","args":{}}`},
		{"no name", `{"args":{"id":1}}`},
		{"wrong field type", `{"op":"GetUser","args":{"id":"one"}}`},
		{"id out of range", `{"op":"GetUser","args":{"id":18446744073709551617}}`},
		{"unknown field", `{"op":"GetUser","args":{"id":1,"admin":true}}`},
		{"trailing data in args", `{"op":"GetUser","args":{"id":1} }x`},
		{"oversized", `{"op":"GetUser","args":{"id":1,"pad":"` + strings.Repeat("x", maxOpBytes) + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, err := DecodeOp([]byte(tt.in))
			if !errors.Is(err, ErrBadOp) {
				t.Errorf("DecodeOp = %#v, %v; want ErrBadOp", op, err)
			}
		})
	}
}

func FuzzDecodeOp(f *testing.F) {
	for _, op := range sampleOps() {
		b, err := EncodeOp(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"op":"GetUser","args":null}`))
	f.Add([]byte(`{"op":"CreateUser","args":{"user":{"extra_info":{}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOp(b)
		if err != nil {
			if !errors.Is(err, ErrBadOp) {
				t.Fatalf("error %v does not wrap ErrBadOp", err)
			}
			return
		}
		// What decodes encodes again to the same operation.
		again, err := EncodeOp(op)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", op, err)
		}
		op2, err := DecodeOp(again)
		if err != nil || !reflect.DeepEqual(op, op2) {
			t.Fatalf("re-decode of %s: %#v, %v; want %#v", again, op2, err, op)
		}
	})
}

// The operations run on their shards through the actors, and answer as
// documented.
func TestAskOps(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := startTestCore(t, Options{Shards: 4, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})

	if _, err := Ask[shard.User](c, GetUser{ID: 42}); !errors.Is(err, shard.ErrUserNotFound) {
		t.Fatalf("GetUser of nobody: %v; want ErrUserNotFound", err)
	}
	claim, err := Ask[Claim](c, ClaimEmail{Email: "a@b.org", ID: 42})
	if err != nil || !claim.Value.Claimed {
		t.Fatalf("first claim: %+v, %v", claim.Value, err)
	}
	if claim, err := Ask[Claim](c, ClaimEmail{Email: "a@b.org", ID: 43}); err != nil || claim.Value.Claimed || claim.Value.Owner != 42 {
		t.Fatalf("second claim: %+v, %v; want refused, owner 42", claim.Value, err)
	}
	if _, err := Ask[shard.User](c, CreateUser{User: shard.User{ID: 42, Email: "a@b.org", Role: "authenticated"}}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := Ask[shard.User](c, CreateUser{User: shard.User{ID: 42}}); !errors.Is(err, shard.ErrUserExists) {
		t.Fatalf("CreateUser of a used id: %v; want ErrUserExists", err)
	}
	if u, err := Ask[shard.User](c, GetUser{ID: 42}); err != nil || u.Value.Email != "a@b.org" {
		t.Fatalf("GetUser: %+v, %v", u.Value, err)
	}
	if _, err := Ask[any](c, ReleaseEmail{Email: "a@b.org", ID: 43}); err != nil {
		t.Fatal(err)
	}
	if claim, _ := Ask[Claim](c, ClaimEmail{Email: "a@b.org", ID: 44}); claim.Value.Claimed {
		t.Fatalf("a release by a user that does not hold the address freed it")
	}
	counts, err := c.Counts()
	if err != nil || counts.Users != 1 || counts.Emails != 1 {
		t.Fatalf("Counts = %+v, %v; want 1 user, 1 email", counts, err)
	}
	// A purge reaches every shard and answers each one's count.
	rs, err := AskAll[int](c, PurgeSessions{})
	if err != nil || len(rs) != 4 {
		t.Fatalf("PurgeSessions: %d results, %v", len(rs), err)
	}
}
