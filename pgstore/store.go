// Package pgstore is the PostgreSQL backend of the store (docs/design.md,
// "The store interface"; docs/operations.md, "PostgreSQL"): the same
// mutation records the shards hand to pebble, committed through the same
// group-commit [persist.Writer] in one transaction per batch, one table per
// kind of record with readable columns, loaded at start as from pebble.
//
// Every batch's transaction first checks the owner epoch of each shard it
// writes (a shard_owner row per shard, raised when a process takes the
// shard at start), so a process whose shards were taken by another writes
// nothing more and stops answering. A lost connection is waited out with
// back-off while writes are refused (503); no write is acknowledged before
// its transaction committed.
//
// In cluster mode (Options.Cluster) several nodes share the database and
// Open takes no shard: a node takes one shard at a time under a lease
// ([Store.TakeShard], renewed by [Store.RenewLeases]), loads only its
// records ([Store.LoadShard], by the route column every batch writes) and
// writes them through a writer fenced by that shard's epoch alone
// ([Store.ShardWriter]); user ids come from a counter shared by the nodes
// ([Store.ReserveUserIDs]).
//
// It imports persist and shard (to decode records into columns), never the
// actors, the front or the server.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authnzerver/authnzerver/persist"
)

// IsURL reports whether authdb names a PostgreSQL database rather than a
// pebble directory.
func IsURL(authdb string) bool {
	l := strings.ToLower(authdb)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Options configure a Store.
type Options struct {
	// URL is the pgx connection URL (postgres:// or postgresql://).
	URL string
	// PasswordFile, when set, holds the password (first line), which
	// then need not be in the URL.
	PasswordFile string
	// Shards is the number of shards this process runs; it takes all of
	// them at Open (in cluster mode it takes none, and Shards must be the
	// deployment's count).
	Shards int
	// Cluster opens for cluster mode (docs/operations.md, "Cluster mode"):
	// several nodes share the database, each shard held by one node at a
	// time through [Store.TakeShard] and written through its
	// [Store.ShardWriter]. Open takes no shard; on a new database it
	// records Shards as the deployment's count and on an existing one
	// refuses another count; the idle probe reports outages only (each
	// shard writer learns of its own fencing).
	Cluster bool
	// ClusterVersion is the wire version of this node's cluster messages
	// (cluster mode): a node of another version than the running nodes'
	// is refused with [ErrClusterVersion].
	ClusterVersion int
	// Writer configures the group-commit writer; Async commits with
	// synchronous_commit off.
	Writer persist.WriterOptions
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Exclusive refuses to open while a server runs on the database, and
	// keeps servers from starting meanwhile (admin commands).
	Exclusive bool
	// NoCreate refuses a database without the schema instead of creating
	// it (admin commands: a mistyped URL must not make a new deployment).
	NoCreate bool
	// ConnectTimeout bounds the first connection. Default 10 s.
	ConnectTimeout time.Duration
	// CommitTimeout bounds one commit attempt; a commit that takes longer
	// is treated as a lost connection (refused, then retried). Default 10 s.
	CommitTimeout time.Duration
	// ProbeEvery is how often the store checks the database and its
	// shards' epochs while idle (only the database in cluster mode).
	// Default 1 s.
	ProbeEvery time.Duration
	// RetryMax caps the back-off between commit attempts. Default 2 s.
	RetryMax time.Duration
}

// ErrUnreachable is wrapped by [Store.Healthy] while PostgreSQL cannot be
// reached; it clears by itself once a commit or probe succeeds.
var ErrUnreachable = errors.New("pgstore: PostgreSQL unreachable")

// ErrFenced is wrapped by [Store.Healthy] once another process has taken
// a shard of this one; it is sticky (restart the process to take the
// shards back, if that is what you mean).
var ErrFenced = errors.New("pgstore: shard taken by another process")

// ErrInUse is returned by Open when another process holds the database in
// a way that excludes this one (an admin command, or a server for an
// admin command).
var ErrInUse = errors.New("pgstore: database in use")

type outageError struct {
	since time.Time
	err   error
}

func (e *outageError) Error() string {
	return fmt.Sprintf("%v since %s: writes are refused until it is back (%v)", ErrUnreachable, e.since.UTC().Format(time.RFC3339), e.err)
}
func (e *outageError) Unwrap() error  { return ErrUnreachable }
func (e *outageError) Reason() string { return "PostgreSQL unreachable" }

type fencedError struct{ detail string }

func (e *fencedError) Error() string  { return fmt.Sprintf("%v: %s", ErrFenced, e.detail) }
func (e *fencedError) Unwrap() error  { return ErrFenced }
func (e *fencedError) Reason() string { return "shards taken by another process" }

// Store is an open PostgreSQL store.
type Store struct {
	// Static after Open.
	opts   Options
	pool   *pgxpool.Pool
	w      *persist.Writer
	log    *slog.Logger
	where  string  // user@host:port/db, for messages (never the password)
	epochs []int64 // by shard: the epoch this process took (none in cluster mode)
	owner  string
	shards int // the deployment's shard count

	main committer // the store's own writer (single-node mode)

	probeDown atomic.Pointer[outageError] // set while the probe cannot reach it
	fenced    atomic.Pointer[fencedError]

	mu       sync.Mutex
	onFenced []func(error)
	lockConn *pgx.Conn // holds the advisory lock that marks this process

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	probed   chan struct{} // closed when the probe has ended
}

var _ persist.Backend = (*Store)(nil)

// Open connects, creates or migrates the schema, takes every shard and
// starts the writer. A URL that does not parse, a database that cannot be
// reached, a newer schema or a foreign one is an error with nothing
// written.
func Open(o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 10 * time.Second
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 2 * time.Second
	}
	if o.Shards <= 0 {
		return nil, errors.New("pgstore: no shards")
	}
	cfg, err := parseURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.PasswordFile != "" {
		b, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("pgstore: AUTHNZERVER_AUTHDBPASSFILE: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		cfg.ConnConfig.Password = strings.TrimRight(pw, "\r")
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "authnzerver"
	if o.Writer.Async {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	cfg.MaxConns = 8
	cfg.MinConns = 0
	where := fmt.Sprintf("%s@%s/%s", cfg.ConnConfig.User, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))), cfg.ConnConfig.Database)
	s := &Store{opts: o, log: o.Logger, where: where, stop: make(chan struct{}), probed: make(chan struct{})}
	s.owner = ownerName()
	s.shards = o.Shards

	ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
	defer cancel()
	// The connection that holds the advisory lock is also the one the
	// schema is checked on: a database that cannot be reached fails here.
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("pgstore: cannot reach PostgreSQL at %s: %w", where, err)
	}
	fail := func(err error) (*Store, error) {
		unlock(conn, o.Exclusive)
		return nil, err
	}
	var enc string
	if err := conn.QueryRow(ctx, `SHOW server_encoding`).Scan(&enc); err != nil {
		return fail(fmt.Errorf("pgstore: %s: %w", where, err))
	}
	if !strings.EqualFold(enc, "UTF8") {
		return fail(fmt.Errorf("pgstore: database %s has encoding %s; authnzerver needs a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8')", where, enc))
	}
	if err := lock(ctx, conn, o.Exclusive); err != nil {
		return fail(err)
	}
	if !o.Exclusive {
		if err := lockMode(ctx, conn, o.Cluster, true); err != nil {
			return fail(err)
		}
	}
	deployment := make([]byte, 16)
	_, _ = rand.Read(deployment)
	prev, created, err := ensureSchema(ctx, conn, o.Shards, hex.EncodeToString(deployment), o.NoCreate, o.Cluster)
	if err != nil {
		return fail(err)
	}
	if created {
		s.log.Info("store: created the PostgreSQL schema", "version", SchemaVersion, "database", where)
	}
	if !o.Cluster {
		if err := s.takeShards(ctx, conn, prev); err != nil {
			return fail(err)
		}
	} else if o.ClusterVersion > 0 {
		if err := checkClusterVersion(ctx, conn, o.ClusterVersion); err != nil {
			return fail(err)
		}
	}
	s.lockConn = conn
	if s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		return fail(fmt.Errorf("pgstore: %w", err))
	}
	s.main = committer{name: "store", fenceOf: s.fenceOfStore, onFenced: func(b *batch) error {
		return s.fence(fmt.Sprintf("a batch's owner check failed on shards %v", b.shards))
	}}
	s.w = persist.NewWriter(s, o.Writer)
	s.main.w = s.w
	go s.probe()
	return s, nil
}

