// Package metrics exports authnzerver's Prometheus metrics: the front's
// per-request counters and latency histograms (it implements
// [httpfront.Observer]) and gauges read from the core at scrape time (shard
// mailbox depths, hasher queue and hash time, persister batches and sync
// time, live sessions and users).
//
// It may import httpfront (for the Observer types), actors and persist (for
// the scrape-time sources) and client_golang; httpfront never imports it,
// so the front stays free of any metrics library.
//
// # Concurrency and cost
//
// Everything on the request path is pre-resolved: New creates the label
// children of each request type once, so recording a request is two
// atomic adds and a histogram observation (also atomic), with no map
// lookup and no allocation. Gauges cost nothing until a scrape: the
// collector pulls them from their sources when /metrics is read. A scrape
// sends one message to every shard (to sum their table sizes), so scrape
// every few seconds, not in a tight loop.
package metrics
