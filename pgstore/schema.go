package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// SchemaVersion is the version of the schema this build creates and
// migrates to. A database of a newer version is refused (docs/operations.md,
// "The PostgreSQL schema").
const SchemaVersion = 2

// schemaName is the PostgreSQL schema every table lives in, so that the
// store never meets another application's tables of the same name.
const schemaName = "authnzerver"

// appName marks a database made by this server in the deployment row.
const appName = "authnzerver-go"

// lockKey is the advisory lock that serialises schema creation and marks a
// running server (shared) or admin command (exclusive): a constant of ours.
const lockKey int64 = 0x617574686e7a7276 // "authnzrv"

// ErrNewerSchema reports a database whose schema is newer than this build.
var ErrNewerSchema = errors.New("pgstore: the database schema is newer than this version of authnzerver")

// ErrNoSchema reports a database without the schema when the caller asked
// not to create it (admin commands).
var ErrNoSchema = errors.New("pgstore: no authnzerver schema in the database")

// ErrForeignSchema reports a database whose authnzerver schema this store
// did not make.
var ErrForeignSchema = errors.New("pgstore: the database is used by an incompatible deployment")

// schemaV1 creates version 1. Every table keeps the record exactly as the
// shards wrote it (key, value: what the loader reads back) and, beside it,
// the fields an operator queries as columns; those are derived at write
// time and may be NULL (a record whose field cannot be stored as that type
// keeps only key and value). Tokens and API keys appear only as digests.
var schemaV1 = []string{
	`CREATE TABLE authnzerver.deployment (
		id int PRIMARY KEY CHECK (id = 1),
		app text NOT NULL,
		deployment_id text NOT NULL,
		schema_version int NOT NULL,
		shard_count int NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now())`,
	`CREATE TABLE authnzerver.shard_owner (
		shard int PRIMARY KEY,
		epoch bigint NOT NULL,
		owner text NOT NULL,
		taken_at timestamptz NOT NULL,
		batch_seq bigint NOT NULL DEFAULT 0)`,
	`CREATE TABLE authnzerver.users (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		user_id bigint,
		email text,
		full_name text,
		role text,
		is_active boolean,
		email_verified boolean,
		system_id text,
		created_on timestamptz,
		last_updated timestamptz,
		last_login_success timestamptz,
		last_login_try timestamptz,
		failed_login_tries int,
		auto_unlock_at timestamptz,
		extra_info jsonb)`,
	`CREATE INDEX users_email ON authnzerver.users (email)`,
	`CREATE INDEX users_user_id ON authnzerver.users (user_id)`,
	`CREATE TABLE authnzerver.emails (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		email text,
		system_id_claim boolean,
		user_id bigint)`,
	`CREATE TABLE authnzerver.sessions (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		user_id bigint,
		created timestamptz,
		expires timestamptz,
		ip_address text,
		user_agent text,
		extra_info jsonb)`,
	`CREATE INDEX sessions_user_id ON authnzerver.sessions (user_id)`,
	`CREATE TABLE authnzerver.api_keys (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		kind text,
		user_id bigint,
		role text,
		issued timestamptz,
		expires timestamptz,
		not_before timestamptz,
		session_key bytea,
		refresh_expires timestamptz)`,
	`CREATE INDEX api_keys_user_id ON authnzerver.api_keys (user_id)`,
	`CREATE TABLE authnzerver.failures (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		email text,
		failures int,
		last_failure timestamptz,
		refused_until timestamptz,
		lockouts int)`,
	`CREATE TABLE authnzerver.email_codes (
		user_id bigint NOT NULL,
		purpose text,
		digest text,
		expires timestamptz)`,
	`CREATE INDEX email_codes_user_id ON authnzerver.email_codes (user_id)`,
	`CREATE TABLE authnzerver.metadata (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		name text)`,
	// fence is called first in every batch's transaction: it checks that
	// this process still owns each shard the batch writes (its epoch is
	// the row's) and that the batch is not older than one already
	// committed for the shard (a commit given up on and retried must not
	// land after a later one), and locks the rows, so that a process
	// taking the shard waits for the batch and the batch fails after it.
	`CREATE FUNCTION authnzerver.fence(p_shards int[], p_epochs bigint[], p_seq bigint) RETURNS void
	LANGUAGE plpgsql AS $$
	DECLARE n int;
	BEGIN
		UPDATE authnzerver.shard_owner o SET batch_seq = p_seq
		FROM unnest(p_shards, p_epochs) AS m(shard, epoch)
		WHERE o.shard = m.shard AND o.epoch = m.epoch AND o.batch_seq <= p_seq;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n <> cardinality(p_shards) THEN
			RAISE EXCEPTION 'authnzerver: a shard this process wrote to was taken by another process'
				USING ERRCODE = 'AZ001';
		END IF;
	END $$`,
}

