package httpfront

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/perm"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// API keys (docs/protocol.md, "API keys"). The server hands out a key's
// claims as a JSON string; the frontend seals it, checks
// aud/sub/ipa/usa/iss/ver itself on use, and passes the decoded claims back
// as apikey_dict. The server checks tkn, uid, rol, the validity window and,
// for a session-tied key, that its session is still live. Only the SHA-256
// digest of tkn is stored (see shard/apikey.go).

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

// apikeyPolicy is the policy half of the user-check-access evaluation for
// API keys (docs/protocol.md, "API keys"): may user uid with role do action
// to the private API key of owner? An unknown role is a refusal.
func apikeyPolicy(c *call, uid int64, role, action string, owner int64) bool {
	ok, err := c.s.perms().CheckAccess(perm.AccessQuery{
		UserID: uid, Role: role, Action: action, Target: "apikey", Owner: owner, Visibility: "private",
	})
	return err == nil && ok
}

// apikeyUsersValid is the other half (as user-check-access checks them): the
// acting user exists, is active and has role; the owner exists and is active.
// The two lookups run at once when the owner is someone else.
func apikeyUsersValid(c *call, uid int64, role string, owner int64) (bool, error) {
	if owner == uid {
		return userActive(c, uid, role)
	}
	a, errA, o, errO := both(
		func() (bool, error) { return userActive(c, uid, role) },
		func() (bool, error) { return userActive(c, owner, "") },
	)
	if errA != nil {
		return false, errA
	}
	return a && o, errO
}

// userActive reports whether user id exists, is active and, unless role is
// "", has that role.
func userActive(c *call, id int64, role string) (bool, error) {
	st, err := userStanding(c.s, shard.UserID(id), role, "")
	return activeAs(st, role), err
}

// activeAs reports whether st, asked with role, is of a user that exists, is
// active and, unless role is "", has that role.
func activeAs(st actors.Standing, role string) bool {
	return st.Has(actors.StandingActive) && (role == "" || st.Has(actors.StandingRole))
}

// apikeyAllowed is the whole permission check: policy, then users.
func apikeyAllowed(c *call, uid int64, role, action string, owner int64) (bool, error) {
	if !apikeyPolicy(c, uid, role, action, owner) {
		return false, nil
	}
	return apikeyUsersValid(c, uid, role, owner)
}

// keyUsers is apikeyUsersValid for a request that presents a key issued
// for keyRole: allowed as there, and ownerHasRole reports whether the
// owner, now, is active with keyRole. A key whose owner's role has changed
// since it was issued, or whose owner is locked (role "locked", inactive),
// must not verify. The owner is looked up anyway, so this costs no hop; a
// role change also revokes the owner's keys of other roles
// (revokeKeysOfOtherRoles), so that they do not come back.
func keyUsers(c *call, uid int64, role string, owner int64, keyRole string) (allowed, ownerHasRole bool, err error) {
	activeKeyRole := actors.StandingActive | actors.StandingKeyRole
	if owner == uid {
		st, err := userStanding(c.s, shard.UserID(uid), role, keyRole)
		allowed = activeAs(st, role)
		return allowed, allowed && st.Has(activeKeyRole), err
	}
	a, errA, o, errO := both(
		func() (bool, error) { return userActive(c, uid, role) },
		func() (actors.Standing, error) { return userStanding(c.s, shard.UserID(owner), "", keyRole) },
	)
	if errA != nil {
		return false, false, errA
	}
	if errO != nil {
		return false, false, errO
	}
	return a && o.Has(actors.StandingActive), o.Has(activeKeyRole), nil
}

// both runs fa and fb at once and returns both outcomes: two shard hops
// cost the latency of one.
func both[A, B any](fa func() (A, error), fb func() (B, error)) (a A, errA error, b B, errB error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, errB = fb()
	}()
	a, errA = fa()
	<-done
	return a, errA, b, errB
}

