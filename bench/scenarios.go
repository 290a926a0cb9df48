package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

func init() {
	register("session-check", setupSessionCheck)
	register("apikey-check", setupAPIKeyCheck)
	register("access-check", setupAccessCheck)
	register("ratelimit-check", setupRateLimitCheck)
	register("metrics-check", setupMetricsCheck)
	register("session-new", setupSessionNew)
	register("login", setupLogin)
	register("isolation", setupIsolation)
	register("mixed", setupMixed)
	register("soak", nil)   // run apart, after the rounds: see Suite.soak
	register("memory", nil) // run apart, after the rounds: see Suite.memory
}

// userAgents are ten 100-character user agents: sessions share a few
// browsers, as real traffic does (and as the memory target assumes).
var userAgents = func() []string {
	out := make([]string, 10)
	for i := range out {
		ua := fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; bench %d) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", i)
		out[i] = (ua + strings.Repeat(".", 100))[:100]
	}
	return out
}()

// expiresIn renders an absolute expiry as frontends send it.
func expiresIn(d time.Duration) string {
	return time.Now().UTC().Add(d).Format("2006-01-02T15:04:05.000000")
}

// sessionNew is a session-new call for user uid (nil: anonymous).
func sessionNew(i int, uid any) Call {
	return Call{Type: "session-new", ClientIP: clientIP(i), Body: map[string]any{
		"ip_address": clientIP(i), "user_agent": userAgents[i%len(userAgents)], "user_id": uid,
		"expires": expiresIn(24 * time.Hour), "extra_info_json": nil,
	}}
}

// makeSessions creates n live sessions of user uid on the caller's server.
func makeSessions(c *caller, n int, uid any) ([]string, error) {
	ans, err := c.many(n, 16, func(i int) Call { return sessionNew(i, uid) })
	if err != nil {
		return nil, err
	}
	toks := make([]string, n)
	for i, a := range ans {
		if toks[i] = a.str("session_token"); toks[i] == "" {
			return nil, fmt.Errorf("bench: session-new answered no session_token")
		}
	}
	return toks, nil
}

// sessionPool is the suite's pool of live sessions of the superuser on the
// server under test, made once.
func (s *Suite) sessionPool() ([]string, error) {
	if s.pool == nil {
		p, err := makeSessions(s.mainCall, s.cfg.Pool, 1)
		if err != nil {
			return nil, err
		}
		s.pool = p
	}
	return s.pool, nil
}

// prepare seals n bodies from gen for t and keeps them fresh in the
// background for as long as the suite runs.
func (s *Suite) prepare(t *Target, n int, gen Gen) (*Bodies, error) {
	b, err := PrepareBodies(t.Codec, max(n, 256), gen)
	if err != nil {
		return nil, err
	}
	b.StartRefresh(wire.DefaultMaxAge / 2)
	s.closers = append(s.closers, b.Close)
	return b, nil
}

// simple is a workload of one figure: bodies sent to t.
func (s *Suite) simple(name string, t *Target, b *Bodies) measure {
	return measure{name: name, run: func(ctx context.Context, label string) (map[string]Stats, error) {
		st, err := s.runOn(ctx, t, b, Expect{}, label, 0)
		return map[string]Stats{name: st}, err
	}}
}

// measureOf is a workload of one figure: n bodies of gen sent to t.
func (s *Suite) measureOf(name string, t *Target, n int, gen Gen) (measure, error) {
	b, err := s.prepare(t, n, gen)
	if err != nil {
		return measure{}, err
	}
	return s.simple(name, t, b), nil
}

// sessionExistsCall checks the sessions of pool in turn.
func sessionExistsCall(pool []string) Gen {
	return func(i int) Call {
		return Call{Type: "session-exists", ClientIP: clientIP(i), Body: map[string]any{"session_token": pool[i%len(pool)]}}
	}
}

// session-check: session-exists on a pool of live sessions (Config.Pool,
// default 1000) of the superuser: the frontends' per-page call.
func setupSessionCheck(ctx context.Context, s *Suite) (*workload, error) {
	pool, err := s.sessionPool()
	if err != nil {
		return nil, err
	}
	m, err := s.measureOf("session-exists", s.main, len(pool), sessionExistsCall(pool))
	if err != nil {
		return nil, err
	}
	return &workload{measures: []measure{m}}, nil
}

