package shard

import (
	"slices"
	"testing"
	"time"
)

func TestEmailTokenLists(t *testing.T) {
	now := time.Unix(1000, 0)
	live := now.Add(time.Hour)
	list := []EmailToken{
		{Purpose: "signup", Digest: "s1", Expires: live},
		{Purpose: "forgotpass", Digest: "old", Expires: now}, // expired: expires > now is false
	}
	got := WithEmailToken(list, EmailToken{Purpose: "signup", Digest: "s2", Expires: live}, now)
	if len(got) != 1 || got[0].Digest != "s2" {
		t.Errorf("WithEmailToken = %v; want only s2", got)
	}
	if list[0].Digest != "s1" || len(list) != 2 {
		t.Errorf("WithEmailToken changed its input: %v", list)
	}
	got = WithEmailToken(got, EmailToken{Purpose: "forgotpass", Digest: "f1", Expires: live}, now)
	if len(got) != 2 {
		t.Errorf("two purposes: got %v; want 2 tokens", got)
	}
	if got = WithoutEmailToken(got, "signup", now); len(got) != 1 || got[0].Digest != "f1" {
		t.Errorf("WithoutEmailToken = %v; want only f1", got)
	}
	if got = WithoutEmailToken(got, "forgotpass", now); got != nil {
		t.Errorf("WithoutEmailToken of the last = %v; want nil", got)
	}
}

func TestUseEmailCode(t *testing.T) {
	now := time.Unix(1000, 0)
	live := now.Add(time.Hour)
	user := func() *User {
		return &User{ID: 7, Email: "a@example.org", EmailTokens: []EmailToken{
			{Purpose: PurposeSignup, Digest: "s1", Expires: live},
			{Purpose: PurposeForgotPass, Digest: "f1", Expires: live},
		}}
	}
	tests := []struct {
		name       string
		code       EmailCode
		at         time.Time
		want       error
		wantTokens []string // digests left after the use
	}{
		{"frontend's code", EmailCode{Purpose: PurposeSignup, Digest: "s1"}, now, nil, []string{"f1"}},
		{"minted for this user", EmailCode{Purpose: PurposeForgotPass, Digest: "f1", Minted: true, UserID: 7, Email: "a@example.org"}, now, nil, []string{"s1"}},
		{"minted for another user", EmailCode{Purpose: PurposeSignup, Digest: "s1", Minted: true, UserID: 8, Email: "a@example.org"}, now, ErrEmailCodeInvalid, []string{"s1", "f1"}},
		{"minted for another address", EmailCode{Purpose: PurposeSignup, Digest: "s1", Minted: true, UserID: 7, Email: "b@example.org"}, now, ErrEmailCodeInvalid, []string{"s1", "f1"}},
		{"other purpose's code", EmailCode{Purpose: PurposeSignup, Digest: "f1"}, now, ErrEmailCodeInvalid, []string{"s1", "f1"}},
		{"unknown code", EmailCode{Purpose: PurposeSignup, Digest: "s2"}, now, ErrEmailCodeInvalid, []string{"s1", "f1"}},
		{"no digest", EmailCode{Purpose: PurposeSignup}, now, ErrEmailCodeInvalid, []string{"s1", "f1"}},
		{"expired", EmailCode{Purpose: PurposeSignup, Digest: "s1"}, live, ErrEmailCodeExpired, []string{"s1", "f1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := user()
			held := u.EmailTokens
			if err := u.UseEmailCode(tt.code, tt.at); err != tt.want {
				t.Errorf("UseEmailCode = %v; want %v", err, tt.want)
			}
			var got []string
			for _, tok := range u.EmailTokens {
				got = append(got, tok.Digest)
			}
			if !slices.Equal(got, tt.wantTokens) {
				t.Errorf("tokens left = %v; want %v", got, tt.wantTokens)
			}
			if held[0].Digest != "s1" || held[1].Digest != "f1" {
				t.Errorf("the list a copy shares was written into: %v", held)
			}
		})
	}
	// A used code does not work twice.
	u := user()
	c := EmailCode{Purpose: PurposeSignup, Digest: "s1"}
	if err := u.UseEmailCode(c, now); err != nil {
		t.Fatal(err)
	}
	if err := u.UseEmailCode(c, now); err != ErrEmailCodeInvalid {
		t.Errorf("second use = %v; want ErrEmailCodeInvalid", err)
	}
}