// lookupKey verifies a key on its shard.
func lookupKey(c *call, kind shard.APIKeyKind, cl *keyClaims) (shard.APIKey, error) {
	res, err := actors.Ask[shard.APIKey](c.s.deps.Core, actors.VerifyAPIKey{
		Kind: kind, Digest: shard.DigestAPIKey(cl.tkn), UserID: shard.UserID(cl.uid), Role: cl.rol,
	})
	return res.Value, err
}

// sessionLive reports whether the session of a session-tied key is live. The
// Python server's foreign-key cascade (ending a session removes its keys)
// cannot be one transaction here, as key and session live on different
// shards; a key is therefore valid only while its session is, and a key found
// without its session is deleted on the spot.
func sessionLive(c *call, k *shard.APIKey) (bool, error) {
	res, err := actors.Ask[bool](c.s.deps.Core, actors.KeySessionLive{Session: k.Session})
	if err != nil || res.Value {
		return res.Value, err
	}
	// Best effort: the sweep deletes it later anyway, so neither an error
	// nor durability is waited for.
	_, _ = actors.Ask[struct{}](c.s.deps.Core, actors.DeleteAPIKey{Kind: shard.KeySession, Digest: k.Digest})
	return false, nil
}

// verifyClaims is the validity check shared by verify and revoke-all: the
// key of kind named by cl is stored for uid/rol, inside its window and, if
// session-tied, its session is live. With users, it checks the permission
// (action on cl.uid by the request's user) at the same time as the key.
func verifyClaims(c *call, kind shard.APIKeyKind, cl *keyClaims, action string) (allowed bool, key shard.APIKey, valid bool, err error) {
	uid, role := keyActor(c)
	if !cl.uidOK || !apikeyPolicy(c, uid, role, action, cl.uid) {
		return false, key, false, nil
	}
	if !cl.okTR {
		allowed, err = apikeyUsersValid(c, uid, role, cl.uid)
		return allowed, key, false, err
	}
	type users struct{ allowed, ownerHasRole bool }
	us, errU, key, errK := both(
		func() (users, error) {
			a, r, err := keyUsers(c, uid, role, cl.uid, cl.rol)
			return users{a, r}, err
		},
		func() (shard.APIKey, error) { return lookupKey(c, kind, cl) },
	)
	allowed = us.allowed
	if errU != nil {
		return false, key, false, errU
	}
	if errors.Is(errK, shard.ErrAPIKeyInvalid) || !allowed || !us.ownerHasRole {
		return allowed, key, false, nil
	}
	if errK != nil {
		return allowed, key, false, errK
	}
	if kind == shard.KeySession {
		live, err := sessionLive(c, &key)
		return allowed, key, live, err
	}
	return allowed, key, true, nil
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
	allowed, key, valid, err := verifyClaims(c, kind, &cl, "view")
	switch {
	case err != nil:
		return result{}, err
	case !allowed:
		return failure(reasonKeyNotAllowedOp, msgKeyNotAllowedVerify), nil
	case !valid:
		return failure(reasonKeyInvalid, msgKeyInvalid), nil
	}
	msg := "API key verified successfully. Expires: "
	if kind == shard.KeyNoSession {
		msg = "No-session API key verified successfully. Expires: "
	}
	return success(msg + wire.FormatTime(key.Expires) + "."), nil
}

func handleAPIKeyRevoke(c *call, kind shard.APIKeyKind) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	uid, role := keyActor(c)
	if !cl.uidOK {
		return failure(reasonKeyNotAllowedOp, msgKeyNotAllowedRevoke), nil
	}
	allowed, err := apikeyAllowed(c, uid, role, "delete", cl.uid)
	if err != nil {
		return result{}, err
	}
	if !allowed {
		return failure(reasonKeyNotAllowedOp, msgKeyNotAllowedRevoke), nil
	}
	if !cl.okTR {
		return result{messages: []string{msgKeyRevoked}}, nil
	}
	revoked, err := revokeKey(c, kind, &cl, "")
	if err != nil {
		return result{}, err
	}
	if !revoked {
		return result{messages: []string{msgKeyRevoked}}, nil
	}
	return success(msgKeyRevoked), nil
}

