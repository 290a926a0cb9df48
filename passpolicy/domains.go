package passpolicy

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/text/cases"
)

// DomainSet is a set of email domains, such as the disposable-email
// blocklist. Entries are stored case-folded and matched exactly: a listed
// "mailinator.com" does not block "eu.mailinator.com", as in the reference.
//
// A DomainSet is immutable once built (Merge returns a new set), so one set
// may be shared by any number of goroutines. The nil *DomainSet is empty.
type DomainSet struct {
	set map[string]struct{}
}

// builtinDisposableDomains are some of the best-known disposable-email
// services. The reference bundles about 3,100 domains from the public
// "disposable-email-domains" project; operators who want that coverage load
// the project's list with [LoadDomainSet] and [DomainSet.Merge] it with this
// one (AUTHNZERVER_DISPOSABLEDOMAINS). Kept short on purpose: a stale entry
// blocks real users, and this list cannot be updated without a release.
var builtinDisposableDomains = []string{
	"10minutemail.com",
	"20minutemail.com",
	"33mail.com",
	"discard.email",
	"dispostable.com",
	"emailondeck.com",
	"fakeinbox.com",
	"getairmail.com",
	"getnada.com",
	"guerrillamail.biz",
	"guerrillamail.com",
	"guerrillamail.de",
	"guerrillamail.info",
	"guerrillamail.net",
	"guerrillamail.org",
	"guerrillamailblock.com",
	"maildrop.cc",
	"mailinator.com",
	"mailnesia.com",
	"mintemail.com",
	"mohmal.com",
	"mytemp.email",
	"sharklasers.com",
	"spamgourmet.com",
	"temp-mail.org",
	"tempail.com",
	"tempmail.com",
	"tempmailo.com",
	"tempr.email",
	"throwawaymail.com",
	"trashmail.com",
	"trashmail.de",
	"yopmail.com",
	"yopmail.fr",
	"yopmail.net",
}

var builtinDisposable = sync.OnceValue(func() *DomainSet {
	s := &DomainSet{set: make(map[string]struct{}, len(builtinDisposableDomains))}
	folder := cases.Fold()
	for _, d := range builtinDisposableDomains {
		s.set[folder.String(d)] = struct{}{}
	}
	return s
})

// BuiltinDisposable returns the built-in set of well-known disposable email
// domains. Every call returns the same shared, immutable set.
func BuiltinDisposable() *DomainSet { return builtinDisposable() }

// maxDomainLine bounds one line of a domain file: a domain name has at most
// 253 characters, and comments are short.
const maxDomainLine = 4 << 10

// LoadDomainSet reads a domain list in the format of the public
// disposable-email-domains project: one domain per line; text from "#" to
// the end of the line is a comment; white space around a domain and empty
// lines are ignored; a trailing "." (the DNS root) is dropped. A line with
// white space inside the domain, or longer than 4 KiB, is an error wrapping
// [ErrInvalidList], since a silently mangled entry would block the wrong
// domain or none.
func LoadDomainSet(r io.Reader) (*DomainSet, error) {
	s := &DomainSet{set: make(map[string]struct{})}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<10), maxDomainLine)
	folder := cases.Fold()
	line := 0
	for sc.Scan() {
		line++
		d, _, _ := strings.Cut(sc.Text(), "#")
		d = strings.TrimSuffix(strings.TrimSpace(d), ".")
		if d == "" {
			continue
		}
		if strings.ContainsFunc(d, isSpaceOrControl) {
			return nil, fmt.Errorf("%w: domain line %d has white space or control characters inside", ErrInvalidList, line)
		}
		s.set[folder.String(d)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%w: domain line %d longer than %d bytes", ErrInvalidList, line+1, maxDomainLine)
		}
		return nil, fmt.Errorf("passpolicy: read domain list: %w", err)
	}
	return s, nil
}

// Merge returns a new set holding the domains of s and of every other set.
// Nil sets are empty. Neither s nor others is modified.
func (s *DomainSet) Merge(others ...*DomainSet) *DomainSet {
	n := s.Len()
	for _, o := range others {
		n += o.Len()
	}
	out := &DomainSet{set: make(map[string]struct{}, n)}
	for _, src := range append([]*DomainSet{s}, others...) {
		if src == nil {
			continue
		}
		for d := range src.set {
			out.set[d] = struct{}{}
		}
	}
	return out
}

// Len returns the number of domains in s.
func (s *DomainSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.set)
}

// Contains reports whether the case-folded domain is in s.
func (s *DomainSet) Contains(domain string) bool {
	if s == nil || len(s.set) == 0 {
		return false
	}
	_, ok := s.set[cases.Fold().String(domain)]
	return ok
}