// accessCall is user-check-access by one of the suite's real users
// (role authenticated) on a dataset item: its own items (view or edit, any
// visibility) and other users' public and unlisted items (view, list). All
// are granted by the default permission model; setup checks each pattern.
func accessCall(users []benchUser) Gen {
	vis := []string{"public", "private", "shared", "unlisted"}
	return func(i int) Call {
		u := users[(i/8)%len(users)]
		other := users[(i/8+1)%len(users)]
		body := map[string]any{"user_id": u.id, "user_role": "authenticated", "target_name": "dataset", "target_sharedwith": ""}
		switch p := i % 8; {
		case p < 4: // own items
			body["action"] = []string{"view", "edit"}[(i/64)%2]
			body["target_owner"], body["target_visibility"] = u.id, vis[p]
		case p < 6:
			body["action"], body["target_owner"], body["target_visibility"] = "view", other.id, "public"
		case p == 6:
			body["action"], body["target_owner"], body["target_visibility"] = "view", other.id, "unlisted"
		default:
			body["action"], body["target_owner"], body["target_visibility"] = "list", other.id, "public"
		}
		return Call{Type: "user-check-access", ClientIP: clientIP(i), Body: body}
	}
}

// limitCall is user-check-limit (max_requests, values 0–999: under the
// authenticated role's limit, so every answer is success true) by one of
// the suite's real users.
func limitCall(users []benchUser) Gen {
	return func(i int) Call {
		return Call{Type: "user-check-limit", ClientIP: clientIP(i), Body: map[string]any{
			"user_id": users[i%len(users)].id, "user_role": "authenticated", "limit_name": "max_requests", "value_to_check": i % 1000,
		}}
	}
}

// checkAll sends gen(0..n-1) once each and fails unless every answer is a
// success: a workload whose answers would be refusals measures the wrong
// thing.
func (s *Suite) checkAll(n int, gen Gen) error {
	_, err := s.mainCall.many(n, 8, gen)
	return err
}

// access-check: user-check-access by real users (user-new, then activated)
// on items of several visibilities, all granted.
func setupAccessCheck(ctx context.Context, s *Suite) (*workload, error) {
	users, err := s.ensureUsers()
	if err != nil {
		return nil, err
	}
	gen := accessCall(users)
	// Patterns repeat every 128 bodies (8 kinds × 2 actions × 8 users).
	if err := s.checkAll(128, gen); err != nil {
		return nil, err
	}
	m, err := s.measureOf("user-check-access", s.main, 1024, gen)
	if err != nil {
		return nil, err
	}
	return &workload{measures: []measure{m}}, nil
}

