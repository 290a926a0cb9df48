package httpfront

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// limiter applies the rate limits (docs/protocol.md, "Rate limits") to one
// request. known is false for request types that do not exist (they are still
// counted per IP).
type limiter interface {
	// clientIP is the client key (clientKey) as bytes, so that the usual
	// key, a slice of the plaintext, is hashed without a copy.
	allow(reqType string, clientIP []byte, body map[string]json.RawMessage, known bool) (ok bool, retryAfter time.Duration)
}

// Rate-limit defaults and fixed values (docs/protocol.md, "Rate limits").
const (
	defaultRateLimits = "ipaddr:720; user:480; session:600; apikey:720; burst:150"
	internalPerMinute = 3000
	// healthRequest is the request type GET /health is limited as.
	healthRequest = "apikey-healthcheck"
	// maxRateBuckets bounds the buckets of all shards together; each shard
	// keeps its share, and at least minShardBuckets.
	maxRateBuckets  = 1 << 19
	minShardBuckets = 1024
	// noEmailRetry is the Retry-After of an email-tied request without an
	// email: no wait makes it pass, so say "a minute", the window.
	noEmailRetry = time.Minute
	// maxRateValue bounds configured values, so time arithmetic cannot
	// overflow.
	maxRateValue = 1 << 20
)

// rateConfig is a parsed AUTHNZERVER_RATELIMITS (docs/protocol.md, "Rate
// limits").
type rateConfig struct {
	ipaddr, user, session, apikey, burst int64
	overrides                            map[string]int64 // per request type
}

// parseRateLimits parses the rate-limit configuration. off is true for
// "none". Unlike the reference, a trailing ";" and empty entries are
// ignored; a malformed entry is an error that names it.
func parseRateLimits(s string) (cfg rateConfig, off bool, err error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return rateConfig{}, true, nil
	}
	cfg = rateConfig{ipaddr: 720, user: 480, session: 600, apikey: 720, burst: 150, overrides: map[string]int64{}}
	if strings.TrimSpace(s) == "" {
		s = defaultRateLimits
	}
	for entry := range strings.SplitSeq(s, ";") {
		entry = strings.ReplaceAll(strings.TrimSpace(entry), " ", "")
		if entry == "" {
			continue
		}
		name, val, ok := strings.Cut(entry, ":")
		if !ok || name == "" {
			return cfg, false, fmt.Errorf("httpfront: ratelimits entry %q: want name:value", entry)
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 || (n == 0 && name != "burst") {
			return cfg, false, fmt.Errorf("httpfront: ratelimits entry %q: value must be a positive integer", entry)
		}
		n = min(n, maxRateValue)
		switch name {
		case "ipaddr":
			cfg.ipaddr = n
		case "user":
			cfg.user = n
		case "session":
			cfg.session = n
		case "apikey":
			cfg.apikey = n
		case "burst":
			cfg.burst = n
		default:
			cfg.overrides[name] = n
		}
	}
	return cfg, false, nil
}

// rateRule is how one request type is limited.
type rateRule struct {
	name      string     // the type as keyed (canonical for legacy aliases)
	ip        shard.Rate // per (type, client IP)
	email     shard.Rate // per (type, email), for email-tied types
	emailTied bool
}

// rateLimiter is the limiter, with GCRA buckets in the shard actors (see
// shard.Rate): one message per limited request.
type rateLimiter struct {
	// Static after newLimiter.
	core  *actors.Core
	seed  maphash.Seed
	cfg   rateConfig
	rules map[string]*rateRule // every request type, alias and configured type
	// Group rules for types without a limit of their own (docs/protocol.md,
	// "Rate limits").
	groupUser, groupSession, groupAPIKey, groupInternal, groupOther rateRule
}

// newLimiter returns nil when rate limiting is off ("none").
func newLimiter(cfgText string, core *actors.Core) (limiter, error) {
	cfg, off, err := parseRateLimits(cfgText)
	if err != nil || off {
		return nil, err
	}
	l := &rateLimiter{core: core, seed: maphash.MakeSeed(), cfg: cfg, rules: map[string]*rateRule{}}
	group := func(perMin int64) rateRule { return rateRule{ip: shard.PerMinute(perMin, cfg.burst)} }
	l.groupUser, l.groupSession, l.groupAPIKey = group(cfg.user), group(cfg.session), group(cfg.apikey)
	l.groupInternal, l.groupOther = group(internalPerMinute), group(cfg.ipaddr)
	add := func(name, canonical string) { l.rules[name] = l.ruleOf(canonical) }
	for name, ep := range endpoints {
		canonical := ep.name
		if ep.rateAs != "" {
			canonical = ep.rateAs
		}
		add(name, canonical)
	}
	// A configured type has buckets of its own, keyed by its own name,
	// even when it is an alias.
	for name := range cfg.overrides {
		add(name, name)
	}
	add(healthRequest, healthRequest)
	if n := core.NumShards(); n > 0 {
		if err := actors.SetRateBucketCap(core, max(maxRateBuckets/n, minShardBuckets)); err != nil {
			return nil, fmt.Errorf("httpfront: rate limits: %w", err)
		}
	}
	return l, nil
}

