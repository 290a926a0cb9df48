package actors

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// The API-key flows, tested on a real core and hasher pool without HTTP.

// keysHarness is the accounts harness with the key flows over it.
type keysHarness struct {
	*accountsHarness
	keys *Keys
}

func startKeys(t *testing.T, maxKeys int) *keysHarness {
	t.Helper()
	h := startAccounts(t, AccountOptions{})
	return &keysHarness{accountsHarness: h, keys: NewKeys(h.Accounts, KeyOptions{MaxKeysPerUser: maxKeys})}
}

// hourKey is a no-session key valid for an hour, refreshable for a day.
var hourKey = Lifetimes{Lifetime: time.Hour, RefreshLifetime: 24 * time.Hour, OK: true}

// newFreeKey issues a no-session key to uid with role and moves the clock
// past its issue time (a key is valid strictly after it).
func (h *keysHarness) newFreeKey(t *testing.T, uid shard.UserID, role string, life Lifetimes) KeyAnswer {
	t.Helper()
	ans, err := h.keys.NewNoSessionKey(uid, role, &life)
	if err != nil || !ans.OK() {
		t.Fatalf("new no-session key of %d: %+v, %v", uid, ans.Refusal, err)
	}
	h.advance(time.Second)
	return ans
}

// newTiedKey issues a session-tied key to uid with role over a new session.
func (h *keysHarness) newTiedKey(t *testing.T, token string, uid shard.UserID, role string) (KeyAnswer, shard.SessionDigest) {
	t.Helper()
	sd := h.newSession(t, token, uid)
	ans, err := h.keys.NewKey(&NewKeyRequest{
		Actor: uid, Role: role, Session: sd, IPAddress: "192.0.2.1", UserAgent: "test",
		Lifetimes: Lifetimes{Lifetime: 24 * time.Hour, OK: true},
	})
	if err != nil || !ans.OK() {
		t.Fatalf("new session-tied key of %d: %+v, %v", uid, ans.Refusal, err)
	}
	h.advance(time.Second)
	return ans, sd
}

// presentedKey is how a request presents the key ans issued to uid/role.
func presentedKey(ans KeyAnswer, uid shard.UserID, role string) PresentedKey {
	return PresentedKey{Owner: uid, Token: ans.Token, Role: role, OwnerOK: true, TokenOK: true}
}

