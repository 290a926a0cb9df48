package actors

import (
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// sampleUserOps holds one operation of each type of ops_users.go, for the codec
// tests (ops_test.go), with fields set to values a careless codec would lose.
func sampleUserOps() []broadcastOp {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)
	return []broadcastOp{
		LookupEmail{Email: "zoë@example.org"},
		Ping{},
		RecordLoginTry{ID: 1<<40 + 3, Success: true},
		SetPassword{ID: 9, OldPHC: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$b2xk", NewPHC: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$bmV3"},
		LockUser{ID: 12, Until: t0.Add(time.Hour), SpareProtected: true},
		UnlockUser{ID: 13, OnlyIfDue: true},
		EditUser{
			ID: 14, FullName: "Zoë \u2028 O'Brien", SetFullName: true, Email: "z@example.org", SetEmail: true,
			Role: "staff", SetRole: true, EmailVerified: true, SetEmailVerified: true, IsActive: false, SetIsActive: true,
			Extra:    map[string]json.RawMessage{"a": json.RawMessage(`[1,{"b":null}]`), "gone": json.RawMessage(`"__delete__"`)},
			SetExtra: true, MaxExtraBytes: 64 << 10,
		},
		DeleteUser{ID: 15},
		ForgetUser{ID: 16},
		ClaimNewEmail{Email: "fresh@example.org"},
		SignUp{User: shard.User{ID: 17, SystemID: "sys-17", FullName: "New", PasswordPHC: "$argon2id$x", Email: "n@example.org",
			ExtraInfo: json.RawMessage(`{"provenance":"request-created"}`), Role: "locked"}},
		SignUpAgain{ID: 18, FullName: "Again", PasswordPHC: "$argon2id$y", ExtraInfo: json.RawMessage(`{"verify_retry_wait":6}`),
			RetryWait: 6 * time.Hour, DropCodePurpose: "signup"},
		ListUsers{After: 1 << 33, Limit: 500, Match: UserMatch{
			By: "extra_info", ID: -4, Text: "Zoë", Bool: true, Time: t0,
			Extra: map[string]string{"k": `{"a":[1,2]}`, "": "null"},
		}},
		BeginAttempt{Email: "a@example.org", Tries: 10, Decay: time.Hour, LockFor: 2 * time.Hour, Stale: time.Minute},
		EndAttempt{Email: "a@example.org", Outcome: shard.AttemptCancelled},
		SetAttemptWindow{Email: "a@example.org", Until: t0},
		ResetFailures{Email: "a@example.org"},
	}
}

