package actors

import (
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// Operations on users: lookups by email, edits of a user record, password attempts.

// userOps lists the operations of this file for the codec (ops.go).
var userOps = []broadcastOp{
	LookupEmail{}, Ping{}, RecordLoginTry{}, SetPassword{}, LockUser{}, UnlockUser{},
	EditUser{}, DeleteUser{}, ForgetUser{}, SignUp{}, SignUpAgain{}, ListUsers{}, ClaimNewEmail{},
	BeginAttempt{}, EndAttempt{}, SetAttemptWindow{}, ResetFailures{},
}

// ErrEditValue reports an [EditUser] whose result cannot be stored (merged
// extra info that is not a JSON object or is over its bound). Nothing is
// changed.
var ErrEditValue = errors.New("actors: edit value cannot be stored")

// LookupEmail answers the id (a shard.UserID) of the user that holds the
// normalised Email in the index, or shard.ErrUserNotFound.
type LookupEmail struct {
	Email string `json:"email"`
}

// Route implements Op.
func (o LookupEmail) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o LookupEmail) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	id, ok := s.LookupEmail(o.Email)
	if !ok {
		return nil, nil, shard.ErrUserNotFound
	}
	return id, nil, nil
}

// Ping answers nothing, on every shard it is sent to ([AskAll]): that the
// shard runs its mailbox (the health check).
type Ping struct{}

func (Ping) apply(*shard.Shard, time.Time) (any, []shard.Mutation, error) { return nil, nil, nil }

// RecordLoginTry sets the user's last login try to now, and its last login
// success too when Success. It answers the user (a shard.User), or
// shard.ErrUserNotFound.
type RecordLoginTry struct {
	ID      shard.UserID `json:"id"`
	Success bool         `json:"success"`
}

// Route implements Op.
func (o RecordLoginTry) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o RecordLoginTry) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.UpdateUser(o.ID, now, func(u *shard.User) error {
		u.LastLoginTry = now
		if o.Success {
			u.LastLoginSuccess = now
		}
		return nil
	})
}

// SetPassword stores the hash NewPHC as the user's password if the stored
// one is still OldPHC (any stored one when OldPHC is empty), so two racing
// changes cannot interleave. It answers the user (a shard.User), or
// shard.ErrNoChange when the stored hash is no longer OldPHC, or
// shard.ErrUserNotFound.
type SetPassword struct {
	ID     shard.UserID `json:"id"`
	OldPHC string       `json:"old_phc"`
	NewPHC string       `json:"new_phc"`
}

// Route implements Op.
func (o SetPassword) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o SetPassword) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.UpdateUser(o.ID, now, func(u *shard.User) error {
		if o.OldPHC != "" && u.PasswordPHC != o.OldPHC {
			return shard.ErrNoChange
		}
		u.PasswordPHC = o.NewPHC
		return nil
	})
}

// LockUser locks the user ([shard.LockUser]) until Until (for good when
// zero). With SpareProtected (an automatic lock), a user that is never
// locked automatically ([shard.NeverAutoLocked]) is left alone. It answers
// the locked user (a shard.User), or shard.ErrNoChange (already locked, or
// spared), or shard.ErrUserNotFound.
type LockUser struct {
	ID             shard.UserID `json:"id"`
	Until          time.Time    `json:"until"`
	SpareProtected bool         `json:"spare_protected"`
}

// Route implements Op.
func (o LockUser) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o LockUser) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.UpdateUser(o.ID, now, func(u *shard.User) error {
		if o.SpareProtected && shard.NeverAutoLocked(u) {
			return shard.ErrNoChange
		}
		return shard.LockUser(u, o.Until)
	})
}

// UnlockUser unlocks the user ([shard.UnlockUser]). With OnlyIfDue, only an
// automatic lock whose time has come is ended. It answers the unlocked user
// (a shard.User), or shard.ErrNoChange (not locked, or not due), or
// shard.ErrUserNotFound.
type UnlockUser struct {
	ID        shard.UserID `json:"id"`
	OnlyIfDue bool         `json:"only_if_due"`
}

// Route implements Op.
func (o UnlockUser) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o UnlockUser) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	return s.UpdateUser(o.ID, now, func(u *shard.User) error {
		if o.OnlyIfDue && (u.AutoUnlockAt.IsZero() || now.Before(u.AutoUnlockAt)) {
			return shard.ErrNoChange
		}
		return shard.UnlockUser(u)
	})
}

