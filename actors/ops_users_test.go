package actors

import (
	"encoding/json"
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
		SignUp{User: shard.User{ID: 17, SystemID: "sys-17", FullName: "New", PasswordPHC: "$argon2id$x", Email: "n@example.org",
			ExtraInfo: json.RawMessage(`{"provenance":"request-created"}`), Role: "locked"}},
		SignUpAgain{ID: 18, FullName: "Again", PasswordPHC: "$argon2id$y", ExtraInfo: json.RawMessage(`{"verify_retry_wait":6}`),
			RetryWait: 6 * time.Hour, DropCodePurpose: "signup"},
		BeginAttempt{Email: "a@example.org", Tries: 10, Decay: time.Hour, LockFor: 2 * time.Hour, Stale: time.Minute},
		EndAttempt{Email: "a@example.org", Outcome: shard.AttemptCancelled},
		SetAttemptWindow{Email: "a@example.org", Until: t0},
		ResetFailures{Email: "a@example.org"},
	}
}
