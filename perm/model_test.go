package perm

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultLoads(t *testing.T) {
	got, err := Load(bytes.NewReader(defaultJSON))
	if err != nil {
		t.Fatalf("Load(default) err = %v; want nil", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load(default) differs from Default()")
	}
	if Default() != Default() {
		t.Errorf("Default() returned two different models; want one shared")
	}
	fromFile, err := LoadFile("default-permissions-model.json")
	if err != nil {
		t.Fatalf("LoadFile err = %v; want nil", err)
	}
	if !reflect.DeepEqual(fromFile, Default()) {
		t.Errorf("LoadFile(default) differs from Default()")
	}
	if !bytes.Equal(DefaultJSON(), defaultJSON) {
		t.Errorf("DefaultJSON() differs from the embedded file")
	}
}

// edit decodes the default model, applies f and re-encodes it.
func edit(t *testing.T, f func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(defaultJSON, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		model   func(t *testing.T) string
		wantErr string // the whole message, or a prefix ending in "..."
	}{
		{"missing required role", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["roles"] = []string{"superuser", "staff", "authenticated", "anonymous"} })
		}, `perm: roles: missing required role "locked"`},
		{"no roles at all", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["roles"] = []string{} })
		}, `perm: roles: missing required role "superuser"`},
		{"unknown action in role policy", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				obj(m, "role_policy", "staff", "allowed_actions_for_other")["shared"] = []string{"view", "fly"}
			})
		}, `perm: role_policy["staff"].allowed_actions_for_other["shared"]: unknown action "fly"`},
		{"unknown action in owned", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				obj(m, "role_policy", "anonymous")["allowed_actions_for_owned"] = []string{"fly"}
			})
		}, `perm: role_policy["anonymous"].allowed_actions_for_owned: unknown action "fly"`},
		{"unknown visibility key", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				obj(m, "role_policy", "staff", "allowed_actions_for_other")["secret"] = []string{}
			})
		}, `perm: role_policy["staff"].allowed_actions_for_other: unknown visibility "secret"`},
		{"unknown item owned", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy", "staff")["can_own_items"] = []string{"car"} })
		}, `perm: role_policy["staff"].can_own_items: unknown item "car"`},
		{"unknown role in item policy", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "item_policy", "user")["invalid_roles"] = []string{"root"} })
		}, `perm: item_policy["user"].invalid_roles: unknown role "root"`},
		{"unknown visibility in item policy", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "item_policy", "user")["valid_visibilities"] = []string{"secret"} })
		}, `perm: item_policy["user"].valid_visibilities: unknown visibility "secret"`},
		{"policy for undeclared item", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "item_policy")["car"] = obj(m, "item_policy", "user") })
		}, `perm: item_policy: unknown item "car"`},
		{"policy for undeclared role", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy")["root"] = obj(m, "role_policy", "staff") })
		}, `perm: role_policy: unknown role "root"`},
		{"declared role without policy", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(obj(m, "role_policy"), "staff") })
		}, `perm: role_policy: missing policy for role "staff"`},
		{"declared item without policy", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(obj(m, "item_policy"), "session") })
		}, `perm: item_policy: missing policy for item "session"`},
		{"bad operator", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "limits", "max")["operator"] = "le" })
		}, `perm: limits["max"].operator: unknown operator "le" (want "lt" or "gt")`},
		{"bad limit type type", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "limits", "min")["type"] = "double" })
		}, `perm: limits["min"].type: unknown type "double" (want "int" or "float")`},
		{"missing operator", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(obj(m, "limits", "min"), "operator") })
		}, `perm: limits["min"].operator: missing or null`},
		{"unknown limit type in role", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy", "staff", "limits", "max_requests")["type"] = "maximum" })
		}, `perm: role_policy["staff"].limits["max_requests"].type: unknown limit type "maximum"`},
		{"string limit", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy", "staff", "limits", "max_requests")["limit"] = "100" })
		}, `perm: role_policy["staff"].limits["max_requests"].limit: got "100", want a JSON number`},
		{"limit out of int range", func(t *testing.T) string {
			return strings.Replace(string(defaultJSON), `"limit": 5000000`, `"limit": 1e30`, 1)
		}, `perm: role_policy["superuser"].limits["max_requests"].limit: limit 1e30 out of range for its type`},
		{"missing limit", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(obj(m, "role_policy", "staff", "limits", "max_requests"), "limit") })
		}, `perm: role_policy["staff"].limits["max_requests"].limit: missing or null`},
		{"missing top-level key", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(m, "visibilities") })
		}, `perm: visibilities: missing or null`},
		{"null top-level key", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["item_policy"] = nil })
		}, `perm: item_policy: missing or null`},
		{"null policy", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy")["staff"] = nil })
		}, `perm: role_policy["staff"]: missing or null`},
		{"missing allowed_actions_for_other", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(obj(m, "role_policy", "staff"), "allowed_actions_for_other") })
		}, `perm: role_policy["staff"].allowed_actions_for_other: missing or null`},
		{"empty action name", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["actions"] = append(m["actions"].([]any), "") })
		}, `perm: actions: empty action name`},
		{"unknown top-level key", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["rolez"] = []string{} })
		}, `perm: (top level): unknown key "rolez"`},
		{"unknown nested key", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "item_policy", "user")["valid_actions"] = []string{} })
		}, `perm: item_policy["user"]: unknown key "valid_actions"`},
		{"wrong JSON type", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["roles"] = "superuser" })
		}, `perm: roles: got JSON string, want array of strings`},
		{"wrong JSON type nested", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy", "staff")["can_own_items"] = []any{1} })
		}, `perm: role_policy["staff"].can_own_items: got JSON number, want string`},
		{"wrong JSON type in visibility map", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy", "staff", "allowed_actions_for_other")["shared"] = "view" })
		}, `perm: role_policy["staff"].allowed_actions_for_other["shared"]: got JSON string, want array of strings`},
		{"null limit", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "role_policy", "staff", "limits", "max_requests")["limit"] = nil })
		}, `perm: role_policy["staff"].limits["max_requests"].limit: missing or null`},
		{"malformed JSON", func(t *testing.T) string { return `{"roles": [}` },
			`perm: malformed JSON at byte offset 12: invalid character '}' looking for beginning of value`},
		{"truncated JSON", func(t *testing.T) string { return string(defaultJSON[:100]) },
			`perm: malformed JSON: unexpected end of input`},
		{"empty input", func(t *testing.T) string { return "" },
			`perm: malformed JSON: unexpected end of input`},
		{"not an object", func(t *testing.T) string { return `[]` },
			`perm: (top level): got JSON array, want object`},
		{"trailing data", func(t *testing.T) string { return string(defaultJSON) + "{}" },
			`perm: trailing data after the model at byte offset ...`},
		{"too large", func(t *testing.T) string { return string(defaultJSON) + strings.Repeat(" ", MaxModelBytes) },
			`perm: model larger than 1048576 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(strings.NewReader(tt.model(t)))
			if err == nil {
				t.Fatalf("Load err = nil; want %q", tt.wantErr)
			}
			if m != nil {
				t.Errorf("Load returned a model with error %v", err)
			}
			if prefix, ok := strings.CutSuffix(tt.wantErr, "..."); ok {
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("got %q; want prefix %q", err, prefix)
				}
			} else if err.Error() != tt.wantErr {
				t.Errorf("got %q; want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidModel) {
				t.Errorf("errors.Is(%v, ErrInvalidModel) = false; want true", err)
			}
		})
	}
}

func TestLoadAcceptsDuplicatesAndOmissions(t *testing.T) {
	// Duplicate names are harmless (lists are sets), and a role policy may
	// leave out visibilities (nothing is allowed on them).
	s := edit(t, func(m map[string]any) {
		m["roles"] = append(m["roles"].([]any), "staff")
		delete(obj(m, "role_policy", "authenticated", "allowed_actions_for_other"), "public")
	})
	m, err := Load(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Load err = %v; want nil", err)
	}
	if got := len(m.Roles()); got != 5 {
		t.Errorf("len(Roles()) = %d; want 5", got)
	}
	got, err := m.CheckAccess(AccessQuery{UserID: 1, Role: "authenticated", Action: "view", Target: "object", Owner: 3, Visibility: "public"})
	if err != nil || got {
		t.Errorf("view public object with no public policy: got %v, %v; want false, nil", got, err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "nope.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) err = %v; want os.ErrNotExist", err)
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p)
	if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), p) {
		t.Errorf("LoadFile(bad) err = %v; want ErrInvalidModel naming %s", err, p)
	}
}

func TestZeroModel(t *testing.T) {
	var m Model
	if _, err := m.CheckAccess(AccessQuery{Role: "superuser"}); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("zero Model CheckAccess err = %v; want ErrUnknownRole", err)
	}
	if _, err := m.CheckLimit("superuser", "max", 1); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("zero Model CheckLimit err = %v; want ErrUnknownRole", err)
	}
	if m.HasRole("superuser") || len(m.Roles()) != 0 {
		t.Errorf("zero Model declares roles; want none")
	}
}