// parseURL parses a pgx URL, with errors that never hold the password.
func parseURL(raw string) (*pgxpool.Config, error) {
	if !IsURL(raw) {
		return nil, errors.New("pgstore: AUTHNZERVER_AUTHDB is not a postgres:// or postgresql:// URL")
	}
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("pgstore: the PostgreSQL URL in AUTHNZERVER_AUTHDB does not parse: %s", redact(raw, err))
	}
	return cfg, nil
}

// redact describes err without the URL's password.
func redact(raw string, err error) string {
	inner := err
	for {
		var ue *url.Error
		if errors.As(inner, &ue) {
			inner = ue.Err
			break
		}
		next := errors.Unwrap(inner)
		if next == nil {
			break
		}
		inner = next
	}
	msg := inner.Error()
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok {
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
				if dec, err := url.PathUnescape(pw); err == nil && dec != "" {
					msg = strings.ReplaceAll(msg, dec, "xxxxx")
				}
			}
		}
	}
	if strings.Contains(msg, "://") { // a URL still in it: say no more
		return "malformed URL"
	}
	return msg
}

func ownerName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// lock takes the advisory lock that marks this process for as long as
// conn lives: shared for a server, exclusive for an admin command. A lock
// held by a process that has just ended may outlive it for a moment (its
// backend has not yet seen the disconnection), so a refusal is tried again
// for up to lockWait.
func lock(ctx context.Context, conn *pgx.Conn, exclusive bool) error {
	q := `SELECT pg_try_advisory_lock_shared($1)`
	if exclusive {
		q = `SELECT pg_try_advisory_lock($1)`
	}
	deadline := time.Now().Add(lockWait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, q, lockKey).Scan(&ok); err != nil {
			return fmt.Errorf("pgstore: advisory lock: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgstore: advisory lock: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if exclusive {
		return fmt.Errorf("%w: an authnzerver server is running on this database; stop it first (for a backup, use pg_dump)", ErrInUse)
	}
	return fmt.Errorf("%w: an authnzerver admin command is running on this database; wait for it to finish", ErrInUse)
}

// Advisory locks that mark a single-node server and a cluster node (each
// held shared by its kind), so that neither starts while the other kind
// runs: a single-node server takes every shard without a lease, which a
// cluster node would take from under it (and the reverse), both answering
// from memory meanwhile.
const (
	singleNodeLockKey = lockKey + 2
	clusterLockKey    = lockKey + 3
)

// lockMode marks this process as a single-node server or a cluster node
// for as long as conn lives, and (when check) refuses while a process of
// the other kind runs: it tries the other kind's lock exclusively for a
// moment, which succeeds only when nobody holds it. Two processes of each
// kind starting at the same moment may both be refused, never both let
// in. A refusal is tried again for up to lockWait (a lock of a process
// that has just ended).
func lockMode(ctx context.Context, conn *pgx.Conn, cluster, check bool) error {
	mine, other := singleNodeLockKey, clusterLockKey
	if cluster {
		mine, other = other, mine
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1)`, mine); err != nil {
		return fmt.Errorf("pgstore: advisory lock: %w", err)
	}
	if !check {
		return nil
	}
	deadline := time.Now().Add(lockWait)
	for {
		var free bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, other).Scan(&free); err != nil {
			return fmt.Errorf("pgstore: advisory lock: %w", err)
		}
		if free {
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, other); err != nil {
				return fmt.Errorf("pgstore: advisory lock: %w", err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgstore: advisory lock: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if cluster {
		return fmt.Errorf("%w: a single-node authnzerver server (not in cluster mode) is running on this database; stop it before starting cluster nodes", ErrInUse)
	}
	return fmt.Errorf("%w: authnzerver cluster nodes are running on this database; stop them, or start this server in cluster mode", ErrInUse)
}

// lockWait is how long lock tries again before it reports the database in
// use.
const lockWait = 2 * time.Second

// unlock releases the advisory lock (at once, rather than when the server
// notices the connection closed) and closes conn.
func unlock(conn *pgx.Conn, exclusive bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	q := `SELECT pg_advisory_unlock_shared($1)`
	if exclusive {
		q = `SELECT pg_advisory_unlock($1)`
	}
	if !conn.IsClosed() {
		_, _ = conn.Exec(ctx, q, lockKey)
	}
	conn.Close(ctx)
}

// takeShards raises the epoch of every shard this process runs, records
// the shard count, and removes the rows of shards beyond it (a smaller
// count than before: their records are re-routed as they load, and a
// process still writing under the old count finds its rows gone and is
// fenced).
func (s *Store) takeShards(ctx context.Context, conn *pgx.Conn, prev int) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	defer tx.Rollback(ctx)
	// Locking every row first: a cluster node taking a shard meanwhile
	// waits, and then takes it from this process (which is fenced), rather
	// than both believing they hold it.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM authnzerver.shard_owner FOR UPDATE`); err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	var leased int
	var left float64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM max(lease_until) - clock_timestamp()), 0)::float8
		FROM authnzerver.shard_owner WHERE lease_until > clock_timestamp()`).Scan(&leased, &left); err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	if leased > 0 {
		return fmt.Errorf("%w: a cluster is running on this database (%d shards held under a lease, the last for %.0f s more); "+
			"stop its nodes (or wait for their leases to run out), or start this server in cluster mode", ErrInUse, leased, left)
	}
	rows, err := tx.Query(ctx, `INSERT INTO authnzerver.shard_owner AS o (shard, epoch, owner, taken_at, batch_seq, lease_until)
		SELECT g, 1, $2, now(), 0, NULL FROM generate_series(0, $1 - 1) AS g
		ON CONFLICT (shard) DO UPDATE SET epoch = o.epoch + 1, owner = EXCLUDED.owner, taken_at = now(), batch_seq = 0, lease_until = NULL
		RETURNING shard, epoch`, s.opts.Shards, s.owner)
	if err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	s.epochs = make([]int64, s.opts.Shards)
	for rows.Next() {
		var sh int32
		var ep int64
		if err := rows.Scan(&sh, &ep); err != nil {
			rows.Close()
			return fmt.Errorf("pgstore: take shards: %w", err)
		}
		if int(sh) < len(s.epochs) {
			s.epochs[sh] = ep
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM authnzerver.shard_owner WHERE shard >= $1`, s.opts.Shards); err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE authnzerver.deployment SET shard_count = $1 WHERE id = 1`, s.opts.Shards); err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: take shards: %w", err)
	}
	if prev != 0 && prev != s.opts.Shards {
		s.log.Warn("store: the shard count changed; records are re-routed as they load", "was", prev, "now", s.opts.Shards)
	}
	return nil
}

// Writer returns the store's group-commit writer.
func (s *Store) Writer() *persist.Writer { return s.w }

// Healthy is nil while the store accepts writes: an error wrapping
// [ErrFenced] (sticky), the writer's sticky error, or one wrapping
// [ErrUnreachable] (clears by itself).
func (s *Store) Healthy() error {
	if f := s.fenced.Load(); f != nil {
		return f
	}
	if err := s.w.Err(); err != nil {
		return err
	}
	if o := s.main.outage.Load(); o != nil {
		return o
	}
	if o := s.probeDown.Load(); o != nil {
		return o
	}
	return nil
}

// OnFenced registers fn, called once (on its own goroutine) when another
// process takes a shard of this one; at once if that already happened.
func (s *Store) OnFenced(fn func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.fenced.Load(); f != nil {
		go fn(f)
		return
	}
	s.onFenced = append(s.onFenced, fn)
}

// fence enters the sticky fenced state.
func (s *Store) fence(detail string) error {
	f := &fencedError{detail: detail}
	if !s.fenced.CompareAndSwap(nil, f) {
		return s.fenced.Load()
	}
	s.log.Error("store: another process took shards of this one: it refuses every request (503) from now on; "+
		"restart it only if the other process is gone (docs/operations.md, Fencing)", "detail", detail, "database", s.where)
	s.w.Refuse(f)
	s.mu.Lock()
	fns := s.onFenced
	s.onFenced = nil
	s.mu.Unlock()
	for _, fn := range fns {
		go fn(f)
	}
	return f
}

// Apply commits one batch in one transaction (persist.Sink). A lost
// connection is retried with back-off while every ticket is refused; a
// fenced shard or an error PostgreSQL will not get over is returned
// (sticky). In cluster mode the store's own writer has no shard to fence
// by, so it refuses: records go through [Store.ShardWriter].
func (s *Store) Apply(ops []persist.Op, _ bool) (func() error, error) {
	if f := s.fenced.Load(); f != nil {
		return nil, f
	}
	if s.opts.Cluster {
		return nil, errors.New("pgstore: cluster mode: records are written through a shard's writer (ShardWriter), not the store's")
	}
	return nil, s.applyLoop(&s.main, ops)
}

// committer is the state of one group-commit writer's commit loop: the
// store's own (fenced by every shard's epoch) or a shard writer's (fenced
// by its claim only), so that both share [Store.applyLoop].
type committer struct {
	name string          // for messages: "store" or "shard 3"
	w    *persist.Writer // whose tickets are refused during an outage
	seq  int64           // batch sequence; the writer's goroutine only
	// fenceOf gives the shards and epochs a batch's transaction checks.
	fenceOf func(b *batch) ([]int32, []int64)
	// onFenced is the sticky error of a failed fence check, after doing
	// what the failure means for its owner.
	onFenced func(b *batch) error
	outage   atomic.Pointer[outageError] // set while a commit waits for the database
}

// fenceOfStore fences a batch of the store's writer by the shards its
// records route to, at the epochs this process took.
func (s *Store) fenceOfStore(b *batch) ([]int32, []int64) {
	ep := make([]int64, len(b.shards))
	for i, sh := range b.shards {
		ep[i] = s.epochs[sh]
	}
	return b.shards, ep
}

// applyLoop commits ops as one transaction for c: a lost connection is
// retried with back-off while c's tickets are refused, a fence check that
// fails is c.onFenced, and an error PostgreSQL will not get over is
// returned.
func (s *Store) applyLoop(c *committer, ops []persist.Op) error {
	c.seq++
	b := newBatch(ops, s.shards, false)
	delay := 50 * time.Millisecond
	for {
		shards, epochs := c.fenceOf(b)
		err := s.commit(b, shards, epochs, c.seq)
		if err == nil {
			if o := c.outage.Swap(nil); o != nil {
				c.w.Refuse(nil)
				if c == &s.main {
					s.probeDown.Store(nil)
				}
				s.log.Warn("store: PostgreSQL is back; writes are accepted again", "writer", c.name, "down_for", time.Since(o.since).Round(time.Millisecond).String())
			}
			return nil
		}
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && pe.Code == "AZ001":
			return c.onFenced(b)
		case errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") && !b.plain:
			// A field that does not fit its readable column: the
			// record itself (key, value) is stored all the same.
			s.log.Warn("store: a record's readable columns could not be stored; storing it without them", "err", pe.Message)
			b = newBatch(ops, s.shards, true)
			continue
		case !retryable(err):
			return fmt.Errorf("pgstore: commit %d records: %w", b.records, err)
		}
		if c.outage.Load() == nil {
			o := &outageError{since: time.Now(), err: errors.New(shortErr(err))}
			c.outage.Store(o)
			c.w.Refuse(o)
			s.log.Error("store: cannot commit to PostgreSQL; refusing writes (503) and retrying", "writer", c.name, "database", s.where, "err", shortErr(err))
		}
		select {
		case <-s.stop:
			return fmt.Errorf("pgstore: closed while PostgreSQL was unreachable: %d records were not stored (none was acknowledged): %w", b.records, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, s.opts.RetryMax)
	}
}

// Commit writes ops in one transaction, bypassing the writer's queue:
// all of them or none are in the store when it returns (the import of
// docs/operations.md, "Moving from the Python server"). Nothing else may
// be writing meanwhile.
func (s *Store) Commit(ops []persist.Op) error {
	_, err := s.Apply(ops, true)
	return err
}

func (s *Store) commit(b *batch, shards []int32, epochs []int64, seq int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	q := &pgx.Batch{}
	b.queue(q, shards, epochs, seq)
	// No BEGIN: the statements of one batch, sent together and followed
	// by one Sync, run as one implicit transaction.
	err = conn.SendBatch(ctx, q).Close()
	if err != nil && !conn.Conn().IsClosed() && ctx.Err() != nil {
		// A commit given up on: drop the connection, so its
		// transaction ends with it.
		conn.Hijack().Close(context.Background())
	}
	return err
}

// retryable reports whether err is a fault that passes (a lost or refused
// connection, a restart, resources), not one of the statements.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "40", "53", "57", "58", "55":
			return true
		}
		// A server that became a read-only standby (a failover in
		// progress) may be the primary again, or the name may move.
		return pe.Code == "25006"
	}
	return true // network errors, timeouts, a closed pool connection
}

func shortErr(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// probe checks, every ProbeEvery, that the database answers and that this
// process still owns its shards, so that an idle process learns of an
// outage (writes are refused before they change memory) or of another
// owner (it stops answering) without waiting for a write.
func (s *Store) probe() {
	defer close(s.probed)
	t := time.NewTicker(s.opts.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.fenced.Load() != nil {
			return
		}
		if err := s.check(); err != nil {
			if s.probeDown.Load() == nil {
				s.probeDown.Store(&outageError{since: time.Now(), err: errors.New(shortErr(err))})
				s.log.Error("store: PostgreSQL does not answer; refusing writes (503) until it does", "database", s.where, "err", shortErr(err))
			}
			continue
		}
		if o := s.probeDown.Swap(nil); o != nil && s.main.outage.Load() == nil {
			s.log.Warn("store: PostgreSQL answers again", "down_for", time.Since(o.since).Round(time.Millisecond).String())
		}
		s.relock()
	}
}

// check reads the shards' epochs; a changed one fences the store. In
// cluster mode it only asks the database to answer: each shard's epoch is
// its holder's business (its writer is fenced, its lease not renewed).
func (s *Store) check() error {
	ctx, cancel := context.WithTimeout(context.Background(), max(s.opts.ProbeEvery, 2*time.Second))
	defer cancel()
	if s.opts.Cluster {
		_, err := s.pool.Exec(ctx, `SELECT 1`)
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT shard, epoch FROM authnzerver.shard_owner WHERE shard < $1`, len(s.epochs))
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var sh int32
		var ep int64
		if err := rows.Scan(&sh, &ep); err != nil {
			return err
		}
		seen++
		if int(sh) < len(s.epochs) && ep != s.epochs[sh] {
			s.fence(fmt.Sprintf("shard %d now has epoch %d (this process took %d)", sh, ep, s.epochs[sh]))
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if seen != len(s.epochs) {
		s.fence(fmt.Sprintf("%d of this process's %d shard rows are gone", len(s.epochs)-seen, len(s.epochs)))
	}
	return nil
}

