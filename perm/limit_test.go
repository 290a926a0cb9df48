package perm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestCheckLimitDefault(t *testing.T) {
	m := Default()
	tests := []struct {
		name  string
		role  string
		limit string
		value any
		want  bool
	}{
		// Examples with the default model.
		{"superuser 100", "superuser", "max_requests", json.Number("100"), true},
		{"superuser 100000000", "superuser", "max_requests", json.Number("100000000"), false},
		{"unknown limit passes", "superuser", "no_such_limit", json.Number("100000000"), true},
		{"unknown limit passes for locked", "locked", "no_such_limit", "garbage", true},
		{"locked 100", "locked", "max_requests", json.Number("100"), false},
		{"locked 0 is not < 0", "locked", "max_requests", 0, false},
		{"locked -1", "locked", "max_requests", -1, true},
		// lt is strict.
		{"at the limit", "anonymous", "max_requests_per_minute", json.Number("600"), false},
		{"below the limit", "anonymous", "max_requests_per_minute", json.Number("599"), true},
		// Casts, Python int() style.
		{"string 12", "anonymous", "max_requests_per_minute", "12", true},
		{"string with spaces", "anonymous", "max_requests_per_minute", " 12\n", true},
		{"string 600", "anonymous", "max_requests_per_minute", "600", false},
		{"string 1_000", "anonymous", "max_requests_per_minute", "1_000", false},
		{"string 1.5 fails", "anonymous", "max_requests_per_minute", "1.5", false},
		{"string 1e2 fails", "anonymous", "max_requests_per_minute", "1e2", false},
		{"empty string fails", "anonymous", "max_requests_per_minute", "", false},
		{"number with fraction truncates", "anonymous", "max_requests_per_minute", json.Number("599.9"), true},
		{"number 600.5 truncates to 600", "anonymous", "max_requests_per_minute", json.Number("600.5"), false},
		{"exponent number is a float", "anonymous", "max_requests_per_minute", json.Number("5e2"), true},
		{"float64 truncates", "anonymous", "max_requests_per_minute", 599.99, true},
		{"negative float truncates toward zero", "locked", "max_requests", -0.5, false},
		{"inf fails", "anonymous", "max_requests_per_minute", math.Inf(-1), false},
		{"nan fails", "anonymous", "max_requests_per_minute", math.NaN(), false},
		{"json 1e400 is inf, fails", "anonymous", "max_requests_per_minute", json.Number("-1e400"), false},
		{"true is 1", "anonymous", "max_requests_per_minute", true, true},
		{"false is 0", "locked", "max_requests", false, false},
		{"nil fails", "anonymous", "max_requests_per_minute", nil, false},
		{"array fails", "anonymous", "max_requests_per_minute", []any{1}, false},
		{"object fails", "anonymous", "max_requests_per_minute", map[string]any{}, false},
		{"bad json.Number fails", "anonymous", "max_requests_per_minute", json.Number("12abc"), false},
		{"huge int is over", "anonymous", "max_requests_per_minute", json.Number("123456789012345678901234567890"), false},
		{"huge negative int is under", "anonymous", "max_requests_per_minute", json.Number("-123456789012345678901234567890"), true},
		{"huge string int is over", "anonymous", "max_requests_per_minute", "99999999999999999999", false},
		{"huge float is over", "anonymous", "max_requests_per_minute", 1e300, false},
		{"uint64 max is over", "anonymous", "max_requests_per_minute", uint64(math.MaxUint64), false},
		{"int8", "anonymous", "max_requests_per_minute", int8(5), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.CheckLimit(tt.role, tt.limit, tt.value)
			if err != nil {
				t.Fatalf("err = %v; want nil", err)
			}
			if got != tt.want {
				t.Errorf("CheckLimit(%q, %q, %#v) = %v; want %v", tt.role, tt.limit, tt.value, got, tt.want)
			}
		})
	}
}

func TestCheckLimitUnknownRole(t *testing.T) {
	got, err := Default().CheckLimit("root", "max_requests", 1)
	if !errors.Is(err, ErrUnknownRole) || got {
		t.Errorf("got %v, %v; want false, ErrUnknownRole", got, err)
	}
}

// limitModel is the default model with extra limit types: a float "lt"
// limit, an int "gt" minimum and a float "gt" minimum.
func limitModel(t testing.TB) *Model {
	t.Helper()
	s := strings.Replace(string(defaultJSON),
		`"min": {"type": "int", "operator": "gt"}`,
		`"min": {"type": "int", "operator": "gt"}, "fmax": {"type": "float", "operator": "lt"}, "fmin": {"type": "float", "operator": "gt"}`, 1)
	s = strings.Replace(s,
		`"max_requests": {"type": "max", "limit": 100000},`,
		`"max_requests": {"type": "max", "limit": 100000}, "ratio": {"type": "fmax", "limit": 0.5}, "floor": {"type": "min", "limit": 10}, "ffloor": {"type": "fmin", "limit": -1.5}, "intfrac": {"type": "max", "limit": 10.9},`, 1)
	m, err := Load(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckLimitTypes(t *testing.T) {
	m := limitModel(t)
	tests := []struct {
		limit string
		value any
		want  bool
	}{
		{"ratio", json.Number("0.25"), true},
		{"ratio", json.Number("0.5"), false},
		{"ratio", "0.25", true},
		{"ratio", " .25 ", true},
		{"ratio", "2.5e-1", true},
		{"ratio", "0_0.2_5", true},
		{"ratio", "1", false},
		{"ratio", "-inf", true},
		{"ratio", "Infinity", false},
		{"ratio", "nan", false},
		{"ratio", "0x1p-2", false}, // Python float() has no hex literals
		{"ratio", "1__0", false},
		{"ratio", ".", false},
		{"ratio", "1e", false},
		{"ratio", "", false},
		{"ratio", json.Number("0"), true},
		{"ratio", false, true},
		{"ratio", true, false},
		{"ratio", 0.49, true},
		{"ratio", int64(0), true},
		{"ratio", json.Number("1" + strings.Repeat("0", 400)), false}, // float(huge int) raises
		{"floor", json.Number("11"), true},
		{"floor", json.Number("10"), false},
		{"floor", "10.5", false},
		{"floor", json.Number("10.5"), false}, // int(10.5) == 10, not > 10
		{"floor", json.Number("1" + strings.Repeat("0", 30)), true},
		{"floor", json.Number("-1" + strings.Repeat("0", 30)), false},
		{"ffloor", json.Number("-1"), true},
		{"ffloor", json.Number("-2"), false},
		{"ffloor", "+inf", true},
		{"intfrac", json.Number("9"), true}, // limit int(10.9) == 10
		{"intfrac", json.Number("10"), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.limit, tt.value), func(t *testing.T) {
			got, err := m.CheckLimit("anonymous", tt.limit, tt.value)
			if err != nil {
				t.Fatalf("err = %v; want nil", err)
			}
			if got != tt.want {
				t.Errorf("CheckLimit(anonymous, %q, %#v) = %v; want %v", tt.limit, tt.value, got, tt.want)
			}
		})
	}
}
