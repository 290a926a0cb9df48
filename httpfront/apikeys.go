package httpfront

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// API keys (docs/protocol.md, "API keys"). The server hands out a key's
// claims as a JSON string; the frontend seals it, checks
// aud/sub/ipa/usa/iss/ver itself on use, and passes the decoded claims back
// as apikey_dict. The server checks tkn, uid, rol, the validity window and,
// for a session-tied key, that its session is still live. Only the SHA-256
// digest of tkn is stored (see shard/apikey.go).
//
// Each request is one call of the core's key flows (actors.Keys,
// docs/design.md, "The key flows"): this file decodes the request (the
// claims, the lifetimes), makes that call and words its answer.

// Answers of the API key requests.
const (
	msgKeyNotAllowedIssue  = "API key issuance failed. You are not allowed to issue an API key."
	msgKeyNotAllowedVerify = "API key verification failed. You are not allowed to operate on this API key."
	msgKeyNotAllowedRevoke = "API key revocation failed. You are not allowed to operate on this API key."
	reasonKeyNotAllowedOp  = "originating user is not allowed to operate on this API key"
	reasonKeyInvalid       = "key validation failed, provided key does not match stored key or has expired"
	msgKeyInvalid          = "API key could not be verified."
	msgKeyRevoked          = "API key revocation processed."
	reasonKeyLifetime      = "invalid API key lifetime or not-before value"
	msgKeyLifetime         = "API key issuance failed. The requested key lifetime is out of range."
	msgRefreshFailed       = "API key refresh failed. The API key presented does not have a valid refresh token. You may need to login again to generate a new API key."
	// The reference's steps 3–4 join the sentences without a space.
	msgRefreshFailedJoined = "API key refresh failed. The API key presented does not have a valid refresh token.You may need to login again to generate a new API key."
)

// maxKeyLifetime bounds every lifetime and not-before offset of a key or
// refresh token (either sign), so that expiry times stay printable and
// time.Duration never overflows. The reference fails with an overflow
// somewhere beyond this.
const maxKeyLifetime = 100 * 365 * 24 * time.Hour

// apiKeyTokenLen is the length of tkn and refresh tokens: 32 random bytes
// in base64url without padding.
const apiKeyTokenLen = 43

// claimsOrBadRequest decodes the request's apikey_dict; ok false means the
// returned result (HTTP 400) is the answer.
func claimsOrBadRequest(c *call) (keyClaims, result, bool) {
	cl, err := decodeKeyClaims(c.raw("apikey_dict"))
	if err != nil {
		return cl, result{status: 400}, false
	}
	return cl, result{}, true
}

// presented is the key the claims cl name, as the key flows take it.
func presented(cl *keyClaims) actors.PresentedKey {
	return actors.PresentedKey{Owner: shard.UserID(cl.uid), Token: cl.tkn, Role: cl.rol, OwnerOK: cl.uidOK, TokenOK: cl.okTR}
}

// keyActor returns the acting user of an API key request: user_id and
// user_role of the body (the schema has checked both).
func keyActor(c *call) (int64, string) {
	uid, _ := c.int("user_id")
	return uid, c.str("user_role")
}

// apiKeyVerify returns the handler of apikey-verify (kind KeySession) or
// apikey-verify-nosession.
func apiKeyVerify(kind shard.APIKeyKind) handler {
	return func(c *call) (result, error) { return handleAPIKeyVerify(c, kind) }
}

// apiKeyRevoke returns the handler of apikey-revoke (kind KeySession) or
// apikey-revoke-nosession.
func apiKeyRevoke(kind shard.APIKeyKind) handler {
	return func(c *call) (result, error) { return handleAPIKeyRevoke(c, kind) }
}

