package actors

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// The flows that add users, without HTTP: sign-up (new, again, racing,
// refused) and the bootstrap of the system users.

const goodPassword = "a fairly long and unusual passphrase 42"

func signUpForm(email, password string) SignUpForm {
	return SignUpForm{Email: email, FullName: "Test User", Password: password, MaxExtraBytes: 64 << 10, RetryWaitHours: 6}
}

func (h *accountsHarness) signUp(t *testing.T, f SignUpForm) Answer {
	t.Helper()
	r, err := h.SignUpUser(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// passwordIs reports whether u's stored hash is of password.
func (h *accountsHarness) passwordIs(t *testing.T, u shard.User, password string) bool {
	t.Helper()
	ok, _, err := h.verify(u.PasswordPHC, password)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (h *accountsHarness) emailHolder(t *testing.T, email string) (shard.UserID, bool) {
	t.Helper()
	id, found, err := h.lookupEmail(email)
	if err != nil {
		t.Fatal(err)
	}
	return id, found
}

func TestSignUpNew(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	f := signUpForm("  New.User@Example.ORG ", goodPassword)
	f.ExtraInfo = json.RawMessage(`{"plan":"free","type":"ignored"}`)
	r := h.signUp(t, f)
	if !r.OK() || r.User.ID == 0 {
		t.Fatalf("SignUpUser = %q user %d; want success", r.Refusal, r.User.ID)
	}
	u := h.getUser(t, r.User.ID)
	if u.Email != "new.user@example.org" || u.IsActive || u.EmailVerified || u.Role != "locked" || u.FullName != "Test User" {
		t.Errorf("stored user %+v; want an inactive, unverified, locked user with the normalised email", u)
	}
	if u.EmailVerifySent.IsZero() {
		t.Error("the verification mail is not marked as sent now")
	}
	if len(u.SystemID) != 36 || strings.Count(u.SystemID, "-") != 4 {
		t.Errorf("system id %q; want a random UUID", u.SystemID)
	}
	var extra map[string]any
	if err := json.Unmarshal(u.ExtraInfo, &extra); err != nil {
		t.Fatal(err)
	}
	if extra["plan"] != "free" || extra["type"] != "normal-user" || extra["provenance"] != "request-created" || extra["verify_retry_wait"] != 6.0 {
		t.Errorf("extra info %s; want the request's keys and the server's", u.ExtraInfo)
	}
	if !h.passwordIs(t, u, goodPassword) {
		t.Error("the stored hash is not of the password")
	}
	if id, ok := h.emailHolder(t, "new.user@example.org"); !ok || id != u.ID {
		t.Errorf("email index: %d, %v; want %d", id, ok, u.ID)
	}
	// A client-chosen system id is kept and claimed.
	f2 := signUpForm("second@example.org", goodPassword)
	f2.SystemID = "client-sid"
	r2 := h.signUp(t, f2)
	// Ids follow each other on one node; a cluster hands them out in
	// blocks per node, so only "new" holds there.
	nextID := r2.User.ID == u.ID+1 || (clusterTestEnv && r2.User.ID > u.ID)
	if !r2.OK() || r2.User.SystemID != "client-sid" || !nextID {
		t.Errorf("second sign-up = %q %+v; want success with id %d and system id client-sid", r2.Refusal, r2.User, u.ID+1)
	}
	if id, ok := h.emailHolder(t, shard.SystemIDKey("client-sid")); !ok || id != r2.User.ID {
		t.Errorf("system id index: %d, %v; want %d", id, ok, r2.User.ID)
	}
}

func TestSignUpRefusals(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	first := signUpForm("first@example.org", goodPassword)
	first.SystemID = "taken-sid"
	base := h.signUp(t, first)
	if !base.OK() {
		t.Fatalf("first sign-up: %q", base.Refusal)
	}
	tooBig := signUpForm("big@example.org", goodPassword)
	tooBig.ExtraInfo = json.RawMessage(`{"k":"` + strings.Repeat("x", 100) + `"}`)
	tooBig.MaxExtraBytes = 64
	sidTaken := signUpForm("other@example.org", goodPassword)
	sidTaken.SystemID = "taken-sid"
	tests := []struct {
		name       string
		form       SignUpForm
		want       Refusal
		wantPolicy bool
	}{
		{"short password", signUpForm("short@example.org", "abc"), RefusedInsecure, true},
		{"common password", signUpForm("common@example.org", "password123"), RefusedInsecure, true},
		{"password like the email", signUpForm("correcthorse@example.org", "correcthorse@example.org"), RefusedInsecure, true},
		{"extra info over its bound", tooBig, RefusedInvalid, false},
		{"system id taken", sidTaken, RefusedSystemIDTaken, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.signUp(t, tt.form)
			if r.Refusal != tt.want || r.User.ID != 0 || (len(r.Policy) > 0) != tt.wantPolicy {
				t.Fatalf("SignUpUser = %q user %d policy %q; want %q, no user, policy messages %v", r.Refusal, r.User.ID, r.Policy, tt.want, tt.wantPolicy)
			}
			// Nothing partial is left: the address is free again.
			if id, ok := h.emailHolder(t, tt.form.Email); ok {
				t.Errorf("the refused sign-up left a claim of %s for user %d", tt.form.Email, id)
			}
		})
	}
	// The system id is still the first user's, and the released address
	// signs up with another one.
	if id, ok := h.emailHolder(t, shard.SystemIDKey("taken-sid")); !ok || id != base.User.ID {
		t.Errorf("system id holder %d, %v; want %d", id, ok, base.User.ID)
	}
	sidTaken.SystemID = "free-sid"
	if r := h.signUp(t, sidTaken); !r.OK() {
		t.Errorf("sign-up after a refused one: %q", r.Refusal)
	}
}

func TestSignUpExisting(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	verified := h.addUser(t, 10, "verified@example.org", goodPassword, "authenticated")
	first := h.signUp(t, signUpForm("pending@example.org", goodPassword))
	if !first.OK() {
		t.Fatal(first.Refusal)
	}
	// A sign-up code outstanding for the first sign-up.
	code := shard.EmailToken{Purpose: shard.PurposeSignup, Digest: codeDigest("old code"), Expires: h.clock().Add(48 * time.Hour)}
	if _, err := askDurable[EmailState](h.core, RecordEmailCode{ID: first.User.ID, Token: code, At: h.clock()}); err != nil {
		t.Fatal(err)
	}
	const newPassword = "another rather long passphrase 77"

	// Within the retry wait: nothing changes.
	h.advance(time.Hour)
	r := h.signUp(t, signUpForm("Pending@Example.org", newPassword))
	if r.Refusal != RefusedExists || r.User.ID != first.User.ID {
		t.Fatalf("sign-up again within the wait = %q user %d; want %q user %d", r.Refusal, r.User.ID, RefusedExists, first.User.ID)
	}
	if u := h.getUser(t, first.User.ID); !h.passwordIs(t, u, goodPassword) || len(u.EmailTokens) != 1 {
		t.Error("a sign-up within the retry wait changed the user")
	}

	// After it: the new sign-up replaces the old, and the old code goes.
	h.advance(6 * time.Hour)
	r = h.signUp(t, signUpForm("pending@example.org", newPassword))
	if r.Refusal != RefusedExistsRenewed || r.User.ID != first.User.ID || r.User.SystemID != first.User.SystemID {
		t.Fatalf("sign-up again after the wait = %q user %d system id %q; want %q for user %d", r.Refusal, r.User.ID, r.User.SystemID, RefusedExistsRenewed, first.User.ID)
	}
	u := h.getUser(t, first.User.ID)
	if !h.passwordIs(t, u, newPassword) || len(u.EmailTokens) != 0 || !u.EmailVerifySent.Equal(h.clock()) || u.IsActive {
		t.Errorf("after the renewed sign-up: %+v; want the new password, no code, mail sent now, inactive", u)
	}

	// A verified user is never replaced, whatever the wait.
	h.advance(30 * 24 * time.Hour)
	r = h.signUp(t, signUpForm("verified@example.org", newPassword))
	if r.Refusal != RefusedExists || r.User.ID != verified.ID {
		t.Fatalf("sign-up of a verified user's address = %q user %d; want %q user %d", r.Refusal, r.User.ID, RefusedExists, verified.ID)
	}
	if !h.passwordIs(t, h.getUser(t, verified.ID), goodPassword) {
		t.Error("a sign-up changed a verified user's password")
	}

	// No id was used up by the sign-ups of taken addresses.
	if n := h.signUp(t, signUpForm("next@example.org", goodPassword)); n.User.ID != first.User.ID+1 {
		t.Errorf("next new user has id %d; want %d", n.User.ID, first.User.ID+1)
	}
}

func TestSignUpRaceOneWinner(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	const n = 8
	answers := make([]Answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.SignUpUser(signUpForm("race@example.org", goodPassword))
			if err != nil {
				t.Error(err)
			}
			answers[i] = r
		}()
	}
	wg.Wait()
	winners := 0
	var winner shard.UserID
	for _, r := range answers {
		if r.OK() {
			winners++
			winner = r.User.ID
		}
	}
	if winners != 1 {
		t.Fatalf("%d sign-ups won; want exactly 1 (%+v)", winners, answers)
	}
	for _, r := range answers {
		switch r.Refusal {
		case "":
		case RefusedExists, RefusedRaced:
			if r.User.ID != winner {
				t.Errorf("a losing sign-up names user %d; want the winner %d", r.User.ID, winner)
			}
		default:
			t.Errorf("a losing sign-up answered %q", r.Refusal)
		}
	}
	if id, ok := h.emailHolder(t, "race@example.org"); !ok || id != winner {
		t.Errorf("email held by %d, %v; want the winner %d", id, ok, winner)
	}
	var counts []shard.Counts
	rs, err := AskAll[shard.Counts](h.core, CountRecords{})
	if err != nil {
		t.Fatal(err)
	}
	users := 0
	for _, r := range rs {
		counts = append(counts, r.Value)
		users += r.Value.Users
	}
	if users != 1 {
		t.Errorf("%d users stored (%+v); want 1", users, counts)
	}
}

func TestBootstrap(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	created, err := h.Bootstrap("Admin@Example.org", goodPassword)
	if err != nil || !created {
		t.Fatalf("first Bootstrap = %v, %v; want created", created, err)
	}
	want := []struct {
		id     shard.UserID
		email  string
		role   string
		active bool
	}{
		{shard.AnonymousID, "anonuser@localhost", "anonymous", true},
		{shard.DummyUserID, "dummyuser@localhost", "locked", false},
		{shard.SuperuserID, "admin@example.org", "superuser", true},
	}
	before := map[shard.UserID]shard.User{}
	for _, w := range want {
		u := h.getUser(t, w.id)
		if u.Email != w.email || u.Role != w.role || u.IsActive != w.active || !u.EmailVerified || u.SystemID == "" {
			t.Errorf("user %d = %+v; want %s, role %s, active %v, verified", w.id, u, w.email, w.role, w.active)
		}
		if id, ok := h.emailHolder(t, w.email); !ok || id != w.id {
			t.Errorf("%s held by %d, %v; want %d", w.email, id, ok, w.id)
		}
		before[w.id] = u
	}
	if !h.passwordIs(t, before[shard.SuperuserID], goodPassword) {
		t.Error("the superuser's password is not the admin password")
	}

	// A second run changes nothing: the superuser keeps its password.
	created, err = h.Bootstrap("other@example.org", "a different admin passphrase 99")
	if err != nil || created {
		t.Fatalf("second Bootstrap = %v, %v; want nothing created", created, err)
	}
	for _, w := range want {
		if u := h.getUser(t, w.id); u.PasswordPHC != before[w.id].PasswordPHC || u.Email != before[w.id].Email || u.SystemID != before[w.id].SystemID {
			t.Errorf("user %d changed by a second bootstrap", w.id)
		}
	}
	if _, ok := h.emailHolder(t, "other@example.org"); ok {
		t.Error("a second bootstrap claimed its admin email")
	}
}

func TestBootstrapResumesKeepingUsers(t *testing.T) {
	h := startAccounts(t, AccountOptions{})
	// A bootstrap cut short after the anonymous user.
	rs, err := h.CreateUsers(NewUser{ID: shard.AnonymousID, Email: "anonuser@localhost", Password: "first", Role: "anonymous", IsActive: true, ExtraInfo: json.RawMessage(`{}`)})
	if err != nil || len(rs) != 1 || !rs[0].OK() {
		t.Fatalf("CreateUsers = %+v, %v", rs, err)
	}
	anon := h.getUser(t, shard.AnonymousID)
	created, err := h.Bootstrap("admin@example.org", goodPassword)
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v; want created", created, err)
	}
	if u := h.getUser(t, shard.AnonymousID); u.PasswordPHC != anon.PasswordPHC || u.SystemID != anon.SystemID {
		t.Error("the resumed bootstrap replaced the existing anonymous user")
	}
	h.getUser(t, shard.DummyUserID)
	h.getUser(t, shard.SuperuserID)

	// A fixed-id user whose email another user holds is refused, and
	// nothing of it is stored.
	rs, err = h.CreateUsers(NewUser{ID: 50, Email: "admin@example.org", Password: "x", Role: "authenticated", ExtraInfo: json.RawMessage(`{}`)})
	if err != nil || len(rs) != 1 || rs[0].Refusal != RefusedEmailTaken || rs[0].User.ID != shard.SuperuserID {
		t.Fatalf("CreateUsers with a taken email = %+v, %v; want %q naming the superuser", rs, err, RefusedEmailTaken)
	}
	if _, found, err := h.user(50); err != nil || found {
		t.Errorf("user 50 stored (%v, %v) though its email is taken", found, err)
	}
	// An existing id answers RefusedExists with the user.
	rs, err = h.CreateUsers(NewUser{ID: shard.SuperuserID, Email: "new@example.org", Password: "x", Role: "superuser"})
	if err != nil || rs[0].Refusal != RefusedExists || rs[0].User.Email != "admin@example.org" {
		t.Fatalf("CreateUsers of an existing id = %+v, %v; want %q with the stored user", rs, err, RefusedExists)
	}
	if _, ok := h.emailHolder(t, "new@example.org"); ok {
		t.Error("CreateUsers of an existing id claimed its email")
	}
}
