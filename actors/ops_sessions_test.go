package actors

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// sampleSessionOps holds one operation of each type of ops_sessions.go, for the codec
// tests (ops_test.go), with fields set to values a careless codec would lose.
func sampleSessionOps() []broadcastOp {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)
	d := shard.DigestSession("a session token")
	return []broadcastOp{
		SessionCheck{Digest: d},
		SessionUser{Session: shard.Session{
			Digest: d, UserID: 42, IPAddress: "192.0.2.7", UserAgent: "ua", Created: t0, Expires: t0.Add(time.Hour),
			ExtraInfo: json.RawMessage(`{"k":"v"}`),
		}},
		CreateSession{
			Digest: d, UserID: 1<<62 + 3, IPAddress: "2001:db8::1", UserAgent: "Mozilla/5.0 \u2028 \"x\" <é>",
			Expires: t0.Add(30 * 24 * time.Hour), ExtraInfo: json.RawMessage(`{"a":[1,{"b":null}],"ü":"\u2029"}`),
		},
		CreateSession{Digest: d, UserID: shard.AnonymousID, Expires: t0},
		GetSession{Digest: d},
		DeleteSession{Digest: shard.DigestSession("")},
		SetSessionExtra{Digest: d, ExtraInfo: json.RawMessage(`{"k":"v"}`)},
		MergeSessionExtra{
			Digest: d, MaxBytes: 16 << 10,
			Update: map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`"__delete__"`), "c": json.RawMessage(`null`)},
		},
		DeleteUserSessions{UserID: 1<<62 + 1, Keep: d, KeepOne: true},
		NoteOwned{UserID: 7, Kind: shard.OwnedNoSessionKeys, Limit: 100},
		ListOwned{UserID: 1 << 40, Kind: shard.OwnedSessionKeys},
		DeleteOwned{Item: shard.OwnedItem{Created: t0, Key: shard.DigestAPIKey("tkn"), KeyKind: shard.KeyNoSession, IsAPIKey: true}},
		DeleteOwned{Item: shard.OwnedItem{Created: t0.Add(time.Microsecond), Session: d}},
		SetOwnedCount{UserID: 9, Kind: shard.OwnedSessionKeys, Count: 99, Gen: 1<<40 + 1},
	}
}

// sessionTestWrites is an Enqueuer that counts the records written and
// deleted, and releases every ticket at once.
type sessionTestWrites struct {
	mu         sync.Mutex
	puts, dels int
}

func (w *sessionTestWrites) Enqueue(ops ...persist.Op) *persist.Ticket {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range ops {
		if op.Value == nil {
			w.dels++
		} else {
			w.puts++
		}
	}
	return persist.DoneTicket()
}

func (w *sessionTestWrites) counts() (puts, dels int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.puts, w.dels
}

// sessionTestLoader is a store holding the records of muts, for starting a
// core with state the operations of this file cannot make (API keys).
type sessionTestLoader []shard.Mutation

func (l sessionTestLoader) Scan(prefix []byte, fn func(key, value []byte) error) error {
	sorted := append([]shard.Mutation(nil), l...)
	sort.Slice(sorted, func(i, j int) bool { return string(sorted[i].Key) < string(sorted[j].Key) })
	for _, m := range sorted {
		if !strings.HasPrefix(string(m.Key), string(prefix)) {
			continue
		}
		if err := fn(m.Key, m.Value); err != nil {
			return err
		}
	}
	return nil
}

