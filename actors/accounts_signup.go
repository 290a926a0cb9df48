package actors

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// The flows that add users: a sign-up (user-new), and the creation of users
// whose id is fixed (the system users and the superuser at the first start).
// Both claim the user's index keys and store the record through one step,
// addUser, which gives the keys back when the record cannot be stored.

// The refusals of the flows that add users.
const (
	// RefusedExists: the email (or the fixed id) has a user already;
	// nothing changed. The answer's User is that user.
	RefusedExists Refusal = "exists"
	// RefusedExistsRenewed: a sign-up of an address whose user is still
	// unverified, with its last verification mail older than the retry
	// wait: the new sign-up's name, password and extra info replaced the
	// old, and a new verification mail may be sent. The answer's User is
	// that user after the change.
	RefusedExistsRenewed Refusal = "exists, renewed"
	// RefusedSystemIDTaken: another user holds the client-chosen system id.
	RefusedSystemIDTaken Refusal = "system id taken"
	// RefusedEmailTaken: another user holds the email of a user with a
	// fixed id (the answer's User has that user's id only).
	RefusedEmailTaken Refusal = "email taken"
	// RefusedInvalid: the sign-up's data cannot be stored (extra info that
	// is not an object or is over its bound).
	RefusedInvalid Refusal = "invalid"
)

// SignUpForm is a sign-up's data, its email and full name already checked
// by the caller (passpolicy.ValidateEmail, passpolicy.CheckFullName).
type SignUpForm struct {
	Email string
	// FullName is the normalised full name (passpolicy.NormalizeFullName).
	FullName string
	// Password is as given; the flow cuts it to what is hashed.
	Password string
	// SystemID is the client's choice, unique among users; "" draws a
	// random UUID.
	SystemID string
	// ExtraInfo is the request's extra info (used when it is a JSON
	// object); the flow adds the server's keys (docs/protocol.md, "Users").
	ExtraInfo json.RawMessage
	// MaxExtraBytes bounds the stored extra info.
	MaxExtraBytes int
	// RetryWaitHours is how old the last verification mail of an unverified
	// user must be for a new sign-up of its email to replace it (at least
	// 1).
	RetryWaitHours int64
}

// SignUpUser signs a user up (docs/protocol.md, "Users"): an inactive user
// with role "locked", whose verification mail is to be sent now. The
// password is hashed before the policy judges it, so a refused password
// costs the same time as an accepted one (docs/security.md, "Passwords and
// hashing"). The email is claimed on its shard first, with the new user's
// id: one actor decides who gets an address, so of two racing sign-ups
// exactly one wins.
//
// The answer's User is the new user; the refusals are RefusedInsecure (with
// Policy), RefusedInvalid, RefusedSystemIDTaken, RefusedExists and
// RefusedExistsRenewed (User is the address's user), and RefusedRaced (the
// address is held by a sign-up that did not store its user in time; User
// has its id only).
func (a *Accounts) SignUpUser(f SignUpForm) (Answer, error) {
	norm := passpolicy.NormalizeEmail(f.Email)
	password := passhash.TruncatePassword(f.Password)
	phc, err := a.Hash(password)
	if err != nil {
		return Answer{}, err
	}
	if ok, msgs := a.opts.Policy.Check(password, norm, f.FullName, a.opts.ServerFQDN); !ok {
		return Answer{Refusal: RefusedInsecure, Policy: msgs}, nil
	}
	extra, err := signupExtra(f.ExtraInfo, f.RetryWaitHours, f.MaxExtraBytes)
	if err != nil {
		return refused(RefusedInvalid, shard.User{}), nil
	}
	// The id is drawn inside the email shard's turn, only once the claim is
	// sure to succeed: a sign-up of a taken address uses up no id.
	claim, err := askDurable[NewClaim](a.core, ClaimNewEmail{Email: norm})
	if err != nil {
		return Answer{}, err
	}
	if claim.ID == 0 {
		return a.signUpAgain(claim.Owner, f.FullName, phc, extra, f.RetryWaitHours)
	}
	sidKey := ""
	if f.SystemID == "" {
		f.SystemID = newUUID()
	} else {
		sidKey = shard.SystemIDKey(f.SystemID)
	}
	u := shard.User{
		ID: claim.ID, SystemID: f.SystemID, FullName: f.FullName, PasswordPHC: phc, Email: norm,
		ExtraInfo: extra, Role: "locked",
	}
	// SignUp carries the id counter with the user, so a restart never hands
	// out the id again.
	stored, why, err := a.addUser(u, sidKey, SignUp{User: u})
	if err != nil || why != "" {
		return refused(why, shard.User{}), err
	}
	a.log.Info("user signed up", "user", a.pii(stored.ID))
	return Answer{User: stored}, nil
}

