package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

// settle collects garbage and returns freed pages to the OS, so resident
// size reflects live state rather than what the collector has not yet
// given back.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// memory loads Config.MemoryN anonymous sessions with typical fields (one
// of ten 100-character user agents each) into a fresh server and reports
// the growth of its resident size per session, then times a restart that
// loads them back.
//
// In process (the default) the server gets its own data directory and
// AUTHNZERVER_DURABILITY=async, which makes loading a million sessions
// quicker and changes nothing in what is stored or reloaded; the resident
// size is this process's, which also holds the load generator, so the
// figure is taken after a collection and is an upper bound. Against an
// external server, -server-pid names the process to read; its restart is
// not timed.
func (s *Suite) memory(ctx context.Context) (*MemoryReport, error) {
	n := s.cfg.MemoryN
	mr := &MemoryReport{Sessions: n}
	pid := 0
	var l *Local
	t := s.main
	if s.cfg.URL != "" {
		if s.cfg.ServerPID <= 0 {
			return nil, skipf("memory needs -server-pid with an external server")
		}
		pid = s.cfg.ServerPID
		mr.Notes = append(mr.Notes, "external server: restart not timed")
	} else {
		var err error
		if l, err = s.startLocal(map[string]string{"AUTHNZERVER_DURABILITY": "async"}); err != nil {
			return nil, err
		}
		t = l.Target
		mr.Notes = append(mr.Notes, "in-process server, AUTHNZERVER_DURABILITY=async for loading; RSS is the whole bench process after a GC")
	}
	c := newCaller(t, 4)
	defer c.close()
	// One known session, to check it is still there after the restart.
	known, err := makeSessions(c, 1, nil)
	if err != nil {
		return nil, err
	}
	b, err := PrepareBodies(t.Codec, 1024, func(i int) Call { return sessionNew(i, nil) })
	if err != nil {
		return nil, err
	}
	b.StartRefresh(60 * time.Second)
	defer b.Close()

	settle()
	heap0 := heapInUse()
	if mr.RSSBefore, err = rssBytes(pid); err != nil {
		return nil, err
	}
	mr.Load, err = Drive(ctx, t, b, Expect{}, RunOptions{
		Label: fmt.Sprintf("memory: load %d sessions", n), Conns: s.cfg.Conns, MaxReqs: int64(n),
		Duration: time.Hour, SampleEvery: s.cfg.Sample, Progress: s.cfg.Progress,
	})
	if err != nil {
		return nil, err
	}
	if mr.Load.OK != int64(n) {
		return nil, fmt.Errorf("bench: memory: %d of %d session-new answers were not 200 (errors %d)", int64(n)-mr.Load.OK, n, mr.Load.Errors)
	}
	settle()
	if mr.RSSAfter, err = rssBytes(pid); err != nil {
		return nil, err
	}
	mr.BytesPerSession = float64(mr.RSSAfter-mr.RSSBefore) / float64(n)
	if l != nil {
		mr.HeapPerSession = float64(heapInUse()-heap0) / float64(n)
		// The stop (which commits what async durability still queues) is
		// timed apart from the start, which loads every record back.
		begin := time.Now()
		if err := l.Close(); err != nil {
			return nil, err
		}
		mr.StopSeconds = time.Since(begin).Seconds()
		begin = time.Now()
		if err := l.start(); err != nil {
			return nil, err
		}
		mr.RestartSeconds = time.Since(begin).Seconds()
		settle()
		mr.RSSAfterRestart, _ = rssBytes(0)
		c2 := newCaller(l.Target, 1)
		defer c2.close()
		a, err := c2.call(Call{Type: "session-exists", Body: map[string]any{"session_token": known[0]}})
		if err != nil {
			return nil, err
		}
		mr.Verified = a.Success
	}
	return mr, nil
}
