package refimport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// Errors of reading the reference's database (docs/operations.md, "Moving
// from the Python server").
var (
	// ErrBadURL means --from is neither sqlite:///path nor a PostgreSQL URL.
	ErrBadURL = errors.New("refimport: want sqlite:///PATH or postgresql://... (the Python server's AUTHNZERVER_AUTHDB)")
	// ErrNotReference means the database lacks a table or column of the
	// Python server's schema: not its database, or a version we do not know.
	ErrNotReference = errors.New("refimport: not a Python authnzerver database (or a schema version this import does not know)")
	// ErrCorrupt means the database cannot be read: truncated, damaged, or
	// not a database at all.
	ErrCorrupt = errors.New("refimport: the database cannot be read (damaged, truncated or not a database)")
)

// The columns read from each of the reference's tables (docs/operations.md,
// "Moving from the Python server").
// Every value is read as text or integer with CAST, so that SQLite (which
// keeps SQLAlchemy's DateTime as text) and PostgreSQL (timestamp without
// time zone, boolean, json) give the same forms.
var (
	userCols = []string{
		"CAST(user_id AS INTEGER)", "system_id", "full_name", "password", "email",
		"CAST(email_verified AS INTEGER)", "CAST(is_active AS INTEGER)",
		"CAST(emailverify_sent_datetime AS TEXT)", "CAST(emailforgotpass_sent_datetime AS TEXT)",
		"CAST(emailchangepass_sent_datetime AS TEXT)", "CAST(last_login_success AS TEXT)",
		"CAST(last_login_try AS TEXT)", "CAST(failed_login_tries AS INTEGER)", "CAST(extra_info AS TEXT)",
		"CAST(created_on AS TEXT)", "CAST(last_updated AS TEXT)", "user_role",
	}
	sessionCols = []string{
		"session_token", "ip_address", "user_agent", "CAST(user_id AS INTEGER)",
		"CAST(created AS TEXT)", "CAST(expires AS TEXT)", "CAST(extra_info_json AS TEXT)",
	}
	keyCols = []string{
		"apikey", "CAST(issued AS TEXT)", "CAST(expires AS TEXT)", "CAST(not_valid_before AS TEXT)",
		"CAST(user_id AS INTEGER)", "user_role", "session_token",
	}
	noSessionKeyCols = []string{
		"apikey", "CAST(issued AS TEXT)", "CAST(expires AS TEXT)", "CAST(not_valid_before AS TEXT)",
		"refresh_token", "CAST(refresh_issued AS TEXT)", "CAST(refresh_expires AS TEXT)",
		"CAST(refresh_nbf AS TEXT)", "CAST(user_id AS INTEGER)", "user_role",
	}
	roleCols = []string{"name"}
)

// The reference's tables, as read: nullable columns are sql.Null*.
type (
	refUser struct {
		ID                                                  int64
		SystemID, FullName, Password, Email                 sql.NullString
		EmailVerified, IsActive                             sql.NullInt64
		VerifySent, ForgotSent, ChangeSent, LastOK, LastTry sql.NullString
		FailedTries                                         sql.NullInt64
		ExtraInfo, CreatedOn, LastUpdated, Role             sql.NullString
	}
	refSession struct {
		Token, IP, UserAgent    sql.NullString
		UserID                  sql.NullInt64
		Created, Expires, Extra sql.NullString
	}
	refKey struct {
		Token, Issued, Expires, NotBefore sql.NullString
		UserID                            sql.NullInt64
		Role, Session                     sql.NullString
		// no-session keys
		Refresh, RefreshIssued, RefreshExpires, RefreshNBF sql.NullString
	}
)

// Reference is the content of a Python authnzerver database.
type Reference struct {
	Users         []refUser
	Sessions      []refSession
	Keys          []refKey // session-tied (table apikeys)
	NoSessionKeys []refKey // table apikeys_nosession
	Roles         []string
	// SequenceNext is the id PostgreSQL's sequence of user ids would give
	// next (0 for SQLite, whose next id is the highest plus one): ids of
	// deleted users are not given out again.
	SequenceNext int64
}

