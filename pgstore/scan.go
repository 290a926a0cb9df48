package pgstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authnzerver/authnzerver/shard"
)

// Scan calls fn for every record whose key starts with prefix (every record
// when prefix is empty), table by table in the order of their key prefixes
// (not in key order within a table: the loader needs none). key and value
// are valid only during the call: they are the rows as the driver read
// them, not copied (the loader copies what it keeps).
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	ctx := context.Background()
	for _, t := range tables {
		if !tableMayHold(t.kind, prefix) {
			continue
		}
		if err := s.scanTable(ctx, t.name, "", nil, prefix, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanTable calls fn for the rows of table name that match where (SQL
// with args, or "" for every row) and whose key starts with prefix.
func (s *Store) scanTable(ctx context.Context, name, where string, args []any, prefix []byte, fn func(key, value []byte) error) error {
	q := `SELECT key, value FROM authnzerver.` + name
	if where != "" {
		q += ` WHERE ` + where
	}
	rows, err := s.pool.Query(ctx, q, append([]any{pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.BinaryFormatCode}}, args...)...)
	if err != nil {
		return fmt.Errorf("pgstore: scan %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 2 || raw[0] == nil || raw[1] == nil {
			return fmt.Errorf("pgstore: scan %s: a row without key or value", name)
		}
		if len(prefix) > 0 && !bytes.HasPrefix(raw[0], prefix) {
			continue
		}
		if err := fn(raw[0], raw[1]); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgstore: scan %s: %w", name, err)
	}
	return nil
}

// tableMayHold reports whether a table of kind may hold keys starting with
// prefix.
func tableMayHold(kind shard.RecordKind, prefix []byte) bool {
	if len(prefix) == 0 {
		return true
	}
	ps := shard.KeyPrefixes(kind)
	if ps == nil { // metadata holds whatever the others do not
		return true
	}
	for _, p := range ps {
		if bytes.HasPrefix(prefix, []byte(p)) || bytes.HasPrefix([]byte(p), prefix) {
			return true
		}
	}
	return false
}
