package httpfront

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/shard"
)

// Answers of user-check-access and user-check-limit.
const (
	accessGranted   = "Access request check successful. Access granted: True."
	accessDenied    = "Access request check successful. Access granted: False."
	accessError     = "Could not validate access to the requested item."
	limitPassed     = "Limit check successful. Limit check passed: True."
	limitFailed     = "Limit check successful. Limit check passed: False."
	limitError      = "Could not validate limit rule for the requested item."
	reasonDBError   = "exception when checking the DB"
	reasonNotValid  = "user initiating request is not valid"
	reasonNotFound  = "users specified as owner or shared-with not found"
	reasonDenied    = "action not permitted"
	reasonNoUser    = "user attempting access not found"
	reasonOverLimit = "user is over limit"
)

// maxSharedWithIDs bounds the ids of target_sharedwith that are looked up
// one by one; a longer list is checked with one message to every shard.
const maxSharedWithIDs = 8

// handleCheckAccess answers user-check-access: the decision of the permission
// model in use (the configured one; the reference ignores it,
// docs/protocol.md, "Deliberate differences from the Python server"), given
// only if the acting user exists with that role and is active and every owner
// and shared-with user exists and is active. Users are read from their
// shards' memory.
func handleCheckAccess(c *call) (result, error) {
	uid, _ := c.int("user_id")
	owner, _ := c.int("target_owner")
	role := c.str("user_role")
	shared := c.str("target_sharedwith")
	granted, err := c.s.perms().CheckAccess(perm.AccessQuery{
		UserID: uid, Role: role, Action: c.str("action"), Target: c.str("target_name"),
		Owner: owner, Visibility: c.str("target_visibility"), SharedWith: shared,
	})
	if err != nil {
		return failure(reasonDBError, accessError), nil
	}
	sharedIDs, err := perm.ParseSharedWith(shared)
	sharedOutOfRange := false
	if err != nil {
		if !errors.Is(err, perm.ErrSharedWithRange) || anyBadSharedWith(shared) {
			return failure(reasonDBError, accessError), nil
		}
		// Python parsed the huge id, and then found no such user.
		sharedOutOfRange = true
	}
	st, err := userStateOf(c.s, shard.UserID(uid))
	if err != nil {
		return result{}, err
	}
	if !st.active || st.role != role {
		return failure(reasonNotValid, accessDenied), nil
	}
	ids := append(sharedIDs, owner)
	ok, err := allActive(c.s, shard.UserID(uid), ids)
	if err != nil {
		return result{}, err
	}
	if !ok || sharedOutOfRange {
		return failure(reasonNotFound, accessDenied), nil
	}
	if !granted {
		return failure(reasonDenied, accessDenied), nil
	}
	return success(accessGranted), nil
}

// anyBadSharedWith reports whether some entry of s is not an integer at
// all (which Python meets as a ValueError even after an out-of-range one).
func anyBadSharedWith(s string) bool {
	for e := range strings.SplitSeq(s, ",") {
		if _, err := perm.ParseSharedWith(e); errors.Is(err, perm.ErrBadSharedWith) || strings.TrimSpace(e) == "" {
			return true
		}
	}
	return false
}

// handleCheckLimit answers user-check-limit (docs/protocol.md, "Access and
// limit checks").
func handleCheckLimit(c *call) (result, error) {
	uid, _ := c.int("user_id")
	role := c.str("user_role")
	dec := json.NewDecoder(bytes.NewReader(c.raw("value_to_check")))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return failure(reasonDBError, limitError), nil
	}
	passed, err := c.s.perms().CheckLimit(role, c.str("limit_name"), value)
	if err != nil {
		return failure(reasonDBError, limitError), nil
	}
	st, err := userStateOf(c.s, shard.UserID(uid))
	if err != nil {
		return result{}, err
	}
	if !st.active || st.role != role {
		return failure(reasonNoUser, limitFailed), nil
	}
	if !passed {
		return failure(reasonOverLimit, limitFailed), nil
	}
	return success(limitPassed), nil
}

// userState is what the checks need of a user.
type userState struct {
	role   string
	active bool
}

// userStateOf reads a user's role and activity from its shard. A missing
// user is an inactive one with no role.
func userStateOf(s *Server, id shard.UserID) (userState, error) {
	res, err := actors.Do(s.deps.Core, shard.UserRoute(id), func(sh *shard.Shard, _ time.Time) (userState, []shard.Mutation, error) {
		u, err := sh.GetUser(id)
		if err != nil {
			return userState{}, nil, nil
		}
		return userState{role: u.Role, active: u.IsActive}, nil, nil
	})
	return res.Value, err
}

// allActive reports whether every user in ids exists and is active; known
// is already checked. A few ids are read one by one from their shards; a
// long list is checked by every shard at once for the users it holds.
func allActive(s *Server, known shard.UserID, ids []int64) (bool, error) {
	set := make(map[shard.UserID]struct{}, len(ids))
	for _, id := range ids {
		if shard.UserID(id) != known {
			set[shard.UserID(id)] = struct{}{}
		}
	}
	if len(set) <= maxSharedWithIDs {
		for id := range set {
			st, err := userStateOf(s, id)
			if err != nil {
				return false, err
			}
			if !st.active {
				return false, nil
			}
		}
		return true, nil
	}
	// The set is only read while the shards run.
	rs, err := actors.DoAll(s.deps.Core, func(sh *shard.Shard, _ time.Time) (int, []shard.Mutation, error) {
		n := 0
		for id := range set {
			if u, err := sh.GetUser(id); err == nil && u.IsActive {
				n++
			}
		}
		return n, nil, nil
	})
	if err != nil {
		return false, err
	}
	n := 0
	for _, r := range rs {
		n += r.Value
	}
	return n == len(set), nil
}
