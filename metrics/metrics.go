package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authnzerver/authnzerver/actors"
	"github.com/authnzerver/authnzerver/httpfront"
	"github.com/authnzerver/authnzerver/passhash"
	"github.com/authnzerver/authnzerver/persist"
)

// namespace prefixes every metric name.
const namespace = "authnzerver"

// latencyBuckets span the two speeds of the server: session, key and access
// checks answer in tens of microseconds, password hashing takes tens to
// hundreds of milliseconds.
var latencyBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5,
}

// statuses are the HTTP statuses the front answers POST / with; each gets a
// pre-resolved counter, any other status counts as "other".
var statuses = [...]int{200, 400, 401, 404, 405, 413, 429, 500, 503}

// Sources are where the scrape-time gauges come from. A nil field leaves
// its gauges out.
type Sources struct {
	Core   *actors.Core
	Hasher *passhash.Hasher
	Writer *persist.Writer
	Store  *persist.Store
}

// Metrics is the server's metric registry. It is safe for concurrent use.
type Metrics struct {
	// Static after New.
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec   // type, outcome
	latency     *prometheus.HistogramVec // type
	responses   [len(statuses) + 1]prometheus.Counter
	rateLimited prometheus.Counter
	busy        [httpfront.NumBusyCauses]prometheus.Counter
}

// New returns a registry with the front's metrics, the scrape-time gauges
// of src, and the Go runtime and process collectors.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "Requests that reached their handler, by request type and outcome (success, failure, error).",
	}, []string{"type", "outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "request_duration_seconds",
		Help:    "Time from reading a request to its sealed answer, by request type.",
		Buckets: latencyBuckets,
	}, []string{"type"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_responses_total",
		Help: "Answers to POST /, by HTTP status (includes refusals before a request type is known).",
	}, []string{"status"})
	for i, st := range statuses {
		m.responses[i] = responses.WithLabelValues(strconv.Itoa(st))
	}
	m.responses[len(statuses)] = responses.WithLabelValues("other")
	m.rateLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "ratelimit_refusals_total",
		Help: "Requests refused with 429 by the rate limiter.",
	})
	busy := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "busy_refusals_total",
		Help: "Requests refused with 503, by cause (hasher: hash queue full; timeout: a shard did not answer; store: writes refused).",
	}, []string{"cause"})
	for c := range httpfront.NumBusyCauses {
		m.busy[c] = busy.WithLabelValues(c.String())
	}
	m.reg.MustRegister(m.requests, m.latency, responses, m.rateLimited, busy,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCoreCollector(src))
	return m
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the HTTP handler of the /metrics endpoint.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observer returns m as the front's observer.
func (m *Metrics) Observer() httpfront.Observer { return m }

// RequestType implements [httpfront.Observer]: it resolves the label
// children of one request type, once.
func (m *Metrics) RequestType(name string) httpfront.RequestObserver {
	t := &typeObserver{latency: m.latency.WithLabelValues(name)}
	for o := range httpfront.NumOutcomes {
		t.outcomes[o] = m.requests.WithLabelValues(name, o.String())
	}
	return t
}

// Response implements [httpfront.Observer].
func (m *Metrics) Response(status int) {
	i := len(statuses)
	switch status {
	case 200:
		i = 0
	case 400:
		i = 1
	case 401:
		i = 2
	case 404:
		i = 3
	case 405:
		i = 4
	case 413:
		i = 5
	case 429:
		i = 6
		m.rateLimited.Inc()
	case 500:
		i = 7
	case 503:
		i = 8
	}
	m.responses[i].Inc()
}

// Busy implements [httpfront.Observer].
func (m *Metrics) Busy(c httpfront.BusyCause) {
	if c < httpfront.NumBusyCauses {
		m.busy[c].Inc()
	}
}

// typeObserver holds the pre-resolved children of one request type.
type typeObserver struct {
	outcomes [httpfront.NumOutcomes]prometheus.Counter
	latency  prometheus.Observer
}

// Done implements [httpfront.RequestObserver].
func (t *typeObserver) Done(o httpfront.Outcome, elapsed time.Duration) {
	if o < httpfront.NumOutcomes {
		t.outcomes[o].Inc()
	}
	t.latency.Observe(elapsed.Seconds())
}
