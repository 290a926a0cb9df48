package httpfront

import (
	"errors"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
)

// Legacy request types (docs/protocol.md, "Legacy names") that need their
// own handler because their bodies differ from the current type's. Names
// that only changed are aliases in the current type's row of requestTable.

// legacySessionInfo is the 6-key session_info of the 0.0.x session-setinfo.
type legacySessionInfo struct {
	sess  shard.Session
	token string
}

func (v legacySessionInfo) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	dst = appendSessionFields(dst, v.token, &v.sess)
	return append(dst, '}')
}

// handleSessionSetInfo replaces a live session's extra info as a whole (the
// 0.0.x behaviour; internal-session-edit merges instead).
func handleSessionSetInfo(c *call) (result, error) {
	token := c.str("session_token")
	extra := c.raw("extra_info")
	if rawKind(extra) != '{' {
		extra = nil
	}
	if len(extra) > c.s.opts.MaxExtraInfoBytes {
		return failure("DB error when updating session info", "Session info update failed.").with("session_info", nil), nil
	}
	d := shard.DigestSession(token)
	res, err := actors.Ask[shard.Session](c.s.deps.Core, actors.SetSessionExtra{Digest: d, ExtraInfo: extra})
	if errors.Is(err, shard.ErrSessionNotFound) {
		return failure("no such session", "Session extra_info update failed.").with("session_info", nil), nil
	}
	if err != nil {
		return result{}, err
	}
	if err := durable(res); err != nil {
		return result{}, err
	}
	return success("Session extra_info update successful.").with("session_info", legacySessionInfo{res.Value, token}), nil
}
