package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SessionDigest is the SHA-256 digest of a session token. Only digests are
// kept in memory and on disk (docs/security.md, "Tokens and keys at rest"):
// a copy of the store does not hand out live sessions.
type SessionDigest [sha256.Size]byte

// DigestSession returns the digest of a session token.
func DigestSession(token string) SessionDigest {
	// Through a buffer on the stack: a token (43 characters) is longer than
	// the conversion's own, which would allocate on every session check.
	var buf [64]byte
	return sha256.Sum256(append(buf[:0], token...))
}

// Errors of session operations.
var (
	ErrSessionNotFound = errors.New("shard: session not found")
)

// Session is a copy of one session record.
type Session struct {
	Digest    SessionDigest
	UserID    UserID
	IPAddress string
	UserAgent string
	Created   time.Time
	Expires   time.Time
	ExtraInfo json.RawMessage // a JSON value or nil (null)
}

// sessionRec is how a session is held in memory: compact (48 bytes),
// because a server holds millions of them. Times are Unix microseconds (the
// wire precision); the (IP, user agent) pair is interned, since many
// sessions share it.
type sessionRec struct {
	user    UserID
	created int64
	expires int64
	client  *clientInfo // shared, never modified
	extra   string      // JSON text, "" for null
}

type clientInfo struct{ ip, ua string }

func (r *sessionRec) view(d SessionDigest) Session {
	var extra json.RawMessage
	if r.extra != "" {
		extra = json.RawMessage(r.extra)
	}
	return Session{
		Digest: d, UserID: r.user, IPAddress: r.client.ip, UserAgent: r.client.ua,
		Created: time.UnixMicro(r.created).UTC(), Expires: time.UnixMicro(r.expires).UTC(),
		ExtraInfo: extra,
	}
}

// maxInterned bounds the intern table of one shard; past it, strings are
// kept as they come (correct, only less compact).
const maxInterned = 16384

// deadSession is what is kept in memory of an expired session until its
// retention ends: enough to delete it (a delete of an expired session
// succeeds, as in the reference, and ending all of a user's sessions counts
// it) and to know when to purge it, and nothing else. Its IP address, user
// agent and extra info (up to 64 KiB) are dropped from memory when it expires;
// its full record stays on disk for the retention period.
type deadSession struct {
	user    UserID
	expires int64 // Unix µs
}

// sessionTable holds the sessions whose digest routes to this shard.
//
// Invariants: a digest is in at most one of live and dead; every digest of
// a non-anonymous user in either is in byUser under that user, and byUser
// holds nothing else.
type sessionTable struct {
	// byDigest holds the sessions not yet seen expired. Lookups refuse an
	// expired one at once (they compare times); a lookup or a sweep that
	// meets one moves it to dead.
	byDigest map[SessionDigest]sessionRec
	// dead holds expired sessions until their retention ends.
	dead map[SessionDigest]deadSession
	// byUser indexes the sessions of each user held by this shard, so that
	// ending every session of a user touches only that user's sessions.
	// NB: the anonymous user's sessions are not indexed (they are most of
	// them, and nobody ends them all at once); that rare request scans.
	byUser map[UserID]map[SessionDigest]struct{}
	intern map[clientInfo]*clientInfo
	// owners counts, on each user's own shard, the sessions of that user
	// (see ownerCounts): the sessions themselves are spread over all shards.
	owners ownerCounts
}

func newSessionTable() sessionTable {
	return sessionTable{
		byDigest: make(map[SessionDigest]sessionRec),
		dead:     make(map[SessionDigest]deadSession),
		byUser:   make(map[UserID]map[SessionDigest]struct{}),
		intern:   make(map[clientInfo]*clientInfo),
		owners:   make(ownerCounts),
	}
}

func (t *sessionTable) internClient(ip, ua string) *clientInfo {
	k := clientInfo{ip, ua}
	if v, ok := t.intern[k]; ok {
		return v
	}
	v := &k
	if len(t.intern) < maxInterned && len(ip)+len(ua) <= 1024 {
		t.intern[k] = v
	}
	return v
}

