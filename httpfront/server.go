package httpfront

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/mail"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/wire"
)

// Options configures a Server. Zero fields mean the defaults.
type Options struct {
	// AllowedHosts is the Host allow-list (docs/protocol.md, "Endpoints").
	// Nil means localhost and 127.0.0.1.
	AllowedHosts []string
	// MaxBodyBytes bounds request bodies; larger ones are refused before
	// any decryption. Default 1 MiB.
	MaxBodyBytes int
	// ReadTimeout and WriteTimeout bound the time a client may take to send
	// a request and to read an answer, so slow clients cannot hold the
	// server. Defaults 10 s. IdleTimeout closes idle keep-alive connections;
	// default 120 s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns caps concurrent connections. Default 10000.
	MaxConns int
	// MaxConnsPerIP caps the concurrent connections from one remote
	// address, so that one client cannot hold every slot of MaxConns;
	// connections beyond it are refused as they are accepted (fasthttp
	// writes a short 429 and closes them). Default 1000, which a few
	// frontends with large pools never reach; negative: no bound.
	MaxConnsPerIP int
	// MaxExtraInfoBytes bounds a session's extra_info_json (its JSON text).
	// Default 16 KiB.
	MaxExtraInfoBytes int
	// MaxShardQueue bounds the messages waiting in one shard's mailbox;
	// beyond it every request is answered 503 at once (overload.go).
	// Default 4096; negative: no bound.
	MaxShardQueue int
	// PIISalt keys the hashes that stand for personal data in logs
	// (docs/security.md, "Logs"). "none" logs plain values.
	PIISalt string
	// Logger is the server's logger. Nil means slog.Default().
	Logger *slog.Logger
	// RateLimits is the rate-limit configuration string (docs/protocol.md,
	// "Rate limits"); "none" turns rate limiting off.
	RateLimits string
	// Debug enables POST /echo (docs/protocol.md, "Endpoints").
	Debug bool
	// Users configures sign-up, passwords and permissions.
	Users UserOptions
	// Observer receives per-request metrics (observe.go); nil: none.
	Observer Observer
	// Mail configures the email requests (email.go).
	Mail MailOptions
}

