package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/httpfront"
	"github.com/authnzerver/authnzerver/server"
)

// stdin is where commands read passwords; tests replace it.
var stdin io.Reader = os.Stdin

// adminUsage is the part of `authnzerver --help` that lists the admin
// commands (main.go's usage text points here).
const adminUsage = `
Admin commands (each takes --help; they open the data directory themselves,
so stop the server first, except for a backup of a running server, which is
taken by sending it SIGUSR1):
  authnzerver create-user --email E --name N [--role R]   password on stdin
  authnzerver list-users [--json]
  authnzerver lock-user USER_ID
  authnzerver unlock-user USER_ID
  authnzerver reset-password --email E                    password on stdin
  authnzerver purge-sessions [--older-than DAYS]
  authnzerver backup DEST_DIR                             pebble only (PostgreSQL: pg_dump)
  authnzerver restore BACKUP_DIR                          into an empty --authdb (PostgreSQL: pg_restore)
  authnzerver import-reference --from URL [--merge] [--dry-run]
                                          a Python authnzerver's database (its AUTHNZERVER_AUTHDB)
`

func init() {
	add := func(name, summary, argsUsage string, setup func(fs *flag.FlagSet) func(a *adminCtx) error) {
		subcommands[name] = func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
			return runAdmin(ctx, name, summary, argsUsage, setup, args, getenv, stdout, stderr)
		}
	}
	add("create-user", "Create an active user with a role. The password is read from the first line of stdin (or --password-file), never from the command line.",
		"--email E --name N [--role R] [--password-file F]", setupCreateUser)
	add("list-users", "List every user: id, email, role, active, verified, full name.", "[--json]", setupListUsers)
	add("lock-user", "Lock a user: set the role to locked, deactivate, and end all of the user's sessions.", "USER_ID", setupLock("lock"))
	add("unlock-user", "Unlock a user: restore the role held before the lock and activate.", "USER_ID", setupLock("unlock"))
	add("reset-password", "Set a user's password (checked against the password policy). The password is read from the first line of stdin (or --password-file).",
		"--email E [--password-file F]", setupResetPassword)
	add("purge-sessions", "Delete expired sessions now (the server also does it every minute, keeping them AUTHNZERVER_SESSIONEXPIRY days).",
		"[--older-than DAYS]", setupPurgeSessions)
	add("backup", "Write a consistent backup (pebble checkpoint and generated key files) of a stopped server's data directory to DEST_DIR, which must not exist. For a running server, send it SIGUSR1: it writes the backup under AUTHNZERVER_BACKUPDIR.",
		"DEST_DIR", setupBackup)
	add("restore", "Copy a backup into the data directory (--authdb), whose store must be empty or absent. Run it with the server stopped.",
		"BACKUP_DIR", setupRestore)
}

// adminCtx is what a command's body works with.
type adminCtx struct {
	cfg    *config.Config
	args   []string // positional arguments
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	srv    *server.Server // opened on demand by open
}

// errUsage marks an error in the command line: exit status 2.
var errUsage = errors.New("usage")

func runAdmin(_ context.Context, name, summary, argsUsage string, setup func(fs *flag.FlagSet) func(a *adminCtx) error,
	args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	authdb := fs.String("authdb", "", "data directory, or the PostgreSQL URL of the store (env AUTHNZERVER_AUTHDB wins; default ./data)")
	envfile := fs.String("envfile", "", "read the AUTHNZERVER_* variables from this file instead of the environment")
	body := setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: authnzerver %s %s\n\n%s\n\nOptions:\n", name, argsUsage, summary)
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nThe other server settings (secret, PII salt, Argon2 parameters, ...) come from the environment or --envfile, as for the server.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	var cargs []string
	if *authdb != "" {
		cargs = append(cargs, "--authdb", *authdb)
	}
	if *envfile != "" {
		cargs = append(cargs, "--envfile", *envfile)
	}
	cfg, err := config.Load(cargs, getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "authnzerver %s: %v\n", name, err)
		return 2
	}
	a := &adminCtx{cfg: cfg, args: fs.Args(), stdout: stdout, stderr: stderr, getenv: getenv}
	defer func() {
		if a.srv != nil {
			if err := a.srv.Close(); err != nil {
				fmt.Fprintf(stderr, "authnzerver %s: close the data directory: %v\n", name, err)
			}
		}
	}()
	if err := body(a); err != nil {
		fmt.Fprintf(stderr, "authnzerver %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "Usage: authnzerver %s %s (see --help)\n", name, argsUsage)
			return 2
		}
		return 1
	}
	return 0
}

