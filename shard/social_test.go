package shard

import (
	"testing"
	"time"
)

func TestSocialStateOnceAndExpiry(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := New(Options{})
	st := SocialState{Provider: "gh", Session: digest("sess"), RedirectURI: "https://app.example/cb", Verifier: "v", Expires: t0.Add(10 * time.Minute)}
	var muts []Mutation
	muts = append(muts, s.PutSocialState(digest("a"), st)...)
	muts = append(muts, s.PutSocialState(digest("b"), st)...)
	// A restart keeps both.
	r := replay(t, muts)
	if got, ok, _ := r.TakeSocialState(digest("a"), t0); !ok || got.Provider != "gh" || got.Session != digest("sess") || got.Verifier != "v" {
		t.Fatalf("after replay: %+v %v", got, ok)
	}
	got, ok, m := s.TakeSocialState(digest("a"), t0.Add(time.Minute))
	if !ok || got.RedirectURI != st.RedirectURI || len(m) != 1 || m[0].Value != nil {
		t.Fatalf("take: %+v %v %v", got, ok, m)
	}
	muts = append(muts, m...)
	if _, ok, _ := s.TakeSocialState(digest("a"), t0.Add(time.Minute)); ok {
		t.Fatal("a state was taken twice")
	}
	if _, ok, _ := replay(t, muts).TakeSocialState(digest("a"), t0); ok {
		t.Fatal("a taken state came back after a restart")
	}
	// Expired: not handed out, and swept.
	if n := len(s.Sweep(t0.Add(9*time.Minute), 0)); n != 0 || s.SocialStateCount() != 1 {
		t.Fatalf("sweep before expiry deleted %d, left %d", n, s.SocialStateCount())
	}
	sw := s.Sweep(t0.Add(10*time.Minute), 0)
	if len(sw) != 1 || s.SocialStateCount() != 0 {
		t.Fatalf("sweep at expiry: %d mutations, %d left", len(sw), s.SocialStateCount())
	}
	if _, ok, _ := replay(t, append(muts, sw...)).TakeSocialState(digest("b"), t0); ok {
		t.Fatal("a swept state came back after a restart")
	}
	s.PutSocialState(digest("c"), st)
	if _, ok, _ := s.TakeSocialState(digest("c"), t0.Add(10*time.Minute)); ok {
		t.Fatal("an expired state was handed out")
	}
}

func TestIdentities(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := New(Options{})
	var muts []Mutation
	owner, linked, m := s.LinkIdentity(Identity{Provider: "gh", Subject: "1", UserID: 7}, t0)
	if owner != 7 || !linked {
		t.Fatalf("link: %d %v", owner, linked)
	}
	muts = append(muts, m...)
	if owner, linked, m = s.LinkIdentity(Identity{Provider: "gh", Subject: "1", UserID: 8}, t0); owner != 7 || linked || m != nil {
		t.Fatalf("second link of one identity: %d %v %v", owner, linked, m)
	}
	_, _, m = s.LinkIdentity(Identity{Provider: "corp", Subject: "a\x00b", UserID: 7}, t0)
	muts = append(muts, m...)
	_, _, m = s.LinkIdentity(Identity{Provider: "gh", Subject: "2", UserID: 9}, t0)
	muts = append(muts, m...)
	r := replay(t, muts)
	if ids := r.UserIdentities(7); len(ids) != 2 || ids[0].Provider != "corp" || ids[0].Subject != "a\x00b" || ids[1].Subject != "1" {
		t.Fatalf("after replay: %+v", ids)
	}
	if ok, _ := s.UnlinkIdentity("gh", "1", 9); ok {
		t.Fatal("unlinked another user's identity")
	}
	ok, m := s.UnlinkIdentity("gh", "1", 7)
	if !ok {
		t.Fatal("unlink failed")
	}
	muts = append(muts, m...)
	muts = append(muts, s.DeleteUserIdentities(9)...)
	r = replay(t, muts)
	if ids := r.UserIdentities(7); len(ids) != 1 || ids[0].Provider != "corp" {
		t.Fatalf("after unlink: %+v", ids)
	}
	if _, ok := r.LookupIdentity("gh", "2"); ok || len(r.UserIdentities(9)) != 0 {
		t.Fatal("a deleted user's identity came back")
	}
}
