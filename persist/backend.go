package persist

// Backend is the store interface the server runs on (docs/design.md, "The
// store interface"): the load scan at start, the group-commit [Writer] the
// shards enqueue their records to, the health that gates writes, and Close.
// The pebble [Store] is the embedded default; package pgstore implements it
// on PostgreSQL. Keys and values are opaque bytes to both; neither the
// shards, the flows nor the front know which one runs.
type Backend interface {
	// Scan calls fn for every record whose key starts with prefix (every
	// record when prefix is empty), one at a time; key and value are valid
	// only during the call. pebble gives them in key order; other backends
	// may not (the loader needs no order).
	Scan(prefix []byte, fn func(key, value []byte) error) error
	// Writer is the group-commit writer over the backend's [Sink].
	Writer() *Writer
	// Healthy is nil while the store accepts writes.
	Healthy() error
	// Close commits what is queued and releases the store.
	Close() error
}

var _ Backend = (*Store)(nil)
