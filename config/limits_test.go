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

// TestHashNice: the hash worker's nice is 0 by default and 0 to 19 when set.
func TestHashNice(t *testing.T) {
	for _, tt := range []struct {
		env     string
		want    int
		wantErr bool
	}{{"", 0, false}, {"10", 10, false}, {"19", 19, false}, {"-1", 0, true}, {"20", 0, true}} {
		c, err := Load(nil, func(k string) string {
			if k == "AUTHNZERVER_HASHNICE" {
				return tt.env
			}
			return ""
		}, io.Discard)
		switch {
		case (err != nil) != tt.wantErr:
			t.Errorf("AUTHNZERVER_HASHNICE=%q: error %v; want an error: %v", tt.env, err, tt.wantErr)
		case err == nil && c.HashNice != tt.want:
			t.Errorf("AUTHNZERVER_HASHNICE=%q: %d; want %d", tt.env, c.HashNice, tt.want)
		}
	}
}
