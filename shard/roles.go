package shard

import (
	"encoding/json"
	"errors"
	"time"
)

// Lock and unlock as the reference does them (a lock keeps the previous
// role in extra_info, an unlock restores it), with two fixes: the list of
// previous roles is bounded, and an unlock pops the role it restores (the
// reference's list grows with every lock). See docs/protocol.md, "Account
// management".

// maxPreviousRoles bounds extra_info.previous_user_roles.
const maxPreviousRoles = 10

// ErrNoChange reports a lock of a locked user or an unlock of an unlocked
// one: nothing to do.
var ErrNoChange = errors.New("shard: no change")

// LockUser locks user u (in place): the current role is remembered, the
// user becomes inactive with role "locked". until, when not zero, schedules
// an automatic unlock. It returns ErrNoChange when u is already locked.
func LockUser(u *User, until time.Time) error {
	if u.Role == "locked" {
		return ErrNoChange
	}
	roles := previousRoles(u.ExtraInfo)
	roles = append(roles, u.Role)
	if len(roles) > maxPreviousRoles {
		roles = roles[len(roles)-maxPreviousRoles:]
	}
	u.ExtraInfo = setPreviousRoles(u.ExtraInfo, roles)
	u.IsActive = false
	u.Role = "locked"
	u.AutoUnlockAt = micro(until)
	if until.IsZero() {
		u.AutoUnlockAt = time.Time{}
	}
	return nil
}

// UnlockUser unlocks user u (in place): active again, with the role it had
// before the lock. It returns ErrNoChange when u is not locked.
func UnlockUser(u *User) error {
	if u.Role != "locked" {
		return ErrNoChange
	}
	roles := previousRoles(u.ExtraInfo)
	role := "locked" // the reference's default for a user never locked by a lock
	if len(roles) > 0 {
		role = roles[len(roles)-1]
		roles = roles[:len(roles)-1]
	}
	u.ExtraInfo = setPreviousRoles(u.ExtraInfo, roles)
	u.IsActive = true
	u.Role = role
	u.AutoUnlockAt = time.Time{}
	return nil
}

func previousRoles(extra json.RawMessage) []string {
	var m struct {
		Roles []string `json:"previous_user_roles"`
	}
	if len(extra) > 0 {
		_ = json.Unmarshal(extra, &m)
	}
	return m.Roles
}

func setPreviousRoles(extra json.RawMessage, roles []string) json.RawMessage {
	m := map[string]json.RawMessage{}
	if len(extra) > 0 {
		_ = json.Unmarshal(extra, &m)
	}
	if roles == nil {
		roles = []string{}
	}
	b, _ := json.Marshal(roles)
	m["previous_user_roles"] = b
	out, err := json.Marshal(m)
	if err != nil {
		return extra
	}
	return out
}
