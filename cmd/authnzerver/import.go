package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/refimport"
	"github.com/authnzerver/authnzerver/server"
)

// import-reference: moving from the Python server (docs/operations.md,
// "Moving from the Python server").

func init() {
	name := "import-reference"
	summary := `Import a Python authnzerver's database into the configured store (--authdb: a
pebble data directory, created if missing, or a PostgreSQL URL), which must be
empty unless --merge. Users keep their ids and passwords (their Argon2 hashes
are re-hashed at the next login), live sessions and API keys keep verifying.
Rows that cannot be imported are listed with the reason; everything else is
written at once, or nothing. Keep AUTHNZERVER_SECRET as it was and point
AUTHNZERVER_PERMISSIONS at the Python server's permission JSON. Run it with
both servers stopped.`
	subcommands[name] = func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
		return runAdmin(ctx, name, summary, "--from URL [--merge] [--dry-run] [--strict]", setupImport, args, getenv, stdout, stderr)
	}
}

func setupImport(fs *flag.FlagSet) func(a *adminCtx) error {
	from := fs.String("from", "", "the Python server's AUTHNZERVER_AUTHDB: sqlite:///PATH (sqlite:////abs/path) or postgresql://... (required)")
	merge := fs.Bool("merge", false, "add to a store that holds records; users whose id, email or system id it holds are refused, not overwritten")
	dry := fs.Bool("dry-run", false, "read everything and report what would be imported and what cannot be; change nothing")
	strict := fs.Bool("strict", false, "write nothing if any row cannot be imported for a fault of its own (not its expiry or, with --merge, a collision)")
	verbose := fs.Bool("list", true, "list every row not imported (by user id or a digest of its token), with the reason")
	return func(a *adminCtx) error {
		if err := noArgs(a); err != nil {
			return err
		}
		if *from == "" {
			return fmt.Errorf("%w: --from is required", errUsage)
		}
		model := perm.Default()
		if a.cfg.Permissions != "" {
			var err error
			if model, err = perm.LoadFile(a.cfg.Permissions); err != nil {
				return fmt.Errorf("permission model: %w", err)
			}
		}
		progress := func(table string, rows int) {
			fmt.Fprintf(a.stderr, "import-reference: read %d rows of %s\n", rows, table)
		}
		ref, err := refimport.Read(context.Background(), *from, progress)
		if err != nil {
			return err
		}
		lg := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		st, err := server.OpenImportStore(a.cfg, lg, *dry)
		if err != nil {
			if !a.cfg.Postgres() && strings.Contains(strings.ToLower(err.Error()), "lock") {
				return fmt.Errorf("the data directory %s is in use, probably by a running server; stop it first: %w", a.cfg.AuthDB, err)
			}
			return err
		}
		var target refimport.Target
		closed := false
		if st != nil {
			target = st
			defer func() {
				if !closed {
					st.Close()
				}
			}()
		}
		fmt.Fprintf(a.stderr, "import-reference: checking %d users, %d sessions, %d API keys\n",
			len(ref.Users), len(ref.Sessions), len(ref.Keys)+len(ref.NoSessionKeys))
		rep, err := refimport.Import(ref, target, refimport.Options{Merge: *merge, DryRun: *dry, Strict: *strict, KnownRole: model.HasRole,
			Progress: func(line string) { fmt.Fprintln(a.stderr, "import-reference: "+line) }})
		if errors.Is(err, refimport.ErrRowsRefused) {
			printReport(a.stdout, rep, "strict", *verbose)
		}
		if err != nil {
			return err
		}
		mode := ""
		if *dry {
			mode = "dry"
		}
		printReport(a.stdout, rep, mode, *verbose)
		if st != nil {
			closed = true
			// Close commits nothing more: the import was one Commit,
			// already synced.
			if err := st.Close(); err != nil {
				return fmt.Errorf("close the store: %w", err)
			}
		}
		return nil
	}
}

// printReport writes the summary: per kind, imported and skipped by reason,
// then the rows not imported.
// mode is "dry" (a dry run), "strict" (refused by --strict) or "".
func printReport(w io.Writer, rep *refimport.Report, mode string, list bool) {
	verb := "imported"
	if mode != "" {
		verb = "would import"
	}
	if list {
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  %s: %s: %s\n", p.Kind, p.Row, p.Reason)
		}
	}
	for _, kind := range []string{refimport.KindUsers, refimport.KindSessions, refimport.KindSessionKeys, refimport.KindNoSessionKeys} {
		fmt.Fprintf(w, "%s %d %s", verb, rep.Imported[kind], kind)
		var parts []string
		for _, reason := range rep.SortedReasons(kind) {
			parts = append(parts, fmt.Sprintf("%d %s", rep.Skipped[kind][reason], reason))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "; skipped %s", strings.Join(parts, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, kind := range []string{refimport.KindPasswordResets, refimport.KindRefreshLost} {
		if n := rep.Imported[kind]; n > 0 {
			fmt.Fprintf(w, "%d %s\n", n, kind)
		}
	}
	switch {
	case mode == "strict":
		fmt.Fprintf(w, "--strict: nothing written (%d records would be)\n", rep.Records)
	case mode == "dry":
		fmt.Fprintf(w, "dry run: nothing written (%d records would be; the next new user would get id %d)\n", rep.Records, rep.NextUserID)
	case rep.Written:
		fmt.Fprintf(w, "wrote %d records in one commit; the next new user gets id %d\n", rep.Records, rep.NextUserID)
	default:
		fmt.Fprintln(w, "nothing to write")
	}
}
