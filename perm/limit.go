package perm

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// CheckLimit applies role's limit limitName to value (user-check-limit) and
// reports whether the value is within it.
//
// value is the decoded JSON value_to_check: a json.Number (decoder with
// UseNumber), float64, string, bool or nil; Go integer and float types are
// accepted too. It is cast to the limit's type the way Python's int() and
// float() do:
//   - int: a JSON integer as is; a JSON number with a fraction or exponent is
//     a float, truncated toward zero (int(1.5) == 1); a string must be a
//     base-10 integer ("12", " -7 ", "1_000"; not "1.5", not "1e3"); a bool
//     is 0 or 1; an infinite or NaN float fails.
//   - float: numbers and bools convert; a string must be a Python float
//     literal ("1.5", "1e3", "inf", "nan"; not hex); a JSON integer too
//     large for a float64 fails.
//
// Integers beyond int64 compare exactly (they are above or below every
// limit). Non-ASCII digits, which Python's int() also accepts, are refused.
//
// A limit name the role does not have passes (true). A value that cannot be
// cast fails (false, nil error). An undeclared role returns an error wrapping
// [ErrUnknownRole].
func (m *Model) CheckLimit(role, limitName string, value any) (bool, error) {
	r, ok := m.roleIdx[role]
	if !ok {
		return false, fmt.Errorf("perm: check limit %q as role %q: %w", limitName, role, ErrUnknownRole)
	}
	l, ok := m.rolePol[r].limits[limitName]
	if !ok {
		return true, nil
	}
	c := cast(value, l.float)
	if !c.ok {
		return false, nil
	}
	if l.float {
		if l.gt {
			return c.f > l.f, nil
		}
		return c.f < l.f, nil
	}
	switch {
	case c.over > 0:
		return l.gt, nil
	case c.over < 0:
		return !l.gt, nil
	case l.gt:
		return c.i > l.i, nil
	default:
		return c.i < l.i, nil
	}
}

// castResult is a value cast to int or float.
type castResult struct {
	ok   bool
	i    int64   // int result, valid when over == 0
	over int8    // int result: +1 above MaxInt64, -1 below MinInt64
	f    float64 // float result
}

func cast(value any, toFloat bool) castResult {
	switch v := value.(type) {
	case json.Number:
		return castNumber(v, toFloat)
	case string:
		if toFloat {
			return pyFloat(v)
		}
		return pyInt(v)
	case float64:
		return fromFloat(v, toFloat)
	case float32:
		return fromFloat(float64(v), toFloat)
	case bool:
		if v {
			return fromInt(1)
		}
		return fromInt(0)
	case int:
		return fromInt(int64(v))
	case int8:
		return fromInt(int64(v))
	case int16:
		return fromInt(int64(v))
	case int32:
		return fromInt(int64(v))
	case int64:
		return fromInt(v)
	case uint:
		return fromUint(uint64(v))
	case uint8:
		return fromUint(uint64(v))
	case uint16:
		return fromUint(uint64(v))
	case uint32:
		return fromUint(uint64(v))
	case uint64:
		return fromUint(v)
	}
	// nil (Python None), arrays, objects: int()/float() raise TypeError.
	return castResult{}
}

func fromInt(i int64) castResult {
	return castResult{ok: true, i: i, f: float64(i)}
}

func fromUint(u uint64) castResult {
	if u > math.MaxInt64 {
		return castResult{ok: true, over: 1, f: float64(u)}
	}
	return fromInt(int64(u))
}

// fromFloat is Python's float(f) or int(f): int truncates toward zero and
// raises on infinities and NaN.
func fromFloat(f float64, toFloat bool) castResult {
	if toFloat {
		return castResult{ok: true, f: f}
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return castResult{}
	}
	t := math.Trunc(f)
	switch {
	case t >= 1<<63:
		return castResult{ok: true, over: 1, f: f}
	case t < -(1 << 63):
		return castResult{ok: true, over: -1, f: f}
	}
	return castResult{ok: true, i: int64(t), f: f}
}

