package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/client"
)

// Crash-test write kinds for users and API keys: sign-ups, password changes
// and API-key revocations. Each worker owns its users and keys, so it knows
// what the server must hold of them.
//
// Password checks after a restart only ever use a password the worker
// knows is right: a failed check is delayed by the brute-force back-off and
// counts towards an automatic lock. A user whose password is unknown (a
// change got no answer) is therefore dropped, never probed.

// crashUser is an active user with a known password.
type crashUser struct {
	id              int64
	email, password string
}

// crashAPIKey is a no-session API key of the superuser, acknowledged as issued.
type crashAPIKey struct {
	tkn    string
	claims map[string]any
}

// Fact keys of users: "user:<email>" (sign-up, activation) and
// "pass:<email>" (password change); forget drops the user from the pool.
const (
	userFact = "user:"
	passFact = "pass:"
)

func userOfFact(key string) (string, bool) {
	if e, ok := strings.CutPrefix(key, userFact); ok {
		return e, true
	}
	return strings.CutPrefix(key, passFact)
}

// newPassword returns a fresh password that passes the default policy.
func (w *worker) newPassword() string {
	return fmt.Sprintf("Crash-%016x-Pw", w.rng.Uint64())
}

// signUp signs a new user up and returns its email, password and id (0 if
// the sign-up was not acknowledged).
func (w *worker) signUp(ctx context.Context) (email, password string, id int64, err error) {
	w.n++
	email = fmt.Sprintf("crash-%d-%d@example.org", w.id, w.n)
	password = w.newPassword()
	r, err := w.c.Request(ctx, "user-new", map[string]any{
		"full_name": "Crash Worker", "email": email, "password": password, "client_ipaddr": "127.0.0.1",
	})
	if !acked(r, err) {
		return email, password, 0, err
	}
	id, _ = r.Int("user_id")
	w.know(userFact+email, "user-new", userHas(email, id, false))
	return email, password, id, nil
}

func writeUserNew(ctx context.Context, w *worker) error {
	_, _, _, err := w.signUp(ctx)
	return err
}

// activeUser returns one of the worker's active users, signing one up and
// activating it (internal-user-edit) if it has none; nil if a step was not
// acknowledged.
func (w *worker) activeUser(ctx context.Context) (*crashUser, error) {
	for _, u := range w.users {
		return u, nil // map order is random enough
	}
	email, password, id, err := w.signUp(ctx)
	if id == 0 {
		return nil, err
	}
	r, err := w.c.Request(ctx, "internal-user-edit", map[string]any{
		"target_userid": id, "client_ipaddr": "127.0.0.1",
		"update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"},
	})
	if !acked(r, err) {
		return nil, err // the sign-up fact stays: only its activation is unknown
	}
	w.know(userFact+email, "internal-user-edit", userHas(email, id, true))
	u := &crashUser{id: id, email: email, password: password}
	w.users[email] = u
	return u, nil
}

func writeChangepass(ctx context.Context, w *worker) error {
	u, err := w.activeUser(ctx)
	if u == nil {
		return err
	}
	w.forget(passFact + u.email) // in flight: the password is old or new until acknowledged
	next := w.newPassword()
	r, err := w.c.Request(ctx, "user-changepass-nosession", map[string]any{
		"user_id": u.id, "full_name": "Crash Worker", "email": u.email,
		"current_password": u.password, "new_password": next, "client_ipaddr": "127.0.0.1",
	})
	if !acked(r, err) {
		return err
	}
	u.password = next
	w.users[u.email] = u
	w.know(passFact+u.email, "user-changepass-nosession", passwordWorks(u.email, next, u.id))
	return nil
}

func writeAPIKeyNew(ctx context.Context, w *worker) error {
	r, err := w.c.Request(ctx, "apikey-new-nosession", map[string]any{
		"issuer": "crash", "audience": "api.example.org", "subject": fmt.Sprintf("/w%d", w.id), "apiversion": 1,
		"expires_seconds": 7 * 24 * 3600, "not_valid_before": 0, "user_id": 1, "user_role": "superuser",
		"ip_address": "10.0.0.1", "refresh_expires": 7 * 24 * 3600, "refresh_nbf": 0, "client_ipaddr": "127.0.0.1",
	})
	if !acked(r, err) {
		return err // never seen: nothing to forget
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(r.Str("apikey")), &claims); err != nil {
		return fmt.Errorf("apikey is not JSON: %w", err)
	}
	tkn, _ := claims["tkn"].(string)
	if tkn == "" {
		return errors.New("apikey without tkn")
	}
	w.keys = append(w.keys, &crashAPIKey{tkn: tkn, claims: claims})
	w.know(tkn, "apikey-new-nosession", keyVerifies(claims, true))
	return nil
}

