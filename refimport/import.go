// Package refimport moves a running Python authnzerver's database into
// this server's store (docs/operations.md, "Moving from the Python
// server"): users with their ids and password hashes, live sessions and
// API keys, checked row by row, written all at once or not at all.
package refimport

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// Target is the store the import writes into: scanned first (is it empty,
// which ids does it hold), then written with one Commit.
type Target interface {
	Scan(prefix []byte, fn func(key, value []byte) error) error
	Commit(ops []persist.Op) error
}

// Options of an import.
type Options struct {
	// Merge imports into a store that holds records already; a user whose
	// id, email or system id is taken there is refused with its sessions
	// and keys. Without it the store must be empty.
	Merge bool
	// DryRun plans the import and reports it, writing nothing.
	DryRun bool
	// Strict writes nothing when any row cannot be imported for another
	// reason than its expiry (or, with Merge, a collision with the store).
	Strict bool
	// KnownRole reports whether the permission model in use has a role.
	KnownRole func(string) bool
	// Progress, when set, is told what the import is doing (a line each).
	Progress func(line string)
	// Now is the time sessions and keys are judged expired at (default
	// time.Now).
	Now time.Time
}

// ErrRowsRefused means Strict was asked for and some rows cannot be
// imported: the report lists them, and nothing was written.
var ErrRowsRefused = errors.New("refimport: some rows cannot be imported (listed above); nothing was written (--strict)")

// ErrNotEmpty means the store holds records and Merge was not asked for.
var ErrNotEmpty = errors.New("refimport: the store is not empty (a second import, or a server has run on it); use --merge to add to it")

// The kinds of record counted in a Report.
const (
	KindUsers          = "users"
	KindSessions       = "sessions"
	KindSessionKeys    = "session-tied API keys"
	KindNoSessionKeys  = "no-session API keys"
	KindPasswordResets = "users kept who must reset their password"
	KindRefreshLost    = "no-session API keys kept without a usable refresh token"
)

// Problem is one row not imported (or imported with a loss), named by
// user id or by a short digest of its token, never by its values.
type Problem struct {
	Kind   string
	Row    string
	Reason string
}

// Report says what an import did, or would do.
type Report struct {
	Imported   map[string]int
	Skipped    map[string]map[string]int // kind → reason → rows
	Problems   []Problem
	NextUserID int64 // the id the next sign-up gets
	Records    int   // store records written (or that would be)
	Written    bool
}

func (r *Report) skip(kind, row, reason string) {
	if r.Skipped[kind] == nil {
		r.Skipped[kind] = map[string]int{}
	}
	// Reasons are counted by their general form (before ": ").
	general, _, _ := strings.Cut(reason, ": ")
	r.Skipped[kind][general]++
	r.Problems = append(r.Problems, Problem{kind, row, reason})
}

// refused counts the rows skipped for a fault of their own: not for their
// expiry, nor for a collision with the store (Merge), nor because their
// user or session was skipped (that one is counted already).
func (r *Report) refused() int {
	n := 0
	for _, reasons := range r.Skipped {
		for reason, c := range reasons {
			switch reason {
			case reasonExpired, reasonInStore, reasonIDInStore, reasonEmailInStore, reasonUserSkipped, reasonSessionSkipped:
			default:
				n += c
			}
		}
	}
	return n
}

// The reasons of rows not imported that are not faults of the rows (their
// general form, before any ": detail").
const (
	reasonExpired        = "expired"
	reasonInStore        = "already in the store"
	reasonIDInStore      = "id already in the store"
	reasonEmailInStore   = "email already in the store"
	reasonUserSkipped    = "its user is not imported"
	reasonSessionSkipped = "its session is not imported (expired or skipped)"
)

func (r *Report) note(kind, row, reason string) {
	r.Imported[kind]++
	r.Problems = append(r.Problems, Problem{kind, row, reason})
}

