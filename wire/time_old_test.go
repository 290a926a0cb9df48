package wire

import (
	"math"
	"testing"
	"time"
)

// oldAppendTime is AppendTime as it was, on time.AppendFormat.
func oldAppendTime(dst []byte, t time.Time) []byte {
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

func checkTimeAgainstOld(t *testing.T, tm time.Time) {
	t.Helper()
	want := string(oldAppendTime([]byte("p:"), tm))
	if got := string(AppendTime([]byte("p:"), tm)); got != want {
		t.Fatalf("AppendTime(%v) = %q; want %q", tm, got, want)
	}
	if !tm.IsZero() {
		if got := `"` + FormatTime(tm) + `"`; got != want[2:] {
			t.Fatalf("FormatTime(%v) = %s; want %s", tm, got, want[2:])
		}
	}
}

func TestAppendTimeAgainstOld(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("e", 5*3600+1800), time.FixedZone("w", -12*3600)}
	var times []time.Time
	for _, sec := range []int64{0, -1, 1, 86399, 86400, -86400, -86401, 951782400, 951868800, 1764633599,
		minWireSec, minWireSec - 1, minWireSec + 1, maxWireSec, maxWireSec - 1, maxWireSec + 1,
		-62135596800, // 0001-01-01, the zero time
		1 << 40, -1 << 40, math.MaxInt64 / 2, math.MinInt64 / 2} {
		for _, ns := range []int64{0, 1, 999, 1000, 123456789, 999999999, -1, 1e9} {
			times = append(times, time.Unix(sec, ns))
		}
	}
	times = append(times, time.Time{}, time.Now(), time.Date(2000, 2, 29, 23, 59, 59, 999999999, time.UTC), time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC))
	// Every day of a few leap cycles, at varied times of day.
	for d := int64(-450 * 366); d < 450*366; d += 11 {
		times = append(times, time.Unix(d*86400+d%86400, d*1000))
	}
	for _, tm := range times {
		for _, z := range zones {
			checkTimeAgainstOld(t, tm.In(z))
		}
	}
}

func FuzzAppendTimeAgainstOld(f *testing.F) {
	f.Add(int64(0), int64(0), int32(0))
	f.Add(int64(1764633599), int64(123456789), int32(3600))
	f.Add(int64(minWireSec), int64(-1), int32(-1))
	f.Add(int64(maxWireSec-1), int64(999999999), int32(0))
	f.Add(int64(-62135596800), int64(0), int32(0))
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		checkTimeAgainstOld(t, time.Unix(sec, nsec).In(time.FixedZone("z", int(offset%(100*3600)))))
	})
}
