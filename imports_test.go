package authnzerver_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the dependency direction of docs/design.md
// ("Packages"): shard and persist are leaves, pgstore (the PostgreSQL
// store) knows persist and shard but not the core or the front, passhash, mail and social (the
// providers of social logins) know nothing of the core, and the edges do the I/O.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/authnzerver/authnzerver"
	forbidden := map[string][]string{
		"./shard/...":      {"sync", "os", "net", "github.com/cockroachdb/pebble", "github.com/jackc/pgx", "golang.org/x/crypto/argon2", "github.com/asynkron/protoactor-go", mod + "/actors", mod + "/persist", mod + "/httpfront", mod + "/server"},
		"./persist/...":    {mod + "/shard", mod + "/actors", mod + "/httpfront", mod + "/server", mod + "/pgstore", "github.com/jackc/pgx"},
		"./pgstore/...":    {mod + "/actors", mod + "/httpfront", mod + "/server", mod + "/passhash", mod + "/mail", "github.com/cockroachdb/pebble", "github.com/valyala/fasthttp"},
		"./actors/...":     {mod + "/httpfront", mod + "/server", mod + "/pgstore", "github.com/jackc/pgx", "github.com/valyala/fasthttp"},
		"./passhash/...":   {mod + "/actors", mod + "/shard", mod + "/persist", mod + "/httpfront", mod + "/server", "github.com/valyala/fasthttp"},
		"./mail/...":       {mod + "/actors", mod + "/shard", mod + "/persist", mod + "/httpfront", mod + "/server", "github.com/valyala/fasthttp"},
		"./httpfront/...":  {mod + "/persist", mod + "/server", mod + "/pgstore", "github.com/cockroachdb/pebble", "github.com/jackc/pgx"},
		"./refimport/...":  {mod + "/actors", mod + "/httpfront", mod + "/server", "github.com/valyala/fasthttp"},
		"./social/...":     {mod + "/actors", mod + "/httpfront", mod + "/server", mod + "/shard", mod + "/persist", mod + "/pgstore", "github.com/valyala/fasthttp"},
		"./wire/...":       {mod + "/"},
		"./perm/...":       {mod + "/"},
		"./passpolicy/...": {mod + "/"},
	}
	for pattern, bad := range forbidden {
		out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, pattern).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pattern, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			pkg, imports, _ := strings.Cut(line, " ")
			for _, imp := range strings.Fields(imports) {
				for _, b := range bad {
					if imp == b || strings.HasPrefix(imp, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(imp, b)) {
						t.Errorf("%s imports %s: see docs/design.md, Packages", pkg, imp)
					}
				}
			}
		}
	}
}