// stored reports whether the key of kind with token tkn is still stored
// (valid or not), by revoking it when it is.
func (h *keysHarness) stored(t *testing.T, kind shard.APIKeyKind, tkn string, uid shard.UserID, role string) bool {
	t.Helper()
	ok, err := askDurable[bool](h.core, RevokeAPIKey{Kind: kind, Digest: shard.DigestAPIKey(tkn), UserID: uid, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (h *keysHarness) verify(t *testing.T, kind shard.APIKeyKind, actor shard.UserID, role string, pk PresentedKey) Refusal {
	t.Helper()
	ans, err := h.keys.VerifyKey(kind, actor, role, &pk)
	if err != nil {
		t.Fatal(err)
	}
	return ans.Refusal
}

func TestVerifyKeyFlow(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 1, "root@example.org", "pw", "superuser")
	h.addUser(t, 5, "staff@example.org", "pw", "staff")
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	h.addUser(t, 11, "bob@example.org", "pw", "authenticated")
	free := h.newFreeKey(t, 10, "authenticated", hourKey)
	tied, _ := h.newTiedKey(t, "alice-session", 10, "authenticated")
	freePK := presentedKey(free, 10, "authenticated")
	tiedPK := presentedKey(tied, 10, "authenticated")
	with := func(pk PresentedKey, edit func(*PresentedKey)) PresentedKey { edit(&pk); return pk }
	other, _ := wire.RandomToken(32)
	tests := []struct {
		name  string
		kind  shard.APIKeyKind
		actor shard.UserID
		role  string
		key   PresentedKey
		want  Refusal
	}{
		{"own no-session key", shard.KeyNoSession, 10, "authenticated", freePK, ""},
		{"own session-tied key", shard.KeySession, 10, "authenticated", tiedPK, ""},
		{"a superuser verifies another's key", shard.KeyNoSession, 1, "superuser", freePK, ""},
		{"key of the other kind", shard.KeySession, 10, "authenticated", freePK, RefusedKeyInvalid},
		{"claims name another role", shard.KeyNoSession, 10, "authenticated", with(freePK, func(k *PresentedKey) { k.Role = "staff" }), RefusedKeyInvalid},
		{"claims name another owner", shard.KeyNoSession, 11, "authenticated", with(freePK, func(k *PresentedKey) { k.Owner = 11 }), RefusedKeyInvalid},
		{"token not stored", shard.KeyNoSession, 10, "authenticated", with(freePK, func(k *PresentedKey) { k.Token = other }), RefusedKeyInvalid},
		{"token not of the form issued", shard.KeyNoSession, 10, "authenticated", with(freePK, func(k *PresentedKey) { k.TokenOK = false }), RefusedKeyInvalid},
		{"acting user without the role it claims", shard.KeyNoSession, 10, "staff", freePK, RefusedNotAllowed},
		{"policy: another user's key", shard.KeyNoSession, 11, "authenticated", freePK, RefusedNotAllowed},
		{"policy: staff may only list others' keys", shard.KeyNoSession, 5, "staff", freePK, RefusedNotAllowed},
		{"policy: unknown role", shard.KeyNoSession, 10, "nosuchrole", freePK, RefusedNotAllowed},
		{"uid not an integer", shard.KeyNoSession, 10, "authenticated", with(freePK, func(k *PresentedKey) { k.OwnerOK = false }), RefusedNotAllowed},
		{"no such acting user", shard.KeyNoSession, 99, "superuser", freePK, RefusedNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.verify(t, tt.kind, tt.actor, tt.role, tt.key); got != tt.want {
				t.Fatalf("refusal %q, want %q", got, tt.want)
			}
		})
	}
	ans, err := h.keys.VerifyKey(shard.KeyNoSession, 10, "authenticated", &freePK)
	if err != nil || !ans.Key.Expires.Equal(free.Key.Expires) || ans.Key.Digest != shard.DigestAPIKey(free.Token) {
		t.Fatalf("verified key %+v, %v; want the issued one", ans.Key, err)
	}
}

func TestVerifyKeyWindow(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	later := hourKey
	later.NotBefore = 10 * time.Minute
	k := h.newFreeKey(t, 10, "authenticated", later)
	pk := presentedKey(k, 10, "authenticated")
	steps := []struct {
		advance time.Duration
		want    Refusal
	}{
		{0, RefusedKeyInvalid},                // not yet valid
		{10 * time.Minute, ""},                // inside its window
		{50 * time.Minute, RefusedKeyInvalid}, // expired (an hour after issue)
		{-30 * time.Minute, ""},               // (the clock back inside)
		{100 * time.Hour, RefusedKeyInvalid},  // long expired
	}
	for i, st := range steps {
		h.advance(st.advance)
		if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", pk); got != st.want {
			t.Fatalf("step %d (%v on): refusal %q, want %q", i, st.advance, got, st.want)
		}
	}
}

