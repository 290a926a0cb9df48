package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/authnzerver/authnzerver/config"
	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/pgstore"
)

// ImportStore is a store opened for `authnzerver import-reference`
// (docs/operations.md, "Moving from the Python server"): the store
// interface plus Commit, which writes every record of the import at once
// or none.
type ImportStore interface {
	persist.Backend
	Commit(ops []persist.Op) error
}

// OpenImportStore opens the store the configuration names, as the server
// would, for an import: a pebble data directory is created if missing; a
// PostgreSQL database gets the schema if it has none, and is held
// exclusively (no server may start on it meanwhile). Nothing is loaded
// into shards and nothing is bootstrapped. With readOnly (a dry run) it
// creates nothing and answers nil, nil for a store that does not exist yet.
func OpenImportStore(cfg *config.Config, lg *slog.Logger, readOnly bool) (ImportStore, error) {
	if cfg.Postgres() {
		shards := cfg.Shards
		if shards <= 0 {
			shards = 4 * runtime.GOMAXPROCS(0)
		}
		st, err := pgstore.Open(pgstore.Options{
			URL: cfg.AuthDB, PasswordFile: cfg.AuthDBPassFile, Shards: shards, Logger: lg,
			Exclusive: true, NoCreate: readOnly,
			// One transaction holds the whole import.
			CommitTimeout: 30 * time.Minute,
		})
		if errors.Is(err, pgstore.ErrNoSchema) && readOnly {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		return st, nil
	}
	if readOnly && !HasStore(cfg.AuthDB) {
		return nil, nil
	}
	if err := os.MkdirAll(cfg.AuthDB, 0o700); err != nil {
		return nil, fmt.Errorf("server: data directory: %w", err)
	}
	st, err := persist.Open(filepath.Join(cfg.AuthDB, storeDir), persist.Options{
		Logger:  lg,
		Reserve: int64(cfg.DiskReserve) << 20,
	})
	if err != nil {
		return nil, storeError(err)
	}
	return st, nil
}
