package httpfront

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// Paging of user-list and user-lookup-match: a large user base must not
// produce a giant answer. Callers page with the extra kwargs page_after
// (the last user_id seen) and page_size; the answer carries
// next_page_after (null on the last page).
const (
	defaultPageSize = 500
	maxPageSize     = 1000
)

func pageOf(c *call) (after shard.UserID, size int) {
	size = defaultPageSize
	if n, ok := c.int("page_size"); ok && n > 0 {
		size = int(min(n, maxPageSize))
	}
	if n, ok := c.int("page_after"); ok && n > 0 {
		after = shard.UserID(n)
	}
	return after, size
}

// listUsers gathers one page of users that match, in id order, and the
// page_after of the next page (nil when none).
func listUsers(s *Server, after shard.UserID, size int, match actors.UserMatch) ([]shard.User, any, error) {
	users, more, err := actors.UsersPage(s.deps.Core, after, size, match)
	if err != nil || !more || len(users) == 0 {
		return users, nil, err
	}
	return users, int64(users[len(users)-1].ID), nil
}

func handleUserList(c *call) (result, error) {
	after, size := pageOf(c)
	if id, ok := c.int("user_id"); ok {
		u, err := getUser(c.s, shard.UserID(id))
		if errors.Is(err, shard.ErrUserNotFound) {
			return success("User look up successful.").with("user_info", userInfoList{}).with("next_page_after", nil), nil
		}
		if err != nil {
			return result{}, err
		}
		return success("User look up successful.").with("user_info", userInfoList{u}).with("next_page_after", nil), nil
	}
	users, next, err := listUsers(c.s, after, size, actors.UserMatch{})
	if err != nil {
		return result{}, err
	}
	return success("User look up successful.").with("user_info", userInfoList(users)).with("next_page_after", next), nil
}

func handleUserLookupEmail(c *call) (result, error) {
	u, found, err := c.s.deps.Accounts.UserByEmail(c.str("email"))
	if err != nil {
		return result{}, err
	}
	if !found {
		return failure("user email not found in DB", "User look up failed.").with("user_info", nil), nil
	}
	return success("User look up successful.").with("user_info", userInfo{u}), nil
}

// handleUserLookupMatch finds users whose column equals a value
// (docs/protocol.md, "Account management"). Only the documented columns may
// be matched (never the password).
func handleUserLookupMatch(c *call) (result, error) {
	by, match := c.str("by"), c.raw("match")
	if (by == "extra_info") != (rawKind(match) == '{') {
		return failure("invalid request: 'by' is 'extra_info' but 'match' is not a dict or 'match' is a dict and 'by' is not 'extra_info'", "Invalid match condition provided.").with("user_info", nil), nil
	}
	pred, err := matcher(by, match)
	if err != nil {
		return failure("exception in DB access", "User look up failed.").with("user_info", nil), nil
	}
	after, size := pageOf(c)
	users, next, err := listUsers(c.s, after, size, pred)
	if err != nil {
		return result{}, err
	}
	return success("User look up successful.").with("user_info", userInfoList(users)).with("next_page_after", next), nil
}

var errBadMatch = errors.New("httpfront: bad match")

// matcher returns the selection of user-lookup-match: the value of match
// checked against the column by and normalised.
func matcher(by string, match json.RawMessage) (actors.UserMatch, error) {
	m := actors.UserMatch{By: by}
	var v any
	dec := json.NewDecoder(bytes.NewReader(match))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return m, errBadMatch
	}
	str := func() (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", errBadMatch
		}
		return s, nil
	}
	var err error
	switch by {
	case "user_id":
		n, ok := v.(json.Number)
		id, nerr := n.Int64()
		if !ok || nerr != nil {
			return m, errBadMatch
		}
		m.ID = id
	case "system_id", "full_name", "user_role":
		m.Text, err = str()
	case "email":
		var s string
		if s, err = str(); err == nil {
			m.Text = passpolicy.NormalizeEmail(s)
		}
	case "is_active":
		b, ok := v.(bool)
		if !ok {
			return m, errBadMatch
		}
		m.Bool = b
	case "created_on", "last_login_try", "last_login_success":
		var s string
		if s, err = str(); err == nil {
			if m.Time, err = wire.ParseTime(s); err != nil {
				err = errBadMatch
			}
		}
	case "extra_info":
		want := map[string]json.RawMessage{}
		if err := json.Unmarshal(match, &want); err != nil {
			return m, errBadMatch
		}
		m.Extra = map[string]string{}
		for k, x := range want {
			m.Extra[k] = actors.CanonicalJSON(x)
		}
	default:
		err = errBadMatch
	}
	return m, err
}

