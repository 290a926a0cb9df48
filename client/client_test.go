package client_test

import (
	"context"
	"testing"

	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/server/servertest"
	"github.com/authnzerver/authnzerver/wire"
)

func TestTypedMethods(t *testing.T) {
	ts := servertest.Start(t)
	c, err := client.New(ts.URL, ts.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := c.SessionNew(ctx, client.Body{"ip_address": "192.0.2.1", "user_agent": "go", "user_id": nil, "expires": "2099-01-01T00:00:00", "extra_info_json": nil})
	if err != nil || !r.Success {
		t.Fatalf("SessionNew: %+v %v", r, err)
	}
	tok := r.Str("session_token")
	r, err = c.SessionExists(ctx, client.Body{"session_token": tok})
	if err != nil || !r.Success || r.Map("session_info")["user_id"] != float64(2) {
		t.Fatalf("SessionExists: %+v %v", r, err)
	}
	// A wrong key on the client side: the server answers 401.
	k, _ := wire.GenerateKey()
	other, _ := client.New(ts.URL, k)
	if r, err := other.SessionExists(ctx, client.Body{"session_token": tok}); err != nil || r.StatusCode != 401 || r.Success {
		t.Errorf("foreign key: %+v %v", r, err)
	}
}