// schemaV2 adds what cluster mode needs (docs/operations.md, "Cluster
// mode"): each record's routing hash beside it, so that a node loads one
// shard's records by a filter in SQL rather than reading every row; a lease
// on each shard, so that a node taking a shard knows how long the previous
// owner may still serve it; and the user id counter shared by every node.
var schemaV2 = []string{
	`ALTER TABLE authnzerver.users ADD COLUMN route bigint`,
	`ALTER TABLE authnzerver.emails ADD COLUMN route bigint`,
	`ALTER TABLE authnzerver.sessions ADD COLUMN route bigint`,
	`ALTER TABLE authnzerver.api_keys ADD COLUMN route bigint`,
	`ALTER TABLE authnzerver.failures ADD COLUMN route bigint`,
	`ALTER TABLE authnzerver.metadata ADD COLUMN route bigint`,
	// NULL: held without a lease (a single-node server, which holds its
	// shards until another process takes them).
	`ALTER TABLE authnzerver.shard_owner ADD COLUMN lease_until timestamptz`,
	// The wire version of the cluster's messages, so that a node of
	// another version is refused at its start rather than message by
	// message (NULL: no cluster ran yet).
	`ALTER TABLE authnzerver.deployment ADD COLUMN cluster_wire_version int`,
	// next is a floor, not the truth: ReserveUserIDs also looks at the
	// stored users and the next-user-id record, which a single-node server
	// advances without touching this row.
	`CREATE TABLE authnzerver.user_ids (
		id int PRIMARY KEY CHECK (id = 1),
		next bigint NOT NULL)`,
	`INSERT INTO authnzerver.user_ids (id, next) VALUES (1, 1)`,
}

// migration is one step of the schema: SQL statements, then (when set) a
// Go step for what SQL cannot compute, such as a record's route.
type migration struct {
	sql []string
	fn  func(ctx context.Context, tx pgx.Tx) error
}

// migrations[v] migrates version v to v+1; migrations[0] creates version 1
// in an empty schema. Each runs in the transaction that records its
// version. A later version appends here and never drops data silently.
var migrations = []migration{
	{sql: schemaV1},
	{sql: schemaV2, fn: backfillRoutes},
}

