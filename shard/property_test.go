package shard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/authnzerver/authnzerver/shard"
)

// The property test drives one Shard with random sequences of operations
// (sessions, users, email claims, time passing, sweeps, restarts) and
// compares every answer with a plain-map model. Every mutation the shard
// returns is applied to a fake disk; a "restart" rebuilds the shard by
// loading that disk, so the test also proves that what a shard persists is
// exactly what it holds in memory.

type mSession struct {
	uid     shard.UserID
	expires time.Time
	extra   string // "" for none
}

type mUser struct {
	email, name, role string
}

type model struct {
	now      time.Time
	sessions map[string]mSession // by token
	users    map[shard.UserID]mUser
	emails   map[string]shard.UserID
}

const retention = time.Hour

var (
	tokens = []string{"t0", "t1", "t2", "t3", "t4", "t5"}
	emails = []string{"a@x.org", "b@x.org", "c@x.org"}
	errNo  = errors.New("edit refused")
)

type machine struct {
	s    *shard.Shard
	m    model
	disk map[string][]byte
}

func (k *machine) apply(t *rapid.T, muts []shard.Mutation) {
	for _, mu := range muts {
		if mu.Value == nil {
			delete(k.disk, string(mu.Key))
		} else {
			k.disk[string(mu.Key)] = bytes.Clone(mu.Value)
		}
	}
}

func drawUID(t *rapid.T, label string) shard.UserID {
	return shard.UserID(rapid.IntRange(1, 6).Draw(t, label))
}