// rateFacts returns the rate-limit columns of a request type: those of its
// row in requestTable, or for a name without one, what the name says (its
// prefix's group, per email if it contains "email").
func rateFacts(name string) (group rateGroup, perMinute int64, emailTied bool) {
	if ep := endpoints[name]; ep != nil {
		return ep.group, ep.perMinute, ep.emailTied
	}
	return groupOf(name), 0, strings.Contains(name, "email")
}

// ruleOf computes the rule of a request type by the precedence of
// docs/protocol.md, "Rate limits": a config entry, else the type's built-in
// limit (endpoint.perMinute), else the group limit of its prefix after the
// burst.
func (l *rateLimiter) ruleOf(name string) *rateRule {
	group, builtin, emailTied := rateFacts(name)
	r := &rateRule{name: name, emailTied: emailTied}
	perMin, special := l.cfg.overrides[name]
	if !special && builtin > 0 {
		perMin, special = builtin, true
	}
	if special {
		r.ip = shard.PerMinute(perMin, perMin)
	} else {
		r.ip = l.group(group).ip
	}
	if r.emailTied {
		if !special {
			perMin = l.cfg.user
		}
		r.email = shard.PerMinute(perMin, perMin)
	}
	return r
}

// group returns the rule of a rate-limit group.
func (l *rateLimiter) group(g rateGroup) *rateRule {
	switch g {
	case userGroup:
		return &l.groupUser
	case sessionGroup:
		return &l.groupSession
	case apikeyGroup:
		return &l.groupAPIKey
	case internalGroup:
		return &l.groupInternal
	}
	return &l.groupOther
}

// Key spaces of the bucket keys.
const (
	spaceIP    = 'i'
	spaceEmail = 'e'
)

func (l *rateLimiter) allow(reqType string, clientIP []byte, body map[string]json.RawMessage, _ bool) (bool, time.Duration) {
	r := l.rules[reqType]
	if r == nil {
		// A type nobody registered: limited by its prefix group, per IP
		// (and per email if its name says so, as in the reference). It is
		// answered 400 anyway; its name is bounded so that odd names cost
		// no more than any other key.
		reqType = truncateString(reqType, 64)
		if strings.Contains(reqType, "email") {
			r = l.ruleOf(reqType)
		} else {
			r = l.group(groupOf(reqType))
		}
	} else {
		reqType = r.name
	}
	var chk actors.RateCheck
	chk.Keys[0] = shard.RateKey(l.seed, spaceIP, reqType, string(clientIP)) // hashed, not kept: no copy for a short key
	chk.Rates[0] = r.ip
	chk.N = 1
	if r.emailTied {
		email := emailKey(body)
		if email == "" {
			return false, noEmailRetry
		}
		chk.Keys[1] = shard.RateKey(l.seed, spaceEmail, reqType, email)
		chk.Rates[1] = r.email
		chk.N = 2
	}
	ok, retry, err := actors.CheckRate(l.core, &chk)
	if err != nil {
		// The core did not answer (stopped, or overloaded past its
		// timeout): let the handler meet the same condition and answer 503
		// rather than blame the client with a 429.
		return true, 0
	}
	if !ok {
		retry = max(retry, time.Second)
	}
	return ok, retry
}

// emailKey returns the email an email-tied request is limited by
// (docs/protocol.md, "Rate limits"): body.email, or if falsy
// body.email_address, normalised as every lookup normalises it
// (passpolicy.NormalizeEmail), so that every spelling that reaches one
// account shares its bucket; "" if both are falsy. The bucket key is a hash,
// so the whole address counts.
func emailKey(body map[string]json.RawMessage) string {
	for _, name := range [...]string{"email", "email_address"} {
		raw, ok := body[name]
		if !ok || falsy(raw) {
			continue
		}
		var s string
		if rawKind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		return passpolicy.NormalizeEmail(s)
	}
	return ""
}

// allowHealth applies the limit of GET /health (docs/protocol.md, "`GET
// /health`"): request type apikey-healthcheck keyed by the socket IP. With
// rate limiting off, health is not limited (the reference crashes then). It
// answers 429 itself and returns false when the check is refused.
func (s *Server) allowHealth(ctx *fasthttp.RequestCtx) bool {
	if s.limits == nil {
		return true
	}
	ok, retry := s.limits.allow(healthRequest, []byte(ctx.RemoteIP().String()), nil, true)
	if !ok {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfterSeconds(retry)))
		s.plain(ctx, 429)
	}
	return ok
}

// retryAfterSeconds is the Retry-After value of a wait: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}