// EditUser changes the columns of a user whose Set flag is true (values
// checked and normalised by the caller; a new email claimed first). Extra is
// merged into the extra info: a key whose value is the JSON string
// "__delete__" is removed. It answers an [EditResult], or ErrEditValue when
// the merged extra info is over MaxExtraBytes or cannot be merged, or
// shard.ErrUserNotFound; on an error nothing changes.
type EditUser struct {
	ID               shard.UserID               `json:"id"`
	FullName         string                     `json:"full_name"`
	SetFullName      bool                       `json:"set_full_name"`
	Email            string                     `json:"email"`
	SetEmail         bool                       `json:"set_email"`
	Role             string                     `json:"role"`
	SetRole          bool                       `json:"set_role"`
	EmailVerified    bool                       `json:"email_verified"`
	SetEmailVerified bool                       `json:"set_email_verified"`
	IsActive         bool                       `json:"is_active"`
	SetIsActive      bool                       `json:"set_is_active"`
	Extra            map[string]json.RawMessage `json:"extra"`
	SetExtra         bool                       `json:"set_extra"`
	MaxExtraBytes    int                        `json:"max_extra_bytes"`
}

// EditResult is the answer to [EditUser]: the user after the edit and its
// role before it.
type EditResult struct {
	User    shard.User `json:"user"`
	OldRole string     `json:"old_role"`
}

// Route implements Op.
func (o EditUser) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o EditUser) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	oldRole := ""
	u, muts, err := s.UpdateUser(o.ID, now, func(u *shard.User) error {
		oldRole = u.Role
		if o.SetFullName {
			u.FullName = o.FullName
		}
		if o.SetEmail {
			u.Email = o.Email
		}
		if o.SetRole {
			u.Role = o.Role
		}
		if o.SetEmailVerified {
			u.EmailVerified = o.EmailVerified
		}
		if o.SetIsActive {
			u.IsActive = o.IsActive
		}
		if o.SetExtra {
			merged, err := mergeExtra(u.ExtraInfo, o.Extra)
			if err != nil || len(merged) > o.MaxExtraBytes {
				return ErrEditValue
			}
			u.ExtraInfo = merged
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return EditResult{User: u, OldRole: oldRole}, muts, nil
}

// firstByte is the first byte of raw that is not JSON white space (0 when
// none): the kind of the JSON value.
func firstByte(raw json.RawMessage) byte {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return b
	}
	return 0
}

// UsersPage gathers from every shard one page of up to size users with ids
// above after that match, in id order; more reports whether users past
// the page match too.
func UsersPage(c *Core, after shard.UserID, size int, match UserMatch) (users []shard.User, more bool, err error) {
	rs, err := AskAll[UserPage](c, ListUsers{After: after, Limit: size, Match: match})
	if err != nil {
		return nil, false, err
	}
	for _, r := range rs {
		users = append(users, r.Value.Users...)
		more = more || r.Value.More
	}
	slices.SortFunc(users, func(a, b shard.User) int { return cmp.Compare(a.ID, b.ID) })
	if len(users) > size {
		users, more = users[:size], true
	}
	return users, more, nil
}

// ListUsers answers, from every shard it is sent to ([AskAll]), a
// [UserPage]: up to Limit users with ids above After that Match, in id
// order.
type ListUsers struct {
	After shard.UserID `json:"after"`
	Limit int          `json:"limit"`
	Match UserMatch    `json:"match"`
}

// UserMatch selects users by one column (user-lookup-match): By names it,
// and the field of its type holds the value, already normalised by the
// caller (an email normalised, a time parsed). An empty By matches every
// user, an unknown one none.
type UserMatch struct {
	By   string    `json:"by"`
	ID   int64     `json:"id"`   // user_id
	Text string    `json:"text"` // system_id, full_name, user_role, email
	Bool bool      `json:"bool"` // is_active
	Time time.Time `json:"time"` // created_on, last_login_try, last_login_success
	// Extra (extra_info) maps each key the extra info must hold to its
	// value as canonical JSON ([CanonicalJSON]).
	Extra map[string]string `json:"extra"`
}

// UserPage is a shard's answer to [ListUsers]: its users, and whether it
// has more past them.
type UserPage struct {
	Users []shard.User `json:"users"`
	More  bool         `json:"more"`
}

func (o ListUsers) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	var match func(u *shard.User) bool
	if o.Match.By != "" {
		match = o.Match.matches
	}
	us, more := s.ListUsers(o.After, o.Limit, match)
	return UserPage{Users: us, More: more}, nil, nil
}

