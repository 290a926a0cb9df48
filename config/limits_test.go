package config

import (
	"io"
	"testing"
)

// TestInputLimits: the per-address connection bound and the session
// extra-info bound have defaults, and read env and flags.
func TestInputLimits(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		env              map[string]string
		perIP, extraInfo int
		wantErr          bool
	}{
		{name: "defaults", perIP: 1000, extraInfo: 16384},
		{name: "flags", args: []string{"--maxconnsperip", "50", "--maxextrainfobytes", "4096"}, perIP: 50, extraInfo: 4096},
		{name: "env over flags", args: []string{"--maxconnsperip", "50"}, env: map[string]string{"AUTHNZERVER_MAXCONNSPERIP": "-1", "AUTHNZERVER_MAXEXTRAINFOBYTES": "1024"}, perIP: -1, extraInfo: 1024},
		{name: "no extra info bound", env: map[string]string{"AUTHNZERVER_MAXEXTRAINFOBYTES": "0"}, wantErr: true},
		{name: "not a number", env: map[string]string{"AUTHNZERVER_MAXCONNSPERIP": "many"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %+v; want an error", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxConnsPerIP != tt.perIP || c.MaxExtraInfo != tt.extraInfo {
				t.Errorf("maxconnsperip %d maxextrainfobytes %d; want %d %d", c.MaxConnsPerIP, c.MaxExtraInfo, tt.perIP, tt.extraInfo)
			}
		})
	}
}
