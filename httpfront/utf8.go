package httpfront

import (
	"bytes"
	"unicode/utf8"
)

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// maxJSONDepth bounds the nesting of the free-form JSON a request may hold
// (extra_info_json, update_dict, reqid, …). What the server accepts it
// stores and sends back, and Python's json.loads fails at about 1,000
// levels: a bound far below that, and far above any real use, keeps every
// answer readable by the Python client.
const maxJSONDepth = 32

// tooDeep reports whether the JSON text v nests deeper than maxJSONDepth.
// Nesting needs an opening bracket a level, so a text with few of them
// (counted with bytes.Count, many bytes at a time) is not walked.
func tooDeep(v []byte) bool {
	if bytes.Count(v, []byte{'{'})+bytes.Count(v, []byte{'['}) <= maxJSONDepth {
		return false
	}
	return jsonDepth(v) > maxJSONDepth
}

// jsonDepth returns the nesting depth of a JSON text (0 for a scalar, 1 for
// {} or [1]). It trusts v to be valid JSON, as the envelope decode checked.
func jsonDepth(v []byte) int {
	depth, most := 0, 0
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped byte
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			most = max(most, depth)
		case '}', ']':
			depth--
		}
	}
	return most
}
