package passhash

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Argon2 variants as they appear in a PHC string.
const (
	PHCArgon2id = "argon2id"
	PHCArgon2i  = "argon2i"
	PHCArgon2d  = "argon2d"
)

// Argon2 versions. The reference C library writes 0x13 and reads a string
// without a "v=" segment as 0x10.
const (
	PHCVersion10 = 0x10 // 16, the original 2015 version
	PHCVersion13 = 0x13 // 19, the current version; the only one golang.org/x/crypto computes
)

// Limits on the parameters read from a stored PHC string (the approach of kratos
// hash/hash_limits.go). A stored hash decides how much memory and CPU its
// verification takes, so a damaged or hostile row must not be able to make one
// login allocate gigabytes or spin for minutes. Every hash that argon2-cffi ever
// produced with its defaults is well inside them (docs/security.md,
// "Passwords and hashing").
const (
	// phcMaxLen bounds the whole string before any parsing. The largest string
	// the limits below allow is about 300 bytes.
	phcMaxLen = 512

	// phcMaxMemoryKiB is 256 MiB: 2.5× the largest argon2-cffi default (100 MiB,
	// versions 18.2–21.1). Each pool worker may hold this much at once, so the
	// pool's worst case is Workers × 256 MiB.
	phcMaxMemoryKiB = 256 << 10

	// phcMinMemoryPerLaneKiB is Argon2's own floor: m ≥ 8·p (the C library
	// refuses less with ARGON2_MEMORY_TOO_LITTLE; x/crypto would silently raise
	// it and so compute a different hash).
	phcMinMemoryPerLaneKiB = 8

	// phcMaxTimeCost is 16 passes: 8× the argon2-cffi 18.2 default of 2, and
	// 5× the RFC 9106 low-memory default of 3. Zero is refused because
	// x/crypto panics on it.
	phcMaxTimeCost = 16

	// phcMaxThreads is 32 lanes: 4× the largest argon2-cffi default (8).
	// x/crypto starts one goroutine per lane. Zero is refused because x/crypto
	// panics on it.
	phcMaxThreads = 32

	// phcMinSaltLen is the C library's ARGON2_MIN_SALT_LENGTH; phcMaxSaltLen is
	// 4× the 16 bytes every argon2-cffi version uses.
	phcMinSaltLen = 8
	phcMaxSaltLen = 64

	// phcMinKeyLen is the C library's ARGON2_MIN_OUTLEN; phcMaxKeyLen is 4× the
	// largest argon2-cffi default (32 bytes).
	phcMinKeyLen = 4
	phcMaxKeyLen = 128
)

// Errors returned by [ParsePHC] and by password verification. The messages
// never contain the salt, the hash or the password.
var (
	// ErrPHCMalformed means the string is not an Argon2 PHC string.
	ErrPHCMalformed = errors.New("passhash: malformed phc string")
	// ErrPHCOutOfBounds means a parameter is outside the limits this server
	// accepts from stored strings (see the phcMax* constants).
	ErrPHCOutOfBounds = errors.New("passhash: phc parameters out of bounds")
	// ErrPHCUnsupported means the string is well formed but this server cannot
	// compute it: argon2d (golang.org/x/crypto/argon2 offers only argon2i and
	// argon2id) or Argon2 version 0x10 (x/crypto implements only 0x13).
	// Neither was ever written by argon2-cffi's defaults.
	ErrPHCUnsupported = errors.New("passhash: phc variant or version not supported")
)

// PHC is a parsed Argon2 PHC string (the encoding of the reference C library
// and argon2-cffi):
//
//	$argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>
//
// Salt and key are standard base64 without padding. A PHC returned by
// [ParsePHC] satisfies the bounds above; its String re-parses to an equal PHC.
type PHC struct {
	Variant   string // PHCArgon2id, PHCArgon2i or PHCArgon2d
	Version   int    // PHCVersion13, or PHCVersion10
	MemoryKiB uint32 // m
	TimeCost  uint32 // t, passes over memory
	Threads   uint8  // p, lanes
	Salt, Key []byte // Key is the hash; its length is the output length
}

