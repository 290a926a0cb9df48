package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
)

// A JSON object scanner for the request envelope and its body, without
// reflection and without copying: it checks that a whole text is JSON
// exactly as encoding/json does (the same grammar, depth limit and
// trailing-data rule) and hands out each member's key and the bytes of its
// value, which stay slices of the text. encoding/json decoding the envelope
// into maps of json.RawMessage cost some twenty allocations a request
// (docs/design.md, "Request path: `session-exists`"); the differential fuzz
// target FuzzScanObjectAgainstEncodingJSON keeps the two in step.

// ErrJSONSyntax is returned for a text that is not JSON.
var ErrJSONSyntax = errors.New("wire: not JSON")

// ErrNotObject is returned by [ScanObject] for JSON that is not an object.
var ErrNotObject = errors.New("wire: not a JSON object")

// maxScanDepth is encoding/json's nesting limit.
const maxScanDepth = 10000

// Member is one member of a scanned object.
type Member struct {
	// Key is the key as written, without its quotes; Escaped says it
	// contains a backslash escape, so it must be unquoted to be read
	// ([Member.Name]).
	Key     []byte
	Escaped bool
	// Value is the member's value, as written (no surrounding white space).
	Value []byte
}

// Name returns the key as a string, unescaped.
func (m *Member) Name() string {
	if !m.Escaped {
		return string(m.Key)
	}
	var s string
	q := make([]byte, 0, len(m.Key)+2)
	q = append(append(append(q, '"'), m.Key...), '"')
	// The scanner has checked the escapes: this cannot fail.
	_ = json.Unmarshal(q, &s)
	return s
}

// Is reports whether the key is name.
func (m *Member) Is(name string) bool {
	if !m.Escaped {
		return string(m.Key) == name
	}
	return m.Name() == name
}

// ScanObject checks that text is one JSON value, an object, and calls fn for
// each member in order (duplicate keys included: the caller decides; with
// encoding/json the last one wins). It returns ErrJSONSyntax when text is
// not JSON at all (whatever fn was told before) and ErrNotObject when it is
// JSON of another kind.
func ScanObject(text []byte, fn func(m Member)) error {
	s := scanner{text: text}
	s.space()
	if s.pos < len(s.text) && s.text[s.pos] != '{' {
		if !s.value(0) || !s.end() {
			return ErrJSONSyntax
		}
		return ErrNotObject
	}
	if !s.object(0, fn) || !s.end() {
		return ErrJSONSyntax
	}
	return nil
}

// ValidJSON reports whether text is one JSON value (json.Valid).
func ValidJSON(text []byte) bool {
	s := scanner{text: text}
	s.space()
	return s.value(0) && s.end()
}

type scanner struct {
	text []byte
	pos  int
}

func (s *scanner) space() {
	i := s.pos
	for i < len(s.text) && isSpace(s.text[i]) {
		i++
	}
	s.pos = i
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.pos == len(s.text)
}