// castNumber casts a JSON number the way Python sees it after json.loads: a
// literal without fraction or exponent is an int, any other is a float.
func castNumber(n json.Number, toFloat bool) castResult {
	s := string(n)
	isInt, ok := jsonNumber(s)
	if !ok {
		return castResult{}
	}
	if isInt {
		if toFloat {
			// float(int) raises OverflowError beyond the float range.
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return castResult{}
			}
			return castResult{ok: true, f: f}
		}
		return decInt(s)
	}
	// json.loads makes float('1e400') == inf; ParseFloat returns the same
	// ±Inf (or 0 on underflow) with ErrRange, which we therefore ignore.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return castResult{}
	}
	return fromFloat(f, toFloat)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// jsonNumber reports whether s is a JSON number literal and whether it is an
// integer literal (no fraction, no exponent).
func jsonNumber(s string) (isInt, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false, false
	}
	isInt = true
	if i < len(s) && s[i] == '.' {
		isInt = false
		i++
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == j {
			return false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		isInt = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == j {
			return false, false
		}
	}
	return isInt, i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// pySpace reports whether r is whitespace to Python's str.strip() (and so
// to int() and float()): Go's unicode.IsSpace plus U+001C..U+001F.
func pySpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0,
		0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// pyInt is Python's int(s) for base 10: surrounding whitespace, an optional
// sign, ASCII digits with single underscores between them. It does not
// allocate.
func pyInt(s string) castResult {
	return decInt(pyTrim(s))
}

// pyTrim is Python's str.strip(), with a fast path for the common case of
// nothing to strip.
func pyTrim(s string) string {
	if s == "" || (asciiNonSpace(s[0]) && asciiNonSpace(s[len(s)-1])) {
		return s
	}
	return strings.TrimFunc(s, pySpace)
}

func asciiNonSpace(c byte) bool { return c > ' ' && c < 0x80 }

// decInt parses [+-]digits(_?digits)* with saturation beyond int64.
func decInt(s string) castResult {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return castResult{}
	}
	var mag uint64
	big := false
	prevDigit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			if !prevDigit || i == len(s)-1 {
				return castResult{}
			}
			prevDigit = false
			continue
		}
		if !isDigit(c) {
			return castResult{}
		}
		prevDigit = true
		if big {
			continue
		}
		d := uint64(c - '0')
		if mag > (math.MaxUint64-d)/10 {
			big = true
			continue
		}
		mag = mag*10 + d
	}
	switch {
	case neg && (big || mag > 1<<63):
		return castResult{ok: true, over: -1, f: math.Inf(-1)}
	case !neg && (big || mag > math.MaxInt64):
		return castResult{ok: true, over: 1, f: math.Inf(1)}
	case neg:
		// -mag fits: mag <= 1<<63.
		return castResult{ok: true, i: int64(-mag), f: -float64(mag)}
	}
	return castResult{ok: true, i: int64(mag), f: float64(mag)}
}

// pyFloat is Python's float(s) for a string: surrounding whitespace, then a
// decimal literal with optional underscores between digits, or inf,
// infinity, nan in any case, each with an optional sign.
func pyFloat(s string) castResult {
	s = pyTrim(s)
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	switch {
	case strings.EqualFold(body, "nan"):
		return castResult{ok: true, f: math.NaN()}
	case strings.EqualFold(body, "inf") || strings.EqualFold(body, "infinity"):
		if s[0] == '-' {
			return castResult{ok: true, f: math.Inf(-1)}
		}
		return castResult{ok: true, f: math.Inf(1)}
	}
	if !pyDecimal(body) {
		return castResult{}
	}
	if strings.IndexByte(s, '_') >= 0 {
		s = strings.ReplaceAll(s, "_", "")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return castResult{}
	}
	return castResult{ok: true, f: f}
}

// pyDecimal checks (digitpart ["." [digitpart]] | "." digitpart) [exponent]
// where digitpart is digit (["_"] digit)* and exponent is [eE][+-]digitpart.
func pyDecimal(s string) bool {
	i, n := digitPart(s, 0)
	if i < len(s) && s[i] == '.' {
		var m int
		i, m = digitPart(s, i+1)
		n += m
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		var m int
		if i, m = digitPart(s, i); m == 0 {
			return false
		}
	}
	return i == len(s)
}

// digitPart consumes digit (["_"] digit)* from s[i:] and returns the index
// after it and the number of digits consumed (0 if none).
func digitPart(s string, i int) (int, int) {
	n := 0
	for i < len(s) {
		switch {
		case isDigit(s[i]):
			n++
			i++
		case s[i] == '_' && n > 0 && i+1 < len(s) && isDigit(s[i+1]):
			i++
		default:
			return i, n
		}
	}
	return i, n
}
