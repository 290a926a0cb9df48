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
			for _, kind := range []OwnedKind{OwnedSessions, OwnedAPIKeys} {
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
				if _, ok := s.owners(1 - kind)[7]; ok {
					t.Errorf("kind %d: the other kind's count changed", kind)
				}
			}
		})
	}
}

func TestOwnerCountsForgetDeletedUser(t *testing.T) {
	s := New(Options{})
	if _, _, err := s.CreateUser(User{ID: 7, Role: "authenticated"}, t0); err != nil {
		t.Fatal(err)
	}
	gen, _ := s.NoteOwned(OwnedSessions, 7, 10)
	s.NoteOwned(OwnedAPIKeys, 7, 10)
	if _, _, err := s.DeleteUser(7); err != nil {
		t.Fatal(err)
	}
	s.SetOwnedCount(OwnedSessions, 7, 5, gen) // a recount that ends after the delete
	if len(s.sessions.owners) != 0 || len(s.apikeys.owners) != 0 {
		t.Errorf("counts of a deleted user kept: %v %v", s.sessions.owners, s.apikeys.owners)
	}
}
