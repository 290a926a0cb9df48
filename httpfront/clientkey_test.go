package httpfront

import (
	"encoding/json"
	"testing"
)

var clientKeySeeds = []string{
	`"10.0.0.1"`, `"0.0.0.0"`, `"255.255.255.255"`, `"256.1.1.1"`, `"01.2.3.4"`, `"1.2.3"`, `"1.2.3.4.5"`,
	`"1.2.3."`, `".1.2.3"`, `"1..2.3"`, `"1000.1.1.1"`, `" 10.0.0.1"`, `"10.0.0.1 "`, `"::ffff:10.0.0.1"`,
	`"2001:db8::1"`, `"fe80::1%eth0"`, `"host.example"`, `"\u0031.2.3.4"`, `""`, `null`, `0`, `12`, `{"a":1}`,
}

// TestClientKeyBytes checks that the bytes form of the client key is the
// key itself.
func TestClientKeyBytes(t *testing.T) {
	for _, raw := range clientKeySeeds {
		if got, want := string(clientKeyBytes(json.RawMessage(raw))), clientKey(json.RawMessage(raw)); got != want {
			t.Errorf("clientKeyBytes(%s) = %q; want %q", raw, got, want)
		}
	}
}

func FuzzClientKeyBytes(f *testing.F) {
	for _, s := range clientKeySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := json.RawMessage(`"` + s + `"`)
		if !json.Valid(raw) {
			return
		}
		if got, want := string(clientKeyBytes(raw)), clientKey(raw); got != want {
			t.Errorf("clientKeyBytes(%s) = %q; want %q", raw, got, want)
		}
	})
}
