package actors

import (
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

const testPassword = "correct horse battery"

func TestChangePasswordFlow(t *testing.T) {
	tests := []struct {
		name         string
		change       PasswordChange
		noSession    bool
		want         Refusal
		wantNewWorks bool
	}{
		{name: "right current password", change: PasswordChange{Current: testPassword, New: "a whole new phrase 42"}, wantNewWorks: true},
		{name: "wrong current password", change: PasswordChange{Current: "wrong", New: "a whole new phrase 42"}, want: RefusedBadPassword},
		{name: "email of someone else", change: PasswordChange{Email: "bob@example.org", Current: testPassword, New: "a whole new phrase 42"}, want: RefusedNoUser},
		{name: "same password", change: PasswordChange{Current: testPassword, New: testPassword}, want: RefusedSamePassword},
		{name: "insecure new password", change: PasswordChange{Current: testPassword, New: "short"}, want: RefusedInsecure},
		{name: "session of another user", change: PasswordChange{Current: testPassword, New: "a whole new phrase 42", CheckSession: true}, noSession: true, want: RefusedNoSession},
		{name: "keeps the presented session", change: PasswordChange{Current: testPassword, New: "a whole new phrase 42", CheckSession: true, KeepOtherSession: true}, wantNewWorks: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startAccounts(t, AccountOptions{Policy: passpolicy.Policy{MinLength: 12}})
			h.addUser(t, 10, "alice@example.org", testPassword, "authenticated")
			h.addUser(t, 11, "bob@example.org", testPassword, "authenticated")
			own := h.newSession(t, "alice-1", 10)
			other := h.newSession(t, "alice-2", 10)
			r := tt.change
			r.UserID = 10
			if r.Email == "" {
				r.Email = "Alice@example.org"
			}
			r.Session = own
			if tt.noSession {
				r.Session = h.newSession(t, "bob-1", 11)
			}
			got, err := h.ChangePassword(r)
			if err != nil {
				t.Fatal(err)
			}
			if got.Refusal != tt.want {
				t.Fatalf("ChangePassword = %q; want %q", got.Refusal, tt.want)
			}
			if tt.want == RefusedInsecure && len(got.Policy) == 0 {
				t.Error("an insecure password is refused without the policy's reasons")
			}
			newWorks, _ := h.PassCheckEmail("alice@example.org", r.New)
			if newWorks.OK() != tt.wantNewWorks && r.New != r.Current {
				t.Errorf("the new password verifies: %v; want %v", newWorks.OK(), tt.wantNewWorks)
			}
			if !tt.wantNewWorks {
				if !h.sessionLive(t, own) || !h.sessionLive(t, other) {
					t.Error("a refused change ended sessions")
				}
				return
			}
			if h.sessionLive(t, other) {
				t.Error("another session survived the change")
			}
			if h.sessionLive(t, own) != r.KeepOtherSession {
				t.Errorf("the presented session is live: %v; want %v", !r.KeepOtherSession, r.KeepOtherSession)
			}
		})
	}
}

func TestResetPasswordFlow(t *testing.T) {
	tests := []struct {
		name   string
		reset  PasswordReset
		want   Refusal
		newSet bool
	}{
		{name: "active user", reset: PasswordReset{Email: "ALICE@example.org", Active: true, Password: "a whole new phrase 42"}, newSet: true},
		{name: "active flag not as required", reset: PasswordReset{Email: "alice@example.org", Active: false, Password: "a whole new phrase 42"}, want: RefusedNoUser},
		{name: "unknown email", reset: PasswordReset{Email: "nobody@example.org", Active: true, Password: "a whole new phrase 42"}, want: RefusedNoUser},
		{name: "insecure", reset: PasswordReset{Email: "alice@example.org", Active: true, Password: "short"}, want: RefusedInsecure},
		{name: "no session", reset: PasswordReset{CheckSession: true, Session: shard.DigestSession("none"), Email: "alice@example.org", Active: true, Password: "a whole new phrase 42"}, want: RefusedNoSession},
		{name: "code refused before the lookup", reset: PasswordReset{Email: "alice@example.org", Active: true, Password: "a whole new phrase 42", CodeRefusal: RefusedCodeExpired}, want: RefusedCodeExpired},
		{name: "a code the record never had", reset: PasswordReset{Email: "alice@example.org", Active: true, Password: "a whole new phrase 42", Code: &shard.EmailCode{Purpose: "forgotpass", Digest: "nope"}}, want: RefusedCodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startAccounts(t, AccountOptions{Policy: passpolicy.Policy{MinLength: 12}})
			h.addUser(t, 10, "alice@example.org", testPassword, "authenticated")
			sess := h.newSession(t, "alice", 10)
			r := tt.reset
			r.At = h.clock()
			got, err := h.ResetPassword(r)
			if err != nil {
				t.Fatal(err)
			}
			if got.Refusal != tt.want {
				t.Fatalf("ResetPassword = %q; want %q", got.Refusal, tt.want)
			}
			check, _ := h.PassCheckEmail("alice@example.org", r.Password)
			if check.OK() != tt.newSet {
				t.Errorf("the new password verifies: %v; want %v", check.OK(), tt.newSet)
			}
			if h.sessionLive(t, sess) == tt.newSet {
				t.Errorf("the user's session is live: %v after a reset that succeeded: %v", !tt.newSet, tt.newSet)
			}
		})
	}
}

