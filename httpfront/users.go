package httpfront

import (
	"github.com/authnzerver/authnzerver/passpolicy"
	"github.com/authnzerver/authnzerver/perm"
)

// UserOptions configures the user capabilities: sign-up checks, password
// policy, permissions and brute-force back-off.
type UserOptions struct {
	// Permissions is the permission model used at request time
	// (docs/protocol.md, "Access and limit checks"). Nil means the built-in
	// default.
	Permissions *perm.Model
	// Policy is the password policy (docs/protocol.md, "Users, emails and
	// passwords").
	Policy passpolicy.Policy
	// Disposable lists the email domains refused at sign-up. Nil means the
	// built-in list.
	Disposable *passpolicy.DomainSet
	// ServerFQDN is compared with passwords by the similarity check.
	ServerFQDN string
	// MaxSessionsPerUser and MaxAPIKeysPerUser bound the live sessions and
	// the live API keys of each kind (session-tied, no-session) of one user;
	// past them the oldest are deleted (caps.go). The anonymous user's
	// sessions have no bound. Default 100; negative: no bound.
	MaxSessionsPerUser, MaxAPIKeysPerUser int
}

type usersExt struct {
	opts UserOptions
}

func (s *Server) perms() *perm.Model {
	if s.ext.users.opts.Permissions == nil {
		return perm.Default()
	}
	return s.ext.users.opts.Permissions
}

func (e *usersExt) disposable() *passpolicy.DomainSet {
	if e.opts.Disposable == nil {
		return passpolicy.BuiltinDisposable()
	}
	return e.opts.Disposable
}