// open opens the data directory with the server's own start-up (store,
// shards, hasher, front), without listening. It refuses a directory with no
// store (so a typo in --authdb does not create a new server) and explains a
// store locked by a running server.
func (a *adminCtx) open() (*server.Server, error) {
	if a.srv != nil {
		return a.srv, nil
	}
	// A PostgreSQL store is checked by the store itself (it must exist,
	// and no server may run on it: Options.Admin).
	if !a.cfg.Postgres() && !server.HasStore(a.cfg.AuthDB) {
		return nil, fmt.Errorf("no authnzerver store in %s (check --authdb or AUTHNZERVER_AUTHDB; start the server once to create one)", a.cfg.AuthDB)
	}
	lg := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.Start(a.cfg, server.Options{Logger: lg, Stderr: a.stderr, Getenv: a.getenv, Admin: true})
	if err != nil {
		if !a.cfg.Postgres() && strings.Contains(strings.ToLower(err.Error()), "lock") {
			return nil, fmt.Errorf("the data directory %s is in use, probably by a running server; stop it first (for a backup of a running server, send it SIGUSR1 instead): %w", a.cfg.AuthDB, err)
		}
		return nil, err
	}
	a.srv = srv
	return srv, nil
}

// call runs one request through the front's handlers (the same code path
// as the wire request) and turns a failure into an error.
func (a *adminCtx) call(reqType string, body map[string]any) (map[string]any, error) {
	srv, err := a.open()
	if err != nil {
		return nil, err
	}
	ok, resp, msgs, reason, err := srv.Front.Call(reqType, body)
	if errors.Is(err, httpfront.ErrUnknownRequest) {
		return nil, fmt.Errorf("this build of authnzerver does not implement the %s request yet", reqType)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return resp, &requestFailure{reqType: reqType, reason: reason, messages: msgs}
	}
	return resp, nil
}

// requestFailure is a request that answered success: false.
type requestFailure struct {
	reqType  string
	reason   string
	messages []string
}

func (e *requestFailure) Error() string {
	msg := e.reqType + " failed"
	if e.reason != "" {
		msg += ": " + e.reason
	}
	if len(e.messages) > 0 {
		msg += " (" + strings.Join(e.messages, " ") + ")"
	}
	return msg
}

// readPassword reads the first line of path ("" or "-": stdin), without its
// line ending. Passwords never come from the command line, where other
// users can read them in the process list.
func readPassword(path string) (string, error) {
	var r io.Reader = stdin
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password given (write it as the first line of stdin, or use --password-file)")
	}
	return line, nil
}

func oneUserID(a *adminCtx) (int64, error) {
	if len(a.args) != 1 {
		return 0, fmt.Errorf("%w: want exactly one USER_ID", errUsage)
	}
	id, err := strconv.ParseInt(a.args[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: USER_ID must be a positive integer, not %q", errUsage, a.args[0])
	}
	return id, nil
}

func noArgs(a *adminCtx) error {
	if len(a.args) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, a.args[0])
	}
	return nil
}

func setupCreateUser(fs *flag.FlagSet) func(a *adminCtx) error {
	email := fs.String("email", "", "email address (required)")
	name := fs.String("name", "", "full name (required)")
	role := fs.String("role", "authenticated", "role: authenticated, staff or superuser (see the permission model)")
	pwFile := fs.String("password-file", "", "read the password from this file's first line instead of stdin")
	return func(a *adminCtx) error {
		if err := noArgs(a); err != nil {
			return err
		}
		if *email == "" || *name == "" {
			return fmt.Errorf("%w: --email and --name are required", errUsage)
		}
		pw, err := readPassword(*pwFile)
		if err != nil {
			return err
		}
		resp, err := a.call("user-new", map[string]any{"email": *email, "full_name": *name, "password": pw})
		if err != nil {
			return err
		}
		id, ok := resp["user_id"].(float64)
		if !ok || id <= 0 {
			return fmt.Errorf("user-new answered no user_id")
		}
		// Sign-up makes a locked, unverified account, as in the reference;
		// the operator vouches for this one.
		if _, err := a.call("internal-user-edit", map[string]any{
			"target_userid": int64(id),
			"update_dict":   map[string]any{"is_active": true, "email_verified": true, "user_role": *role},
		}); err != nil {
			return fmt.Errorf("user %d was created but not activated: %w", int64(id), err)
		}
		fmt.Fprintf(a.stdout, "created user %d (%v) with role %s\n", int64(id), resp["user_email"], *role)
		return nil
	}
}

