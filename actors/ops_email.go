package actors

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// Operations on the email flows' records: emailed codes and the sent and verified marks.
//
// Each edits one user record on the user's shard, so checking a code and
// using it up are one step. The caller waits for the answer's ticket
// ([Result.Durable]) before it reports the edit: a used code stays used
// after a crash.
//
// NB: At is the time of the request, as the front saw it: the sent marks
// are set to it and codes expire relative to it, so a mark matches the
// expiry mailed with the code. The shard's clock sets only LastUpdated.

// emailOps lists the operations of this file for the codec (ops.go).
var emailOps = []broadcastOp{RecordEmailCode{}, MarkEmailSent{}, VerifyEmail{}, UseEmailCode{}, ResetPassword{}}

// ErrEmailPurpose reports an operation naming a purpose other than
// shard.PurposeSignup and shard.PurposeForgotPass. The front checks the
// purpose first, so only a malformed operation gets it.
var ErrEmailPurpose = errors.New("actors: unknown email purpose")

// EmailState is the answer of the email operations: the parts of the user
// record the email requests report, as they are after the edit. Zero times
// mean null.
type EmailState struct {
	ID                  shard.UserID `json:"id"`
	IsActive            bool         `json:"is_active"`
	Role                string       `json:"role"`
	EmailVerifySent     time.Time    `json:"emailverify_sent"`
	EmailForgotPassSent time.Time    `json:"emailforgotpass_sent"`
}

func emailStateOf(u shard.User) EmailState {
	return EmailState{
		ID: u.ID, IsActive: u.IsActive, Role: u.Role,
		EmailVerifySent: u.EmailVerifySent, EmailForgotPassSent: u.EmailForgotPassSent,
	}
}

// editForEmail runs edit on user id through Shard.UpdateUser and answers
// the [EmailState] after it.
func editForEmail(s *shard.Shard, id shard.UserID, now time.Time, edit func(u *shard.User) error) (any, []shard.Mutation, error) {
	u, muts, err := s.UpdateUser(id, now, edit)
	if err != nil {
		return nil, nil, err
	}
	return emailStateOf(u), muts, nil
}

// RecordEmailCode records that a code was mailed to user ID: it stores
// Token (the code's digest, purpose and expiry) in place of the user's
// outstanding code of that purpose, and sets the purpose's sent mark to At.
// A sign-up code is recorded only while the user is inactive: for a user
// verified meanwhile it changes nothing (and answers the unchanged marks).
// It answers an [EmailState]; errors: shard.ErrUserNotFound,
// [ErrEmailPurpose].
type RecordEmailCode struct {
	ID    shard.UserID     `json:"id"`
	Token shard.EmailToken `json:"token"`
	At    time.Time        `json:"at"`
}

// Route implements Op.
func (o RecordEmailCode) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o RecordEmailCode) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return editForEmail(s, o.ID, now, func(u *shard.User) error {
		switch o.Token.Purpose {
		case shard.PurposeSignup:
			if u.IsActive {
				return nil
			}
			u.EmailVerifySent = o.At
		case shard.PurposeForgotPass:
			u.EmailForgotPassSent = o.At
		default:
			return ErrEmailPurpose
		}
		u.EmailTokens = shard.WithEmailToken(u.EmailTokens, o.Token, o.At)
		return nil
	})
}

// MarkEmailSent sets user ID's sent mark of Purpose to At: the frontend
// mailed a code of its own (user-set-emailsent). It answers an
// [EmailState]; errors: shard.ErrUserNotFound, [ErrEmailPurpose].
type MarkEmailSent struct {
	ID      shard.UserID `json:"id"`
	Purpose string       `json:"purpose"`
	At      time.Time    `json:"at"`
}

// Route implements Op.
func (o MarkEmailSent) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o MarkEmailSent) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return editForEmail(s, o.ID, now, func(u *shard.User) error {
		switch o.Purpose {
		case shard.PurposeSignup:
			u.EmailVerifySent = o.At
		case shard.PurposeForgotPass:
			u.EmailForgotPassSent = o.At
		default:
			return ErrEmailPurpose
		}
		return nil
	})
}

