package perm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
)

// MaxModelBytes is the largest model file [Load] accepts. The default model
// is about 5 KiB; a megabyte leaves room for large custom models while
// keeping a mistaken path (a log file, a database) from being read whole.
const MaxModelBytes = 1 << 20

// Roles every model must declare. The server gives them fixed meanings, as
// the reference does: new and locked accounts get locked, anonymous sessions
// belong to anonymous, and the first user is a superuser.
const (
	RoleSuperuser = "superuser"
	RoleStaff     = "staff"
	RoleAnonymous = "anonymous"
	RoleLocked    = "locked"
)

var (
	// ErrInvalidModel is matched (errors.Is) by every error Load returns
	// for a model it refuses.
	ErrInvalidModel = errors.New("perm: invalid permission model")
	// ErrUnknownRole is returned, wrapped, by the checks when the role is
	// not declared by the model. user-check-access and user-check-limit turn
	// it into "exception when checking the DB".
	ErrUnknownRole = errors.New("perm: unknown role")
)

// ModelError describes why Load refused a model.
type ModelError struct {
	// Path locates the problem in the JSON document, in the form
	// role_policy["staff"].allowed_actions_for_other["shared"]. Empty for
	// problems with the document as a whole (size, syntax).
	Path string
	// Problem says what is wrong, e.g. `unknown action "fly"`.
	Problem string
	// Err is the underlying error (a JSON syntax error, a read error), if any.
	Err error
}

func (e *ModelError) Error() string {
	if e.Path == "" {
		return "perm: " + e.Problem
	}
	return "perm: " + e.Path + ": " + e.Problem
}

// Unwrap lets errors.Is match both [ErrInvalidModel] and the cause.
func (e *ModelError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidModel}
	}
	return []error{ErrInvalidModel, e.Err}
}

// Model is a loaded, validated permission model.
//
// Invariants, established by Load and never changed afterwards (which is what
// makes concurrent use safe):
//  1. Every name is interned: roles, items, actions and visibilities map to
//     dense indices, and every policy set is a bitset over those indices.
//  2. rolePol has one entry per declared role and itemPol one per declared
//     item, so an index from roleIdx or itemIdx is always in range.
//  3. Every role limit has its limit type and operator resolved and its limit
//     already cast to that type.
//
// The zero Model declares nothing; its checks report every role unknown.
type Model struct {
	roles        []string // declared order, duplicates dropped
	roleIdx      map[string]int
	items        []string
	itemIdx      map[string]int
	actions      []string
	actionIdx    map[string]int
	visibilities []string
	visIdx       map[string]int
	itemPol      []itemPolicy // by item index
	rolePol      []rolePolicy // by role index
}

type itemPolicy struct {
	actions      bitset // valid_role_actions, over action indices
	visibilities bitset // valid_visibilities, over visibility indices
	invalidRoles bitset // over role indices
}

type rolePolicy struct {
	canOwn bitset   // over item indices
	owned  bitset   // allowed_actions_for_owned, over action indices
	other  []bitset // allowed_actions_for_other by visibility index; nil = none
	limits map[string]roleLimit
}

// roleLimit is one role_policy[r].limits entry with its limit type resolved.
type roleLimit struct {
	float bool    // limit type is "float"; else "int"
	gt    bool    // operator "gt"; else "lt"
	i     int64   // the limit cast to int (when !float)
	f     float64 // the limit cast to float (when float)
}

// bitset is a set of small non-negative integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) add(i int) { b[i>>6] |= 1 << (uint(i) & 63) }

func (b bitset) has(i int) bool {
	w := i >> 6
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

// Roles returns the declared roles in declaration order. The caller owns the
// returned slice.
func (m *Model) Roles() []string { return slices.Clone(m.roles) }

// HasRole reports whether the model declares role.
func (m *Model) HasRole(role string) bool {
	_, ok := m.roleIdx[role]
	return ok
}

// LoadFile reads and validates a model from the JSON file at path.
func LoadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("perm: open model: %w", err)
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return m, nil
}

