// Package reftest builds, for tests, a database the way the Python
// authnzerver makes it (its table layout and column types, written here
// from its table definitions), in SQLite or PostgreSQL, holding
// users in every state, Argon2 hashes made with argon2-cffi's default
// parameters and PHC format, live and expired sessions, and both kinds of
// API keys (docs/operations.md, "Moving from the Python server").
package reftest

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	"golang.org/x/crypto/argon2"
	_ "modernc.org/sqlite" // "sqlite"
)

// Argon2Params are an argon2-cffi version's PasswordHasher defaults.
type Argon2Params struct {
	Time, MemoryKiB uint32
	Threads         uint8
	KeyLen, SaltLen uint32
}

// The argon2-cffi defaults: RFC 9106's low-memory profile (21.2 and
// later), and those of 18.2–21.1.
var (
	CFFIDefault = Argon2Params{Time: 3, MemoryKiB: 65536, Threads: 4, KeyLen: 32, SaltLen: 16}
	CFFIOld     = Argon2Params{Time: 2, MemoryKiB: 102400, Threads: 8, KeyLen: 16, SaltLen: 16}
)

// HashPassword makes the PHC string argon2-cffi's PasswordHasher().hash
// writes: $argon2id$v=19$m=..,t=..,p=..$salt$hash, unpadded standard
// base64.
func HashPassword(pw string, p Argon2Params) string {
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64(salt), b64(key))
}

// Token is what the reference's secrets.token_urlsafe(32) gives.
func Token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// User is a user row of the fixture, with the password it was made with.
type User struct {
	ID            int64
	SystemID      string
	FullName      string
	Email         string // as stored by the reference
	Password      string // "" for the system users' random ones
	PHC           string
	EmailVerified bool
	IsActive      bool
	Role          string
	ExtraInfo     string // JSON or ""
	// CanLogIn: active, verified, with a hash this server verifies.
	CanLogIn bool
}

// Session is a session row.
type Session struct {
	Token  string
	UserID int64
	Live   bool
}

// Key is an API key row; Refresh is the refresh token of a no-session key.
type Key struct {
	Token, Refresh string
	RefreshPHC     string // as argon2-cffi hashed it
	UserID         int64
	Role           string
	NoSession      bool
	SessionToken   string
	Live           bool
	Dict           map[string]any // the apikey_dict the reference handed out
}

// Fixture is the content of a reference database.
type Fixture struct {
	Users    []User
	Sessions []Session
	Keys     []Key
	Now      time.Time
	// Extra statements appended after the fixture's own inserts (the
	// bad-input tests add impossible rows).
	Extra []string
}

var (
	baseOnce sync.Once
	base     Fixture
	// refresh tokens and their hashes, made once per process
	refreshTokens, refreshPHCs [3]string
)

