package passpolicy

import "errors"

// Sentinel errors. Functions wrap them with detail using %w, so callers match
// with errors.Is and must not show err.Error() to end users: the detail names
// which rule failed, which is for logs, not for a sign-up form.
var (
	// ErrInvalidEmail is returned by [ValidateEmail].
	ErrInvalidEmail = errors.New("passpolicy: invalid email")
	// ErrInvalidFullName is returned by [CheckFullName].
	ErrInvalidFullName = errors.New("passpolicy: invalid full name")
	// ErrInvalidPolicy is returned by [ParsePolicy].
	ErrInvalidPolicy = errors.New("passpolicy: invalid policy")
	// ErrInvalidList is returned by [LoadCommonList] and [LoadDomainSet]
	// for a line that cannot be used.
	ErrInvalidList = errors.New("passpolicy: invalid list")
)