func (o Options) withDefaults() Options {
	if o.AllowedHosts == nil {
		o.AllowedHosts = []string{"localhost", "127.0.0.1"}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	if o.MaxConnsPerIP == 0 {
		o.MaxConnsPerIP = 1000
	}
	if o.MaxExtraInfoBytes <= 0 {
		o.MaxExtraInfoBytes = 16 << 10
	}
	if o.MaxShardQueue == 0 {
		o.MaxShardQueue = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Deps are the parts of the core a Server drives.
type Deps struct {
	Codec  *wire.Codec
	Core   *actors.Core
	Hasher *passhash.Hasher
	// Mailer sends the email requests' mail (nil: every send fails).
	Mailer *mail.Mailer
	// Healthy reports whether the store accepts writes (nil: always).
	Healthy func() error
	// Accounts runs the flows on accounts (sign-up, login, password
	// changes, locks, deletions). Nil: New makes one over Core and Hasher
	// with the policy of Options.Users and the default lock rules (tests;
	// the server makes one for the front and its bootstrap).
	Accounts *actors.Accounts
	// Social runs the social login flows (docs/social.md); nil: the
	// social requests answer that social logins are not configured.
	Social *actors.Social
}

// Server is the HTTP front. It is safe for concurrent use.
type Server struct {
	// Static after New.
	opts   Options
	deps   Deps
	hosts  map[string]bool
	fast   *fasthttp.Server
	log    *slog.Logger
	limits limiter // nil when rate limiting is off
	ext    extensions

	bufPool sync.Pool
	reqPool sync.Pool // *request
}

// extensions holds the state of the capabilities that plug into the server
// (users, keys, limits, mail). Each capability's file adds its own field.
type extensions struct {
	users    usersExt
	keys     *actors.Keys // the API-key flows (apikeys.go)
	overload overloadExt
	observe  observeExt
	mail     mailExt
}

// New returns a server. It does not listen; see [Server.Serve].
func New(opts Options, deps Deps) (*Server, error) {
	opts = opts.withDefaults()
	if deps.Codec == nil || deps.Core == nil {
		return nil, errors.New("httpfront: codec and core are required")
	}
	s := &Server{opts: opts, deps: deps, hosts: make(map[string]bool), log: opts.Logger}
	s.ext.users.opts = opts.Users
	if s.deps.Accounts == nil {
		var h actors.Hasher
		if deps.Hasher != nil {
			h = deps.Hasher
		}
		s.deps.Accounts = actors.NewAccounts(deps.Core, h, actors.AccountOptions{
			Policy: opts.Users.Policy, ServerFQDN: opts.Users.ServerFQDN, PII: s.pii, Logger: opts.Logger,
		})
	}
	s.ext.keys = actors.NewKeys(s.deps.Accounts, actors.KeyOptions{
		Permissions: s.perms(), MaxKeysPerUser: opts.Users.MaxAPIKeysPerUser,
	})
	for _, h := range opts.AllowedHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			s.hosts[h] = true
		}
	}
	lim, err := newLimiter(opts.RateLimits, deps.Core)
	if err != nil {
		return nil, err
	}
	s.limits = lim
	if err := s.initMail(); err != nil {
		return nil, err
	}
	s.initObserve()
	s.initOverload()
	s.fast = &fasthttp.Server{
		Handler:                       s.handle,
		Name:                          "authnzerver",
		MaxRequestBodySize:            opts.MaxBodyBytes,
		ReadTimeout:                   opts.ReadTimeout,
		WriteTimeout:                  opts.WriteTimeout,
		IdleTimeout:                   opts.IdleTimeout,
		Concurrency:                   opts.MaxConns,
		MaxConnsPerIP:                 max(opts.MaxConnsPerIP, 0),
		ReadBufferSize:                8192, // also bounds the header block
		LazyRequestTime:               true, // ctx.Time is not used: one clock read a request less
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		Logger:                        fastLogger{s.log},
		TLSConfig:                     &tls.Config{MinVersion: tls.VersionTLS12}, // docs/operations.md, "TLS"
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			// fasthttp stops reading a body over the bound before it is all
			// in memory; say why with 413.
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				s.plain(ctx, 413)
				return
			}
			s.plain(ctx, 400)
		},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.fast.Serve(ln) }

// ServeTLS accepts TLS connections on ln with the given certificate files.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return s.fast.ServeTLS(ln, certFile, keyFile)
}

// OpenConnections reports how many client connections are open now.
func (s *Server) OpenConnections() int32 { return s.fast.GetOpenConnectionsCount() }

// Shutdown stops accepting and waits for open requests to finish.
func (s *Server) Shutdown() error { return s.fast.Shutdown() }

// Handler returns the fasthttp handler, for in-memory tests and benches.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	if !s.hostAllowed(ctx.Host()) {
		s.plain(ctx, 404)
		return
	}
	path := string(ctx.Path())
	switch path {
	case "/":
		if !ctx.IsPost() {
			s.plain(ctx, 405)
			return
		}
		s.handleAPI(ctx)
		s.observeResponse(ctx)
	case "/health":
		if !ctx.IsGet() {
			s.plain(ctx, 405)
			return
		}
		if !s.allowHealth(ctx) {
			return
		}
		s.handleHealth(ctx)
	case "/echo":
		if !s.opts.Debug {
			s.plain(ctx, 404)
			return
		}
		if !ctx.IsPost() {
			s.plain(ctx, 405)
			return
		}
		s.handleEcho(ctx)
	default:
		s.plain(ctx, 404)
	}
}

// hostAllowed implements the Host allow-list (docs/protocol.md,
// "Endpoints"): the Host header, lower-cased, without its port (an IPv6
// literal keeps its brackets).
func (s *Server) hostAllowed(host []byte) bool {
	h := strings.ToLower(string(host))
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return s.hosts[h]
}

