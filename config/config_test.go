package config

import (
	"io"
	"strings"
	"testing"
)

func TestPerUserCaps(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		env            map[string]string
		sessions, keys int
		wantErr        string
	}{
		{"defaults", nil, nil, 100, 100, ""},
		{"flags", []string{"--maxsessionsperuser", "5", "--maxapikeysperuser", "7"}, nil, 5, 7, ""},
		{"env over flag", []string{"--maxsessionsperuser", "5"}, map[string]string{"AUTHNZERVER_MAXSESSIONSPERUSER": "9", "AUTHNZERVER_MAXAPIKEYSPERUSER": "-1"}, 9, -1, ""},
		{"zero refused", nil, map[string]string{"AUTHNZERVER_MAXAPIKEYSPERUSER": "0"}, 0, 0, "must not be 0"},
		{"not a number", []string{"--maxsessionsperuser", "lots"}, nil, 0, 0, "not an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: %v; want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MaxSessions != tt.sessions || c.MaxAPIKeys != tt.keys {
				t.Errorf("caps = %d sessions, %d keys; want %d, %d", c.MaxSessions, c.MaxAPIKeys, tt.sessions, tt.keys)
			}
		})
	}
}
