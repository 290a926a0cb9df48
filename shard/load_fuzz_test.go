package shard

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzLoad feeds the persisted-record decoder arbitrary keys and values, as
// a corrupt or foreign store would: RouteOfKey and Shard.Load return an
// error or succeed, never panic, and a loaded shard still answers.
func FuzzLoad(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seed := New(Options{})
	d := DigestSession("tok")
	_, muts := seed.CreateSession(d, NewSession{UserID: 4, IPAddress: "1.2.3.4", UserAgent: "ua", Expires: now.Add(time.Hour), ExtraInfo: json.RawMessage(`{"a":1}`)}, now)
	_, umuts, _ := seed.CreateUser(User{ID: 4, Email: "a@b.c", Role: "authenticated", ExtraInfo: json.RawMessage(`{"x":[1]}`)}, now)
	_, _, emuts := seed.ClaimEmail("a@b.c", 4)
	smuts := seed.PutSocialState(DigestSession("state"), SocialState{Provider: "gh", Session: d, RedirectURI: "https://a.example/cb", Verifier: "v", Nonce: "n", Expires: now})
	_, _, imuts := seed.LinkIdentity(Identity{Provider: "gh", Subject: "1\x002", UserID: 4, Email: "a@b.c"}, now)
	for _, m := range append(append(append(append(muts, umuts...), emuts...), smuts...), imuts...) {
		f.Add(m.Key, m.Value)
	}
	f.Add([]byte("si/gh"), []byte(`{"provider":"gh","subject":"","user_id":4}`))
	f.Add([]byte("ss/short"), []byte(`{}`))
	f.Add([]byte("s/short"), []byte(`{}`))
	f.Add([]byte("u/\x00\x00\x00\x00\x00\x00\x00\x05"), []byte(`{"id":5,"created_on":"not a time"}`))
	f.Add([]byte("u/\x00\x00\x00\x00\x00\x00\x00\x05"), []byte(`null`))
	f.Add([]byte("e/x@y"), []byte(`-1`))
	f.Add([]byte("e/"), []byte(`1e400`))
	f.Add([]byte("m/next_user_id"), []byte{0, 1})
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("zz/unknown"), []byte(nil))
	f.Add([]byte("fa/a@b.c"), []byte(`{"n":3,"last":"2026-01-02T03:04:05Z","until":"2026-01-02T04:04:05Z","k":2}`))
	f.Add([]byte("f/a@b.c\x001.2.3.4"), []byte(`{"n":1,"last":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte("f/a@b.c"), []byte(`{"n":-1}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := New(Options{})
		if _, ok, err := RouteOfKey(key); err != nil || !ok {
			return // the loader stops (error) or handles meta records itself
		}
		if err := s.Load(key, value); err != nil {
			return
		}
		// Whatever loaded, the shard's operations still work on it.
		s.Counts()
		s.MaxUserID()
		s.Sweep(now, 0)
		for id := range s.users {
			s.GetUser(id)
			s.UpdateUser(id, now, func(*User) error { return nil })
			s.DeleteUser(id)
		}
		for dg := range s.sessions.byDigest {
			s.LookupSession(dg, now)
			s.EditSessionExtra(dg, now.Add(-1000*time.Hour), func(old json.RawMessage) (json.RawMessage, error) { return old, nil })
			s.DeleteUserSessions(s.sessions.byDigest[dg].user, nil)
		}
		s.EmailEntries(func(e string, id UserID) { s.ReleaseEmail(e, id) })
		for d := range s.social.states {
			s.TakeSocialState(d, now)
		}
		var ids []Identity
		s.IdentityEntries(func(id Identity) { ids = append(ids, id) })
		for _, id := range ids {
			s.UserIdentities(id.UserID)
			s.UnlinkIdentity(id.Provider, id.Subject, id.UserID)
			s.DeleteUserIdentities(id.UserID)
		}
		p := AttemptPolicy{Tries: 2, Decay: time.Hour, LockFor: time.Hour, Stale: time.Minute}
		for e := range s.failures.byEmail {
			s.BeginAttempt(e, now, p)
			s.EndAttempt(e, AttemptFailed, now)
			s.SetAttemptWindow(e, now)
			s.ResetFailures(e)
		}
	})
}