// plain answers with an unencrypted error status and its text.
func (s *Server) plain(ctx *fasthttp.RequestCtx, status int) {
	ctx.SetStatusCode(status)
	if status == 404 {
		ctx.SetContentType("text/html; charset=UTF-8")
	} else {
		ctx.SetContentType("text/plain; charset=UTF-8")
	}
	if status == 503 {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.SetBodyString(statusText(status))
}

// plainReason is plain with the specific reason after the reference's text. A
// non-200 body is never sealed: the Python client shows it to the frontend as
// failure_reason, so it must be readable text (docs/protocol.md, "HTTP
// statuses").
func (s *Server) plainReason(ctx *fasthttp.RequestCtx, status int, reason string) {
	s.plain(ctx, status)
	ctx.Response.AppendBodyString(" Reason: " + reason + ".")
}

// envelope is the decrypted request envelope (docs/protocol.md, "The request
// envelope"). Raw fields are slices of the plaintext, which the request owns.
type envelope struct {
	Request  json.RawMessage
	Body     json.RawMessage
	ReqID    json.RawMessage
	ClientIP json.RawMessage
}

// errBodyNotObject: the envelope's body is present but not an object (nor
// null).
var errBodyNotObject = errors.New("httpfront: body is not an object")

// decodeEnvelope reads the envelope's members in one scan of plain, with no
// reflection and no copy: the values are slices of plain (docs/design.md,
// "Request path: `session-exists`"). Keys match exactly; of duplicates the
// last wins, as in the Python server's json.loads. It fails with
// wire.ErrJSONSyntax (a plaintext that is not JSON) or errBodyNotObject.
func decodeEnvelope(plain []byte) (env envelope, err error) {
	err = wire.ScanObject(plain, func(m wire.Member) {
		switch {
		case m.Is("request"):
			env.Request = m.Value
		case m.Is("body"):
			env.Body = m.Value
		case m.Is("reqid"):
			env.ReqID = m.Value
		case m.Is("client_ipaddr"):
			env.ClientIP = m.Value
		}
	})
	if err == nil && len(env.Body) > 0 && env.Body[0] != '{' && rawKind(env.Body) != 'n' {
		err = errBodyNotObject
	}
	return env, err
}

// bodyParamsInto fills params, an empty map (the pooled one of a request),
// with the top-level parameters of an object body, named with the schema's
// own strings where a name is one of ep's parameters, so that reading a
// body allocates no names; it reports false for a missing or null body.
func bodyParamsInto(params map[string]json.RawMessage, body []byte, ep *endpoint) bool {
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	wire.WalkObject(body, func(m wire.Member) { // already checked by decodeEnvelope
		name := ""
		if ep != nil {
			for i := range ep.params {
				if m.Is(ep.params[i].name) {
					name = ep.params[i].name
					break
				}
			}
		}
		if name == "" {
			name = m.Name()
		}
		params[name] = m.Value
	})
	return true
}

// request is the state of one POST / that would otherwise be allocated
// anew for every request: the plaintext, the parameter map and the call.
// Requests are pooled (Server.reqPool); nothing of one may be used after
// handleAPI returns. Only a read-only request type's values stay in the
// pooled plaintext: a type that writes may hand a slice of it to the core
// to keep (session-new's extra_info_json), so its plaintext is copied
// first (handleAPI).
type request struct {
	plain  []byte
	params map[string]json.RawMessage
	c      call
}

// Bounds of what a pooled request keeps: a large body's plaintext or a body
// with many members is let go rather than pinned in the pool.
const (
	maxPooledPlain  = 16 << 10
	maxPooledParams = 64
)

// scribblePooled makes putRequest overwrite a plaintext before it goes
// back to the pool, so that a test meets garbage where a handler kept a
// slice of it. The package's tests turn it on.
var scribblePooled = false

func (s *Server) getRequest() *request {
	if rq, _ := s.reqPool.Get().(*request); rq != nil {
		return rq
	}
	return &request{plain: make([]byte, 0, 1024), params: make(map[string]json.RawMessage, 8)}
}

func (s *Server) putRequest(rq *request) {
	if cap(rq.plain) > maxPooledPlain || len(rq.params) > maxPooledParams {
		return
	}
	if scribblePooled {
		// The used part only: slices of the plaintext lie within it, and
		// benchmarks (test binaries) then pay little for the check.
		b := rq.plain
		for i := range b {
			b[i] = '#'
		}
	}
	rq.plain = rq.plain[:0]
	clear(rq.params)
	rq.c = call{}
	s.reqPool.Put(rq)
}

// requestType reads the envelope's request string and its row of the
// request table (nil when unknown); ok is false when request is not a
// string.
func requestType(raw []byte) (name string, ep *endpoint, ok bool) {
	if rawKind(raw) != '"' {
		return "", nil, false
	}
	if q := raw[1 : len(raw)-1]; bytes.IndexByte(q, '\\') < 0 {
		if ep := endpoints[string(q)]; ep != nil { // no copy for a lookup
			return ep.name, ep, true
		}
		return string(q), nil, true
	}
	var unquoted string // a variable of this branch only: taking its address moves it to the heap
	if json.Unmarshal(raw, &unquoted) != nil {
		return "", nil, false
	}
	return unquoted, endpoints[unquoted], true
}

// handleAPI runs the pipeline of POST / (docs/protocol.md, "The pipeline of
// `POST /`").
func (s *Server) handleAPI(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	body := ctx.PostBody()
	if len(body) > s.opts.MaxBodyBytes {
		s.plain(ctx, 413)
		return
	}
	rq := s.getRequest()
	defer s.putRequest(rq) // deferred first: runs after finish
	// One clock read serves the freshness window, the call's now and the
	// answer's timestamp.
	plain, err := s.deps.Codec.AppendOpenAt(rq.plain[:0], body, start)
	rq.plain = plain[:0] // keep what the plaintext grew to
	if err != nil || falsy(plain) {
		s.plain(ctx, 401)
		return
	}
	if !utf8.Valid(plain) {
		// Every answer must be UTF-8 JSON the Python client can read, and
		// the reqid and stored values are sent back: refuse the request as
		// the reference does (its json.loads fails: 401).
		s.plainReason(ctx, 401, "the plaintext is not valid UTF-8")
		return
	}
	if rawKind(plain) != '{' {
		s.plain(ctx, 400) // a JSON value that is not an envelope
		return
	}
	env, err := decodeEnvelope(plain)
	if errors.Is(err, wire.ErrJSONSyntax) {
		s.plain(ctx, 401) // a plaintext that is not JSON fails decryption
		return
	}
	if err != nil {
		s.plainReason(ctx, 400, "body is missing or not an object")
		return
	}
	reqType, ep, ok := requestType(env.Request)
	if !ok {
		s.plainReason(ctx, 400, "request is missing or not a string")
		return
	}
	if reqType == "echo" {
		s.plain(ctx, 400) // the reference's answer, verbatim
		return
	}
	if ep != nil && !ep.readOnly {
		// A type that writes may hand a value to the core to keep: it
		// gets a plaintext of its own, not the pooled one (request).
		plain = bytes.Clone(plain)
		if env, err = decodeEnvelope(plain); err != nil {
			s.plain(ctx, 500) // the same text decoded above: cannot happen
			return
		}
	}
	if len(env.ReqID) == 0 || rawKind(env.ReqID) == 'n' {
		s.plainReason(ctx, 400, "reqid is missing or null")
		return
	}
	if tooDeep(env.ReqID) {
		s.plainReason(ctx, 400, "reqid is nested too deeply")
		return
	}
	// The client key is read here only for the rate limits, as bytes (no
	// copy for the usual IPv4 address); as a string when something asks for
	// it (call.client).
	var clientIP []byte
	if s.limits != nil {
		if clientIP = clientKeyBytes(env.ClientIP); len(clientIP) == 0 {
			// Rate limits need the end user's address (docs/protocol.md,
			// "The pipeline of `POST /`").
			s.plainReason(ctx, 400, "missing or empty client_ipaddr")
			return
		}
	}
	params := rq.params
	if !bodyParamsInto(params, env.Body, ep) {
		s.plainReason(ctx, 400, "body is missing or not an object")
		return
	}
	if s.limits != nil {
		if ok, retry := s.limits.allow(reqType, clientIP, params, ep != nil); !ok {
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
			s.plain(ctx, 429)
			return
		}
	}
	if ep == nil {
		// The Python server crashes here and sends the bare 400 text; say
		// what is wrong (docs/protocol.md, "Deliberate differences from the
		// Python server").
		s.plainReason(ctx, 400, "unknown request type")
		return
	}
	c := &rq.c
	*c = call{s: s, reqType: ep.name, body: params, clientRaw: env.ClientIP, now: start}
	var res result
	defer s.finish(ep, c, &res, env.ReqID, start)
	if probs := validate(ep.params, params); len(probs) > 0 {
		res = invalidParams(reqType, probs)
	} else if release, err := s.admit(ctx, ep, c); err != nil {
		res = answerOf(result{}, err)
	} else {
		defer release()
		res = answerOf(ep.handle(c))
	}
	if res.status != 0 {
		s.plain(ctx, res.status)
		return
	}
	s.seal(ctx, &res, env.ReqID, start)
}

// seal answers 200 with the sealed envelope of res, its token dated at:
// the request's start, so the clock is read once a request (no client
// applies a TTL to answers, and the date is at most the request's
// duration old).
func (s *Server) seal(ctx *fasthttp.RequestCtx, res *result, reqID []byte, at time.Time) {
	bp, _ := s.bufPool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 4096)
		bp = &b
	}
	// The envelope and then its sealed form go into one pooled buffer;
	// SetBody copies the sealed part into the response's own.
	out := appendEnvelope((*bp)[:0], res, reqID)
	all, err := s.deps.Codec.AppendSealAt(out, out, at)
	*bp = all
	if err == nil {
		ctx.SetStatusCode(200)
		ctx.SetContentType("text/plain; charset=UTF-8")
		ctx.SetBody(all[len(out):])
	}
	s.bufPool.Put(bp)
	if err != nil {
		s.log.Error("seal response", "err", err)
		s.plain(ctx, 500)
	}
}

