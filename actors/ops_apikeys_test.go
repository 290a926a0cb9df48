package actors

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// sampleAPIKeyOps holds one operation of each type of ops_apikeys.go, for the codec
// tests (ops_test.go), with fields set to values a careless codec would lose.
func sampleAPIKeyOps() []broadcastOp {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	var d shard.APIKeyDigest
	var sd shard.SessionDigest
	for i := range d {
		d[i] = byte(255 - 7*i)
		sd[i] = byte(3 * i)
	}
	return []broadcastOp{
		CheckUserStanding{ID: 1<<62 + 5, Role: "Zoë \u2028 staff", KeyRole: "authenticated"},
		CountActiveUsers{IDs: []shard.UserID{4, -1, 1 << 62, 4}},
		CreateAPIKey{Digest: d, Key: shard.NewAPIKey{
			Kind: shard.KeyNoSession, UserID: 42, Role: "staff",
			Lifetime: 90 * time.Second, NotBefore: -1500 * time.Millisecond,
			Session: sd, SessionExpires: t0,
			RefreshPHC:      "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
			RefreshLifetime: 36 * time.Hour, RefreshNotBefore: time.Nanosecond,
		}},
		VerifyAPIKey{Kind: shard.KeyNoSession, Digest: d, UserID: 42, Role: "staff"},
		VerifyOwnAPIKey{Kind: shard.KeySession, Digest: d, UserID: 42, KeyRole: "staff", ActorRole: "Zoë"},
		OwnKeyStanding{Verdict: KeyVerdict{Key: shard.APIKey{Digest: d, UserID: 42, Role: "staff", Issued: t0, Expires: t0.Add(time.Hour), Session: sd}, Valid: true, Standing: StandingActive | StandingKeyRole},
			UserID: 42, ActorRole: "authenticated", KeyRole: "staff"},
		KeySessionLive{Session: sd},
		RefreshableAPIKey{Digest: d, UserID: 1<<62 + 1, Role: "\x00"},
		RevokeAPIKey{Kind: shard.KeyNoSession, Digest: d, UserID: 42, Role: "staff", RefreshPHC: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"},
		DeleteAPIKey{Kind: shard.KeySession, Digest: d},
		RevokeUserAPIKeys{UserID: 43, Role: "authenticated"},
		RevokeUserAPIKeysNotRole{UserID: 44, Role: "locked"},
	}
}

// countingEnqueuer counts the records the shards hand to the store and
// releases every ticket at once.
type countingEnqueuer struct{ n atomic.Int64 }

func (e *countingEnqueuer) Enqueue(ops ...persist.Op) *persist.Ticket {
	e.n.Add(int64(len(ops)))
	return persist.DoneTicket()
}

// startAPIKeyCore starts a core of 4 shards on a clock the test moves, with
// the users of the API key tests: 10 active "authenticated", 11 inactive
// "staff" and 12 active "staff".
func startAPIKeyCore(t *testing.T) (*Core, *atomic.Int64, *countingEnqueuer) {
	t.Helper()
	now := new(atomic.Int64)
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	writes := &countingEnqueuer{}
	c, err := Start(NewActorSystem(nil), nil, writes, Options{Shards: 4, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	for _, u := range []shard.User{
		{ID: 10, Role: "authenticated", IsActive: true},
		{ID: 11, Role: "staff"},
		{ID: 12, Role: "staff", IsActive: true},
	} {
		if _, err := Ask[shard.User](c, CreateUser{User: u}); err != nil {
			t.Fatal(err)
		}
	}
	return c, now, writes
}

func TestCheckUserStanding(t *testing.T) {
	c, _, _ := startAPIKeyCore(t)
	tests := []struct {
		name string
		op   CheckUserStanding
		want Standing
	}{
		{"active, both roles", CheckUserStanding{ID: 10, Role: "authenticated", KeyRole: "authenticated"}, StandingActive | StandingRole | StandingKeyRole},
		{"active, role only", CheckUserStanding{ID: 10, Role: "authenticated", KeyRole: "staff"}, StandingActive | StandingRole},
		{"active, key role only", CheckUserStanding{ID: 12, Role: "superuser", KeyRole: "staff"}, StandingActive | StandingKeyRole},
		{"active, no role asked", CheckUserStanding{ID: 12}, StandingActive},
		{"inactive with its role", CheckUserStanding{ID: 11, Role: "staff", KeyRole: "staff"}, StandingRole | StandingKeyRole},
		{"missing", CheckUserStanding{ID: 99, Role: "", KeyRole: ""}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Ask[Standing](c, tt.op)
			if err != nil || res.Value != tt.want || res.Ticket != nil {
				t.Errorf("Ask(%+v) = %03b, ticket %v, %v; want %03b, no ticket", tt.op, res.Value, res.Ticket, err, tt.want)
			}
		})
	}
}

func TestCountActiveUsers(t *testing.T) {
	c, _, _ := startAPIKeyCore(t)
	tests := []struct {
		name string
		ids  []shard.UserID
		want int
	}{
		{"none", nil, 0},
		{"all active", []shard.UserID{10, 12}, 2},
		{"one inactive", []shard.UserID{10, 11, 12}, 2},
		{"one missing", []shard.UserID{10, 99}, 1},
		{"listed twice", []shard.UserID{12, 12}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := AskAll[int](c, CountActiveUsers{IDs: tt.ids})
			if err != nil || len(rs) != c.NumShards() {
				t.Fatalf("AskAll: %d results, %v; want %d", len(rs), err, c.NumShards())
			}
			got := 0
			for _, r := range rs {
				got += r.Value
			}
			if got != tt.want {
				t.Errorf("count of %v = %d; want %d", tt.ids, got, tt.want)
			}
		})
	}
}

// digestN is the digest of the n-th test key.
func digestN(n byte) shard.APIKeyDigest {
	return shard.DigestAPIKey(string(rune('A'+n)) + "-test-token")
}

func TestAPIKeyOps(t *testing.T) {
	c, now, writes := startAPIKeyCore(t)
	t0 := time.Unix(0, now.Load()).UTC()
	// sess lives an hour, short a second.
	sess, short := shard.DigestSession("session-of-10"), shard.DigestSession("short session")
	for d, life := range map[shard.SessionDigest]time.Duration{sess: time.Hour, short: time.Second} {
		if _, err := Ask[shard.Session](c, CreateSession{Digest: d, UserID: 10, Expires: t0.Add(life)}); err != nil {
			t.Fatal(err)
		}
	}
	// Key 0 is session-tied; 1 and 2 are no-session keys of user 10 with
	// roles authenticated and staff; 3 is user 12's.
	keys := []CreateAPIKey{
		{Digest: digestN(0), Key: shard.NewAPIKey{Kind: shard.KeySession, UserID: 10, Role: "authenticated", Lifetime: time.Hour, NotBefore: -time.Second, Session: sess, SessionExpires: t0.Add(time.Hour)}},
		{Digest: digestN(1), Key: shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: 10, Role: "authenticated", Lifetime: time.Hour, NotBefore: -time.Second, RefreshPHC: "phc-1", RefreshLifetime: 2 * time.Hour}},
		{Digest: digestN(2), Key: shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: 10, Role: "staff", Lifetime: time.Hour, NotBefore: 10 * time.Minute, RefreshPHC: "phc-2", RefreshLifetime: 2 * time.Hour}},
		{Digest: digestN(3), Key: shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: 12, Role: "staff", Lifetime: time.Minute, NotBefore: -time.Second, RefreshPHC: "phc-3", RefreshLifetime: 2 * time.Hour}},
	}
	for i, op := range keys {
		before := writes.n.Load()
		res, err := Ask[shard.APIKey](c, op)
		if err != nil || res.Value.Digest != op.Digest || res.Value.Kind != op.Key.Kind || !res.Value.Issued.Equal(t0) {
			t.Fatalf("CreateAPIKey %d = %+v, %v", i, res.Value, err)
		}
		if res.Ticket == nil || writes.n.Load() != before+1 {
			t.Errorf("CreateAPIKey %d: ticket %v, %d records; want a ticket for 1", i, res.Ticket, writes.n.Load()-before)
		}
	}
	if _, err := Ask[shard.APIKey](c, keys[1]); !errors.Is(err, shard.ErrAPIKeyExists) {
		t.Errorf("CreateAPIKey of a stored digest: %v; want ErrAPIKeyExists", err)
	}
	if _, err := Ask[shard.APIKey](c, CreateAPIKey{Digest: digestN(9), Key: shard.NewAPIKey{Kind: shard.KeyNoSession, UserID: 10, Role: "staff"}}); err == nil {
		t.Errorf("CreateAPIKey of a no-session key without a refresh hash succeeded")
	}
	now.Add(int64(time.Second)) // keys are valid strictly after their issue

	t.Run("verify", func(t *testing.T) {
		tests := []struct {
			name string
			op   VerifyAPIKey
			ok   bool
		}{
			{"session-tied", VerifyAPIKey{Kind: shard.KeySession, Digest: digestN(0), UserID: 10, Role: "authenticated"}, true},
			{"no-session", VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(1), UserID: 10, Role: "authenticated"}, true},
			{"wrong kind", VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(0), UserID: 10, Role: "authenticated"}, false},
			{"wrong user", VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(1), UserID: 12, Role: "authenticated"}, false},
			{"wrong role", VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(1), UserID: 10, Role: "staff"}, false},
			{"not yet valid", VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(2), UserID: 10, Role: "staff"}, false},
			{"unknown", VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(7), UserID: 10, Role: "authenticated"}, false},
		}
		for _, tt := range tests {
			res, err := Ask[shard.APIKey](c, tt.op)
			if tt.ok && (err != nil || res.Value.Digest != tt.op.Digest || res.Value.UserID != tt.op.UserID) {
				t.Errorf("%s: %+v, %v; want the key", tt.name, res.Value, err)
			}
			if !tt.ok && (!errors.Is(err, shard.ErrAPIKeyInvalid) || res.Value != (shard.APIKey{})) {
				t.Errorf("%s: %+v, %v; want ErrAPIKeyInvalid", tt.name, res.Value, err)
			}
			if res.Ticket != nil {
				t.Errorf("%s: a verification has a ticket", tt.name)
			}
		}
	})

	t.Run("session live", func(t *testing.T) {
		tests := []struct {
			name    string
			session shard.SessionDigest
			want    bool
		}{
			{"live", sess, true},
			{"expired", short, false},
			{"unknown", shard.DigestSession("no such session"), false},
		}
		for _, tt := range tests {
			if res, err := Ask[bool](c, KeySessionLive{Session: tt.session}); err != nil || res.Value != tt.want {
				t.Errorf("%s: %v, %v; want %v", tt.name, res.Value, err, tt.want)
			}
		}
	})

	t.Run("refreshable", func(t *testing.T) {
		tests := []struct {
			name string
			op   RefreshableAPIKey
			ok   bool
		}{
			{"open window", RefreshableAPIKey{Digest: digestN(1), UserID: 10, Role: "authenticated"}, true},
			{"before the key's own window", RefreshableAPIKey{Digest: digestN(2), UserID: 10, Role: "staff"}, true},
			{"wrong role", RefreshableAPIKey{Digest: digestN(1), UserID: 10, Role: "staff"}, false},
			{"session-tied", RefreshableAPIKey{Digest: digestN(0), UserID: 10, Role: "authenticated"}, false},
		}
		for _, tt := range tests {
			res, err := Ask[shard.APIKey](c, tt.op)
			if tt.ok && (err != nil || res.Value.RefreshPHC == "") {
				t.Errorf("%s: %+v, %v; want the key with its refresh hash", tt.name, res.Value, err)
			}
			if !tt.ok && !errors.Is(err, shard.ErrAPIKeyNoRefresh) {
				t.Errorf("%s: %v; want ErrAPIKeyNoRefresh", tt.name, err)
			}
		}
	})

	// Key 3 expired a minute after issue, but can still be refreshed.
	now.Add(int64(2 * time.Minute))
	if _, err := Ask[shard.APIKey](c, VerifyAPIKey{Kind: shard.KeyNoSession, Digest: digestN(3), UserID: 12, Role: "staff"}); !errors.Is(err, shard.ErrAPIKeyInvalid) {
		t.Errorf("verify of an expired key: %v; want ErrAPIKeyInvalid", err)
	}
	if _, err := Ask[shard.APIKey](c, RefreshableAPIKey{Digest: digestN(3), UserID: 12, Role: "staff"}); err != nil {
		t.Errorf("refreshable after the key expired: %v", err)
	}

	t.Run("revoke", func(t *testing.T) {
		tests := []struct {
			name    string
			op      RevokeAPIKey
			want    bool
			records int64 // written to the store
		}{
			{"wrong user", RevokeAPIKey{Kind: shard.KeyNoSession, Digest: digestN(3), UserID: 10, Role: "staff"}, false, 0},
			{"other refresh hash", RevokeAPIKey{Kind: shard.KeyNoSession, Digest: digestN(3), UserID: 12, Role: "staff", RefreshPHC: "phc-1"}, false, 0},
			{"its refresh hash, expired", RevokeAPIKey{Kind: shard.KeyNoSession, Digest: digestN(3), UserID: 12, Role: "staff", RefreshPHC: "phc-3"}, true, 1},
			{"already gone", RevokeAPIKey{Kind: shard.KeyNoSession, Digest: digestN(3), UserID: 12, Role: "staff"}, false, 0},
		}
		for _, tt := range tests {
			before := writes.n.Load()
			res, err := Ask[bool](c, tt.op)
			if err != nil || res.Value != tt.want {
				t.Errorf("%s: %v, %v; want %v", tt.name, res.Value, err, tt.want)
			}
			if got := writes.n.Load() - before; got != tt.records || (res.Ticket != nil) != (tt.records > 0) {
				t.Errorf("%s: ticket %v, %d records written; want %d", tt.name, res.Ticket, got, tt.records)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		for _, want := range []int64{1, 0} { // the second finds nothing
			before := writes.n.Load()
			if _, err := Ask[struct{}](c, DeleteAPIKey{Kind: shard.KeySession, Digest: digestN(0)}); err != nil {
				t.Fatal(err)
			}
			if got := writes.n.Load() - before; got != want {
				t.Errorf("DeleteAPIKey wrote %d records; want %d", got, want)
			}
		}
		if _, err := Ask[shard.APIKey](c, VerifyAPIKey{Kind: shard.KeySession, Digest: digestN(0), UserID: 10, Role: "authenticated"}); !errors.Is(err, shard.ErrAPIKeyInvalid) {
			t.Errorf("verify after DeleteAPIKey: %v; want ErrAPIKeyInvalid", err)
		}
	})
}

// The fan-outs revoke a user's keys on every shard and answer each
// shard's count.
func TestRevokeUserAPIKeysOps(t *testing.T) {
	tests := []struct {
		name string
		op   broadcastOp
		want int // keys deleted, of the four made below
		left []int
	}{
		{"no-session keys of one role", RevokeUserAPIKeys{UserID: 10, Role: "staff"}, 1, []int{0, 1, 3}},
		{"no-session keys of any role", RevokeUserAPIKeys{UserID: 10}, 2, []int{0, 3}},
		{"keys of other roles", RevokeUserAPIKeysNotRole{UserID: 10, Role: "staff"}, 2, []int{2, 3}},
		{"every key of a locked user", RevokeUserAPIKeysNotRole{UserID: 10, Role: "locked"}, 3, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, now, writes := startAPIKeyCore(t)
			var keys []VerifyAPIKey
			for i, k := range []shard.NewAPIKey{
				{Kind: shard.KeySession, UserID: 10, Role: "authenticated", Lifetime: time.Hour, SessionExpires: time.Unix(0, now.Load()).Add(time.Hour)},
				{Kind: shard.KeyNoSession, UserID: 10, Role: "authenticated", Lifetime: time.Hour, RefreshPHC: "phc"},
				{Kind: shard.KeyNoSession, UserID: 10, Role: "staff", Lifetime: time.Hour, RefreshPHC: "phc"},
				{Kind: shard.KeyNoSession, UserID: 12, Role: "staff", Lifetime: time.Hour, RefreshPHC: "phc"},
			} {
				k.NotBefore = -time.Second
				if _, err := Ask[shard.APIKey](c, CreateAPIKey{Digest: digestN(byte(i)), Key: k}); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, VerifyAPIKey{Kind: k.Kind, Digest: digestN(byte(i)), UserID: k.UserID, Role: k.Role})
			}
			now.Add(int64(time.Second))
			before := writes.n.Load()

			var rs []Result[int]
			var err error
			switch op := tt.op.(type) {
			case RevokeUserAPIKeys:
				rs, err = AskAll[int](c, op)
			case RevokeUserAPIKeysNotRole:
				rs, err = AskAll[int](c, op)
			}
			if err != nil || len(rs) != c.NumShards() {
				t.Fatalf("AskAll: %d results, %v", len(rs), err)
			}
			if err := WaitAll(rs); err != nil {
				t.Fatal(err)
			}
			got := 0
			for _, r := range rs {
				got += r.Value
			}
			if got != tt.want || writes.n.Load()-before != int64(tt.want) {
				t.Errorf("deleted %d, wrote %d records; want %d", got, writes.n.Load()-before, tt.want)
			}
			left := []int{}
			for i, k := range keys {
				if _, err := Ask[shard.APIKey](c, k); err == nil {
					left = append(left, i)
				}
			}
			if !slices.Equal(left, tt.left) {
				t.Errorf("keys left %v; want %v", left, tt.left)
			}
		})
	}
}
