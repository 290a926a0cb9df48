package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Request is the decrypted request envelope (docs/protocol.md, "The request
// envelope").
type Request struct {
	Request      string          `json:"request"`
	Body         any             `json:"body"`
	ReqID        any             `json:"reqid"`
	ClientIPAddr string          `json:"client_ipaddr,omitempty"`
	Raw          json.RawMessage `json:"-"`
}

// Response is the decrypted answer envelope (docs/protocol.md, "The request
// envelope").
type Response struct {
	Success       bool            `json:"success"`
	Response      json.RawMessage `json:"response"`
	Messages      []string        `json:"messages"`
	ReqID         json.RawMessage `json:"reqid"`
	FailureReason *string         `json:"failure_reason,omitempty"`
}

// TimeLayout is the wire format of datetimes (docs/protocol.md, "Times"):
// naive UTC in Python's isoformat, whose fraction is omitted when it is zero.
const (
	timeLayoutMicro = "2006-01-02T15:04:05.000000"
	timeLayoutSec   = "2006-01-02T15:04:05"
)

// FormatTime renders t as the reference does: UTC, no zone, microseconds
// unless they are zero.
func FormatTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format(timeLayoutSec)
	}
	return t.Format(timeLayoutMicro)
}

// AppendFormatTime appends FormatTime(t), unquoted.
func AppendFormatTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.AppendFormat(dst, timeLayoutSec)
	}
	return t.AppendFormat(dst, timeLayoutMicro)
}

// AppendTime appends FormatTime(t) as a JSON string, or null for the zero
// time.
func AppendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		dst = t.AppendFormat(dst, timeLayoutSec)
	} else {
		dst = t.AppendFormat(dst, timeLayoutMicro)
	}
	return append(dst, '"')
}

// Time is a datetime that marshals in the wire format, and as null when
// zero.
type Time time.Time

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) { return AppendTime(nil, time.Time(t)), nil }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// ParseTime reads a datetime as frontends send it (session-new's expires):
// naive UTC `YYYY-MM-DDTHH:MM:SS` with an optional fraction of 1–9 digits;
// every `Z` is removed first, as the reference does. Unlike the reference,
// which demanded a fraction, a value without one is accepted, and so is an
// explicit UTC offset such as +00:00 or +05:30, converted to UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "Z", ""))
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("wire: not an ISO datetime: %q", s)
}