func setupListUsers(fs *flag.FlagSet) func(a *adminCtx) error {
	asJSON := fs.Bool("json", false, "print the user-info objects as JSON, one per line")
	return func(a *adminCtx) error {
		if err := noArgs(a); err != nil {
			return err
		}
		resp, err := a.call("user-list", map[string]any{"user_id": nil})
		if err != nil {
			return err
		}
		users, _ := resp["user_info"].([]any)
		if *asJSON {
			enc := json.NewEncoder(a.stdout)
			for _, u := range users {
				if err := enc.Encode(u); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tACTIVE\tVERIFIED\tFULL NAME")
		for _, u := range users {
			m, _ := u.(map[string]any)
			id, _ := m["user_id"].(float64)
			fmt.Fprintf(tw, "%d\t%v\t%v\t%v\t%v\t%v\n", int64(id), m["email"], m["user_role"], m["is_active"], m["email_verified"], m["full_name"])
		}
		return tw.Flush()
	}
}

func setupLock(action string) func(fs *flag.FlagSet) func(a *adminCtx) error {
	return func(fs *flag.FlagSet) func(a *adminCtx) error {
		return func(a *adminCtx) error {
			id, err := oneUserID(a)
			if err != nil {
				return err
			}
			resp, err := a.call("internal-user-lock", map[string]any{"target_userid": id, "action": action})
			if err != nil {
				return err
			}
			info, _ := resp["user_info"].(map[string]any)
			fmt.Fprintf(a.stdout, "user %d: role %v, active %v\n", id, info["user_role"], info["is_active"])
			return nil
		}
	}
}

func setupResetPassword(fs *flag.FlagSet) func(a *adminCtx) error {
	email := fs.String("email", "", "the user's email address, as stored (required)")
	pwFile := fs.String("password-file", "", "read the new password from this file's first line instead of stdin")
	return func(a *adminCtx) error {
		if err := noArgs(a); err != nil {
			return err
		}
		if *email == "" {
			return fmt.Errorf("%w: --email is required", errUsage)
		}
		pw, err := readPassword(*pwFile)
		if err != nil {
			return err
		}
		// The request wants to know whether the account is active; the
		// operator resets either kind, so try active first, then locked.
		body := map[string]any{"email_address": *email, "new_password": pw, "required_active": true}
		_, err = a.call("user-resetpass-nosession", body)
		var rf *requestFailure
		if errors.As(err, &rf) && strings.Contains(rf.reason, "is_active") {
			body["required_active"] = false
			_, err = a.call("user-resetpass-nosession", body)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "password changed for %s (existing sessions are kept; lock and unlock the user to end them)\n", *email)
		return nil
	}
}

func setupPurgeSessions(fs *flag.FlagSet) func(a *adminCtx) error {
	days := fs.Int("older-than", 0, "delete only sessions that expired more than this many days ago")
	return func(a *adminCtx) error {
		if err := noArgs(a); err != nil {
			return err
		}
		if *days < 0 {
			return fmt.Errorf("%w: --older-than must not be negative", errUsage)
		}
		srv, err := a.open()
		if err != nil {
			return err
		}
		rs, err := actors.AskAll[int](srv.Core, actors.PurgeSessions{OlderThan: time.Duration(*days) * 24 * time.Hour})
		if err == nil {
			err = actors.WaitAll(rs)
		}
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		n := 0
		for _, r := range rs {
			n += r.Value
		}
		fmt.Fprintf(a.stdout, "purged %d expired sessions\n", n)
		return nil
	}
}

func setupBackup(fs *flag.FlagSet) func(a *adminCtx) error {
	return func(a *adminCtx) error {
		if len(a.args) != 1 {
			return fmt.Errorf("%w: want exactly one DEST_DIR", errUsage)
		}
		dest := a.args[0]
		if a.cfg.Postgres() {
			return server.ErrBackupPostgres
		}
		if _, err := os.Lstat(dest); err == nil {
			return fmt.Errorf("%s already exists; a backup goes into a new directory", dest)
		}
		srv, err := a.open()
		if err != nil {
			return err
		}
		if err := srv.BackupTo(dest); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "backup written to %s\n", dest)
		return nil
	}
}

func setupRestore(fs *flag.FlagSet) func(a *adminCtx) error {
	return func(a *adminCtx) error {
		if len(a.args) != 1 {
			return fmt.Errorf("%w: want exactly one BACKUP_DIR", errUsage)
		}
		if a.cfg.Postgres() {
			return server.ErrBackupPostgres
		}
		if err := server.RestoreTo(a.args[0], a.cfg.AuthDB, a.cfg.DataDir); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "restored %s into %s\n", a.args[0], a.cfg.AuthDB)
		return nil
	}
}
