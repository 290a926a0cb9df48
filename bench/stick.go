package bench

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/valyala/fasthttp"

	"github.com/authnzerver/authnzerver/wire"
)

// The codec stick is the yardstick of the session-exists targets:
// a stateless handler doing the protocol's work with the stock libraries
// (fernet-go, encoding/json) and nothing of ours, answering with a
// session-exists success of the real answer's shape and size. Our server
// can only beat it by making the codec cheaper, not by doing less.

// stickSessionInfo is the 18-key session_info of a session-exists answer,
// in our server's key order (httpfront/views.go, sessionInfo.appendJSON).
// Times are strings already in the wire format: the stick prices the codec,
// and our server's answer carries the same bytes.
type stickSessionInfo struct {
	UserID           int64          `json:"user_id"`
	SystemID         string         `json:"system_id"`
	FullName         string         `json:"full_name"`
	Email            string         `json:"email"`
	ExtraInfo        map[string]any `json:"extra_info"`
	EmailVerified    bool           `json:"email_verified"`
	EmailVerifySent  *string        `json:"emailverify_sent_datetime"`
	IsActive         bool           `json:"is_active"`
	LastLoginTry     *string        `json:"last_login_try"`
	LastLoginSuccess *string        `json:"last_login_success"`
	CreatedOn        string         `json:"created_on"`
	UserRole         string         `json:"user_role"`
	SessionToken     string         `json:"session_token"`
	IPAddress        string         `json:"ip_address"`
	UserAgent        string         `json:"user_agent"`
	Created          string         `json:"created"`
	Expires          string         `json:"expires"`
	ExtraInfoJSON    map[string]any `json:"extra_info_json"`
}

type stickResponse struct {
	Success     bool              `json:"success"`
	SessionInfo *stickSessionInfo `json:"session_info"`
	Messages    []string          `json:"messages"`
}

type stickAnswer struct {
	Success  bool            `json:"success"`
	Response stickResponse   `json:"response"`
	Messages []string        `json:"messages"`
	ReqID    json.RawMessage `json:"reqid"`
}

// stickRequest is the request envelope. The body is decoded whole into a
// map, as a generic handler (or the Python server) does: the server under
// test has to parse it too to find the session token.
type stickRequest struct {
	Request  string          `json:"request"`
	Body     map[string]any  `json:"body"`
	ReqID    json.RawMessage `json:"reqid"`
	ClientIP string          `json:"client_ipaddr"`
}

var errStickRequest = errors.New("bench: codec-stick: not a request envelope")

// codecStick opens requests and seals session-exists answers with fernet-go
// and encoding/json only.
type codecStick struct {
	keys []*fernet.Key
	info *stickSessionInfo // filled once, marshalled on every request
}

func newCodecStick(key string) (*codecStick, error) {
	keys, err := fernet.DecodeKeys(key)
	if err != nil {
		return nil, err
	}
	tok, err := wire.RandomToken(32)
	if err != nil {
		return nil, err
	}
	// A live session of the superuser as the bench's session pool holds
	// them: the values (and so the answer's size, about 840 bytes) are
	// those our server answers with in session-check.
	created := time.Now().Add(-time.Minute)
	wt := wire.FormatTime
	info := &stickSessionInfo{
		UserID:        1,
		SystemID:      "2507c68d-6b08-4e89-9446-555b3984b430",
		FullName:      "Superuser account",
		Email:         "admin@bench.example.org",
		ExtraInfo:     map[string]any{"provenance": "auto-created", "type": "system-user"},
		EmailVerified: true,
		IsActive:      true,
		CreatedOn:     wt(created.Add(-time.Hour)),
		UserRole:      "superuser",
		SessionToken:  tok,
		IPAddress:     clientIP(0),
		UserAgent:     userAgents[0],
		Created:       wt(created),
		Expires:       wt(created.Add(24 * time.Hour)),
	}
	return &codecStick{keys: keys, info: info}, nil
}

// answer opens one request body and seals the answer: outer base64,
// fernet-go verify (same freshness window as our server) and decrypt,
// envelope unmarshal, answer marshal, fernet-go encrypt and sign, outer
// base64.
func (c *codecStick) answer(body []byte) ([]byte, error) {
	tok := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n, err := base64.StdEncoding.Decode(tok, body)
	if err != nil {
		return nil, wire.ErrUnauthenticated
	}
	plain := fernet.VerifyAndDecrypt(tok[:n], wire.DefaultMaxAge, c.keys)
	if plain == nil {
		return nil, wire.ErrUnauthenticated
	}
	var req stickRequest
	if err := json.Unmarshal(plain, &req); err != nil || len(req.ReqID) == 0 || req.Request == "" {
		return nil, errStickRequest
	}
	msgs := []string{"Session look up successful."}
	out, err := json.Marshal(stickAnswer{
		Success:  true,
		Response: stickResponse{Success: true, SessionInfo: c.info, Messages: msgs},
		Messages: msgs,
		ReqID:    req.ReqID,
	})
	if err != nil {
		return nil, err
	}
	sealed, err := fernet.EncryptAndSign(out, c.keys[0])
	if err != nil {
		return nil, err
	}
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(sealed)))
	base64.StdEncoding.Encode(enc, sealed)
	return enc, nil
}

// startCodecStick starts the `codec-stick` baseline (see codecStick).
func startCodecStick(key string) (*Target, *baseline, error) {
	cs, err := newCodecStick(key)
	if err != nil {
		return nil, nil, err
	}
	handler := func(ctx *fasthttp.RequestCtx) {
		out, err := cs.answer(ctx.PostBody())
		switch {
		case errors.Is(err, wire.ErrUnauthenticated):
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
			return
		case errors.Is(err, errStickRequest):
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			return
		case err != nil:
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("text/plain; charset=UTF-8")
		ctx.SetBody(out)
	}
	return serveBaseline("codec-stick", key, handler)
}
