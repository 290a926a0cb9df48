//go:build race

package httpfront

// raceEnabled skips allocation counts, which the race detector changes.
const raceEnabled = true
