package httpfront

import (
	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passpolicy"
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
	r, err := s.deps.Accounts.SignUpUser(actors.SignUpForm{
		Email: norm, FullName: fullName, Password: c.str("password"), SystemID: sysID,
		ExtraInfo: c.raw("extra_info"), MaxExtraBytes: maxExtraInfoBytes, RetryWaitHours: retryWait,
	})
	if err != nil {
		return result{}, err
	}
	u := r.User
	switch r.Refusal {
	case "":
		return success(msgAccountCreated).
			with("user_email", norm).with("user_id", int64(u.ID)).
			with("system_id", u.SystemID).with("send_verification", true), nil
	case actors.RefusedInsecure:
		return fail("invalid password", norm, r.Policy...), nil
	case actors.RefusedExists, actors.RefusedExistsRenewed:
		// docs/protocol.md, "Users": the same message as a success.
		return failure("user exists", msgAccountCreated).
			with("user_email", norm).with("user_id", int64(u.ID)).
			with("system_id", u.SystemID).with("send_verification", r.Refusal == actors.RefusedExistsRenewed), nil
	case actors.RefusedRaced:
		return failure("user exists", msgAccountCreated).
			with("user_email", norm).with("user_id", int64(u.ID)).
			with("system_id", nil).with("send_verification", false), nil
	}
	// RefusedInvalid, RefusedSystemIDTaken.
	return fail("DB issue with user creation", nil, msgAccountCreated), nil
}
