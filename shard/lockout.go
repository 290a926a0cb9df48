package shard

import (
	"encoding/json"
	"fmt"
	"time"
)

// Failed password checks (spec §4.5), without the reference's flaws: the
// table is bounded, counts decay, and counts are persisted so a restart
// neither forgets an attacker's tries nor a scheduled unlock (that one lives
// in the user record, see User.AutoUnlockAt).
//
// Counts are kept per key (the caller's choice: a normalised email with the
// client's address) on the key's shard. An attempt is
// reserved before the password is verified (BeginAttempt) and settled after
// (EndAttempt), so parallel wrong passwords cannot run more verifications
// than the try limit allows.

const prefixFailures = "f/"

// MaxFailureEntries bounds the failure table of one shard. Past it the
// oldest entries found are dropped: an attacker spraying distinct emails
// cannot grow memory, at worst resetting counts of stale entries.
const MaxFailureEntries = 100_000

type failState struct {
	Count   int       `json:"n"`
	Last    time.Time `json:"last"`
	pending int       // attempts begun and not yet ended; memory only
}

type failureTable struct {
	byEmail map[string]*failState
}

func newFailureTable() failureTable { return failureTable{byEmail: make(map[string]*failState)} }

func init() {
	extraKinds = append(extraKinds, recordKind{
		prefix: prefixFailures,
		route: func(key []byte) (Route, error) {
			return EmailRoute(string(key[len(prefixFailures):])), nil
		},
		load: func(s *Shard, key, value []byte) error {
			var st failState
			if err := json.Unmarshal(value, &st); err != nil || st.Count < 0 {
				return fmt.Errorf("%w: failure count: %v", ErrBadRecord, err)
			}
			s.failures.byEmail[string(key[len(prefixFailures):])] = &st
			return nil
		},
	})
	sweepers = append(sweepers, (*Shard).SweepUnlocks)
}

// BeginAttempt reserves a password check for email and returns its number:
// the failures so far (forgotten once older than decay) plus the checks in
// flight, plus one. The caller must call EndAttempt exactly once after.
func (s *Shard) BeginAttempt(email string, now time.Time, decay time.Duration) int {
	st := s.failures.byEmail[email]
	if st == nil {
		s.failures.evictIfFull()
		st = &failState{}
		s.failures.byEmail[email] = st
	}
	if st.Count > 0 && now.Sub(st.Last) > decay {
		st.Count = 0
	}
	st.pending++
	return st.Count + st.pending
}

// Outcome is how an attempt ended.
type Outcome int

// Outcomes of an attempt.
const (
	AttemptSucceeded Outcome = iota // forget the failures
	AttemptFailed                   // count one more
	AttemptCancelled                // no verification ran (e.g. busy): no change
)

// EndAttempt settles an attempt begun by BeginAttempt.
func (s *Shard) EndAttempt(email string, o Outcome, now time.Time) []Mutation {
	st := s.failures.byEmail[email]
	if st == nil {
		return nil
	}
	if st.pending > 0 {
		st.pending--
	}
	switch o {
	case AttemptSucceeded:
		return s.ResetFailures(email)
	case AttemptCancelled:
		if st.Count == 0 && st.pending == 0 {
			delete(s.failures.byEmail, email)
		}
		return nil
	}
	st.Count++
	st.Last = micro(now)
	v, _ := json.Marshal(st)
	return []Mutation{{Key: []byte(prefixFailures + email), Value: v}}
}

// ResetFailures forgets the failures of email (after a success or an
// unlock).
func (s *Shard) ResetFailures(email string) []Mutation {
	st, ok := s.failures.byEmail[email]
	if !ok {
		return nil
	}
	if st.pending > 0 {
		st.Count = 0 // keep the entry for the attempts still in flight
	} else {
		delete(s.failures.byEmail, email)
	}
	return []Mutation{{Key: []byte(prefixFailures + email)}}
}

// Failures returns the failure count of email (for tests and admin tools).
func (s *Shard) Failures(email string) int {
	if st := s.failures.byEmail[email]; st != nil {
		return st.Count
	}
	return 0
}

func (t *failureTable) evictIfFull() {
	if len(t.byEmail) < MaxFailureEntries {
		return
	}
	// Map iteration order is random: drop about 1% of entries that have no
	// attempt in flight. Their disk records are left to decay on their own.
	n := MaxFailureEntries / 100
	for e, st := range t.byEmail {
		if st.pending == 0 {
			delete(t.byEmail, e)
			if n--; n <= 0 {
				return
			}
		}
	}
}

func (s *Shard) indexUnlock(u *User) {
	if u.AutoUnlockAt.IsZero() {
		delete(s.unlockAt, u.ID)
	} else {
		s.unlockAt[u.ID] = u.AutoUnlockAt
	}
}

// DueUnlocks returns the ids of users whose automatic lock has ended.
func (s *Shard) DueUnlocks(now time.Time) []UserID {
	var ids []UserID
	for id, at := range s.unlockAt {
		if !now.Before(at) {
			ids = append(ids, id)
		}
	}
	return ids
}

// SweepUnlocks ends the automatic locks that are due. A lock that an
// operator changed meanwhile has no AutoUnlockAt and is left alone, so the
// unlock never changes a user that the automatic lock did not change.
func (s *Shard) SweepUnlocks(now time.Time, limit int) []Mutation {
	var muts []Mutation
	for _, id := range s.DueUnlocks(now) {
		_, m, err := s.UpdateUser(id, now, func(u *User) error {
			if u.AutoUnlockAt.IsZero() || now.Before(u.AutoUnlockAt) {
				return ErrNoChange
			}
			return UnlockUser(u)
		})
		if err != nil {
			delete(s.unlockAt, id)
			continue
		}
		muts = append(muts, m...)
		if limit > 0 && len(muts) >= limit {
			break
		}
	}
	return muts
}

// ResetFailuresPrefix forgets the failures of every key that starts with
// prefix (all client addresses of one email, on an unlock).
func (s *Shard) ResetFailuresPrefix(prefix string) []Mutation {
	var muts []Mutation
	for k := range s.failures.byEmail {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			muts = append(muts, s.ResetFailures(k)...)
		}
	}
	return muts
}
