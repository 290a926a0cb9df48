package wire

import (
	"encoding/base64"
	"encoding/binary"
)

// The body of a message is the standard base64 of the url-safe base64 text
// of its token. Done as two library passes, the encoding was the largest
// cost of sealing an answer; encodeBody does both in one pass with no
// intermediate text: 9 token bytes are 12 url-safe characters, which are
// 16 standard ones.

const (
	urlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// A triple of url-safe characters (c0 c1 c2), each given by its 6-bit
// index, is 4 standard characters: the first two depend on c0 and c1 only,
// the last two on c1 and c2 only. bodyHead and bodyTail map the 12 bits of
// such a pair of indices to those two characters, first in the low byte.
var bodyHead, bodyTail [1 << 12]uint16

func init() {
	for i := range 1 << 12 {
		a, b := urlAlphabet[i>>6], urlAlphabet[i&63]
		bodyHead[i] = uint16(stdAlphabet[a>>2]) | uint16(stdAlphabet[(a&3)<<4|b>>4])<<8
		bodyTail[i] = uint16(stdAlphabet[(a&15)<<2|b>>6]) | uint16(stdAlphabet[b&63])<<8
	}
}

// bodyLen is the length of the body of a token of n bytes.
func bodyLen(n int) int {
	return base64.StdEncoding.EncodedLen(base64.URLEncoding.EncodedLen(n))
}

// encodeBody writes the body of tok to dst, which must have room for
// bodyLen(len(tok)) bytes: the same bytes as
// base64.StdEncoding.Encode(base64.URLEncoding.EncodeToString(tok)).
func encodeBody(dst, tok []byte) {
	for len(tok) >= 9 && len(dst) >= 16 {
		// The 72 bits of 9 bytes are 12 indices i0…i11 of 6 bits; the
		// pairs looked up are (i0 i1) (i1 i2) (i3 i4) (i4 i5) … at bit
		// offsets 0, 6, 18, 24, 36, 42, 54 and 60 from the top. x holds
		// bits 0–63, y bits 8–71.
		x := binary.BigEndian.Uint64(tok)
		y := x<<8 | uint64(tok[8])
		binary.LittleEndian.PutUint64(dst, uint64(bodyHead[x>>52&0xfff])|
			uint64(bodyTail[x>>46&0xfff])<<16|
			uint64(bodyHead[x>>34&0xfff])<<32|
			uint64(bodyTail[x>>28&0xfff])<<48)
		binary.LittleEndian.PutUint64(dst[8:], uint64(bodyHead[x>>16&0xfff])|
			uint64(bodyTail[x>>10&0xfff])<<16|
			uint64(bodyHead[y>>6&0xfff])<<32|
			uint64(bodyTail[y&0xfff])<<48)
		tok, dst = tok[9:], dst[16:]
	}
	// Fewer than 9 bytes are left, and the text so far is a whole number
	// of triples, so the rest encodes on its own, padding included.
	var text [12]byte
	n := base64.URLEncoding.EncodedLen(len(tok))
	base64.URLEncoding.Encode(text[:n], tok)
	base64.StdEncoding.Encode(dst, text[:n])
}