// ratelimit-check: user-check-limit, and session-exists on a server with
// rate limits off (the one under test) and on (a second in-process server
// with limits high enough never to refuse the benchmark, or -url2).
func setupRateLimitCheck(ctx context.Context, s *Suite) (*workload, error) {
	w := &workload{}
	users, err := s.ensureUsers()
	if err != nil {
		return nil, err
	}
	gen := limitCall(users)
	if err := s.checkAll(len(users), gen); err != nil {
		return nil, err
	}
	limit, err := s.measureOf("user-check-limit", s.main, 1000, gen)
	if err != nil {
		return nil, err
	}
	pool, err := s.sessionPool()
	if err != nil {
		return nil, err
	}
	off, err := s.measureOf("session-exists limits off", s.main, len(pool), sessionExistsCall(pool))
	if err != nil {
		return nil, err
	}
	w.measures = append(w.measures, limit, off)
	on := s.limitsOn
	if on == nil && s.cfg.URL == "" {
		l, err := s.startLocal(map[string]string{"AUTHNZERVER_RATELIMITS": s.cfg.RateLimitsOn})
		if err != nil {
			return nil, err
		}
		on = l.Target
	}
	if on == nil {
		w.notes = append(w.notes, "no limits-on server (give -url2): limits on vs off not measured")
		return w, nil
	}
	// A server whose limiter is off answers a request without
	// client_ipaddr; with limits on it is refused with 400.
	// Without this check a misconfigured "limits on" server would compare
	// two identical servers.
	m, err := s.sessionExistsOn("session-exists limits on", on, func(c *caller) error {
		if limited, err := limiterOn(c); err != nil {
			return err
		} else if !limited {
			return fmt.Errorf("%s answers requests without client_ipaddr: its rate limits are off", on.URL)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("limits-on server: %w", err)
	}
	w.measures = append(w.measures, m)
	w.derive = func(med map[string]Stats) map[string]float64 {
		a, b := med["session-exists limits on"], med["session-exists limits off"]
		return map[string]float64{"rps_limits_on_vs_off": ratio(a.RPS, b.RPS), "p99_limits_on_vs_off": ratio(a.P99, b.P99)}
	}
	return w, nil
}

// session-new: anonymous sessions created as fast as the server
// acknowledges them durably (fsync per group commit with the default
// AUTHNZERVER_DURABILITY=sync).
func setupSessionNew(ctx context.Context, s *Suite) (*workload, error) {
	gen := func(i int) Call { return sessionNew(i, nil) }
	if _, err := s.mainCall.must(gen(0)); err != nil {
		return nil, err
	}
	// The same body may be sent many times: each one creates a new
	// session (the server draws the token).
	m, err := s.measureOf("session-new", s.main, 1024, gen)
	if err != nil {
		return nil, err
	}
	return &workload{measures: []measure{m}}, nil
}

// apikey-check: apikey-verify-nosession (and apikey-verify, with a
// session-tied key) of a key issued to the superuser in setup
// (docs/protocol.md, "API keys").
func setupAPIKeyCheck(ctx context.Context, s *Suite) (*workload, error) {
	claims := func(a Answer) (map[string]any, error) {
		var m map[string]any
		if err := json.Unmarshal([]byte(a.str("apikey")), &m); err != nil {
			return nil, fmt.Errorf("bench: apikey is not a JSON claims string: %w", err)
		}
		return m, nil
	}
	a, err := s.mainCall.must(Call{Type: "apikey-new-nosession", Body: map[string]any{
		"issuer": "authnzbench", "audience": "bench", "subject": "/api", "apiversion": 1,
		"expires_seconds": 86400, "not_valid_before": -5, "user_id": 1, "user_role": "superuser",
		"ip_address": "127.0.0.1", "refresh_expires": 86400, "refresh_nbf": 0,
	}})
	if err != nil {
		return nil, err
	}
	ns, err := claims(a)
	if err != nil {
		return nil, err
	}
	verify := func(typ string, dict map[string]any) Gen {
		return func(i int) Call {
			return Call{Type: typ, ClientIP: clientIP(i), Body: map[string]any{"apikey_dict": dict, "user_id": 1, "user_role": "superuser"}}
		}
	}
	if _, err := s.mainCall.must(verify("apikey-verify-nosession", ns)(0)); err != nil {
		return nil, err
	}
	w := &workload{}
	m, err := s.measureOf("apikey-verify-nosession", s.main, 256, verify("apikey-verify-nosession", ns))
	if err != nil {
		return nil, err
	}
	w.measures = append(w.measures, m)

	// The session-tied key needs a session whose ip and agent match.
	sess, err := s.mainCall.must(Call{Type: "session-new", Body: map[string]any{
		"ip_address": "127.0.0.1", "user_agent": "authnzbench", "user_id": 1, "expires": expiresIn(24 * time.Hour), "extra_info_json": nil,
	}})
	if err != nil {
		return nil, err
	}
	a, err = s.mainCall.must(Call{Type: "apikey-new", Body: map[string]any{
		"issuer": "authnzbench", "audience": "bench", "subject": "/api", "apiversion": 1, "expires_days": 1,
		"not_valid_before": -5, "user_id": 1, "user_role": "superuser", "ip_address": "127.0.0.1",
		"user_agent": "authnzbench", "session_token": sess.str("session_token"),
	}})
	if err != nil {
		w.notes = append(w.notes, "apikey-verify left out: "+err.Error())
		return w, nil
	}
	st, err := claims(a)
	if err != nil {
		return nil, err
	}
	m, err = s.measureOf("apikey-verify", s.main, 256, verify("apikey-verify", st))
	if err != nil {
		return nil, err
	}
	w.measures = append(w.measures, m)
	return w, nil
}

// benchUser is an active, verified user (role authenticated) made by the
// suite with a known password.
type benchUser struct {
	id              int64
	email, password string
}

// numBenchUsers real users are made once per suite: access-check and
// ratelimit-check spread their requests over them, login and isolation log
// in as the first. Each costs one Argon2 hash to make.
const numBenchUsers = 8

// ensureUsers signs users up (user-new) and activates them
// (internal-user-edit: is_active, email_verified, role authenticated, as
// an email verification would), once per suite.
func (s *Suite) ensureUsers() ([]benchUser, error) {
	if s.users != nil {
		return s.users, nil
	}
	tok, _ := wire.RandomToken(6)
	tag := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(tok))
	users := make([]benchUser, numBenchUsers)
	for i := range users {
		users[i] = benchUser{email: fmt.Sprintf("bench-%s-%d@example.com", tag, i), password: "Qv7#tLm2!pXz9wRb-" + tok}
	}
	made, err := s.mainCall.many(len(users), 2, func(i int) Call {
		return Call{Type: "user-new", ClientIP: clientIP(i), Body: map[string]any{"full_name": "Bench User", "email": users[i].email, "password": users[i].password}}
	})
	if err != nil {
		return nil, err
	}
	for i, a := range made {
		id, ok := a.Response["user_id"].(float64)
		if !ok {
			return nil, fmt.Errorf("bench: user-new answered no user_id")
		}
		users[i].id = int64(id)
	}
	if _, err := s.mainCall.many(len(users), 4, func(i int) Call {
		return Call{Type: "internal-user-edit", Body: map[string]any{
			"target_userid": users[i].id, "update_dict": map[string]any{"is_active": true, "email_verified": true, "user_role": "authenticated"},
		}}
	}); err != nil {
		return nil, err
	}
	s.users = users
	return users, nil
}

// loginUser is the user the login scenarios log in as.
func (s *Suite) loginUser() (benchUser, error) {
	users, err := s.ensureUsers()
	if err != nil {
		return benchUser{}, err
	}
	return users[0], nil
}

// loginBodies makes n fresh anonymous sessions and one user-login body for
// each (a login consumes its session, so bodies are single use).
func (s *Suite) loginBodies(n int) (*Bodies, error) {
	u, err := s.loginUser()
	if err != nil {
		return nil, err
	}
	toks, err := makeSessions(s.mainCall, n, nil)
	if err != nil {
		return nil, err
	}
	return PrepareBodies(s.main.Codec, n, func(i int) Call {
		return Call{Type: "user-login", ClientIP: clientIP(i), Body: map[string]any{"session_token": toks[i], "email": u.email, "password": u.password}}
	})
}

// loginBusyRetry is the pause before a login refused with 503 (hasher pool
// full) is sent again. Short, so the pool stays saturated; a retry rather
// than the next body, so fast 503s do not use up the single-use login
// sessions in a few milliseconds and end the run early.
const loginBusyRetry = 10 * time.Millisecond

// runLogins runs a login storm: LoginConns connections of correct logins,
// each on a fresh session, for d or until the sessions run out.
func (s *Suite) runLogins(ctx context.Context, label string, d time.Duration) (Stats, error) {
	b, err := s.loginBodies(s.cfg.LoginSessions)
	if err != nil {
		return Stats{}, err
	}
	defer b.Close()
	return Drive(ctx, s.main, b, Expect{BusyOK: true}, RunOptions{
		Label: label, Conns: s.cfg.LoginConns, Duration: d, MaxReqs: int64(b.Len()), SampleEvery: 1, Progress: s.cfg.Progress,
		BusyRetry: loginBusyRetry,
	})
}

func isSkip(err error) bool { return errors.Is(err, ErrSkip) }

// goOnlyLogin is why the login figures are the Go generator's only: wrk
// replays bodies round robin and counts a 503 as an error, while a login
// storm needs single-use bodies and a retry of each refused login.
const goOnlyLogin = "logins are driven by the Go generator only (single-use bodies, 503 answers retried)"

// login: correct passwords on fresh sessions with more connections than
// the hasher pool has workers plus queue, so it saturates: 503 answers are
// expected and counted as busy.
func setupLogin(ctx context.Context, s *Suite) (*workload, error) {
	// One login first: a wrong user or password would otherwise show up
	// only as slow runs (each failure is delayed by the back-off).
	b, err := s.loginBodies(1)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	st, err := Drive(ctx, s.main, b, Expect{}, RunOptions{Label: "login check", Conns: 1, MaxReqs: 1, SampleEvery: 1})
	if err != nil {
		return nil, err
	}
	if st.OK != 1 || st.BadAns != 0 {
		return nil, fmt.Errorf("bench: a login with the correct password did not succeed (%+v)", st)
	}
	return &workload{measures: []measure{{name: "user-login", goOnly: goOnlyLogin, run: func(ctx context.Context, label string) (map[string]Stats, error) {
		st, err := s.runLogins(ctx, label, s.window(ctx))
		return map[string]Stats{"user-login": st}, err
	}}}}, nil
}

// isolation: session-exists timed alone, then while a login storm runs on
// the same server; the p99 ratio says how much password hashing hurts the
// hot path.
func setupIsolation(ctx context.Context, s *Suite) (*workload, error) {
	if _, err := s.loginUser(); err != nil {
		return nil, err
	}
	pool, err := s.sessionPool()
	if err != nil {
		return nil, err
	}
	// The same bodies serve both runs: alone, and during the storm.
	b, err := s.prepare(s.main, len(pool), sessionExistsCall(pool))
	if err != nil {
		return nil, err
	}
	alone := s.simple("session-exists alone", s.main, b)
	// Both halves by the same generator, so their p99 ratio compares like
	// with like; the storm's logins need the Go generator.
	alone.goOnly = goOnlyLogin
	storm := measure{name: "storm", goOnly: goOnlyLogin, run: func(ctx context.Context, label string) (map[string]Stats, error) {
		d := s.window(ctx)
		// Sessions for the storm are made before either run starts.
		lb, err := s.loginBodies(s.cfg.LoginSessions)
		if err != nil {
			return nil, err
		}
		defer lb.Close()
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			wg     sync.WaitGroup
			logins Stats
			lerr   error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			logins, lerr = Drive(sctx, s.main, lb, Expect{BusyOK: true}, RunOptions{
				Label: label + " logins", Conns: s.cfg.LoginConns, Duration: d + time.Second, MaxReqs: int64(lb.Len()), SampleEvery: 1,
				BusyRetry: loginBusyRetry,
			})
		}()
		time.Sleep(300 * time.Millisecond) // let the hasher pool fill up first
		st, err := s.runOn(ctx, s.main, b, Expect{}, label, 0)
		cancel()
		wg.Wait()
		if lerr != nil && lerr != context.Canceled {
			return nil, lerr
		}
		if err != nil {
			return nil, err
		}
		return map[string]Stats{"session-exists during login storm": st, "user-login storm": logins}, nil
	}}
	return &workload{
		measures: []measure{alone, storm},
		derive: func(med map[string]Stats) map[string]float64 {
			a, d := med["session-exists alone"], med["session-exists during login storm"]
			return map[string]float64{"p99_ratio_storm_vs_alone": ratio(d.P99, a.P99), "rps_ratio_storm_vs_alone": ratio(d.RPS, a.RPS)}
		},
	}, nil
}

