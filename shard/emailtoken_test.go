package shard

import (
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