// revokeKey deletes the key named by cl (and, for a refresh, only if its
// refresh hash is refreshPHC) and waits until the deletion is durable. The
// key stops verifying as soon as the shard has run the deletion.
func revokeKey(c *call, kind shard.APIKeyKind, cl *keyClaims, refreshPHC string) (bool, error) {
	res, err := actors.Ask[bool](c.s.deps.Core, actors.RevokeAPIKey{
		Kind: kind, Digest: shard.DigestAPIKey(cl.tkn), UserID: shard.UserID(cl.uid), Role: cl.rol, RefreshPHC: refreshPHC,
	})
	if err != nil {
		return false, err
	}
	if err := durable(res); err != nil {
		return false, err
	}
	return res.Value, nil
}

func handleAPIKeyRevokeAll(c *call) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	allowed, _, valid, err := verifyClaims(c, shard.KeyNoSession, &cl, "delete")
	switch {
	case err != nil:
		return result{}, err
	case !allowed:
		return failure("originating user is not allowed to delete API keys", "All API keys revocation failed. You are not allowed to delete API keys."), nil
	case !valid:
		return failure("provided API key is invalid, revoke-all operation requires a valid key to start with", "All API keys revocation failed. The API key presented is invalid."), nil
	}
	n, err := durableSum(actors.AskAll[int](c.s.deps.Core, actors.RevokeUserAPIKeys{UserID: shard.UserID(cl.uid), Role: cl.rol}))
	if err != nil {
		return result{}, err
	}
	return success("All API keys revocation processed.").with("revoked_keys", n), nil
}

