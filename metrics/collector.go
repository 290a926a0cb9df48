package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// coreCollector reads the core's gauges and cumulative counters at scrape
// time, so they cost nothing between scrapes.
type coreCollector struct {
	src Sources

	mailbox, hashQueue                           *prometheus.Desc
	hashTime, hashRefused                        *prometheus.Desc
	batchSize, commitTime, pending               *prometheus.Desc
	sessions, users, emails, apikeys, countError *prometheus.Desc
	stalls, stallTime, flushes, compactions      *prometheus.Desc

	countErrors atomic.Uint64
}

func newCoreCollector(src Sources) *coreCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &coreCollector{
		src:         src,
		mailbox:     d("shard_mailbox_depth", "Messages waiting in each shard actor's mailbox.", "shard"),
		hashQueue:   d("hasher_queue_depth", "Password hash jobs admitted and waiting for a busy worker."),
		hashTime:    d("hash_duration_seconds", "Time the hasher workers spent per hash or verify operation (sum and count)."),
		hashRefused: d("hasher_refusals_total", "Hash jobs refused at once because the hasher pool's queue was full."),
		batchSize:   d("persist_batch_records", "Records per committed pebble batch (sum and count; count is the number of batches)."),
		commitTime:  d("persist_commit_duration_seconds", "Time per batch commit, including fsync in sync durability (sum and count)."),
		pending:     d("persist_pending_records", "Records waiting for the next batch."),
		sessions:    d("sessions", "Sessions held in memory (live, and expired ones not yet swept)."),
		users:       d("users", "User accounts, including the three system users."),
		apikeys:     d("apikeys", "API keys held in memory (session-bound and session-less, until swept)."),
		emails:      d("emails", "Entries of the email-to-user index."),
		countError:  d("count_errors_total", "Scrapes where a shard did not answer the table-size query (the size gauges are then left out)."),
		stalls:      d("persist_write_stalls_total", "Times pebble held all writes until a flush or compaction caught up."),
		stallTime:   d("persist_write_stall_seconds_total", "Time writes were held by pebble write stalls that have ended."),
		flushes:     d("persist_flushes_total", "Memtable flushes pebble completed."),
		compactions: d("persist_compactions_total", "Compactions pebble completed."),
	}
}

// Describe implements [prometheus.Collector].
func (c *coreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.mailbox, c.hashQueue, c.hashTime, c.hashRefused,
		c.batchSize, c.commitTime, c.pending, c.sessions, c.users, c.emails, c.apikeys, c.countError,
		c.stalls, c.stallTime, c.flushes, c.compactions} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]. It runs on the scraping
// goroutine; every source it reads is safe from any goroutine.
func (c *coreCollector) Collect(ch chan<- prometheus.Metric) {
	if h := c.src.Hasher; h != nil {
		ch <- prometheus.MustNewConstMetric(c.hashQueue, prometheus.GaugeValue, float64(h.QueueDepth()))
		st := h.Stats()
		ch <- prometheus.MustNewConstSummary(c.hashTime, st.Ops, float64(st.Nanos)/1e9, nil)
		ch <- prometheus.MustNewConstMetric(c.hashRefused, prometheus.CounterValue, float64(st.Refused))
	}
	if w := c.src.Writer; w != nil {
		st := w.Stats()
		ch <- prometheus.MustNewConstSummary(c.batchSize, st.Batches, float64(st.Records), nil)
		ch <- prometheus.MustNewConstSummary(c.commitTime, st.Batches, float64(st.SyncNanos)/1e9, nil)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
	}
	if s := c.src.Store; s != nil {
		ev := s.Events()
		ch <- prometheus.MustNewConstMetric(c.stalls, prometheus.CounterValue, float64(ev.WriteStalls))
		ch <- prometheus.MustNewConstMetric(c.stallTime, prometheus.CounterValue, float64(ev.WriteStallNanos)/1e9)
		ch <- prometheus.MustNewConstMetric(c.flushes, prometheus.CounterValue, float64(ev.Flushes))
		ch <- prometheus.MustNewConstMetric(c.compactions, prometheus.CounterValue, float64(ev.Compactions))
	}
	if core := c.src.Core; core != nil {
		for i, n := range core.MailboxDepths() {
			ch <- prometheus.MustNewConstMetric(c.mailbox, prometheus.GaugeValue, float64(n), strconv.Itoa(i))
		}
		if n, err := core.Counts(); err == nil {
			ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(n.Sessions))
			ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, float64(n.Users))
			ch <- prometheus.MustNewConstMetric(c.emails, prometheus.GaugeValue, float64(n.Emails))
			ch <- prometheus.MustNewConstMetric(c.apikeys, prometheus.GaugeValue, float64(n.APIKeys))
		} else {
			c.countErrors.Add(1)
		}
		ch <- prometheus.MustNewConstMetric(c.countError, prometheus.CounterValue, float64(c.countErrors.Load()))
	}
}