// ParsePHC parses and bounds-checks an Argon2 PHC string.
//
// Salt and key may be base64 with or without padding; unused trailing bits
// must be zero, as the C library requires. A string without a "v=" segment is
// version 0x10, as in the C library. Parameters must appear in the order
// m, t, p, and numbers must be plain decimals without sign or leading zeros.
//
// Errors wrap [ErrPHCMalformed] or [ErrPHCOutOfBounds]. ParsePHC accepts
// argon2d and version 0x10, which it can parse but not compute; verification
// refuses them with [ErrPHCUnsupported].
func ParsePHC(s string) (PHC, error) {
	var p PHC
	if len(s) > phcMaxLen {
		return PHC{}, fmt.Errorf("passhash: parse phc: %d bytes, max %d: %w", len(s), phcMaxLen, ErrPHCOutOfBounds)
	}
	parts := strings.Split(s, "$")
	// "", variant, [v=..], params, salt, key
	if len(parts) != 5 && len(parts) != 6 || parts[0] != "" {
		return PHC{}, fmt.Errorf("passhash: parse phc: want 4 or 5 $-separated fields: %w", ErrPHCMalformed)
	}
	switch parts[1] {
	case PHCArgon2id, PHCArgon2i, PHCArgon2d:
		p.Variant = parts[1]
	default:
		return PHC{}, fmt.Errorf("passhash: parse phc: unknown variant: %w", ErrPHCMalformed)
	}
	rest := parts[2:]
	p.Version = PHCVersion10
	if len(parts) == 6 {
		v, ok := strings.CutPrefix(parts[2], "v=")
		if !ok {
			return PHC{}, fmt.Errorf("passhash: parse phc: want v=: %w", ErrPHCMalformed)
		}
		n, err := phcDecimal(v)
		if err != nil {
			return PHC{}, fmt.Errorf("passhash: parse phc: version: %w", err)
		}
		if n != PHCVersion10 && n != PHCVersion13 {
			return PHC{}, fmt.Errorf("passhash: parse phc: unknown version %d: %w", n, ErrPHCMalformed)
		}
		p.Version = int(n)
		rest = parts[3:]
	}

	params := strings.Split(rest[0], ",")
	if len(params) != 3 {
		return PHC{}, fmt.Errorf("passhash: parse phc: want m=,t=,p=: %w", ErrPHCMalformed)
	}
	var nums [3]uint32
	for i, name := range [3]string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return PHC{}, fmt.Errorf("passhash: parse phc: want %s: %w", name, ErrPHCMalformed)
		}
		n, err := phcDecimal(v)
		if err != nil {
			return PHC{}, fmt.Errorf("passhash: parse phc: %s: %w", name, err)
		}
		nums[i] = n
	}
	if nums[2] > phcMaxThreads { // before the cut to uint8
		return PHC{}, fmt.Errorf("passhash: parse phc: p=%d above %d: %w", nums[2], phcMaxThreads, ErrPHCOutOfBounds)
	}
	p.MemoryKiB, p.TimeCost, p.Threads = nums[0], nums[1], uint8(nums[2])

	var err error
	if p.Salt, err = phcBase64(rest[1]); err != nil {
		return PHC{}, fmt.Errorf("passhash: parse phc: salt: %w", err)
	}
	if p.Key, err = phcBase64(rest[2]); err != nil {
		return PHC{}, fmt.Errorf("passhash: parse phc: hash: %w", err)
	}
	if err := p.checkBounds(); err != nil {
		return PHC{}, fmt.Errorf("passhash: parse phc: %w", err)
	}
	return p, nil
}

// checkBounds reports whether p's parameters are within the phc* limits.
// It does not look at Variant or Version.
func (p PHC) checkBounds() error {
	return phcCheckBounds(p.MemoryKiB, p.TimeCost, uint32(p.Threads), len(p.Salt), len(p.Key))
}

// phcCheckBounds reports whether Argon2 parameters are within the phc* limits.
func phcCheckBounds(memoryKiB, timeCost, threads uint32, saltLen, keyLen int) error {
	switch {
	case threads < 1 || threads > phcMaxThreads:
		return fmt.Errorf("p=%d not in [1, %d]: %w", threads, phcMaxThreads, ErrPHCOutOfBounds)
	case memoryKiB < phcMinMemoryPerLaneKiB*threads || memoryKiB > phcMaxMemoryKiB:
		return fmt.Errorf("m=%d not in [8·p, %d]: %w", memoryKiB, phcMaxMemoryKiB, ErrPHCOutOfBounds)
	case timeCost < 1 || timeCost > phcMaxTimeCost:
		return fmt.Errorf("t=%d not in [1, %d]: %w", timeCost, phcMaxTimeCost, ErrPHCOutOfBounds)
	case saltLen < phcMinSaltLen || saltLen > phcMaxSaltLen:
		return fmt.Errorf("salt of %d bytes not in [%d, %d]: %w", saltLen, phcMinSaltLen, phcMaxSaltLen, ErrPHCOutOfBounds)
	case keyLen < phcMinKeyLen || keyLen > phcMaxKeyLen:
		return fmt.Errorf("hash of %d bytes not in [%d, %d]: %w", keyLen, phcMinKeyLen, phcMaxKeyLen, ErrPHCOutOfBounds)
	}
	return nil
}