// Load reads a JSON permission model (the reference's format) from r and
// validates it. It reads at most [MaxModelBytes]+1 bytes.
//
// Validation is stricter than the reference, which accepted anything that
// did not raise while building its sets. Load refuses, with a [*ModelError]
// naming the key:
//   - input over MaxModelBytes, malformed JSON, trailing data, unknown keys at
//     any level, missing or null keys, values of the wrong JSON type;
//   - empty names in roles, items, actions or visibilities;
//   - a model without the roles superuser, anonymous and locked;
//   - a reference to an undeclared role, item, action, visibility or limit
//     type anywhere in the policies;
//   - a declared role without a role_policy or a declared item without an
//     item_policy (the reference failed on such a role at request time and
//     silently denied everything on such an item);
//   - a limit type whose type is not int or float or whose operator is not lt
//     or gt, and a role limit whose limit is not a JSON number or does not fit
//     its type (int64 for int, finite float64 for float).
//
// Duplicate names are allowed; lists are sets.
func Load(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxModelBytes+1))
	if err != nil {
		return nil, &ModelError{Problem: "read model: " + err.Error(), Err: err}
	}
	if len(data) > MaxModelBytes {
		return nil, &ModelError{Problem: fmt.Sprintf("model larger than %d bytes", MaxModelBytes)}
	}
	var raw modelJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, decodeError("", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ModelError{Problem: fmt.Sprintf("trailing data after the model at byte offset %d", dec.InputOffset())}
	}
	return build(&raw)
}

// decodeError turns an encoding/json error met while decoding the value at
// path into a *ModelError that names the key.
func decodeError(path string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &ModelError{Problem: fmt.Sprintf("malformed JSON at byte offset %d: %v", syn.Offset, syn), Err: err}
	case errors.As(err, &typ):
		return &ModelError{Path: joinPath(path, typ.Field), Problem: fmt.Sprintf("got JSON %s, want %s", typ.Value, jsonKind(typ.Type.String())), Err: err}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &ModelError{Problem: "malformed JSON: unexpected end of input", Err: err}
	}
	// DisallowUnknownFields reports `json: unknown field "x"` with no path.
	if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &ModelError{Path: joinPath(path, ""), Problem: "unknown key " + key, Err: err}
	}
	return &ModelError{Path: path, Problem: err.Error(), Err: err}
}

func joinPath(path, field string) string {
	switch {
	case path == "" && field == "":
		return "(top level)"
	case path == "":
		return field
	case field == "":
		return path
	}
	return path + "." + field
}

// decodeStrict decodes the JSON value raw, found at path, into v, refusing
// unknown keys.
func decodeStrict(path string, raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(path, err)
	}
	return nil
}

// eachEntry decodes every value of the JSON object raw (found at path) into
// a fresh *T and calls f with its key and path, in sorted key order so that
// the first error reported is deterministic. A null value is an error.
//
// Objects are decoded entry by entry, rather than into map[string]T, so that
// a type error or unknown key deep inside names the map key too.
func eachEntry[T any](path string, raw map[string]json.RawMessage, f func(key, path string, v *T) error) error {
	for _, key := range sortedKeys(raw) {
		kpath := fmt.Sprintf("%s[%q]", path, key)
		var v *T
		if err := decodeStrict(kpath, raw[key], &v); err != nil {
			return err
		}
		if v == nil {
			return missing(kpath)
		}
		if err := f(key, kpath, v); err != nil {
			return err
		}
	}
	return nil
}

func jsonKind(goType string) string {
	switch goType {
	case "string":
		return "string"
	case "[]string":
		return "array of strings"
	}
	return "object"
}

// The JSON shape. Pointers tell a missing or null key from an empty value;
// objects keyed by names stay raw until eachEntry walks them.
type modelJSON struct {
	Roles        *[]string                   `json:"roles"`
	Items        *[]string                   `json:"items"`
	Actions      *[]string                   `json:"actions"`
	Visibilities *[]string                   `json:"visibilities"`
	Limits       *map[string]json.RawMessage `json:"limits"`
	ItemPolicy   *map[string]json.RawMessage `json:"item_policy"`
	RolePolicy   *map[string]json.RawMessage `json:"role_policy"`
}

type limitTypeJSON struct {
	Type     *string `json:"type"`
	Operator *string `json:"operator"`
}

