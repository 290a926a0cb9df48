package shard

import (
	"hash/maphash"
	"time"
)

// Rate is a rate limit in the form of the generic cell rate algorithm
// (GCRA, the token bucket kept as one timestamp): Burst requests may pass at
// once, and after that one request per Interval. A client limited to R
// requests a minute (Interval = 1m/R) gets R a minute at any window position
// and never more than Burst + R in any minute.
type Rate struct {
	Burst    int64         // at least 1
	Interval time.Duration // at least 1 ns
}

// PerMinute returns the rate of n requests a minute with a burst of burst.
// Values below 1 are taken as 1, so a rate never refuses everything, and a
// burst is at most maxBurst, so time arithmetic cannot overflow.
func PerMinute(n, burst int64) Rate {
	n, burst = max(n, 1), min(max(burst, 1), maxBurst)
	return Rate{Burst: burst, Interval: max(time.Minute/time.Duration(n), 1)}
}

const maxBurst = 1 << 20

// DefaultRateBucketCap is the number of rate-limit buckets a shard keeps
// before it evicts the least recently used one.
const DefaultRateBucketCap = 1 << 15

// RateKey hashes a bucket key: space separates families of keys (per IP, per
// email), kind is the request type and id the client. The hash is keyed by
// seed, so clients cannot choose ids that collide with another client's
// bucket, and it is used both to route the bucket to its shard and as its key
// there: a 64-bit keyed hash makes accidental collisions negligible (about
// n²/2⁶⁵ for n live buckets) and keeps the check free of allocations.
func RateKey(seed maphash.Seed, space byte, kind, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteByte(space)
	h.WriteString(kind)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

// RateRoute routes a rate-limit bucket by its key (already a hash).
func RateRoute(key uint64) Route { return Route(key) }

// rateTable holds the buckets of one shard, memory only: losing them on a
// restart only gives every client a fresh burst. Buckets sit in a slab with
// an intrusive LRU list, so a check of a known key neither allocates nor
// creates garbage, and the table never holds more than cap buckets. A full
// bucket (tat ≤ now) is the same as no bucket and is dropped by the sweep.
//
// The zero value is an empty table with the default cap.
type rateTable struct {
	idx   map[uint64]int32 // key -> slot
	slots []rateSlot
	head  int32 // most recently used slot, -1 if none
	tail  int32 // least recently used slot, -1 if none
	free  int32 // first free slot, -1 if none (linked by next)
	maxN  int   // 0: DefaultRateBucketCap
	base  time.Time
}

type rateSlot struct {
	key        uint64
	tat        int64 // theoretical arrival time, ns since base
	prev, next int32
}

func (t *rateTable) init(now time.Time) {
	if t.idx == nil {
		t.idx = make(map[uint64]int32)
		t.head, t.tail, t.free = -1, -1, -1
		t.slots = t.slots[:0]
		t.base = now
	}
}

// ns converts now to the table's clock. time.Sub uses the monotonic reading
// when both times have one, so wall-clock jumps do not refill buckets.
func (t *rateTable) ns(now time.Time) int64 { return int64(now.Sub(t.base)) }

func (t *rateTable) limit() int {
	if t.maxN <= 0 {
		return DefaultRateBucketCap
	}
	return t.maxN
}

// RateTake counts one request against bucket key with rate r and reports
// whether it may pass. A refused request does not count; retry is then how
// long until the next request would pass (zero when ok).
func (s *Shard) RateTake(key uint64, r Rate, now time.Time) (ok bool, retry time.Duration) {
	t := &s.rate
	t.init(now)
	n := t.ns(now)
	i, found := t.idx[key]
	tat := n
	if found && t.slots[i].tat > n {
		tat = t.slots[i].tat
	}
	iv := int64(r.Interval)
	next := tat + iv
	if over := next - n - r.Burst*iv; over > 0 {
		return false, time.Duration(over)
	}
	if !found {
		i = t.alloc(key)
	}
	t.slots[i].tat = next
	t.touch(i)
	return true, 0
}

// RatePeek reports what RateTake would answer, without counting.
func (s *Shard) RatePeek(key uint64, r Rate, now time.Time) (ok bool, retry time.Duration) {
	t := &s.rate
	if t.idx == nil {
		return true, 0
	}
	n := t.ns(now)
	i, found := t.idx[key]
	if !found || t.slots[i].tat <= n {
		return true, 0
	}
	iv := int64(r.Interval)
	if over := t.slots[i].tat + iv - n - r.Burst*iv; over > 0 {
		return false, time.Duration(over)
	}
	return true, 0
}

// RateRefund gives back one request taken from bucket key, for a request
// that a second bucket then refused: a refused request must not count.
func (s *Shard) RateRefund(key uint64, r Rate) {
	t := &s.rate
	if i, ok := t.idx[key]; ok {
		t.slots[i].tat -= int64(r.Interval)
	}
}

// SetRateBucketCap bounds the shard's rate-limit buckets (n < 1: the
// default). Buckets over the new bound are evicted, least recently used
// first.
func (s *Shard) SetRateBucketCap(n int) {
	t := &s.rate
	t.maxN = n
	for len(t.idx) > t.limit() {
		t.remove(t.tail)
	}
}

// RateBuckets reports the number of rate-limit buckets held.
func (s *Shard) RateBuckets() int { return len(s.rate.idx) }

// alloc returns a slot for a new key, evicting the least recently used
// bucket when the table is full. Evicting a bucket that is not full gives
// its client a fresh burst: the cap is the bound on memory, and is set high
// enough that only a flood of distinct clients reaches it.
func (t *rateTable) alloc(key uint64) int32 {
	if len(t.idx) >= t.limit() && t.tail >= 0 {
		t.remove(t.tail)
	}
	var i int32
	if t.free >= 0 {
		i = t.free
		t.free = t.slots[i].next
	} else {
		t.slots = append(t.slots, rateSlot{})
		i = int32(len(t.slots) - 1)
	}
	t.slots[i] = rateSlot{key: key, prev: -1, next: -1}
	t.idx[key] = i
	t.pushFront(i)
	return i
}

// remove drops slot i and puts it on the free list.
func (t *rateTable) remove(i int32) {
	t.unlink(i)
	delete(t.idx, t.slots[i].key)
	t.slots[i] = rateSlot{next: t.free, prev: -1}
	t.free = i
}

func (t *rateTable) unlink(i int32) {
	p, n := t.slots[i].prev, t.slots[i].next
	if p >= 0 {
		t.slots[p].next = n
	} else {
		t.head = n
	}
	if n >= 0 {
		t.slots[n].prev = p
	} else {
		t.tail = p
	}
	t.slots[i].prev, t.slots[i].next = -1, -1
}

func (t *rateTable) pushFront(i int32) {
	t.slots[i].prev, t.slots[i].next = -1, t.head
	if t.head >= 0 {
		t.slots[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

func (t *rateTable) touch(i int32) {
	if t.head == i {
		return
	}
	t.unlink(i)
	t.pushFront(i)
}

// sweepRateBuckets drops full buckets (tat ≤ now: the same as no bucket),
// looking at no more than limit buckets from the least recently used end,
// where idle buckets gather. When the table becomes empty its memory is
// released, so a flood leaves nothing behind once its buckets have refilled.
// Buckets are memory-only: nothing to persist.
func sweepRateBuckets(s *Shard, now time.Time, limit int) []Mutation {
	t := &s.rate
	if t.idx == nil {
		return nil
	}
	n := t.ns(now)
	for i, seen := t.tail, 0; i >= 0 && seen < limit; seen++ {
		prev := t.slots[i].prev
		if t.slots[i].tat <= n {
			t.remove(i)
		}
		i = prev
	}
	if len(t.idx) == 0 {
		*t = rateTable{maxN: t.maxN}
	}
	return nil
}