func (t *sessionTable) put(d SessionDigest, r sessionRec) {
	if old, ok := t.byDigest[d]; ok && old.user != r.user {
		t.unindex(d, old.user)
	}
	if old, ok := t.dead[d]; ok {
		delete(t.dead, d)
		t.unindex(d, old.user)
	}
	t.byDigest[d] = r
	t.index(d, r.user)
}

func (t *sessionTable) index(d SessionDigest, user UserID) {
	if user == AnonymousID {
		return
	}
	set := t.byUser[user]
	if set == nil {
		set = make(map[SessionDigest]struct{})
		t.byUser[user] = set
	}
	set[d] = struct{}{}
}

// bury moves the expired session d from byDigest to dead, dropping all but
// its user and expiry. The user index is unchanged.
func (t *sessionTable) bury(d SessionDigest, r sessionRec) {
	delete(t.byDigest, d)
	t.dead[d] = deadSession{user: r.user, expires: r.expires}
}

func (t *sessionTable) unindex(d SessionDigest, user UserID) {
	if set := t.byUser[user]; set != nil {
		delete(set, d)
		if len(set) == 0 {
			delete(t.byUser, user)
		}
	}
}

// remove deletes session d, live or dead. A dead one comes back with only
// its user and expiry (and no client: see view).
func (t *sessionTable) remove(d SessionDigest) (sessionRec, bool) {
	if r, ok := t.byDigest[d]; ok {
		delete(t.byDigest, d)
		t.unindex(d, r.user)
		return r, true
	}
	if r, ok := t.dead[d]; ok {
		delete(t.dead, d)
		t.unindex(d, r.user)
		return sessionRec{user: r.user, expires: r.expires, client: &noClient}, true
	}
	return sessionRec{}, false
}

// noClient stands for the forgotten client of a dead session.
var noClient clientInfo

// count returns the number of sessions held, live and dead.
func (t *sessionTable) count() int { return len(t.byDigest) + len(t.dead) }

// NewSession is what a caller supplies to create a session.
type NewSession struct {
	UserID    UserID
	IPAddress string
	UserAgent string
	Expires   time.Time
	ExtraInfo json.RawMessage
}

// CreateSession stores a new session under digest d. A digest collision with
// a live session is impossible in practice (256-bit random tokens); if it
// happens the old record is replaced.
func (s *Shard) CreateSession(d SessionDigest, n NewSession, now time.Time) (Session, []Mutation) {
	r := sessionRec{
		user: n.UserID, created: now.UnixMicro(), expires: n.Expires.UnixMicro(),
		client: s.sessions.internClient(n.IPAddress, n.UserAgent), extra: string(validJSONOrNil(n.ExtraInfo)),
	}
	s.sessions.put(d, r)
	return r.view(d), []Mutation{putSession(d, &r)}
}

func validJSONOrNil(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return b
}

// LookupSession returns the live session with digest d. A session is live
// while its expiry is after now (strict comparison). An expired
// session met here leaves memory at once (see deadSession); that changes
// nothing on disk, so there is nothing to persist.
func (s *Shard) LookupSession(d SessionDigest, now time.Time) (Session, error) {
	r, ok := s.sessions.byDigest[d]
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	if r.expires <= now.UnixMicro() {
		s.sessions.bury(d, r)
		return Session{}, ErrSessionNotFound
	}
	return r.view(d), nil
}

// DeleteSession deletes the session with digest d, expired or not, and
// returns the deleted record (of an expired one, only its user, digest and
// expiry).
func (s *Shard) DeleteSession(d SessionDigest) (Session, []Mutation, error) {
	r, ok := s.sessions.remove(d)
	if !ok {
		return Session{}, nil, ErrSessionNotFound
	}
	return r.view(d), []Mutation{{Key: sessionKey(d)}}, nil
}