// VerifyEmail marks user ID's address verified and activates the user,
// unless it is active already: the role becomes the one [roleAfterVerify]
// picks, and a pending automatic unlock is dropped. With WithCode, Code (a
// sign-up code) must be the user's outstanding one and live at At, and is
// used up in the same step; without it, nothing is checked. It answers an
// [EmailState]; errors: shard.ErrUserNotFound, shard.ErrEmailCodeInvalid,
// shard.ErrEmailCodeExpired (and then nothing changed).
type VerifyEmail struct {
	ID       shard.UserID    `json:"id"`
	WithCode bool            `json:"with_code"`
	Code     shard.EmailCode `json:"code"`
	At       time.Time       `json:"at"`
}

// Route implements Op.
func (o VerifyEmail) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o VerifyEmail) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return editForEmail(s, o.ID, now, func(u *shard.User) error {
		if err := spendCode(u, o.WithCode, o.Code, o.At); err != nil {
			return err
		}
		if !u.IsActive {
			u.Role = roleAfterVerify(u)
			u.IsActive = true
			u.EmailVerified = true
			u.AutoUnlockAt = time.Time{} // active now: no unlock pending
		}
		return nil
	})
}

// roleAfterVerify is the role a verification gives (docs/email.md,
// "Requests"): the current one unless it is "locked", else the last
// previous role (extra info's previous_user_roles) unless that is "locked"
// or empty too, else "authenticated".
func roleAfterVerify(u *shard.User) string {
	if u.Role != "locked" {
		return u.Role
	}
	var extra struct {
		Previous []string `json:"previous_user_roles"`
	}
	_ = json.Unmarshal(u.ExtraInfo, &extra)
	if n := len(extra.Previous); n > 0 && extra.Previous[n-1] != "locked" && extra.Previous[n-1] != "" {
		return extra.Previous[n-1]
	}
	return "authenticated"
}

// UseEmailCode checks Code against user ID's outstanding code of its
// purpose and uses it up when it matches and is live at At
// (verify-email-token: the frontend acts on it later). It answers an
// [EmailState]; errors: shard.ErrUserNotFound, shard.ErrEmailCodeInvalid,
// shard.ErrEmailCodeExpired (and then nothing changed).
type UseEmailCode struct {
	ID   shard.UserID    `json:"id"`
	Code shard.EmailCode `json:"code"`
	At   time.Time       `json:"at"`
}

// Route implements Op.
func (o UseEmailCode) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o UseEmailCode) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return editForEmail(s, o.ID, now, func(u *shard.User) error {
		return u.UseEmailCode(o.Code, o.At)
	})
}

// ResetPassword sets user ID's password hash to PHC (a forgotten password
// reset). WithCode first checks and uses up Code, a mailed forgot-password
// code, at At, in the same edit: the code is spent only if the password
// changes, and a code cannot be used twice. It answers an [EmailState];
// errors: shard.ErrUserNotFound, shard.ErrEmailCodeInvalid,
// shard.ErrEmailCodeExpired.
type ResetPassword struct {
	ID       shard.UserID    `json:"id"`
	PHC      string          `json:"phc"`
	WithCode bool            `json:"with_code"`
	Code     shard.EmailCode `json:"code"`
	At       time.Time       `json:"at"`
}

// Route implements Op.
func (o ResetPassword) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o ResetPassword) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return editForEmail(s, o.ID, now, func(u *shard.User) error {
		if err := spendCode(u, o.WithCode, o.Code, o.At); err != nil {
			return err
		}
		u.PasswordPHC = o.PHC
		return nil
	})
}

// spendCode uses up code on u when withCode is set, in the same edit as the
// change it allows (VerifyEmail, ResetPassword); without it nothing is
// checked.
func spendCode(u *shard.User, withCode bool, code shard.EmailCode, at time.Time) error {
	if !withCode {
		return nil
	}
	return u.UseEmailCode(code, at)
}
