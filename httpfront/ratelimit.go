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

// limiter applies the rate limits of spec §5 to one request. known is false
// for request types that do not exist (they are still counted per IP).
type limiter interface {
	allow(reqType, clientIP string, body map[string]json.RawMessage, known bool) (ok bool, retryAfter time.Duration)
}

// Rate-limit defaults and fixed values (spec §5.1, §5.3).
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

// aggressiveLimits are the built-in per-request limits (requests a minute,
// and as many at once) of spec §5.1, plus limits for the other requests that
// run Argon2 (spec §4.3), so that a flood of password checks from one client
// is refused before it reaches the hasher pool. A config entry of the same
// name overrides them (the documented behaviour; the reference ignores such
// entries, spec §8.3).
var aggressiveLimits = map[string]int64{
	"user-new":                  5,
	"user-login":                10,
	"user-logout":               10,
	"user-edit":                 10,
	"user-resetpass":            5,
	"user-changepass":           5,
	"user-sendemail-signup":     2,
	"user-sendemail-forgotpass": 2,
	"user-set-emailsent":        2,
	"apikey-new":                30,
	"apikey-new-nosession":      30,
	"apikey-refresh-nosession":  30,
	// Not in the reference: the rest of spec §4.3.
	"user-passcheck":            10,
	"user-passcheck-nosession":  10,
	"user-changepass-nosession": 5,
	"user-resetpass-nosession":  5,
	"user-delete":               5,
	"user-verify-emailtoken":    5,
}

// emailTiedTypes are the request types of spec §5.3 step 2, limited per
// email as well as per IP.
var emailTiedTypes = []string{
	"user-lookup-email", "user-sendemail-signup", "user-sendemail-forgotpass",
	"user-set-emailverified", "user-set-emailsent", "user-verify-emailtoken",
}

// legacyRateNames maps the pre-2020 send-mail request types, which are
// endpoints of their own because their parameters have other names, to the
// current types whose limits and buckets they share: a client cannot send
// more mail by switching names.
var legacyRateNames = map[string]string{
	"user-signup-email":     "user-sendemail-signup",
	"user-forgotpass-email": "user-sendemail-forgotpass",
}

// rateConfig is a parsed AUTHNZERVER_RATELIMITS (spec §5.1).
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

// rateLimiter is the limiter of spec §5 with GCRA buckets in the shard
// actors (see shard.Rate): one message per limited request.
type rateLimiter struct {
	// Static after newLimiter.
	core  *actors.Core
	seed  maphash.Seed
	cfg   rateConfig
	rules map[string]*rateRule // every registered, aggressive and configured type
	// Group rules for types not in rules, by prefix (spec §5.3 step 3).
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
		if current, ok := legacyRateNames[canonical]; ok {
			canonical = current
		}
		add(name, canonical)
	}
	for name := range aggressiveLimits {
		add(name, name)
	}
	for _, name := range emailTiedTypes {
		add(name, name)
	}
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

// ruleOf computes the rule of a request type by the precedence of spec
// §5.3: a config entry, else a built-in aggressive limit, else the group
// limit of its prefix after the burst.
func (l *rateLimiter) ruleOf(name string) *rateRule {
	r := &rateRule{name: name, emailTied: strings.Contains(name, "email")}
	perMin, special := l.cfg.overrides[name]
	if !special {
		perMin, special = aggressiveLimits[name]
	}
	if special {
		r.ip = shard.PerMinute(perMin, perMin)
	} else {
		r.ip = l.group(name).ip
	}
	if r.emailTied {
		if !special {
			perMin = l.cfg.user
		}
		r.email = shard.PerMinute(perMin, perMin)
	}
	return r
}

func (l *rateLimiter) group(name string) *rateRule {
	switch {
	case strings.HasPrefix(name, "user-"):
		return &l.groupUser
	case strings.HasPrefix(name, "session-"):
		return &l.groupSession
	case strings.HasPrefix(name, "apikey-"):
		return &l.groupAPIKey
	case strings.HasPrefix(name, "internal-"):
		return &l.groupInternal
	}
	return &l.groupOther
}

// Key spaces of the bucket keys.
const (
	spaceIP    = 'i'
	spaceEmail = 'e'
)

func (l *rateLimiter) allow(reqType, clientIP string, body map[string]json.RawMessage, _ bool) (bool, time.Duration) {
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
			r = l.group(reqType)
		}
	} else {
		reqType = r.name
	}
	var chk actors.RateCheck
	chk.Keys[0] = shard.RateKey(l.seed, spaceIP, reqType, clientIP)
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

// emailKey returns the email an email-tied request is limited by (spec
// §5.3 step 2): body.email, or if falsy body.email_address, normalised as
// every lookup normalises it (passpolicy.NormalizeEmail), so that every
// spelling that reaches one account shares its bucket; "" if both are falsy.
// The bucket key is a hash, so the whole address counts.
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

// allowHealth applies the limit of GET /health (spec §1.10): request type
// apikey-healthcheck keyed by the socket IP. With rate limiting off, health
// is not limited (the reference crashes then). It answers 429 itself and
// returns false when the check is refused.
func (s *Server) allowHealth(ctx *fasthttp.RequestCtx) bool {
	if s.limits == nil {
		return true
	}
	ok, retry := s.limits.allow(healthRequest, ctx.RemoteIP().String(), nil, true)
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
