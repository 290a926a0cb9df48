package httpfront

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// ptype is a schema type name (docs/protocol.md, "Invalid parameters").
type ptype uint8

const (
	tStr ptype = iota
	tInt
	tFloat
	tDict
	tList
	tBool
	tAny
	tNone
)

var ptypeNames = [...]string{"str", "int", "float", "dict", "list", "bool", "Any", "None"}

// param is one schema parameter: a required arg or an optional kwarg.
type param struct {
	name     string
	types    []ptype
	required bool
}

func arg(name string, types ...ptype) param   { return param{name: name, types: types, required: true} }
func kwarg(name string, types ...ptype) param { return param{name: name, types: types} }

// kind of a raw JSON value, from its first byte.
func rawKind(v json.RawMessage) byte {
	// A loop, not bytes.TrimLeft: that builds its byte set on every call,
	// and this runs for most values of every request.
	for _, c := range v {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c
		}
	}
	return 0
}

// matches reports whether a raw JSON value is of type t.
//
// As docs/protocol.md, "Invalid parameters", says: unlike the reference, a
// JSON boolean is not an int, "None" accepts only null (not anything at all),
// and a float accepts any JSON number; these were reference bugs
// (docs/protocol.md, "Deliberate differences from the Python server") and
// accepting less of them cannot break a frontend that sends what the schema
// says.
func matches(v json.RawMessage, t ptype) bool {
	k := rawKind(v)
	switch t {
	case tStr:
		return k == '"'
	case tInt:
		_, ok := intValue(v)
		return ok
	case tFloat:
		return isNumber(k) && finiteNumber(v)
	case tDict:
		return k == '{'
	case tList:
		return k == '['
	case tBool:
		return k == 't' || k == 'f'
	case tAny:
		return k != 'n' && k != 0
	case tNone:
		return k == 'n'
	}
	return false
}

func isNumber(k byte) bool { return k == '-' || (k >= '0' && k <= '9') }

func isIntLiteral(v json.RawMessage) bool {
	return !bytes.ContainsAny(v, ".eE")
}

// intValue returns the value of an integer parameter. An integer literal
// that does not fit our int64 ids is not an int: before this check, a
// user_id of 2**64+1 passed validation, was then read as "no id", and
// user-list answered with every user.
func intValue(v json.RawMessage) (int64, bool) {
	if !isNumber(rawKind(v)) || !isIntLiteral(v) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	return n, err == nil
}

// finiteNumber reports whether a JSON number fits a float64 (1e999 does
// not).
func finiteNumber(v json.RawMessage) bool {
	_, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	return err == nil
}

// nonNegative names the integer parameters that are ids, counts or ports:
// a negative value is as invalid for them as a string.
var nonNegative = map[string]bool{
	"user_id": true, "target_userid": true, "target_owner": true,
	"page_after": true, "page_size": true, "emailport": true, "smtp_port": true,
}

// falsy reports Python truthiness of a raw JSON value: kwargs that are falsy
// are treated as absent (docs/protocol.md, "Invalid parameters"), so
// `"extra_info": null` means "no extra info".
func falsy(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	switch string(v) {
	case "null", "false", `""`, "{}", "[]", "0":
		return true
	}
	if len(v) >= 2 && (v[0] == '{' || v[0] == '[') {
		// An empty object or array, possibly with whitespace inside; no
		// need to parse a large payload to tell.
		return len(bytes.TrimSpace(v[1:len(v)-1])) == 0
	}
	if isNumber(rawKind(v)) {
		f, err := strconv.ParseFloat(string(v), 64)
		return err == nil && f == 0
	}
	return false
}

// columnChars bounds string parameters by the reference's column limits
// (docs/protocol.md, "Users, emails and passwords"): what a request may store
// is what the reference could.
var columnChars = map[string]int{"ip_address": 280, "user_agent": 280}

// fitsChars reports whether a JSON string holds at most n characters.
func fitsChars(v json.RawMessage, n int) bool {
	if len(v) <= n+2 { // a character is at least one byte
		return true
	}
	var s string
	return json.Unmarshal(v, &s) == nil && utf8.RuneCountInString(s) <= n
}

// problem is one entry of the invalid-parameters answer (docs/protocol.md,
// "Invalid parameters").
type problem struct {
	Param        string `json:"param"`
	Problem      string `json:"problem"`
	RequiredType any    `json:"required_type"`
	Required     bool   `json:"required_param"`
}

func (p param) typeName() any {
	if len(p.types) == 1 {
		return ptypeNames[p.types[0]]
	}
	names := make([]string, len(p.types))
	for i, t := range p.types {
		names[i] = ptypeNames[t]
	}
	return names
}

// validate checks body against params and returns the problems. Present
// kwargs that are falsy are dropped from body.
func validate(params []param, body map[string]json.RawMessage) []problem {
	var probs []problem
	for _, p := range params {
		v, ok := body[p.name]
		if !ok {
			if p.required {
				probs = append(probs, problem{p.name, "missing", p.typeName(), true})
			}
			continue
		}
		if !p.required && falsy(v) {
			delete(body, p.name)
			continue
		}
		good := false
		for _, t := range p.types {
			if matches(v, t) {
				good = true
				break
			}
		}
		if n, isInt := intValue(v); good && isInt && n < 0 && nonNegative[p.name] {
			good = false
		}
		if !good {
			probs = append(probs, problem{p.name, "incorrect type", p.typeName(), p.required})
			continue
		}
		if k := rawKind(v); (k == '{' || k == '[') && tooDeep(v) {
			probs = append(probs, problem{p.name, "nested too deeply", p.typeName(), p.required})
			continue
		}
		if limit, ok := columnChars[p.name]; ok && rawKind(v) == '"' && !fitsChars(v, limit) {
			probs = append(probs, problem{p.name, "too long", p.typeName(), p.required})
		}
	}
	return probs
}

// invalidParams is the invalid-parameters answer (docs/protocol.md, "Invalid
// parameters"): HTTP 200, two levels of response, no top-level
// failure_reason.
func invalidParams(reqType string, probs []problem) result {
	inner, _ := json.Marshal(struct {
		Problems      []problem `json:"problems"`
		FailureReason string    `json:"failure_reason"`
	}{probs, "invalid request parameters"})
	return result{
		messages: []string{"request '" + reqType + "' has invalid parameters"},
		fields:   []field{{"response", rawJSON(inner)}},
	}
}
