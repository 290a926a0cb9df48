package httpfront

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// userEditForbidden are the keys internal-user-edit refuses.
var userEditForbidden = map[string]bool{
	"user_id": true, "system_id": true, "password": true,
	"emailverify_sent_datetime": true, "emailforgotpass_sent_datetime": true,
	"emailchangepass_sent_datetime": true, "last_login_success": true,
	"last_login_try": true, "failed_login_tries": true, "created_on": true, "last_updated": true,
}

// errEditValue reports an update whose value cannot be stored (the
// reference's DB error).
var errEditValue = errors.New("httpfront: bad value in update_dict")

// pyKeySet renders keys as a Python set repr, as the reference's message
// does (sorted here, so the text is stable).
func pyKeySet(keys []string) string {
	sort.Strings(keys)
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "{" + strings.Join(q, ", ") + "}"
}

func handleInternalUserEdit(c *call) (result, error) {
	var update map[string]json.RawMessage
	if err := json.Unmarshal(c.raw("update_dict"), &update); err != nil || len(update) == 0 {
		return failure("invalid request: missing 'update_dict' in request", "Invalid user-edit request: missing or invalid parameters.").with("user_info", nil), nil
	}
	var bad []string
	for k := range update {
		if userEditForbidden[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return failure("invalid request: disallowed keys in update_dict: "+pyKeySet(bad), "Invalid edit-user request: invalid update parameters.").with("user_info", nil), nil
	}
	target, _ := c.int("target_userid")
	u, err := editUser(c.s, shard.UserID(target), update)
	switch {
	case errors.Is(err, shard.ErrUserNotFound):
		return failure("no such user", "User info update failed.").with("user_info", nil), nil
	case errors.Is(err, errEditValue):
		return failure("DB error when updating user info", "User info update failed.").with("user_info", nil), nil
	case err != nil:
		return result{}, err
	}
	return success("User-info update successful.").with("user_info", userInfo{u}), nil
}

// editUser applies update (column -> JSON value) to user id: full_name,
// email, email_verified, is_active, user_role, extra_info (merged, with
// "__delete__" removing a key). Unknown keys and wrong types fail with
// errEditValue and change nothing. A new email is validated, normalised and
// claimed in the email index first, so emails stay unique.
func editUser(s *Server, id shard.UserID, update map[string]json.RawMessage) (shard.User, error) {
	type edit struct {
		fullName, email, role *string
		verified, active      *bool
		extra                 map[string]json.RawMessage
		extraSet              bool
	}
	var e edit
	str := func(v json.RawMessage) (*string, error) {
		var x string
		if rawKind(v) != '"' || json.Unmarshal(v, &x) != nil {
			return nil, errEditValue
		}
		return &x, nil
	}
	boolean := func(v json.RawMessage) (*bool, error) {
		var x bool
		if k := rawKind(v); (k != 't' && k != 'f') || json.Unmarshal(v, &x) != nil {
			return nil, errEditValue
		}
		return &x, nil
	}
	var err error
	for k, v := range update {
		switch k {
		case "full_name":
			if e.fullName, err = str(v); err == nil {
				n := passpolicy.NormalizeFullName(*e.fullName)
				if passpolicy.CheckFullName(n) != nil {
					err = errEditValue
				}
				e.fullName = &n
			}
		case "email":
			if e.email, err = str(v); err == nil {
				if passpolicy.ValidateEmail(*e.email, nil) != nil {
					err = errEditValue
				}
				n := passpolicy.NormalizeEmail(*e.email)
				e.email = &n
			}
		case "user_role":
			if e.role, err = str(v); err == nil && !s.perms().HasRole(*e.role) {
				err = errEditValue
			}
		case "email_verified":
			e.verified, err = boolean(v)
		case "is_active":
			e.active, err = boolean(v)
		case "extra_info":
			switch rawKind(v) {
			case 'n':
			case '{':
				e.extraSet = true
				err = json.Unmarshal(v, &e.extra)
			default:
				err = errEditValue
			}
		default:
			err = errEditValue
		}
		if err != nil {
			return shard.User{}, errEditValue
		}
	}
	op := actors.EditUser{ID: id, Extra: e.extra, SetExtra: e.extraSet, MaxExtraBytes: maxExtraInfoBytes}
	if e.fullName != nil {
		op.FullName, op.SetFullName = *e.fullName, true
	}
	if e.email != nil {
		op.Email, op.SetEmail = *e.email, true
	}
	if e.role != nil {
		op.Role, op.SetRole = *e.role, true
	}
	if e.verified != nil {
		op.EmailVerified, op.SetEmailVerified = *e.verified, true
	}
	if e.active != nil {
		op.IsActive, op.SetIsActive = *e.active, true
	}
	a, err := s.deps.Accounts.EditUser(op)
	switch {
	case err != nil:
		return shard.User{}, err
	case a.Refusal == actors.RefusedNoUser:
		return shard.User{}, shard.ErrUserNotFound
	case !a.OK():
		return shard.User{}, errEditValue
	}
	u := a.User
	return u, nil
}