// orderedKeys returns the keys of a JSON object in the order given.
func orderedKeys(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// pyList renders strings as a Python list repr.
func pyList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// sessionMatches checks that token is a live session of an active user with
// this id and role.
func sessionMatches(s *Server, token string, uid int64, role string) (bool, error) {
	info, err := actors.CheckSession(s.deps.Core, shard.DigestSession(token))
	if errors.Is(err, shard.ErrSessionNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return int64(info.User.ID) == uid && info.User.Role == role && info.User.IsActive, nil
}

// handleUserEdit lets a user edit their own name and email, and a
// superuser edit anyone's.
func handleUserEdit(c *call) (result, error) {
	s := c.s
	uid, _ := c.int("user_id")
	target, _ := c.int("target_userid")
	role := c.str("user_role")
	fail := func(reason, msg string) result { return failure(reason, msg).with("user_info", nil) }
	if target == int64(shard.AnonymousID) || target == int64(shard.DummyUserID) {
		return fail("invalid request: can't edit anonymous/locked users", "Editing anonymous/locked user accounts not allowed."), nil
	}
	raw := c.raw("update_dict")
	var update map[string]json.RawMessage
	if json.Unmarshal(raw, &update) != nil || len(update) == 0 {
		return fail("invalid request: missing 'update_dict' in request", "Invalid user-edit request: missing or invalid parameters."), nil
	}
	keys := orderedKeys(raw)
	switch {
	case target == uid && (role == "authenticated" || role == "staff"):
		ok, err := sessionMatches(s, c.str("session_token"), uid, role)
		if err != nil {
			return result{}, err
		}
		if !ok {
			return fail("no valid session found for originating user_id", "User session info not available for this user edit attempt."), nil
		}
		for _, k := range keys {
			if k != "full_name" && k != "email" {
				return fail("role '"+role+"' can't edit anything other than 'full_name', 'email'", "extra elements in update_dict not allowed"), nil
			}
		}
	case role == "superuser":
		ok, err := sessionMatches(s, c.str("session_token"), uid, role)
		if err != nil {
			return result{}, err
		}
		if !ok {
			return fail("invalid session for edit attempt", "Superuser session info not available for this user edit attempt."), nil
		}
		allowed := map[string]bool{"full_name": true, "email": true, "is_active": true, "user_role": true, "email_verified": true}
		for _, k := range keys {
			if !allowed[k] {
				return fail("role: 'superuser' is not allowed to edit items: '"+pyList(keys)+"'", "extra elements in update_dict not allowed"), nil
			}
		}
		if r, ok := update["user_role"]; ok {
			var nr string
			if json.Unmarshal(r, &nr) != nil || !s.perms().HasRole(nr) {
				return fail("role change requested is not valid", "unknown role change request in update_dict"), nil
			}
		}
	default:
		return fail("invalid session for edit attempt", "user_id or session info not available for this user edit attempt."), nil
	}
	u, err := editUser(s, shard.UserID(target), update)
	switch {
	case errors.Is(err, shard.ErrUserNotFound), errors.Is(err, errEditValue):
		return fail("exception when trying to update user", "User update failed."), nil
	case err != nil:
		return result{}, err
	}
	return success("User update successful.").with("user_info", userInfo{u}), nil
}

// handleUserLock lets a superuser lock or unlock another user.
func handleUserLock(c *call) (result, error) {
	uid, _ := c.int("user_id")
	target, _ := c.int("target_userid")
	role, action := c.str("user_role"), c.str("action")
	fail := func(reason, msg string) result { return failure(reason, msg).with("user_info", nil) }
	switch {
	case role != "superuser":
		return fail("user role is not 'superuser', required to toggle locks", "You don't have lock/unlock privileges."), nil
	case target == uid:
		return fail("can't toggle a lock state on self", "You can't lock/unlock your own user account."), nil
	case action != "lock" && action != "unlock":
		return fail("action must be one of 'lock', 'unlock'", "Unknown action requested for toggle_user_lock."), nil
	case target == int64(shard.AnonymousID) || target == int64(shard.DummyUserID):
		return fail("can't toggle lock state for system anonymous/locked accounts", "Editing anonymous/locked user accounts not allowed."), nil
	}
	ok, err := sessionMatches(c.s, c.str("session_token"), uid, role)
	if err != nil {
		return result{}, err
	}
	if !ok {
		return fail("invalid session for user attempting lock toggle", "Superuser session info not available for this user edit attempt."), nil
	}
	return toggleLock(c.s, shard.UserID(target), action)
}

func handleInternalUserLock(c *call) (result, error) {
	target, _ := c.int("target_userid")
	action := c.str("action")
	if action != "lock" && action != "unlock" {
		return failure("action must be either 'lock' or 'unlock'", "Unknown action requested for toggle_user_lock.").with("user_info", nil), nil
	}
	if target == int64(shard.AnonymousID) || target == int64(shard.DummyUserID) {
		return failure("can't edit anonymous/locked users", "Editing anonymous/locked user accounts not allowed.").with("user_info", nil), nil
	}
	return toggleLock(c.s, shard.UserID(target), action)
}

// toggleLock locks or unlocks a user by hand: one call to the core's flow
// (docs/protocol.md, "Users").
func toggleLock(s *Server, id shard.UserID, action string) (result, error) {
	a, err := s.deps.Accounts.SetLock(id, action == "lock")
	if err != nil {
		return result{}, err
	}
	if !a.OK() {
		return failure("exception encountered when trying lock toggle action", "User lock toggle failed.").with("user_info", nil), nil
	}
	return success("User lock toggle successful.").with("user_info", userInfo{a.User}), nil
}

// handleInternalUserDelete deletes a user and their sessions. Unlike the
// reference, the system users 1–3 are protected and an unknown user is a
// failure (docs/protocol.md, "Deliberate differences from the Python
// server").
func handleInternalUserDelete(c *call) (result, error) {
	target, _ := c.int("target_userid")
	a, err := c.s.deps.Accounts.DeleteUser(shard.UserID(target))
	if err != nil {
		return result{}, err
	}
	switch a.Refusal {
	case "":
		return success("User successfully deleted from DB.").with("user_id", target), nil
	case actors.RefusedProtected:
		return failure("can't delete system users", "Could not delete user from DB.").with("user_id", target), nil
	}
	return failure("no such user", "Could not delete user from DB.").with("user_id", target), nil
}