func handleAPIKeyVerify(c *call, kind shard.APIKeyKind) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	uid, role := keyActor(c)
	pk := presented(&cl)
	ans, err := c.s.ext.keys.VerifyKey(kind, shard.UserID(uid), role, &pk)
	switch {
	case err != nil:
		return result{}, err
	case ans.Refusal == actors.RefusedNotAllowed:
		return failure(reasonKeyNotAllowedOp, msgKeyNotAllowedVerify), nil
	case !ans.OK():
		return failure(reasonKeyInvalid, msgKeyInvalid), nil
	}
	msg := "API key verified successfully. Expires: "
	if kind == shard.KeyNoSession {
		msg = "No-session API key verified successfully. Expires: "
	}
	// Put together on the stack: one allocation, the message's own.
	var buf [96]byte
	b := append(buf[:0], msg...)
	b = wire.AppendFormatTime(b, ans.Key.Expires)
	return success(string(append(b, '.'))), nil
}

func handleAPIKeyRevoke(c *call, kind shard.APIKeyKind) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	uid, role := keyActor(c)
	pk := presented(&cl)
	ans, err := c.s.ext.keys.RevokeKey(kind, shard.UserID(uid), role, &pk)
	switch {
	case err != nil:
		return result{}, err
	case ans.Refusal == actors.RefusedNotAllowed:
		return failure(reasonKeyNotAllowedOp, msgKeyNotAllowedRevoke), nil
	case !ans.OK():
		// No such key: processed, not successful, and no reason given.
		return result{messages: []string{msgKeyRevoked}}, nil
	}
	return success(msgKeyRevoked), nil
}

func handleAPIKeyRevokeAll(c *call) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	uid, role := keyActor(c)
	pk := presented(&cl)
	ans, err := c.s.ext.keys.RevokeAllKeys(shard.UserID(uid), role, &pk)
	switch {
	case err != nil:
		return result{}, err
	case ans.Refusal == actors.RefusedNotAllowed:
		return failure("originating user is not allowed to delete API keys", "All API keys revocation failed. You are not allowed to delete API keys."), nil
	case !ans.OK():
		return failure("provided API key is invalid, revoke-all operation requires a valid key to start with", "All API keys revocation failed. The API key presented is invalid."), nil
	}
	return success("All API keys revocation processed.").with("revoked_keys", ans.Count), nil
}

