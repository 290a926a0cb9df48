package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/authnzerver/authnzerver/httpfront"
	"github.com/authnzerver/authnzerver/metrics"
	"github.com/authnzerver/authnzerver/persist"
)

// ErrBackupPostgres is the answer of the backup and restore commands (and
// SIGUSR1) for a PostgreSQL store, whose backups are PostgreSQL's own.
var ErrBackupPostgres = errors.New("the store is PostgreSQL: back it up with pg_dump (pg_dump -Fc -n authnzerver -f authnzerver.dump DBNAME) and restore with pg_restore into an empty database; " +
	"copy the data directory's key files (.authnzerver-secret-key, .authnzerver-salt) beside it (docs/operations.md, Backups)")

// keyFiles are the generated secrets kept in the data directory next to the
// store. A backup copies them, because a store restored without them would
// come up with a new Fernet key (frontends locked out) and a new PII salt
// (log hashes no longer match). They are written 0400.
var keyFiles = []string{".authnzerver-secret-key", ".authnzerver-salt"}

// storeDir is the pebble directory inside the data directory.
const storeDir = "db"

// opsState is the operations side of a running server: the metrics
// listener and backups.
type opsState struct {
	// Set by Start, read by Listen and Close.
	metrics *metrics.Metrics // nil: metrics off

	// Set by Listen, read by Close.
	metricsSrv  *http.Server
	metricsAddr net.Addr

	backupMu sync.Mutex // serialises backups (SIGUSR1 may arrive twice)
}

// observer creates the metrics when AUTHNZERVER_METRICSADDR is set and
// returns them as the front's observer (nil otherwise: then the front calls
// no metrics code at all). Start calls it once the core is up.
func (s *Server) observer() httpfront.Observer {
	if s.Config.MetricsAddr == "" {
		return nil
	}
	src := metrics.Sources{Core: s.Core, Hasher: s.Hasher, Writer: s.Store.Writer()}
	if ps, ok := s.Store.(*persist.Store); ok {
		src.Store = ps // pebble's own counters
	}
	s.ops.metrics = metrics.New(src)
	return s.ops.metrics
}

// listenMetrics serves GET /metrics on AUTHNZERVER_METRICSADDR with plain
// net/http, outside the encrypted protocol. Bind it to a private address:
// the metrics hold no secrets, but they do show traffic.
func (s *Server) listenMetrics() error {
	if s.ops.metrics == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("server: metrics listen %s: %w", s.Config.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.ops.metrics.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	s.ops.metricsSrv, s.ops.metricsAddr = srv, ln.Addr()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// MetricsAddr is the address of the /metrics listener once Listen returned
// (nil when metrics are off).
func (s *Server) MetricsAddr() net.Addr { return s.ops.metricsAddr }

// closeMetrics stops the metrics listener, waiting up to 5 s for scrapes.
func (s *Server) closeMetrics() {
	if s.ops.metricsSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.ops.metricsSrv.Shutdown(ctx)
	s.ops.metricsSrv = nil
}

// BackupNow writes a backup of the running server into a new directory
// under AUTHNZERVER_BACKUPDIR, named authnzerver-backup-<UTC time>, and
// returns its path. cmd/authnzerver calls it on SIGUSR1.
func (s *Server) BackupNow() (string, error) {
	if s.Config.BackupDir == "" {
		return "", errors.New("server: backup: no backup directory configured (AUTHNZERVER_BACKUPDIR)")
	}
	s.ops.backupMu.Lock()
	defer s.ops.backupMu.Unlock()
	if err := os.MkdirAll(s.Config.BackupDir, 0o700); err != nil {
		return "", fmt.Errorf("server: backup: %w", err)
	}
	dest := filepath.Join(s.Config.BackupDir, "authnzerver-backup-"+time.Now().UTC().Format("20060102T150405.000Z"))
	if err := s.BackupTo(dest); err != nil {
		return "", err
	}
	return dest, nil
}

// BackupTo writes a consistent backup to dest, which must not exist: a
// pebble checkpoint of the store in dest/db (every acknowledged write is in
// it: the checkpoint flushes the WAL first) and copies of the generated key
// files. It is safe while the server serves.
func (s *Server) BackupTo(dest string) error {
	cp, ok := s.Store.(interface{ Checkpoint(dir string) error })
	if !ok {
		return fmt.Errorf("server: backup: %w", ErrBackupPostgres)
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("server: backup: %s already exists", dest)
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return fmt.Errorf("server: backup: %w", err)
	}
	if err := cp.Checkpoint(filepath.Join(dest, storeDir)); err != nil {
		return fmt.Errorf("server: backup: %w", err)
	}
	for _, name := range keyFiles {
		src := filepath.Join(s.Config.DataDir, name)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue // configured, not generated
		}
		if err := copyFile(src, filepath.Join(dest, name), 0o400); err != nil {
			return fmt.Errorf("server: backup: %w", err)
		}
	}
	s.Log.Info("backup written", "dir", dest)
	return nil
}

// Restore copies a backup made by [Server.BackupTo] into dataDir, whose
// store must be empty or absent. It must run while no server uses dataDir.
// A key file already in dataDir is kept if it is identical and refused if it
// differs, so a restore never silently changes the Fernet key.
func Restore(backup, dataDir string) error { return RestoreTo(backup, dataDir, dataDir) }

// RestoreTo is [Restore] with the pebble store in storeHome/db and the key
// files in dataDir (AUTHNZERVER_AUTHDB and AUTHNZERVER_DATADIR apart).
func RestoreTo(backup, storeHome, dataDir string) error {
	src := filepath.Join(backup, storeDir)
	if !isStore(src) {
		return fmt.Errorf("server: restore: %s does not hold a backup (no pebble store in %s)", backup, src)
	}
	dst := filepath.Join(storeHome, storeDir)
	if ents, err := os.ReadDir(dst); err == nil && len(ents) > 0 {
		return fmt.Errorf("server: restore: %s is not empty; restore into a new data directory", dst)
	}
	for _, name := range keyFiles {
		b, err := os.ReadFile(filepath.Join(backup, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("server: restore: %w", err)
		}
		if have, err := os.ReadFile(filepath.Join(dataDir, name)); err == nil && !bytes.Equal(have, b) {
			return fmt.Errorf("server: restore: %s differs from the backup's; move it away first", filepath.Join(dataDir, name))
		}
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("server: restore: %w", err)
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular():
			return copyFile(path, target, 0o600)
		}
		return fmt.Errorf("%s: not a regular file", path)
	})
	if err != nil {
		return fmt.Errorf("server: restore: %w", err)
	}
	for _, name := range keyFiles {
		from, to := filepath.Join(backup, name), filepath.Join(dataDir, name)
		if _, err := os.Stat(from); err != nil {
			continue
		}
		if _, err := os.Stat(to); err == nil {
			continue // identical, checked above
		}
		if err := copyFile(from, to, 0o400); err != nil {
			return fmt.Errorf("server: restore: %w", err)
		}
	}
	return nil
}

// HasStore reports whether dataDir holds a store (a data directory the
// server has run on), so that admin commands do not create one by mistake.
func HasStore(dataDir string) bool { return isStore(filepath.Join(dataDir, storeDir)) }

// isStore reports whether dir looks like a pebble database: it has a
// manifest (pebble v2 points to it with a marker file; v1 used CURRENT).
func isStore(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "MANIFEST-") || strings.HasPrefix(n, "marker.manifest.") || n == "CURRENT" {
			return true
		}
	}
	return false
}

// copyFile copies src to a new file dst with mode perm and syncs it.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
