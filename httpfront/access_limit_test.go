package httpfront

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/perm"
)

// limitTestModel is the default model with limits of every kind: int and
// float, lt and gt, and an int limit with a fraction.
func limitTestModel(t testing.TB) *perm.Model {
	t.Helper()
	s := strings.Replace(string(perm.DefaultJSON()),
		`"min": {"type": "int", "operator": "gt"}`,
		`"min": {"type": "int", "operator": "gt"}, "fmax": {"type": "float", "operator": "lt"}, "fmin": {"type": "float", "operator": "gt"}`, 1)
	s = strings.Replace(s,
		`"max_requests": {"type": "max", "limit": 100000},`,
		`"max_requests": {"type": "max", "limit": 100000}, "ratio": {"type": "fmax", "limit": 0.5}, "floor": {"type": "min", "limit": 10}, "ffloor": {"type": "fmin", "limit": -1.5}, "intfrac": {"type": "max", "limit": 10.9}, "big": {"type": "max", "limit": 9007199254740993},`, 1)
	m, err := perm.Load(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzLimitValue checks that limitValue's value gets every limit check the
// same answer as encoding/json's (UseNumber) decoding of the same text.
func FuzzLimitValue(f *testing.F) {
	for _, s := range []string{"0", "10", "-0", "255", "256", "100000", "99999", "-1", "9223372036854775807",
		"-9223372036854775808", "9223372036854775808", "9007199254740993", "1.5", "1e3", "10.9", `"12"`, "null", "true", "[1]", `{"a":1}`} {
		f.Add(s)
	}
	m := limitTestModel(f)
	f.Fuzz(func(t *testing.T, s string) {
		raw := []byte(s)
		if !json.Valid(raw) || len(bytes.TrimSpace(raw)) != len(raw) {
			return // the scanner hands out a valid value without white space
		}
		got, gotErr := limitValue(raw)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var want any
		wantErr := dec.Decode(&want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%s: error %v; encoding/json's %v", s, gotErr, wantErr)
		}
		for _, role := range []string{"superuser", "authenticated", "anonymous"} {
			for _, name := range []string{"max_requests", "ratio", "floor", "ffloor", "intfrac", "big", "none"} {
				a, errA := m.CheckLimit(role, name, got)
				b, errB := m.CheckLimit(role, name, want)
				if a != b || (errA != nil) != (errB != nil) {
					t.Fatalf("%s as %s, %s: %v, %v; with encoding/json's value %v, %v", s, role, name, a, errA, b, errB)
				}
			}
		}
	})
}
