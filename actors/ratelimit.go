package actors

import (
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/shard"
)

// RateCheck asks whether one request may pass one or two rate-limit buckets:
// per client IP, and for email-tied requests also per email
// (docs/protocol.md, "Rate limits").
// The request passes only if every bucket lets it; a bucket that let it pass
// is refunded when another refuses, so a refused request counts nowhere.
type RateCheck struct {
	Keys  [2]uint64 // bucket keys (shard.RateKey); they route the check
	Rates [2]shard.Rate
	N     int // buckets used: 1 or 2
}

// rateMsg carries a RateCheck to the shards and the answer back. It is
// pooled: the caller owns it again once it received on out.
type rateMsg struct {
	chk   RateCheck
	stage int // index of the bucket the receiving shard handles
	ok    bool
	retry time.Duration
	out   chan reply
}

var rateMsgPool = sync.Pool{New: func() any { return new(rateMsg) }}

// rateRefund gives back a request taken from a bucket on another shard.
type rateRefund struct {
	key  uint64
	rate shard.Rate
}

// CheckRate runs chk on the shards that own its buckets: one message from
// the caller and one reply. When both buckets live on one shard, that shard
// answers alone; otherwise the first shard forwards the check to the second
// (as CheckSession does). It returns whether the request passes and, when it
// does not, how long until it would.
func CheckRate(c *Core, chk *RateCheck) (ok bool, retry time.Duration, err error) {
	if c.stopped.Load() {
		return false, 0, ErrStopped
	}
	if c.cl != nil {
		return checkRateCluster(c, chk)
	}
	m := rateMsgPool.Get().(*rateMsg)
	m.chk, m.stage, m.ok, m.retry = *chk, 0, false, 0
	m.chk.N = min(max(m.chk.N, 1), len(m.chk.Keys))
	m.out = replyPool.Get().(chan reply)
	pid, _ := c.pidOf(shard.RateRoute(chk.Keys[0]))
	c.root.Send(pid, m)
	if _, err := c.wait(m.out); err != nil {
		return false, 0, err // m may still be written to: not pooled
	}
	ok, retry = m.ok, m.retry
	m.out = nil
	rateMsgPool.Put(m)
	return ok, retry, nil
}

// rateCheck handles a rateMsg on the shard of bucket m.stage, and on the
// following buckets while they live on this shard too. Once a bucket has
// refused (m.retry > 0), later buckets are only peeked, so that Retry-After
// covers them all; when a later bucket refuses, the earlier ones, which let
// the request pass, are refunded.
func (a *shardActor) rateCheck(m *rateMsg) {
	now := a.core.opts.Now()
	for {
		i := m.stage
		key, rate := m.chk.Keys[i], m.chk.Rates[i]
		_, here := a.core.pidOf(shard.RateRoute(key))
		if m.retry > 0 {
			if ok, r := a.state.RatePeek(key, rate, now); !ok {
				m.retry = max(m.retry, r)
			}
		} else if ok, r := a.state.RateTake(key, rate, now); !ok {
			m.retry = r
			a.rateRefundBefore(m, i, here)
		}
		if i+1 >= m.chk.N {
			m.ok = m.retry == 0
			m.out <- reply{}
			return
		}
		m.stage = i + 1
		if next, j := a.core.pidOf(shard.RateRoute(m.chk.Keys[i+1])); j != here {
			a.core.root.Send(next, m)
			return
		}
	}
}

// rateRefundBefore gives back the requests taken from buckets 0..i-1.
func (a *shardActor) rateRefundBefore(m *rateMsg, i, here int) {
	for p := range i {
		pid, j := a.core.pidOf(shard.RateRoute(m.chk.Keys[p]))
		if j == here {
			a.state.RateRefund(m.chk.Keys[p], m.chk.Rates[p])
			continue
		}
		a.core.root.Send(pid, &rateRefund{key: m.chk.Keys[p], rate: m.chk.Rates[p]})
	}
}

// SetRateBucketCap bounds the rate-limit buckets of every shard to n each.
func SetRateBucketCap(c *Core, n int) error {
	_, err := AskAll[any](c, SetRateBuckets{Cap: n})
	return err
}

// SetRateBuckets bounds the rate-limit buckets of the shards it is sent to
// ([AskAll]) to Cap each.
type SetRateBuckets struct {
	Cap int `json:"cap"`
}

func (o SetRateBuckets) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	s.SetRateBucketCap(o.Cap)
	return nil, nil, nil
}

// checkRateCluster is CheckRate in cluster mode, where the buckets' shards
// may be on different nodes: one named operation per bucket, with the same
// rules (a refused request counts nowhere; Retry-After covers every
// bucket).
func checkRateCluster(c *Core, chk *RateCheck) (bool, time.Duration, error) {
	n := min(max(chk.N, 1), len(chk.Keys))
	var retry time.Duration
	for i := range n {
		res, err := Ask[RateAnswer](c, RateTake{Key: chk.Keys[i], Rate: chk.Rates[i], PeekOnly: retry > 0})
		if err != nil {
			return false, 0, err
		}
		if res.Value.OK || retry > 0 {
			retry = max(retry, res.Value.Retry)
			continue
		}
		retry = res.Value.Retry
		for p := range i {
			if _, err := Ask[any](c, RateGiveBack{Key: chk.Keys[p], Rate: chk.Rates[p]}); err != nil {
				return false, 0, err
			}
		}
	}
	return retry == 0, retry, nil
}

// RateTake takes one request from the bucket Key (or, with PeekOnly, only
// looks whether it would pass) and answers a [RateAnswer]. Cluster mode's
// rate check is made of these.
type RateTake struct {
	Key      uint64     `json:"key"`
	Rate     shard.Rate `json:"rate"`
	PeekOnly bool       `json:"peek_only"`
}

// RateAnswer is the answer to [RateTake]: whether the request passes and,
// when not, how long until it would.
type RateAnswer struct {
	OK    bool          `json:"ok"`
	Retry time.Duration `json:"retry"`
}

// Route implements Op.
func (o RateTake) Route() shard.Route { return shard.RateRoute(o.Key) }

func (o RateTake) apply(s *shard.Shard, now time.Time) (any, []shard.Mutation, error) {
	if o.PeekOnly {
		ok, r := s.RatePeek(o.Key, o.Rate, now)
		return RateAnswer{OK: ok, Retry: r}, nil, nil
	}
	ok, r := s.RateTake(o.Key, o.Rate, now)
	return RateAnswer{OK: ok, Retry: r}, nil, nil
}

// RateGiveBack returns a request taken from the bucket Key by [RateTake]
// when another bucket refused it. It answers nothing.
type RateGiveBack struct {
	Key  uint64     `json:"key"`
	Rate shard.Rate `json:"rate"`
}

// Route implements Op.
func (o RateGiveBack) Route() shard.Route { return shard.RateRoute(o.Key) }

func (o RateGiveBack) apply(s *shard.Shard, _ time.Time) (any, []shard.Mutation, error) {
	s.RateRefund(o.Key, o.Rate)
	return nil, nil, nil
}

// rateOps are the operations of this file.
var rateOps = []broadcastOp{SetRateBuckets{}, RateTake{}, RateGiveBack{}}
