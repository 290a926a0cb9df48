package perm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var (
	allActions = []string{"list", "view", "create", "delete", "edit", "change_visibility", "change_owner"}
	allVis     = []string{"public", "unlisted", "shared", "private"}
	allItems   = []string{"object", "dataset", "collection", "user", "session", "apikey", "preference"}
	allRoles   = []string{"superuser", "staff", "authenticated", "anonymous", "locked"}
)

// cell is one row of a table of what the default model grants: the actions
// granted on one's own item (at every visibility valid for the item) and on
// another user's item at each visibility. Shared items are queried with the
// acting user in the shared-with list.
type cell struct {
	own                               []string
	public, unlisted, shared, private []string
}

func csv(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

const (
	all7      = "list,view,create,delete,edit,change_visibility,change_owner"
	staffPub  = "list,view,edit,delete,change_visibility,change_owner"
	staffShrd = "list,view,edit"
)

// effective is that table, row by row. The pairs it leaves out ("any |
// locked", "user, session, apikey, preference | anonymous", "user, session |
// authenticated") are granted nothing.
func effective() map[[2]string]cell {
	t := map[[2]string]cell{}
	for _, item := range []string{"object", "collection"} {
		t[[2]string{item, "superuser"}] = cell{csv(all7), csv(all7), csv(all7), csv(all7), csv(all7)}
		t[[2]string{item, "staff"}] = cell{csv(all7), csv(staffPub), csv(staffPub), csv(staffShrd), csv("list")}
		t[[2]string{item, "authenticated"}] = cell{nil, csv("list,view"), csv("view"), csv("list,view,edit"), nil}
		t[[2]string{item, "anonymous"}] = cell{nil, csv("list,view"), csv("view"), nil, nil}
	}
	t[[2]string{"dataset", "superuser"}] = cell{csv(all7), csv(all7), csv(all7), csv(all7), csv(all7)}
	t[[2]string{"dataset", "staff"}] = cell{csv(all7), csv(staffPub), csv(staffPub), csv(staffShrd), csv("list")}
	t[[2]string{"dataset", "authenticated"}] = cell{csv("list,view,create,edit,delete,change_visibility"), csv("list,view"), csv("view"), csv("list,view,edit"), nil}
	t[[2]string{"dataset", "anonymous"}] = cell{csv("list,view,create"), csv("list,view"), csv("view"), nil, nil}
	t[[2]string{"user", "superuser"}] = cell{private: csv("list,view,create,edit,delete")}
	t[[2]string{"user", "staff"}] = cell{private: csv("list")}
	t[[2]string{"session", "superuser"}] = cell{private: csv("list,view,delete")}
	t[[2]string{"session", "staff"}] = cell{private: csv("list")}
	t[[2]string{"apikey", "superuser"}] = cell{own: csv("list,view,create,delete"), private: csv("list,view,create,delete")}
	t[[2]string{"apikey", "staff"}] = cell{own: csv("list,view,create,delete"), private: csv("list")}
	t[[2]string{"apikey", "authenticated"}] = cell{own: csv("list,view,create,delete")}
	t[[2]string{"preference", "superuser"}] = cell{own: csv("list,view,edit"), private: csv("list,view,edit")}
	t[[2]string{"preference", "staff"}] = cell{own: csv("list,view,edit"), private: csv("list")}
	t[[2]string{"preference", "authenticated"}] = cell{own: csv("list,view,edit")}
	return t // every other (item, role) pair: nothing at all
}

// ownVisibilities is where "own item (any valid visibility)" applies; the
// table marks apikey and preference "(private only)", and user and session
// allow only private too.
func ownVisibilities(item string) []string {
	switch item {
	case "object", "dataset", "collection":
		return allVis
	}
	return []string{"private"}
}

func TestEffectiveResults(t *testing.T) {
	const me, other int64 = 10, 20
	m := Default()
	table := effective()
	for _, item := range allItems {
		for _, role := range allRoles {
			c := table[[2]string{item, role}]
			for _, vis := range allVis {
				for _, owned := range []bool{true, false} {
					var want []string
					owner, shared := other, "5,10,30" // me is listed
					switch {
					case owned:
						owner, shared = me, ""
						if slices.Contains(ownVisibilities(item), vis) {
							want = c.own
						}
					case vis == "public":
						want = c.public
					case vis == "unlisted":
						want = c.unlisted
					case vis == "shared":
						want = c.shared
					case vis == "private":
						want = c.private
					}
					name := fmt.Sprintf("%s/%s/%s/owned=%v", item, role, vis, owned)
					t.Run(name, func(t *testing.T) {
						for _, action := range allActions {
							got, err := m.CheckAccess(AccessQuery{
								UserID: me, Role: role, Action: action, Target: item,
								Owner: owner, Visibility: vis, SharedWith: shared,
							})
							if err != nil {
								t.Fatalf("%s: err = %v; want nil", action, err)
							}
							if w := slices.Contains(want, action); got != w {
								t.Errorf("%s: got %v; want %v", action, got, w)
							}
						}
					})
				}
			}
		}
	}
}

func TestCheckAccessShared(t *testing.T) {
	m := Default()
	q := func(role string, user, owner int64, shared string) AccessQuery {
		return AccessQuery{UserID: user, Role: role, Action: "view", Target: "dataset", Owner: owner, Visibility: "shared", SharedWith: shared}
	}
	tests := []struct {
		name string
		q    AccessQuery
		want bool
	}{
		{"listed user", q("authenticated", 10, 20, "5,10"), true},
		{"listed with spaces", q("authenticated", 10, 20, " 5 , 10 "), true},
		{"listed with sign and underscore", q("authenticated", 1000, 20, "+1_000"), true},
		{"not listed", q("authenticated", 10, 20, "5,11"), false},
		{"anonymous 2 listed shares with all", q("authenticated", 10, 20, "5,2"), true},
		{"anonymous user via 2", q("anonymous", 2, 20, "2"), false}, // anonymous role has no shared actions
		{"none", q("authenticated", 10, 20, "none"), false},
		{"NONE any case", q("authenticated", 10, 20, "NoNe"), false},
		{"empty", q("authenticated", 10, 20, ""), false},
		{"garbage denies even if listed", q("authenticated", 10, 20, "10,x"), false},
		{"garbage 1,x", q("authenticated", 10, 20, "1,x"), false},
		{"empty entry", q("authenticated", 10, 20, "10,,5"), false},
		{"trailing comma", q("authenticated", 10, 20, "10,"), false},
		{"float entry", q("authenticated", 10, 20, "10.0"), false},
		{"huge entry parses but never matches", q("authenticated", 10, 20, "99999999999999999999,10"), true},
		{"huge entry alone", q("authenticated", 10, 20, "99999999999999999999"), false},
		{"superuser ignores garbage", q("superuser", 10, 20, "x"), true},
		{"staff ignores list", q("staff", 10, 20, "none"), true},
		// Owner with an empty list: shared-or-owned passes, and then the
		// owned actions apply.
		{"owner, none", q("authenticated", 10, 10, "none"), true},
		{"owner, garbage", q("authenticated", 10, 10, "x"), false},
		// Owner whose role cannot own the item type: nothing.
		{"owner cannot own", AccessQuery{UserID: 10, Role: "authenticated", Action: "view", Target: "object", Owner: 10, Visibility: "public"}, false},
		{"unknown visibility", AccessQuery{UserID: 10, Role: "superuser", Action: "view", Target: "object", Owner: 20, Visibility: "secret"}, false},
		{"unknown target", AccessQuery{UserID: 10, Role: "superuser", Action: "view", Target: "thing", Owner: 20, Visibility: "public"}, false},
		{"unknown action", AccessQuery{UserID: 10, Role: "superuser", Action: "fly", Target: "object", Owner: 20, Visibility: "public"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.CheckAccess(tt.q)
			if err != nil {
				t.Fatalf("err = %v; want nil", err)
			}
			if got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestCheckAccessUnknownRole(t *testing.T) {
	for _, role := range []string{"", "root", "Superuser"} {
		got, err := Default().CheckAccess(AccessQuery{UserID: 1, Role: role, Action: "view", Target: "object", Owner: 1, Visibility: "public"})
		if !errors.Is(err, ErrUnknownRole) || got {
			t.Errorf("role %q: got %v, %v; want false, ErrUnknownRole", role, got, err)
		}
	}
}

func TestParseSharedWith(t *testing.T) {
	tests := []struct {
		in      string
		want    []int64
		wantErr error
	}{
		{"", nil, nil},
		{"none", nil, nil},
		{"NONE", nil, nil},
		{"1", []int64{1}, nil},
		{"1,2,3", []int64{1, 2, 3}, nil},
		{" 4 ,\t5\n", []int64{4, 5}, nil},
		{"-3,+7,1_000", []int64{-3, 7, 1000}, nil},
		{"007", []int64{7}, nil},
		{"9223372036854775807", []int64{9223372036854775807}, nil},
		{"-9223372036854775808", []int64{-9223372036854775808}, nil},
		{"1,x", nil, ErrBadSharedWith},
		{"1,,2", nil, ErrBadSharedWith},
		{",", nil, ErrBadSharedWith},
		{" ", nil, ErrBadSharedWith},
		{"none,1", nil, ErrBadSharedWith},
		{"1.0", nil, ErrBadSharedWith},
		{"1e3", nil, ErrBadSharedWith},
		{"0x10", nil, ErrBadSharedWith},
		{"1__0", nil, ErrBadSharedWith},
		{"_1", nil, ErrBadSharedWith},
		{"1_", nil, ErrBadSharedWith},
		{"9223372036854775808", nil, ErrSharedWithRange},
		{"-9223372036854775809", nil, ErrSharedWithRange},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSharedWith(tt.in)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil && err == nil) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	m := Default()
	if got := m.Roles(); !slices.Equal(got, allRoles) {
		t.Errorf("Roles() = %v; want %v", got, allRoles)
	}
	m.Roles()[0] = "changed"
	if got := m.Roles()[0]; got != "superuser" {
		t.Errorf("Roles()[0] after mutating a copy = %q; want superuser", got)
	}
	for _, r := range allRoles {
		if !m.HasRole(r) {
			t.Errorf("HasRole(%q) = false; want true", r)
		}
	}
	for _, r := range []string{"", "root", "SUPERUSER"} {
		if m.HasRole(r) {
			t.Errorf("HasRole(%q) = true; want false", r)
		}
	}
}
