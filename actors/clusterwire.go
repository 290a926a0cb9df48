package actors

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// The messages shard grains of different nodes exchange (docs/design.md,
// "Cluster mode"): an operation for a shard and its reply. protoactor
// remote carries each as the bytes of a google.protobuf.BytesValue:
//
//	version (1 byte) | kind ('Q' request, 'R' reply) | JSON body | HMAC-SHA256
//
// The MAC, keyed by a key every node derives from the deployment's secret
// ([DeriveClusterKey]), means that a process that can reach a node's remote
// port but does not hold the secret cannot make a shard run anything; a
// node of another wire version is told so rather than misread.

// ClusterWireVersion is the version of the cluster messages this build
// speaks. A message of another version is refused ([ErrPeerVersion]).
const ClusterWireVersion byte = 1

const (
	wireRequestKind byte = 'Q'
	wireReplyKind   byte = 'R'
	wireMACLen           = sha256.Size
	// maxWireBytes bounds a message: an encoded operation and its
	// framing, or a reply (the largest, a page of users, stays far below).
	maxWireBytes = 4 << 20
)

// ErrPeerMessage reports a message from another node that does not decode:
// wrong MAC, malformed, oversized or of an unknown operation.
var ErrPeerMessage = errors.New("actors: bad message from another node")

// ErrPeerVersion reports a message from a node of another wire version.
var ErrPeerVersion = fmt.Errorf("%w: another version of authnzerver (cluster wire version differs)", ErrPeerMessage)

// ErrNotOwner is the answer of a node asked for a shard it does not (or no
// longer) serve: the operation did not run, so the caller finds the owner
// again and resends it. After the retries it reaches the client as "busy,
// retry later".
var ErrNotOwner = fmt.Errorf("%w: the shard is moving between nodes", ErrBusy)

// ErrLeaving is the ErrNotOwner of a node that is leaving the cluster: its
// grains have stopped, but it is still in the member list, so the shard
// maps to it until it leaves. The caller waits for the next topology
// rather than ask it again (a message that reaches it after it left is
// never answered: the others block a member that left).
var ErrLeaving = fmt.Errorf("%w (the node is leaving)", ErrNotOwner)

// DeriveClusterKey derives the key that authenticates cluster messages
// from the deployment's secret (the first Fernet key), so every node of a
// deployment has it and nothing else needs distributing.
func DeriveClusterKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("authnzerver cluster messages v1"))
	return h.Sum(nil)
}

func sealWire(key []byte, kind byte, body []byte) []byte {
	out := make([]byte, 0, 2+len(body)+wireMACLen)
	out = append(out, ClusterWireVersion, kind)
	out = append(out, body...)
	h := hmac.New(sha256.New, key)
	h.Write(out)
	return h.Sum(out)
}

// openWire checks a message's framing and MAC and returns its body.
func openWire(key []byte, kind byte, b []byte) ([]byte, error) {
	if len(b) > maxWireBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrPeerMessage, len(b))
	}
	if len(b) < 2+wireMACLen {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrPeerMessage, len(b))
	}
	if b[0] != ClusterWireVersion {
		return nil, fmt.Errorf("%w: got %d, this node speaks %d", ErrPeerVersion, b[0], ClusterWireVersion)
	}
	if b[1] != kind {
		return nil, fmt.Errorf("%w: kind %q where %q was expected", ErrPeerMessage, b[1], kind)
	}
	n := len(b) - wireMACLen
	h := hmac.New(sha256.New, key)
	h.Write(b[:n])
	if !hmac.Equal(h.Sum(nil), b[n:]) {
		return nil, fmt.Errorf("%w: MAC does not verify (another deployment's secret?)", ErrPeerMessage)
	}
	return b[2:n], nil
}

// wireRequest asks the grain of Shard to run Op (in [EncodeOp]'s form).
type wireRequest struct {
	Shard int             `json:"shard"`
	Op    json.RawMessage `json:"op"`
}

// wireReply is a grain's answer: the operation's value (JSON of the type
// the caller asked for), its error, and the error of making its change
// durable (the grain replies once the change is committed).
type wireReply struct {
	Value   json.RawMessage `json:"value,omitempty"`
	Err     *wireError      `json:"err,omitempty"`
	Durable *wireError      `json:"durable,omitempty"`
}

// wireError carries an error across nodes: the codes of the sentinel
// errors it wraps (so errors.Is works on the caller's side), its text, and
// its Reason when it has one (the health check shows it).
type wireError struct {
	Codes  []string `json:"codes,omitempty"`
	Msg    string   `json:"msg"`
	Reason string   `json:"reason,omitempty"`
}