// Read opens the database named by the reference's AUTHNZERVER_AUTHDB URL
// (read only), checks that it has the reference's tables and reads them
// whole. progress, when not nil, is told each table's row count.
func Read(ctx context.Context, from string, progress func(table string, rows int)) (*Reference, error) {
	db, err := open(from)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if strings.HasPrefix(from, "sqlite:") {
		var res string
		if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if res != "ok" {
			return nil, fmt.Errorf("%w: integrity check failed", ErrCorrupt)
		}
	} else if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("refimport: cannot reach the reference's PostgreSQL database: %w", err)
	}
	pg := !strings.HasPrefix(from, "sqlite:")
	tables := []struct {
		name string
		cols []string
	}{{"roles", roleCols}, {"users", userCols}, {"sessions", sessionCols}, {"apikeys", keyCols}, {"apikeys_nosession", noSessionKeyCols}}
	for _, t := range tables {
		rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(t.cols, ", ")+" FROM "+t.name+" WHERE 1 = 0")
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: %v", schemaOrCorrupt(err), t.name, err)
		}
		rows.Close()
	}
	ref := &Reference{}
	if pg {
		// NULL (a sequence never used, or none) leaves it 0.
		var last sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT pg_sequence_last_value(pg_get_serial_sequence('users', 'user_id')::regclass)`).Scan(&last)
		if err == nil && last.Valid && last.Int64 > 0 && last.Int64 < 1<<53 {
			ref.SequenceNext = last.Int64 + 1
		}
	}
	if err := readTable(ctx, db, "roles", roleCols, "name", progress, func(r *sql.Rows) error {
		var name sql.NullString
		err := r.Scan(&name)
		ref.Roles = append(ref.Roles, name.String)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readTable(ctx, db, "users", userCols, "user_id", progress, func(r *sql.Rows) error {
		var u refUser
		err := r.Scan(&u.ID, &u.SystemID, &u.FullName, &u.Password, &u.Email, &u.EmailVerified, &u.IsActive,
			&u.VerifySent, &u.ForgotSent, &u.ChangeSent, &u.LastOK, &u.LastTry, &u.FailedTries, &u.ExtraInfo,
			&u.CreatedOn, &u.LastUpdated, &u.Role)
		ref.Users = append(ref.Users, u)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readTable(ctx, db, "sessions", sessionCols, "created", progress, func(r *sql.Rows) error {
		var s refSession
		err := r.Scan(&s.Token, &s.IP, &s.UserAgent, &s.UserID, &s.Created, &s.Expires, &s.Extra)
		ref.Sessions = append(ref.Sessions, s)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readTable(ctx, db, "apikeys", keyCols, "issued", progress, func(r *sql.Rows) error {
		var k refKey
		err := r.Scan(&k.Token, &k.Issued, &k.Expires, &k.NotBefore, &k.UserID, &k.Role, &k.Session)
		ref.Keys = append(ref.Keys, k)
		return err
	}); err != nil {
		return nil, err
	}
	if err := readTable(ctx, db, "apikeys_nosession", noSessionKeyCols, "issued", progress, func(r *sql.Rows) error {
		var k refKey
		err := r.Scan(&k.Token, &k.Issued, &k.Expires, &k.NotBefore, &k.Refresh, &k.RefreshIssued,
			&k.RefreshExpires, &k.RefreshNBF, &k.UserID, &k.Role)
		ref.NoSessionKeys = append(ref.NoSessionKeys, k)
		return err
	}); err != nil {
		return nil, err
	}
	return ref, nil
}

// open opens the reference's database read only.
func open(from string) (*sql.DB, error) {
	scheme, rest, ok := strings.Cut(from, "://")
	if !ok {
		return nil, ErrBadURL
	}
	// SQLAlchemy URLs may name a driver: postgresql+psycopg2://.
	scheme, _, _ = strings.Cut(strings.ToLower(scheme), "+")
	switch scheme {
	case "sqlite":
		// sqlite:///relative/path and sqlite:////absolute/path, as
		// SQLAlchemy reads them.
		path, ok := strings.CutPrefix(rest, "/")
		if !ok || path == "" {
			return nil, ErrBadURL
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("refimport: the reference's database: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("refimport: the reference's database %s is not a file", path)
		}
		// Read only: the import never changes the reference's database
		// (a missing file is not created).
		u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(5000)"}
		db, err := sql.Open("sqlite", u.String())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return db, nil
	case "postgres", "postgresql":
		db, err := sql.Open("pgx", "postgres://"+rest)
		if err != nil {
			// pgx's parse errors may quote the URL, password included.
			return nil, fmt.Errorf("refimport: the reference's PostgreSQL URL does not parse")
		}
		return db, nil
	}
	return nil, ErrBadURL
}

// readTable reads every row of table, ordered by order.
func readTable(ctx context.Context, db *sql.DB, table string, cols []string, order string,
	progress func(string, int), scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table+" ORDER BY "+order)
	if err != nil {
		return fmt.Errorf("%w: read %s: %v", schemaOrCorrupt(err), table, err)
	}
	defer rows.Close()
	n := 0
	last := time.Now()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%w: %s row %d: %v", ErrCorrupt, table, n+1, err)
		}
		n++
		if progress != nil && time.Since(last) > time.Second {
			progress(table, n)
			last = time.Now()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: read %s: %v", ErrCorrupt, table, err)
	}
	if progress != nil {
		progress(table, n)
	}
	return nil
}

// schemaOrCorrupt tells a missing table or column from a damaged file.
func schemaOrCorrupt(err error) error {
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"no such table", "no such column", "does not exist", "undefined"} {
		if strings.Contains(msg, s) {
			return ErrNotReference
		}
	}
	if strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database") || strings.Contains(msg, "corrupt") {
		return ErrCorrupt
	}
	return ErrNotReference
}