// DeleteUserSessions deletes every session of user id held by this shard
// except keep (when keep is non-nil), and returns how many it deleted.
func (s *Shard) DeleteUserSessions(id UserID, keep *SessionDigest) (int, []Mutation) {
	var victims []SessionDigest
	if id == AnonymousID {
		for d, r := range s.sessions.byDigest {
			if r.user == id {
				victims = append(victims, d)
			}
		}
		for d, r := range s.sessions.dead {
			if r.user == id {
				victims = append(victims, d)
			}
		}
	} else {
		for d := range s.sessions.byUser[id] {
			victims = append(victims, d)
		}
	}
	var muts []Mutation
	for _, d := range victims {
		if keep != nil && d == *keep {
			continue
		}
		s.sessions.remove(d)
		muts = append(muts, Mutation{Key: sessionKey(d)})
	}
	return len(muts), muts
}

// UserSessions returns the live sessions of user id held by this shard, in
// no order (none for the anonymous user: its sessions are not indexed, and
// have no cap).
func (s *Shard) UserSessions(id UserID, now time.Time) []OwnedItem {
	nowUS := now.UnixMicro()
	var out []OwnedItem
	for d := range s.sessions.byUser[id] {
		if r, ok := s.sessions.byDigest[d]; ok && r.expires > nowUS {
			out = append(out, OwnedItem{Created: time.UnixMicro(r.created).UTC(), Session: d})
		}
	}
	return out
}

// EditSessionExtra replaces the extra info of the live session d with the
// result of edit, which gets the current value (nil for null).
func (s *Shard) EditSessionExtra(d SessionDigest, now time.Time, edit func(old json.RawMessage) (json.RawMessage, error)) (Session, []Mutation, error) {
	r, ok := s.sessions.byDigest[d]
	if !ok {
		return Session{}, nil, ErrSessionNotFound
	}
	if r.expires <= now.UnixMicro() {
		s.sessions.bury(d, r)
		return Session{}, nil, ErrSessionNotFound
	}
	var old json.RawMessage
	if r.extra != "" {
		old = json.RawMessage(r.extra)
	}
	extra, err := edit(old)
	if err != nil {
		return Session{}, nil, err
	}
	r.extra = string(validJSONOrNil(extra))
	s.sessions.put(d, r)
	return r.view(d), []Mutation{putSession(d, &r)}, nil
}

// SweepSessions moves sessions that have expired by now out of memory (see
// deadSession) and deletes, in memory and on disk, those that expired more
// than the retention period before now. It looks at no more than limit
// sessions of each state, live and dead (0: all), so that one sweep costs a
// bounded part of a shard actor's turn however many sessions the shard
// holds (a full scan of 125,000 takes milliseconds, and session checks of
// the shard wait behind it). Go starts each map iteration at a random
// place, so successive sweeps look at different stretches and, in about
// len/limit sweeps, at each session. Expired sessions are refused by
// lookups at once, and a lookup that meets one moves it out of memory; the
// sweep finds the others.
func (s *Shard) SweepSessions(now time.Time, limit int) []Mutation {
	return s.sweepSessions(now, now.Add(-s.opts.SessionRetention), limit)
}

// PurgeSessions deletes every session that expired more than olderThan
// before now, whatever the retention period (the admin command
// purge-sessions).
func (s *Shard) PurgeSessions(now time.Time, olderThan time.Duration) []Mutation {
	return s.sweepSessions(now, now.Add(-olderThan), 0)
}

// sweepSessions deletes the sessions that expired before cutoff and moves
// those expired by now out of memory.
func (s *Shard) sweepSessions(now, cutoff time.Time, limit int) []Mutation {
	t := &s.sessions
	nowUS, cutoffUS := now.UnixMicro(), cutoff.UnixMicro()
	var muts []Mutation
	scanned := 0
	for d, r := range t.byDigest {
		switch {
		case r.expires < cutoffUS:
			t.remove(d)
			muts = append(muts, Mutation{Key: sessionKey(d)})
		case r.expires <= nowUS:
			t.bury(d, r)
		}
		if scanned++; limit > 0 && scanned >= limit {
			break
		}
	}
	scanned = 0
	for d, r := range t.dead {
		if r.expires < cutoffUS {
			t.remove(d)
			muts = append(muts, Mutation{Key: sessionKey(d)})
		}
		if scanned++; limit > 0 && scanned >= limit {
			break
		}
	}
	return muts
}