// sessionTestT0 is the clock of the cores of this file's tests.
var sessionTestT0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// startSessionCore starts a core of 4 shards at sessionTestT0, loaded from
// load (nil: empty), that writes to the returned log.
func startSessionCore(t *testing.T, load Loader) (*Core, *sessionTestWrites) {
	t.Helper()
	w := &sessionTestWrites{}
	c, err := Start(NewActorSystem(nil), load, w, Options{Shards: 4, Now: func() time.Time { return sessionTestT0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c, w
}

// newTestSession creates a session of uid with extra info and returns its
// digest; a negative ttl makes it expired.
func askNewSession(t *testing.T, c *Core, token string, uid shard.UserID, ttl time.Duration, extra string) shard.SessionDigest {
	t.Helper()
	d := shard.DigestSession(token)
	op := CreateSession{Digest: d, UserID: uid, IPAddress: "192.0.2.1", UserAgent: "test", Expires: sessionTestT0.Add(ttl)}
	if extra != "" {
		op.ExtraInfo = json.RawMessage(extra)
	}
	res, err := Ask[shard.Session](c, op)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if res.Ticket == nil || res.Durable() != nil {
		t.Fatalf("CreateSession: ticket %v; want a released ticket", res.Ticket)
	}
	if got := res.Value; got.Digest != d || got.UserID != uid || got.IPAddress != "192.0.2.1" || got.UserAgent != "test" ||
		!got.Created.Equal(sessionTestT0) || !got.Expires.Equal(op.Expires) || string(got.ExtraInfo) != extra {
		t.Fatalf("CreateSession answered %+v; want the stored session of %+v", got, op)
	}
	return d
}

// The extra-info edits that session-setinfo and internal-session-edit
// send: the merge rule and its bound run on the session's shard.
func TestSessionExtraOps(t *testing.T) {
	tests := []struct {
		name    string
		old     string        // the session's extra info ("": null)
		ttl     time.Duration // of the session; <= 0: expired
		missing bool          // no session at all
		op      func(d shard.SessionDigest) Op
		want    string // the extra info answered and stored
		wantErr error  // then the stored extra info is old
	}{
		{
			name: "merge into null", ttl: time.Hour,
			op:   mergeExtraOp(0, `{"a":1}`),
			want: `{"a":1}`,
		},
		{
			name: "merge sets and overrides keys", old: `{"a":1,"b":2}`, ttl: time.Hour,
			op:   mergeExtraOp(0, `{"b":{"c":[3]},"d":"x"}`),
			want: `{"a":1,"b":{"c":[3]},"d":"x"}`,
		},
		{
			name: "the delete marker removes a key", old: `{"a":1,"b":2}`, ttl: time.Hour,
			op:   mergeExtraOp(0, `{"a":"__delete__"}`),
			want: `{"b":2}`,
		},
		{
			name: "an escaped delete marker removes a key", old: `{"a":1,"b":2}`, ttl: time.Hour,
			op:   mergeExtraOp(0, `{"b":"\u005f_delete__"}`),
			want: `{"a":1}`,
		},
		{
			name: "deleting an absent key stores nothing", old: `{"a":1}`, ttl: time.Hour,
			op:   mergeExtraOp(0, `{"z":"__delete__"}`),
			want: `{"a":1}`,
		},
		{
			name: "a null value is kept", old: `{"a":1}`, ttl: time.Hour,
			op:   mergeExtraOp(0, `{"a":null}`),
			want: `{"a":null}`,
		},
		{
			name: "an old value that is not an object counts as {}", old: `[1,2]`, ttl: time.Hour,
			op:   mergeExtraOp(0, `{"a":true}`),
			want: `{"a":true}`,
		},
		{
			name: "a merge exactly at the bound", old: `{"a":1}`, ttl: time.Hour,
			op:   mergeExtraOp(len(`{"a":1,"b":2}`), `{"b":2}`),
			want: `{"a":1,"b":2}`,
		},
		{
			name: "a merge over the bound changes nothing", old: `{"a":1}`, ttl: time.Hour,
			op:      mergeExtraOp(len(`{"a":1,"b":2}`)-1, `{"b":2}`),
			wantErr: ErrSessionExtraTooLarge,
		},
		{
			name: "a deletion shrinks below the bound", old: `{"a":1,"b":2}`, ttl: time.Hour,
			op:   mergeExtraOp(len(`{"b":2}`), `{"a":"__delete__"}`),
			want: `{"b":2}`,
		},
		{
			name: "merge into an expired session", old: `{"a":1}`, ttl: -time.Second,
			op:      mergeExtraOp(0, `{"b":2}`),
			wantErr: shard.ErrSessionNotFound,
		},
		{
			name: "merge into no session", missing: true,
			op:      mergeExtraOp(0, `{"b":2}`),
			wantErr: shard.ErrSessionNotFound,
		},
		{
			name: "set replaces the whole value", old: `{"a":1,"b":2}`, ttl: time.Hour,
			op:   setExtraOp(`{"c":3}`),
			want: `{"c":3}`,
		},
		{
			name: "set to nothing stores null", old: `{"a":1}`, ttl: time.Hour,
			op:   setExtraOp(""),
			want: "",
		},
		{
			name: "set of an expired session", old: `{"a":1}`, ttl: 0,
			op:      setExtraOp(`{"c":3}`),
			wantErr: shard.ErrSessionNotFound,
		},
		{
			name: "set of no session", missing: true,
			op:      setExtraOp(`{"c":3}`),
			wantErr: shard.ErrSessionNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, w := startSessionCore(t, nil)
			d := shard.DigestSession("token")
			if !tt.missing {
				d = askNewSession(t, c, "token", 42, tt.ttl, tt.old)
			}
			putsBefore, _ := w.counts()
			res, err := Ask[shard.Session](c, tt.op(d))
			putsAfter, _ := w.counts()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v; want %v", err, tt.wantErr)
				}
				if putsAfter != putsBefore {
					t.Errorf("got %d records written; want none", putsAfter-putsBefore)
				}
				if tt.ttl > 0 {
					if got, err := Ask[shard.Session](c, GetSession{Digest: d}); err != nil || string(got.Value.ExtraInfo) != tt.old {
						t.Errorf("after the refused edit: %s, %v; want the old %s", got.Value.ExtraInfo, err, tt.old)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if got := string(res.Value.ExtraInfo); got != tt.want {
				t.Errorf("answered extra info %s; want %s", got, tt.want)
			}
			if res.Value.Digest != d || res.Value.UserID != 42 || res.Value.IPAddress != "192.0.2.1" {
				t.Errorf("answered %+v; want the edited session", res.Value)
			}
			if res.Ticket == nil || putsAfter != putsBefore+1 {
				t.Errorf("got ticket %v and %d records written; want one, durable", res.Ticket, putsAfter-putsBefore)
			}
			got, err := Ask[shard.Session](c, GetSession{Digest: d})
			if err != nil || string(got.Value.ExtraInfo) != tt.want {
				t.Errorf("stored extra info %s, %v; want %s", got.Value.ExtraInfo, err, tt.want)
			}
		})
	}
}

// mergeExtraOp returns a MergeSessionExtra of the JSON object update, bounded to
// maxBytes.
func mergeExtraOp(maxBytes int, update string) func(d shard.SessionDigest) Op {
	return func(d shard.SessionDigest) Op {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(update), &m); err != nil {
			panic(err)
		}
		return MergeSessionExtra{Digest: d, Update: m, MaxBytes: maxBytes}
	}
}

// setExtraOp returns a SetSessionExtra of extra ("": nil).
func setExtraOp(extra string) func(d shard.SessionDigest) Op {
	return func(d shard.SessionDigest) Op {
		op := SetSessionExtra{Digest: d}
		if extra != "" {
			op.ExtraInfo = json.RawMessage(extra)
		}
		return op
	}
}

// GetSession and DeleteSession, as user-login, session-delete and the
// lookups of the user requests send them.
func TestSessionLookupAndDelete(t *testing.T) {
	c, w := startSessionCore(t, nil)
	live := askNewSession(t, c, "live", 5, time.Hour, `{"a":1}`)
	expired := askNewSession(t, c, "expired", 5, -time.Hour, "")
	nobody := shard.DigestSession("nobody")

	tests := []struct {
		name        string
		d           shard.SessionDigest
		wantFound   bool // GetSession before the delete
		wantDeleted bool
	}{
		{"a live session", live, true, true},
		{"an expired session is not found but is deleted", expired, false, true},
		{"no session", nobody, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Ask[shard.Session](c, GetSession{Digest: tt.d})
			switch {
			case tt.wantFound && (err != nil || got.Value.Digest != tt.d || got.Value.UserID != 5 || string(got.Value.ExtraInfo) != `{"a":1}`):
				t.Fatalf("GetSession = %+v, %v; want the session", got.Value, err)
			case !tt.wantFound && !errors.Is(err, shard.ErrSessionNotFound):
				t.Fatalf("GetSession = %+v, %v; want ErrSessionNotFound", got.Value, err)
			}
			_, delsBefore := w.counts()
			del, err := Ask[bool](c, DeleteSession{Digest: tt.d})
			if err != nil || del.Value != tt.wantDeleted {
				t.Fatalf("DeleteSession = %v, %v; want %v", del.Value, err, tt.wantDeleted)
			}
			if _, delsAfter := w.counts(); tt.wantDeleted && (del.Ticket == nil || delsAfter != delsBefore+1) {
				t.Errorf("DeleteSession: ticket %v, %d records deleted; want one, durable", del.Ticket, delsAfter-delsBefore)
			}
			if _, err := Ask[shard.Session](c, GetSession{Digest: tt.d}); !errors.Is(err, shard.ErrSessionNotFound) {
				t.Errorf("GetSession after the delete: %v; want ErrSessionNotFound", err)
			}
			if again, _ := Ask[bool](c, DeleteSession{Digest: tt.d}); again.Value {
				t.Errorf("a second DeleteSession answered true")
			}
		})
	}
}

// DeleteUserSessions reaches every shard, deletes the user's sessions live
// and expired, and spares the kept one and other users'.
func TestDeleteUserSessionsOp(t *testing.T) {
	const user, other = shard.UserID(7), shard.UserID(8)
	tests := []struct {
		name    string
		uid     shard.UserID
		keep    bool // keep the user's first session
		want    int
		wantSum int // sessions left of user and other, anonymous excluded
	}{
		{"every session of the user", user, false, 13, 2},
		{"all but the kept one", user, true, 12, 3},
		{"anonymous sessions, unindexed", shard.AnonymousID, false, 2, 15},
		{"a user with none", 99, false, 0, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, w := startSessionCore(t, nil)
			var mine []shard.SessionDigest
			for i := range 12 {
				mine = append(mine, askNewSession(t, c, "user-"+string(rune('a'+i)), user, time.Hour, ""))
			}
			mine = append(mine, askNewSession(t, c, "user-expired", user, -time.Hour, ""))
			theirs := []shard.SessionDigest{
				askNewSession(t, c, "other-1", other, time.Hour, ""),
				askNewSession(t, c, "other-2", other, time.Hour, ""),
			}
			askNewSession(t, c, "anon-1", shard.AnonymousID, time.Hour, "")
			askNewSession(t, c, "anon-2", shard.AnonymousID, time.Hour, "")

			op := DeleteUserSessions{UserID: tt.uid}
			if tt.keep {
				op.Keep, op.KeepOne = mine[0], true
			}
			_, delsBefore := w.counts()
			rs, err := AskAll[int](c, op)
			if err != nil || len(rs) != c.NumShards() {
				t.Fatalf("AskAll: %d results, %v; want one of each of %d shards", len(rs), err, c.NumShards())
			}
			n := 0
			for i, r := range rs {
				n += r.Value
				if r.Value > 0 && r.Ticket == nil {
					t.Errorf("shard %d deleted %d without a ticket", i, r.Value)
				}
			}
			if err := WaitAll(rs); err != nil {
				t.Fatal(err)
			}
			if _, delsAfter := w.counts(); n != tt.want || delsAfter-delsBefore != tt.want {
				t.Errorf("deleted %d (%d records); want %d", n, delsAfter-delsBefore, tt.want)
			}
			left := 0
			for _, d := range append(mine[:12:12], theirs...) {
				if _, err := Ask[shard.Session](c, GetSession{Digest: d}); err == nil {
					left++
				}
			}
			// The expired one is not live either way: count it by deleting it.
			if del, _ := Ask[bool](c, DeleteSession{Digest: mine[12]}); del.Value {
				left++
			}
			if left != tt.wantSum {
				t.Errorf("%d sessions of users 7 and 8 left; want %d", left, tt.wantSum)
			}
			if tt.keep {
				if _, err := Ask[shard.Session](c, GetSession{Digest: mine[0]}); err != nil {
					t.Errorf("the kept session: %v; want it live", err)
				}
			}
		})
	}
}