func TestVerifyKeyOwnerChanges(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 1, "root@example.org", "pw", "superuser")
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	h.addUser(t, 11, "bob@example.org", "pw", "authenticated")
	alice := presentedKey(h.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated")
	bob := presentedKey(h.newFreeKey(t, 11, "authenticated", hourKey), 11, "authenticated")
	// Alice becomes staff (her keys not revoked): her key of the old role no
	// longer verifies, neither for her nor for a superuser.
	if _, err := askDurable[EditResult](h.core, EditUser{ID: 10, Role: "staff", SetRole: true}); err != nil {
		t.Fatal(err)
	}
	if got := h.verify(t, shard.KeyNoSession, 10, "staff", alice); got != RefusedKeyInvalid {
		t.Fatalf("own key after a role change: %q", got)
	}
	if got := h.verify(t, shard.KeyNoSession, 1, "superuser", alice); got != RefusedKeyInvalid {
		t.Fatalf("superuser, key after its owner's role change: %q", got)
	}
	// Bob is locked: his key's owner is inactive, so no one may operate on it.
	if _, err := h.editUser(LockUser{ID: 11}); err != nil {
		t.Fatal(err)
	}
	if got := h.verify(t, shard.KeyNoSession, 1, "superuser", bob); got != RefusedNotAllowed {
		t.Fatalf("superuser, key of a locked owner: %q", got)
	}
	if got := h.verify(t, shard.KeyNoSession, 11, "authenticated", bob); got != RefusedNotAllowed {
		t.Fatalf("locked owner, own key: %q", got)
	}
}

func TestVerifyKeyWithoutSessionDeletesIt(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	tied, sd := h.newTiedKey(t, "alice-session", 10, "authenticated")
	kept, _ := h.newTiedKey(t, "alice-other-session", 10, "authenticated")
	pk := presentedKey(tied, 10, "authenticated")
	if got := h.verify(t, shard.KeySession, 10, "authenticated", pk); got != "" {
		t.Fatalf("before the session ends: %q", got)
	}
	if _, err := h.endSession(sd); err != nil {
		t.Fatal(err)
	}
	if got := h.verify(t, shard.KeySession, 10, "authenticated", pk); got != RefusedKeyInvalid {
		t.Fatalf("after the session ended: %q", got)
	}
	if h.stored(t, shard.KeySession, tied.Token, 10, "authenticated") {
		t.Fatal("a key found without its session is still stored")
	}
	if !h.stored(t, shard.KeySession, kept.Token, 10, "authenticated") {
		t.Fatal("the key of another, live session went too")
	}
}

func TestRevokeKeyFlow(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 1, "root@example.org", "pw", "superuser")
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	h.addUser(t, 11, "bob@example.org", "pw", "authenticated")
	k := presentedKey(h.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated")
	k2 := presentedKey(h.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated")
	revoke := func(kind shard.APIKeyKind, actor shard.UserID, role string, pk PresentedKey) Refusal {
		t.Helper()
		ans, err := h.keys.RevokeKey(kind, actor, role, &pk)
		if err != nil {
			t.Fatal(err)
		}
		return ans.Refusal
	}
	bad := k
	bad.OwnerOK = false
	steps := []struct {
		name  string
		kind  shard.APIKeyKind
		actor shard.UserID
		role  string
		key   PresentedKey
		want  Refusal
	}{
		{"uid not an integer", shard.KeyNoSession, 10, "authenticated", bad, RefusedNotAllowed},
		{"another user", shard.KeyNoSession, 11, "authenticated", k, RefusedNotAllowed},
		{"wrong kind: nothing revoked", shard.KeySession, 10, "authenticated", k, RefusedKeyInvalid},
		{"owner", shard.KeyNoSession, 10, "authenticated", k, ""},
		{"again: nothing left", shard.KeyNoSession, 10, "authenticated", k, RefusedKeyInvalid},
		{"a superuser revokes another's key", shard.KeyNoSession, 1, "superuser", k2, ""},
	}
	for _, st := range steps {
		if got := revoke(st.kind, st.actor, st.role, st.key); got != st.want {
			t.Fatalf("%s: refusal %q, want %q", st.name, got, st.want)
		}
	}
	for _, pk := range []PresentedKey{k, k2} {
		if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", pk); got != RefusedKeyInvalid {
			t.Fatalf("revoked key verifies: %q", got)
		}
	}
}