// New returns the standard fixture: the three system users, users in every
// state, sessions and keys. Its hashes are computed once per process (they
// take about a second with argon2-cffi's parameters), its tokens anew.
func New() *Fixture {
	baseOnce.Do(func() {
		other := HashPassword(Token(), CFFIDefault)
		u := func(id int64, email, name, pw string, p Argon2Params, verified, active bool, role, extra string, canLogIn bool) User {
			phc := other
			if pw != "" {
				phc = HashPassword(pw, p)
			}
			return User{ID: id, SystemID: fmt.Sprintf("00000000-0000-4000-8000-%012d", id), FullName: name, Email: email,
				Password: pw, PHC: phc, EmailVerified: verified, IsActive: active, Role: role, ExtraInfo: extra, CanLogIn: canLogIn}
		}
		sys := `{"provenance": "auto-created", "type": "system-user"}`
		base.Users = []User{
			u(1, "admin@localhost", "Superuser account", "super-Secret-passw0rd-1", CFFIDefault, true, true, "superuser", sys, true),
			u(2, "anonuser@localhost", "The systemwide anonymous user", "", CFFIDefault, true, true, "anonymous", sys, false),
			u(3, "dummyuser@localhost", "The systemwide locked user", "", CFFIDefault, true, false, "locked", `{"provenance": "auto-created", "type": "locked-user"}`, false),
			u(4, "alice@example.org", "Alice Example", "alice-Horse-battery-77", CFFIDefault, true, true, "authenticated", "", true),
			u(5, "Bob.Staff@Example.ORG", "Bob Staff", "bob-Staple-correct-88", CFFIDefault, true, true, "staff", `{"team": "ops"}`, true),
			// signed up, never verified
			u(6, "carol@example.net", "Carol New", "", CFFIDefault, false, false, "authenticated", "", false),
			// locked by an admin: the role it had is in extra_info
			u(7, "dave@example.com", "Dave Locked", "", CFFIDefault, true, false, "locked", `{"previous_user_roles": ["authenticated"]}`, false),
			// a hash made by argon2-cffi 18.2–21.1's defaults
			u(9, "frank@example.org", "Frank Older", "frank-Older-hash-99", CFFIOld, true, true, "authenticated", "", true),
		}
		// a hash of a scheme this server does not verify (bcrypt)
		erin := u(8, "erin@example.org", "Erin Bcrypt", "", CFFIDefault, true, true, "authenticated", "", false)
		erin.PHC = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
		base.Users = append(base.Users, erin)
		for i := range refreshTokens {
			refreshTokens[i] = Token()
			refreshPHCs[i] = HashPassword(refreshTokens[i], CFFIDefault)
		}
	})
	f := &Fixture{Users: append([]User(nil), base.Users...), Now: time.Now().UTC()}
	live := func(uid int64) string {
		s := Session{Token: Token(), UserID: uid, Live: true}
		f.Sessions = append(f.Sessions, s)
		return s.Token
	}
	aliceSess := live(4)
	bobSess := live(5)
	live(1)
	live(2) // the anonymous user's session of a visitor
	f.Sessions = append(f.Sessions, Session{Token: Token(), UserID: 4, Live: false}, Session{Token: Token(), UserID: 9, Live: false})
	expiredSess := f.Sessions[len(f.Sessions)-2].Token
	refreshes := 0
	key := func(uid int64, role, sess string, noSession, live bool) {
		k := Key{Token: Token(), UserID: uid, Role: role, NoSession: noSession, SessionToken: sess, Live: live}
		if noSession {
			k.Refresh, k.RefreshPHC = refreshTokens[refreshes], refreshPHCs[refreshes]
			refreshes++
		}
		f.Keys = append(f.Keys, k)
	}
	key(4, "authenticated", aliceSess, false, true)
	key(5, "staff", bobSess, false, true)
	key(4, "authenticated", aliceSess, false, false)  // expired key
	key(4, "authenticated", expiredSess, false, true) // its session expired
	key(4, "authenticated", "", true, true)
	key(9, "authenticated", "", true, true)
	key(5, "staff", "", true, false) // expired, and its refresh too
	for i := range f.Keys {
		k := &f.Keys[i]
		issued, exp := f.times(k.Live)
		k.Dict = map[string]any{
			"iss": "authnzerver.test", "ver": 1, "uid": k.UserID, "rol": k.Role, "usa": "Mozilla/5.0",
			"aud": "api.example.org", "sub": "/api/v1/things", "ipa": "203.0.113.9", "tkn": k.Token,
			"iat": isoformat(issued), "nbf": isoformat(issued), "exp": isoformat(exp),
		}
	}
	return f
}

// times gives an issued and an expiry time for a live or expired row.
func (f *Fixture) times(live bool) (issued, expires time.Time) {
	if live {
		return f.Now.Add(-time.Hour), f.Now.Add(30 * 24 * time.Hour)
	}
	return f.Now.Add(-48 * time.Hour), f.Now.Add(-24 * time.Hour)
}

