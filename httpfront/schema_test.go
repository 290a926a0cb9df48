package httpfront

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestIntegerRange: an integer parameter must hold a value of our id type;
// ids, counts and ports must not be negative.
func TestIntegerRange(t *testing.T) {
	params := []param{arg("user_id", tInt, tNone), arg("n", tInt), kwarg("page_size", tInt), arg("nbf", tFloat, tInt)}
	tests := []struct {
		name string
		body string
		bad  map[string]string
	}{
		{"in range", `{"user_id":4,"n":-5,"page_size":10,"nbf":1.5}`, nil},
		{"largest int64", `{"user_id":9223372036854775807,"n":-9223372036854775808,"nbf":0}`, nil},
		{"2**64+1 id", `{"user_id":18446744073709551617,"n":1,"nbf":0}`, map[string]string{"user_id": "incorrect type"}},
		{"2**63", `{"user_id":null,"n":9223372036854775808,"nbf":0}`, map[string]string{"n": "incorrect type"}},
		{"below int64", `{"user_id":null,"n":-9223372036854775809,"nbf":0}`, map[string]string{"n": "incorrect type"}},
		{"negative id", `{"user_id":-1,"n":1,"nbf":0}`, map[string]string{"user_id": "incorrect type"}},
		{"negative page size", `{"user_id":null,"n":1,"page_size":-3,"nbf":0}`, map[string]string{"page_size": "incorrect type"}},
		{"non-integral float", `{"user_id":4.5,"n":1,"nbf":0}`, map[string]string{"user_id": "incorrect type"}},
		{"1e300", `{"user_id":1e300,"n":1,"nbf":0}`, map[string]string{"user_id": "incorrect type"}},
		{"float beyond float64", `{"user_id":null,"n":1,"nbf":1e999}`, map[string]string{"nbf": "incorrect type"}},
		{"huge float fits a float", `{"user_id":null,"n":1,"nbf":1e300}`, nil},
		{"huge int literal for a float", `{"user_id":null,"n":1,"nbf":18446744073709551617}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, params, tt.body, tt.bad) })
	}
}

func TestJSONDepth(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`1`, 0},
		{`"{[{["`, 0},
		{`{}`, 1},
		{`[1,[2,[3]]]`, 3},
		{`{"a":"\"{","b":[{}]}`, 3},
		{`{"a\\":{"b":"\\\""}}`, 2},
		{`[[],[],[[]]]`, 3},
	}
	for _, tt := range tests {
		if got := jsonDepth([]byte(tt.in)); got != tt.want {
			t.Errorf("jsonDepth(%s) = %d; want %d", tt.in, got, tt.want)
		}
	}
	// tooDeep's shortcut (few brackets) never hides a deep text: around
	// the bound, with and without brackets in strings and side by side.
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, in := range []string{
		nest(maxJSONDepth), nest(maxJSONDepth + 1), `["` + nest(40) + `"]`,
		"[" + strings.Repeat(nest(2)+",", 20) + "1]", `{"a":` + nest(maxJSONDepth) + `}`,
	} {
		if got, want := tooDeep([]byte(in)), jsonDepth([]byte(in)) > maxJSONDepth; got != want {
			t.Errorf("tooDeep(%.40s…) = %v; want %v", in, got, want)
		}
	}
}

// TestValidateBounds: free-form JSON is bounded in depth and the
// reference's 280-character columns in length.
func TestValidateBounds(t *testing.T) {
	params := []param{arg("extra_info_json", tDict, tNone), kwarg("update_dict", tDict), arg("user_agent", tStr), kwarg("ip_address", tStr)}
	deep := func(n int) string { return strings.Repeat("[", n-1) + "{}" + strings.Repeat("]", n-1) }
	obj := func(n int) string { return `{"a":` + deep(n-1) + `}` }
	tests := []struct {
		name string
		body string
		bad  map[string]string
	}{
		{"32 deep", `{"extra_info_json":` + obj(32) + `,"user_agent":"x"}`, nil},
		{"33 deep", `{"extra_info_json":` + obj(33) + `,"user_agent":"x"}`, map[string]string{"extra_info_json": "nested too deeply"}},
		{"9000 deep kwarg", `{"extra_info_json":null,"update_dict":` + obj(9000) + `,"user_agent":"x"}`, map[string]string{"update_dict": "nested too deeply"}},
		{"280 characters", `{"extra_info_json":null,"user_agent":"` + strings.Repeat("€", 280) + `","ip_address":"` + strings.Repeat("1", 280) + `"}`, nil},
		{"escaped characters count once", `{"extra_info_json":null,"user_agent":"` + strings.Repeat(`\u00e9`, 280) + `"}`, nil},
		{"281 characters", `{"extra_info_json":null,"user_agent":"` + strings.Repeat("a", 281) + `","ip_address":"` + strings.Repeat("€", 281) + `"}`, map[string]string{"user_agent": "too long", "ip_address": "too long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, params, tt.body, tt.bad) })
	}
}

// checkProblems validates the JSON body against params and checks that the
// problems found are exactly bad (parameter → problem).
func checkProblems(t *testing.T, params []param, jsonBody string, bad map[string]string) {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(jsonBody), &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range validate(params, body) {
		got[p.Param] = p.Problem
	}
	if len(got) != len(bad) {
		t.Fatalf("problems = %v; want %v", got, bad)
	}
	for k, v := range bad {
		if got[k] != v {
			t.Errorf("problem[%s] = %q; want %q", k, got[k], v)
		}
	}
}