// maxClientKeyBytes bounds the rate-limit key taken from client_ipaddr:
// the reference's column limit, 280 characters of ASCII. A longer value
// (say a long X-Forwarded-For list) is cut, not refused.
const maxClientKeyBytes = 280

// clientKey returns the rate-limit key of the envelope's client_ipaddr (""
// when it is absent or falsy). The reference accepts any truthy value
// (docs/protocol.md, "The request envelope"), and frontends pass
// X-Forwarded-For lists and host names: an IP address is canonicalised
// (IPv4-mapped IPv6 as IPv4, no zone), so one client has one key; any other
// string is an opaque key, and any other JSON value's text is.
func clientKey(raw json.RawMessage) string {
	if len(raw) == 0 || falsy(raw) {
		return ""
	}
	var s string
	if rawKind(raw) == '"' {
		s = unquote(raw)
	} else {
		s = string(bytes.TrimSpace(raw))
	}
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap().WithZone("")
		var buf [64]byte
		if string(a.AppendTo(buf[:0])) == s {
			return s // already canonical: no second copy
		}
		return a.String()
	}
	return truncateString(s, maxClientKeyBytes)
}

// clientKeyBytes is clientKey as bytes. An address sent as a canonical
// IPv4 string, what frontends send most, is its own key: the result is
// then a slice of raw, not a copy. Anything else goes through clientKey.
func clientKeyBytes(raw json.RawMessage) []byte {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && canonicalIPv4(raw[1:len(raw)-1]) {
		return raw[1 : len(raw)-1]
	}
	return []byte(clientKey(raw))
}

