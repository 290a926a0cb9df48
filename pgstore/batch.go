package pgstore

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// tables lists the record tables in key order of their prefixes: the order
// Scan reads them in.
var tables = []struct {
	kind shard.RecordKind
	name string
}{
	{shard.KindEmail, "emails"},
	{shard.KindFailures, "failures"},
	{shard.KindAPIKey, "api_keys"},
	{shard.KindMeta, "metadata"},
	{shard.KindSession, "sessions"},
	{shard.KindUser, "users"},
}

// upsertSQL writes rows given as one array per column, the route last;
// ON CONFLICT needs each key once per statement, which the batch ensures.
var upsertSQL = map[shard.RecordKind]string{
	shard.KindUser: `INSERT INTO authnzerver.users (key, value, user_id, email, full_name, role, is_active, email_verified, system_id,
		created_on, last_updated, last_login_success, last_login_try, failed_login_tries, auto_unlock_at, extra_info, route)
		SELECT k, v, a, b, c, d, e, f, g, h, i, j, l, m, n, o::jsonb, r FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::text[], $5::text[],
		$6::text[], $7::bool[], $8::bool[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[],
		$14::int4[], $15::timestamptz[], $16::text[], $17::int8[]) AS u(k, v, a, b, c, d, e, f, g, h, i, j, l, m, n, o, r)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, user_id = EXCLUDED.user_id, email = EXCLUDED.email,
		full_name = EXCLUDED.full_name, role = EXCLUDED.role, is_active = EXCLUDED.is_active, email_verified = EXCLUDED.email_verified,
		system_id = EXCLUDED.system_id, created_on = EXCLUDED.created_on, last_updated = EXCLUDED.last_updated,
		last_login_success = EXCLUDED.last_login_success, last_login_try = EXCLUDED.last_login_try,
		failed_login_tries = EXCLUDED.failed_login_tries, auto_unlock_at = EXCLUDED.auto_unlock_at, extra_info = EXCLUDED.extra_info,
		route = EXCLUDED.route`,
	shard.KindEmail: `INSERT INTO authnzerver.emails (key, value, email, system_id_claim, user_id, route)
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::bool[], $5::int8[], $6::int8[])
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, email = EXCLUDED.email,
		system_id_claim = EXCLUDED.system_id_claim, user_id = EXCLUDED.user_id, route = EXCLUDED.route`,
	shard.KindSession: `INSERT INTO authnzerver.sessions (key, value, user_id, created, expires, ip_address, user_agent, extra_info, route)
		SELECT k, v, a, b, c, d, e, f::jsonb, r FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::timestamptz[], $5::timestamptz[],
		$6::text[], $7::text[], $8::text[], $9::int8[]) AS s(k, v, a, b, c, d, e, f, r)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, user_id = EXCLUDED.user_id, created = EXCLUDED.created,
		expires = EXCLUDED.expires, ip_address = EXCLUDED.ip_address, user_agent = EXCLUDED.user_agent, extra_info = EXCLUDED.extra_info,
		route = EXCLUDED.route`,
	shard.KindAPIKey: `INSERT INTO authnzerver.api_keys (key, value, kind, user_id, role, issued, expires, not_before, session_key, refresh_expires, route)
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[], $7::timestamptz[],
		$8::timestamptz[], $9::bytea[], $10::timestamptz[], $11::int8[])
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, kind = EXCLUDED.kind, user_id = EXCLUDED.user_id, role = EXCLUDED.role,
		issued = EXCLUDED.issued, expires = EXCLUDED.expires, not_before = EXCLUDED.not_before, session_key = EXCLUDED.session_key,
		refresh_expires = EXCLUDED.refresh_expires, route = EXCLUDED.route`,
	shard.KindFailures: `INSERT INTO authnzerver.failures (key, value, email, failures, last_failure, refused_until, lockouts, route)
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::int4[], $5::timestamptz[], $6::timestamptz[], $7::int4[], $8::int8[])
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, email = EXCLUDED.email, failures = EXCLUDED.failures,
		last_failure = EXCLUDED.last_failure, refused_until = EXCLUDED.refused_until, lockouts = EXCLUDED.lockouts,
		route = EXCLUDED.route`,
	shard.KindMeta: `INSERT INTO authnzerver.metadata (key, value, name, route)
		SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::int8[])
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, name = EXCLUDED.name, route = EXCLUDED.route`,
}

// tableRows collects one table's rows of a batch, column by column.
type tableRows struct {
	keys, values [][]byte
	cols         []any // one slice per readable column
	routes       []pgtype.Int8
	deletes      [][]byte
}

// batch is one commit: the last write of each key, grouped by table.
type batch struct {
	rows      map[shard.RecordKind]*tableRows
	codeUsers []int64 // users whose email codes are rewritten
	codes     struct {
		users    []int64
		purposes []string
		digests  []string
		expires  []pgtype.Timestamptz
	}
	shards  []int32 // shards the batch writes; every shard when a record has none (single-node fencing)
	records int
	plain   bool // readable columns left NULL (after a data error)
}