func writeAPIKeyRevoke(ctx context.Context, w *worker) error {
	if len(w.keys) == 0 {
		return writeAPIKeyNew(ctx, w)
	}
	k := w.keys[w.rng.IntN(len(w.keys))]
	w.forget(k.tkn) // in flight: valid or revoked until acknowledged
	r, err := w.c.Request(ctx, "apikey-revoke-nosession", map[string]any{
		"apikey_dict": k.claims, "user_id": 1, "user_role": "superuser", "client_ipaddr": "127.0.0.1",
	})
	if !acked(r, err) {
		return err
	}
	w.know(k.tkn, "apikey-revoke-nosession", keyVerifies(k.claims, false))
	return nil
}

// checkRequest is a check's request: an answer of 503 (busy: the checks of
// all workers run at once from one address, which holds a quarter of the
// hasher pool at most) says nothing about the data, so it is asked again
// until ctx ends.
func checkRequest(ctx context.Context, c *client.Client, reqType string, body map[string]any) (*client.Response, error) {
	for {
		r, err := c.Request(ctx, reqType, body)
		if err != nil || r.StatusCode != 503 {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// userHas checks that email belongs to user id (and, if active, that the
// user is active and verified).
func userHas(email string, id int64, active bool) func(ctx context.Context, c *client.Client) error {
	return func(ctx context.Context, c *client.Client) error {
		r, err := checkRequest(ctx, c, "user-lookup-email", map[string]any{"email": email, "client_ipaddr": "127.0.0.1"})
		if err != nil {
			return err
		}
		if !r.Success {
			return fmt.Errorf("user missing (status %d, %q)", r.StatusCode, r.FailureReason)
		}
		info := r.Map("user_info")
		if got, _ := info["user_id"].(float64); int64(got) != id {
			return fmt.Errorf("user_id = %v; want %d", info["user_id"], id)
		}
		if active && (info["is_active"] != true || info["email_verified"] != true || info["user_role"] != "authenticated") {
			return fmt.Errorf("activation lost: is_active %v, email_verified %v, user_role %v",
				info["is_active"], info["email_verified"], info["user_role"])
		}
		return nil
	}
}

// passwordWorks checks that password is the user's password. It is only
// ever called with the password the user must have.
func passwordWorks(email, password string, id int64) func(ctx context.Context, c *client.Client) error {
	return func(ctx context.Context, c *client.Client) error {
		r, err := checkRequest(ctx, c, "user-passcheck-nosession", map[string]any{"email": email, "password": password, "client_ipaddr": "127.0.0.1"})
		if err != nil {
			return err
		}
		if !r.Success {
			return fmt.Errorf("new password refused (status %d, %q)", r.StatusCode, r.FailureReason)
		}
		if got, _ := r.Int("user_id"); got != id {
			return fmt.Errorf("user_id = %d; want %d", got, id)
		}
		return nil
	}
}

// keyVerifies checks that the key verifies (valid) or is refused (revoked).
func keyVerifies(claims map[string]any, valid bool) func(ctx context.Context, c *client.Client) error {
	return func(ctx context.Context, c *client.Client) error {
		r, err := checkRequest(ctx, c, "apikey-verify-nosession", map[string]any{
			"apikey_dict": claims, "user_id": 1, "user_role": "superuser", "client_ipaddr": "127.0.0.1",
		})
		if err != nil {
			return err
		}
		switch {
		case r.StatusCode != 200:
			return fmt.Errorf("verify status %d", r.StatusCode)
		case valid && !r.Success:
			return fmt.Errorf("issued key does not verify (%q)", r.FailureReason)
		case !valid && r.Success:
			return errors.New("revoked key verifies again")
		}
		return nil
	}
}
