package perm

import (
	"errors"
	"fmt"
	"strings"
)

// AnonymousUserID is the user that anonymous sessions belong to. An item
// shared with it is shared with everyone, as in the reference.
const AnonymousUserID int64 = 2

var (
	// ErrBadSharedWith is returned, wrapped, by [ParseSharedWith] for an
	// entry that is not a base-10 integer. user-check-access answers it with
	// "exception when checking the DB".
	ErrBadSharedWith = errors.New("perm: shared-with entry is not an integer")
	// ErrSharedWithRange is returned, wrapped, by [ParseSharedWith] for an
	// integer entry outside int64. The reference parsed it (Python ints are
	// unbounded) and then found no such user, so a caller that wants its
	// exact answer treats this as "users specified as owner or shared-with
	// not found".
	ErrSharedWithRange = errors.New("perm: shared-with entry out of range")
)

// AccessQuery is one user-check-access question (docs/protocol.md, "Access
// and limit checks"): may
// user UserID, who has role Role, do Action to an item of type Target owned
// by Owner, with visibility Visibility, shared with the users listed in
// SharedWith?
type AccessQuery struct {
	UserID     int64
	Role       string
	Action     string
	Target     string // item type, e.g. "dataset"
	Owner      int64
	Visibility string // e.g. "public", "unlisted", "shared", "private"
	SharedWith string // comma-separated user ids; "" or "none" (any case) for none
}

// CheckAccess decides q with the reference's algorithm:
//
//  1. The shared-or-owned test: superuser and staff pass; otherwise a
//     private item needs UserID == Owner, a shared item needs UserID in
//     SharedWith, [AnonymousUserID] in SharedWith, or UserID == Owner (a
//     malformed SharedWith fails the test), and public and unlisted items
//     pass. Any other visibility fails.
//  2. The permitted actions: when UserID == Owner, the role's actions for
//     owned items if the role can own Target, else none; when UserID !=
//     Owner, the role's actions for other users' items of this visibility.
//     Either set is then cut down to the item's valid actions, and is empty
//     if the role is invalid for the item or the visibility is not valid for
//     it.
//  3. Access is granted iff both hold.
//
// NB: the superuser/staff bypass of step 1 goes by role name, whatever the
// model says about those roles.
//
// An undeclared Role returns an error wrapping [ErrUnknownRole]. An unknown
// Target, Action or Visibility is a denial. CheckAccess does not allocate
// except to build that error.
func (m *Model) CheckAccess(q AccessQuery) (bool, error) {
	r, ok := m.roleIdx[q.Role]
	if !ok {
		return false, fmt.Errorf("perm: check access as role %q: %w", q.Role, ErrUnknownRole)
	}
	if !sharedOrOwnedOK(&q) {
		return false, nil
	}
	t, ok := m.itemIdx[q.Target]
	if !ok {
		return false, nil
	}
	a, ok := m.actionIdx[q.Action]
	if !ok {
		return false, nil
	}
	v, ok := m.visIdx[q.Visibility]
	if !ok {
		return false, nil
	}
	ip, rp := &m.itemPol[t], &m.rolePol[r]
	if ip.invalidRoles.has(r) || !ip.visibilities.has(v) || !ip.actions.has(a) {
		return false, nil
	}
	if q.UserID == q.Owner {
		return rp.canOwn.has(t) && rp.owned.has(a), nil
	}
	return rp.other[v].has(a), nil
}

// sharedOrOwnedOK is step 1 of [Model.CheckAccess].
func sharedOrOwnedOK(q *AccessQuery) bool {
	if q.Role == RoleSuperuser || q.Role == RoleStaff {
		return true
	}
	switch q.Visibility {
	case "private":
		return q.UserID == q.Owner
	case "shared":
		return sharedWithOK(q.UserID, q.Owner, q.SharedWith)
	case "unlisted", "public":
		return true
	}
	return false
}

// sharedWithOK is step 1 for a shared item, without allocating: the whole
// list must parse (as Python's [int(x) for x in s.split(',')] does) before
// any match counts.
func sharedWithOK(user, owner int64, s string) bool {
	if noneShared(s) {
		return user == owner
	}
	listed, anyone := false, false
	for {
		end := strings.IndexByte(s, ',')
		if end < 0 {
			end = len(s)
		}
		c := pyInt(s[:end])
		if !c.ok {
			return false
		}
		if c.over == 0 {
			listed = listed || c.i == user
			anyone = anyone || c.i == AnonymousUserID
		}
		if end == len(s) {
			break
		}
		s = s[end+1:]
	}
	return listed || anyone || user == owner
}

func noneShared(s string) bool { return s == "" || strings.EqualFold(s, "none") }

// ParseSharedWith parses a target_sharedwith value: comma-separated base-10
// integers, each with optional surrounding whitespace, sign and digit
// underscores, as Python's int() reads them. "" and "none" (any case) mean
// nobody and return nil. An entry that is not an integer (including an empty
// one, as in "1,,2") returns an error wrapping [ErrBadSharedWith]; one
// outside int64 returns an error wrapping [ErrSharedWithRange].
//
// The server calls it to check that every listed user exists
// (docs/protocol.md, "Access and limit checks"); the access decision itself
// does not need it.
func ParseSharedWith(s string) ([]int64, error) {
	if noneShared(s) {
		return nil, nil
	}
	ids := make([]int64, 0, strings.Count(s, ",")+1)
	for i, entry := range strings.Split(s, ",") {
		c := pyInt(entry)
		switch {
		case !c.ok:
			return nil, fmt.Errorf("perm: parse shared-with entry %d %q: %w", i, entry, ErrBadSharedWith)
		case c.over != 0:
			return nil, fmt.Errorf("perm: parse shared-with entry %d %q: %w", i, entry, ErrSharedWithRange)
		}
		ids = append(ids, c.i)
	}
	return ids, nil
}
