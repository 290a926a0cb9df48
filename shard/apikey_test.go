package shard

import (
	"errors"
	"testing"
	"time"
)

var kt0 = time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)

func newFreeKey(t *testing.T, s *Shard, tkn string, uid UserID, role string, now time.Time) APIKey {
	t.Helper()
	k, muts, err := s.CreateAPIKey(DigestAPIKey(tkn), NewAPIKey{
		Kind: KeyNoSession, UserID: uid, Role: role,
		Lifetime: time.Minute, NotBefore: 10 * time.Second,
		RefreshPHC: "$argon2id$phc-" + tkn, RefreshLifetime: time.Hour, RefreshNotBefore: 30 * time.Second,
	}, now)
	if err != nil || len(muts) != 1 {
		t.Fatalf("CreateAPIKey: %v, %d mutations", err, len(muts))
	}
	return k
}

func TestAPIKeyVerifyWindow(t *testing.T) {
	s := New(Options{})
	k := newFreeKey(t, s, "tok", 7, "authenticated", kt0)
	if k.Issued != micro(kt0) || k.NotBefore != micro(kt0).Add(10*time.Second) || k.Expires != micro(kt0).Add(time.Minute) {
		t.Fatalf("times = %v %v %v", k.Issued, k.NotBefore, k.Expires)
	}
	d := DigestAPIKey("tok")
	for _, tt := range []struct {
		name string
		kind APIKeyKind
		d    APIKeyDigest
		uid  UserID
		role string
		at   time.Duration
		ok   bool
	}{
		{"at issue time", KeyNoSession, d, 7, "authenticated", 0, false},
		{"before nbf", KeyNoSession, d, 7, "authenticated", 5 * time.Second, false},
		{"at nbf", KeyNoSession, d, 7, "authenticated", 10 * time.Second, false},
		{"just after nbf", KeyNoSession, d, 7, "authenticated", 10*time.Second + time.Microsecond, true},
		{"inside", KeyNoSession, d, 7, "authenticated", 30 * time.Second, true},
		{"at expiry", KeyNoSession, d, 7, "authenticated", time.Minute, false},
		{"after expiry", KeyNoSession, d, 7, "authenticated", 2 * time.Minute, false},
		{"wrong user", KeyNoSession, d, 8, "authenticated", 30 * time.Second, false},
		{"wrong role", KeyNoSession, d, 7, "staff", 30 * time.Second, false},
		{"wrong table", KeySession, d, 7, "authenticated", 30 * time.Second, false},
		{"bad kind", APIKeyKind(9), d, 7, "authenticated", 30 * time.Second, false},
		{"other token", KeyNoSession, DigestAPIKey("tok2"), 7, "authenticated", 30 * time.Second, false},
		{"same index, other digest", KeyNoSession, func() APIKeyDigest { x := d; x[31] ^= 1; return x }(), 7, "authenticated", 30 * time.Second, false},
	} {
		got, err := s.VerifyAPIKey(tt.kind, tt.d, tt.uid, tt.role, kt0.Add(tt.at))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v; want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrAPIKeyInvalid) {
			t.Errorf("%s: err = %v; want ErrAPIKeyInvalid", tt.name, err)
		}
		if err == nil && got.Digest != d {
			t.Errorf("%s: got digest %x; want %x", tt.name, got.Digest, d)
		}
	}
}

func TestAPIKeyRefreshWindow(t *testing.T) {
	s := New(Options{})
	newFreeKey(t, s, "tok", 7, "authenticated", kt0)
	d := DigestAPIKey("tok")
	for _, tt := range []struct {
		name string
		uid  UserID
		role string
		at   time.Duration
		ok   bool
	}{
		{"before refresh nbf", 7, "authenticated", 20 * time.Second, false},
		{"after refresh nbf", 7, "authenticated", 31 * time.Second, true},
		{"key expired, refresh open", 7, "authenticated", 30 * time.Minute, true},
		{"refresh expired", 7, "authenticated", time.Hour, false},
		{"wrong user", 8, "authenticated", 31 * time.Second, false},
		{"wrong role", 7, "superuser", 31 * time.Second, false},
	} {
		k, err := s.RefreshableAPIKey(d, tt.uid, tt.role, kt0.Add(tt.at))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v; want ok %v", tt.name, err, tt.ok)
		}
		if err == nil && k.RefreshPHC != "$argon2id$phc-tok" {
			t.Errorf("%s: RefreshPHC = %q", tt.name, k.RefreshPHC)
		}
	}
}