func TestDeleteFlows(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	h.addUser(t, shard.SuperuserID, "root@example.org", testPassword, "superuser")
	alice := h.addUser(t, 10, "alice@example.org", testPassword, "authenticated")
	h.addUser(t, 11, "bob@example.org", testPassword, "authenticated")
	sess := h.newSession(t, "alice", 10)

	for _, tt := range []struct {
		name            string
		id              shard.UserID
		email, password string
		want            Refusal
	}{
		{"wrong password", 10, "alice@example.org", "wrong", RefusedBadPassword},
		{"email of another user", 10, "bob@example.org", testPassword, RefusedNoUser},
		{"superuser", shard.SuperuserID, "root@example.org", testPassword, RefusedProtected},
	} {
		if got, err := h.DeleteOwnAccount(tt.id, tt.email, tt.password); err != nil || got.Refusal != tt.want {
			t.Errorf("%s: %+v, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if got, err := h.DeleteOwnAccount(10, "alice@example.org", testPassword); err != nil || !got.OK() {
		t.Fatalf("own deletion: %+v, %v", got, err)
	}
	if _, found, _ := h.user(10); found {
		t.Error("the user is still there")
	}
	if h.sessionLive(t, sess) {
		t.Error("a session of the deleted user is live")
	}
	if _, found, _ := h.UserByEmail(alice.Email); found {
		t.Error("the email still names a user")
	}
	// The address is free again.
	if _, claimed, err := h.claimKey(alice.Email, 20); err != nil || !claimed {
		t.Errorf("claim of the freed address: %v, %v", claimed, err)
	}

	for _, tt := range []struct {
		id   shard.UserID
		want Refusal
	}{
		{shard.SuperuserID, RefusedProtected},
		{shard.AnonymousID, RefusedProtected},
		{10, RefusedNoUser},
		{11, ""},
		{11, RefusedNoUser},
	} {
		if got, err := h.DeleteUser(tt.id); err != nil || got.Refusal != tt.want {
			t.Errorf("DeleteUser(%d) = %+v, %v; want %q", tt.id, got, err, tt.want)
		}
	}
}

func TestSetLockFlow(t *testing.T) {
	h := startAccounts(t, AccountOptions{LockTries: 2})
	h.addUser(t, 10, "alice@example.org", testPassword, "authenticated")
	sess := h.newSession(t, "alice", 10)
	key := shard.DigestAPIKey("alice-key")
	if _, err := Ask[shard.APIKey](h.core, CreateAPIKey{Digest: key, Key: shard.NewAPIKey{
		Kind: shard.KeyNoSession, UserID: 10, Role: "authenticated", Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour,
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := h.SetLock(10, true)
	if err != nil || !got.OK() || got.User.Role != "locked" || got.User.IsActive {
		t.Fatalf("lock: %+v, %v", got, err)
	}
	if h.sessionLive(t, sess) {
		t.Error("a session survived the lock")
	}
	if n, err := h.RevokeKeys(10, ""); err != nil || n != 0 {
		t.Errorf("keys left after the lock: %d, %v", n, err)
	}
	// A failure recorded before the unlock is forgotten by it.
	if _, err := h.PassCheckEmail("alice@example.org", "wrong"); err != nil {
		t.Fatal(err)
	}
	got, err = h.SetLock(10, false)
	if err != nil || !got.OK() || got.User.Role != "authenticated" || !got.User.IsActive {
		t.Fatalf("unlock: %+v, %v", got, err)
	}
	if _, err := h.PassCheckEmail("alice@example.org", "wrong"); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.PassCheckEmail("alice@example.org", testPassword); !got.OK() {
		t.Errorf("after the unlock, two tries of two: %+v; the failure before the unlock was not forgotten", got)
	}
	for _, tt := range []struct {
		id   shard.UserID
		want Refusal
	}{{shard.AnonymousID, RefusedProtected}, {shard.DummyUserID, RefusedProtected}, {99, RefusedNoUser}} {
		if got, err := h.SetLock(tt.id, true); err != nil || got.Refusal != tt.want {
			t.Errorf("SetLock(%d) = %+v, %v; want %q", tt.id, got, err, tt.want)
		}
	}
}

func TestEditUserFlow(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	h.addUser(t, 10, "alice@example.org", testPassword, "staff")
	h.addUser(t, 11, "bob@example.org", testPassword, "authenticated")
	if _, err := Ask[shard.APIKey](h.core, CreateAPIKey{Digest: shard.DigestAPIKey("k"), Key: shard.NewAPIKey{
		Kind: shard.KeyNoSession, UserID: 10, Role: "staff", Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour,
	}}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.EditUser(EditUser{ID: 10, Email: "bob@example.org", SetEmail: true}); err != nil || got.Refusal != RefusedEditValue {
		t.Errorf("taking another user's email: %+v, %v; want %q", got, err, RefusedEditValue)
	}
	got, err := h.EditUser(EditUser{ID: 10, Email: "alice2@example.org", SetEmail: true, Role: "authenticated", SetRole: true})
	if err != nil || !got.OK() || got.User.Email != "alice2@example.org" {
		t.Fatalf("edit: %+v, %v", got, err)
	}
	if u, found, _ := h.UserByEmail("alice2@example.org"); !found || u.ID != 10 {
		t.Error("the new address does not name the user")
	}
	if _, claimed, _ := h.claimKey("alice@example.org", 12); !claimed {
		t.Error("the old address was not given back")
	}
	if n, _ := h.RevokeKeys(10, ""); n != 0 {
		t.Errorf("%d keys of the old role survived the role change", n)
	}
	if got, err := h.EditUser(EditUser{ID: 99, FullName: "x", SetFullName: true}); err != nil || got.Refusal != RefusedNoUser {
		t.Errorf("edit of a missing user: %+v, %v", got, err)
	}
}