func isoformat(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

// sqlTime is how SQLAlchemy's DateTime is written as text in SQLite (and
// a literal PostgreSQL reads as a timestamp).
func sqlTime(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05.000000") + "'" }

func lit(s string) string {
	if s == "" {
		return "NULL"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func boolLit(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

// Inserts returns the INSERT statements of the fixture's rows (the same in
// both dialects).
func (f *Fixture) Inserts() []string {
	var out []string
	for _, r := range []string{"superuser", "staff", "authenticated", "anonymous", "locked"} {
		out = append(out, fmt.Sprintf(`INSERT INTO roles (name, "desc") VALUES ('%s', 'Role with %s privileges')`, r, r))
	}
	created := f.Now.Add(-400 * 24 * time.Hour)
	for _, u := range f.Users {
		lastOK := "NULL"
		if u.CanLogIn {
			lastOK = sqlTime(f.Now.Add(-72 * time.Hour))
		}
		verifySent := "NULL"
		if u.ID > 3 {
			verifySent = sqlTime(created.Add(time.Minute))
		}
		out = append(out, fmt.Sprintf(`INSERT INTO users (user_id, system_id, full_name, password, email, email_verified, is_active,
			emailverify_sent_datetime, emailforgotpass_sent_datetime, emailchangepass_sent_datetime, last_login_success, last_login_try,
			failed_login_tries, extra_info, created_on, last_updated, user_role) VALUES
			(%d, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s, %s, 0, %s, %s, %s, %s)`,
			u.ID, lit(u.SystemID), lit(u.FullName), lit(u.PHC), lit(u.Email), boolLit(u.EmailVerified), boolLit(u.IsActive),
			verifySent, lastOK, lastOK, lit(u.ExtraInfo), sqlTime(created), sqlTime(created.Add(time.Hour)), lit(u.Role)))
	}
	for _, s := range f.Sessions {
		issued, exp := f.times(s.Live)
		out = append(out, fmt.Sprintf(`INSERT INTO sessions (session_token, ip_address, user_agent, user_id, created, expires, extra_info_json)
			VALUES (%s, '203.0.113.9', 'Mozilla/5.0', %d, %s, %s, '{"csrf": "x"}')`, lit(s.Token), s.UserID, sqlTime(issued), sqlTime(exp)))
	}
	for _, k := range f.Keys {
		issued, exp := f.times(k.Live)
		if k.NoSession {
			// The refresh token is hashed as a password (argon2-cffi).
			out = append(out, fmt.Sprintf(`INSERT INTO apikeys_nosession (apikey, issued, expires, not_valid_before, refresh_token,
				refresh_issued, refresh_expires, refresh_nbf, user_id, user_role) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %d, %s)`,
				lit(k.Token), sqlTime(issued), sqlTime(exp), sqlTime(issued), lit(k.RefreshPHC), sqlTime(issued),
				sqlTime(exp.Add(24*time.Hour)), sqlTime(issued), k.UserID, lit(k.Role)))
			continue
		}
		out = append(out, fmt.Sprintf(`INSERT INTO apikeys (apikey, issued, expires, not_valid_before, user_id, user_role, session_token)
			VALUES (%s, %s, %s, %s, %d, %s, %s)`, lit(k.Token), sqlTime(issued), sqlTime(exp), sqlTime(issued), k.UserID, lit(k.Role), lit(k.SessionToken)))
	}
	return append(out, f.Extra...)
}

// The reference's tables as SQLAlchemy creates them for SQLite.
var sqliteDDL = []string{
	`CREATE TABLE roles (
	name VARCHAR(100) NOT NULL,
	"desc" VARCHAR(280) NOT NULL,
	PRIMARY KEY (name)
)`,
	`CREATE TABLE users (
	user_id INTEGER NOT NULL,
	system_id VARCHAR(50) NOT NULL,
	full_name VARCHAR(280),
	password TEXT NOT NULL,
	email VARCHAR(280) NOT NULL,
	email_verified BOOLEAN NOT NULL,
	is_active BOOLEAN NOT NULL,
	emailverify_sent_datetime DATETIME,
	emailforgotpass_sent_datetime DATETIME,
	emailchangepass_sent_datetime DATETIME,
	last_login_success DATETIME,
	last_login_try DATETIME,
	failed_login_tries INTEGER,
	extra_info JSON,
	created_on DATETIME NOT NULL,
	last_updated DATETIME NOT NULL,
	user_role VARCHAR(100) NOT NULL,
	PRIMARY KEY (user_id),
	UNIQUE (email),
	FOREIGN KEY(user_role) REFERENCES roles (name)
)`,
	`CREATE UNIQUE INDEX ix_users_system_id ON users (system_id)`,
	`CREATE INDEX ix_users_full_name ON users (full_name)`,
	`CREATE INDEX ix_users_user_role ON users (user_role)`,
	`CREATE TABLE sessions (
	session_token VARCHAR NOT NULL,
	ip_address VARCHAR(280) NOT NULL,
	user_agent VARCHAR(280) NOT NULL,
	user_id INTEGER NOT NULL,
	created DATETIME NOT NULL,
	expires DATETIME NOT NULL,
	extra_info_json JSON,
	PRIMARY KEY (session_token),
	FOREIGN KEY(user_id) REFERENCES users (user_id) ON DELETE CASCADE
)`,
	`CREATE INDEX ix_sessions_expires ON sessions (expires)`,
	`CREATE TABLE groups (
	group_id INTEGER NOT NULL,
	system_id VARCHAR(50) NOT NULL,
	group_name VARCHAR(280) NOT NULL,
	visibility VARCHAR(100) NOT NULL,
	created_by INTEGER NOT NULL,
	is_active BOOLEAN NOT NULL,
	created_on DATETIME NOT NULL,
	last_updated DATETIME NOT NULL,
	group_role VARCHAR(100) NOT NULL,
	extra_info JSON,
	PRIMARY KEY (group_id),
	FOREIGN KEY(created_by) REFERENCES users (user_id),
	FOREIGN KEY(group_role) REFERENCES roles (name)
)`,
	`CREATE TABLE user_groups (
	user_id INTEGER NOT NULL,
	group_id INTEGER NOT NULL,
	PRIMARY KEY (user_id, group_id),
	FOREIGN KEY(user_id) REFERENCES users (user_id) ON DELETE CASCADE,
	FOREIGN KEY(group_id) REFERENCES groups (group_id) ON DELETE CASCADE
)`,
	`CREATE TABLE preferences (
	pref_id INTEGER NOT NULL,
	user_id INTEGER NOT NULL,
	pref_name VARCHAR(100) NOT NULL,
	pref_value VARCHAR(280),
	PRIMARY KEY (pref_id),
	FOREIGN KEY(user_id) REFERENCES users (user_id) ON DELETE CASCADE
)`,
	`CREATE TABLE apikeys (
	apikey TEXT NOT NULL,
	issued DATETIME NOT NULL,
	expires DATETIME NOT NULL,
	not_valid_before DATETIME NOT NULL,
	user_id INTEGER NOT NULL,
	user_role VARCHAR(100) NOT NULL,
	session_token TEXT NOT NULL,
	PRIMARY KEY (apikey),
	FOREIGN KEY(user_id) REFERENCES users (user_id) ON DELETE CASCADE,
	FOREIGN KEY(user_role) REFERENCES roles (name) ON DELETE CASCADE,
	FOREIGN KEY(session_token) REFERENCES sessions (session_token) ON DELETE CASCADE
)`,
	`CREATE INDEX ix_apikeys_expires ON apikeys (expires)`,
	`CREATE TABLE apikeys_nosession (
	apikey TEXT NOT NULL,
	issued DATETIME NOT NULL,
	expires DATETIME NOT NULL,
	not_valid_before DATETIME NOT NULL,
	refresh_token TEXT NOT NULL,
	refresh_issued DATETIME NOT NULL,
	refresh_expires DATETIME NOT NULL,
	refresh_nbf DATETIME NOT NULL,
	user_id INTEGER NOT NULL,
	user_role VARCHAR(100) NOT NULL,
	PRIMARY KEY (apikey),
	FOREIGN KEY(user_id) REFERENCES users (user_id) ON DELETE CASCADE,
	FOREIGN KEY(user_role) REFERENCES roles (name) ON DELETE CASCADE
)`,
}

// postgresDDL is the same for PostgreSQL: SERIAL ids, TIMESTAMP WITHOUT
// TIME ZONE, native BOOLEAN and JSON.
func postgresDDL() []string {
	out := make([]string, len(sqliteDDL))
	for i, s := range sqliteDDL {
		s = strings.ReplaceAll(s, "DATETIME", "TIMESTAMP WITHOUT TIME ZONE")
		s = strings.Replace(s, "user_id INTEGER NOT NULL,\n\tsystem_id", "user_id SERIAL NOT NULL,\n\tsystem_id", 1)
		s = strings.Replace(s, "group_id INTEGER NOT NULL,\n\tsystem_id", "group_id SERIAL NOT NULL,\n\tsystem_id", 1)
		s = strings.Replace(s, "pref_id INTEGER NOT NULL", "pref_id SERIAL NOT NULL", 1)
		out[i] = s
	}
	return out
}

// WriteSQLite creates the fixture as a new SQLite file at path, in WAL
// mode as the reference leaves it, and answers its AUTHNZERVER_AUTHDB URL.
func (f *Fixture) WriteSQLite(path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	stmts := append(append([]string{}, sqliteDDL...), f.Inserts()...)
	stmts = append(stmts, "PRAGMA journal_mode=WAL", "PRAGMA wal_checkpoint(TRUNCATE)")
	if err := execAll(db, stmts); err != nil {
		return "", err
	}
	return "sqlite:///" + path, nil
}

// WritePostgres creates the fixture's tables in the (empty) database at
// url and fills them; its sequence of user ids stands at the highest id
// plus two (see [PostgresNextID]).
func (f *Fixture) WritePostgres(url string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	defer db.Close()
	stmts := append(postgresDDL(), f.Inserts()...)
	// The sequence of user ids has given out two more than the highest id
	// left: two users who signed up last were deleted.
	stmts = append(stmts, `SELECT setval('users_user_id_seq', (SELECT max(user_id) FROM users) + 2)`)
	return execAll(db, stmts)
}

// PostgresNextID is the id a new user gets after an import of the
// PostgreSQL fixture: the ids of deleted users are not given out again.
const PostgresNextID = 12

// SQLiteNextID is the same for the SQLite fixture, whose next id is the
// highest plus one, as in SQLite itself.
const SQLiteNextID = 10

func execAll(db *sql.DB, stmts []string) error {
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("reftest: %.60s: %w", s, err)
		}
	}
	return nil
}