func TestAPIKeyRevoke(t *testing.T) {
	s := New(Options{})
	newFreeKey(t, s, "tok", 7, "authenticated", kt0)
	d := DigestAPIKey("tok")
	if ok, _ := s.RevokeAPIKey(KeyNoSession, d, 8, "authenticated", ""); ok {
		t.Errorf("revoke as another user succeeded")
	}
	if ok, _ := s.RevokeAPIKey(KeySession, d, 7, "authenticated", ""); ok {
		t.Errorf("revoke in the other table succeeded")
	}
	if ok, _ := s.RevokeAPIKey(KeyNoSession, d, 7, "authenticated", "$argon2id$other"); ok {
		t.Errorf("revoke with another refresh hash succeeded")
	}
	ok, muts := s.RevokeAPIKey(KeyNoSession, d, 7, "authenticated", "$argon2id$phc-tok")
	if !ok || len(muts) != 1 || muts[0].Value != nil {
		t.Fatalf("revoke: ok %v, mutations %v", ok, muts)
	}
	if _, err := s.VerifyAPIKey(KeyNoSession, d, 7, "authenticated", kt0.Add(30*time.Second)); err == nil {
		t.Errorf("revoked key verifies")
	}
	if ok, _ := s.RevokeAPIKey(KeyNoSession, d, 7, "authenticated", ""); ok {
		t.Errorf("second revoke succeeded")
	}
	if a, b := s.APIKeyCounts(); a != 0 || b != 0 {
		t.Errorf("counts = %d, %d; want 0, 0", a, b)
	}
}

func TestAPIKeyRevokeUser(t *testing.T) {
	s := New(Options{})
	newFreeKey(t, s, "a", 7, "authenticated", kt0)
	newFreeKey(t, s, "b", 7, "authenticated", kt0)
	newFreeKey(t, s, "c", 7, "staff", kt0)
	newFreeKey(t, s, "d", 8, "authenticated", kt0)
	if _, _, err := s.CreateAPIKey(DigestAPIKey("e"), NewAPIKey{Kind: KeySession, UserID: 7, Role: "authenticated", Lifetime: time.Hour}, kt0); err != nil {
		t.Fatal(err)
	}
	n, muts := s.RevokeUserAPIKeys(7, "authenticated")
	if n != 2 || len(muts) != 2 {
		t.Fatalf("revoked %d (%d mutations); want 2", n, len(muts))
	}
	at := kt0.Add(30 * time.Second)
	checkVerifies(t, s, at, "after revoke-all", []keyCase{
		{"a", KeyNoSession, 7, "authenticated", false},
		{"b", KeyNoSession, 7, "authenticated", false},
		{"c", KeyNoSession, 7, "staff", true},
		{"d", KeyNoSession, 8, "authenticated", true},
		{"e", KeySession, 7, "authenticated", true},
	})
	if n, _ := s.RevokeUserAPIKeys(7, "authenticated"); n != 0 {
		t.Errorf("second revoke-all revoked %d; want 0", n)
	}
	// A deleted user's keys go whatever their role; others' stay.
	if n, _ := s.RevokeUserAPIKeys(7, ""); n != 1 {
		t.Errorf("revoke of every role revoked %d; want 1 (the staff key)", n)
	}
	if _, err := s.VerifyAPIKey(KeyNoSession, DigestAPIKey("c"), 7, "staff", at); err == nil {
		t.Error("staff key of user 7 still verifies after the any-role revoke")
	}
	if _, err := s.VerifyAPIKey(KeyNoSession, DigestAPIKey("d"), 8, "authenticated", at); err != nil {
		t.Errorf("user 8's key after user 7's revoke: %v", err)
	}
}