// backfillRoutes computes the route column of the rows written before
// version 2, from their keys, a page at a time (keyset by key, so memory
// stays bounded on a large database).
func backfillRoutes(ctx context.Context, tx pgx.Tx) error {
	const page = 5000
	for _, t := range tables {
		var after []byte
		for {
			rows, err := tx.Query(ctx, `SELECT key FROM authnzerver.`+t.name+` WHERE $1::bytea IS NULL OR key > $1 ORDER BY key LIMIT $2`, after, page)
			if err != nil {
				return fmt.Errorf("backfill routes of %s: %w", t.name, err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
			if err != nil {
				return fmt.Errorf("backfill routes of %s: %w", t.name, err)
			}
			if len(keys) == 0 {
				break
			}
			routes := make([]pgtype.Int8, len(keys))
			for i, k := range keys {
				routes[i] = routeOf(k)
			}
			if _, err := tx.Exec(ctx, `UPDATE authnzerver.`+t.name+` AS t SET route = u.r FROM unnest($1::bytea[], $2::int8[]) AS u(k, r) WHERE t.key = u.k`, keys, routes); err != nil {
				return fmt.Errorf("backfill routes of %s: %w", t.name, err)
			}
			if len(keys) < page {
				break
			}
			after = keys[len(keys)-1]
		}
	}
	return nil
}

// ensureSchema creates or migrates the schema and returns the deployment's
// stored shard count (0 when new). It changes nothing before every check
// has passed: a newer or foreign schema is refused with nothing written.
//
// In cluster mode (cluster), an existing deployment of another shard count
// is refused before anything is written: every node must route records
// alike, or one would load records another writes under a different shard.
func ensureSchema(ctx context.Context, conn *pgx.Conn, shards int, deploymentID string, noCreate, cluster bool) (prevShards int, created bool, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("pgstore: schema: %w", err)
	}
	defer tx.Rollback(ctx)
	// Two servers starting on an empty database create it once.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey+1); err != nil {
		return 0, false, fmt.Errorf("pgstore: schema lock: %w", err)
	}
	var haveSchema bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schemaName).Scan(&haveSchema); err != nil {
		return 0, false, fmt.Errorf("pgstore: schema: %w", err)
	}
	version := 0
	if haveSchema {
		var haveDeployment bool
		var tables int
		if err := tx.QueryRow(ctx, `SELECT to_regclass('authnzerver.deployment') IS NOT NULL,
			(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)`, schemaName).Scan(&haveDeployment, &tables); err != nil {
			return 0, false, fmt.Errorf("pgstore: schema: %w", err)
		}
		switch {
		case haveDeployment:
			var app string
			err := tx.QueryRow(ctx, `SELECT app, schema_version, shard_count FROM authnzerver.deployment WHERE id = 1`).Scan(&app, &version, &prevShards)
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, false, fmt.Errorf("%w: schema %q has an empty deployment table", ErrForeignSchema, schemaName)
			} else if err != nil {
				return 0, false, fmt.Errorf("pgstore: read the deployment row: %w", err)
			}
			if app != appName {
				return 0, false, fmt.Errorf("%w: schema %q was made by %q, not this server", ErrForeignSchema, schemaName, app)
			}
			if version > SchemaVersion {
				return 0, false, fmt.Errorf("%w: the database has schema version %d, this build knows up to %d; run the newer authnzerver, or restore a backup made for this version", ErrNewerSchema, version, SchemaVersion)
			}
			if version < 1 {
				return 0, false, fmt.Errorf("%w: schema version %d", ErrForeignSchema, version)
			}
		case tables > 0:
			return 0, false, fmt.Errorf("%w: schema %q holds %d tables or indexes that this server did not create; use another database, or drop that schema", ErrForeignSchema, schemaName, tables)
		}
	}
	if version == 0 && noCreate {
		return 0, false, fmt.Errorf("%w (start the server once to create it, or check the URL)", ErrNoSchema)
	}
	if !haveSchema {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA authnzerver`); err != nil {
			return 0, false, fmt.Errorf("pgstore: create schema %s (the role needs CREATE on the database, or an empty schema %s it owns): %w", schemaName, schemaName, err)
		}
	}
	if cluster && version != 0 && prevShards != shards {
		return 0, false, fmt.Errorf("pgstore: this database's cluster has %d shards; start every node with AUTHNZERVER_SHARDS=%d (this one has %d)", prevShards, prevShards, shards)
	}
	for v := version; v < SchemaVersion; v++ {
		for _, q := range migrations[v].sql {
			if _, err := tx.Exec(ctx, q); err != nil {
				return 0, false, fmt.Errorf("pgstore: migrate the schema to version %d: %w", v+1, err)
			}
		}
		if fn := migrations[v].fn; fn != nil {
			if err := fn(ctx, tx); err != nil {
				return 0, false, fmt.Errorf("pgstore: migrate the schema to version %d: %w", v+1, err)
			}
		}
	}
	if version == 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO authnzerver.deployment (id, app, deployment_id, schema_version, shard_count) VALUES (1, $1, $2, $3, $4)`,
			appName, deploymentID, SchemaVersion, shards); err != nil {
			return 0, false, fmt.Errorf("pgstore: schema: %w", err)
		}
	} else if version < SchemaVersion {
		if _, err := tx.Exec(ctx, `UPDATE authnzerver.deployment SET schema_version = $1 WHERE id = 1`, SchemaVersion); err != nil {
			return 0, false, fmt.Errorf("pgstore: schema: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("pgstore: schema: %w", err)
	}
	return prevShards, version == 0, nil
}
