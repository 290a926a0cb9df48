package httpfront

import (
	"errors"
	"net/http"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/passhash"
)

// The plain-text bodies of error answers (docs/protocol.md, "HTTP statuses").
// Frontends built on the Python client show these as failure_reason, so they
// are verbatim.
const (
	text400 = "HTTP 400: Could not service this request because of invalid request parameters."
	text401 = "HTTP 401: Could not service this request because of invalid request authentication token or violation of host restriction."
	text404 = "<html><title>404: Not Found</title><body>404: Not Found</body></html>"
	text405 = "HTTP 405: Could not service this request."
	text413 = "HTTP 413: Could not service this request because the request body is too large."
	text429 = "HTTP 429: Could not service this request because the set rate limit has been exceeded."
	text500 = "HTTP 500: Could not service this request."
	text503 = "HTTP 503: Could not service this request because the server is busy. Retry later."
)

// Sentinels for failures that are answered with a status, not an envelope.
var (
	errBusy       = errors.New("httpfront: server busy")
	errUnwritable = errors.New("httpfront: store refuses writes")
)

// statusOf maps an error from the core to the HTTP status of its answer.
// It is the only place that does so. Every hasher failure is a 503: it says
// nothing about the password, so it is never a "no match", and a retry may
// well succeed (a dead hash worker is restarted, a stalled one killed).
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBusy), errors.Is(err, actors.ErrBusy), errors.Is(err, passhash.ErrHasherBusy), errors.Is(err, actors.ErrTimeout):
		return http.StatusServiceUnavailable
	case errors.Is(err, passhash.ErrHasherFault), errors.Is(err, passhash.ErrHasherTimeout), errors.Is(err, passhash.ErrHasherStopped):
		return http.StatusServiceUnavailable
	case errors.Is(err, errUnwritable), errors.Is(err, actors.ErrUnwritable), errors.Is(err, actors.ErrStopped):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// answerOf is the answer to a request whose handler returned res and err:
// res, or when err is not nil, the status answer statusOf gives err, with
// err kept as its cause for logs and metrics. The pipeline (handleAPI,
// Server.Call) calls it once per request, so a handler returns a core
// error as it is and never builds a status answer for it.
func answerOf(res result, err error) result {
	if err != nil {
		return result{status: statusOf(err), cause: err}
	}
	return res
}

func statusText(status int) string {
	switch status {
	case 400:
		return text400
	case 401:
		return text401
	case 404:
		return text404
	case 405:
		return text405
	case 413:
		return text413
	case 429:
		return text429
	case 503:
		return text503
	}
	return text500
}