func TestAPIKeyCollision(t *testing.T) {
	s := New(Options{})
	newFreeKey(t, s, "tok", 7, "authenticated", kt0)
	d := DigestAPIKey("tok")
	d[31] ^= 1 // same index, different digest
	if _, _, err := s.CreateAPIKey(d, NewAPIKey{Kind: KeyNoSession, UserID: 7, Role: "x", RefreshPHC: "p"}, kt0); !errors.Is(err, ErrAPIKeyExists) {
		t.Errorf("create with a used index: err = %v; want ErrAPIKeyExists", err)
	}
	if _, _, err := s.CreateAPIKey(d, NewAPIKey{Kind: KeySession, UserID: 7, Role: "x"}, kt0); err != nil {
		t.Errorf("create in the other table: %v", err)
	}
	if _, _, err := s.CreateAPIKey(d, NewAPIKey{Kind: numKeyKinds}, kt0); err == nil {
		t.Errorf("create of a bad kind succeeded")
	}
}

func TestAPIKeySweep(t *testing.T) {
	s := New(Options{})
	newFreeKey(t, s, "free", 7, "authenticated", kt0) // key dead at +1m, refresh at +1h
	mk := func(tkn string, life time.Duration, sessExp time.Time) {
		if _, _, err := s.CreateAPIKey(DigestAPIKey(tkn), NewAPIKey{Kind: KeySession, UserID: 7, Role: "authenticated", Lifetime: life, SessionExpires: sessExp}, kt0); err != nil {
			t.Fatal(err)
		}
	}
	mk("bound-long", 24*time.Hour, kt0.Add(48*time.Hour))
	mk("bound-short-session", 24*time.Hour, kt0.Add(2*time.Hour))
	mk("bound-short-key", time.Hour, kt0.Add(48*time.Hour))
	for _, tt := range []struct {
		at            time.Duration
		swept         int
		bound, noSess int
	}{
		{30 * time.Minute, 0, 3, 1},
		{61 * time.Minute, 2, 2, 0}, // free (refresh over) and bound-short-key
		{3 * time.Hour, 1, 1, 0},    // bound-short-session
		{25 * time.Hour, 1, 0, 0},   // bound-long
		{100 * time.Hour, 0, 0, 0},  // nothing left
	} {
		muts := s.Sweep(kt0.Add(tt.at), 0)
		if len(muts) != tt.swept {
			t.Errorf("sweep at +%v deleted %d; want %d", tt.at, len(muts), tt.swept)
		}
		if b, n := s.APIKeyCounts(); b != tt.bound || n != tt.noSess {
			t.Errorf("after sweep at +%v: counts %d, %d; want %d, %d", tt.at, b, n, tt.bound, tt.noSess)
		}
	}
	// The limit bounds one sweep.
	for i := range 5 {
		mk(string(rune('a'+i)), time.Minute, time.Time{})
	}
	if muts := s.SweepAPIKeys(kt0.Add(time.Hour), 2); len(muts) != 2 {
		t.Errorf("limited sweep deleted %d; want 2", len(muts))
	}
}

func TestAPIKeyStoreRoundTrip(t *testing.T) {
	s := New(Options{})
	var muts []Mutation
	free := newFreeKey(t, s, "free", 7, "authenticated", kt0)
	sd := DigestSession("session-token")
	bound, m, err := s.CreateAPIKey(DigestAPIKey("bound"), NewAPIKey{Kind: KeySession, UserID: 9, Role: "staff", Lifetime: 24 * time.Hour, NotBefore: -time.Second, Session: sd, SessionExpires: kt0.Add(time.Hour)}, kt0)
	if err != nil {
		t.Fatal(err)
	}
	muts = append(muts, m...)
	_, m, _ = s.CreateAPIKey(DigestAPIKey("free"), NewAPIKey{Kind: KeyNoSession, UserID: 1, Role: "x", RefreshPHC: "p"}, kt0) // collides: no mutation
	muts = append(muts, m...)
	for _, bad := range []NewAPIKey{{Kind: KeySession, Role: "x"}, {Kind: KeySession, UserID: 1}, {Kind: KeyNoSession, UserID: 1, Role: "x"}} {
		if _, m, err := s.CreateAPIKey(DigestAPIKey("other"), bad, kt0); err == nil || m != nil {
			t.Errorf("CreateAPIKey(%+v) = %v, %v; want an error", bad, m, err)
		}
	}
	muts = append(muts, putAPIKey(&free))

	s2 := New(Options{})
	for _, mu := range muts {
		r, ok, err := RouteOfKey(mu.Key)
		if err != nil || !ok {
			t.Fatalf("RouteOfKey(%q): %v %v", mu.Key, ok, err)
		}
		var d APIKeyDigest
		copy(d[:], mu.Key[3:])
		if r != APIKeyRoute(d) {
			t.Errorf("route %d; want %d", r, APIKeyRoute(d))
		}
		if err := s2.Load(mu.Key, mu.Value); err != nil {
			t.Fatalf("Load: %v", err)
		}
	}
	at := kt0.Add(45 * time.Second)
	got, err := s2.VerifyAPIKey(KeyNoSession, DigestAPIKey("free"), 7, "authenticated", at)
	if err != nil || got != free {
		t.Errorf("loaded free key = %+v, %v; want %+v", got, err, free)
	}
	got, err = s2.VerifyAPIKey(KeySession, DigestAPIKey("bound"), 9, "staff", at)
	if err != nil || got != bound || got.Session != sd {
		t.Errorf("loaded bound key = %+v, %v; want %+v", got, err, bound)
	}
	if n, _ := s2.RevokeUserAPIKeys(7, "authenticated"); n != 1 {
		t.Errorf("revoke-all after load revoked %d; want 1 (user index rebuilt)", n)
	}
}

