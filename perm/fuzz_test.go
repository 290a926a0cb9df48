package perm

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func FuzzLoad(f *testing.F) {
	f.Add(defaultJSON)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"roles":["superuser","anonymous","locked"],"items":[],"actions":[],"visibilities":[],"limits":{},"item_policy":{},"role_policy":{}}`))
	f.Add([]byte(strings.Replace(string(defaultJSON), `"operator": "lt"`, `"operator": "le"`, 1)))
	f.Add([]byte(strings.Replace(string(defaultJSON), `"limit": 0`, `"limit": 1.5e3`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(bytes.NewReader(data))
		if err != nil {
			if m != nil {
				t.Fatalf("Load returned a model and error %v", err)
			}
			if !errors.Is(err, ErrInvalidModel) {
				t.Fatalf("Load err %v does not match ErrInvalidModel", err)
			}
			return
		}
		// An accepted model answers every question without panicking, and
		// only an undeclared role is an error.
		// Only the first few names of each kind, so that a big model does
		// not make the loops below explode.
		for _, role := range first(m.Roles(), "no-such-role") {
			for _, target := range first(m.items, "no-such-item") {
				for _, vis := range first(m.visibilities, "no-such-visibility") {
					for _, action := range first(m.actions, "no-such-action") {
						for _, owner := range []int64{1, 2} {
							_, err := m.CheckAccess(AccessQuery{UserID: 1, Role: role, Action: action, Target: target, Owner: owner, Visibility: vis, SharedWith: "1,2"})
							if (err != nil) != !m.HasRole(role) {
								t.Fatalf("CheckAccess(role %q) err = %v; HasRole = %v", role, err, m.HasRole(role))
							}
						}
					}
				}
			}
			for _, v := range []any{json.Number("1"), "1.5", 2.5, true, nil} {
				if _, err := m.CheckLimit(role, "max_requests", v); (err != nil) != !m.HasRole(role) {
					t.Fatalf("CheckLimit(role %q) err = %v", role, err)
				}
			}
		}
	})
}

// first returns up to 8 of names followed by extra.
func first(names []string, extra string) []string {
	return append(slices.Clone(names[:min(len(names), 8)]), extra)
}

func FuzzCheckAccess(f *testing.F) {
	f.Add(int64(10), "authenticated", "view", "dataset", int64(20), "shared", "5,10")
	f.Add(int64(10), "anonymous", "list", "object", int64(10), "public", "")
	f.Add(int64(2), "staff", "edit", "collection", int64(3), "private", "none")
	f.Add(int64(1), "superuser", "create", "user", int64(3), "private", "1,x")
	f.Add(int64(7), "authenticated", "edit", "dataset", int64(8), "shared", " +7 , 2_0 ")
	f.Fuzz(func(t *testing.T, user int64, role, action, target string, owner int64, vis, shared string) {
		m := Default()
		q := AccessQuery{UserID: user, Role: role, Action: action, Target: target, Owner: owner, Visibility: vis, SharedWith: shared}
		got, err := m.CheckAccess(q)
		if err != nil {
			if got || m.HasRole(role) || !errors.Is(err, ErrUnknownRole) {
				t.Fatalf("CheckAccess(%+v) = %v, %v", q, got, err)
			}
			return
		}
		if !got || role == RoleSuperuser || role == RoleStaff || vis != "shared" {
			return
		}
		// A grant on a shared item needs the user in a well-formed list,
		// anonymous in it, or ownership; ParseSharedWith must agree.
		ids, perr := ParseSharedWith(shared)
		if perr != nil && !errors.Is(perr, ErrSharedWithRange) {
			t.Fatalf("granted %+v but ParseSharedWith err = %v", q, perr)
		}
		if perr == nil && user != owner {
			found := false
			for _, id := range ids {
				found = found || id == user || id == AnonymousUserID
			}
			if !found {
				t.Fatalf("granted %+v but user not in %v", q, ids)
			}
		}
	})
}

func FuzzCheckLimit(f *testing.F) {
	f.Add("12", 0.5, int64(3))
	f.Add(" 1_000 ", 1e300, int64(-1))
	f.Add("inf", math.Copysign(0, -1), int64(0)) // negative zero
	f.Fuzz(func(t *testing.T, s string, x float64, i int64) {
		m := limitModel(t)
		for _, name := range []string{"max_requests", "ratio", "floor", "ffloor", "intfrac"} {
			for _, v := range []any{s, json.Number(s), x, i, x > 0} {
				if _, err := m.CheckLimit("anonymous", name, v); err != nil {
					t.Fatalf("CheckLimit(%q, %#v) err = %v", name, v, err)
				}
			}
		}
		// A string that Python's int() reads must read the same in
		// ParseSharedWith.
		c := pyInt(s)
		ids, err := ParseSharedWith(s)
		if c.ok && c.over == 0 && !noneShared(s) && !strings.Contains(s, ",") && (err != nil || len(ids) != 1 || ids[0] != c.i) {
			t.Fatalf("pyInt(%q) = %d but ParseSharedWith = %v, %v", s, c.i, ids, err)
		}
	})
}