func TestRevokeAllKeysFlow(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	h.addUser(t, 11, "bob@example.org", "pw", "authenticated")
	var alice []PresentedKey
	for range 5 {
		alice = append(alice, presentedKey(h.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated"))
	}
	tied, _ := h.newTiedKey(t, "alice-session", 10, "authenticated")
	bob := presentedKey(h.newFreeKey(t, 11, "authenticated", hourKey), 11, "authenticated")
	revokeAll := func(actor shard.UserID, pk PresentedKey) KeyAnswer {
		t.Helper()
		ans, err := h.keys.RevokeAllKeys(actor, "authenticated", &pk)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := revokeAll(11, alice[0]); ans.Refusal != RefusedNotAllowed || ans.Count != 0 {
		t.Fatalf("another user: %+v", ans)
	}
	invalid := alice[0]
	invalid.Token = tied.Token // a session-tied key does not start a revoke-all
	if ans := revokeAll(10, invalid); ans.Refusal != RefusedKeyInvalid {
		t.Fatalf("session-tied key: %+v", ans)
	}
	if ans := revokeAll(10, alice[2]); !ans.OK() || ans.Count != 5 {
		t.Fatalf("revoke-all: %+v, want 5 revoked", ans)
	}
	for i, pk := range alice {
		if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", pk); got != RefusedKeyInvalid {
			t.Fatalf("key %d verifies after revoke-all: %q", i, got)
		}
	}
	if got := h.verify(t, shard.KeySession, 10, "authenticated", presentedKey(tied, 10, "authenticated")); got != "" {
		t.Fatalf("session-tied key after revoke-all: %q", got)
	}
	if got := h.verify(t, shard.KeyNoSession, 11, "authenticated", bob); got != "" {
		t.Fatalf("another user's key after revoke-all: %q", got)
	}
	if ans := revokeAll(10, alice[2]); ans.Refusal != RefusedKeyInvalid || ans.Count != 0 {
		t.Fatalf("with a revoked key: %+v", ans)
	}
}

func TestNewKeyFlow(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	h.addUser(t, 11, "bob@example.org", "pw", "authenticated")
	sd := h.newSession(t, "alice-session", 10)
	ok := NewKeyRequest{Actor: 10, Role: "authenticated", Session: sd, IPAddress: "192.0.2.1", UserAgent: "test",
		Lifetimes: Lifetimes{Lifetime: 24 * time.Hour, OK: true}}
	with := func(edit func(*NewKeyRequest)) NewKeyRequest { r := ok; edit(&r); return r }
	tests := []struct {
		name string
		req  NewKeyRequest
		want Refusal
	}{
		{"not allowed comes before a bad lifetime", with(func(r *NewKeyRequest) { r.Role = "staff"; r.Lifetimes.OK = false }), RefusedNotAllowed},
		{"bad lifetime comes before the session", with(func(r *NewKeyRequest) { r.Lifetimes.OK = false; r.Session = shard.DigestSession("none") }), RefusedLifetime},
		{"no such session", with(func(r *NewKeyRequest) { r.Session = shard.DigestSession("none") }), RefusedNoSession},
		{"another user's session", with(func(r *NewKeyRequest) { r.Actor = 11 }), RefusedSessionMismatch},
		{"another address", with(func(r *NewKeyRequest) { r.IPAddress = "192.0.2.2" }), RefusedSessionMismatch},
		{"another agent", with(func(r *NewKeyRequest) { r.UserAgent = "curl" }), RefusedSessionMismatch},
		{"issued", ok, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := h.keys.NewKey(&tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if ans.Refusal != tt.want {
				t.Fatalf("refusal %q, want %q", ans.Refusal, tt.want)
			}
			if !ans.OK() {
				if ans.Token != "" {
					t.Fatalf("a refused request got a token")
				}
				return
			}
			k := ans.Key
			if k.Kind != shard.KeySession || k.UserID != 10 || k.Role != "authenticated" || k.Session != sd ||
				!k.Expires.Equal(h.clock().Add(24*time.Hour)) || k.Digest != shard.DigestAPIKey(ans.Token) {
				t.Fatalf("issued key %+v", k)
			}
		})
	}
}

func TestNewNoSessionKeyFlow(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	bad := hourKey
	bad.OK = false
	for _, tt := range []struct {
		name string
		role string
		life Lifetimes
		want Refusal
	}{
		{"not allowed before a bad lifetime", "staff", bad, RefusedNotAllowed},
		{"bad lifetime", "authenticated", bad, RefusedLifetime},
	} {
		ans, err := h.keys.NewNoSessionKey(10, tt.role, &tt.life)
		if err != nil || ans.Refusal != tt.want || ans.Token != "" || ans.RefreshToken != "" {
			t.Fatalf("%s: %+v, %v; want %q", tt.name, ans, err, tt.want)
		}
	}
	ans := h.newFreeKey(t, 10, "authenticated", hourKey)
	k := ans.Key
	if len(ans.Token) != 43 || len(ans.RefreshToken) != 43 || ans.Token == ans.RefreshToken {
		t.Fatalf("tokens %q, %q", ans.Token, ans.RefreshToken)
	}
	if !strings.HasPrefix(k.RefreshPHC, "$argon2id$") || strings.Contains(k.RefreshPHC, ans.RefreshToken) {
		t.Fatalf("refresh hash %q", k.RefreshPHC)
	}
	if !k.RefreshExpires.Equal(k.Issued.Add(24*time.Hour)) || !k.Expires.Equal(k.Issued.Add(time.Hour)) {
		t.Fatalf("windows of %+v", k)
	}
}

func TestNewKeyCaps(t *testing.T) {
	h := startKeys(t, 3)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	var free []PresentedKey
	for range 5 {
		free = append(free, presentedKey(h.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated"))
	}
	// Only the 3 newest no-session keys are left.
	for i, pk := range free {
		want := Refusal("")
		if i < 2 {
			want = RefusedKeyInvalid
		}
		if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", pk); got != want {
			t.Fatalf("no-session key %d of 5 (cap 3): %q, want %q", i, got, want)
		}
	}
	// Session-tied keys are capped on their own: the no-session keys stay.
	var tied []PresentedKey
	for i := range 4 {
		ans, _ := h.newTiedKey(t, "session-"+string(rune('a'+i)), 10, "authenticated")
		tied = append(tied, presentedKey(ans, 10, "authenticated"))
	}
	for i, pk := range tied {
		want := Refusal("")
		if i < 1 {
			want = RefusedKeyInvalid
		}
		if got := h.verify(t, shard.KeySession, 10, "authenticated", pk); got != want {
			t.Fatalf("session-tied key %d of 4 (cap 3): %q, want %q", i, got, want)
		}
	}
	for i, pk := range free[2:] {
		if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", pk); got != "" {
			t.Fatalf("no-session key %d after session-tied keys: %q", i+2, got)
		}
	}
	// No cap at all.
	u := startKeys(t, -1)
	u.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	first := presentedKey(u.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated")
	for range 4 {
		u.newFreeKey(t, 10, "authenticated", hourKey)
	}
	if got := u.verify(t, shard.KeyNoSession, 10, "authenticated", first); got != "" {
		t.Fatalf("first key without a cap: %q", got)
	}
}

func TestRefreshKeyFlow(t *testing.T) {
	h := startKeys(t, 1)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	h.addUser(t, 11, "bob@example.org", "pw", "authenticated")
	old := h.newFreeKey(t, 10, "authenticated", hourKey)
	req := func(actor shard.UserID, role string, key KeyAnswer, rt string, life Lifetimes) *RefreshRequest {
		return &RefreshRequest{Actor: actor, Role: role, Key: presentedKey(key, 10, "authenticated"), RefreshToken: rt, Lifetimes: life}
	}
	refresh := func(r *RefreshRequest) KeyAnswer {
		t.Helper()
		ans, err := h.keys.RefreshKey(r)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	wrongRT, _ := wire.RandomToken(32)
	bad := hourKey
	bad.OK = false
	noKey := req(10, "authenticated", old, old.RefreshToken, hourKey)
	noKey.Key.Token = wrongRT
	tests := []struct {
		name string
		req  *RefreshRequest
		want Refusal
	}{
		{"no such key", noKey, RefusedNoRefresh},
		{"wrong refresh token", req(10, "authenticated", old, wrongRT, hourKey), RefusedBadRefresh},
		{"refresh token not of the form issued", req(10, "authenticated", old, "", hourKey), RefusedBadRefresh},
		{"another user may not revoke it", req(11, "authenticated", old, old.RefreshToken, hourKey), RefusedNotAllowed},
		{"bad lifetime", req(10, "authenticated", old, old.RefreshToken, bad), RefusedLifetime},
	}
	for _, tt := range tests {
		if ans := refresh(tt.req); ans.Refusal != tt.want || ans.Token != "" {
			t.Fatalf("%s: %+v, want %q", tt.name, ans, tt.want)
		}
		// A refused refresh leaves the old key in place.
		if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", presentedKey(old, 10, "authenticated")); got != "" {
			t.Fatalf("%s: the old key no longer verifies: %q", tt.name, got)
		}
	}
	// The right token: a new key (at the cap of 1, the old one's going
	// makes room) and the old key gone.
	h.advance(2 * time.Hour) // the old key has expired; its refresh window is open
	ans := refresh(req(10, "authenticated", old, old.RefreshToken, hourKey))
	if !ans.OK() || ans.Token == old.Token || ans.RefreshToken == old.RefreshToken || ans.Key.UserID != 10 {
		t.Fatalf("refresh: %+v", ans)
	}
	h.advance(time.Second)
	if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", presentedKey(ans, 10, "authenticated")); got != "" {
		t.Fatalf("new key: %q", got)
	}
	if h.stored(t, shard.KeyNoSession, old.Token, 10, "authenticated") {
		t.Fatal("the old key is still stored")
	}
	// Single use: the old key and its refresh token are spent.
	if again := refresh(req(10, "authenticated", old, old.RefreshToken, hourKey)); again.Refusal != RefusedNoRefresh {
		t.Fatalf("second refresh with the same token: %+v", again)
	}
	// The new key's refresh token refreshes it in turn.
	next := refresh(req(10, "authenticated", ans, ans.RefreshToken, hourKey))
	if !next.OK() {
		t.Fatalf("refresh of the new key: %+v", next)
	}
}

func TestRefreshKeyNotAllowedToIssue(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 1, "root@example.org", "pw", "superuser")
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	old := h.newFreeKey(t, 10, "authenticated", hourKey)
	// A superuser may revoke alice's key; "create" on its own key is allowed
	// too, so use a role model where it is not: a role that may not own keys.
	h.keys = NewKeys(h.Accounts, KeyOptions{Permissions: noCreateModel(t)})
	ans, err := h.keys.RefreshKey(&RefreshRequest{Actor: 1, Role: "superuser", Key: presentedKey(old, 10, "authenticated"),
		RefreshToken: old.RefreshToken, Lifetimes: hourKey})
	if err != nil || ans.Refusal != RefusedNotAllowedNew {
		t.Fatalf("refresh by a user who may not issue: %+v, %v", ans, err)
	}
	if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", presentedKey(old, 10, "authenticated")); got != "" {
		t.Fatalf("the old key after a refused refresh: %q", got)
	}
}