func TestAPIKeyLoadRefusesBadRecords(t *testing.T) {
	s := New(Options{})
	d := DigestAPIKey("x")
	good := putAPIKey(&APIKey{Digest: d, Kind: KeyNoSession, UserID: 4, Role: "authenticated", RefreshPHC: "p"})
	for _, tt := range []struct {
		name       string
		key, value []byte
	}{
		{"short key", []byte("kn/abc"), good.Value},
		{"not json", good.Key, []byte("{")},
		{"no owner", good.Key, []byte(`{"role":"x","refresh":"p"}`)},
		{"no role", good.Key, []byte(`{"uid":4,"refresh":"p"}`)},
		{"no refresh hash", good.Key, []byte(`{"uid":4,"role":"x"}`)},
		{"bound without session", apiKeyKey(KeySession, &d), []byte(`{"uid":4,"role":"x"}`)},
	} {
		if err := s.Load(tt.key, tt.value); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: Load err = %v; want ErrBadRecord", tt.name, err)
		}
	}
	if _, _, err := RouteOfKey([]byte("ka/short")); err == nil {
		t.Errorf("RouteOfKey of a short key: no error")
	}
}

// FuzzLoadAPIKey feeds stored records to the decoder: it must refuse or
// accept, never panic, and an accepted record must encode back to one that
// loads to the same key.
func FuzzLoadAPIKey(f *testing.F) {
	d := DigestAPIKey("x")
	free := putAPIKey(&APIKey{Digest: d, Kind: KeyNoSession, UserID: 4, Role: "authenticated", RefreshPHC: "p", Expires: kt0})
	bound := putAPIKey(&APIKey{Digest: d, Kind: KeySession, UserID: 4, Role: "staff", Session: DigestSession("s")})
	f.Add(free.Key, free.Value)
	f.Add(bound.Key, bound.Value)
	f.Add([]byte("kn/"), []byte("null"))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		k, err := decodeAPIKey(key, value)
		if err != nil {
			return
		}
		m := putAPIKey(k)
		k2, err := decodeAPIKey(m.Key, m.Value)
		if err != nil {
			t.Fatalf("re-encoded record does not load: %v", err)
		}
		if k2.Digest != k.Digest || k2.Kind != k.Kind || k2.UserID != k.UserID || k2.Role != k.Role || k2.RefreshPHC != k.RefreshPHC || k2.Session != k.Session {
			t.Fatalf("round trip: %+v != %+v", k2, k)
		}
	})
}

func newSessionKey(t *testing.T, s *Shard, tkn string, uid UserID, role string, now time.Time) APIKey {
	t.Helper()
	k, _, err := s.CreateAPIKey(DigestAPIKey(tkn), NewAPIKey{
		Kind: KeySession, UserID: uid, Role: role, Lifetime: time.Hour,
		Session: DigestSession("s-" + tkn), SessionExpires: now.Add(time.Hour),
	}, now)
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	return k
}

