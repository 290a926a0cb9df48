package httpfront

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/client"
	"github.com/authnzerver/authnzerver/shard"
)

// TestClientRequestTypes checks that the Go client knows exactly the
// server's request types: every row's name is in client.RequestTypes (or,
// for a legacy row, client.LegacyRequestTypes), every alias in
// client.LegacyRequestTypes, and the client lists nothing else. The client's
// own test checks that it has a method for each of client.RequestTypes.
func TestClientRequestTypes(t *testing.T) {
	var current, legacy []string
	for _, ep := range requestTable {
		if ep.legacy {
			legacy = append(legacy, ep.name)
		} else {
			current = append(current, ep.name)
		}
		legacy = append(legacy, ep.aliases...)
	}
	slices.Sort(current)
	slices.Sort(legacy)
	if !slices.Equal(current, client.RequestTypes) {
		t.Errorf("client.RequestTypes = %v; want the table's %v", client.RequestTypes, current)
	}
	if !slices.Equal(legacy, client.LegacyRequestTypes) {
		t.Errorf("client.LegacyRequestTypes = %v; want the table's %v", client.LegacyRequestTypes, legacy)
	}
}

// TestRequestTable checks that the rows of requestTable agree with each
// other and with the rules that hold for names the table lacks.
func TestRequestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, ep := range requestTable {
		names := append([]string{ep.name}, ep.aliases...)
		for _, n := range names {
			if seen[n] {
				t.Errorf("%s: listed twice", n)
			}
			seen[n] = true
			if endpoints[n] == nil || endpoints[n].name != ep.name {
				t.Errorf("%s: endpoints does not map it to row %s", n, ep.name)
			}
			// Types the table lacks are limited by what their name says;
			// the table's names must say the same, or renaming a type
			// would change its limits.
			if g := groupOf(n); g != ep.group {
				t.Errorf("%s: group %d; its prefix says %d", n, ep.group, g)
			}
			if tied := strings.Contains(n, "email"); tied != ep.emailTied {
				t.Errorf("%s: emailTied %v; its name says %v", n, ep.emailTied, tied)
			}
		}
		if ep.handle == nil {
			t.Errorf("%s: no handler", ep.name)
		}
		if ep.readOnly && ep.hashes {
			// Argon2 runs for sign-ups, password changes and key issues:
			// nothing that hashes is a pure read.
			t.Errorf("%s: both read-only and hashing", ep.name)
		}
		if ep.readOnly && ep.perMinute > 0 {
			t.Errorf("%s: read-only with a built-in limit of %d; the built-in limits are for writes and hashing", ep.name, ep.perMinute)
		}
		if ep.hashes && ep.perMinute == 0 {
			t.Errorf("%s: runs Argon2 without a built-in limit", ep.name)
		}
		if ep.perMinute < 0 {
			t.Errorf("%s: perMinute %d", ep.name, ep.perMinute)
		}
		if ep.rateAs != "" && !ep.legacy {
			t.Errorf("%s: shares the limits of %s but is not a legacy type", ep.name, ep.rateAs)
		}
		if ep.rateAs != "" {
			shared := endpoints[ep.rateAs]
			switch {
			case shared == nil:
				t.Errorf("%s: shares the limits of %s, which is not a request type", ep.name, ep.rateAs)
			case shared.name != ep.rateAs || shared.rateAs != "":
				t.Errorf("%s: shares the limits of %s, which is not a current type", ep.name, ep.rateAs)
			case shared.readOnly != ep.readOnly || shared.hashes != ep.hashes || shared.emailTied != ep.emailTied:
				t.Errorf("%s: admission or email columns differ from %s, whose buckets it shares", ep.name, ep.rateAs)
			case ep.perMinute != 0:
				t.Errorf("%s: a built-in limit of its own, but it shares %s's", ep.name, ep.rateAs)
			}
		}
		seenParam := map[string]bool{}
		for _, p := range ep.params {
			if seenParam[p.name] {
				t.Errorf("%s: parameter %s listed twice", ep.name, p.name)
			}
			seenParam[p.name] = true
			if len(p.types) == 0 {
				t.Errorf("%s: parameter %s has no type", ep.name, p.name)
			}
		}
	}
	if len(endpoints) != len(seen) {
		t.Errorf("endpoints has %d names; the table %d", len(endpoints), len(seen))
	}
	// docs/protocol.md, "Request types": 43 types and 7 legacy names.
	current := 0
	for _, ep := range requestTable {
		if !ep.legacy {
			current++
		}
	}
	if current != 43 || len(seen)-current != 7 {
		t.Errorf("the table has %d current types and %d legacy names; docs/protocol.md lists 43 and 7", current, len(seen)-current)
	}
}

// TestRequestTableRateRules checks that the rate-limit rules derived from
// the table are those the protocol documents: built-in limits, email ties,
// and legacy types sharing the buckets of their current type.
func TestRequestTableRateRules(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	core, err := actors.Start(actors.NewActorSystem(lg), nil, nil, actors.Options{Shards: 2, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(core.Stop)
	lim, err := newLimiter("", core)
	if err != nil {
		t.Fatal(err)
	}
	l := lim.(*rateLimiter)
	perMin := func(n int64) shard.Rate { return shard.PerMinute(n, n) }
	tests := []struct {
		name      string
		keyedAs   string
		ip        shard.Rate
		emailTied bool
	}{
		{"user-new", "user-new", perMin(5), false},
		{"user-login", "user-login", perMin(10), false},
		{"user-verify-emailtoken", "user-verify-emailtoken", perMin(5), true},
		{"user-set-emailverified", "user-set-emailverified", shard.PerMinute(480, 150), true},
		{"user-verify-email", "user-set-emailverified", shard.PerMinute(480, 150), true},
		{"user-verify-emailaddr", "user-set-emailverified", shard.PerMinute(480, 150), true},
		{"user-signup-email", "user-sendemail-signup", perMin(2), true},
		{"user-signup-sendemail", "user-sendemail-signup", perMin(2), true},
		{"user-forgotpass-email", "user-sendemail-forgotpass", perMin(2), true},
		{"user-forgotpass-sendemail", "user-sendemail-forgotpass", perMin(2), true},
		{"session-setinfo", "session-setinfo", shard.PerMinute(600, 150), false},
		{"internal-user-edit", "internal-user-edit", shard.PerMinute(internalPerMinute, 150), false},
		{"apikey-verify", "apikey-verify", shard.PerMinute(720, 150), false},
		{healthRequest, healthRequest, shard.PerMinute(720, 150), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := l.rules[tt.name]
			if r == nil {
				t.Fatalf("no rule")
			}
			if r.name != tt.keyedAs || r.ip != tt.ip || r.emailTied != tt.emailTied {
				t.Errorf("got keyed as %s, ip %+v, email-tied %v; want %s, %+v, %v", r.name, r.ip, r.emailTied, tt.keyedAs, tt.ip, tt.emailTied)
			}
		})
	}
	for name := range endpoints {
		if l.rules[name] == nil {
			t.Errorf("%s: no rate rule", name)
		}
	}
}
