package actors

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// sampleEmailOps holds one operation of each type of ops_email.go, for the codec
// tests (ops_test.go), with fields set to values a careless codec would lose.
func sampleEmailOps() []broadcastOp {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	code := shard.EmailCode{
		Purpose: shard.PurposeForgotPass, Digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Minted: true, UserID: 1<<62 + 3, Email: "zoë@example.org",
	}
	return []broadcastOp{
		RecordEmailCode{ID: 1<<53 + 1, Token: shard.EmailToken{Purpose: shard.PurposeSignup, Digest: "ab\u2028cd", Expires: t0.Add(7 * 24 * time.Hour)}, At: t0},
		MarkEmailSent{ID: -4, Purpose: shard.PurposeForgotPass, At: t0.Add(time.Nanosecond)},
		VerifyEmail{ID: 42, WithCode: true, Code: code, At: t0},
		UseEmailCode{ID: 43, Code: code, At: t0.Add(-time.Hour)},
		ResetPassword{ID: 44, PHC: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", WithCode: true, Code: code, At: t0},
	}
}

// The email operations check and use codes and set the marks on the
// user's own shard, as the email requests did in their edits.
func TestEmailOps(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	live, past := t0.Add(time.Hour), t0.Add(-time.Hour)
	const email = "a@example.org"
	signup := shard.EmailToken{Purpose: shard.PurposeSignup, Digest: "s1", Expires: live}
	forgot := shard.EmailToken{Purpose: shard.PurposeForgotPass, Digest: "f1", Expires: live}
	inactive := shard.User{ID: 7, Email: email, Role: "locked", EmailTokens: []shard.EmailToken{signup, forgot}}
	active := shard.User{ID: 7, Email: email, Role: "staff", IsActive: true, EmailVerified: true, EmailVerifySent: past, EmailTokens: []shard.EmailToken{signup}}
	useSignup := shard.EmailCode{Purpose: shard.PurposeSignup, Digest: "s1"}
	// active2 is an active user with the password hash "old-phc" and tokens.
	active2 := func(tokens ...shard.EmailToken) shard.User {
		u := active
		u.PasswordPHC, u.EmailTokens = "old-phc", tokens
		return u
	}

	tests := []struct {
		name    string
		user    shard.User // stored before the operation; ID 0 for none
		op      Op
		want    EmailState
		wantErr error
		check   func(t *testing.T, u shard.User) // the stored record after
	}{
		{
			name: "password reset with the forgot-pass code",
			user: active2(forgot),
			op:   ResetPassword{ID: 7, PHC: "new-phc", WithCode: true, Code: shard.EmailCode{Purpose: shard.PurposeForgotPass, Digest: "f1"}, At: t0},
			want: EmailState{ID: 7, Role: "staff", IsActive: true, EmailVerifySent: past},
			check: func(t *testing.T, u shard.User) {
				if u.PasswordPHC != "new-phc" || len(u.EmailTokens) != 0 {
					t.Errorf("password %q, tokens %v; want the new hash and the code used up", u.PasswordPHC, u.EmailTokens)
				}
			},
		},
		{
			name:    "password reset with a wrong code changes nothing",
			user:    active2(forgot),
			op:      ResetPassword{ID: 7, PHC: "new-phc", WithCode: true, Code: shard.EmailCode{Purpose: shard.PurposeForgotPass, Digest: "f9"}, At: t0},
			wantErr: shard.ErrEmailCodeInvalid,
			check: func(t *testing.T, u shard.User) {
				if u.PasswordPHC != "old-phc" || len(u.EmailTokens) != 1 {
					t.Errorf("password %q, tokens %v; want both unchanged", u.PasswordPHC, u.EmailTokens)
				}
			},
		},
		{
			name:    "password reset with an expired code",
			user:    active2(shard.EmailToken{Purpose: shard.PurposeForgotPass, Digest: "f1", Expires: past}),
			op:      ResetPassword{ID: 7, PHC: "new-phc", WithCode: true, Code: shard.EmailCode{Purpose: shard.PurposeForgotPass, Digest: "f1"}, At: t0},
			wantErr: shard.ErrEmailCodeExpired,
		},
		{
			name: "password reset without a code",
			user: active2(),
			op:   ResetPassword{ID: 7, PHC: "new-phc", At: t0},
			want: EmailState{ID: 7, Role: "staff", IsActive: true, EmailVerifySent: past},
			check: func(t *testing.T, u shard.User) {
				if u.PasswordPHC != "new-phc" {
					t.Errorf("password %q; want the new hash", u.PasswordPHC)
				}
			},
		},
		{
			name: "sign-up code recorded for an inactive user",
			user: inactive,
			op:   RecordEmailCode{ID: 7, Token: shard.EmailToken{Purpose: shard.PurposeSignup, Digest: "s2", Expires: live}, At: t0},
			want: EmailState{ID: 7, Role: "locked", EmailVerifySent: t0},
			check: func(t *testing.T, u shard.User) {
				if len(u.EmailTokens) != 2 || u.EmailTokens[0] != forgot || u.EmailTokens[1].Digest != "s2" {
					t.Errorf("tokens = %v; want f1 and s2 (the new sign-up code in place of s1)", u.EmailTokens)
				}
			},
		},
		{
			name: "sign-up code not recorded for an active user",
			user: active,
			op:   RecordEmailCode{ID: 7, Token: shard.EmailToken{Purpose: shard.PurposeSignup, Digest: "s2", Expires: live}, At: t0},
			want: EmailState{ID: 7, Role: "staff", IsActive: true, EmailVerifySent: past},
			check: func(t *testing.T, u shard.User) {
				if len(u.EmailTokens) != 1 || u.EmailTokens[0] != signup {
					t.Errorf("tokens = %v; want s1 only", u.EmailTokens)
				}
			},
		},
		{
			name: "forgot-pass code recorded, expired tokens dropped",
			user: active,
			op:   RecordEmailCode{ID: 7, Token: shard.EmailToken{Purpose: shard.PurposeForgotPass, Digest: "f2", Expires: live}, At: live},
			want: EmailState{ID: 7, Role: "staff", IsActive: true, EmailVerifySent: past, EmailForgotPassSent: live},
			check: func(t *testing.T, u shard.User) {
				if len(u.EmailTokens) != 1 || u.EmailTokens[0].Digest != "f2" {
					t.Errorf("tokens = %v; want f2 only (s1 expired at the mark)", u.EmailTokens)
				}
			},
		},
		{
			name:    "code of an unknown purpose",
			user:    inactive,
			op:      RecordEmailCode{ID: 7, Token: shard.EmailToken{Purpose: "changepass", Digest: "c1", Expires: live}, At: t0},
			wantErr: ErrEmailPurpose,
		},
		{
			name:    "code for nobody",
			op:      RecordEmailCode{ID: 7, Token: signup, At: t0},
			wantErr: shard.ErrUserNotFound,
		},
		{
			name: "sign-up mail marked sent",
			user: active,
			op:   MarkEmailSent{ID: 7, Purpose: shard.PurposeSignup, At: t0},
			want: EmailState{ID: 7, Role: "staff", IsActive: true, EmailVerifySent: t0},
		},
		{
			name: "forgot-pass mail marked sent",
			user: inactive,
			op:   MarkEmailSent{ID: 7, Purpose: shard.PurposeForgotPass, At: t0},
			want: EmailState{ID: 7, Role: "locked", EmailForgotPassSent: t0},
			check: func(t *testing.T, u shard.User) {
				if len(u.EmailTokens) != 2 {
					t.Errorf("tokens = %v; want both left alone", u.EmailTokens)
				}
			},
		},
		{
			name:    "mail of an unknown purpose marked sent",
			user:    inactive,
			op:      MarkEmailSent{ID: 7, Purpose: "", At: t0},
			wantErr: ErrEmailPurpose,
		},
		{
			name: "verified with the sign-up code",
			user: inactive,
			op:   VerifyEmail{ID: 7, WithCode: true, Code: useSignup, At: t0},
			want: EmailState{ID: 7, Role: "authenticated", IsActive: true},
			check: func(t *testing.T, u shard.User) {
				if !u.EmailVerified || len(u.EmailTokens) != 1 || u.EmailTokens[0] != forgot {
					t.Errorf("verified %v, tokens %v; want verified, f1 only", u.EmailVerified, u.EmailTokens)
				}
			},
		},
		{
			name: "verified without a code, previous role restored, unlock dropped",
			user: func() shard.User {
				u := inactive
				u.ExtraInfo = json.RawMessage(`{"previous_user_roles":["authenticated","staff"]}`)
				u.AutoUnlockAt = live
				return u
			}(),
			op:   VerifyEmail{ID: 7, At: t0},
			want: EmailState{ID: 7, Role: "staff", IsActive: true},
			check: func(t *testing.T, u shard.User) {
				if !u.AutoUnlockAt.IsZero() || len(u.EmailTokens) != 2 {
					t.Errorf("auto unlock %v, tokens %v; want none, both tokens", u.AutoUnlockAt, u.EmailTokens)
				}
			},
		},
		{
			name: "previous role locked too",
			user: func() shard.User {
				u := inactive
				u.ExtraInfo = json.RawMessage(`{"previous_user_roles":["staff","locked"]}`)
				return u
			}(),
			op:   VerifyEmail{ID: 7, At: t0},
			want: EmailState{ID: 7, Role: "authenticated", IsActive: true},
		},
		{
			name: "an active user stays as it is",
			user: active,
			op:   VerifyEmail{ID: 7, WithCode: true, Code: useSignup, At: t0},
			want: EmailState{ID: 7, Role: "staff", IsActive: true, EmailVerifySent: past},
		},
		{
			name:    "verify with an expired code",
			user:    inactive,
			op:      VerifyEmail{ID: 7, WithCode: true, Code: useSignup, At: live},
			wantErr: shard.ErrEmailCodeExpired,
		},
		{
			name:    "verify with the forgot-pass code",
			user:    inactive,
			op:      VerifyEmail{ID: 7, WithCode: true, Code: shard.EmailCode{Purpose: shard.PurposeSignup, Digest: "f1"}, At: t0},
			wantErr: shard.ErrEmailCodeInvalid,
		},
		{
			name:    "verify with a code minted for another user",
			user:    inactive,
			op:      VerifyEmail{ID: 7, WithCode: true, Code: shard.EmailCode{Purpose: shard.PurposeSignup, Digest: "s1", Minted: true, UserID: 8, Email: email}, At: t0},
			wantErr: shard.ErrEmailCodeInvalid,
		},
		{
			name:    "verify nobody",
			op:      VerifyEmail{ID: 7, At: t0},
			wantErr: shard.ErrUserNotFound,
		},
		{
			name: "code used",
			user: inactive,
			op:   UseEmailCode{ID: 7, Code: shard.EmailCode{Purpose: shard.PurposeForgotPass, Digest: "f1", Minted: true, UserID: 7, Email: email}, At: t0},
			want: EmailState{ID: 7, Role: "locked"},
			check: func(t *testing.T, u shard.User) {
				if len(u.EmailTokens) != 1 || u.EmailTokens[0] != signup {
					t.Errorf("tokens = %v; want s1 only", u.EmailTokens)
				}
			},
		},
		{
			name:    "code minted for another address",
			user:    inactive,
			op:      UseEmailCode{ID: 7, Code: shard.EmailCode{Purpose: shard.PurposeForgotPass, Digest: "f1", Minted: true, UserID: 7, Email: "b@example.org"}, At: t0},
			wantErr: shard.ErrEmailCodeInvalid,
		},
		{
			name:    "code expired",
			user:    inactive,
			op:      UseEmailCode{ID: 7, Code: useSignup, At: live.Add(time.Second)},
			wantErr: shard.ErrEmailCodeExpired,
		},
		{
			name:    "code for nobody used",
			op:      UseEmailCode{ID: 7, Code: useSignup, At: t0},
			wantErr: shard.ErrUserNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Start(NewActorSystem(nil), nil, nil, Options{Shards: 4, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			if tt.user.ID != 0 {
				if _, err := Ask[shard.User](c, CreateUser{User: tt.user}); err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
			}
			before, _ := Ask[shard.User](c, GetUser{ID: 7})
			res, err := Ask[EmailState](c, tt.op)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Ask(%T) error = %v; want %v", tt.op, err, tt.wantErr)
				}
				if after, _ := Ask[shard.User](c, GetUser{ID: 7}); !equalUsers(after.Value, before.Value) {
					t.Errorf("a refused %T changed the user:\n got %+v\nwant %+v", tt.op, after.Value, before.Value)
				}
				return
			}
			if err != nil {
				t.Fatalf("Ask(%T): %v", tt.op, err)
			}
			if res.Value != tt.want {
				t.Errorf("Ask(%T) = %+v; want %+v", tt.op, res.Value, tt.want)
			}
			after, err := Ask[shard.User](c, GetUser{ID: 7})
			if err != nil {
				t.Fatal(err)
			}
			if got := emailStateOf(after.Value); got != tt.want {
				t.Errorf("stored state = %+v; want %+v (the answer)", got, tt.want)
			}
			if !after.Value.LastUpdated.Equal(t0) {
				t.Errorf("LastUpdated = %v; want the shard's clock %v", after.Value.LastUpdated, t0)
			}
			if tt.check != nil {
				tt.check(t, after.Value)
			}
		})
	}
}

// equalUsers compares the fields the email operations may change.
func equalUsers(a, b shard.User) bool {
	if a.ID != b.ID || a.IsActive != b.IsActive || a.EmailVerified != b.EmailVerified || a.Role != b.Role ||
		!a.EmailVerifySent.Equal(b.EmailVerifySent) || !a.EmailForgotPassSent.Equal(b.EmailForgotPassSent) ||
		!a.AutoUnlockAt.Equal(b.AutoUnlockAt) || len(a.EmailTokens) != len(b.EmailTokens) {
		return false
	}
	for i := range a.EmailTokens {
		if a.EmailTokens[i] != b.EmailTokens[i] {
			return false
		}
	}
	return true
}