// computable reports whether golang.org/x/crypto/argon2 can compute p:
// argon2id or argon2i, version 0x13.
func (p PHC) computable() error {
	if p.Variant != PHCArgon2id && p.Variant != PHCArgon2i {
		return fmt.Errorf("passhash: %s: %w", p.Variant, ErrPHCUnsupported)
	}
	if p.Version != PHCVersion13 {
		return fmt.Errorf("passhash: argon2 version %d: %w", p.Version, ErrPHCUnsupported)
	}
	return nil
}

// phcDecimal parses a non-empty run of ASCII digits without a leading zero
// that fits in a uint32.
func phcDecimal(s string) (uint32, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, ErrPHCMalformed
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrPHCMalformed
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, ErrPHCOutOfBounds // only overflow is left
	}
	return uint32(n), nil
}

// phcBase64 decodes standard base64 with or without padding, refusing
// non-zero trailing bits.
//
// NB: encoding/base64 skips '\r' and '\n' anywhere in its input; the C library
// does not, so neither do we.
func phcBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, ErrPHCMalformed
	}
	enc := base64.RawStdEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.StdEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, ErrPHCMalformed
	}
	return b, nil
}

// String formats p as a PHC string, always with a "v=" segment and with
// unpadded standard base64, as the C library and argon2-cffi write it.
func (p PHC) String() string {
	var b strings.Builder
	b.Grow(40 + base64.RawStdEncoding.EncodedLen(len(p.Salt)) + base64.RawStdEncoding.EncodedLen(len(p.Key)))
	b.WriteByte('$')
	b.WriteString(p.Variant)
	b.WriteString("$v=")
	b.WriteString(strconv.Itoa(p.Version))
	b.WriteString("$m=")
	b.WriteString(strconv.FormatUint(uint64(p.MemoryKiB), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(p.TimeCost), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(p.Threads), 10))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(p.Salt))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(p.Key))
	return b.String()
}

// HashParams are the Argon2id parameters new hashes are made with. In
// [HasherOptions], a zero field means the field of [DefaultHashParams].
type HashParams struct {
	TimeCost  uint32 // t, passes over memory
	MemoryKiB uint32 // m
	Threads   uint8  // p, lanes
	KeyLen    uint32 // output (hash) length in bytes
	SaltLen   uint32 // random salt length in bytes
}

// DefaultHashParams returns the RFC 9106 "low memory" Argon2id parameters,
// which are also argon2-cffi's defaults since 21.2: t=3, m=64 MiB, p=4,
// a 32-byte hash and a 16-byte salt.
func DefaultHashParams() HashParams {
	return HashParams{TimeCost: 3, MemoryKiB: 64 << 10, Threads: 4, KeyLen: 32, SaltLen: 16}
}

// withDefaults returns hp with each zero field replaced by the default.
func (hp HashParams) withDefaults() HashParams {
	d := DefaultHashParams()
	if hp.TimeCost == 0 {
		hp.TimeCost = d.TimeCost
	}
	if hp.MemoryKiB == 0 {
		hp.MemoryKiB = d.MemoryKiB
	}
	if hp.Threads == 0 {
		hp.Threads = d.Threads
	}
	if hp.KeyLen == 0 {
		hp.KeyLen = d.KeyLen
	}
	if hp.SaltLen == 0 {
		hp.SaltLen = d.SaltLen
	}
	return hp
}

// check reports whether new hashes can be made with hp: the same limits as
// for stored strings, so that every hash we write we can also verify.
func (hp HashParams) check() error {
	return phcCheckBounds(hp.MemoryKiB, hp.TimeCost, uint32(hp.Threads), int(hp.SaltLen), int(hp.KeyLen))
}

// NeedsRehash reports whether a password stored as p should be hashed again
// with cur after a successful login (docs/security.md, "Passwords and
// hashing"): true if the variant is not argon2id or the version, m, t, p,
// hash length or salt length differ.
func (p PHC) NeedsRehash(cur HashParams) bool {
	return p.Variant != PHCArgon2id ||
		p.Version != PHCVersion13 ||
		p.MemoryKiB != cur.MemoryKiB ||
		p.TimeCost != cur.TimeCost ||
		p.Threads != cur.Threads ||
		uint32(len(p.Key)) != cur.KeyLen ||
		uint32(len(p.Salt)) != cur.SaltLen
}

// HashMaxPasswordRunes is how many characters of a password are hashed or
// verified, as in the reference; the rest is ignored.
const HashMaxPasswordRunes = 256

// TruncatePassword returns the first [HashMaxPasswordRunes] characters (runes)
// of password, as the reference cuts passwords before hashing and verifying.
// An invalid UTF-8 byte counts as one character and is kept as is.
func TruncatePassword(password string) string {
	if len(password) <= HashMaxPasswordRunes { // fewer bytes than the limit: fewer runes too
		return password
	}
	n := 0
	for i := range password {
		if n == HashMaxPasswordRunes {
			return password[:i]
		}
		n++
	}
	return password
}
