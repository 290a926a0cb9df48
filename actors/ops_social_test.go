package actors

import (
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// sampleSocialOps holds one operation of each type of ops_social.go.
func sampleSocialOps() []broadcastOp {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
	d := shard.DigestSession("state")
	id := shard.Identity{Provider: "gh", Subject: "12345", UserID: 1<<53 + 7, Email: "zoë@example.org", CreatedOn: t0}
	return []broadcastOp{
		PutSocialState{Digest: d, State: shard.SocialState{
			Provider: "corp-oidc", Session: shard.DigestSession("sess"), RedirectURI: "https://app.example/cb?x=1",
			Verifier: "v\u2028erifier", Nonce: "n", Expires: t0,
		}},
		TakeSocialState{Digest: d},
		LookupIdentity{Provider: "x", Subject: "\x00odd"},
		LinkIdentity{Identity: id},
		LinkNewIdentity{Provider: "google", Subject: "1081", Email: "a@b.example"},
		UnlinkIdentity{Provider: "gh", Subject: "12345", UserID: -3},
		ListIdentities{UserID: 99},
		NewSocialUser{User: shard.User{ID: 77, FullName: "Zoë", Email: "z@example.org", EmailVerified: true, IsActive: true, Role: "authenticated", CreatedOn: t0, LastUpdated: t0}},
	}
}