// revokeKeysOfOtherRoles deletes every API key of user uid, of either
// kind, issued for a role other than role, on every shard, and waits until
// the deletions are durable. A role change calls it, and a lock by hand
// with role "locked" (so every key goes): a key carries the role it was
// issued for, and a demoted or locked user's keys must not keep the old
// role's rights (verification also refuses them, see keyUsers; this makes
// it last, even if the old role comes back).
func revokeKeysOfOtherRoles(s *Server, uid shard.UserID, role string) (int, error) {
	return durableSum(actors.AskAll[int](s.deps.Core, actors.RevokeUserAPIKeysNotRole{UserID: uid, Role: role}))
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

// newKeyToken draws a key token; keyIssue retries on the (2^-128) chance
// that its digest index is taken.
func issueKey(c *call, n shard.NewAPIKey) (tkn string, key shard.APIKey, err error) {
	for range 3 {
		tkn, err = wire.RandomToken(32)
		if err != nil {
			return "", key, err
		}
		res, err := actors.Ask[shard.APIKey](c.s.deps.Core, actors.CreateAPIKey{Digest: shard.DigestAPIKey(tkn), Key: n})
		if errors.Is(err, shard.ErrAPIKeyExists) {
			continue
		}
		if err != nil {
			return "", key, err
		}
		if err := durable(res); err != nil {
			return "", key, err
		}
		return tkn, res.Value, nil
	}
	return "", key, shard.ErrAPIKeyExists
}

func handleAPIKeyNew(c *call) (result, error) {
	uid, role := keyActor(c)
	noKey := func(r result) result { return r.with("apikey", nil).with("expires", nil) }
	allowed, err := apikeyAllowed(c, uid, role, "create", uid)
	if err != nil {
		return result{}, err
	}
	if !allowed {
		return failure("user not allowed to issue API key", msgKeyNotAllowedIssue), nil
	}
	days, _ := c.int("expires_days")
	nbf, ok := keySeconds(c, "not_valid_before")
	if !ok || days < -int64(maxKeyLifetime/(24*time.Hour)) || days > int64(maxKeyLifetime/(24*time.Hour)) {
		return noKey(failure(reasonKeyLifetime, msgKeyLifetime)), nil
	}
	const reasonSession = "invalid session for user requesting API key issuance"
	sd := shard.DigestSession(c.str("session_token"))
	info, err := actors.CheckSession(c.s.deps.Core, sd)
	if errors.Is(err, shard.ErrSessionNotFound) {
		return noKey(failure(reasonSession, "Invalid session token for API key issuance request.")), nil
	}
	if err != nil {
		return result{}, err
	}
	ip, ua := c.str("ip_address"), c.str("user_agent")
	if int64(info.Session.UserID) != uid || info.Session.IPAddress != ip || info.Session.UserAgent != ua || info.User.Role != role {
		return noKey(failure(reasonSession, "DB session user_id, ip_address, user_agent, user_role does not match provided session info.")), nil
	}
	tkn, key, err := issueKey(c, shard.NewAPIKey{
		Kind: shard.KeySession, UserID: shard.UserID(uid), Role: role,
		Lifetime: time.Duration(days) * 24 * time.Hour, NotBefore: nbf,
		Session: sd, SessionExpires: info.Session.Expires,
	})
	if err != nil {
		return result{}, err
	}
	if err := capOwned(c.s, shard.UserID(uid), ownedKey(&key)); err != nil {
		return result{}, err
	}
	cl := claims{
		iss: claimValue(c.raw("issuer")), ver: claimValue(c.raw("apiversion")),
		aud: claimValue(c.raw("audience")), sub: claimValue(c.raw("subject")),
		uid: uid, rol: role, usa: &ua, ipa: ip, tkn: tkn, key: &key,
	}
	exp := wire.FormatTime(key.Expires)
	return success("API key generated successfully, expires: "+exp+".").
		with("apikey", cl.String()).with("expires", exp), nil
}

// noSessionKey is the issue half of apikey-new-nosession and
// apikey-refresh-nosession: lifetimes from the request, a new refresh token
// hashed with Argon2id (docs/protocol.md, "API keys"), and the success
// answer. It does not check permissions.
func noSessionKey(c *call, uid int64, role string, iss, ver, aud, sub []byte) (result, shard.APIKey, bool, error) {
	life, ok1 := keySeconds(c, "expires_seconds")
	nbf, ok2 := keySeconds(c, "not_valid_before")
	rlife, ok3 := keySeconds(c, "refresh_expires")
	rnbf, ok4 := keySeconds(c, "refresh_nbf")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return failure(reasonKeyLifetime, msgKeyLifetime).with("apikey", nil).with("expires", nil), shard.APIKey{}, false, nil
	}
	rt, err := wire.RandomToken(32)
	if err != nil {
		return result{}, shard.APIKey{}, false, err
	}
	hs, err := c.s.deps.Hasher.Run(passhash.HashOp{Password: rt})
	if err != nil {
		return result{}, shard.APIKey{}, false, err
	}
	if err := hs[0].Err; err != nil || !hs[0].OK {
		return result{}, shard.APIKey{}, false, cmp.Or(err, errNoHash)
	}
	tkn, key, err := issueKey(c, shard.NewAPIKey{
		Kind: shard.KeyNoSession, UserID: shard.UserID(uid), Role: role,
		Lifetime: life, NotBefore: nbf,
		RefreshPHC: hs[0].PHC, RefreshLifetime: rlife, RefreshNotBefore: rnbf,
	})
	if err != nil {
		return result{}, shard.APIKey{}, false, err
	}
	cl := claims{iss: iss, ver: ver, aud: aud, sub: sub, uid: uid, rol: role, ipa: c.str("ip_address"), tkn: tkn, key: &key}
	exp := wire.FormatTime(key.Expires)
	return success("API key generated successfully, expires: "+exp+".").
		with("apikey", cl.String()).with("expires", exp).
		with("refresh_token", rt).with("refresh_token_expires", wire.FormatTime(key.RefreshExpires)), key, true, nil
}

func handleAPIKeyNewNoSession(c *call) (result, error) {
	uid, role := keyActor(c)
	allowed, err := apikeyAllowed(c, uid, role, "create", uid)
	if err != nil {
		return result{}, err
	}
	if !allowed {
		return failure("originating user is not allowed to issue an API key", msgKeyNotAllowedIssue), nil
	}
	res, key, issued, err := noSessionKey(c, uid, role, claimValue(c.raw("issuer")), claimValue(c.raw("apiversion")),
		claimValue(c.raw("audience")), claimValue(c.raw("subject")))
	if err != nil || !issued {
		return res, err
	}
	if err := capOwned(c.s, shard.UserID(uid), ownedKey(&key)); err != nil {
		return result{}, err
	}
	return res, nil
}