// Import plans the import of ref into st and, unless DryRun, writes it in
// one commit. st may be nil for a dry run against a store that does not
// exist yet. On an error nothing was written.
func Import(ref *Reference, st Target, o Options) (*Report, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.KnownRole == nil {
		return nil, errors.New("refimport: no permission model")
	}
	now := o.Now.UTC()
	rep := &Report{Imported: map[string]int{}, Skipped: map[string]map[string]int{}}
	sh := shard.New(shard.Options{})
	var next shard.UserID
	if st != nil {
		err := st.Scan(nil, func(key, value []byte) error {
			_, owned, err := shard.RouteOfKey(key)
			if err != nil {
				return fmt.Errorf("refimport: the store: %w", err)
			}
			if !owned {
				if string(key) == string(shard.MetaNextUserID) {
					n, err := shard.DecodeNextUserID(value)
					if err != nil {
						return fmt.Errorf("refimport: the store: %w", err)
					}
					next = max(next, n)
				}
				return nil
			}
			if !o.Merge {
				return ErrNotEmpty
			}
			if err := sh.Load(key, value); err != nil {
				return fmt.Errorf("refimport: the store: %w", err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var muts []shard.Mutation
	imported := map[int64]string{} // id → role
	for i := range ref.Users {
		m, ok := importUser(sh, &ref.Users[i], rep, o, imported)
		if ok {
			muts = append(muts, m...)
		}
	}
	// The sessions imported, by digest: the session-tied keys need them.
	sessions := map[shard.SessionDigest]time.Time{}
	for i := range ref.Sessions {
		muts = append(muts, importSession(sh, &ref.Sessions[i], rep, now, imported, sessions)...)
	}
	for i := range ref.Keys {
		muts = append(muts, importKey(sh, shard.KeySession, &ref.Keys[i], rep, o, now, imported, sessions)...)
	}
	for i := range ref.NoSessionKeys {
		muts = append(muts, importKey(sh, shard.KeyNoSession, &ref.NoSessionKeys[i], rep, o, now, imported, sessions)...)
	}
	next = max(next, sh.MaxUserID()+1, shard.FirstUserID, shard.UserID(ref.SequenceNext))
	rep.NextUserID = int64(next)
	if len(muts) > 0 {
		muts = append(muts, shard.EncodeNextUserID(next))
	}
	rep.Records = len(muts)
	if o.Strict && rep.refused() > 0 {
		return rep, ErrRowsRefused
	}
	if o.DryRun || len(muts) == 0 || st == nil {
		return rep, nil
	}
	if o.Progress != nil {
		o.Progress(fmt.Sprintf("writing %d records in one commit", len(muts)))
	}
	ops := make([]persist.Op, len(muts))
	for i, m := range muts {
		ops[i] = persist.Op{Key: m.Key, Value: m.Value}
	}
	if err := st.Commit(ops); err != nil {
		return rep, fmt.Errorf("refimport: write the import (nothing was written): %w", err)
	}
	rep.Written = true
	return rep, nil
}

// importUser checks one user row and adds it to sh; it answers the
// records to write and whether the user was imported.
func importUser(sh *shard.Shard, r *refUser, rep *Report, o Options, imported map[int64]string) ([]shard.Mutation, bool) {
	row := fmt.Sprintf("user %d", r.ID)
	skip := func(reason string) ([]shard.Mutation, bool) {
		rep.skip(KindUsers, row, reason)
		return nil, false
	}
	// Ids travel as JSON numbers: above 2^53 a client's float would
	// name another user.
	if r.ID <= 0 || r.ID > 1<<53 {
		return skip("impossible value: id not positive, or above 2^53")
	}
	id := shard.UserID(r.ID)
	if !r.Email.Valid || !r.Password.Valid || !r.SystemID.Valid || r.SystemID.String == "" || !r.Role.Valid {
		return skip("impossible value: email, password, system id or role missing")
	}
	created, err1 := parseTime(r.CreatedOn, true)
	updated, err2 := parseTime(r.LastUpdated, true)
	verifySent, err3 := parseTime(r.VerifySent, false)
	forgotSent, err4 := parseTime(r.ForgotSent, false)
	changeSent, err5 := parseTime(r.ChangeSent, false)
	lastOK, err6 := parseTime(r.LastOK, false)
	lastTry, err7 := parseTime(r.LastTry, false)
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return skip("impossible value: a time does not parse")
	}
	// The system users' addresses are at localhost, which sign-up refuses.
	if id > shard.DummyUserID {
		if err := passpolicy.ValidateEmail(r.Email.String, nil); err != nil {
			reason, _ := strings.CutPrefix(err.Error(), passpolicy.ErrInvalidEmail.Error()+": ")
			return skip("email fails our checks: " + reason)
		}
	}
	if !o.KnownRole(r.Role.String) {
		return skip("unknown role: not in the permission model in use")
	}
	var extra json.RawMessage
	if r.ExtraInfo.Valid && r.ExtraInfo.String != "null" {
		var obj map[string]any
		if json.Unmarshal([]byte(r.ExtraInfo.String), &obj) != nil {
			return skip("impossible value: extra_info is not a JSON object")
		}
		extra = json.RawMessage(r.ExtraInfo.String)
	}
	if _, err := sh.GetUser(id); err == nil {
		if _, ours := imported[r.ID]; ours {
			return skip("impossible value: duplicate id")
		}
		return skip(reasonIDInStore)
	}
	email := passpolicy.NormalizeEmail(r.Email.String)
	if owner, ok := sh.LookupEmail(email); ok {
		if _, ours := imported[int64(owner)]; ours {
			return skip(fmt.Sprintf("duplicate email: the same address (differing in case or form) as user %d, which is imported", owner))
		}
		return skip(fmt.Sprintf(reasonEmailInStore+": held by user %d", owner))
	}
	sid := shard.SystemIDKey(r.SystemID.String)
	if owner, ok := sh.LookupEmail(sid); ok {
		return skip(fmt.Sprintf("system id already taken: by user %d", owner))
	}
	u := shard.User{
		ID: id, SystemID: r.SystemID.String, FullName: r.FullName.String, PasswordPHC: r.Password.String,
		Email: email, EmailVerified: r.EmailVerified.Int64 != 0, IsActive: r.IsActive.Int64 != 0,
		EmailVerifySent: verifySent, EmailForgotPassSent: forgotSent, EmailChangePassSent: changeSent,
		LastLoginSuccess: lastOK, LastLoginTry: lastTry, FailedLoginTries: int(max(r.FailedTries.Int64, 0)),
		ExtraInfo: extra, CreatedOn: created, Role: r.Role.String,
	}
	var muts []shard.Mutation
	_, _, m := sh.ClaimEmail(email, id)
	muts = append(muts, m...)
	_, _, m = sh.ClaimEmail(sid, id)
	muts = append(muts, m...)
	_, m, err := sh.CreateUser(u, updated)
	if err != nil { // checked above; kept for safety
		return skip(reasonIDInStore)
	}
	muts = append(muts, m...)
	imported[r.ID] = u.Role
	if !verifiable(u.PasswordPHC) {
		rep.note(KindPasswordResets, row, "password hash of a scheme this server cannot verify: the account is kept, its owner must reset the password")
	}
	rep.Imported[KindUsers]++
	return muts, true
}

// verifiable reports whether the hasher pool can check a password against
// phc: an Argon2i or Argon2id PHC string of version 0x13 within bounds.
func verifiable(phc string) bool {
	p, err := passhash.ParsePHC(phc)
	return err == nil && p.Variant != passhash.PHCArgon2d && p.Version == passhash.PHCVersion13
}

// pseudonym names a token in reports: the start of a digest of it, which
// says nothing of the token.
func pseudonym(token string) string {
	d := sha256.Sum256([]byte("refimport:" + token))
	return hex.EncodeToString(d[:4])
}

func importSession(sh *shard.Shard, r *refSession, rep *Report, now time.Time, imported map[int64]string,
	sessions map[shard.SessionDigest]time.Time) []shard.Mutation {
	row := "session " + pseudonym(r.Token.String)
	created, err1 := parseTime(r.Created, true)
	expires, err2 := parseTime(r.Expires, true)
	if !r.Token.Valid || r.Token.String == "" || !r.UserID.Valid || errors.Join(err1, err2) != nil {
		rep.skip(KindSessions, row, "impossible value: token, user or a time missing or unreadable")
		return nil
	}
	if !expires.After(now) {
		rep.skip(KindSessions, row, reasonExpired)
		return nil
	}
	if _, ok := imported[r.UserID.Int64]; !ok {
		rep.skip(KindSessions, row, fmt.Sprintf(reasonUserSkipped+": user %d", r.UserID.Int64))
		return nil
	}
	d := shard.DigestSession(r.Token.String)
	if _, err := sh.LookupSession(d, now); err == nil {
		rep.skip(KindSessions, row, reasonInStore)
		return nil
	}
	var extra json.RawMessage
	if r.Extra.Valid && json.Valid([]byte(r.Extra.String)) {
		extra = json.RawMessage(r.Extra.String)
	}
	_, m := sh.CreateSession(d, shard.NewSession{
		UserID: shard.UserID(r.UserID.Int64), IPAddress: r.IP.String, UserAgent: r.UserAgent.String,
		Expires: expires, ExtraInfo: extra,
	}, created)
	sessions[d] = expires
	rep.Imported[KindSessions]++
	return m
}

func importKey(sh *shard.Shard, kind shard.APIKeyKind, r *refKey, rep *Report, o Options, now time.Time,
	imported map[int64]string, sessions map[shard.SessionDigest]time.Time) []shard.Mutation {
	what := KindSessionKeys
	if kind == shard.KeyNoSession {
		what = KindNoSessionKeys
	}
	row := "API key " + pseudonym(r.Token.String)
	issued, err1 := parseTime(r.Issued, true)
	expires, err2 := parseTime(r.Expires, true)
	nbf, err3 := parseTime(r.NotBefore, true)
	bad := !r.Token.Valid || r.Token.String == "" || !r.UserID.Valid || !r.Role.Valid || errors.Join(err1, err2, err3) != nil
	var refreshExpires, refreshNBF time.Time
	if kind == shard.KeyNoSession {
		var err4, err5 error
		refreshExpires, err4 = parseTime(r.RefreshExpires, true)
		refreshNBF, err5 = parseTime(r.RefreshNBF, true)
		bad = bad || !r.Refresh.Valid || r.Refresh.String == "" || errors.Join(err4, err5) != nil
	} else {
		bad = bad || !r.Session.Valid
	}
	if bad {
		rep.skip(what, row, "impossible value: token, user, role, refresh hash or a time missing or unreadable")
		return nil
	}
	if !expires.After(now) && (kind == shard.KeySession || !refreshExpires.After(now)) {
		rep.skip(what, row, reasonExpired)
		return nil
	}
	if _, ok := imported[r.UserID.Int64]; !ok {
		rep.skip(what, row, fmt.Sprintf(reasonUserSkipped+": user %d", r.UserID.Int64))
		return nil
	}
	if !o.KnownRole(r.Role.String) {
		rep.skip(what, row, "unknown role: not in the permission model in use")
		return nil
	}
	n := shard.NewAPIKey{
		Kind: kind, UserID: shard.UserID(r.UserID.Int64), Role: r.Role.String,
		Lifetime: expires.Sub(issued), NotBefore: nbf.Sub(issued),
	}
	if kind == shard.KeySession {
		sd := shard.DigestSession(r.Session.String)
		sexp, ok := sessions[sd]
		if !ok {
			rep.skip(what, row, reasonSessionSkipped)
			return nil
		}
		n.Session, n.SessionExpires = sd, sexp
	} else {
		n.RefreshPHC = r.Refresh.String
		n.RefreshLifetime, n.RefreshNotBefore = refreshExpires.Sub(issued), refreshNBF.Sub(issued)
	}
	_, m, err := sh.CreateAPIKey(shard.DigestAPIKey(r.Token.String), n, issued)
	if errors.Is(err, shard.ErrAPIKeyExists) {
		rep.skip(what, row, reasonInStore)
		return nil
	} else if err != nil {
		rep.skip(what, row, "impossible value: "+err.Error())
		return nil
	}
	if kind == shard.KeyNoSession && !verifiable(n.RefreshPHC) {
		rep.note(KindRefreshLost, row, "refresh token hash of a scheme this server cannot verify: the key verifies until it expires but cannot be refreshed")
	}
	rep.Imported[what]++
	return m
}

// parseTime reads a time as the reference's database gives it as text:
// SQLAlchemy's SQLite form "2006-01-02 15:04:05.000000", or PostgreSQL's
// timestamp text (fraction trimmed). Times are UTC, without a zone.
func parseTime(v sql.NullString, required bool) (time.Time, error) {
	s := strings.TrimSpace(v.String)
	if !v.Valid || s == "" {
		if required {
			return time.Time{}, errors.New("refimport: time missing")
		}
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
	}
	return time.Time{}, errors.New("refimport: time does not parse")
}

// SortedReasons lists the skip reasons of kind, most frequent first.
func (r *Report) SortedReasons(kind string) []string {
	var out []string
	for k := range r.Skipped[kind] {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := r.Skipped[kind][out[i]], r.Skipped[kind][out[j]]
		return a > b || a == b && out[i] < out[j]
	})
	return out
}
