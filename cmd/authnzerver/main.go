// Command authnzerver is the authnzerver server and its admin commands.
//
// Run it without a sub-command to serve; see --help for the rest.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/server"
	"github.com/authnzerver/authnzerver/wire"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `authnzerver: a fast authentication and authorization server.

Usage:
  authnzerver [options]          serve (POST / with the Fernet protocol, GET /health)
  authnzerver keygen             print a new Fernet key
  authnzerver COMMAND --help     help on an admin command (listed below)
  authnzerver --help             this text

The store is embedded (pebble, in the data directory) unless --authdb or
AUTHNZERVER_AUTHDB is a PostgreSQL URL, which gives one shared store:
  AUTHNZERVER_AUTHDB=postgres://authnzerver@db.example:5432/authnzerver?sslmode=verify-full \
  AUTHNZERVER_AUTHDBPASSFILE=/etc/authnzerver/dbpass authnzerver
(the schema is created on the first start; the role needs no superuser).

Options (each may also be set by its environment variable, which wins):
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "-help", "help":
			fmt.Fprint(stdout, usage)
			config.Usage(stdout)
			fmt.Fprint(stdout, adminUsage)
			return 0
		case "hash-worker":
			// The isolated Argon2 process the server starts itself
			// (AUTHNZERVER_HASHISOLATION=process); not for people.
			if err := passhash.ServeHashWorker(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(stderr, "authnzerver hash-worker:", err)
				return 1
			}
			return 0
		case "keygen":
			k, err := wire.GenerateKey()
			if err != nil {
				fmt.Fprintln(stderr, "authnzerver:", err)
				return 1
			}
			fmt.Fprintln(stdout, k)
			return 0
		}
		if cmd, ok := subcommands[args[0]]; ok {
			return cmd(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "authnzerver:", err)
		return 2
	}
	sopts := server.Options{Stderr: stderr, Getenv: getenv}
	if exe, err := os.Executable(); err == nil {
		sopts.HashWorkerCommand = []string{exe, "hash-worker"}
	}
	srv, err := server.Start(cfg, sopts)
	if err != nil {
		fmt.Fprintln(stderr, "authnzerver:", err)
		return 1
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(stderr, "authnzerver:", err)
		srv.Close()
		return 1
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	store := "pebble in " + cfg.AuthDB
	if cfg.Postgres() {
		store = "PostgreSQL" // the URL may hold a password
	}
	fmt.Fprintf(stdout, "authnzerver listening on %s://%s/ (data in %s, store: %s)\n", scheme, srv.Addr, cfg.DataDir, store)
	if cfg.Secret == "" {
		fmt.Fprintf(stdout, "Frontends need the shared Fernet key in %s/.authnzerver-secret-key:\n  export AUTHNZERVER_SECRET=$(cat %s/.authnzerver-secret-key) AUTHNZERVER_URL=%s://%s/\n", cfg.DataDir, cfg.DataDir, scheme, srv.Addr)
	}
	if srv.FirstStart {
		fmt.Fprintf(stdout, "First start: created the system users; the superuser's email and password are in %s\n", srv.AdminCredentials)
	}
	if a := srv.MetricsAddr(); a != nil {
		fmt.Fprintf(stdout, "Prometheus metrics on http://%s/metrics\n", a)
	}
	defer watchBackupSignal(srv, stderr)()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	code := 0
	select {
	case <-sig:
	case <-ctx.Done():
	case err := <-srv.Done():
		if err != nil {
			fmt.Fprintln(stderr, "authnzerver: serve:", err)
			code = 1
		}
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintln(stderr, "authnzerver: shutdown:", err)
		code = 1
	}
	return code
}

// subcommands are the admin commands; each file adds its own.
var subcommands = map[string]func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int{}