func (k *machine) createSession(t *rapid.T) {
	tok := rapid.SampledFrom(tokens).Draw(t, "token")
	uid := drawUID(t, "uid")
	exp := k.m.now.Add(time.Duration(rapid.IntRange(-7200, 7200).Draw(t, "expires_s")) * time.Second)
	extra := ""
	if rapid.Bool().Draw(t, "has_extra") {
		extra = fmt.Sprintf(`{"n":%d}`, rapid.IntRange(0, 99).Draw(t, "n"))
	}
	got, muts := k.s.CreateSession(shard.DigestSession(tok), shard.NewSession{UserID: uid, IPAddress: "1.2.3.4", Expires: exp, ExtraInfo: raw(extra)}, k.m.now)
	k.apply(t, muts)
	if got.UserID != uid || !got.Expires.Equal(exp) || !got.Created.Equal(k.m.now) {
		t.Fatalf("CreateSession returned %+v; want uid %d expires %v", got, uid, exp)
	}
	k.m.sessions[tok] = mSession{uid: uid, expires: exp, extra: extra}
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func (k *machine) lookupSession(t *rapid.T) {
	tok := rapid.SampledFrom(tokens).Draw(t, "token")
	got, err := k.s.LookupSession(shard.DigestSession(tok), k.m.now)
	want, ok := k.m.sessions[tok]
	live := ok && want.expires.After(k.m.now)
	if !live {
		if !errors.Is(err, shard.ErrSessionNotFound) {
			t.Fatalf("LookupSession(%s) = %+v, %v; want not found", tok, got, err)
		}
		return
	}
	if err != nil || got.UserID != want.uid || !got.Expires.Equal(want.expires) || string(got.ExtraInfo) != want.extra {
		t.Fatalf("LookupSession(%s) = uid %d expires %v extra %q, %v; want %+v", tok, got.UserID, got.Expires, got.ExtraInfo, err, want)
	}
}

func (k *machine) deleteSession(t *rapid.T) {
	tok := rapid.SampledFrom(tokens).Draw(t, "token")
	_, muts, err := k.s.DeleteSession(shard.DigestSession(tok))
	k.apply(t, muts)
	_, ok := k.m.sessions[tok]
	if ok != (err == nil) {
		t.Fatalf("DeleteSession(%s) err %v; model has it: %v", tok, err, ok)
	}
	delete(k.m.sessions, tok)
}

func (k *machine) deleteUserSessions(t *rapid.T) {
	uid := drawUID(t, "uid")
	var keep *shard.SessionDigest
	keepTok := ""
	if rapid.Bool().Draw(t, "keep") {
		keepTok = rapid.SampledFrom(tokens).Draw(t, "keep_token")
		d := shard.DigestSession(keepTok)
		keep = &d
	}
	n, muts := k.s.DeleteUserSessions(uid, keep)
	k.apply(t, muts)
	want := 0
	for tok, s := range k.m.sessions {
		if s.uid == uid && tok != keepTok {
			want++
			delete(k.m.sessions, tok)
		}
	}
	if n != want {
		t.Fatalf("DeleteUserSessions(%d, keep %q) = %d; want %d", uid, keepTok, n, want)
	}
}

func (k *machine) editSession(t *rapid.T) {
	tok := rapid.SampledFrom(tokens).Draw(t, "token")
	refuse := rapid.Bool().Draw(t, "refuse")
	extra := fmt.Sprintf(`{"e":%d}`, rapid.IntRange(0, 99).Draw(t, "e"))
	got, muts, err := k.s.EditSessionExtra(shard.DigestSession(tok), k.m.now, func(json.RawMessage) (json.RawMessage, error) {
		if refuse {
			return nil, errNo
		}
		return json.RawMessage(extra), nil
	})
	k.apply(t, muts)
	want, ok := k.m.sessions[tok]
	live := ok && want.expires.After(k.m.now)
	switch {
	case !live:
		if !errors.Is(err, shard.ErrSessionNotFound) {
			t.Fatalf("EditSessionExtra(%s) on a dead session: %v; want not found", tok, err)
		}
	case refuse:
		if !errors.Is(err, errNo) || len(muts) != 0 {
			t.Fatalf("EditSessionExtra(%s) refused edit: %v, %d mutations; want errNo and none", tok, err, len(muts))
		}
	default:
		if err != nil || string(got.ExtraInfo) != extra {
			t.Fatalf("EditSessionExtra(%s) = %q, %v; want %s", tok, got.ExtraInfo, err, extra)
		}
		want.extra = extra
		k.m.sessions[tok] = want
	}
}

func (k *machine) advance(t *rapid.T) {
	k.m.now = k.m.now.Add(time.Duration(rapid.IntRange(1, 3*3600).Draw(t, "advance_s")) * time.Second)
}

func (k *machine) sweep(t *rapid.T) {
	muts := k.s.Sweep(k.m.now, 0)
	k.apply(t, muts)
	cutoff := k.m.now.Add(-retention)
	want := 0
	for tok, s := range k.m.sessions {
		if s.expires.Before(cutoff) {
			want++
			delete(k.m.sessions, tok)
		}
	}
	if len(muts) != want {
		t.Fatalf("Sweep deleted %d records; want %d", len(muts), want)
	}
}

func (k *machine) createUser(t *rapid.T) {
	uid := drawUID(t, "uid")
	u := mUser{email: rapid.SampledFrom(emails).Draw(t, "email"), name: rapid.StringMatching(`[a-z ]{0,8}`).Draw(t, "name"), role: rapid.SampledFrom([]string{"authenticated", "staff"}).Draw(t, "role")}
	_, muts, err := k.s.CreateUser(shard.User{ID: uid, Email: u.email, FullName: u.name, Role: u.role}, k.m.now)
	k.apply(t, muts)
	if _, exists := k.m.users[uid]; exists {
		if !errors.Is(err, shard.ErrUserExists) || len(muts) != 0 {
			t.Fatalf("CreateUser(%d) over an existing user: %v; want ErrUserExists", uid, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("CreateUser(%d): %v", uid, err)
	}
	k.m.users[uid] = u
}

func (k *machine) updateUser(t *rapid.T) {
	uid := drawUID(t, "uid")
	name := rapid.StringMatching(`[a-z]{0,8}`).Draw(t, "name")
	refuse := rapid.Bool().Draw(t, "refuse")
	_, muts, err := k.s.UpdateUser(uid, k.m.now, func(u *shard.User) error {
		if refuse {
			u.FullName = "never stored"
			return errNo
		}
		u.FullName = name
		u.ID = 999 // an edit may not move the record
		return nil
	})
	k.apply(t, muts)
	u, ok := k.m.users[uid]
	switch {
	case !ok:
		if !errors.Is(err, shard.ErrUserNotFound) {
			t.Fatalf("UpdateUser(%d) of a missing user: %v", uid, err)
		}
	case refuse:
		if !errors.Is(err, errNo) || len(muts) != 0 {
			t.Fatalf("UpdateUser(%d) refused: %v, %d mutations", uid, err, len(muts))
		}
	default:
		if err != nil {
			t.Fatalf("UpdateUser(%d): %v", uid, err)
		}
		u.name = name
		k.m.users[uid] = u
	}
}

func (k *machine) deleteUser(t *rapid.T) {
	uid := drawUID(t, "uid")
	_, muts, err := k.s.DeleteUser(uid)
	k.apply(t, muts)
	if _, ok := k.m.users[uid]; ok != (err == nil) {
		t.Fatalf("DeleteUser(%d): %v; model has it: %v", uid, err, ok)
	}
	delete(k.m.users, uid)
}

func (k *machine) claimEmail(t *rapid.T) {
	e := rapid.SampledFrom(emails).Draw(t, "email")
	uid := drawUID(t, "uid")
	owner, claimed, muts := k.s.ClaimEmail(e, uid)
	k.apply(t, muts)
	cur, held := k.m.emails[e]
	if held && cur != uid {
		if claimed || owner != cur || len(muts) != 0 {
			t.Fatalf("ClaimEmail(%s, %d) held by %d: got owner %d claimed %v", e, uid, cur, owner, claimed)
		}
		return
	}
	if !claimed || owner != uid {
		t.Fatalf("ClaimEmail(%s, %d) free: got owner %d claimed %v", e, uid, owner, claimed)
	}
	k.m.emails[e] = uid
}

func (k *machine) releaseEmail(t *rapid.T) {
	e := rapid.SampledFrom(emails).Draw(t, "email")
	uid := drawUID(t, "uid")
	k.apply(t, k.s.ReleaseEmail(e, uid))
	if cur, ok := k.m.emails[e]; ok && cur == uid {
		delete(k.m.emails, e)
	}
}

// restart rebuilds the shard from the fake disk, in key order as the
// store's scan gives it.
func (k *machine) restart(t *rapid.T) {
	keys := make([]string, 0, len(k.disk))
	for key := range k.disk {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	k.s = shard.New(shard.Options{SessionRetention: retention})
	for _, key := range keys {
		if err := k.s.Load([]byte(key), k.disk[key]); err != nil {
			t.Fatalf("Load(%q): %v", key, err)
		}
	}
}

// check compares the whole shard with the model after every step.
func (k *machine) check(t *rapid.T) {
	c := k.s.Counts()
	if c.Sessions != len(k.m.sessions) || c.Users != len(k.m.users) || c.Emails != len(k.m.emails) {
		t.Fatalf("Counts = %+v; model has %d sessions, %d users, %d emails", c, len(k.m.sessions), len(k.m.users), len(k.m.emails))
	}
	for uid, want := range k.m.users {
		u, err := k.s.GetUser(uid)
		if err != nil || u.ID != uid || u.Email != want.email || u.FullName != want.name || u.Role != want.role {
			t.Fatalf("GetUser(%d) = %+v, %v; want %+v", uid, u, err, want)
		}
	}
	for e, want := range k.m.emails {
		if got, ok := k.s.LookupEmail(e); !ok || got != want {
			t.Fatalf("LookupEmail(%s) = %d, %v; want %d", e, got, ok, want)
		}
	}
	for _, e := range emails {
		if _, held := k.m.emails[e]; !held {
			if got, ok := k.s.LookupEmail(e); ok {
				t.Fatalf("LookupEmail(%s) = %d; want unclaimed", e, got)
			}
		}
	}
	var top shard.UserID
	for uid := range k.m.users {
		top = max(top, uid)
	}
	if got := k.s.MaxUserID(); got != top {
		t.Fatalf("MaxUserID = %d; want %d", got, top)
	}
}

func TestShardMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := &machine{
			s:    shard.New(shard.Options{SessionRetention: retention}),
			disk: map[string][]byte{},
			m: model{
				now:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
				sessions: map[string]mSession{},
				users:    map[shard.UserID]mUser{},
				emails:   map[string]shard.UserID{},
			},
		}
		t.Repeat(map[string]func(*rapid.T){
			"":                   k.check,
			"createSession":      k.createSession,
			"lookupSession":      k.lookupSession,
			"deleteSession":      k.deleteSession,
			"deleteUserSessions": k.deleteUserSessions,
			"editSession":        k.editSession,
			"advance":            k.advance,
			"sweep":              k.sweep,
			"createUser":         k.createUser,
			"updateUser":         k.updateUser,
			"deleteUser":         k.deleteUser,
			"claimEmail":         k.claimEmail,
			"releaseEmail":       k.releaseEmail,
			"restart":            k.restart,
		})
	})
}
