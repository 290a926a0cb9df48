package shard

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Failed password checks (docs/security.md, "Brute-force back-off and
// auto-lock"), without the reference's flaws: the table is bounded, counts
// decay, and counts are persisted so a restart neither forgets an attacker's
// tries nor a refusal window.
//
// Counts are kept per account: the key is the normalised email, on the
// email's shard, whatever the client address, so many addresses (a botnet,
// an IPv6 /64) get no more tries than one. An attempt is reserved before
// the password is verified (BeginAttempt) and settled after (EndAttempt):
// while the failures plus the attempts in flight reach the limit, further
// attempts wait for one to settle, so parallel wrong passwords cannot run
// more verifications than the limit allows, and parallel right ones are
// neither refused nor counted. Only counted failures open a refusal window.

// prefixFailures keys the failure record of an account: the prefix and the
// normalised email.
const prefixFailures = "fa/"

// prefixLegacyFailures keys the records written when failures were counted
// per (email, client address): the prefix, the email, a NUL and the
// address. They still load: each is added to its email's count and deleted
// at that count's next write. A separate prefix keeps an email that itself
// holds a NUL from being read as an old record.
const prefixLegacyFailures = "f/"

// MaxFailureEntries bounds the failure table of one shard. Past it some
// idle entries are dropped: an attacker spraying distinct emails cannot grow
// memory, at worst resetting counts of stale entries. Entries with an open
// refusal window are kept, so spraying cannot reopen a protected account.
const MaxFailureEntries = 100_000

type failState struct {
	Count int       `json:"n"`
	Last  time.Time `json:"last"`
	// Until ends the refusal window opened when Count reached the limit:
	// before it, no password of the account is verified.
	Until time.Time `json:"until,omitzero"`
	// Lockouts counts the windows opened since the last success (or the
	// last decay), so that a caller can make successive windows longer.
	Lockouts int `json:"k,omitempty"`

	// Memory only.
	pending []time.Time // begin times of the attempts not yet ended
	legacy  []string    // old-format keys merged into this entry
}

type failureTable struct {
	byEmail map[string]*failState
}

func newFailureTable() failureTable { return failureTable{byEmail: make(map[string]*failState)} }

// loadFailures loads a failure count record of either format.
func (s *Shard) loadFailures(key, value []byte) error {
	var st failState
	if err := json.Unmarshal(value, &st); err != nil || st.Count < 0 || st.Lockouts < 0 {
		return fmt.Errorf("%w: failure count: %v", ErrBadRecord, err)
	}
	s.failures.merge(failureRecordEmail(key), st, !hasPrefix(key, prefixFailures), string(key))
	return nil
}

func routeFailures(key []byte) (Route, error) { return EmailRoute(failureRecordEmail(key)), nil }

// failureRecordEmail returns the email of a failure record's key, of
// either format.
func failureRecordEmail(key []byte) string {
	if hasPrefix(key, prefixFailures) {
		return string(key[len(prefixFailures):])
	}
	email, _, _ := strings.Cut(string(key[len(prefixLegacyFailures):]), "\x00")
	return email
}

// merge adds a loaded record to email's entry. Old per-address records of
// one email add up (an attacker's tries from every address count) and the
// latest times win.
func (t *failureTable) merge(email string, in failState, legacy bool, key string) {
	st := t.byEmail[email]
	if st == nil {
		st = &failState{}
		t.byEmail[email] = st
	}
	st.Count += in.Count
	if in.Last.After(st.Last) {
		st.Last = in.Last
	}
	if in.Until.After(st.Until) {
		st.Until = in.Until
	}
	st.Lockouts = max(st.Lockouts, in.Lockouts)
	if legacy {
		st.legacy = append(st.legacy, key)
	}
}

// AttemptPolicy is how many password failures an account may have and for
// how long they count.
type AttemptPolicy struct {
	Tries   int           // failures before verification is refused (≥ 1)
	Decay   time.Duration // failures are forgotten after this long without one
	LockFor time.Duration // the refusal window opened once Tries is reached
	// Stale, when not zero, is how long an attempt may stay in flight: an
	// older one is taken as lost (its caller gave up, say on a timeout,
	// before the shard ran BeginAttempt) and frees its place, so lost
	// attempts cannot block an account for good.
	Stale time.Duration
}

// Verdict is what BeginAttempt decided.
type Verdict int

// Verdicts of BeginAttempt.
const (
	// AttemptVerify: reserved; verify the password, then call EndAttempt.
	AttemptVerify Verdict = iota
	// AttemptWait: the tries left are all in flight. Nothing is reserved;
	// begin again a little later (the answer is plain data, so a caller on
	// another node can wait the same way).
	AttemptWait
	// AttemptRefused: a refusal window is open. Verify nothing.
	AttemptRefused
	// AttemptOverLimit: the failures reached the limit and a window of
	// LockFor has just opened (ending at Attempt.Until). Verify nothing; the
	// caller locks the account, or shortens the window (SetAttemptWindow).
	AttemptOverLimit
)

// Attempt is the answer of BeginAttempt.
type Attempt struct {
	Verdict  Verdict
	Until    time.Time // AttemptRefused, AttemptOverLimit: end of the window
	Lockouts int       // AttemptOverLimit: windows since the last success, this one included
}

// BeginAttempt decides whether a password of the account email (normalised)
// may be verified now, and reserves the attempt when it may: the caller must
// then call EndAttempt exactly once.
func (s *Shard) BeginAttempt(email string, now time.Time, p AttemptPolicy) (Attempt, []Mutation) {
	st := s.failures.byEmail[email]
	if st == nil {
		s.failures.evictIfFull(now)
		st = &failState{}
		s.failures.byEmail[email] = st
	}
	st.refresh(now, p.Decay)
	if p.Stale > 0 {
		live := st.pending[:0]
		for _, t := range st.pending {
			if now.Sub(t) <= p.Stale {
				live = append(live, t)
			}
		}
		st.pending = live
	}
	switch {
	case now.Before(st.Until):
		return Attempt{Verdict: AttemptRefused, Until: st.Until}, nil
	case st.Count >= max(p.Tries, 1):
		st.Until = micro(now.Add(p.LockFor))
		st.Lockouts++
		return Attempt{Verdict: AttemptOverLimit, Until: st.Until, Lockouts: st.Lockouts}, s.failures.save(email, st)
	case st.Count+len(st.pending) >= max(p.Tries, 1):
		return Attempt{Verdict: AttemptWait}, nil
	}
	st.pending = append(st.pending, now)
	return Attempt{Verdict: AttemptVerify}, nil
}

// refresh ends a window that is over and forgets failures that decayed.
// When a window ends the account starts again with all its tries (the
// unlock resets the count); Lockouts stays until the failures decay, so that
// the caller can make the next window longer.
func (st *failState) refresh(now time.Time, decay time.Duration) {
	if !st.Until.IsZero() && !now.Before(st.Until) {
		st.Count, st.Last, st.Until = 0, st.Until, time.Time{}
	}
	if (st.Count > 0 || st.Lockouts > 0) && now.Sub(st.Last) > decay {
		st.Count, st.Lockouts = 0, 0
	}
}

// Outcome is how an attempt ended.
type Outcome int

// Outcomes of an attempt.
const (
	AttemptSucceeded Outcome = iota // the account's password matched: forget the failures
	AttemptFailed                   // it did not match: count one more
	AttemptCancelled                // nothing was decided (e.g. busy): no change
)

// EndAttempt settles an attempt begun by BeginAttempt and returns the
// account's failure count after it (for the reply delay).
func (s *Shard) EndAttempt(email string, o Outcome, now time.Time) (int, []Mutation) {
	st := s.failures.byEmail[email]
	if st == nil {
		return 0, nil
	}
	if len(st.pending) > 0 {
		st.pending = st.pending[1:] // any one: they are alike
	}
	switch o {
	case AttemptSucceeded:
		return 0, s.ResetFailures(email)
	case AttemptCancelled:
		if st.idle() {
			delete(s.failures.byEmail, email)
		}
		return st.Count, nil
	}
	st.Count++
	st.Last = micro(now)
	return st.Count, s.failures.save(email, st)
}

// SetAttemptWindow ends the open refusal window of email at until, if that
// is sooner (a caller that does not lock the account uses a shorter one).
func (s *Shard) SetAttemptWindow(email string, until time.Time) []Mutation {
	st := s.failures.byEmail[email]
	if st == nil || st.Until.IsZero() || !until.Before(st.Until) {
		return nil
	}
	st.Until = micro(until)
	return s.failures.save(email, st)
}

// ResetFailures forgets the failures and any window of email (after a
// success or an unlock).
func (s *Shard) ResetFailures(email string) []Mutation {
	st, ok := s.failures.byEmail[email]
	if !ok {
		return nil
	}
	muts := []Mutation{{Key: []byte(prefixFailures + email)}}
	for _, k := range st.legacy {
		muts = append(muts, Mutation{Key: []byte(k)})
	}
	if len(st.pending) > 0 {
		*st = failState{pending: st.pending} // keep the entry for the attempts in flight
	} else {
		delete(s.failures.byEmail, email)
	}
	return muts
}

// Failures returns the failure count of email (for tests and admin tools).
func (s *Shard) Failures(email string) int {
	if st := s.failures.byEmail[email]; st != nil {
		return st.Count
	}
	return 0
}

func (st *failState) idle() bool {
	return st.Count == 0 && len(st.pending) == 0 && st.Lockouts == 0 && st.Until.IsZero() && st.legacy == nil
}

// save returns the mutations that store st and delete the old-format keys
// merged into it.
func (t *failureTable) save(email string, st *failState) []Mutation {
	v, _ := json.Marshal(st)
	muts := make([]Mutation, 0, 1+len(st.legacy))
	muts = append(muts, Mutation{Key: []byte(prefixFailures + email), Value: v})
	for _, k := range st.legacy {
		muts = append(muts, Mutation{Key: []byte(k)})
	}
	st.legacy = nil
	return muts
}

func (t *failureTable) evictIfFull(now time.Time) {
	if len(t.byEmail) < MaxFailureEntries {
		return
	}
	// Map iteration order is random: drop about 1% of entries that have no
	// attempt in flight and no open window. Their disk records are left to
	// decay on their own.
	n := MaxFailureEntries / 100
	for e, st := range t.byEmail {
		if len(st.pending) == 0 && !now.Before(st.Until) {
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

// NeverAutoLocked reports whether the automatic lock spares u: superusers,
// and the anonymous and locked system users (locking the anonymous user
// would end every anonymous session).
func NeverAutoLocked(u *User) bool {
	return u.Role == "superuser" || u.ID == AnonymousID || u.ID == DummyUserID
}
