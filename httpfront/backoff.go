package httpfront

// The brute-force back-off and auto-lock are the core's (actors.Accounts,
// docs/security.md, "Brute-force back-off and auto-lock"); the front words
// their refusal.

const msgAutoLocked = "Your user account has been locked after repeated login failures. Try again in an hour or contact the server admins."

// lockedAnswer is the reply to an attempt on an account over its limit
// (docs/security.md, "Brute-force back-off and auto-lock"), whatever the
// request type.
func lockedAnswer() result {
	return result{messages: []string{msgAutoLocked}, fields: []field{{"user_id", nil}}}
}
