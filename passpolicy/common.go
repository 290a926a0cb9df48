package passpolicy

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/trustelem/zxcvbn/frequency"
	"golang.org/x/text/cases"
)

// builtinCommonRank is how many of zxcvbn's most frequent passwords are
// refused: the reference's list has 10,000 entries.
const builtinCommonRank = 10_000

// builtinCommon is the set of zxcvbn's first builtinCommonRank "passwords"
// entries. It is built on first use, not at init, so that programs that
// import the package but never check a password do not pay for it
// (about 10,000 map entries).
var builtinCommon = sync.OnceValue(func() map[string]struct{} {
	list := frequency.FrequencyLists["passwords"]
	list = list[:min(len(list), builtinCommonRank)]
	m := make(map[string]struct{}, len(list))
	folder := cases.Fold()
	for _, w := range list {
		// NB: zxcvbn's entries are lower-case ASCII already; folding them
		// keeps the match correct should a later version add others.
		m[folder.String(w)] = struct{}{}
	}
	return m
})

// isBuiltinCommon reports whether folded, a case-folded password, is one of
// the built-in common passwords.
func isBuiltinCommon(folded string) bool {
	_, ok := builtinCommon()[folded]
	return ok
}

// CommonList is an extra list of common passwords for [Policy.Extra]. Its
// entries are stored case-folded, so that a mixed-case entry of the source
// file still matches (the reference compared a case-folded password with a
// partly mixed-case list).
//
// The zero CommonList is empty. A CommonList is immutable after
// [LoadCommonList] returns and safe for concurrent use.
type CommonList struct {
	set map[string]struct{}
}

// maxCommonLine bounds one line of a common-password file. Passwords longer
// than the protocol's 256 code points (at most 1 KiB of UTF-8) are cut by
// callers before the check, so a longer line could never match; it is more
// likely a wrong file.
const maxCommonLine = 4 << 10

// LoadCommonList reads a common-password list: one password per line, as in
// the SecLists files. Line ends ("\n" or "\r\n") are removed but no other
// white space, since a password may start or end with a space; empty lines
// are skipped. There is no comment syntax, because "#" starts real
// passwords. A line longer than 4 KiB is an error wrapping [ErrInvalidList].
func LoadCommonList(r io.Reader) (CommonList, error) {
	set := make(map[string]struct{})
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<10), maxCommonLine)
	folder := cases.Fold()
	line := 0
	for sc.Scan() {
		line++
		w := strings.TrimSuffix(sc.Text(), "\r")
		if w == "" {
			continue
		}
		set[folder.String(w)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return CommonList{}, fmt.Errorf("%w: common-password line %d longer than %d bytes", ErrInvalidList, line+1, maxCommonLine)
		}
		return CommonList{}, fmt.Errorf("passpolicy: read common-password list: %w", err)
	}
	return CommonList{set: set}, nil
}

// Len returns the number of distinct case-folded entries.
func (l CommonList) Len() int { return len(l.set) }

// Contains reports whether the case-folded password is on the list.
func (l CommonList) Contains(password string) bool {
	return l.contains(cases.Fold().String(password))
}

// contains reports whether folded, already case-folded, is on the list.
func (l CommonList) contains(folded string) bool {
	_, ok := l.set[folded]
	return ok
}