func (m UserMatch) matches(u *shard.User) bool {
	switch m.By {
	case "user_id":
		return int64(u.ID) == m.ID
	case "system_id":
		return u.SystemID == m.Text
	case "full_name":
		return u.FullName == m.Text
	case "user_role":
		return u.Role == m.Text
	case "email":
		return u.Email == m.Text
	case "is_active":
		return u.IsActive == m.Bool
	case "created_on":
		return u.CreatedOn.Equal(m.Time)
	case "last_login_try":
		return u.LastLoginTry.Equal(m.Time)
	case "last_login_success":
		return u.LastLoginSuccess.Equal(m.Time)
	case "extra_info":
		var have map[string]json.RawMessage
		if json.Unmarshal(u.ExtraInfo, &have) != nil {
			return false
		}
		for k, w := range m.Extra {
			h, ok := have[k]
			if !ok || CanonicalJSON(h) != w {
				return false
			}
		}
		return true
	}
	return false
}

// CanonicalJSON is the one spelling of a JSON value that [UserMatch]
// compares (raw itself when it does not parse).
func CanonicalJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// DeleteUser deletes the user record (its sessions, keys and index entries
// are the caller's: [ForgetUser], [ReleaseEmail]). It answers the deleted
// user (a shard.User), or shard.ErrUserNotFound.
type DeleteUser struct {
	ID shard.UserID `json:"id"`
}

// Route implements Op.
func (o DeleteUser) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o DeleteUser) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return s.DeleteUser(o.ID)
}

// ForgetUser deletes, on every shard it is sent to ([AskAll]), the
// sessions, the session-less API keys and the linked social identities of
// a deleted user (keys tied to a session die with it). It answers the
// number of records deleted (an int).
type ForgetUser struct {
	ID shard.UserID `json:"id"`
}

func (o ForgetUser) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	_, muts := s.DeleteUserSessions(o.ID, nil)
	_, keyMuts := s.RevokeUserAPIKeys(o.ID, "")
	muts = append(muts, keyMuts...)
	muts = append(muts, s.DeleteUserIdentities(o.ID)...)
	return len(muts), muts, nil
}

// ClaimNewEmail claims the normalised Email for a new user and answers a
// [NewClaim]: the new user's id, or the owner when the address is taken.
// The id is drawn from the core's counter in the email shard's turn, only
// once the claim is sure to succeed, so a sign-up of a taken address uses
// up no id.
type ClaimNewEmail struct {
	Email string `json:"email"`
}

// NewClaim is the answer to [ClaimNewEmail]: ID is the new user's (0 when
// the address was taken) and Owner the address's holder.
type NewClaim struct {
	ID    shard.UserID `json:"id"`
	Owner shard.UserID `json:"owner"`
}

// Route implements Op.
func (o ClaimNewEmail) Route() shard.Route { return shard.EmailRoute(o.Email) }

// apply is not used: the operation needs the core's id counter (applyCore).
func (o ClaimNewEmail) apply(*shard.Shard, time.Time) (any, []shard.Mutation, error) {
	return nil, nil, ErrShardBug
}

func (o ClaimNewEmail) applyCore(c *Core, s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	if owner, taken := s.LookupEmail(o.Email); taken {
		return NewClaim{Owner: owner}, nil, nil
	}
	id, err := c.NextUserID()
	if err != nil {
		return nil, nil, err
	}
	owner, ok, muts := s.ClaimEmail(o.Email, id)
	if !ok {
		return NewClaim{Owner: owner}, nil, nil // not reached: the shard's turn is ours
	}
	return NewClaim{ID: id, Owner: id}, muts, nil
}

// SignUp stores a new user made by a sign-up, its verification mail sent
// now, with the id counter past its id (so a restart never hands the id out
// again). The email must have been claimed for it first. It answers the
// stored user (a shard.User), or shard.ErrUserExists.
type SignUp struct {
	User shard.User `json:"user"`
}

// Route implements Op.
func (o SignUp) Route() shard.Route { return shard.UserRoute(o.User.ID) }

func (o SignUp) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	u := o.User
	u.EmailVerifySent = now
	user, muts, err := s.CreateUser(u, now)
	if err != nil {
		return nil, nil, err
	}
	return user, append(muts, shard.EncodeNextUserID(u.ID+1)), nil
}

