package config

import (
	"io"
	"strings"
	"testing"
)

// TestStoreAndDataDir: AUTHNZERVER_AUTHDB keeps its meaning as a path (the
// data directory), a postgres URL selects PostgreSQL with the data
// directory apart, and when both are set AUTHDB chooses the store.
func TestStoreAndDataDir(t *testing.T) {
	const url = "postgres://u@db.example:5432/authn?sslmode=verify-full"
	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		authdb, data string
		postgres     bool
		wantErr      string
	}{
		{"defaults", nil, nil, "./data", "./data", false, ""},
		{"authdb path alone", nil, map[string]string{"AUTHNZERVER_AUTHDB": "/srv/a"}, "/srv/a", "/srv/a", false, ""},
		{"authdb flag path", []string{"--authdb", "/srv/f"}, nil, "/srv/f", "/srv/f", false, ""},
		{"datadir alone", nil, map[string]string{"AUTHNZERVER_DATADIR": "/srv/d"}, "/srv/d", "/srv/d", false, ""},
		{"url", nil, map[string]string{"AUTHNZERVER_AUTHDB": url}, url, "./data", true, ""},
		{"url and datadir", nil, map[string]string{"AUTHNZERVER_AUTHDB": url, "AUTHNZERVER_DATADIR": "/srv/d"}, url, "/srv/d", true, ""},
		{"postgresql scheme flag", []string{"--authdb", "postgresql://h/db"}, nil, "postgresql://h/db", "./data", true, ""},
		{"both paths", nil, map[string]string{"AUTHNZERVER_AUTHDB": "/srv/a", "AUTHNZERVER_DATADIR": "/srv/d"}, "/srv/a", "/srv/d", false, ""},
		{"passfile with url", nil, map[string]string{"AUTHNZERVER_AUTHDB": url, "AUTHNZERVER_AUTHDBPASSFILE": "/etc/pw"}, url, "./data", true, ""},
		{"passfile without url", nil, map[string]string{"AUTHNZERVER_AUTHDBPASSFILE": "/etc/pw"}, "", "", false, "authdbpassfile"},
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
			if c.AuthDB != tt.authdb || c.DataDir != tt.data || c.Postgres() != tt.postgres {
				t.Errorf("AuthDB %q DataDir %q Postgres %v; want %q %q %v", c.AuthDB, c.DataDir, c.Postgres(), tt.authdb, tt.data, tt.postgres)
			}
		})
	}
}