type itemPolicyJSON struct {
	ValidRoleActions  *[]string `json:"valid_role_actions"`
	ValidVisibilities *[]string `json:"valid_visibilities"`
	InvalidRoles      *[]string `json:"invalid_roles"`
}

type rolePolicyJSON struct {
	Limits                 *map[string]json.RawMessage `json:"limits"`
	CanOwnItems            *[]string                   `json:"can_own_items"`
	AllowedActionsForOwned *[]string                   `json:"allowed_actions_for_owned"`
	AllowedActionsForOther *map[string]json.RawMessage `json:"allowed_actions_for_other"`
}

type roleLimitJSON struct {
	Type  *string          `json:"type"`
	Limit *json.RawMessage `json:"limit"`
}

func missing(path string) error { return &ModelError{Path: path, Problem: "missing or null"} }

// names interns a declaration list.
func names(path, kind string, list *[]string) ([]string, map[string]int, error) {
	if list == nil {
		return nil, nil, missing(path)
	}
	idx := make(map[string]int, len(*list))
	var out []string
	for _, n := range *list {
		if n == "" {
			return nil, nil, &ModelError{Path: path, Problem: "empty " + kind + " name"}
		}
		if _, dup := idx[n]; dup {
			continue
		}
		idx[n] = len(out)
		out = append(out, n)
	}
	return out, idx, nil
}