// newBatch groups ops; plain leaves every readable column NULL.
func newBatch(ops []persist.Op, nShards int, plain bool) *batch {
	b := &batch{rows: map[shard.RecordKind]*tableRows{}, records: len(ops), plain: plain}
	// The last write of a key wins; earlier ones in the same batch are
	// invisible after the commit anyway.
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[string(op.Key)] = i
	}
	touched := make([]bool, nShards)
	all := false
	for i, op := range ops {
		if last[string(op.Key)] != i {
			continue
		}
		if r, ok, err := shard.RouteOfKey(op.Key); err == nil && ok {
			touched[uint64(r)%uint64(nShards)] = true
		} else {
			all = true
		}
		kind := shard.KindOfKey(op.Key)
		t := b.rows[kind]
		if t == nil {
			t = &tableRows{}
			b.rows[kind] = t
		}
		if kind == shard.KindUser {
			if id, ok := userIDOfKey(op.Key); ok {
				b.codeUsers = append(b.codeUsers, id)
			}
		}
		if op.Value == nil {
			t.deletes = append(t.deletes, op.Key)
			continue
		}
		t.keys = append(t.keys, op.Key)
		t.values = append(t.values, op.Value)
		t.routes = append(t.routes, routeOf(op.Key))
		b.addColumns(kind, t, op.Key, op.Value)
	}
	for i := range touched {
		if all || touched[i] {
			b.shards = append(b.shards, int32(i))
		}
	}
	return b
}

func userIDOfKey(key []byte) (int64, bool) {
	if len(key) != 10 || !bytes.HasPrefix(key, []byte("u/")) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(key[2:])), true
}

// columns holds typed column slices; add appends one row's values.
func col[T any](t *tableRows, i int) *[]T {
	for len(t.cols) <= i {
		t.cols = append(t.cols, nil)
	}
	if t.cols[i] == nil {
		t.cols[i] = &[]T{}
	}
	return t.cols[i].(*[]T)
}

func add[T any](t *tableRows, i int, v T) { p := col[T](t, i); *p = append(*p, v) }

func (b *batch) addColumns(kind shard.RecordKind, t *tableRows, key, value []byte) {
	switch kind {
	case shard.KindUser:
		u, err := shard.ViewUser(key, value)
		ok := err == nil && !b.plain
		add(t, 0, num(int64(u.ID), ok))
		add(t, 1, text(u.Email, ok))
		add(t, 2, text(u.FullName, ok))
		add(t, 3, text(u.Role, ok))
		add(t, 4, boolean(u.IsActive, ok))
		add(t, 5, boolean(u.EmailVerified, ok))
		add(t, 6, text(u.SystemID, ok))
		add(t, 7, stamp(u.CreatedOn, ok))
		add(t, 8, stamp(u.LastUpdated, ok))
		add(t, 9, stamp(u.LastLoginSuccess, ok))
		add(t, 10, stamp(u.LastLoginTry, ok))
		add(t, 11, num4(u.FailedLoginTries, ok))
		add(t, 12, stamp(u.AutoUnlockAt, ok))
		add(t, 13, jsonText(u.ExtraInfo, ok))
		if ok {
			for _, c := range u.EmailTokens {
				b.codes.users = append(b.codes.users, int64(u.ID))
				b.codes.purposes = append(b.codes.purposes, clean(c.Purpose))
				b.codes.digests = append(b.codes.digests, clean(c.Digest))
				b.codes.expires = append(b.codes.expires, stamp(c.Expires, true))
			}
		}
	case shard.KindEmail:
		email, sid, owner, err := shard.ViewEmail(key, value)
		ok := err == nil && !b.plain
		add(t, 0, text(email, ok))
		add(t, 1, boolean(sid, ok))
		add(t, 2, num(int64(owner), ok))
	case shard.KindSession:
		s, err := shard.ViewSession(key, value)
		ok := err == nil && !b.plain
		add(t, 0, num(int64(s.UserID), ok))
		add(t, 1, stamp(s.Created, ok))
		add(t, 2, stamp(s.Expires, ok))
		add(t, 3, text(s.IPAddress, ok))
		add(t, 4, text(s.UserAgent, ok))
		add(t, 5, jsonText(s.ExtraInfo, ok))
	case shard.KindAPIKey:
		k, err := shard.ViewAPIKey(key, value)
		ok := err == nil && !b.plain
		kindName := "no-session"
		var session []byte
		if k.Kind == shard.KeySession {
			kindName = "session"
			session = append([]byte("s/"), k.Session[:]...)
		}
		if !ok {
			session = nil
		}
		add(t, 0, text(kindName, ok))
		add(t, 1, num(int64(k.UserID), ok))
		add(t, 2, text(k.Role, ok))
		add(t, 3, stamp(k.Issued, ok))
		add(t, 4, stamp(k.Expires, ok))
		add(t, 5, stamp(k.NotBefore, ok))
		add(t, 6, session)
		add(t, 7, stamp(k.RefreshExpires, ok))
	case shard.KindFailures:
		f, err := shard.ViewFailures(key, value)
		ok := err == nil && !b.plain
		add(t, 0, text(f.Email, ok))
		add(t, 1, num4(f.Count, ok))
		add(t, 2, stamp(f.Last, ok))
		add(t, 3, stamp(f.Until, ok))
		add(t, 4, num4(f.Lockouts, ok))
	default:
		add(t, 0, text(string(key), !b.plain))
	}
}

