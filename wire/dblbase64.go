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

// stdValue and urlValue map a character to its 6-bit value in the standard
// and the url-safe alphabet, and every other byte ('=', '\r' and '\n'
// included) to 0xff.
var stdValue, urlValue [256]byte

func init() {
	for i := range stdValue {
		stdValue[i], urlValue[i] = 0xff, 0xff
	}
	for i := range 64 {
		stdValue[stdAlphabet[i]], urlValue[urlAlphabet[i]] = byte(i), byte(i)
	}
}

// decodeBlocks decodes the longest prefix of body made of whole blocks of 16
// standard characters whose 12 decoded bytes are url-safe characters: no
// padding, white space or foreign byte at either level. It writes the 9
// token bytes of each block to dst and returns how many it wrote and how
// many characters of body it read. Such a prefix decodes on its own, to
// whole quanta at both levels, so the library decoders can take the rest
// where it stops with the same verdict as on the whole body.
func decodeBlocks(dst, body []byte) (nd, nb int) {
	for len(body) >= 16 && len(dst) >= 9 {
		s := body[:16]
		a0, a1, a2, a3 := stdValue[s[0]], stdValue[s[1]], stdValue[s[2]], stdValue[s[3]]
		a4, a5, a6, a7 := stdValue[s[4]], stdValue[s[5]], stdValue[s[6]], stdValue[s[7]]
		a8, a9, a10, a11 := stdValue[s[8]], stdValue[s[9]], stdValue[s[10]], stdValue[s[11]]
		a12, a13, a14, a15 := stdValue[s[12]], stdValue[s[13]], stdValue[s[14]], stdValue[s[15]]
		// Four 24-bit groups: the 12 url-safe characters. A character
		// outside the standard alphabet needs no test of its own: its 0xff
		// sets the top two bits or more of a byte of its group, and no
		// url-safe character is above 0x7f.
		g0 := uint32(a0)<<18 | uint32(a1)<<12 | uint32(a2)<<6 | uint32(a3)
		g1 := uint32(a4)<<18 | uint32(a5)<<12 | uint32(a6)<<6 | uint32(a7)
		g2 := uint32(a8)<<18 | uint32(a9)<<12 | uint32(a10)<<6 | uint32(a11)
		g3 := uint32(a12)<<18 | uint32(a13)<<12 | uint32(a14)<<6 | uint32(a15)
		b0, b1, b2 := urlValue[byte(g0>>16)], urlValue[byte(g0>>8)], urlValue[byte(g0)]
		b3, b4, b5 := urlValue[byte(g1>>16)], urlValue[byte(g1>>8)], urlValue[byte(g1)]
		b6, b7, b8 := urlValue[byte(g2>>16)], urlValue[byte(g2>>8)], urlValue[byte(g2)]
		b9, b10, b11 := urlValue[byte(g3>>16)], urlValue[byte(g3>>8)], urlValue[byte(g3)]
		if b0|b1|b2|b3|b4|b5|b6|b7|b8|b9|b10|b11 == 0xff {
			break
		}
		// 72 bits: the top 64 in x, the last 8 in the ninth byte.
		x := uint64(b0)<<58 | uint64(b1)<<52 | uint64(b2)<<46 | uint64(b3)<<40 |
			uint64(b4)<<34 | uint64(b5)<<28 | uint64(b6)<<22 | uint64(b7)<<16 |
			uint64(b8)<<10 | uint64(b9)<<4 | uint64(b10)>>2
		binary.BigEndian.PutUint64(dst, x)
		dst[8] = b10<<6 | b11
		dst, body = dst[9:], body[16:]
		nd += 9
		nb += 16
	}
	return nd, nb
}