// set builds a bitset from a policy list, refusing undeclared names.
func set(path, kind string, list *[]string, idx map[string]int) (bitset, error) {
	if list == nil {
		return nil, missing(path)
	}
	b := newBitset(len(idx))
	for _, n := range *list {
		i, ok := idx[n]
		if !ok {
			return nil, &ModelError{Path: path, Problem: fmt.Sprintf("unknown %s %q", kind, n)}
		}
		b.add(i)
	}
	return b, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// build validates raw and interns it into a Model. Maps are walked in sorted
// key order so that the first error reported is deterministic.
func build(raw *modelJSON) (*Model, error) {
	m := &Model{}
	var err error
	if m.roles, m.roleIdx, err = names("roles", "role", raw.Roles); err != nil {
		return nil, err
	}
	if m.items, m.itemIdx, err = names("items", "item", raw.Items); err != nil {
		return nil, err
	}
	if m.actions, m.actionIdx, err = names("actions", "action", raw.Actions); err != nil {
		return nil, err
	}
	if m.visibilities, m.visIdx, err = names("visibilities", "visibility", raw.Visibilities); err != nil {
		return nil, err
	}
	for _, r := range []string{RoleSuperuser, RoleAnonymous, RoleLocked} {
		if _, ok := m.roleIdx[r]; !ok {
			return nil, &ModelError{Path: "roles", Problem: fmt.Sprintf("missing required role %q", r)}
		}
	}

	// limits: limit type -> {type, operator}
	if raw.Limits == nil {
		return nil, missing("limits")
	}
	limitTypes := make(map[string]roleLimit, len(*raw.Limits))
	err = eachEntry("limits", *raw.Limits, func(name, path string, lt *limitTypeJSON) error {
		var rl roleLimit
		switch {
		case lt.Type == nil:
			return missing(path + ".type")
		case *lt.Type == "int":
		case *lt.Type == "float":
			rl.float = true
		default:
			return &ModelError{Path: path + ".type", Problem: fmt.Sprintf("unknown type %q (want \"int\" or \"float\")", *lt.Type)}
		}
		switch {
		case lt.Operator == nil:
			return missing(path + ".operator")
		case *lt.Operator == "lt":
		case *lt.Operator == "gt":
			rl.gt = true
		default:
			return &ModelError{Path: path + ".operator", Problem: fmt.Sprintf("unknown operator %q (want \"lt\" or \"gt\")", *lt.Operator)}
		}
		limitTypes[name] = rl
		return nil
	})
	if err != nil {
		return nil, err
	}

	// item_policy: one per declared item.
	if raw.ItemPolicy == nil {
		return nil, missing("item_policy")
	}
	m.itemPol = make([]itemPolicy, len(m.items))
	err = eachEntry("item_policy", *raw.ItemPolicy, func(item, path string, ip *itemPolicyJSON) error {
		i, ok := m.itemIdx[item]
		if !ok {
			return &ModelError{Path: "item_policy", Problem: fmt.Sprintf("unknown item %q", item)}
		}
		p := &m.itemPol[i]
		var err error
		if p.actions, err = set(path+".valid_role_actions", "action", ip.ValidRoleActions, m.actionIdx); err != nil {
			return err
		}
		if p.visibilities, err = set(path+".valid_visibilities", "visibility", ip.ValidVisibilities, m.visIdx); err != nil {
			return err
		}
		p.invalidRoles, err = set(path+".invalid_roles", "role", ip.InvalidRoles, m.roleIdx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, item := range m.items {
		if _, ok := (*raw.ItemPolicy)[item]; !ok {
			return nil, &ModelError{Path: "item_policy", Problem: fmt.Sprintf("missing policy for item %q", item)}
		}
	}

	// role_policy: one per declared role.
	if raw.RolePolicy == nil {
		return nil, missing("role_policy")
	}
	m.rolePol = make([]rolePolicy, len(m.roles))
	err = eachEntry("role_policy", *raw.RolePolicy, func(role, path string, rp *rolePolicyJSON) error {
		r, ok := m.roleIdx[role]
		if !ok {
			return &ModelError{Path: "role_policy", Problem: fmt.Sprintf("unknown role %q", role)}
		}
		p := &m.rolePol[r]
		var err error
		if p.limits, err = buildLimits(path+".limits", rp.Limits, limitTypes); err != nil {
			return err
		}
		if p.canOwn, err = set(path+".can_own_items", "item", rp.CanOwnItems, m.itemIdx); err != nil {
			return err
		}
		if p.owned, err = set(path+".allowed_actions_for_owned", "action", rp.AllowedActionsForOwned, m.actionIdx); err != nil {
			return err
		}
		if rp.AllowedActionsForOther == nil {
			return missing(path + ".allowed_actions_for_other")
		}
		p.other = make([]bitset, len(m.visibilities))
		return eachEntry(path+".allowed_actions_for_other", *rp.AllowedActionsForOther, func(vis, vpath string, actions *[]string) error {
			v, ok := m.visIdx[vis]
			if !ok {
				return &ModelError{Path: path + ".allowed_actions_for_other", Problem: fmt.Sprintf("unknown visibility %q", vis)}
			}
			var err error
			p.other[v], err = set(vpath, "action", actions, m.actionIdx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	for _, role := range m.roles {
		if _, ok := (*raw.RolePolicy)[role]; !ok {
			return nil, &ModelError{Path: "role_policy", Problem: fmt.Sprintf("missing policy for role %q", role)}
		}
	}
	return m, nil
}

func buildLimits(path string, raw *map[string]json.RawMessage, limitTypes map[string]roleLimit) (map[string]roleLimit, error) {
	if raw == nil {
		return nil, missing(path)
	}
	out := make(map[string]roleLimit, len(*raw))
	err := eachEntry(path, *raw, func(name, lpath string, l *roleLimitJSON) error {
		if l.Type == nil {
			return missing(lpath + ".type")
		}
		rl, ok := limitTypes[*l.Type]
		if !ok {
			return &ModelError{Path: lpath + ".type", Problem: fmt.Sprintf("unknown limit type %q", *l.Type)}
		}
		if l.Limit == nil || string(*l.Limit) == "null" {
			return missing(lpath + ".limit")
		}
		num := string(*l.Limit)
		if num[0] != '-' && !isDigit(num[0]) {
			return &ModelError{Path: lpath + ".limit", Problem: fmt.Sprintf("got %s, want a JSON number", num)}
		}
		// The reference casts the limit with int() or float() at every
		// check; we cast once here and refuse what would not fit.
		c := castNumber(json.Number(num), rl.float)
		if !c.ok || c.over != 0 || math.IsInf(c.f, 0) {
			return &ModelError{Path: lpath + ".limit", Problem: fmt.Sprintf("limit %s out of range for its type", num)}
		}
		rl.i, rl.f = c.i, c.f
		out[name] = rl
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
