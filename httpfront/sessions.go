package httpfront

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/netip"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// maxExtraInfoBytes bounds a user's stored extra-info object. A session's
// has its own, configurable bound (Options.MaxExtraInfoBytes): there are
// many more sessions than users.
const maxExtraInfoBytes = 64 << 10

// durable waits for the write behind a result and maps a failed commit to
// the 503 answer: nothing is acknowledged that is not on disk.
func durable[R any](r actors.Result[R]) error {
	if err := r.Durable(); err != nil {
		return errUnwritable
	}
	return nil
}

func handleSessionNew(c *call) (result, error) {
	fail := failure("DB error when making new session", "Could not create a new session.").
		with("session_token", nil).with("expires", nil)
	ip, err := netip.ParseAddr(c.str("ip_address"))
	if err != nil || ip.Zone() != "" {
		return fail, nil
	}
	ua := c.str("user_agent") // at most 280 characters (validate)
	expires, err := wire.ParseTime(c.str("expires"))
	if err != nil {
		return fail, nil
	}
	extra := c.raw("extra_info_json")
	if rawKind(extra) != '{' {
		extra = nil
	}
	if len(extra) > c.s.opts.MaxExtraInfoBytes {
		// Refused, not dropped: the frontend must not believe it stored.
		return failure("invalid request: extra_info_json is larger than this server allows", "Could not create a new session.").
			with("session_token", nil).with("expires", nil), nil
	}
	uid, _ := c.int("user_id")
	token, sess, why, err := c.s.deps.Accounts.StartSession(actors.SessionRequest{
		UserID: shard.UserID(uid), IPAddress: ip.String(), UserAgent: ua, Expires: expires, ExtraInfo: extra,
		MaxPerUser: c.s.opts.Users.MaxSessionsPerUser,
	})
	if err != nil {
		return result{}, err
	}
	if why != "" {
		return fail, nil // no such user: the reference's foreign-key failure
	}
	return success("Generated session_token successfully. Session initiated.").
		with("session_token", token).
		with("expires", wire.FormatTime(sess.Expires)), nil
}

func handleSessionExists(c *call) (result, error) {
	token := c.strBytes("session_token")
	info, err := actors.CheckSession(c.s.deps.Core, sessionDigest(token))
	if errors.Is(err, shard.ErrSessionNotFound) {
		return failure("session does not exist or expired", "Session look up failed.").with("session_info", nil), nil
	}
	if err != nil {
		return result{}, err
	}
	c.sess = sessionInfo{info: info, token: token}
	return success("Session look up successful.").with("session_info", &c.sess), nil
}

// sessionDigest is shard.DigestSession of a token held as bytes (a slice
// of the plaintext), without the string conversion, which allocates for a
// token longer than 32 bytes. TestSessionDigestBytes keeps the two equal.
func sessionDigest(token []byte) shard.SessionDigest {
	return sha256.Sum256(token)
}

func handleSessionDelete(c *call) (result, error) {
	d := shard.DigestSession(c.str("session_token"))
	res, err := actors.Ask[bool](c.s.deps.Core, actors.DeleteSession{Digest: d})
	if err != nil {
		return result{}, err
	}
	if err := durable(res); err != nil {
		return result{}, err
	}
	if !res.Value {
		return result{messages: []string{"Session delete processed, success: False."}}, nil
	}
	return success("Session delete processed, success: True."), nil
}

func handleSessionDeleteUserID(c *call) (result, error) {
	uid, _ := c.int("user_id")
	var keep *shard.SessionDigest
	// Honour keep_current_session (the Python server ignores it).
	if c.boolean("keep_current_session") {
		if tok := c.str("session_token"); tok != "" {
			d := shard.DigestSession(tok)
			keep = &d
		}
	}
	n, err := c.s.deps.Accounts.EndSessions(shard.UserID(uid), keep)
	if err != nil {
		return result{}, err
	}
	if n == 0 {
		return result{messages: []string{"Sessions delete processed. Success: False."}}, nil
	}
	return success("Sessions delete processed. Success: True."), nil
}

func handleInternalSessionEdit(c *call) (result, error) {
	var update map[string]json.RawMessage
	if err := json.Unmarshal(c.raw("update_dict"), &update); err != nil || len(update) == 0 {
		return failure("invalid request: missing 'update_dict' in request", "Invalid session edit request: missing or invalid parameters.").
			with("session_info", nil), nil
	}
	token := c.str("target_session_token")
	d := shard.DigestSession(token)
	res, err := actors.Ask[shard.Session](c.s.deps.Core, actors.MergeSessionExtra{
		Digest: d, Update: update, MaxBytes: c.s.opts.MaxExtraInfoBytes,
	})
	// Every failure carries "session_info": null, as the reference's does:
	// clients index it.
	switch {
	case errors.Is(err, shard.ErrSessionNotFound):
		return failure("no such session", "Session extra_info update failed.").with("session_info", nil), nil
	case errors.Is(err, actors.ErrSessionExtraTooLarge):
		return failure("DB error when updating session info", "Session info update failed.").with("session_info", nil), nil
	case err != nil:
		return result{}, err
	}
	if err := durable(res); err != nil {
		return result{}, err
	}
	return success("Session extra_info update successful.").with("session_info", shortSessionInfo{sess: res.Value, token: token}), nil
}

// getUser reads one user from its shard.
func getUser(s *Server, id shard.UserID) (shard.User, error) {
	res, err := actors.Ask[shard.User](s.deps.Core, actors.GetUser{ID: id})
	return res.Value, err
}
