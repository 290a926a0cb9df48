package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"time"
)

// Fernet tokens (https://github.com/fernet/spec), made and checked here on
// crypto/aes and crypto/hmac rather than through fernet-go, which sets up
// the AES key schedule and the HMAC state again for every token and
// allocates about ten times per call (docs/design.md, "Request path:
// `session-exists`"). fernet-go stays the judge: the tests check that every
// token made here verifies with fernet-go and every fernet-go token opens
// here, with the same time rules (FuzzFernetAgainstReference).
//
//	version 0x80 | timestamp (8, big-endian seconds) | IV (16) |
//	AES-128-CBC ciphertext, PKCS #7 padded | HMAC-SHA256 of all before (32)

const (
	fernetVersion  = 0x80
	fernetTSOffset = 1
	fernetIVOffset = fernetTSOffset + 8
	fernetPayload  = fernetIVOffset + aes.BlockSize
	fernetOverhead = fernetPayload + sha256.Size
	// fernetMaxSkew is how far in the future a token's time may be when a
	// freshness window applies (fernet-go's rule).
	fernetMaxSkew = 60 * time.Second
)

// fernetKey is one key, ready to use: its AES key schedule made once and its
// HMAC states pooled.
type fernetKey struct {
	block cipher.Block
	macs  sync.Pool // *keyedMAC
}

// keyedMAC is an HMAC-SHA256 state keyed with a token key's signing half,
// with room for its sum, so that a check allocates nothing.
type keyedMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// newFernetKey takes a 32-byte Fernet key: the signing key, then the
// encryption key.
func newFernetKey(key *[32]byte) (*fernetKey, error) {
	block, err := aes.NewCipher(key[16:])
	if err != nil {
		return nil, fmt.Errorf("wire: key: %w", err)
	}
	sign := append([]byte(nil), key[:16]...)
	k := &fernetKey{block: block}
	k.macs.New = func() any { return &keyedMAC{h: hmac.New(sha256.New, sign)} }
	return k, nil
}

// mac returns the HMAC of msg; release the state with k.macs.Put.
func (k *fernetKey) mac(msg []byte) *keyedMAC {
	m := k.macs.Get().(*keyedMAC)
	m.h.Reset()
	m.h.Write(msg)
	m.h.Sum(m.sum[:0])
	return m
}

// fernetSealedLen is the length of the binary token of a plaintext of n
// bytes.
func fernetSealedLen(n int) int {
	return n/aes.BlockSize*aes.BlockSize + aes.BlockSize + fernetOverhead
}

// seal appends the binary token of plain at time at to dst.
func (k *fernetKey) seal(dst, plain []byte, at time.Time) ([]byte, error) {
	start := len(dst)
	dst = append(dst, fernetVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.Unix()))
	dst = append(dst, make([]byte, aes.BlockSize)...)
	iv := dst[start+fernetIVOffset:]
	if err := readIV(iv[:aes.BlockSize]); err != nil {
		return dst[:start], fmt.Errorf("wire: seal: IV: %w", err)
	}
	// CBC by hand on the ready key schedule: cipher.NewCBCEncrypter would
	// allocate for every token.
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	body := len(dst)
	dst = append(dst, plain...)
	for range pad {
		dst = append(dst, byte(pad))
	}
	prev := dst[start+fernetIVOffset : start+fernetPayload]
	for i := body; i < len(dst); i += aes.BlockSize {
		blk := dst[i : i+aes.BlockSize]
		xorBlock(blk, prev)
		k.block.Encrypt(blk, blk)
		prev = blk
	}
	m := k.mac(dst[start:])
	dst = append(dst, m.sum[:]...)
	k.macs.Put(m)
	return dst, nil
}

// open verifies the binary token tok (of this key, and within maxAge of now
// when maxAge > 0) and appends its plaintext to dst. tok is not changed.
func (k *fernetKey) open(dst, tok []byte, maxAge time.Duration, now time.Time) ([]byte, bool) {
	if len(tok) < fernetOverhead+aes.BlockSize || tok[0] != fernetVersion {
		return dst, false
	}
	if maxAge > 0 {
		ts := time.Unix(int64(binary.BigEndian.Uint64(tok[fernetTSOffset:])), 0)
		if now.After(ts.Add(maxAge)) || ts.After(now.Add(fernetMaxSkew)) {
			return dst, false
		}
	}
	n := len(tok) - sha256.Size
	m := k.mac(tok[:n])
	ok := hmac.Equal(m.sum[:], tok[n:])
	k.macs.Put(m)
	if !ok {
		return dst, false
	}
	cipherText := tok[fernetPayload:n]
	if len(cipherText)%aes.BlockSize != 0 {
		return dst, false
	}
	start := len(dst)
	dst = append(dst, cipherText...)
	prev := tok[fernetIVOffset:fernetPayload]
	for i := 0; i < len(cipherText); i += aes.BlockSize {
		blk := dst[start+i : start+i+aes.BlockSize]
		k.block.Decrypt(blk, blk)
		xorBlock(blk, prev)
		prev = cipherText[i : i+aes.BlockSize]
	}
	// PKCS #7: the last byte says how many bytes of padding, each that byte.
	out := dst[start:]
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return dst[:start], false
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return dst[:start], false
		}
	}
	return dst[:len(dst)-pad], true
}

// ivBlock is a block of crypto/rand output that IVs are taken from, so
// that a seal does not make a getrandom call of its own. Each byte is
// handed out once and cleared as it goes.
type ivBlock struct {
	buf [4096]byte
	off int
}

var ivBlocks = sync.Pool{New: func() any { return &ivBlock{off: 4096} }}

// readIV fills iv with fresh random bytes.
func readIV(iv []byte) error {
	b := ivBlocks.Get().(*ivBlock)
	defer ivBlocks.Put(b)
	if b.off+len(iv) > len(b.buf) {
		if _, err := rand.Read(b.buf[:]); err != nil {
			b.off = len(b.buf)
			return err
		}
		b.off = 0
	}
	n := copy(iv, b.buf[b.off:])
	clear(b.buf[b.off : b.off+n])
	b.off += n
	return nil
}

// xorBlock sets dst ^= src for one AES block, inline: subtle.XORBytes is
// two calls and length checks a block, a tenth of a seal's cost.
func xorBlock(dst, src []byte) {
	_, _ = dst[aes.BlockSize-1], src[aes.BlockSize-1]
	le := binary.LittleEndian
	le.PutUint64(dst, le.Uint64(dst)^le.Uint64(src))
	le.PutUint64(dst[8:], le.Uint64(dst[8:])^le.Uint64(src[8:]))
}
