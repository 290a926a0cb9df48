package persist

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// limitedLog logs repeated store errors once and then counts them: a full
// disk makes pebble retry a flush and fail in a tight loop, which would
// otherwise log the same error thousands of times a second. Each kind of
// error is logged at once the first time, then at most once per every with
// the number not logged since ("repeated"); flush logs what is left.
type limitedLog struct {
	l     *slog.Logger
	every time.Duration

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	level   slog.Level
	next    time.Time // before it, the kind is counted, not logged
	dropped int
	msg     string // the last one dropped, for flush
	attrs   []any
}

// maxLogKinds bounds the kinds remembered; the rest share one.
const maxLogKinds = 64

func newLimitedLog(l *slog.Logger, every time.Duration) *limitedLog {
	return &limitedLog{l: l, every: every, kinds: map[string]*logKind{}}
}

// error logs msg (its first line only: pebble's errors may carry stack
// traces) at error level under kind, subject to the limit.
func (ll *limitedLog) error(kind, msg string, attrs ...any) {
	ll.log(slog.LevelError, kind, msg, attrs...)
}

// log is error at any level.
func (ll *limitedLog) log(level slog.Level, kind, msg string, attrs ...any) {
	msg = firstLine(msg)
	kind = withoutDigits(kind) // file numbers and offsets differ between repeats
	now := time.Now()
	ll.mu.Lock()
	k := ll.kinds[kind]
	if k == nil {
		if len(ll.kinds) >= maxLogKinds {
			kind = "other"
			k = ll.kinds[kind]
		}
		if k == nil {
			k = &logKind{level: level}
			ll.kinds[kind] = k
		}
	}
	if now.Before(k.next) {
		k.dropped++
		k.msg, k.attrs = msg, attrs
		ll.mu.Unlock()
		return
	}
	dropped := k.dropped
	k.dropped, k.msg, k.attrs = 0, "", nil
	k.next = now.Add(ll.every)
	ll.mu.Unlock()
	ll.emit(k.level, msg, dropped, attrs)
}

// flush logs, once, the count of every kind dropped since it was last
// logged (when the failure is over, or at close).
func (ll *limitedLog) flush() {
	ll.mu.Lock()
	type line struct {
		level   slog.Level
		msg     string
		dropped int
		attrs   []any
	}
	var out []line
	for kind, k := range ll.kinds {
		if k.dropped > 0 {
			out = append(out, line{k.level, k.msg, k.dropped, k.attrs})
		}
		delete(ll.kinds, kind)
	}
	ll.mu.Unlock()
	for _, l := range out {
		ll.emit(l.level, l.msg, l.dropped, l.attrs)
	}
}

func (ll *limitedLog) emit(level slog.Level, msg string, dropped int, attrs []any) {
	args := attrs[:len(attrs):len(attrs)] // appending must not write into the caller's array
	if dropped > 0 {
		args = append(args, "repeated", dropped)
	}
	ll.l.Log(context.Background(), level, msg, args...)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func withoutDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, firstLine(s))
}