// keySeconds reads a lifetime or offset in seconds (int or float) within
// maxKeyLifetime.
func keySeconds(c *call, name string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(c.raw(name))), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxKeyLifetime.Seconds() {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// noSessionLifetimes reads the lifetimes of a new no-session key.
func noSessionLifetimes(c *call) actors.Lifetimes {
	life, ok1 := keySeconds(c, "expires_seconds")
	nbf, ok2 := keySeconds(c, "not_valid_before")
	rlife, ok3 := keySeconds(c, "refresh_expires")
	rnbf, ok4 := keySeconds(c, "refresh_nbf")
	return actors.Lifetimes{
		Lifetime: life, NotBefore: nbf, RefreshLifetime: rlife, RefreshNotBefore: rnbf,
		OK: ok1 && ok2 && ok3 && ok4,
	}
}

// noKey adds the null key fields of a refused issuance.
func noKey(r result) result { return r.with("apikey", nil).with("expires", nil) }

func handleAPIKeyNew(c *call) (result, error) {
	uid, role := keyActor(c)
	days, _ := c.int("expires_days")
	nbf, ok := keySeconds(c, "not_valid_before")
	maxDays := int64(maxKeyLifetime / (24 * time.Hour))
	ip, ua := c.str("ip_address"), c.str("user_agent")
	ans, err := c.s.ext.keys.NewKey(&actors.NewKeyRequest{
		Actor: shard.UserID(uid), Role: role,
		Session: shard.DigestSession(c.str("session_token")), IPAddress: ip, UserAgent: ua,
		Lifetimes: actors.Lifetimes{
			Lifetime: time.Duration(days) * 24 * time.Hour, NotBefore: nbf,
			OK: ok && days >= -maxDays && days <= maxDays,
		},
	})
	const reasonSession = "invalid session for user requesting API key issuance"
	switch {
	case err != nil:
		return result{}, err
	case ans.Refusal == actors.RefusedNotAllowed:
		return failure("user not allowed to issue API key", msgKeyNotAllowedIssue), nil
	case ans.Refusal == actors.RefusedLifetime:
		return noKey(failure(reasonKeyLifetime, msgKeyLifetime)), nil
	case ans.Refusal == actors.RefusedNoSession:
		return noKey(failure(reasonSession, "Invalid session token for API key issuance request.")), nil
	case !ans.OK():
		return noKey(failure(reasonSession, "DB session user_id, ip_address, user_agent, user_role does not match provided session info.")), nil
	}
	key := &ans.Key
	cl := claims{
		iss: claimValue(c.raw("issuer")), ver: claimValue(c.raw("apiversion")),
		aud: claimValue(c.raw("audience")), sub: claimValue(c.raw("subject")),
		uid: uid, rol: role, usa: &ua, ipa: ip, tkn: ans.Token, key: key,
	}
	exp := wire.FormatTime(key.Expires)
	return success("API key generated successfully, expires: "+exp+".").
		with("apikey", cl.String()).with("expires", exp), nil
}

// noSessionKeyIssued words a new no-session key of user uid with role (of
// apikey-new-nosession and apikey-refresh-nosession), with the claims iss,
// ver, aud and sub.
func noSessionKeyIssued(c *call, uid int64, role string, ans *actors.KeyAnswer, iss, ver, aud, sub []byte) result {
	key := &ans.Key
	cl := claims{iss: iss, ver: ver, aud: aud, sub: sub, uid: uid, rol: role, ipa: c.str("ip_address"), tkn: ans.Token, key: key}
	exp := wire.FormatTime(key.Expires)
	return success("API key generated successfully, expires: "+exp+".").
		with("apikey", cl.String()).with("expires", exp).
		with("refresh_token", ans.RefreshToken).with("refresh_token_expires", wire.FormatTime(key.RefreshExpires))
}

func handleAPIKeyNewNoSession(c *call) (result, error) {
	uid, role := keyActor(c)
	life := noSessionLifetimes(c)
	ans, err := c.s.ext.keys.NewNoSessionKey(shard.UserID(uid), role, &life)
	switch {
	case err != nil:
		return result{}, err
	case ans.Refusal == actors.RefusedNotAllowed:
		return failure("originating user is not allowed to issue an API key", msgKeyNotAllowedIssue), nil
	case !ans.OK():
		return noKey(failure(reasonKeyLifetime, msgKeyLifetime)), nil
	}
	return noSessionKeyIssued(c, uid, role, &ans, claimValue(c.raw("issuer")), claimValue(c.raw("apiversion")),
		claimValue(c.raw("audience")), claimValue(c.raw("subject"))), nil
}

func handleAPIKeyRefresh(c *call) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	if cl.iss == nil || cl.ver == nil || cl.aud == nil || cl.sub == nil {
		return result{status: 400}, nil // the reference's KeyError when it copies them
	}
	uid, role := keyActor(c)
	// A token not of the form we issue cannot match and costs no hashing.
	rt := c.str("refresh_token")
	if !isAPIKeyToken(rt) {
		rt = ""
	}
	ans, err := c.s.ext.keys.RefreshKey(&actors.RefreshRequest{
		Actor: shard.UserID(uid), Role: role, Key: presented(&cl), RefreshToken: rt,
		Lifetimes: noSessionLifetimes(c),
	})
	switch {
	case err != nil:
		return result{}, err
	case ans.Refusal == actors.RefusedNoRefresh:
		return failure("provided API key has no stored refresh token, probably invalid", msgRefreshFailed), nil
	case ans.Refusal == actors.RefusedBadRefresh:
		return failure("provided refresh token does not match stored refresh token", msgRefreshFailed), nil
	case ans.Refusal == actors.RefusedNotAllowed:
		return failure("user from provided API key not allowed to revoke old key", msgRefreshFailedJoined), nil
	case ans.Refusal == actors.RefusedNotAllowedNew:
		return failure("user from provided API key not allowed to issue new key", msgRefreshFailedJoined), nil
	case !ans.OK():
		return noKey(failure(reasonKeyLifetime, msgKeyLifetime)), nil
	}
	return noSessionKeyIssued(c, uid, role, &ans, claimValue(cl.iss), claimValue(cl.ver), claimValue(cl.aud), claimValue(cl.sub)), nil
}