// relock takes the advisory lock again on a new connection after the old
// one was lost (a PostgreSQL restart ends it).
func (s *Store) relock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockConn != nil && !s.lockConn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return
	}
	conn := c.Hijack()
	if err := lock(ctx, conn, s.opts.Exclusive); err != nil {
		conn.Close(context.Background())
		return
	}
	if !s.opts.Exclusive {
		// Only marked again, not checked: this process runs already.
		if err := lockMode(ctx, conn, s.opts.Cluster, false); err != nil {
			conn.Close(context.Background())
			return
		}
	}
	if s.lockConn != nil {
		s.lockConn.Close(context.Background())
	}
	s.lockConn = conn
}

// Close commits what is queued (unless PostgreSQL is unreachable: then
// what waits is dropped, none of it acknowledged) and closes the pool.
// Close the shard writers first: a shard writer still committing when
// the pool closes drops what it holds (its tickets fail).
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.probed
	err := s.w.Close()
	s.pool.Close()
	s.mu.Lock()
	if s.lockConn != nil {
		unlock(s.lockConn, s.opts.Exclusive)
		s.lockConn = nil
	}
	s.mu.Unlock()
	if f := s.fenced.Load(); f != nil && errors.Is(err, ErrFenced) {
		return nil // said when it happened
	}
	return err
}

