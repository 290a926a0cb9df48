package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// ShardClaim is a shard held by this node in cluster mode: what its
// writer is fenced by and its lease renewed by.
type ShardClaim struct {
	// Shard is the shard's number.
	Shard int
	// Epoch is the shard's epoch this node raised it to: a write or a
	// renewal under an older epoch fails, so at most one node writes.
	Epoch int64
	// Wait is how much of the previous owner's lease was left when the
	// shard was taken (by PostgreSQL's clock, so nodes' clocks need not
	// agree): the previous owner may still answer from memory until then,
	// so the caller waits this long before serving the shard.
	Wait time.Duration
}

// TakeShard claims shard for this node under a lease of the given length:
// in one transaction it locks the shard's row (so that a batch of the old
// owner in flight commits first, and any later one is fenced), raises the
// epoch and starts the lease at the end of the old one. The row is
// created when missing. The caller loads the shard ([Store.LoadShard]),
// waits out claim.Wait, serves, and renews ([Store.RenewLeases]) well
// within lease.
func (s *Store) TakeShard(ctx context.Context, sh int, lease time.Duration) (ShardClaim, error) {
	if sh < 0 || sh >= s.shards {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: the deployment has shards 0 to %d", sh, s.shards-1)
	}
	if lease <= 0 {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: a lease of %v", sh, lease)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: %w", sh, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO authnzerver.shard_owner (shard, epoch, owner, taken_at, batch_seq, lease_until)
		VALUES ($1, 0, $2, now(), 0, NULL) ON CONFLICT (shard) DO NOTHING`, sh, s.owner); err != nil {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: %w", sh, err)
	}
	// clock_timestamp, not now(): the lock may have been waited for, and
	// the lease left is measured when the row is ours.
	var waitMicros int64
	if err := tx.QueryRow(ctx, `SELECT (extract(epoch FROM greatest(lease_until - clock_timestamp(), interval '0')) * 1e6)::int8
		FROM authnzerver.shard_owner WHERE shard = $1 FOR UPDATE`, sh).Scan(&waitMicros); err != nil {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: %w", sh, err)
	}
	var epoch int64
	if err := tx.QueryRow(ctx, `UPDATE authnzerver.shard_owner SET epoch = epoch + 1, owner = $2, taken_at = now(), batch_seq = 0,
		lease_until = greatest(lease_until, clock_timestamp()) + $3::int8 * interval '1 microsecond'
		WHERE shard = $1 RETURNING epoch`, sh, s.owner, lease.Microseconds()).Scan(&epoch); err != nil {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: %w", sh, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return ShardClaim{}, fmt.Errorf("pgstore: take shard %d: %w", sh, err)
	}
	return ShardClaim{Shard: sh, Epoch: epoch, Wait: time.Duration(waitMicros) * time.Microsecond}, nil
}

// RenewLeases extends the lease of every claim whose epoch is still the
// shard's to now + lease, in one statement (one round trip for all of a
// node's shards). renewed[i] is false when claims[i]'s shard was taken by
// another node: the caller stops serving it at once.
func (s *Store) RenewLeases(ctx context.Context, claims []ShardClaim, lease time.Duration) (renewed []bool, err error) {
	if lease <= 0 {
		return nil, fmt.Errorf("pgstore: renew leases: a lease of %v", lease)
	}
	renewed = make([]bool, len(claims))
	if len(claims) == 0 {
		return renewed, nil
	}
	shards := make([]int32, len(claims))
	epochs := make([]int64, len(claims))
	for i, c := range claims {
		shards[i], epochs[i] = int32(c.Shard), c.Epoch
	}
	rows, err := s.pool.Query(ctx, `UPDATE authnzerver.shard_owner o SET lease_until = clock_timestamp() + $3::int8 * interval '1 microsecond'
		FROM unnest($1::int4[], $2::int8[]) AS c(shard, epoch)
		WHERE o.shard = c.shard AND o.epoch = c.epoch
		RETURNING o.shard, o.epoch`, shards, epochs, lease.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("pgstore: renew leases: %w", err)
	}
	type held struct {
		shard int32
		epoch int64
	}
	ok := map[held]bool{}
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.shard, &h.epoch); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgstore: renew leases: %w", err)
		}
		ok[h] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: renew leases: %w", err)
	}
	for i := range claims {
		renewed[i] = ok[held{shards[i], epochs[i]}]
	}
	return renewed, nil
}

// ReleaseShard ends c's lease now, if c still holds the shard, so that the
// next owner need not wait it out (a graceful hand-over: close the shard's
// writer first, so that what it holds is committed).
func (s *Store) ReleaseShard(ctx context.Context, c ShardClaim) error {
	if _, err := s.pool.Exec(ctx, `UPDATE authnzerver.shard_owner SET lease_until = least(lease_until, clock_timestamp())
		WHERE shard = $1 AND epoch = $2`, c.Shard, c.Epoch); err != nil {
		return fmt.Errorf("pgstore: release shard %d: %w", c.Shard, err)
	}
	return nil
}

// LoadShard calls fn for every stored record of shard sh (its route modulo
// the deployment's shard count is sh), table by table as [Store.Scan] does
// and with the same contract (key and value valid only during the call).
// The rows are chosen in SQL, so a node reads only its shards' records.
// Records without a route (metadata such as the next user id) are no
// shard's and never given.
func (s *Store) LoadShard(ctx context.Context, sh int, fn func(key, value []byte) error) error {
	if sh < 0 || sh >= s.shards {
		return fmt.Errorf("pgstore: load shard %d: the deployment has shards 0 to %d", sh, s.shards-1)
	}
	where, args := shardFilter(s.shards, sh)
	for _, t := range tables {
		if err := s.scanTable(ctx, t.name, where, args, nil, fn); err != nil {
			return fmt.Errorf("pgstore: load shard %d: %w", sh, err)
		}
	}
	return nil
}

// shardFilter is the SQL condition "route as uint64 % n == sh". route is
// the uint64's bits as int8: a negative one stands for route + 2^64, whose
// remainder is ((route % n) + n + 2^64 % n) % n (PostgreSQL's % keeps the
// dividend's sign; no term overflows for n < 2^62).
func shardFilter(n, sh int) (string, []any) {
	pow := (math.MaxUint64%uint64(n) + 1) % uint64(n) // 2^64 mod n
	return `route IS NOT NULL AND (CASE WHEN route >= 0 THEN route % $1::int8 ELSE ((route % $1::int8) + $1::int8 + $2::int8) % $1::int8 END) = $3::int8`,
		[]any{int64(n), int64(pow), int64(sh)}
}

// ShardWriter returns a group-commit writer for the shard held by c: each
// batch's transaction is fenced by c's shard and epoch only, so it never
// lands after another node took the shard. Once the fence fails, this
// writer alone refuses for good with an error wrapping [ErrFenced] (the
// batch is not stored, its tickets fail); the store and the other shards'
// writers go on. A lost connection is waited out as by the store's
// writer. Its Close commits what is queued; close it before
// [Store.ReleaseShard] and [Store.Close].
func (s *Store) ShardWriter(c ShardClaim, o persist.WriterOptions) *persist.Writer {
	k := &shardSink{s: s}
	k.c.name = fmt.Sprintf("shard %d", c.Shard)
	fence := []int32{int32(c.Shard)}
	epoch := []int64{c.Epoch}
	k.c.fenceOf = func(*batch) ([]int32, []int64) { return fence, epoch }
	k.c.onFenced = func(*batch) error {
		s.log.Warn("store: another node took a shard of this one: its writer refuses from now on", "shard", c.Shard, "epoch", c.Epoch)
		return &fencedError{detail: fmt.Sprintf("shard %d was taken by another node (this one held epoch %d)", c.Shard, c.Epoch)}
	}
	k.c.w = persist.NewWriter(k, o)
	return k.c.w
}

// shardSink commits a shard writer's batches through the store's commit
// loop with the shard's own fence and outage state.
type shardSink struct {
	s *Store
	c committer
}

// Apply commits one batch of the shard (persist.Sink).
func (k *shardSink) Apply(ops []persist.Op, _ bool) (func() error, error) {
	return nil, k.s.applyLoop(&k.c, ops)
}

// ReserveUserIDs hands out n consecutive new user ids, first to first+n-1,
// unique among every process on the database: the shared counter is
// locked, and raised above the largest stored user and the next-user-id
// record (which single-node servers advance without the counter).
func (s *Store) ReserveUserIDs(ctx context.Context, n int) (first int64, err error) {
	if n <= 0 {
		return 0, fmt.Errorf("pgstore: reserve %d user ids", n)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgstore: reserve user ids: %w", err)
	}
	defer tx.Rollback(ctx)
	var next int64
	if err := tx.QueryRow(ctx, `SELECT next FROM authnzerver.user_ids WHERE id = 1 FOR UPDATE`).Scan(&next); err != nil {
		return 0, fmt.Errorf("pgstore: reserve user ids: %w", err)
	}
	var maxKey, meta []byte
	if err := tx.QueryRow(ctx, `SELECT (SELECT key FROM authnzerver.users WHERE length(key) = 10 ORDER BY key DESC LIMIT 1),
		(SELECT value FROM authnzerver.metadata WHERE key = $1)`, shard.MetaNextUserID).Scan(&maxKey, &meta); err != nil {
		return 0, fmt.Errorf("pgstore: reserve user ids: %w", err)
	}
	if id, ok := userIDOfKey(maxKey); ok {
		if id < 0 || id == math.MaxInt64 {
			return 0, errors.New("pgstore: reserve user ids: the largest stored user id is out of range")
		}
		next = max(next, id+1)
	}
	if meta != nil {
		m, err := shard.DecodeNextUserID(meta)
		if err != nil {
			return 0, fmt.Errorf("pgstore: reserve user ids: %w", err)
		}
		if int64(m) < 0 {
			return 0, errors.New("pgstore: reserve user ids: the next-user-id record is out of range")
		}
		next = max(next, int64(m))
	}
	if next > math.MaxInt64-int64(n) {
		return 0, errors.New("pgstore: reserve user ids: out of user ids")
	}
	if _, err := tx.Exec(ctx, `UPDATE authnzerver.user_ids SET next = $1 WHERE id = 1`, next+int64(n)); err != nil {
		return 0, fmt.Errorf("pgstore: reserve user ids: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pgstore: reserve user ids: %w", err)
	}
	return next, nil
}
