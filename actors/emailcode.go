package actors

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/shard"
)

// Emailed verification codes (docs/email.md, "Codes: format, lifetime, single
// use").
//
// A code the server mints is
//
//	azv1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "azv1."+claims))>
//
// with the claims purpose, user id, email, issued-at, expiry and a random
// nonce. The signature makes an altered code fail without a lookup; the
// expiry is in the signed claims. Single use comes from the user record:
// sending a code stores its digest (shard.EmailToken), and using it removes
// the digest in the same atomic edit that acts on it, so a second use finds
// nothing. A frontend that brings its own code (the Python server's model)
// gets the same single-use and expiry checks through the digest.

const (
	tokenPrefix = "azv1."
	// MaxCodeBytes bounds a code as a request carries it: anything longer
	// is refused before any check.
	MaxCodeBytes = 4096
)

// Errors of code checks: the same as the user record's checks
// ([shard.User.UseEmailCode]), so that one mapping answers both. Their text
// never reaches a client.
var (
	errTokenInvalid = shard.ErrEmailCodeInvalid
	errTokenExpired = shard.ErrEmailCodeExpired
)

// CodeKey signs the codes the server mints.
type CodeKey []byte

// DeriveCodeKey derives the key that signs mailed codes from the server's
// secret (its first Fernet key), so that codes survive a restart and no key
// is used for two purposes.
func DeriveCodeKey(secret string) CodeKey {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("authnzerver mailed verification code v1"))
	return m.Sum(nil)
}

type emailClaims struct {
	Purpose  string       `json:"p"`
	UserID   shard.UserID `json:"u"`
	Email    string       `json:"e"`
	IssuedAt int64        `json:"i"` // Unix seconds
	Expires  int64        `json:"x"` // Unix seconds
	Nonce    string       `json:"n"`
}

// mint returns a signed code for the claims (Nonce is filled in).
func (k CodeKey) mint(c emailClaims) (string, error) {
	var n [12]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", err
	}
	c.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	return k.sign(c)
}

// sign encodes and signs the claims as they are.
func (k CodeKey) sign(c emailClaims) (string, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	body := tokenPrefix + base64.RawURLEncoding.EncodeToString(js)
	return body + "." + base64.RawURLEncoding.EncodeToString(k.mac(body)), nil
}

func (k CodeKey) mac(body string) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// NormalizeCode removes the white space a code picks up when it is wrapped
// in a mail and copied out of it.
func NormalizeCode(code string) string {
	return strings.Join(strings.Fields(code), "")
}

// isServerToken reports whether code has the form of a code this server
// mints (not whether it is valid).
func isServerToken(code string) bool { return strings.HasPrefix(code, tokenPrefix) }

// parse checks a server-minted code's signature and returns its claims. It
// does not check expiry or use.
func (k CodeKey) parse(code string) (emailClaims, error) {
	var c emailClaims
	body, sig, ok := strings.Cut(strings.TrimPrefix(code, tokenPrefix), ".")
	// encoding/base64 skips \r and \n even when strict: refuse them here, or
	// a code would have other valid spellings (codes are normalised before
	// they get here, so a real one never holds them).
	if !ok || !isServerToken(code) || strings.ContainsAny(code, "\r\n") {
		return c, errTokenInvalid
	}
	// Strict: no second spelling of the same signature (unused trailing
	// bits), so a code has exactly one valid form.
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, k.mac(tokenPrefix+body)) {
		return c, errTokenInvalid
	}
	js, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || json.Unmarshal(js, &c) != nil {
		return c, errTokenInvalid
	}
	return c, nil
}

// codeDigest is what the user record keeps of a mailed code.
func codeDigest(code string) string {
	d := sha256.Sum256([]byte(code))
	return hex.EncodeToString(d[:])
}

// Precheck does the checks of a (normalised) code that need no user
// record: form, signature, purpose, email and expiry of a server-minted
// code. A code of another form (a frontend's own) passes; the core checks it
// against the record (shard.User.UseEmailCode). It fails with
// shard.ErrEmailCodeInvalid or shard.ErrEmailCodeExpired.
func (k CodeKey) Precheck(code, purpose, email string, now time.Time) error {
	if code == "" || len(code) > MaxCodeBytes {
		return errTokenInvalid
	}
	if !isServerToken(code) {
		return nil
	}
	c, err := k.parse(code)
	if err != nil {
		return err
	}
	if c.Purpose != purpose || c.Email != passpolicy.NormalizeEmail(email) {
		return errTokenInvalid
	}
	if !time.Unix(c.Expires, 0).After(now) {
		return errTokenExpired
	}
	return nil
}

// EmailCode is code as the user record checks it (shard.EmailCode): its
// digest and, for a code this server minted, the user and address its
// claims name. It fails with shard.ErrEmailCodeInvalid when a code of the
// minted form does not parse, its signature does not verify with k, or its
// claims are for another purpose. The rest (single use, expiry of the stored
// code, the claims' user and address against the record) is the record's
// check, in the shard.
func (k CodeKey) EmailCode(code, purpose string) (shard.EmailCode, error) {
	mc := shard.EmailCode{Purpose: purpose, Digest: codeDigest(code)}
	if isServerToken(code) {
		c, err := k.parse(code)
		if err != nil || c.Purpose != purpose {
			return shard.EmailCode{}, errTokenInvalid
		}
		mc.Minted, mc.UserID, mc.Email = true, c.UserID, c.Email
	}
	return mc, nil
}

// checkCode runs both checks of a code: [CodeKey.Precheck], then
// [CodeKey.EmailCode].
func (k CodeKey) checkCode(code, purpose, email string, now time.Time) (shard.EmailCode, error) {
	if err := k.Precheck(code, purpose, email, now); err != nil {
		return shard.EmailCode{}, err
	}
	return k.EmailCode(code, purpose)
}

// codeRefusal is the refusal for an error of a code check, of the front's
// or of the user record's ("" when err is nil or is not about the code).
func codeRefusal(err error) Refusal {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errTokenExpired):
		return RefusedCodeExpired
	case errors.Is(err, errTokenInvalid):
		return RefusedCodeInvalid
	}
	return ""
}

// wrapCode breaks a code into lines of 70 characters for the mail body,
// as the reference does.
func wrapCode(code string) string {
	var b strings.Builder
	for len(code) > 70 {
		b.WriteString(code[:70])
		b.WriteByte('\n')
		code = code[70:]
	}
	b.WriteString(code)
	return b.String()
}
