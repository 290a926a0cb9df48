package shard

import "testing"

// The owner count is an upper bound: it asks for a recount when unknown or
// past the limit, and a recount never lowers it below notes it may have
// missed.
func TestOwnerCounts(t *testing.T) {
	type step struct {
		note  bool // NoteOwned; else SetOwnedCount(n, gen of note number gen)
		n     int
		gen   int // 1-based note number
		want  bool
		wantN int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unknown user recounts once", []step{
			{note: true, want: true, wantN: 1},
			{n: 1, gen: 1, wantN: 1},
			{note: true, want: false, wantN: 2},
			{note: true, want: false, wantN: 3},
			{note: true, want: true, wantN: 4}, // limit 3
		}},
		{"recount trims to the exact count", []step{
			{note: true, want: true, wantN: 1},
			{n: 3, gen: 1, wantN: 3},
			{note: true, want: true, wantN: 4},
			{n: 3, gen: 2, wantN: 3},
			{note: true, want: true, wantN: 4},
		}},
		{"notes during a recount are kept", []step{
			{note: true, want: true, wantN: 1},
			{note: true, want: true, wantN: 2}, // still unknown
			{note: true, want: true, wantN: 3},
			{n: 1, gen: 1, wantN: 3}, // counted after note 1: notes 2 and 3 may be missing
			{n: 3, gen: 3, wantN: 3},
		}},
		{"expired items make room after a recount", []step{
			{note: true, want: true, wantN: 1},
			{n: 0, gen: 1, wantN: 0},
			{note: true, want: false, wantN: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kind := range []OwnedKind{OwnedSessions, OwnedSessionKeys, OwnedNoSessionKeys} {
				s := New(Options{})
				var gens []uint64
				for i, st := range tt.steps {
					if st.note {
						gen, recount := s.NoteOwned(kind, 7, 3)
						gens = append(gens, gen)
						if recount != st.want {
							t.Errorf("kind %d step %d: recount = %v; want %v", kind, i, recount, st.want)
						}
					} else {
						s.SetOwnedCount(kind, 7, st.n, gens[st.gen-1])
					}
					if got := s.owners(kind)[7].n; got != st.wantN {
						t.Errorf("kind %d step %d: count = %d; want %d", kind, i, got, st.wantN)
					}
				}
				for _, other := range []OwnedKind{OwnedSessions, OwnedSessionKeys, OwnedNoSessionKeys} {
					if _, ok := s.owners(other)[7]; ok && other != kind {
						t.Errorf("kind %d: the count of kind %d changed", kind, other)
					}
				}
			}
		})
	}
}

func TestOwnedKeys(t *testing.T) {
	if OwnedKeys(KeySession) != OwnedSessionKeys || OwnedKeys(KeyNoSession) != OwnedNoSessionKeys {
		t.Errorf("OwnedKeys maps kinds wrongly")
	}
}

func TestOwnerCountsForgetDeletedUser(t *testing.T) {
	s := New(Options{})
	if _, _, err := s.CreateUser(User{ID: 7, Role: "authenticated"}, t0); err != nil {
		t.Fatal(err)
	}
	gen, _ := s.NoteOwned(OwnedSessions, 7, 10)
	s.NoteOwned(OwnedSessionKeys, 7, 10)
	s.NoteOwned(OwnedNoSessionKeys, 7, 10)
	if _, _, err := s.DeleteUser(7); err != nil {
		t.Fatal(err)
	}
	s.SetOwnedCount(OwnedSessions, 7, 5, gen) // a recount that ends after the delete
	for _, kind := range []OwnedKind{OwnedSessions, OwnedSessionKeys, OwnedNoSessionKeys} {
		if len(s.owners(kind)) != 0 {
			t.Errorf("count of kind %d of a deleted user kept: %v", kind, s.owners(kind))
		}
	}
}