// canonicalIPv4 reports whether b is an IPv4 address as netip prints it:
// four decimal octets of at most 255, without leading zeros. For such a
// b, clientKey returns b itself (TestClientKeyBytes).
func canonicalIPv4(b []byte) bool {
	octets, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n > 255 {
				return false
			}
			octets++
			n, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && n == 0) || digits == 3 {
			return false // not a digit, a leading zero, or too long
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return octets == 4
}

// truncateString cuts s to at most n bytes, at a rune boundary.
func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// pii returns the salted hash that stands for a piece of personal data in
// logs ([PIIHash]).
func (s *Server) pii(v string) string { return PIIHash(s.opts.PIISalt, v) }

// PIIHash returns the salted hash that stands for a piece of personal data
// v in logs (docs/security.md, "Logs"): HMAC-SHA256 keyed by the PII salt,
// 24 hex characters; v itself when the salt is "none". Whatever logs a
// user's data (the front, the core's flows) uses it, so that one user has
// one pseudonym in every log line.
func PIIHash(salt, v string) string {
	if salt == "none" {
		return v
	}
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// fastLogger routes fasthttp's own messages into slog at warning.
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	f.l.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// call is one request being handled: its validated body and context.
type call struct {
	s       *Server
	reqType string
	body    map[string]json.RawMessage
	now     time.Time

	// The client key (clientKey of the envelope's client_ipaddr), read
	// once when first asked for (client).
	clientRaw  json.RawMessage
	clientIP   string
	clientRead bool

	// sess is session-exists' answer, here so that the result can point
	// to it (sessionInfo).
	sess sessionInfo
}

// client returns the request's client key ("" when client_ipaddr is absent
// or falsy).
func (c *call) client() string {
	if !c.clientRead {
		c.clientIP, c.clientRead = clientKey(c.clientRaw), true
	}
	return c.clientIP
}

// str returns a string parameter ("" when absent or not a string).
func (c *call) str(name string) string {
	raw, ok := c.body[name]
	if !ok || rawKind(raw) != '"' {
		return ""
	}
	if r, ok := knownWord(raw[1 : len(raw)-1]); ok {
		return r
	}
	return unquote(raw)
}

// knownWord returns the string b spells, as a constant, when it is a word
// of the default permission model (a role, action, visibility or item
// type): the access and limit checks are made of them, and a switch on
// string(b) needs no copy of b.
func knownWord(b []byte) (string, bool) {
	if r, ok := knownRole(b); ok {
		return r, true
	}
	switch string(b) {
	case "list":
		return "list", true
	case "view":
		return "view", true
	case "create":
		return "create", true
	case "delete":
		return "delete", true
	case "edit":
		return "edit", true
	case "change_visibility":
		return "change_visibility", true
	case "change_owner":
		return "change_owner", true
	case "public":
		return "public", true
	case "unlisted":
		return "unlisted", true
	case "shared":
		return "shared", true
	case "private":
		return "private", true
	case "object":
		return "object", true
	case "dataset":
		return "dataset", true
	case "collection":
		return "collection", true
	case "apikey":
		return "apikey", true
	case "preference":
		return "preference", true
	case "max_requests":
		return "max_requests", true
	case "max_requests_per_minute":
		return "max_requests_per_minute", true
	}
	return "", false
}

// knownRole returns the role name b spells, as a constant, when it is one
// of the default model's roles.
func knownRole(b []byte) (string, bool) {
	switch string(b) {
	case "superuser":
		return "superuser", true
	case "staff":
		return "staff", true
	case "authenticated":
		return "authenticated", true
	case "anonymous":
		return "anonymous", true
	case "locked":
		return "locked", true
	}
	return "", false
}

// strBytes is str as bytes: for a string without escapes, a slice of the
// plaintext, so it must not be kept past the request (nor changed).
func (c *call) strBytes(name string) []byte {
	raw, ok := c.body[name]
	if !ok || rawKind(raw) != '"' {
		return nil
	}
	if q := raw[1 : len(raw)-1]; bytes.IndexByte(q, '\\') < 0 {
		return q
	}
	return []byte(unquote(raw))
}

// unquote returns the value of a JSON string the scanner has checked.
func unquote(raw []byte) string {
	if q := raw[1 : len(raw)-1]; bytes.IndexByte(q, '\\') < 0 {
		return string(q) // no escapes: the text is the value
	}
	var v string
	_ = json.Unmarshal(raw, &v)
	return v
}

// int returns an integer parameter; ok is false when it is absent, null or
// not an integer that fits in int64.
func (c *call) int(name string) (v int64, ok bool) {
	raw, present := c.body[name]
	if !present {
		return 0, false
	}
	return intValue(raw)
}

// boolean returns a bool parameter (false when absent).
func (c *call) boolean(name string) bool {
	raw := c.body[name]
	return rawKind(raw) == 't'
}

// raw returns a parameter's JSON text (nil when absent).
func (c *call) raw(name string) json.RawMessage { return c.body[name] }

// has reports whether a parameter is present (after falsy kwargs were
// dropped by validation).
func (c *call) has(name string) bool {
	_, ok := c.body[name]
	return ok
}
