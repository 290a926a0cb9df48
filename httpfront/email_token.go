package httpfront

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
	tokenPrefix       = "azv1."
	purposeSignup     = shard.PurposeSignup
	purposeForgotPass = shard.PurposeForgotPass
	// maxTokenLifetime bounds verification_expiry: a code that lives for
	// weeks is a password in a mailbox.
	maxTokenLifetime = 7 * 24 * time.Hour
	maxCodeBytes     = 4096
)

// Errors of code checks: the same as the user record's checks
// ([shard.User.UseEmailCode]), so that codeReason answers both. Their text
// never reaches a client.
var (
	errTokenInvalid = shard.ErrEmailCodeInvalid
	errTokenExpired = shard.ErrEmailCodeExpired
)

type emailClaims struct {
	Purpose  string       `json:"p"`
	UserID   shard.UserID `json:"u"`
	Email    string       `json:"e"`
	IssuedAt int64        `json:"i"` // Unix seconds
	Expires  int64        `json:"x"` // Unix seconds
	Nonce    string       `json:"n"`
}

// mintToken returns a signed code for the claims (Nonce is filled in).
func mintToken(key []byte, c emailClaims) (string, error) {
	var n [12]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", err
	}
	c.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	return signToken(key, c)
}

// signToken encodes and signs the claims as they are.
func signToken(key []byte, c emailClaims) (string, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	body := tokenPrefix + base64.RawURLEncoding.EncodeToString(js)
	return body + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(key, body)), nil
}

func tokenMAC(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// normalizeCode removes the white space a code picks up when it is wrapped
// in a mail and copied out of it.
func normalizeCode(code string) string {
	return strings.Join(strings.Fields(code), "")
}

// isServerToken reports whether code has the form of a code this server
// mints (not whether it is valid).
func isServerToken(code string) bool { return strings.HasPrefix(code, tokenPrefix) }

// parseToken checks a server-minted code's signature and returns its
// claims. It does not check expiry or use.
func parseToken(key []byte, code string) (emailClaims, error) {
	var c emailClaims
	body, sig, ok := strings.Cut(strings.TrimPrefix(code, tokenPrefix), ".")
	if !ok || !isServerToken(code) {
		return c, errTokenInvalid
	}
	// Strict: no second spelling of the same signature (unused trailing
	// bits), so a code has exactly one valid form.
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, tokenMAC(key, tokenPrefix+body)) {
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

// precheckCode does the checks that need no user record: form, signature,
// purpose, email and expiry of a server-minted code. A code of another
// form (a frontend's own) passes; the core checks it against the record
// (shard.User.UseEmailCode).
func precheckCode(key []byte, code, purpose, email string, now time.Time) error {
	if code == "" || len(code) > maxCodeBytes {
		return errTokenInvalid
	}
	if !isServerToken(code) {
		return nil
	}
	c, err := parseToken(key, code)
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

// mailedCode is code as the user record checks it (shard.EmailCode): its
// digest and, for a code this server minted, the user and address its
// claims name. It fails with errTokenInvalid when a code of the minted form
// does not parse, its signature does not verify with key, or its claims are
// for another purpose. The rest
// (single use, expiry of the stored code, the claims' user and address
// against the record) is the record's check, in the core.
func mailedCode(key []byte, code, purpose string) (shard.EmailCode, error) {
	mc := shard.EmailCode{Purpose: purpose, Digest: codeDigest(code)}
	if isServerToken(code) {
		c, err := parseToken(key, code)
		if err != nil || c.Purpose != purpose {
			return shard.EmailCode{}, errTokenInvalid
		}
		mc.Minted, mc.UserID, mc.Email = true, c.UserID, c.Email
	}
	return mc, nil
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

// DeriveMailKey derives the key that signs mailed codes from the server's
// secret (its first Fernet key), so that codes survive a restart and no key
// is used for two purposes.
func DeriveMailKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("authnzerver mailed verification code v1"))
	return m.Sum(nil)
}

// codeReason is the failure_reason for an error of precheckCode, mailedCode
// or shard.User.UseEmailCode ("" when err is nil or is not about the code).
func codeReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errTokenExpired):
		return "verification token expired"
	case errors.Is(err, errTokenInvalid):
		return "invalid verification token"
	}
	return ""
}