// SessionCounts reports how many sessions the shard holds in memory as
// full records (live, or expired and not yet seen so) and as the remains of
// expired ones.
func (s *Shard) SessionCounts() (full, dead int) {
	return len(s.sessions.byDigest), len(s.sessions.dead)
}

// Stored session records are binary, not JSON: a restart loads millions of
// them, and this decodes in about a tenth of the time.
//
//	version byte (1) | uvarint user | varint created µs | varint expires µs |
//	uvarint len, ip | uvarint len, user agent | uvarint len, extra JSON
const sessionRecordV1 = 1

func putSession(d SessionDigest, r *sessionRec) Mutation {
	v := make([]byte, 0, 1+3*binary.MaxVarintLen64+3*binary.MaxVarintLen32+len(r.client.ip)+len(r.client.ua)+len(r.extra))
	v = append(v, sessionRecordV1)
	v = binary.AppendUvarint(v, uint64(r.user))
	v = binary.AppendVarint(v, r.created)
	v = binary.AppendVarint(v, r.expires)
	for _, f := range [...]string{r.client.ip, r.client.ua, r.extra} {
		v = binary.AppendUvarint(v, uint64(len(f)))
		v = append(v, f...)
	}
	return Mutation{Key: sessionKey(d), Value: v}
}

// maxSessionField bounds a field of a stored session record.
const maxSessionField = 1 << 20

func (t *sessionTable) decodeSession(v []byte) (sessionRec, error) {
	p, err := parseSession(v)
	if err != nil {
		return sessionRec{}, err
	}
	r := sessionRec{user: p.user, created: p.created, expires: p.expires}
	r.client = t.internClient(string(p.fields[0]), string(p.fields[1]))
	if len(p.fields[2]) > 0 && json.Valid(p.fields[2]) {
		r.extra = string(p.fields[2])
	}
	return r, nil
}

// parsedSession is a stored session record split into its fields (slices
// of the value).
type parsedSession struct {
	user             UserID
	created, expires int64
	fields           [3][]byte // client address, user agent, extra info JSON
}

func parseSession(v []byte) (parsedSession, error) {
	var r parsedSession
	bad := func(what string) (parsedSession, error) {
		return parsedSession{}, fmt.Errorf("%w: session record: %s", ErrBadRecord, what)
	}
	if len(v) == 0 || v[0] != sessionRecordV1 {
		return bad("unknown version")
	}
	v = v[1:]
	u, n := binary.Uvarint(v)
	if n <= 0 || u == 0 || u > 1<<62 {
		return bad("user")
	}
	r.user, v = UserID(u), v[n:]
	if r.created, n = binary.Varint(v); n <= 0 {
		return bad("created")
	}
	v = v[n:]
	if r.expires, n = binary.Varint(v); n <= 0 {
		return bad("expires")
	}
	v = v[n:]
	for i := range r.fields {
		l, n := binary.Uvarint(v)
		if n <= 0 || l > maxSessionField || l > uint64(len(v)-n) {
			return bad("field length")
		}
		r.fields[i], v = v[n:n+int(l)], v[n+int(l):]
	}
	if len(v) != 0 {
		return bad("trailing bytes")
	}
	return r, nil
}

func (s *Shard) loadSession(key, value []byte) error {
	if len(key) != len(prefixSession)+len(SessionDigest{}) {
		return fmt.Errorf("%w: session key of %d bytes", ErrBadRecord, len(key))
	}
	r, err := s.sessions.decodeSession(value)
	if err != nil {
		return err
	}
	var d SessionDigest
	copy(d[:], key[len(prefixSession):])
	s.sessions.put(d, r)
	return nil
}