// ErrClusterVersion is returned by Open in cluster mode when the nodes
// running on the database speak another wire version than this one.
var ErrClusterVersion = errors.New("pgstore: the running nodes are of another version")

// checkClusterVersion records the cluster's wire version, or refuses a
// node of another version while any shard is held under a live lease (a
// node of the other version runs). With no node running, the cluster
// takes the new version: an upgrade stops every node, then starts them.
func checkClusterVersion(ctx context.Context, conn *pgx.Conn, version int) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: cluster version: %w", err)
	}
	defer tx.Rollback(ctx)
	var stored *int32
	if err := tx.QueryRow(ctx, `SELECT cluster_wire_version FROM authnzerver.deployment WHERE id = 1 FOR UPDATE`).Scan(&stored); err != nil {
		return fmt.Errorf("pgstore: cluster version: %w", err)
	}
	if stored != nil && int(*stored) != version {
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM authnzerver.shard_owner WHERE lease_until > clock_timestamp()`).Scan(&live); err != nil {
			return fmt.Errorf("pgstore: cluster version: %w", err)
		}
		if live > 0 {
			return fmt.Errorf("%w: they speak cluster wire version %d, this node %d; nodes of both cannot serve together: stop every node, then start them all on one version", ErrClusterVersion, *stored, version)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE authnzerver.deployment SET cluster_wire_version = $1 WHERE id = 1`, version); err != nil {
		return fmt.Errorf("pgstore: cluster version: %w", err)
	}
	return tx.Commit(ctx)
}
