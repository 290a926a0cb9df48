package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/client"
)

// newUser signs a user up through nd, activates it, and returns its id.
func newUser(t *testing.T, nd *node, email string) int64 {
	t.Helper()
	r := nd.must("user-new", map[string]any{"full_name": "Cluster User", "email": email, "password": "correct-horse-battery-staple-42"})
	id, ok := r.Int("user_id")
	if !ok {
		t.Fatalf("user-new: no user_id in %+v", r.Response)
	}
	nd.must("internal-user-edit", map[string]any{"target_userid": id, "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"}})
	return id
}

func sessionBody(uid int64) map[string]any {
	return map[string]any{
		"ip_address": "10.1.2.3", "user_agent": "cluster-e2e", "user_id": uid,
		"expires": time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04:05.000000"), "extra_info_json": nil,
	}
}

// sessionExists reports what nd answers for token: exists, or not, or
// something else (an error or refusal) as err.
func sessionExists(nd *node, token string) (bool, error) {
	r, err := nd.do("session-exists", map[string]any{"session_token": token})
	if err != nil {
		return false, err
	}
	if r.StatusCode != 200 {
		return false, fmt.Errorf("status %d %q", r.StatusCode, r.Messages)
	}
	if r.Success {
		return true, nil
	}
	if r.FailureReason == "session does not exist or has expired" || len(r.Messages) > 0 {
		return false, nil
	}
	return false, fmt.Errorf("failure %q", r.FailureReason)
}

func claims(t *testing.T, r *client.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Str("apikey")), &m); err != nil {
		t.Fatalf("apikey %q: %v", r.Str("apikey"), err)
	}
	return m
}

// TestClusterSeenEverywhere: users, sessions and API keys made through one
// node are seen through the others at once, and a change through one is
// seen through the others at once.
func TestClusterSeenEverywhere(t *testing.T) {
	c := newCluster(t, 3)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	type made struct {
		uid   int64
		email string
		token string
		key   map[string]any
	}
	var all []made
	for i := range 12 {
		email := fmt.Sprintf("user%d@example.org", i)
		uid := newUser(t, a, email)
		tok := a.must("session-new", sessionBody(uid)).Str("session_token")
		key := claims(t, a.must("apikey-new-nosession", map[string]any{
			"issuer": "frontend", "audience": "api.example.org", "subject": "/data", "apiversion": 1,
			"expires_seconds": 3600, "not_valid_before": 0, "user_id": uid, "user_role": "authenticated",
			"ip_address": "10.1.2.3", "refresh_expires": 7200, "refresh_nbf": 0,
		}))
		all = append(all, made{uid, email, tok, key})
	}
	ids := map[int64]bool{}
	for _, m := range all {
		if ids[m.uid] {
			t.Fatalf("user id %d handed out twice", m.uid)
		}
		ids[m.uid] = true
		for _, nd := range []*node{b, cc} {
			r := nd.must("session-exists", map[string]any{"session_token": m.token})
			if got, _ := r.Map("session_info")["user_id"].(float64); int64(got) != m.uid {
				t.Fatalf("%s: session of user %d answers user %v", nd.name, m.uid, r.Map("session_info")["user_id"])
			}
			nd.must("apikey-verify-nosession", map[string]any{"apikey_dict": m.key, "user_id": m.uid, "user_role": "authenticated"})
			nd.must("user-lookup-email", map[string]any{"email": m.email})
		}
	}
	// A delete through C is seen through A and B at once.
	cc.must("session-delete", map[string]any{"session_token": all[0].token})
	for _, nd := range []*node{a, b, cc} {
		if ok, err := sessionExists(nd, all[0].token); ok || err != nil {
			t.Fatalf("%s: deleted session: exists=%v err=%v", nd.name, ok, err)
		}
	}
	// A lock through B refuses the user's key through A.
	b.must("internal-user-lock", map[string]any{"target_userid": all[1].uid, "action": "lock"})
	r, err := a.do("apikey-verify-nosession", map[string]any{"apikey_dict": all[1].key, "user_id": all[1].uid, "user_role": "authenticated"})
	if err != nil || r.Success {
		t.Fatalf("key of a locked user verified through another node: %+v %v", r, err)
	}
}
