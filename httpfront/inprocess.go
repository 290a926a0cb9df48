package httpfront

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrUnknownRequest is returned by [Server.Call] for a request type this
// server does not register.
var ErrUnknownRequest = errors.New("httpfront: unknown request type")

// Call runs one request in process, for the admin commands: the same schema
// validation and handler as a request over the wire, without the Fernet
// layer, the Host check and the rate limits (the caller is the operator at
// the console). The request is logged like a wire request, with client
// "local".
//
// success, messages and failureReason are those of the response envelope;
// response is the action's result object (docs/protocol.md, "The request
// envelope") decoded from JSON. err is [ErrUnknownRequest] for an
// unregistered type, or an error naming the HTTP status when the request was
// answered with a status instead of an envelope (503 busy, 500).
func (s *Server) Call(reqType string, body map[string]any) (success bool, response map[string]any, messages []string, failureReason string, err error) {
	ep := endpoints[reqType]
	if ep == nil {
		return false, nil, nil, "", fmt.Errorf("%w: %q", ErrUnknownRequest, reqType)
	}
	params := make(map[string]json.RawMessage, len(body))
	for k, v := range body {
		b, err := json.Marshal(v)
		if err != nil {
			return false, nil, nil, "", fmt.Errorf("httpfront: call %s: parameter %s: %w", reqType, k, err)
		}
		params[k] = b
	}
	start := time.Now()
	c := &call{s: s, reqType: ep.name, body: params, clientIP: "local", clientRead: true, now: start}
	var res result
	defer s.finish(ep, c, &res, []byte(`"local"`), start)
	if probs := validate(ep.params, params); len(probs) > 0 {
		res = invalidParams(reqType, probs)
	} else {
		res = answerOf(ep.handle(c))
	}
	if res.status != 0 {
		if res.cause != nil {
			return false, nil, nil, "", fmt.Errorf("httpfront: call %s: answered HTTP %d: %w", reqType, res.status, res.cause)
		}
		return false, nil, nil, "", fmt.Errorf("httpfront: call %s: answered HTTP %d: %s", reqType, res.status, statusText(res.status))
	}
	obj := appendResultObject(nil, &res)
	if err := json.Unmarshal(obj, &response); err != nil {
		return false, nil, nil, "", fmt.Errorf("httpfront: call %s: decode result: %w", reqType, err)
	}
	msgs := res.messageList()
	if msgs == nil {
		msgs = []string{}
	}
	return res.ok, response, msgs, res.reason, nil
}

// Registered reports whether a request type is registered.
func Registered(reqType string) bool { return endpoints[reqType] != nil }