// barrierHasher holds every verification until n have arrived, so that
// n refreshes with one token all find the old key before any revokes it.
type barrierHasher struct {
	Hasher
	n       int32
	arrived atomic.Int32
	all     chan struct{}
}

func (b *barrierHasher) Run(ops ...passhash.HashOp) ([]passhash.HashResult, error) {
	if ops[0].Verify {
		if b.arrived.Add(1) == b.n {
			close(b.all)
		}
		select {
		case <-b.all:
		case <-time.After(5 * time.Second):
		}
	}
	return b.Hasher.Run(ops...)
}

func TestRefreshKeyRace(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	old := h.newFreeKey(t, 10, "authenticated", hourKey)
	const n = 4
	bh := &barrierHasher{Hasher: h.hasher, n: n, all: make(chan struct{})}
	h.keys = NewKeys(NewAccounts(h.core, bh, AccountOptions{Logger: h.log}), KeyOptions{})
	answers := make(chan KeyAnswer, n)
	for range n {
		go func() {
			ans, err := h.keys.RefreshKey(&RefreshRequest{Actor: 10, Role: "authenticated",
				Key: presentedKey(old, 10, "authenticated"), RefreshToken: old.RefreshToken, Lifetimes: hourKey})
			if err != nil {
				t.Error(err)
			}
			answers <- ans
		}()
	}
	won := 0
	h.advance(time.Second)
	for range n {
		ans := <-answers
		if ans.OK() {
			won++
			continue
		}
		if ans.Refusal != RefusedNotAllowed {
			t.Fatalf("a losing refresh: %q", ans.Refusal)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent refreshes with one token won, want 1", won)
	}
	rs, err := AskAll[[]shard.OwnedItem](h.core, ListOwned{UserID: 10, Kind: shard.OwnedNoSessionKeys})
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, r := range rs {
		keys += len(r.Value)
	}
	if keys != 1 {
		t.Fatalf("%d no-session keys after the race, want 1 (the winner's)", keys)
	}
}

// noCreateModel is the default permission model but for superusers, who
// may not own API keys (so not issue one to themselves) yet may still
// delete others'.
func noCreateModel(t *testing.T) *perm.Model {
	t.Helper()
	raw, err := os.ReadFile("../perm/default-permissions-model.json")
	if err != nil {
		t.Fatal(err)
	}
	const owns = `"can_own_items": ["dataset", "object", "collection", "apikey", "preference"]`
	s := strings.Replace(string(raw), owns, `"can_own_items": ["dataset", "object", "collection", "preference"]`, 1)
	if s == string(raw) {
		t.Fatal("the default model changed: no superuser's can_own_items to edit")
	}
	m, err := perm.Load(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRevokeAllKeysOfOneRole: revoke-all takes the keys of the presented
// key's role only; keys of the owner's former role stay (a role change
// revokes those, see Accounts.RevokeKeysNotOfRole).
func TestRevokeAllKeysOfOneRole(t *testing.T) {
	h := startKeys(t, 0)
	h.addUser(t, 10, "alice@example.org", "pw", "authenticated")
	setRole := func(role string) {
		t.Helper()
		if _, err := askDurable[EditResult](h.core, EditUser{ID: 10, Role: role, SetRole: true}); err != nil {
			t.Fatal(err)
		}
	}
	before := presentedKey(h.newFreeKey(t, 10, "authenticated", hourKey), 10, "authenticated")
	setRole("staff")
	var staff PresentedKey
	for range 3 {
		staff = presentedKey(h.newFreeKey(t, 10, "staff", hourKey), 10, "staff")
	}
	ans, err := h.keys.RevokeAllKeys(10, "staff", &staff)
	if err != nil || !ans.OK() || ans.Count != 3 {
		t.Fatalf("revoke-all of the staff keys: %+v, %v; want 3", ans, err)
	}
	setRole("authenticated")
	if got := h.verify(t, shard.KeyNoSession, 10, "authenticated", before); got != "" {
		t.Fatalf("key of the other role after revoke-all: %q", got)
	}
}