// The cap operations: notes on the user's shard, a listing of each kind on
// every shard, and deletions of sessions and keys on their own shards.
func TestOwnedOps(t *testing.T) {
	const uid = shard.UserID(11)
	// API keys come from the store: this file has no operation that makes one.
	scratch := shard.New(shard.Options{})
	var store sessionTestLoader
	keyOf := map[shard.OwnedKind][]shard.APIKeyDigest{}
	for i, n := range []shard.NewAPIKey{
		{Kind: shard.KeySession, UserID: uid, Role: "authenticated", Lifetime: time.Hour, SessionExpires: sessionTestT0.Add(time.Hour)},
		{Kind: shard.KeySession, UserID: uid, Role: "authenticated", Lifetime: time.Hour, SessionExpires: sessionTestT0.Add(time.Hour)},
		{Kind: shard.KeySession, UserID: uid, Role: "authenticated", Lifetime: time.Hour, SessionExpires: sessionTestT0.Add(-time.Minute)}, // dead
		{Kind: shard.KeyNoSession, UserID: uid, Role: "authenticated", Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour},
		{Kind: shard.KeyNoSession, UserID: uid + 1, Role: "authenticated", Lifetime: time.Hour, RefreshPHC: "$argon2id$x", RefreshLifetime: time.Hour},
	} {
		d := shard.DigestAPIKey("key-" + string(rune('a'+i)))
		_, muts, err := scratch.CreateAPIKey(d, n, sessionTestT0.Add(-time.Duration(10-i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		store = append(store, muts...)
		if n.UserID == uid && i != 2 {
			keyOf[shard.OwnedKeys(n.Kind)] = append(keyOf[shard.OwnedKeys(n.Kind)], d)
		}
	}
	c, w := startSessionCore(t, store)
	var sessions []shard.SessionDigest
	for i := range 5 {
		sessions = append(sessions, askNewSession(t, c, "owned-"+string(rune('a'+i)), uid, time.Hour, ""))
	}
	askNewSession(t, c, "owned-expired", uid, -time.Hour, "")

	tests := []struct {
		name string
		kind shard.OwnedKind
		want int // live items of uid of kind
	}{
		{"sessions", shard.OwnedSessions, 5},
		{"session-tied keys", shard.OwnedSessionKeys, 2},
		{"no-session keys", shard.OwnedNoSessionKeys, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const limit = 1
			// Nothing is known since start: the first note asks for a count.
			note, err := Ask[OwnedNote](c, NoteOwned{UserID: uid, Kind: tt.kind, Limit: limit})
			if err != nil || !note.Value.Recount || note.Value.Gen != 1 {
				t.Fatalf("first NoteOwned = %+v, %v; want recount, gen 1", note.Value, err)
			}
			rs, err := AskAll[[]shard.OwnedItem](c, ListOwned{UserID: uid, Kind: tt.kind})
			if err != nil {
				t.Fatal(err)
			}
			var items []shard.OwnedItem
			for _, r := range rs {
				items = append(items, r.Value...)
			}
			if len(items) != tt.want {
				t.Fatalf("ListOwned: %d items; want %d", len(items), tt.want)
			}
			for _, it := range items {
				if it.IsAPIKey != (tt.kind != shard.OwnedSessions) || (it.IsAPIKey && shard.OwnedKeys(it.KeyKind) != tt.kind) ||
					(it.IsAPIKey && !slices.Contains(keyOf[tt.kind], it.Key)) || (!it.IsAPIKey && !slices.Contains(sessions, it.Session)) {
					t.Errorf("ListOwned of %v answered %+v, not a live item of the user", tt.kind, it)
				}
			}
			// Delete all but the newest, as the front does over the cap.
			sort.Slice(items, func(i, j int) bool { return items[i].Created.Before(items[j].Created) })
			victims := items[:len(items)-limit]
			_, delsBefore := w.counts()
			for _, it := range victims {
				res, err := Ask[any](c, DeleteOwned{Item: it})
				if err != nil || res.Ticket == nil {
					t.Fatalf("DeleteOwned(%+v): ticket %v, %v; want a durable deletion", it, res.Ticket, err)
				}
			}
			if _, delsAfter := w.counts(); delsAfter-delsBefore != tt.want-limit {
				t.Errorf("%d records deleted; want %d", delsAfter-delsBefore, tt.want-limit)
			}
			// Deleting what is gone does nothing.
			for _, it := range victims {
				if res, err := Ask[any](c, DeleteOwned{Item: it}); err != nil || res.Ticket != nil {
					t.Errorf("second DeleteOwned(%+v): ticket %v, %v; want nothing written", it, res.Ticket, err)
				}
			}
			rs, _ = AskAll[[]shard.OwnedItem](c, ListOwned{UserID: uid, Kind: tt.kind})
			n := 0
			for _, r := range rs {
				n += len(r.Value)
			}
			if n != limit {
				t.Errorf("after the deletions ListOwned counts %d; want %d", n, limit)
			}
			// Once the count is set, a note within the cap needs no count,
			// and one past it does.
			if _, err := Ask[any](c, SetOwnedCount{UserID: uid, Kind: tt.kind, Count: n, Gen: note.Value.Gen}); err != nil {
				t.Fatal(err)
			}
			if note, err := Ask[OwnedNote](c, NoteOwned{UserID: uid, Kind: tt.kind, Limit: limit + 1}); err != nil || note.Value.Recount || note.Value.Gen != 2 {
				t.Errorf("NoteOwned within the cap = %+v, %v; want no recount, gen 2", note.Value, err)
			}
			if note, err := Ask[OwnedNote](c, NoteOwned{UserID: uid, Kind: tt.kind, Limit: limit + 1}); err != nil || !note.Value.Recount {
				t.Errorf("NoteOwned past the cap = %+v, %v; want recount", note.Value, err)
			}
		})
	}
	// The other user's key and the counts of other users were not touched.
	rs, _ := AskAll[[]shard.OwnedItem](c, ListOwned{UserID: uid + 1, Kind: shard.OwnedNoSessionKeys})
	n := 0
	for _, r := range rs {
		n += len(r.Value)
	}
	if n != 1 {
		t.Errorf("the other user has %d no-session keys; want 1", n)
	}
}
