package httpfront

import (
	"strconv"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/shard"
	"github.com/authnzerver/authnzerver/wire"
)

// sessionInfo is the 18-key session_info of session-exists (docs/protocol.md,
// "Sessions"), encoded without reflection: it is on the hottest path.
type sessionInfo struct {
	info actors.SessionInfo
	// token is the session token as the request held it: a slice of its
	// plaintext, encoded while the request lasts.
	token []byte
}

// appendJSON has a pointer receiver: session-exists passes a *sessionInfo
// (the call's own) into the result, which a pointer enters without an
// allocation.
func (v *sessionInfo) appendJSON(dst []byte) []byte {
	u, s := &v.info.User, &v.info.Session
	dst = append(dst, `{"user_id":`...)
	dst = strconv.AppendInt(dst, int64(u.ID), 10)
	dst = append(dst, `,"system_id":`...)
	dst = appendString(dst, u.SystemID)
	dst = append(dst, `,"full_name":`...)
	dst = appendString(dst, u.FullName)
	dst = append(dst, `,"email":`...)
	dst = appendString(dst, u.Email)
	dst = append(dst, `,"extra_info":`...)
	dst = appendValue(dst, u.ExtraInfo)
	dst = append(dst, `,"email_verified":`...)
	dst = strconv.AppendBool(dst, u.EmailVerified)
	dst = append(dst, `,"emailverify_sent_datetime":`...)
	dst = wire.AppendTime(dst, u.EmailVerifySent)
	dst = append(dst, `,"is_active":`...)
	dst = strconv.AppendBool(dst, u.IsActive)
	dst = append(dst, `,"last_login_try":`...)
	dst = wire.AppendTime(dst, u.LastLoginTry)
	dst = append(dst, `,"last_login_success":`...)
	dst = wire.AppendTime(dst, u.LastLoginSuccess)
	dst = append(dst, `,"created_on":`...)
	dst = wire.AppendTime(dst, u.CreatedOn)
	dst = append(dst, `,"user_role":`...)
	dst = appendString(dst, u.Role)
	dst = append(dst, ',')
	dst = appendSessionFields(dst, v.token, s)
	return append(dst, '}')
}

// shortSessionInfo is the 7-key session_info of internal-session-edit
// (docs/protocol.md, "Sessions").
type shortSessionInfo struct {
	sess  shard.Session
	token string
}

func (v shortSessionInfo) appendJSON(dst []byte) []byte {
	s := &v.sess
	dst = append(dst, `{"user_id":`...)
	dst = strconv.AppendInt(dst, int64(s.UserID), 10)
	dst = append(dst, ',')
	dst = appendSessionFields(dst, v.token, s)
	return append(dst, '}')
}

// userInfo is the 16-key "user info" object of the user requests.
type userInfo struct{ u shard.User }

func (v userInfo) appendJSON(dst []byte) []byte {
	u := &v.u
	dst = append(dst, `{"user_id":`...)
	dst = strconv.AppendInt(dst, int64(u.ID), 10)
	dst = append(dst, `,"system_id":`...)
	dst = appendString(dst, u.SystemID)
	dst = append(dst, `,"full_name":`...)
	dst = appendString(dst, u.FullName)
	dst = append(dst, `,"email":`...)
	dst = appendString(dst, u.Email)
	dst = append(dst, `,"email_verified":`...)
	dst = strconv.AppendBool(dst, u.EmailVerified)
	dst = append(dst, `,"is_active":`...)
	dst = strconv.AppendBool(dst, u.IsActive)
	dst = append(dst, `,"last_login_try":`...)
	dst = wire.AppendTime(dst, u.LastLoginTry)
	dst = append(dst, `,"last_login_success":`...)
	dst = wire.AppendTime(dst, u.LastLoginSuccess)
	dst = append(dst, `,"failed_login_tries":`...)
	dst = strconv.AppendInt(dst, int64(u.FailedLoginTries), 10)
	dst = append(dst, `,"created_on":`...)
	dst = wire.AppendTime(dst, u.CreatedOn)
	dst = append(dst, `,"last_updated":`...)
	dst = wire.AppendTime(dst, u.LastUpdated)
	dst = append(dst, `,"user_role":`...)
	dst = appendString(dst, u.Role)
	dst = append(dst, `,"extra_info":`...)
	dst = appendValue(dst, u.ExtraInfo)
	dst = append(dst, `,"emailverify_sent_datetime":`...)
	dst = wire.AppendTime(dst, u.EmailVerifySent)
	dst = append(dst, `,"emailforgotpass_sent_datetime":`...)
	dst = wire.AppendTime(dst, u.EmailForgotPassSent)
	dst = append(dst, `,"emailchangepass_sent_datetime":`...)
	dst = wire.AppendTime(dst, u.EmailChangePassSent)
	return append(dst, '}')
}

// userInfoList is a JSON array of user info objects.
type userInfoList []shard.User

func (l userInfoList) appendJSON(dst []byte) []byte {
	dst = append(dst, '[')
	for i := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = userInfo{l[i]}.appendJSON(dst)
	}
	return append(dst, ']')
}

// appendSessionFields appends the session's own fields, in the order all
// three session_info shapes share: session_token, ip_address, user_agent,
// created, expires, extra_info_json.
func appendSessionFields[T string | []byte](dst []byte, token T, s *shard.Session) []byte {
	dst = append(dst, `"session_token":`...)
	dst = appendJSONString(dst, token)
	dst = append(dst, `,"ip_address":`...)
	dst = appendString(dst, s.IPAddress)
	dst = append(dst, `,"user_agent":`...)
	dst = appendString(dst, s.UserAgent)
	dst = append(dst, `,"created":`...)
	dst = wire.AppendTime(dst, s.Created)
	dst = append(dst, `,"expires":`...)
	dst = wire.AppendTime(dst, s.Expires)
	dst = append(dst, `,"extra_info_json":`...)
	return appendValue(dst, s.ExtraInfo)
}
