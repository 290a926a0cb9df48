package httpfront

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

const (
	msgAccountCreated = "User account created. Please verify your email address to log in."
	maxSystemIDBytes  = 50 // docs/protocol.md, "Users": system_id ≤ 50 bytes
)

// handleUserNew signs a user up.
func handleUserNew(c *call) (result, error) {
	s := c.s
	email := c.str("email")
	fail := func(reason string, userEmail any, msgs ...string) result {
		return failure(reason, msgs...).with("user_email", userEmail).with("user_id", nil).with("send_verification", false)
	}
	if err := passpolicy.ValidateEmail(email, s.ext.users.disposable()); err != nil {
		return fail("invalid email", nil, "The email address provided doesn't seem to be a valid email address and cannot be used to sign up for an account on this server."), nil
	}
	norm := passpolicy.NormalizeEmail(email)
	fullName := passpolicy.NormalizeFullName(c.str("full_name"))
	if err := passpolicy.CheckFullName(fullName); err != nil {
		return fail("invalid full name", nil, "The full name provided appears to contain an HTTP link, and cannot be used to sign up for an account on this server."), nil
	}
	sysID := c.str("system_id")
	if len(sysID) > maxSystemIDBytes {
		return fail("DB issue with user creation", nil, msgAccountCreated), nil
	}
	retryWait := int64(6)
	if n, ok := c.int("verify_retry_wait"); ok {
		retryWait = max(n, 1)
	}
	// Hash before the policy check, so a refused password costs the same
	// time as an accepted one (docs/security.md, "Passwords and hashing").
	password := passhash.TruncatePassword(c.str("password"))
	phc, err := hashPassword(s, password)
	if err != nil {
		return result{}, err
	}
	if ok, msgs := s.ext.users.opts.Policy.Check(password, norm, fullName, s.ext.users.opts.ServerFQDN); !ok {
		return fail("invalid password", norm, msgs...), nil
	}
	extra, err := signupExtra(c.raw("extra_info"), retryWait)
	if err != nil {
		return fail("DB issue with user creation", nil, msgAccountCreated), nil
	}

	// Claim the email on its shard first: one actor decides who gets an
	// address, so of two racing sign-ups exactly one wins.
	id, owner, err := claimEmailNewID(s, norm)
	if err != nil {
		return result{}, err
	}
	if id == 0 {
		return signupExisting(c, owner, norm, fullName, phc, extra, retryWait)
	}
	if sysID == "" {
		sysID = newUUID()
	} else if _, ok, err := claimKey(s, systemIDKey(sysID), id); err != nil || !ok {
		releaseKey(s, norm, id)
		if err != nil {
			return result{}, err
		}
		return fail("DB issue with user creation", nil, msgAccountCreated), nil
	}
	u := shard.User{
		ID: id, SystemID: sysID, FullName: fullName, PasswordPHC: phc, Email: norm,
		ExtraInfo: extra, Role: "locked",
	}
	// The id counter travels with the user, so a restart never hands out an
	// id again.
	res, err := actors.Ask[shard.User](s.deps.Core, actors.SignUp{User: u})
	if err == nil {
		err = durable(res)
	}
	if err != nil {
		// Nothing partial is left: give the address back.
		releaseKey(s, norm, id)
		if c.has("system_id") {
			releaseKey(s, systemIDKey(sysID), id)
		}
		return result{}, err
	}
	s.log.Info("user signed up", "user", s.pii(strconv.FormatInt(int64(id), 10)))
	return success(msgAccountCreated).
		with("user_email", norm).with("user_id", int64(id)).
		with("system_id", sysID).with("send_verification", true), nil
}

// signupExisting answers a sign-up for an email that already has a user
// (docs/protocol.md, "Users"): the same message as a success; and if the
// account is still unverified and the last verification mail is older than
// the retry wait, the sign-up data replaces the old and a new mail may be
// sent.
func signupExisting(c *call, owner shard.UserID, norm, fullName, phc string, extra json.RawMessage, retryWait int64) (result, error) {
	// Only a code mailed for this sign-up may activate it: a code of the
	// replaced one would activate the new password.
	res, err := actors.Ask[actors.SignUpAgainResult](c.s.deps.Core, actors.SignUpAgain{
		ID: owner, FullName: fullName, PasswordPHC: phc, ExtraInfo: extra,
		RetryWait: time.Duration(retryWait) * time.Hour, DropCodePurpose: purposeSignup,
	})
	if err == nil {
		err = durable(res)
	}
	u, resend := res.Value.User, res.Value.Replaced
	// The owner may be a sign-up that won the claim a moment ago and is
	// still writing its user record: wait for it briefly.
	for i := 0; i < 100 && errors.Is(err, shard.ErrUserNotFound); i++ {
		time.Sleep(2 * time.Millisecond)
		u, err = getUser(c.s, owner)
	}
	if errors.Is(err, shard.ErrUserNotFound) {
		return failure("user exists", msgAccountCreated).
			with("user_email", norm).with("user_id", int64(owner)).
			with("system_id", nil).with("send_verification", false), nil
	}
	if err != nil {
		return result{}, err
	}
	return failure("user exists", msgAccountCreated).
		with("user_email", norm).with("user_id", int64(u.ID)).
		with("system_id", u.SystemID).with("send_verification", resend), nil
}

var errNoChange = errors.New("httpfront: no change")

// claimEmailNewID claims email for a new user and returns the user's id, or
// id 0 and the owner when the address is taken. The id is drawn inside the
// email shard's turn, only once the claim is sure to succeed: a sign-up of
// a taken address uses up no id (the next sign-up would skip one).
func claimEmailNewID(s *Server, email string) (id, owner shard.UserID, err error) {
	res, err := actors.Ask[actors.NewClaim](s.deps.Core, actors.ClaimNewEmail{Email: email})
	if err != nil {
		return 0, 0, err
	}
	if err := durable(res); err != nil {
		return 0, 0, err
	}
	return res.Value.ID, res.Value.Owner, nil
}

// signupExtra is the request's extra_info updated with the server's keys
// (docs/protocol.md, "Users").
func signupExtra(raw json.RawMessage, retryWait int64) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if rawKind(raw) == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
	}
	m["provenance"] = json.RawMessage(`"request-created"`)
	m["type"] = json.RawMessage(`"normal-user"`)
	m["verify_retry_wait"] = json.RawMessage(strconv.FormatInt(retryWait, 10))
	out, err := json.Marshal(m)
	if err == nil && len(out) > maxExtraInfoBytes {
		err = errTooLarge
	}
	return out, err
}
