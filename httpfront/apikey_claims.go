package httpfront

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// keyClaims is the part of an apikey_dict the server reads. Raw values are
// slices of the request's body.
type keyClaims struct {
	uid   int64
	uidOK bool // uid is a JSON integer that fits in int64
	tkn   string
	rol   string
	okTR  bool // tkn and rol are strings, rol is not empty and tkn has the form of our tokens
	// The claims a refresh copies into the new key (nil when absent).
	iss, ver, aud, sub json.RawMessage
}

// errClaimsMissing means apikey_dict is not an object or lacks uid, tkn or
// rol: the reference answers 400 (docs/protocol.md, "API keys").
var errClaimsMissing = errors.New("httpfront: apikey_dict lacks uid, tkn or rol")

// decodeKeyClaims reads an apikey_dict. Missing uid/tkn/rol is an error;
// claims of the wrong type or form decode with uidOK or okTR false, so that
// the caller refuses them with the structured failure of its request.
//
// It walks the object itself rather than unmarshalling into a map: this is
// on the apikey-verify hot path, and a map costs some thirty allocations.
// Keys match exactly (as in Python, unlike encoding/json's case-insensitive
// struct fields); of duplicate keys the last wins, as in both.
//
// raw must be valid JSON, as every body parameter is: decodeEnvelope's scan
// checked the whole plaintext, and Server.Call's parameters are
// marshalled. So it is walked (wire.WalkObject), not checked again; on
// other text it answers something, but never panics.
func decodeKeyClaims(raw json.RawMessage) (keyClaims, error) {
	var cl keyClaims
	var uid, tkn, rol json.RawMessage
	ok := wire.WalkObject(raw, func(m wire.Member) {
		value := m.Value
		switch claimName(&m) {
		case "uid":
			uid = value
		case "tkn":
			tkn = value
		case "rol":
			rol = value
		case "iss":
			cl.iss = value
		case "ver":
			cl.ver = value
		case "aud":
			cl.aud = value
		case "sub":
			cl.sub = value
		}
	})
	if !ok || uid == nil || tkn == nil || rol == nil {
		return cl, errClaimsMissing
	}
	if isNumber(rawKind(uid)) && isIntLiteral(uid) {
		v, err := strconv.ParseInt(string(uid), 10, 64)
		cl.uid, cl.uidOK = v, err == nil
	}
	var okT, okR bool
	cl.tkn, okT = jsonString(tkn)
	if len(rol) >= 2 && rol[0] == '"' && rol[len(rol)-1] == '"' {
		cl.rol, okR = knownRole(rol[1 : len(rol)-1]) // no copy of a default role's name
	}
	if !okR {
		cl.rol, okR = jsonString(rol)
	}
	cl.okTR = okT && okR && isAPIKeyToken(cl.tkn) && cl.rol != ""
	return cl, nil
}

// claimName returns a member's key when it may be a claim decodeKeyClaims
// reads, and "" (or the decoded key) otherwise. A key without escapes is
// matched without a copy.
func claimName(m *wire.Member) string {
	if m.Escaped {
		return m.Name()
	}
	switch string(m.Key) {
	case "uid":
		return "uid"
	case "tkn":
		return "tkn"
	case "rol":
		return "rol"
	case "iss":
		return "iss"
	case "ver":
		return "ver"
	case "aud":
		return "aud"
	case "sub":
		return "sub"
	}
	return ""
}

// jsonString decodes a raw JSON string value; ok is false for any other
// kind of value.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	// Escapes, or bytes that are not UTF-8, which encoding/json turns into
	// U+FFFD: decoded as it does.
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// isAPIKeyToken reports whether s has the form of the tokens we issue, so a
// foreign or truncated token is refused without a shard hop.
func isAPIKeyToken(s string) bool {
	if len(s) != apiKeyTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// claims holds the values of a key's claims JSON (docs/protocol.md, "API
// keys"). iss, ver, aud and sub are JSON values, carried exactly.
type claims struct {
	iss, ver, aud, sub []byte
	uid                int64
	rol                string
	usa                *string // session-tied keys only
	ipa                string
	tkn                string
	key                *shard.APIKey
}

// appendJSON writes the claims in the reference's order: iss, ver, uid,
// rol, [usa,] aud, sub, ipa, tkn, iat, nbf, exp.
func (k *claims) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"iss":`...)
	dst = append(dst, k.iss...)
	dst = append(dst, `,"ver":`...)
	dst = append(dst, k.ver...)
	dst = append(dst, `,"uid":`...)
	dst = strconv.AppendInt(dst, k.uid, 10)
	dst = append(dst, `,"rol":`...)
	dst = appendString(dst, k.rol)
	if k.usa != nil {
		dst = append(dst, `,"usa":`...)
		dst = appendString(dst, *k.usa)
	}
	dst = append(dst, `,"aud":`...)
	dst = append(dst, k.aud...)
	dst = append(dst, `,"sub":`...)
	dst = append(dst, k.sub...)
	dst = append(dst, `,"ipa":`...)
	dst = appendString(dst, k.ipa)
	dst = append(dst, `,"tkn":`...)
	dst = appendString(dst, k.tkn)
	dst = append(dst, `,"iat":`...)
	dst = wire.AppendTime(dst, k.key.Issued)
	dst = append(dst, `,"nbf":`...)
	dst = wire.AppendTime(dst, k.key.NotBefore)
	dst = append(dst, `,"exp":`...)
	dst = wire.AppendTime(dst, k.key.Expires)
	return append(dst, '}')
}

func (k *claims) String() string { return string(k.appendJSON(nil)) }

// claimValue returns a claim value as compact JSON: strings re-encoded as
// we encode strings, anything else compacted. An absent value is null.
func claimValue(raw json.RawMessage) []byte {
	if s, ok := jsonString(raw); ok {
		return appendString(nil, s)
	}
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return []byte("null")
	}
	return b.Bytes()
}
