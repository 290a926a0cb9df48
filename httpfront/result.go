package httpfront

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// result is what a request handler answers: the action's result object of
// docs/protocol.md, "The request envelope". fields keep their order on the
// wire.
type result struct {
	ok     bool
	reason string // failure_reason; "" means the key is absent
	// messages are the end-user messages (never nil on the wire). The
	// usual single message of success and failure is kept in msg instead
	// (oneMsg), so that it needs no slice: a result is returned by value
	// through a function value, and any slice it holds is on the heap.
	messages []string
	msg      string
	oneMsg   bool
	// fields are the result object's fields after "success", in order:
	// the first ones in inl (nInl of them), the rest in fields, for the
	// same reason.
	inl    [2]field
	nInl   uint8
	fields []field
	// status, when not zero, answers with that HTTP status and its text
	// instead of an envelope (for busy and internal errors).
	status int
	// cause is the error behind a status answer, for logs and metrics.
	cause error
}

type field struct {
	name  string
	value any // marshalled with encoding/json, or a rawJSON
}

// rawJSON is a value already encoded as JSON.
type rawJSON []byte

func success(msgs ...string) result { return result{ok: true}.withMessages(msgs) }

func failure(reason string, msgs ...string) result {
	return result{reason: reason}.withMessages(msgs)
}

// withMessages sets r's messages to msgs, which it does not keep (so that
// a caller's variadic list can stay on its stack).
func (r result) withMessages(msgs []string) result {
	r.msg, r.oneMsg, r.messages = "", false, nil
	switch len(msgs) {
	case 0:
		if msgs != nil {
			r.messages = []string{}
		}
	case 1:
		r.msg, r.oneMsg = msgs[0], true
	default:
		r.messages = slices.Clone(msgs)
	}
	return r
}

// messageList returns r's messages (nil when there are none).
func (r *result) messageList() []string {
	if r.oneMsg {
		return append([]string{r.msg}, r.messages...)
	}
	return r.messages
}

// addMessage appends an end-user message.
func (r *result) addMessage(m string) {
	if r.oneMsg {
		r.messages = append([]string{r.msg}, r.messages...)
		r.msg, r.oneMsg = "", false
	}
	r.messages = append(r.messages, m)
}

// with adds a field. v is boxed into an interface: a value of more than a
// word allocates there, so a hot path passes a pointer (sessionInfo in
// call).
func (r result) with(name string, v any) result {
	if int(r.nInl) < len(r.inl) && len(r.fields) == 0 {
		r.inl[r.nInl] = field{name, v}
		r.nInl++
		return r
	}
	r.fields = append(r.fields, field{name, v})
	return r
}

// fieldList returns r's fields in order.
func (r *result) fieldList() []field {
	return append(r.inl[:r.nInl:r.nInl], r.fields...)
}

// appendMessages appends r's messages as a JSON array.
func appendMessages(dst []byte, r *result) []byte {
	if !r.oneMsg {
		return appendStrings(dst, r.messages)
	}
	dst = append(dst, '[')
	dst = appendString(dst, r.msg)
	for _, m := range r.messages {
		dst = append(dst, ',')
		dst = appendString(dst, m)
	}
	return append(dst, ']')
}

// appendEnvelope appends the answer envelope of r (docs/protocol.md, "The
// request envelope").
func appendEnvelope(dst []byte, r *result, reqID []byte) []byte {
	dst = append(dst, `{"success":`...)
	dst = strconv.AppendBool(dst, r.ok)
	dst = append(dst, `,"response":`...)
	dst = appendResultObject(dst, r)
	dst = append(dst, `,"messages":`...)
	dst = appendMessages(dst, r)
	dst = append(dst, `,"reqid":`...)
	dst = append(dst, reqID...)
	if !r.ok && r.reason != "" {
		dst = append(dst, `,"failure_reason":`...)
		dst = appendString(dst, r.reason)
	}
	return append(dst, '}')
}

func appendResultObject(dst []byte, r *result) []byte {
	dst = append(dst, `{"success":`...)
	dst = strconv.AppendBool(dst, r.ok)
	for _, fs := range [2][]field{r.inl[:r.nInl], r.fields} {
		for _, f := range fs {
			dst = append(dst, ',')
			dst = appendString(dst, f.name)
			dst = append(dst, ':')
			dst = appendValue(dst, f.value)
		}
	}
	dst = append(dst, `,"messages":`...)
	dst = appendMessages(dst, r)
	if r.reason != "" {
		dst = append(dst, `,"failure_reason":`...)
		dst = appendString(dst, r.reason)
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case rawJSON:
		if len(x) == 0 {
			return append(dst, "null"...)
		}
		return append(dst, x...)
	case json.RawMessage:
		if len(x) == 0 {
			return append(dst, "null"...)
		}
		return append(dst, x...)
	case string:
		return appendString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case appender:
		return x.appendJSON(dst)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}

// appender is implemented by hot-path values that encode themselves without
// reflection.
type appender interface{ appendJSON(dst []byte) []byte }

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// (including <, > and & so output is safe to embed in HTML).
func appendString(dst []byte, s string) []byte { return appendJSONString(dst, s) }

// jsonPlain marks the bytes a JSON string carries as they are (ASCII, not
// a control character, quote, backslash or HTML-special): one table load a
// byte on the common path.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString is appendString for a string held as either type: a
// value read from the pooled plaintext is encoded without a copy.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < 0x80 {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		// Multi-byte UTF-8: copy valid runes through, replace invalid bytes
		// and escape U+2028/U+2029 like encoding/json.
		// At most UTFMax bytes: converting them to a string costs no
		// allocation.
		r, size := decodeRune(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == 0xFFFD && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