// wireSentinels are the errors callers test for with errors.Is, by the
// code they travel under. A new sentinel that callers test is added here;
// TestWireErrorsKeepSentinels checks that each one survives the trip.
var wireSentinels = map[string]error{
	"not-owner":            ErrNotOwner,
	"leaving":              ErrLeaving,
	"busy":                 ErrBusy,
	"timeout":              ErrTimeout,
	"stopped":              ErrStopped,
	"shard-bug":            ErrShardBug,
	"unwritable":           ErrUnwritable,
	"bad-op":               ErrBadOp,
	"peer-message":         ErrPeerMessage,
	"peer-version":         ErrPeerVersion,
	"extra-too-large":      ErrSessionExtraTooLarge,
	"email-purpose":        ErrEmailPurpose,
	"edit-value":           ErrEditValue,
	"no-change":            shard.ErrNoChange,
	"bad-record":           shard.ErrBadRecord,
	"user-not-found":       shard.ErrUserNotFound,
	"user-exists":          shard.ErrUserExists,
	"email-code-invalid":   shard.ErrEmailCodeInvalid,
	"email-code-expired":   shard.ErrEmailCodeExpired,
	"session-not-found":    shard.ErrSessionNotFound,
	"apikey-invalid":       shard.ErrAPIKeyInvalid,
	"apikey-no-refresh":    shard.ErrAPIKeyNoRefresh,
	"apikey-exists":        shard.ErrAPIKeyExists,
	"disk-full":            persist.ErrDiskFull,
	"writer-closed":        persist.ErrClosed,
	"store-fatal":          persist.ErrFatal,
	"id-source-unreadable": errIDSource,
}

func toWireError(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Msg: err.Error()}
	for code, s := range wireSentinels {
		if errors.Is(err, s) {
			w.Codes = append(w.Codes, code)
		}
	}
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		w.Reason = r.Reason()
	}
	return w
}

// peerError is an error that came from another node.
type peerError struct {
	msg        string
	sentinels  []error
	reasonText string
}

func (e *peerError) Error() string   { return e.msg }
func (e *peerError) Unwrap() []error { return e.sentinels }

// peerReasonError is a peerError that had a Reason.
type peerReasonError struct{ peerError }

func (e *peerReasonError) Reason() string { return e.reasonText }

func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	e := peerError{msg: w.Msg, reasonText: w.Reason}
	for _, c := range w.Codes {
		if s, ok := wireSentinels[c]; ok {
			e.sentinels = append(e.sentinels, s)
		}
	}
	if e.msg == "" {
		e.msg = "actors: error from another node"
	}
	if w.Reason != "" {
		return &peerReasonError{e}
	}
	return &e
}

// wireValue is a reply value still in JSON: it is decoded into the type the
// caller asked for ([resultOf]), which only the caller knows.
type wireValue json.RawMessage

func encodeRequest(key []byte, shardIndex int, op broadcastOp) ([]byte, error) {
	enc, err := EncodeOp(op)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(wireRequest{Shard: shardIndex, Op: enc})
	if err != nil {
		return nil, fmt.Errorf("actors: encode request: %w", err)
	}
	return sealWire(key, wireRequestKind, body), nil
}

func decodeRequest(key, b []byte) (int, broadcastOp, error) {
	body, err := openWire(key, wireRequestKind, b)
	if err != nil {
		return 0, nil, err
	}
	return decodeRequestBody(body)
}

func decodeRequestBody(body []byte) (int, broadcastOp, error) {
	var req wireRequest
	if err := strictUnmarshal(body, &req); err != nil {
		return 0, nil, fmt.Errorf("%w: request: %v", ErrPeerMessage, err)
	}
	if req.Shard < 0 {
		return 0, nil, fmt.Errorf("%w: shard %d", ErrPeerMessage, req.Shard)
	}
	op, err := DecodeOp(req.Op)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrPeerMessage, err)
	}
	return req.Shard, op, nil
}

// encodeReply seals r with the error of making its change durable. A value
// that does not encode becomes an error reply: the caller is answered.
func encodeReply(key []byte, r reply, durableErr error) []byte {
	w := wireReply{Err: toWireError(r.err), Durable: toWireError(durableErr)}
	if r.val != nil {
		v, err := json.Marshal(r.val)
		if err != nil {
			w.Err = toWireError(fmt.Errorf("%w: reply of type %T does not encode: %v", ErrShardBug, r.val, err))
		} else {
			w.Value = v
		}
	}
	body, err := json.Marshal(w)
	if err != nil { // not reached: every field is plain data
		body = []byte(`{"err":{"codes":["shard-bug"],"msg":"actors: reply does not encode"}}`)
	}
	return sealWire(key, wireReplyKind, body)
}

func decodeReply(key, b []byte) (reply, error) {
	body, err := openWire(key, wireReplyKind, b)
	if err != nil {
		return reply{}, err
	}
	return decodeReplyBody(body)
}

func decodeReplyBody(body []byte) (reply, error) {
	var w wireReply
	if err := strictUnmarshal(body, &w); err != nil {
		return reply{}, fmt.Errorf("%w: reply: %v", ErrPeerMessage, err)
	}
	r := reply{err: w.Err.err()}
	if len(w.Value) > 0 && string(w.Value) != "null" {
		r.val = wireValue(w.Value)
	}
	if w.Durable != nil {
		r.ticket = persist.FailedTicket(w.Durable.err())
	}
	return r, nil
}

// decodeWireValue decodes a reply value that came from another node as
// the caller's type.
func decodeWireValue[R any](v wireValue) (R, error) {
	var into R
	if err := json.Unmarshal(v, &into); err != nil {
		return into, fmt.Errorf("%w: reply value for %T: %s", ErrPeerMessage, into, strings.SplitN(err.Error(), "\n", 2)[0])
	}
	return into, nil
}