// mixShare is one request type's share of the mixed workload.
type mixShare struct {
	typ     string
	percent int
}

// frontendMix is what a typical web frontend sends: a session check on
// every page view, an access check on pages showing owned items, a new
// anonymous session for new visitors, API-key checks from API clients and
// a few limit checks. Logins are left out: they are hasher-bound and single
// use, and the login and isolation scenarios price them.
var frontendMix = []mixShare{
	{"session-exists", 80},
	{"user-check-access", 8},
	{"session-new", 5},
	{"apikey-verify-nosession", 4},
	{"user-check-limit", 3},
}

// mixed: frontendMix over the request types the server knows; missing ones
// are dropped and the others' shares scaled up (the notes say which).
func setupMixed(ctx context.Context, s *Suite) (*workload, error) {
	m, err := s.prepareMix()
	if err != nil {
		return nil, err
	}
	// Every request of the mix is one that succeeds (checked in setup).
	return &workload{notes: m.notes, measures: []measure{s.simple("mix", s.main, m.bodies)}}, nil
}

// mix is frontendMix set up on the server under test: its bodies, the
// shares actually sent and notes on what was left out.
type mix struct {
	bodies *Bodies
	used   []mixShare
	total  int // sum of the used shares' percents
	notes  []string
}

// share is the fraction of the mix's requests of type typ (0: not sent).
func (m *mix) share(typ string) float64 {
	for _, u := range m.used {
		if u.typ == typ {
			return float64(u.percent) / float64(m.total)
		}
	}
	return 0
}

