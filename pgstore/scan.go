package pgstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authnzerver/authnzerver/shard"
)

// Scan calls fn for every record whose key starts with prefix (every record
// when prefix is empty), table by table in the order of their key prefixes
// (not in key order within a table: the loader needs none). key and value
// are valid only during the call. The tables are read on their own
// connections at once; fn is called from this goroutine only.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type chunk struct {
		recs [][2][]byte
		err  error
	}
	var feeds []chan chunk
	for _, t := range tables {
		if !tableMayHold(t.kind, prefix) {
			continue
		}
		ch := make(chan chunk, 8)
		feeds = append(feeds, ch)
		go func(name string) {
			defer close(ch)
			err := s.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
				rows, err := c.Query(ctx, `SELECT key, value FROM authnzerver.`+name, pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.BinaryFormatCode})
				if err != nil {
					return err
				}
				defer rows.Close()
				const n = 1024
				cur := chunk{recs: make([][2][]byte, 0, n)}
				for rows.Next() {
					raw := rows.RawValues()
					if len(raw) != 2 || raw[0] == nil || raw[1] == nil {
						return fmt.Errorf("pgstore: scan %s: a row without key or value", name)
					}
					buf := make([]byte, len(raw[0])+len(raw[1]))
					copy(buf, raw[0])
					copy(buf[len(raw[0]):], raw[1])
					cur.recs = append(cur.recs, [2][]byte{buf[:len(raw[0]):len(raw[0])], buf[len(raw[0]):]})
					if len(cur.recs) == n {
						select {
						case ch <- cur:
						case <-ctx.Done():
							return ctx.Err()
						}
						cur = chunk{recs: make([][2][]byte, 0, n)}
					}
				}
				if err := rows.Err(); err != nil {
					return err
				}
				if len(cur.recs) > 0 {
					select {
					case ch <- cur:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			})
			if err != nil {
				select {
				case ch <- chunk{err: fmt.Errorf("pgstore: scan %s: %w", name, err)}:
				case <-ctx.Done():
				}
			}
		}(t.name)
	}
	for _, ch := range feeds {
		for c := range ch {
			if c.err != nil {
				cancel()
				return c.err
			}
			for _, r := range c.recs {
				if len(prefix) > 0 && !bytes.HasPrefix(r[0], prefix) {
					continue
				}
				if err := fn(r[0], r[1]); err != nil {
					cancel()
					for range ch {
					}
					return err
				}
			}
		}
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
