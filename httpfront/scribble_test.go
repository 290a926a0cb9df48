package httpfront

// Every test of the package runs with the pooled plaintexts scribbled over
// as they go back to the pool: a handler that keeps a slice of one past its
// request then meets garbage, and the test that drives it fails.
func init() { scribblePooled = true }
