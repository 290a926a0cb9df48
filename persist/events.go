package persist

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// StoreEvents are counters of pebble's background work, for metrics: a
// write stall holds every durable write (and so every request that makes
// one) until a flush or compaction catches up.
type StoreEvents struct {
	WriteStalls     uint64
	WriteStallNanos uint64 // stalls that have ended
	Flushes         uint64
	Compactions     uint64
	BackgroundErrs  uint64
}

// storeEvents counts pebble's events and logs the ones an operator must
// see. Its methods run on pebble's goroutines and must not block.
type storeEvents struct {
	log                                      *slog.Logger
	limited                                  *limitedLog
	stalls, stallNanos, flushes, compactions atomic.Uint64
	backgroundErrs                           atomic.Uint64
	stallStart                               atomic.Int64 // unix nanos of the stall in progress, 0 if none
	damagedFile                              atomic.Pointer[string]
}

func (e *storeEvents) listener() *pebble.EventListener {
	return &pebble.EventListener{
		WriteStallBegin: e.writeStallBegin,
		WriteStallEnd:   e.writeStallEnd,
		FlushEnd: func(i pebble.FlushInfo) {
			if i.Err == nil {
				e.flushes.Add(1)
			}
			e.log.Debug("store flush", "component", "pebble", "info", i.String())
		},
		CompactionEnd: func(i pebble.CompactionInfo) {
			if i.Err == nil {
				e.compactions.Add(1)
			}
			e.log.Debug("store compaction", "component", "pebble", "info", i.String())
		},
		BackgroundError: func(err error) {
			e.backgroundErrs.Add(1)
			msg := firstLine(err.Error())
			e.limited.error("background: "+msg, "store background error", "component", "pebble", "err", msg)
		},
		// pebble's default for a damaged file is Logger.Fatalf, a panic
		// with a stack trace; the read that found it returns a corruption
		// error, which [Store.damaged] turns into a message for people.
		DataCorruption: func(i pebble.DataCorruptionInfo) {
			path := i.Path
			e.damagedFile.Store(&path)
			e.limited.error("corruption: "+path, "store file is damaged: restore the data directory from a backup",
				"component", "pebble", "file", path, "err", firstLine(fmt.Sprint(i.Details)))
		},
	}
}

func (e *storeEvents) writeStallBegin(i pebble.WriteStallBeginInfo) {
	e.stalls.Add(1)
	e.stallStart.Store(time.Now().UnixNano())
	e.log.Warn("store write stall: durable writes wait for pebble to catch up", "component", "pebble", "reason", i.Reason)
}

func (e *storeEvents) writeStallEnd() {
	start := e.stallStart.Swap(0)
	if start == 0 {
		return
	}
	d := time.Duration(time.Now().UnixNano() - start)
	e.stallNanos.Add(uint64(d))
	e.log.Warn("store write stall ended", "component", "pebble", "duration", d.Round(time.Microsecond))
}

func (e *storeEvents) snapshot() StoreEvents {
	return StoreEvents{
		WriteStalls:     e.stalls.Load(),
		WriteStallNanos: e.stallNanos.Load(),
		Flushes:         e.flushes.Load(),
		Compactions:     e.compactions.Load(),
		BackgroundErrs:  e.backgroundErrs.Load(),
	}
}
