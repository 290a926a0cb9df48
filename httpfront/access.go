package httpfront

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

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
	st, err := userStanding(c.s, shard.UserID(uid), role, "")
	if err != nil {
		return result{}, err
	}
	if !st.Has(actors.StandingActive | actors.StandingRole) {
		return failure(reasonNotValid, accessDenied), nil
	}
	var idBuf [maxSharedWithIDs + 1]int64 // the usual short list stays on the stack
	ids := append(append(idBuf[:0], sharedIDs...), owner)
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
	value, err := limitValue(c.raw("value_to_check"))
	if err != nil {
		return failure(reasonDBError, limitError), nil
	}
	passed, err := c.s.perms().CheckLimit(role, c.str("limit_name"), value)
	if err != nil {
		return failure(reasonDBError, limitError), nil
	}
	st, err := userStanding(c.s, shard.UserID(uid), role, "")
	if err != nil {
		return result{}, err
	}
	if !st.Has(actors.StandingActive | actors.StandingRole) {
		return failure(reasonNoUser, limitFailed), nil
	}
	if !passed {
		return failure(reasonOverLimit, limitFailed), nil
	}
	return success(limitPassed), nil
}

// limitValue decodes value_to_check as encoding/json does with UseNumber,
// which perm.CheckLimit expects: a number is a json.Number. An integer
// literal that fits int64 is given as an int64 instead, which CheckLimit
// reads as the same number (FuzzLimitValue) and which costs no allocation
// for a value under 256 and one otherwise; a json.Number costs two, and a
// json.Decoder five.
func limitValue(raw []byte) (any, error) {
	if isNumber(rawKind(raw)) && isIntLiteral(raw) {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return n, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, err
	}
	return value, nil
}

// userStanding asks user id's shard for its standing: whether it exists
// and is active, and whether its role is role and is keyRole (exactly; see
// [actors.Standing]). A missing user has no standing. The answer is one
// byte, so the ask allocates no more than the operation and its envelope.
func userStanding(s *Server, id shard.UserID, role, keyRole string) (actors.Standing, error) {
	res, err := actors.Ask[actors.Standing](s.deps.Core, actors.CheckUserStanding{ID: id, Role: role, KeyRole: keyRole})
	return res.Value, err
}

// allActive reports whether every user in ids exists and is active; known
// is already checked. A few ids are read one by one from their shards; a
// long list is checked by every shard at once for the users it holds.
func allActive(s *Server, known shard.UserID, ids []int64) (bool, error) {
	var setBuf [maxSharedWithIDs + 1]shard.UserID
	set := setBuf[:0]
	for _, id := range ids {
		if shard.UserID(id) != known {
			set = append(set, shard.UserID(id))
		}
	}
	slices.Sort(set)
	set = slices.Compact(set)
	if len(set) <= maxSharedWithIDs {
		for _, id := range set {
			st, err := userStanding(s, id, "", "")
			if err != nil {
				return false, err
			}
			if !st.Has(actors.StandingActive) {
				return false, nil
			}
		}
		return true, nil
	}
	// A copy: the message outlives this frame's buffer.
	rs, err := actors.AskAll[int](s.deps.Core, actors.CountActiveUsers{IDs: slices.Clone(set)})
	if err != nil {
		return false, err
	}
	n := 0
	for _, r := range rs {
		n += r.Value
	}
	return n == len(set), nil
}