// clean makes s storable as text: valid UTF-8 without NUL.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func text(s string, ok bool) pgtype.Text {
	if !ok || s == "" {
		return pgtype.Text{}
	}
	return pgtype.Text{String: clean(s), Valid: true}
}

// jsonText is JSON for a jsonb column; NULL when jsonb would refuse it (a
// NUL or an unpaired surrogate escape), so a record never fails its batch.
func jsonText(j []byte, ok bool) pgtype.Text {
	if !ok || len(j) == 0 || !utf8.Valid(j) || bytes.IndexByte(j, 0) >= 0 {
		return pgtype.Text{}
	}
	lower := bytes.ToLower(j)
	if bytes.Contains(lower, []byte(`\u0000`)) || bytes.Contains(lower, []byte(`\ud8`)) || bytes.Contains(lower, []byte(`\ud9`)) ||
		bytes.Contains(lower, []byte(`\uda`)) || bytes.Contains(lower, []byte(`\udb`)) || bytes.Contains(lower, []byte(`\udc`)) ||
		bytes.Contains(lower, []byte(`\udd`)) || bytes.Contains(lower, []byte(`\ude`)) || bytes.Contains(lower, []byte(`\udf`)) {
		return pgtype.Text{}
	}
	return pgtype.Text{String: string(j), Valid: true}
}

func num(n int64, ok bool) pgtype.Int8 { return pgtype.Int8{Int64: n, Valid: ok} }

func num4(n int, ok bool) pgtype.Int4 {
	if n > 1<<31-1 || n < -1<<31 {
		ok = false
	}
	return pgtype.Int4{Int32: int32(n), Valid: ok}
}

func boolean(v, ok bool) pgtype.Bool { return pgtype.Bool{Bool: v, Valid: ok} }

// stamp is a timestamptz; the zero time and times PostgreSQL cannot hold
// are NULL.
func stamp(t time.Time, ok bool) pgtype.Timestamptz {
	if !ok || t.IsZero() || t.Year() < -4000 || t.Year() > 200000 {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// routeOf is the route column of a key: the route's bits as int8, NULL
// for a key without one (it is no shard's: cluster nodes never load it by
// shard).
func routeOf(key []byte) pgtype.Int8 {
	r, ok, err := shard.RouteOfKey(key)
	if err != nil || !ok {
		return pgtype.Int8{}
	}
	return pgtype.Int8{Int64: int64(uint64(r)), Valid: true}
}

// queue adds the batch's statements to q, after the fence check of shards
// at epochs (parallel slices) and seq.
func (b *batch) queue(q *pgx.Batch, shards []int32, epochs []int64, seq int64) {
	q.Queue(`SELECT authnzerver.fence($1::int4[], $2::int8[], $3::int8)`, shards, epochs, seq)
	for _, tb := range tables {
		t := b.rows[tb.kind]
		if t == nil {
			continue
		}
		if len(t.deletes) > 0 {
			q.Queue(`DELETE FROM authnzerver.`+tb.name+` WHERE key = ANY($1::bytea[])`, t.deletes)
		}
		if len(t.keys) > 0 {
			args := append([]any{t.keys, t.values}, derefAll(t.cols)...)
			args = append(args, t.routes)
			q.Queue(upsertSQL[tb.kind], args...)
		}
	}
	if len(b.codeUsers) > 0 {
		q.Queue(`DELETE FROM authnzerver.email_codes WHERE user_id = ANY($1::int8[])`, b.codeUsers)
	}
	if len(b.codes.users) > 0 {
		q.Queue(`INSERT INTO authnzerver.email_codes (user_id, purpose, digest, expires)
			SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::timestamptz[])`,
			b.codes.users, b.codes.purposes, b.codes.digests, b.codes.expires)
	}
}

func derefAll(cols []any) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		switch p := c.(type) {
		case *[]pgtype.Text:
			out[i] = *p
		case *[]pgtype.Int8:
			out[i] = *p
		case *[]pgtype.Int4:
			out[i] = *p
		case *[]pgtype.Bool:
			out[i] = *p
		case *[]pgtype.Timestamptz:
			out[i] = *p
		case *[][]byte:
			out[i] = *p
		}
	}
	return out
}