// prepareMix sets frontendMix up on the server under test (shared by the
// mixed and soak scenarios): each request type is checked once and dropped
// (with a note) when the server does not know it.
func (s *Suite) prepareMix() (*mix, error) {
	pool, err := s.sessionPool()
	if err != nil {
		return nil, err
	}
	users, err := s.ensureUsers()
	if err != nil {
		return nil, err
	}
	if err := s.checkAll(128, accessCall(users)); err != nil {
		return nil, err
	}
	var keyDict map[string]any
	gens := map[string]Gen{
		"session-exists":    sessionExistsCall(pool),
		"user-check-access": accessCall(users),
		"session-new":       func(i int) Call { return sessionNew(i, nil) },
		"user-check-limit":  limitCall(users),
		"apikey-verify-nosession": func(i int) Call {
			return Call{Type: "apikey-verify-nosession", ClientIP: clientIP(i), Body: map[string]any{"apikey_dict": keyDict, "user_id": 1, "user_role": "superuser"}}
		},
	}
	var notes []string
	var used []mixShare
	total := 0
	for _, m := range frontendMix {
		if m.typ == "apikey-verify-nosession" {
			a, err := s.mainCall.must(Call{Type: "apikey-new-nosession", Body: map[string]any{
				"issuer": "authnzbench", "audience": "bench", "subject": "/api", "apiversion": 1,
				"expires_seconds": 86400, "not_valid_before": -5, "user_id": 1, "user_role": "superuser",
				"ip_address": "127.0.0.1", "refresh_expires": 86400, "refresh_nbf": 0,
			}})
			if err == nil {
				err = json.Unmarshal([]byte(a.str("apikey")), &keyDict)
			}
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s (%d%%) left out: %v", m.typ, m.percent, err))
				continue
			}
		}
		if _, err := s.mainCall.must(gens[m.typ](0)); err != nil {
			if !isSkip(err) {
				return nil, err
			}
			notes = append(notes, fmt.Sprintf("%s (%d%%) left out: %v", m.typ, m.percent, err))
			continue
		}
		used = append(used, m)
		total += m.percent
	}
	if len(used) == 0 {
		return nil, skipf("no request type of the mix is supported")
	}
	var desc []string
	for _, m := range used {
		desc = append(desc, fmt.Sprintf("%s %.1f%%", m.typ, 100*float64(m.percent)/float64(total)))
	}
	notes = append(notes, "mix sent: "+strings.Join(desc, ", "))
	// Body i takes its type from slot perm[i%total] of the cumulative
	// shares: the shares are exact over every total consecutive bodies and
	// the types are interleaved, not sent in blocks.
	perm := rand.New(rand.NewPCG(4, 4)).Perm(total)
	typeOf := func(i int) string {
		slot := perm[i%total]
		for _, m := range used {
			if slot < m.percent {
				return m.typ
			}
			slot -= m.percent
		}
		return used[0].typ
	}
	b, err := s.prepare(s.main, 1000, func(i int) Call { return gens[typeOf(i)](i) })
	if err != nil {
		return nil, err
	}
	return &mix{bodies: b, used: used, total: total, notes: notes}, nil
}