// signUpAgain answers a sign-up for an address whose user is owner
// (docs/protocol.md, "Users"): if the account is still unverified and the
// last verification mail is older than the retry wait, the sign-up data
// replaces the old.
func (a *Accounts) signUpAgain(owner shard.UserID, fullName, phc string, extra json.RawMessage, retryWaitHours int64) (Answer, error) {
	// Only a code mailed for this sign-up may activate it: a code of the
	// replaced one would activate the new password.
	r, err := askDurable[SignUpAgainResult](a.core, SignUpAgain{
		ID: owner, FullName: fullName, PasswordPHC: phc, ExtraInfo: extra,
		RetryWait: time.Duration(retryWaitHours) * time.Hour, DropCodePurpose: shard.PurposeSignup,
	})
	// The owner may be a sign-up that won the claim a moment ago and is
	// still writing its user record: wait for it briefly.
	for i := 0; i < 100 && errors.Is(err, shard.ErrUserNotFound); i++ {
		time.Sleep(2 * time.Millisecond)
		var found bool
		if r.User, found, err = a.user(owner); err == nil && !found {
			err = shard.ErrUserNotFound
		}
	}
	switch {
	case errors.Is(err, shard.ErrUserNotFound):
		return refused(RefusedRaced, shard.User{ID: owner}), nil
	case err != nil:
		return Answer{}, err
	case r.Replaced:
		return refused(RefusedExistsRenewed, r.User), nil
	}
	return refused(RefusedExists, r.User), nil
}

// signupExtra is the request's extra info updated with the server's keys
// (docs/protocol.md, "Users").
func signupExtra(raw json.RawMessage, retryWaitHours int64, maxBytes int) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if firstByte(raw) == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
	}
	m["provenance"] = json.RawMessage(`"request-created"`)
	m["type"] = json.RawMessage(`"normal-user"`)
	m["verify_retry_wait"] = json.RawMessage(strconv.FormatInt(retryWaitHours, 10))
	out, err := json.Marshal(m)
	if err == nil && len(out) > maxBytes {
		err = errors.New("actors: extra info too large")
	}
	return out, err
}

// addUser stores the new user u with store ([CreateUser] or [SignUp]),
// once its email is claimed for u.ID by the caller: it claims the
// client-chosen system id first (sidKey, "" for none), and waits until the
// record is durable. When a step fails it gives back what was claimed for
// u.ID, so nothing partial is left; the refusal is RefusedSystemIDTaken.
func (a *Accounts) addUser(u shard.User, sidKey string, store Op) (shard.User, Refusal, error) {
	if sidKey != "" {
		_, ok, err := a.claimKey(sidKey, u.ID)
		if err != nil || !ok {
			a.releaseKey(u.Email, u.ID)
			if err != nil {
				return shard.User{}, "", err
			}
			return shard.User{}, RefusedSystemIDTaken, nil
		}
	}
	stored, err := askDurable[shard.User](a.core, store)
	if errors.Is(err, shard.ErrUserExists) {
		// A user of this id exists: the claims are its own (a fixed id
		// made at once by another node of a cluster): keep them.
		return shard.User{}, "", err
	}
	if err != nil {
		a.releaseKey(u.Email, u.ID)
		if sidKey != "" {
			a.releaseKey(sidKey, u.ID)
		}
		return shard.User{}, "", err
	}
	return stored, "", nil
}

// NewUser is a user with a fixed id for [Accounts.CreateUsers].
type NewUser struct {
	ID       shard.UserID
	Email    string // normalised here
	Password string // hashed here
	FullName string
	Role     string
	IsActive bool
	// ExtraInfo is stored as it is (a JSON object).
	ExtraInfo json.RawMessage
}

