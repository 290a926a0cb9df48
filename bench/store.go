package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/authnzerver/authnzerver/pgstore/pgtest"
)

// The store of in-process servers (Config.Store): the embedded pebble
// store, PostgreSQL, or both side by side ("The store" in bench/README.md).
const (
	StorePebble   = "pebble"
	StorePostgres = "postgres"
	StoreBoth     = "both"
)

// storeScenarios are the scenarios measured on both stores with -store
// both: a durable write, a login (hash and writes) and the memory-only
// check, which should not change with the store.
var storeScenarios = []string{"session-check", "session-new", "login"}

// postgresSuffix names a scenario measured on PostgreSQL with -store both.
const postgresSuffix = " [postgres]"

// pgServer is the suite's throwaway PostgreSQL (fsync on), started on
// first use and stopped with the suite.
type pgServer struct {
	once sync.Once
	srv  *pgtest.Server
	err  error
}

func (s *Suite) checkStore() error {
	switch s.cfg.Store {
	case "", StorePebble:
		return nil
	case StorePostgres, StoreBoth:
		if s.cfg.URL != "" {
			return errors.New("bench: -store postgres|both is for the in-process server, not an external -url")
		}
		return nil
	}
	return fmt.Errorf("bench: unknown store %q (pebble, postgres or both)", s.cfg.Store)
}

// postgresEnv starts (once) the suite's PostgreSQL and returns the
// configuration of a server on a fresh database of it.
func (s *Suite) postgresEnv() (map[string]string, error) {
	s.pg.once.Do(func() {
		s.pg.srv, s.pg.err = pgtest.Start(pgtest.Options{Fsync: true})
		if s.pg.err == nil {
			s.closers = append(s.closers, s.pg.srv.Stop)
		}
	})
	if s.pg.err != nil {
		return nil, fmt.Errorf("bench: PostgreSQL: %w", s.pg.err)
	}
	db, err := s.pg.srv.NewDatabase()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.cfg.TempDir, "authnzbench-pg-*")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { os.RemoveAll(dir) })
	return map[string]string{"AUTHNZERVER_AUTHDB": s.pg.srv.URL(db), "AUTHNZERVER_DATADIR": dir}, nil
}

// postgresTwin is a suite whose server under test runs on PostgreSQL,
// sharing the baselines, drivers and closers of s (-store both).
func (s *Suite) postgresTwin() (*Suite, error) {
	env, err := s.postgresEnv()
	if err != nil {
		return nil, err
	}
	l, err := s.startLocal(env)
	if err != nil {
		return nil, err
	}
	t := &Suite{cfg: s.cfg, drivers: s.drivers, wrk: s.wrk, wrkChecked: s.wrkChecked, hello: s.hello, codec: s.codec, stick: s.stick}
	t.main = l.Target
	t.main.Name = "authnzerver-postgres"
	t.mainCall = newCaller(t.main, 16)
	s.closers = append(s.closers, t.mainCall.close, t.close)
	return t, nil
}

// twinScenarios are the scenarios of names that -store both also runs on
// PostgreSQL.
func twinScenarios(names []string) []string {
	var out []string
	for _, n := range names {
		if slices.Contains(storeScenarios, n) {
			out = append(out, n)
		}
	}
	return out
}