// metrics-check: session-exists on our server with the Prometheus endpoint
// off (the main server) and on (a second in-process server with
// AUTHNZERVER_METRICSADDR set), in the same rounds: the cost of metrics on
// the hot path. Only for in-process servers.
func setupMetricsCheck(ctx context.Context, s *Suite) (*workload, error) {
	w := &workload{}
	if s.cfg.URL != "" {
		w.notes = append(w.notes, "external server: metrics on vs off is measured only in process")
		return w, nil
	}
	pool, err := s.sessionPool()
	if err != nil {
		return nil, err
	}
	off, err := s.measureOf("session-exists metrics off", s.main, len(pool), sessionExistsCall(pool))
	if err != nil {
		return nil, err
	}
	w.measures = append(w.measures, off)
	l, err := s.startLocal(map[string]string{"AUTHNZERVER_METRICSADDR": "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	m, err := s.sessionExistsOn("session-exists metrics on", l.Target, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics-on server: %w", err)
	}
	w.measures = append(w.measures, m)
	w.derive = func(med map[string]Stats) map[string]float64 {
		a, b := med["session-exists metrics on"], med["session-exists metrics off"]
		return map[string]float64{"rps_metrics_on_vs_off": ratio(a.RPS, b.RPS), "p99_metrics_on_vs_off": ratio(a.P99, b.P99)}
	}
	return w, nil
}

// sessionExistsOn prepares a session-exists measurement named name on a
// second server t: check (when not nil) vets the server first, then a pool
// of its own sessions is made there.
func (s *Suite) sessionExistsOn(name string, t *Target, check func(c *caller) error) (measure, error) {
	c := newCaller(t, 16)
	defer c.close()
	if check != nil {
		if err := check(c); err != nil {
			return measure{}, err
		}
	}
	pool, err := makeSessions(c, s.cfg.Pool, 1)
	if err != nil {
		return measure{}, err
	}
	return s.measureOf(name, t, len(pool), sessionExistsCall(pool))
}