// startUserCore starts a core of 4 shards on a clock the test sets, holding
// the users given.
func startUserCore(t *testing.T, now *atomic.Int64, users ...shard.User) *Core {
	t.Helper()
	c := startTestCore(t, Options{Shards: 4, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	for _, u := range users {
		if _, err := Ask[shard.User](c, CreateUser{User: u}); err != nil {
			t.Fatal(err)
		}
		if _, err := Ask[Claim](c, ClaimEmail{Email: u.Email, ID: u.ID}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// The edits that moved from the front into user operations: each is one
// step on the user's shard, checking and changing the record at once.
func TestAskUserEdits(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	alice := shard.User{ID: 10, Email: "alice@example.org", Role: "staff", IsActive: true, EmailVerified: true, PasswordPHC: "old", ExtraInfo: json.RawMessage(`{"k":1,"gone":2}`)}
	root := shard.User{ID: shard.SuperuserID, Email: "root@example.org", Role: "superuser", IsActive: true}
	pending := shard.User{ID: 11, Email: "new@example.org", Role: "locked", PasswordPHC: "p1", EmailVerifySent: t0.Add(-2 * time.Hour),
		EmailTokens: []shard.EmailToken{{Purpose: "signup", Digest: "d", Expires: t0.Add(time.Hour)}}}
	tests := []struct {
		name    string
		op      Op
		wantErr error
		check   func(t *testing.T, got any, stored shard.User)
	}{
		{"login try, failed", RecordLoginTry{ID: 10}, nil, func(t *testing.T, _ any, u shard.User) {
			if !u.LastLoginTry.Equal(t0) || !u.LastLoginSuccess.IsZero() {
				t.Errorf("tries: %v, %v; want %v, zero", u.LastLoginTry, u.LastLoginSuccess, t0)
			}
		}},
		{"login try, success", RecordLoginTry{ID: 10, Success: true}, nil, func(t *testing.T, _ any, u shard.User) {
			if !u.LastLoginSuccess.Equal(t0) {
				t.Errorf("last success %v; want %v", u.LastLoginSuccess, t0)
			}
		}},
		{"login try of nobody", RecordLoginTry{ID: 99}, shard.ErrUserNotFound, nil},
		{"password, still the old one", SetPassword{ID: 10, OldPHC: "old", NewPHC: "new"}, nil, func(t *testing.T, _ any, u shard.User) {
			if u.PasswordPHC != "new" {
				t.Errorf("password %q; want new", u.PasswordPHC)
			}
		}},
		{"password changed meanwhile", SetPassword{ID: 10, OldPHC: "older", NewPHC: "new"}, shard.ErrNoChange, func(t *testing.T, _ any, u shard.User) {
			if u.PasswordPHC != "old" {
				t.Errorf("password %q; want old kept", u.PasswordPHC)
			}
		}},
		{"password, any old one", SetPassword{ID: 10, NewPHC: "new"}, nil, nil},
		{"automatic lock", LockUser{ID: 10, Until: t0.Add(time.Hour), SpareProtected: true}, nil, func(t *testing.T, _ any, u shard.User) {
			if u.Role != "locked" || u.IsActive || !u.AutoUnlockAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("after lock: role %q, active %v, unlock at %v", u.Role, u.IsActive, u.AutoUnlockAt)
			}
		}},
		{"automatic lock spares a superuser", LockUser{ID: shard.SuperuserID, Until: t0.Add(time.Hour), SpareProtected: true}, shard.ErrNoChange, nil},
		{"lock by hand of a superuser", LockUser{ID: shard.SuperuserID}, nil, func(t *testing.T, _ any, u shard.User) {
			if u.Role != "locked" || !u.AutoUnlockAt.IsZero() {
				t.Errorf("after lock: role %q, unlock at %v", u.Role, u.AutoUnlockAt)
			}
		}},
		{"unlock if due, not locked", UnlockUser{ID: 10, OnlyIfDue: true}, shard.ErrNoChange, nil},
		{"unlock, not locked", UnlockUser{ID: 10}, shard.ErrNoChange, nil},
		{"edit", EditUser{ID: 10, FullName: "Alice B", SetFullName: true, Role: "superuser", SetRole: true, IsActive: false, SetIsActive: true,
			Extra: map[string]json.RawMessage{"gone": json.RawMessage(`"__delete__"`), "n": json.RawMessage(`[1]`)}, SetExtra: true, MaxExtraBytes: 100},
			nil, func(t *testing.T, got any, u shard.User) {
				r := asType[EditResult](t, got)
				if r.OldRole != "staff" || u.FullName != "Alice B" || u.Role != "superuser" || u.IsActive || !u.EmailVerified || string(u.ExtraInfo) != `{"k":1,"n":[1]}` {
					t.Errorf("after edit: old role %q, user %+v", r.OldRole, u)
				}
			}},
		{"edit over the extra bound", EditUser{ID: 10, SetFullName: true, Extra: map[string]json.RawMessage{"big": json.RawMessage(`"0123456789"`)}, SetExtra: true, MaxExtraBytes: 10},
			ErrEditValue, func(t *testing.T, _ any, u shard.User) {
				if u.FullName != "" || string(u.ExtraInfo) != string(alice.ExtraInfo) {
					t.Errorf("a refused edit changed the user: %+v", u)
				}
			}},
		{"sign-up again, mail old enough", SignUpAgain{ID: 11, FullName: "N", PasswordPHC: "p2", RetryWait: time.Hour, DropCodePurpose: "signup"}, nil,
			func(t *testing.T, got any, u shard.User) {
				if r := asType[SignUpAgainResult](t, got); !r.Replaced || u.PasswordPHC != "p2" || !u.EmailVerifySent.Equal(t0) || len(u.EmailTokens) != 0 {
					t.Errorf("replaced %v, user %+v", r.Replaced, u)
				}
			}},
		{"sign-up again, mail too recent", SignUpAgain{ID: 11, PasswordPHC: "p2", RetryWait: 3 * time.Hour}, nil,
			func(t *testing.T, got any, u shard.User) {
				if r := asType[SignUpAgainResult](t, got); r.Replaced || r.User.PasswordPHC != "p1" || u.PasswordPHC != "p1" {
					t.Errorf("replaced %v, user %+v", r.Replaced, u)
				}
			}},
		{"sign-up again of an active user", SignUpAgain{ID: 10, PasswordPHC: "p2"}, nil, func(t *testing.T, got any, u shard.User) {
			if asType[SignUpAgainResult](t, got).Replaced || u.PasswordPHC != "old" {
				t.Errorf("an active user was replaced")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var now atomic.Int64
			now.Store(t0.UnixNano())
			c := startUserCore(t, &now, alice, root, pending)
			res, err := Ask[any](c, tt.op)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Ask(%T) error = %v; want %v", tt.op, err, tt.wantErr)
			}
			if tt.check == nil {
				return
			}
			var id shard.UserID
			switch o := tt.op.(type) {
			case RecordLoginTry:
				id = o.ID
			case SetPassword:
				id = o.ID
			case LockUser:
				id = o.ID
			case EditUser:
				id = o.ID
			case SignUpAgain:
				id = o.ID
			}
			stored, err := Ask[shard.User](c, GetUser{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, res.Value, stored.Value)
		})
	}
}

// An automatic lock ends only once due; a lock by hand (no time) never
// ends by itself.
func TestAskUnlockIfDue(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		until   time.Time
		at      time.Duration
		wantErr error
	}{
		{"not yet", t0.Add(time.Hour), 30 * time.Minute, shard.ErrNoChange},
		{"due", t0.Add(time.Hour), time.Hour, nil},
		{"lock by hand", time.Time{}, 2 * time.Hour, shard.ErrNoChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var now atomic.Int64
			now.Store(t0.UnixNano())
			c := startUserCore(t, &now, shard.User{ID: 10, Email: "a@example.org", Role: "staff", IsActive: true})
			if _, err := Ask[shard.User](c, LockUser{ID: 10, Until: tt.until}); err != nil {
				t.Fatal(err)
			}
			now.Store(t0.Add(tt.at).UnixNano())
			res, err := Ask[shard.User](c, UnlockUser{ID: 10, OnlyIfDue: true})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("UnlockUser = %v; want %v", err, tt.wantErr)
			}
			if err == nil && (res.Value.Role != "staff" || !res.Value.IsActive) {
				t.Errorf("unlocked user: role %q, active %v; want staff, active", res.Value.Role, res.Value.IsActive)
			}
		})
	}
}

// Password attempts: a place is reserved per attempt, a caller over the
// tries in flight is told to wait (plain data: no channel) and may go once
// an attempt ends, and the limit opens a window.
func TestAskAttempts(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	c := startUserCore(t, &now)
	const email = "a@example.org"
	begin := BeginAttempt{Email: email, Tries: 2, Decay: time.Hour, LockFor: time.Hour}
	verdict := func() shard.Verdict {
		t.Helper()
		res, err := Ask[AttemptAnswer](c, begin)
		if err != nil {
			t.Fatal(err)
		}
		return res.Value.Verdict
	}
	end := func(o shard.Outcome) int {
		t.Helper()
		res, err := Ask[int](c, EndAttempt{Email: email, Outcome: o})
		if err != nil {
			t.Fatal(err)
		}
		return res.Value
	}
	steps := []struct {
		name string
		do   func() any
		want any
	}{
		{"first", func() any { return verdict() }, shard.AttemptVerify},
		{"second", func() any { return verdict() }, shard.AttemptVerify},
		{"third waits", func() any { return verdict() }, shard.AttemptWait},
		{"first cancelled", func() any { return end(shard.AttemptCancelled) }, 0},
		{"third goes once one ended", func() any { return verdict() }, shard.AttemptVerify},
		{"second fails", func() any { return end(shard.AttemptFailed) }, 1},
		{"a failure and one in flight: wait", func() any { return verdict() }, shard.AttemptWait},
		{"third fails", func() any { return end(shard.AttemptFailed) }, 2},
		{"over the limit", func() any { return verdict() }, shard.AttemptOverLimit},
		{"refused in the window", func() any { return verdict() }, shard.AttemptRefused},
		{"forgotten", func() any { _, err := Ask[any](c, ResetFailures{Email: email}); return err }, nil},
		{"verifies again", func() any { return verdict() }, shard.AttemptVerify},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Fatalf("%s: got %v; want %v", st.name, got, st.want)
		}
	}
}

// A window shortened for a protected account ends at the new time.
func TestAskSetAttemptWindow(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	c := startUserCore(t, &now)
	const email = "root@example.org"
	begin := BeginAttempt{Email: email, Tries: 1, Decay: time.Hour, LockFor: time.Hour}
	Ask[AttemptAnswer](c, begin)
	Ask[int](c, EndAttempt{Email: email, Outcome: shard.AttemptFailed})
	a, _ := Ask[AttemptAnswer](c, begin)
	if a.Value.Verdict != shard.AttemptOverLimit || !a.Value.Until.Equal(t0.Add(time.Hour)) || a.Value.Lockouts != 1 {
		t.Fatalf("over the limit: %+v", a.Value)
	}
	if _, err := Ask[any](c, SetAttemptWindow{Email: email, Until: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	now.Store(t0.Add(time.Minute).UnixNano())
	if a, _ := Ask[AttemptAnswer](c, begin); a.Value.Verdict != shard.AttemptVerify {
		t.Errorf("after the shortened window: %v; want verify", a.Value.Verdict)
	}
}

// A deleted user's sessions and session-less keys go on every shard.
func TestAskDeleteAndForgetUser(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := startUserCore(t, &now, shard.User{ID: 10, Email: "a@example.org", Role: "staff"})
	if res, err := Ask[shard.User](c, DeleteUser{ID: 10}); err != nil || res.Value.ID != 10 {
		t.Fatalf("DeleteUser = %+v, %v", res.Value, err)
	}
	if _, err := Ask[shard.User](c, DeleteUser{ID: 10}); !errors.Is(err, shard.ErrUserNotFound) {
		t.Fatalf("second DeleteUser: %v; want ErrUserNotFound", err)
	}
	if rs, err := AskAll[int](c, ForgetUser{ID: 10}); err != nil || len(rs) != 4 {
		t.Fatalf("ForgetUser: %d results, %v", len(rs), err)
	}
	if res, err := Ask[shard.UserID](c, LookupEmail{Email: "a@example.org"}); err != nil || res.Value != 10 {
		t.Fatalf("LookupEmail = %v, %v; want 10 (the index is released apart)", res.Value, err)
	}
	if _, err := Ask[shard.UserID](c, LookupEmail{Email: "b@example.org"}); !errors.Is(err, shard.ErrUserNotFound) {
		t.Fatalf("LookupEmail of nobody: %v; want ErrUserNotFound", err)
	}
}

// user-lookup-match's selections run on the shards as data.
func TestAskListUsersMatch(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	users := []shard.User{
		{ID: 10, SystemID: "s10", FullName: "Ann", Email: "ann@example.org", Role: "staff", IsActive: true, CreatedOn: t0.Add(-time.Hour),
			ExtraInfo: json.RawMessage(`{"team": {"b": 2, "a": 1}, "n": 1.0}`)},
		{ID: 11, SystemID: "s11", FullName: "Bob", Email: "bob@example.org", Role: "authenticated", LastLoginTry: t0},
		{ID: 12, SystemID: "s12", FullName: "Ann", Email: "ann2@example.org", Role: "staff", IsActive: true},
	}
	c := startUserCore(t, &now, users...)
	tests := []struct {
		name  string
		match UserMatch
		after shard.UserID
		limit int
		want  []shard.UserID
	}{
		{"everyone", UserMatch{}, 0, 10, []shard.UserID{10, 11, 12}},
		{"after", UserMatch{}, 10, 10, []shard.UserID{11, 12}},
		{"user_id", UserMatch{By: "user_id", ID: 11}, 0, 10, []shard.UserID{11}},
		{"full_name", UserMatch{By: "full_name", Text: "Ann"}, 0, 10, []shard.UserID{10, 12}},
		{"email", UserMatch{By: "email", Text: "bob@example.org"}, 0, 10, []shard.UserID{11}},
		{"user_role", UserMatch{By: "user_role", Text: "staff"}, 0, 10, []shard.UserID{10, 12}},
		{"system_id", UserMatch{By: "system_id", Text: "s12"}, 0, 10, []shard.UserID{12}},
		{"is_active false", UserMatch{By: "is_active"}, 0, 10, []shard.UserID{11}},
		{"created_on", UserMatch{By: "created_on", Time: t0.Add(-time.Hour)}, 0, 10, []shard.UserID{10}},
		{"last_login_try", UserMatch{By: "last_login_try", Time: t0}, 0, 10, []shard.UserID{11}},
		{"extra_info, any spelling", UserMatch{By: "extra_info", Extra: map[string]string{"team": CanonicalJSON(json.RawMessage(`{"a":1,"b":2}`)), "n": "1"}}, 0, 10, []shard.UserID{10}},
		{"extra_info, missing key", UserMatch{By: "extra_info", Extra: map[string]string{"x": "1"}}, 0, 10, nil},
		{"unknown column", UserMatch{By: "password", Text: ""}, 0, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := AskAll[UserPage](c, ListUsers{After: tt.after, Limit: tt.limit, Match: tt.match})
			if err != nil {
				t.Fatal(err)
			}
			var got []shard.UserID
			for _, r := range rs {
				for _, u := range r.Value.Users {
					got = append(got, u.ID)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// A claim for a new user draws an id only when the address is free; a
// sign-up stamps its verification mail with the shard's clock.
func TestAskClaimNewEmailAndSignUp(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	if clusterTestEnv {
		t.Skip("the single node's id counter; a cluster's ids: TestClusterUserIDsUnique")
	}
	c := startUserCore(t, &now, shard.User{ID: 10, Email: "taken@example.org"})
	first := c.PeekNextUserID()
	tests := []struct {
		email     string
		wantID    shard.UserID
		wantOwner shard.UserID
	}{
		{"taken@example.org", 0, 10},
		{"free@example.org", first, first},
		{"free@example.org", 0, first},
		{"other@example.org", first + 1, first + 1},
	}
	for _, tt := range tests {
		res, err := Ask[NewClaim](c, ClaimNewEmail{Email: tt.email})
		if err != nil || res.Value != (NewClaim{ID: tt.wantID, Owner: tt.wantOwner}) {
			t.Errorf("ClaimNewEmail(%s) = %+v, %v; want id %d, owner %d", tt.email, res.Value, err, tt.wantID, tt.wantOwner)
		}
	}
	res, err := Ask[shard.User](c, SignUp{User: shard.User{ID: first, Email: "free@example.org", Role: "locked"}})
	if err != nil || !res.Value.EmailVerifySent.Equal(t0) {
		t.Fatalf("SignUp = %+v, %v; want mail sent at %v", res.Value, err, t0)
	}
	if _, err := Ask[shard.User](c, SignUp{User: shard.User{ID: first}}); !errors.Is(err, shard.ErrUserExists) {
		t.Errorf("SignUp of a used id: %v; want ErrUserExists", err)
	}
}