// After a role change every key of the user issued for another role goes,
// of both kinds; keys of the new role and of other users stay.
func TestRevokeUserAPIKeysNotRole(t *testing.T) {
	s := New(Options{})
	newFreeKey(t, s, "free-staff", 7, "staff", kt0)
	newSessionKey(t, s, "sess-staff", 7, "staff", kt0)
	newFreeKey(t, s, "free-auth", 7, "authenticated", kt0)
	newSessionKey(t, s, "sess-auth", 7, "authenticated", kt0)
	newFreeKey(t, s, "other-staff", 8, "staff", kt0)
	n, muts := s.RevokeUserAPIKeysNotRole(7, "authenticated")
	if n != 2 || len(muts) != 2 {
		t.Fatalf("revoked %d (%d mutations); want 2", n, len(muts))
	}
	at := kt0.Add(30 * time.Second)
	checkVerifies(t, s, at, "after the role change", []keyCase{
		{"free-staff", KeyNoSession, 7, "staff", false},
		{"sess-staff", KeySession, 7, "staff", false},
		{"free-auth", KeyNoSession, 7, "authenticated", true},
		{"sess-auth", KeySession, 7, "authenticated", true},
		{"other-staff", KeyNoSession, 8, "staff", true},
	})
	r := replay(t, muts) // the deletions are persisted
	if _, err := r.VerifyAPIKey(KeyNoSession, DigestAPIKey("free-staff"), 7, "staff", at); err == nil {
		t.Errorf("revoked key verifies after replay")
	}
	if n, _ := s.RevokeUserAPIKeysNotRole(7, "authenticated"); n != 0 {
		t.Errorf("second revoke = %d; want 0", n)
	}
}

func TestUserAPIKeys(t *testing.T) {
	s := New(Options{})
	a := newFreeKey(t, s, "a", 7, "staff", kt0)
	b := newSessionKey(t, s, "b", 7, "staff", kt0.Add(time.Second))
	newFreeKey(t, s, "c", 8, "staff", kt0)
	// Dead: expired and past its refresh window.
	if _, _, err := s.CreateAPIKey(DigestAPIKey("dead"), NewAPIKey{Kind: KeyNoSession, UserID: 7, Role: "staff", RefreshPHC: "x"}, kt0); err != nil {
		t.Fatal(err)
	}
	at := kt0.Add(2 * time.Second)
	for _, k := range []APIKey{a, b} {
		got := s.UserAPIKeys(7, k.Kind, at)
		if len(got) != 1 {
			t.Fatalf("UserAPIKeys(7, %v) = %d keys; want 1 (the dead one and user 8's left out)", k.Kind, len(got))
		}
		if it := got[0]; !it.IsAPIKey || it.Key != k.Digest || it.KeyKind != k.Kind || !it.Created.Equal(k.Issued) {
			t.Errorf("key %v: %+v; want digest %x kind %v issued %v", k.Kind, it, k.Digest[:4], k.Kind, k.Issued)
		}
	}
	s.DeleteAPIKey(KeySession, b.Digest)
	if got := s.UserAPIKeys(7, KeySession, at); len(got) != 0 {
		t.Errorf("after delete: %d session keys; want 0", len(got))
	}
	if got := s.UserAPIKeys(7, APIKeyKind(9), at); len(got) != 0 {
		t.Errorf("bad kind: %d keys; want 0", len(got))
	}
}

// keyCase is a key's token and how it is verified, and whether it should
// verify.
type keyCase struct {
	tkn  string
	kind APIKeyKind
	uid  UserID
	role string
	ok   bool
}

// checkVerifies verifies each case's key at at and reports those that do
// not answer as expected (when: what happened before, for the message).
func checkVerifies(t *testing.T, s *Shard, at time.Time, when string, cases []keyCase) {
	t.Helper()
	for _, tt := range cases {
		if _, err := s.VerifyAPIKey(tt.kind, DigestAPIKey(tt.tkn), tt.uid, tt.role, at); (err == nil) != tt.ok {
			t.Errorf("key %s %s: verify err %v; want ok %v", tt.tkn, when, err, tt.ok)
		}
	}
}