// CreateUsers adds users whose ids are fixed, in order, each verified, with
// a random UUID as system id; their passwords are hashed together first.
// A user whose id exists already is kept as it is (RefusedExists, with the
// user), so a second run changes nothing; an email held by another user is
// RefusedEmailTaken. It answers one Answer per user, in order; on an error
// the users before the failing one are stored.
func (a *Accounts) CreateUsers(users ...NewUser) ([]Answer, error) {
	ops := make([]passhash.HashOp, len(users))
	for i, nu := range users {
		ops[i] = passhash.HashOp{Password: nu.Password}
	}
	hashes, err := a.hasher.Run(ops...)
	if err != nil {
		return nil, err
	}
	out := make([]Answer, 0, len(users))
	for i, nu := range users {
		if hashes[i].Err != nil {
			return out, hashes[i].Err
		}
		r, err := a.createUser(nu, hashes[i].PHC)
		if err != nil {
			return out, fmt.Errorf("actors: create user %d: %w", nu.ID, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// createUser is one user of CreateUsers, with its password hash.
func (a *Accounts) createUser(nu NewUser, phc string) (Answer, error) {
	if cur, found, err := a.user(nu.ID); err != nil {
		return Answer{}, err
	} else if found {
		return refused(RefusedExists, cur), nil
	}
	u := shard.User{
		ID: nu.ID, SystemID: newUUID(), FullName: nu.FullName, PasswordPHC: phc,
		Email: passpolicy.NormalizeEmail(nu.Email), EmailVerified: true, IsActive: nu.IsActive,
		ExtraInfo: nu.ExtraInfo, Role: nu.Role,
	}
	owner, ok, err := a.claimKey(u.Email, u.ID)
	if err != nil {
		return Answer{}, err
	}
	if !ok {
		return refused(RefusedEmailTaken, shard.User{ID: owner}), nil
	}
	stored, why, err := a.addUser(u, "", CreateUser{User: u})
	if errors.Is(err, shard.ErrUserExists) {
		cur, _, err := a.user(nu.ID)
		return refused(RefusedExists, cur), err
	}
	if err != nil || why != "" {
		return refused(why, shard.User{}), err
	}
	return Answer{User: stored}, nil
}

// Bootstrap creates the system users (docs/protocol.md, "Users, emails and
// passwords") unless the superuser exists: the anonymous user, the locked
// dummy user and the superuser, with adminEmail and adminPassword; the
// system users get random passwords. The superuser goes last: its presence
// marks a finished bootstrap, and a bootstrap cut short by a crash is redone
// (existing users are kept as they are). It reports whether it created the
// superuser.
func (a *Accounts) Bootstrap(adminEmail, adminPassword string) (created bool, err error) {
	if _, found, err := a.user(shard.SuperuserID); err != nil || found {
		return false, err
	}
	systemExtra := json.RawMessage(`{"provenance":"auto-created","type":"system-user"}`)
	lockedExtra := json.RawMessage(`{"provenance":"auto-created","type":"locked-user"}`)
	users := []NewUser{
		{ID: shard.AnonymousID, Email: "anonuser@localhost", Password: randomString(32), FullName: "The systemwide anonymous user",
			Role: "anonymous", IsActive: true, ExtraInfo: systemExtra},
		{ID: shard.DummyUserID, Email: "dummyuser@localhost", Password: randomString(32), FullName: "The systemwide locked user",
			Role: "locked", IsActive: false, ExtraInfo: lockedExtra},
		{ID: shard.SuperuserID, Email: adminEmail, Password: adminPassword, FullName: "Superuser account",
			Role: "superuser", IsActive: true, ExtraInfo: systemExtra},
	}
	answers, err := a.CreateUsers(users...)
	if err != nil {
		return false, err
	}
	for i, r := range answers {
		if !r.OK() && r.Refusal != RefusedExists {
			return false, fmt.Errorf("actors: bootstrap: user %d: %s", users[i].ID, r.Refusal)
		}
	}
	// Nodes of a cluster starting together all bootstrap; the one whose
	// superuser was stored made it.
	return answers[len(answers)-1].OK(), nil
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