// SignUpAgain replaces the sign-up data of an existing user by a new
// sign-up of its email, if the user is still inactive and its last
// verification mail is older than RetryWait: the new full name, password
// hash and extra info, inactive, unverified, role "locked", mail sent now,
// and no outstanding code of purpose DropCodePurpose (only a code mailed for
// this sign-up may activate it). It answers a [SignUpAgainResult] (the user
// unchanged, Replaced false, otherwise), or shard.ErrUserNotFound.
type SignUpAgain struct {
	ID              shard.UserID    `json:"id"`
	FullName        string          `json:"full_name"`
	PasswordPHC     string          `json:"password"`
	ExtraInfo       json.RawMessage `json:"extra_info"`
	RetryWait       time.Duration   `json:"retry_wait"`
	DropCodePurpose string          `json:"drop_code_purpose"`
}

// SignUpAgainResult is the answer to [SignUpAgain].
type SignUpAgainResult struct {
	User     shard.User `json:"user"`
	Replaced bool       `json:"replaced"`
}

// Route implements Op.
func (o SignUpAgain) Route() shard.Route { return shard.UserRoute(o.ID) }

func (o SignUpAgain) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	u, muts, err := s.UpdateUser(o.ID, now, func(u *shard.User) error {
		if u.IsActive || (!u.EmailVerifySent.IsZero() && now.Sub(u.EmailVerifySent) <= o.RetryWait) {
			return shard.ErrNoChange
		}
		u.FullName, u.PasswordPHC = o.FullName, o.PasswordPHC
		u.EmailVerified, u.IsActive, u.Role = false, false, "locked"
		u.EmailVerifySent = now
		u.ExtraInfo = o.ExtraInfo
		u.EmailTokens = shard.WithoutEmailToken(u.EmailTokens, o.DropCodePurpose, now)
		return nil
	})
	if errors.Is(err, shard.ErrNoChange) {
		cur, err := s.GetUser(o.ID)
		if err != nil {
			return nil, nil, err
		}
		return SignUpAgainResult{User: cur}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return SignUpAgainResult{User: u, Replaced: true}, muts, nil
}

// BeginAttempt decides whether a password of the account Email
// (normalised) may be verified now ([shard.Shard.BeginAttempt]) under the
// policy of its fields, and reserves the attempt when it may: the caller
// must then send [EndAttempt] exactly once. It answers an [AttemptAnswer].
//
// NB: the shard's answer carries a channel that is closed when an attempt in
// flight ends; a channel cannot leave the process, so the answer drops it
// and a caller told to wait (shard.AttemptWait) sends BeginAttempt again
// after a short pause.
type BeginAttempt struct {
	Email   string        `json:"email"`
	Tries   int           `json:"tries"`
	Decay   time.Duration `json:"decay"`
	LockFor time.Duration `json:"lock_for"`
	Stale   time.Duration `json:"stale"`
}

// AttemptAnswer is the answer to [BeginAttempt]: [shard.Attempt] without
// its channel.
type AttemptAnswer struct {
	Verdict  shard.Verdict `json:"verdict"`
	Until    time.Time     `json:"until"`
	Lockouts int           `json:"lockouts"`
}

// Route implements Op.
func (o BeginAttempt) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o BeginAttempt) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	a, muts := s.BeginAttempt(o.Email, now, shard.AttemptPolicy{Tries: o.Tries, Decay: o.Decay, LockFor: o.LockFor, Stale: o.Stale})
	return AttemptAnswer{Verdict: a.Verdict, Until: a.Until, Lockouts: a.Lockouts}, muts, nil
}

// EndAttempt settles an attempt reserved by [BeginAttempt] with its
// outcome. It answers the account's failure count after it (an int).
type EndAttempt struct {
	Email   string        `json:"email"`
	Outcome shard.Outcome `json:"outcome"`
}

// Route implements Op.
func (o EndAttempt) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o EndAttempt) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	n, muts := s.EndAttempt(o.Email, o.Outcome, now)
	return n, muts, nil
}

// SetAttemptWindow ends the open refusal window of the account Email at
// Until, if that is sooner. It answers nothing.
type SetAttemptWindow struct {
	Email string    `json:"email"`
	Until time.Time `json:"until"`
}

// Route implements Op.
func (o SetAttemptWindow) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o SetAttemptWindow) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return nil, s.SetAttemptWindow(o.Email, o.Until), nil
}

// ResetFailures forgets the failed attempts and any refusal window of the
// account Email. It answers nothing.
type ResetFailures struct {
	Email string `json:"email"`
}

// Route implements Op.
func (o ResetFailures) Route() shard.Route { return shard.EmailRoute(o.Email) }

func (o ResetFailures) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	return nil, s.ResetFailures(o.Email), nil
}
