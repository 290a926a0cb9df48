// Package client is a Go client for authnzerver (and for the original
// Python server): it seals requests with the shared Fernet key, sends them
// to POST /, and opens the answers. Frontends import it.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/authnzerver/authnzerver/wire"
)

// Client talks to one authnzerver.
type Client struct {
	url   string
	codec *wire.Codec
	http  *http.Client
}

// New returns a client for the server at url (its base URL, path "/") with
// the shared key (or a comma-separated key list; the first seals).
func New(url, key string) (*Client, error) {
	c, err := wire.NewCodec(wire.ParseKeyList(key), 0)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{url: url, codec: c, http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// WithHTTPClient replaces the HTTP client (for TLS settings or timeouts).
func (c *Client) WithHTTPClient(h *http.Client) *Client { c.http = h; return c }

// Response is an answer of the server.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header holds the HTTP headers (Retry-After on 429).
	Header http.Header
	// Success is the envelope's success; false for every non-200 answer.
	Success bool
	// Response is the envelope's response object (with its own success,
	// messages and failure_reason keys), nil for non-200 answers.
	Response map[string]any
	// Messages are the end-user messages.
	Messages []string
	// FailureReason is the envelope's failure_reason, or for an error
	// status the body text, as the Python client reports it.
	FailureReason string
	// ReqID is the echoed request id.
	ReqID json.RawMessage
	// Raw is the decrypted envelope (nil for non-200 answers and for a 200
	// body that does not open).
	Raw []byte
}

// ErrReqIDMismatch is returned when the answer's reqid differs from the one
// sent: such an answer belongs to another request and must be rejected.
var ErrReqIDMismatch = errors.New("client: server returned a different request id")

// Request sends one request. body should hold client_ipaddr (the server
// needs it when rate limiting is on); it is also copied to the envelope.
func (c *Client) Request(ctx context.Context, reqType string, body map[string]any) (*Response, error) {
	id := make([]byte, 8)
	rand.Read(id)
	return c.RequestWithID(ctx, reqType, body, base64.RawURLEncoding.EncodeToString(id))
}

// RequestWithID is Request with the reqid given (any JSON value).
func (c *Client) RequestWithID(ctx context.Context, reqType string, body map[string]any, reqID any) (*Response, error) {
	if body == nil {
		body = map[string]any{}
	}
	env := map[string]any{"request": reqType, "body": body, "reqid": reqID}
	if ip, ok := body["client_ipaddr"]; ok {
		env["client_ipaddr"] = ip
	}
	plain, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", reqType, err)
	}
	sealed, err := c.codec.Seal(plain)
	if err != nil {
		return nil, err
	}
	resp, err := c.Post(ctx, sealed)
	if err != nil {
		return nil, err
	}
	if resp.Raw != nil {
		want, _ := json.Marshal(reqID)
		if !bytes.Equal(compact(resp.ReqID), compact(want)) {
			return resp, ErrReqIDMismatch
		}
	}
	return resp, nil
}

// Post sends an already sealed body and opens the answer.
func (c *Client) Post(ctx context.Context, sealed []byte) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(sealed))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	hr, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: post: %w", err)
	}
	defer hr.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hr.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("client: read answer: %w", err)
	}
	r := &Response{StatusCode: hr.StatusCode, Header: hr.Header}
	if hr.StatusCode != http.StatusOK {
		// Error answers are plain text (docs/protocol.md, "HTTP statuses"), reported as the
		// Python client does: the body is the failure reason.
		r.FailureReason = string(bytes.TrimSpace(data))
		r.Messages = []string{"This request could not be completed.", "There was a problem communicating with the auth server."}
		return r, nil
	}
	plain, err := c.codec.Open(data)
	if err != nil {
		r.FailureReason = "could not decrypt authnzerver response"
		return r, nil
	}
	var env wire.Response
	if err := json.Unmarshal(plain, &env); err != nil {
		return nil, fmt.Errorf("client: answer is not an envelope: %w", err)
	}
	r.Raw = plain
	r.Success = env.Success && hr.StatusCode == http.StatusOK
	r.Messages = env.Messages
	r.ReqID = env.ReqID
	if env.FailureReason != nil {
		r.FailureReason = *env.FailureReason
	}
	if len(env.Response) > 0 {
		if err := json.Unmarshal(env.Response, &r.Response); err != nil {
			return nil, fmt.Errorf("client: response is not an object: %w", err)
		}
	}
	return r, nil
}

// Seal encrypts a plaintext envelope (for tests that send odd envelopes).
func (c *Client) Seal(plain []byte) ([]byte, error) { return c.codec.Seal(plain) }

// Open decrypts a sealed body.
func (c *Client) Open(body []byte) ([]byte, error) { return c.codec.Open(body) }

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// Str returns a string field of the response object ("" if absent).
func (r *Response) Str(key string) string {
	s, _ := r.Response[key].(string)
	return s
}

// Int returns a numeric field of the response object as int64.
func (r *Response) Int(key string) (int64, bool) {
	f, ok := r.Response[key].(float64)
	return int64(f), ok
}

// Map returns an object field of the response object.
func (r *Response) Map(key string) map[string]any {
	m, _ := r.Response[key].(map[string]any)
	return m
}