// value scans one value at s.pos (white space before it already skipped).
func (s *scanner) value(depth int) bool {
	if s.pos >= len(s.text) {
		return false
	}
	switch c := s.text[s.pos]; {
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.text)-s.pos < len(lit) || string(s.text[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// object scans an object at s.pos ('{'), calling fn (when not nil) for each
// member.
func (s *scanner) object(depth int, fn func(Member)) bool {
	if depth++; depth > maxScanDepth {
		return false
	}
	s.pos++ // '{'
	s.space()
	if s.pos < len(s.text) && s.text[s.pos] == '}' {
		s.pos++
		return true
	}
	for {
		if s.pos >= len(s.text) || s.text[s.pos] != '"' {
			return false
		}
		start := s.pos + 1
		escaped, ok := s.str()
		if !ok {
			return false
		}
		key := s.text[start : s.pos-1]
		s.space()
		if s.pos >= len(s.text) || s.text[s.pos] != ':' {
			return false
		}
		s.pos++
		s.space()
		vstart := s.pos
		if !s.value(depth) {
			return false
		}
		if fn != nil {
			fn(Member{Key: key, Escaped: escaped, Value: s.text[vstart:s.pos]})
		}
		s.space()
		if s.pos >= len(s.text) {
			return false
		}
		switch s.text[s.pos] {
		case ',':
			s.pos++
			s.space()
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(depth int) bool {
	if depth++; depth > maxScanDepth {
		return false
	}
	s.pos++ // '['
	s.space()
	if s.pos < len(s.text) && s.text[s.pos] == ']' {
		s.pos++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.pos >= len(s.text) {
			return false
		}
		switch s.text[s.pos] {
		case ',':
			s.pos++
			s.space()
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// str scans a string at s.pos ('"') and reports whether it has escapes.
// Bytes of 0x80 and above are taken as they are (encoding/json does; the
// caller checks UTF-8).
func (s *scanner) str() (escaped, ok bool) {
	// On locals, with a table for the bytes passed over: the string scan
	// was half of the envelope's.
	text, i := s.text, s.pos+1 // '"'
	for {
		i = skipWords(text, i, true)
		for i < len(text) && strPlain[text[i]] {
			i++
		}
		if i >= len(text) {
			s.pos = i
			return false, false
		}
		switch c := text[i]; {
		case c == '"':
			s.pos = i + 1
			return escaped, true
		case c < 0x20:
			s.pos = i
			return false, false
		}
		// A backslash.
		escaped = true
		i++
		if i >= len(text) {
			s.pos = i
			return false, false
		}
		switch text[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if len(text)-i < 5 {
				s.pos = i
				return false, false
			}
			for _, h := range text[i+1 : i+5] {
				if !isHex(h) {
					s.pos = i
					return false, false
				}
			}
			i += 5
		default:
			s.pos = i
			return false, false
		}
	}
}

// strPlain marks the bytes a string holds as they are: all but '"', '\\'
// and the control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.text[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(s.text) {
		return false
	}
	switch c := s.text[s.pos]; {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.pos < len(s.text) && s.text[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			return false
		}
	}
	if s.pos < len(s.text) && (s.text[s.pos] == 'e' || s.text[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.text) && (s.text[s.pos] == '+' || s.text[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more decimal digits.
func (s *scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.text) && s.text[s.pos] >= '0' && s.text[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// WalkObject calls fn for each member of text, an object already checked
// (by ScanObject or ValidJSON of a text that holds it: the request body
// inside the envelope, a parameter inside the body). It finds the members
// without checking the grammar again, skipping strings eight bytes at a
// time (skipWords), on the second and third pass over a request. It reports
// false when text is not an object. On text that is not valid JSON the
// members it reports are unspecified, but it stays in bounds and ends
// (FuzzWalkObject).
func WalkObject(text []byte, fn func(m Member)) bool {
	i := skipSpace(text, 0)
	if i >= len(text) || text[i] != '{' {
		return false
	}
	i = skipSpace(text, i+1)
	if i < len(text) && text[i] == '}' {
		return true
	}
	for i < len(text) && text[i] == '"' {
		kEnd, escaped := walkString(text, i)
		if kEnd < 0 {
			return false
		}
		key := text[i+1 : kEnd-1]
		i = skipSpace(text, kEnd)
		if i >= len(text) || text[i] != ':' {
			return false
		}
		v := skipSpace(text, i+1)
		vEnd := walkValue(text, v)
		if vEnd <= v {
			return false
		}
		fn(Member{Key: key, Escaped: escaped, Value: text[v:vEnd]})
		i = skipSpace(text, vEnd)
		if i >= len(text) {
			return false
		}
		switch text[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(text, i+1)
		default:
			return false
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// walkString returns the index after the string that starts at b[i] ('"')
// and whether it holds an escape; -1 when it does not end.
func walkString(b []byte, i int) (end int, escaped bool) {
	j := i + 1
	for {
		j = skipWords(b, j, false)
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) {
			return -1, escaped
		}
		if b[j] == '"' {
			return j + 1, escaped
		}
		// Step over the escaped byte (it may be a quote).
		escaped = true
		j += 2
	}
}

// skipWords passes over the bytes of a string from b[i] eight at a time
// while none of them stops it (stopBytes), and returns the index of the
// first stop byte, or of the tail shorter than a word, which the caller
// reads a byte at a time.
func skipWords(b []byte, i int, controls bool) int {
	for ; i+8 <= len(b); i += 8 {
		if m := stopBytes(binary.LittleEndian.Uint64(b[i:]), controls); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// Word-at-a-time search (the "has a zero byte" trick): for eight bytes
// packed little-endian in w, stopBytes sets the high bit of each byte that
// is '"' or '\\' (and, with controls, below 0x20). Only the lowest set bit
// is exact (a borrow may flag bytes above a true one), which is all its
// callers read: the index of the first such byte is TrailingZeros64/8.
// Strings are most of a request's bytes; this passes over them eight at a
// time.
func stopBytes(w uint64, controls bool) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	m := zero(w^(ones*'"')) | zero(w^(ones*'\\'))
	if controls {
		m |= (w - ones*0x20) & ^w & highs
	}
	return m
}

// walkValue returns the index after the value that starts at b[i]; i
// itself when there is none.
func walkValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		end, _ := walkString(b, i)
		if end < 0 {
			return i
		}
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _ := walkString(b, i)
				if end < 0 {
					return len(b)
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for j := i; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
	}
	return len(b)
}
