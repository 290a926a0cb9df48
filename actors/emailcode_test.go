package actors

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

func TestMailedCode(t *testing.T) {
	key := DeriveCodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	now := time.Unix(1_700_000_000, 0)
	claims := emailClaims{Purpose: shard.PurposeSignup, UserID: 7, Email: "a@example.org", IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix()}
	code, err := key.mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	mailed := wrapCode(code)
	for _, l := range strings.Split(mailed, "\n") {
		if len(l) > 70 {
			t.Errorf("mailed line of %d characters; want at most 70", len(l))
		}
	}
	if got := NormalizeCode(mailed + "\n"); got != code {
		t.Errorf("NormalizeCode(wrapped) = %q; want %q", got, code)
	}
	user := func() *shard.User {
		return &shard.User{ID: 7, Email: "a@example.org", EmailTokens: []shard.EmailToken{
			{Purpose: shard.PurposeSignup, Digest: codeDigest(code), Expires: now.Add(time.Hour)},
			{Purpose: shard.PurposeForgotPass, Digest: codeDigest("other"), Expires: now.Add(time.Hour)},
		}}
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 1
		return string(b)
	}
	tests := []struct {
		name    string
		code    string
		purpose string
		email   string
		at      time.Time
		want    error
	}{
		{"valid", code, shard.PurposeSignup, "a@example.org", now, nil},
		{"valid, address in other case", code, shard.PurposeSignup, "A@Example.org", now, nil},
		{"claims altered", flip(code, 12), shard.PurposeSignup, "a@example.org", now, errTokenInvalid},
		{"signature altered", flip(code, len(code)-2), shard.PurposeSignup, "a@example.org", now, errTokenInvalid},
		{"truncated", code[:len(code)-5], shard.PurposeSignup, "a@example.org", now, errTokenInvalid},
		{"wrong purpose", code, shard.PurposeForgotPass, "a@example.org", now, errTokenInvalid},
		{"wrong address", code, shard.PurposeSignup, "b@example.org", now, errTokenInvalid},
		{"expired", code, shard.PurposeSignup, "a@example.org", now.Add(time.Hour), errTokenExpired},
		{"empty", "", shard.PurposeSignup, "a@example.org", now, errTokenInvalid},
	}
	// use is what a code's request does with it: the front reads the
	// mailed code, the core checks it against the user's and uses it up.
	use := func(u *shard.User, code, purpose string, at time.Time) error {
		mc, err := key.EmailCode(code, purpose)
		if err != nil {
			return err
		}
		return u.UseEmailCode(mc, at)
	}
	for _, tc := range tests {
		err := key.Precheck(tc.code, tc.purpose, tc.email, tc.at)
		if err == nil {
			err = use(user(), tc.code, tc.purpose, tc.at)
		}
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%s: got %v; want %v", tc.name, err, tc.want)
		}
	}
	// Another key's code fails.
	if err := DeriveCodeKey("other").Precheck(code, shard.PurposeSignup, "a@example.org", now); !errors.Is(err, errTokenInvalid) {
		t.Errorf("code checked with another key: got %v; want errTokenInvalid", err)
	}
	// Use removes the code (and only it), and the user record copy the
	// caller held is not changed.
	u := user()
	held := u.EmailTokens
	if err := use(u, code, shard.PurposeSignup, now); err != nil {
		t.Fatal(err)
	}
	if len(u.EmailTokens) != 1 || u.EmailTokens[0].Purpose != shard.PurposeForgotPass || held[0].Purpose != shard.PurposeSignup {
		t.Errorf("after use: tokens %v, held copy %v", u.EmailTokens, held)
	}
	if err := use(u, code, shard.PurposeSignup, now); !errors.Is(err, errTokenInvalid) {
		t.Errorf("second use: got %v; want errTokenInvalid", err)
	}
}

func FuzzParseMailedCode(f *testing.F) {
	key := DeriveCodeKey("k")
	code, _ := key.sign(emailClaims{Purpose: shard.PurposeSignup, UserID: 4, Email: "a@b.org", Expires: 1 << 40, Nonce: "n"})
	f.Add(code)
	f.Add("azv1..")
	f.Add("azv1.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		// Only the code minted with the key verifies, in its one encoding;
		// accepting another string would be a forged HMAC or a malleable
		// encoding.
		if _, err := key.parse(s); err == nil && s != code {
			t.Errorf("accepted %q; only %q is valid", s, code)
		}
	})
}