// ownedKey names a new key for capOwned.
func ownedKey(k *shard.APIKey) shard.OwnedItem {
	return shard.OwnedItem{Created: k.Issued, Key: k.Digest, KeyKind: k.Kind, IsAPIKey: true}
}

func handleAPIKeyRefresh(c *call) (result, error) {
	cl, bad, ok := claimsOrBadRequest(c)
	if !ok {
		return bad, nil
	}
	if cl.iss == nil || cl.ver == nil || cl.aud == nil || cl.sub == nil {
		return result{status: 400}, nil // the reference's KeyError when it copies them
	}
	noRefresh := failure("provided API key has no stored refresh token, probably invalid", msgRefreshFailed)
	if !cl.uidOK || !cl.okTR {
		return noRefresh, nil
	}
	// Step 1: the stored key with an open refresh window.
	found, err := actors.Ask[shard.APIKey](c.s.deps.Core, actors.RefreshableAPIKey{
		Digest: shard.DigestAPIKey(cl.tkn), UserID: shard.UserID(cl.uid), Role: cl.rol,
	})
	if errors.Is(err, shard.ErrAPIKeyNoRefresh) {
		return noRefresh, nil
	}
	if err != nil {
		return result{}, err
	}
	old := found.Value
	// Step 2: the refresh token against its Argon2id hash. A token not of
	// the form we issue cannot match and costs no hashing.
	badRefresh := failure("provided refresh token does not match stored refresh token", msgRefreshFailed)
	rt := c.str("refresh_token")
	if !isAPIKeyToken(rt) {
		return badRefresh, nil
	}
	hs, err := c.s.deps.Hasher.Run(passhash.HashOp{Verify: true, PHC: old.RefreshPHC, Password: rt})
	if err != nil {
		return result{}, err
	}
	if !hs[0].OK {
		return badRefresh, nil
	}
	// Steps 3–4. Both permissions are checked before anything changes, so a
	// refused refresh leaves the old key in place (the reference revokes it
	// first and may then refuse the new one).
	uid, role := keyActor(c)
	notRevoke := failure("user from provided API key not allowed to revoke old key", msgRefreshFailedJoined)
	allowed, err := apikeyAllowed(c, uid, role, "delete", cl.uid)
	if err != nil {
		return result{}, err
	}
	if !allowed {
		return notRevoke, nil
	}
	if !apikeyPolicy(c, uid, role, "create", uid) {
		return failure("user from provided API key not allowed to issue new key", msgRefreshFailedJoined), nil
	}
	// Issue first, then revoke: a crash in between leaves two keys rather
	// than none. The revocation is conditional on the refresh hash just
	// verified, so of two concurrent refreshes exactly one keeps its new key.
	res, key, issued, err := noSessionKey(c, uid, role, claimValue(cl.iss), claimValue(cl.ver),
		claimValue(cl.aud), claimValue(cl.sub))
	if err != nil || !issued {
		return res, err
	}
	revoked, err := revokeKey(c, shard.KeyNoSession, &cl, old.RefreshPHC)
	if err != nil || !revoked {
		dres, derr := actors.Ask[struct{}](c.s.deps.Core, actors.DeleteAPIKey{Kind: shard.KeyNoSession, Digest: key.Digest})
		if derr == nil {
			derr = durable(dres)
		}
		if err == nil {
			err = derr
		}
		if err != nil {
			return result{}, err
		}
		return notRevoke, nil
	}
	// The cap is applied only now that the old key is gone, so that a user
	// at the cap can refresh its oldest key. Its failure does not fail the
	// refresh, which would lose the caller's only key; the count stays
	// above the cap, so the next new key recounts.
	if err := capOwned(c.s, shard.UserID(uid), ownedKey(&key)); err != nil {
		c.s.log.Warn("API key cap after a refresh", "err", err)
	}
	return res, nil
}
