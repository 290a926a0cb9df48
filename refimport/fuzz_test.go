package refimport

import (
	"database/sql"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/persist"
	"github.com/authnzerver/authnzerver/shard"
)

// memTarget is an empty store that keeps what is committed.
type memTarget struct{ ops []persist.Op }

func (m *memTarget) Scan([]byte, func(key, value []byte) error) error { return nil }
func (m *memTarget) Commit(ops []persist.Op) error                    { m.ops = append(m.ops, ops...); return nil }

// FuzzImportRows: whatever a row of the reference's database holds, the
// import does not panic, and every record it writes is one the server's
// loader accepts (a record it refused would stop the server's start).
func FuzzImportRows(f *testing.F) {
	f.Add(int64(4), "sid", "Name", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"a@example.org", "authenticated", "2024-01-02 03:04:05.000000", `{"a": 1}`, "tok", "2999-01-01 00:00:00", `{"x": null}`)
	f.Add(int64(1), "", "", "", "admin@localhost", "superuser", "", "null", "", "", "")
	f.Fuzz(func(t *testing.T, id int64, sid, name, phc, email, role, when, extra, token, expires, sextra string) {
		ns := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != "<null>"} }
		ref := &Reference{
			Users: []refUser{{ID: id, SystemID: ns(sid), FullName: ns(name), Password: ns(phc), Email: ns(email),
				EmailVerified: sql.NullInt64{Int64: 1, Valid: true}, IsActive: sql.NullInt64{Int64: 1, Valid: true},
				LastOK: ns(when), ExtraInfo: ns(extra), CreatedOn: ns(when), LastUpdated: ns(when), Role: ns(role)}},
			Sessions: []refSession{{Token: ns(token), IP: ns(name), UserAgent: ns(name), UserID: sql.NullInt64{Int64: id, Valid: true},
				Created: ns(when), Expires: ns(expires), Extra: ns(sextra)}},
			Keys: []refKey{{Token: ns(token), Issued: ns(when), Expires: ns(expires), NotBefore: ns(when),
				UserID: sql.NullInt64{Int64: id, Valid: true}, Role: ns(role), Session: ns(token)}},
			NoSessionKeys: []refKey{{Token: ns(token + "n"), Issued: ns(when), Expires: ns(expires), NotBefore: ns(when),
				Refresh: ns(phc), RefreshIssued: ns(when), RefreshExpires: ns(expires), RefreshNBF: ns(when),
				UserID: sql.NullInt64{Int64: id, Valid: true}, Role: ns(role)}},
		}
		st := &memTarget{}
		known := func(r string) bool { return r == "authenticated" || r == "superuser" || r == "locked" }
		if _, err := Import(ref, st, Options{KnownRole: known, Now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		sh := shard.New(shard.Options{})
		for _, op := range st.ops {
			if _, owned, err := shard.RouteOfKey(op.Key); err != nil {
				t.Fatalf("record of an unknown kind: %v", err)
			} else if !owned {
				continue
			}
			if err := sh.Load(op.Key, op.Value); err != nil {
				t.Fatalf("the loader refuses a record the import wrote: %v", err)
			}
		}
	})
}
