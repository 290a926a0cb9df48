package passpolicy

import "unicode/utf8"

// Ratio returns the similarity of a and b as Python's
// difflib.SequenceMatcher(None, a, b).ratio() computes it, element by element
// over runes (Python str elements are code points; invalid UTF-8 bytes count
// as one U+FFFD rune each).
//
// The result is 2·M / (len(a)+len(b)), where M is the total size of the
// matching blocks found by the Ratcliff–Obershelp recursion of difflib, and
// 1.0 when both strings are empty. It is in [0, 1].
//
// # Faithfulness
//
// The password policy compares Ratio×100 with an integer threshold, so a
// result that differs from Python's in the last bit could flip a decision.
// Ratio therefore copies difflib step by step rather than using a "better"
// longest-common-subsequence measure:
//
//   - find_longest_match keeps the leftmost-in-a, then leftmost-in-b, longest
//     block, because later blocks are searched only to its left and right;
//   - the "autojunk" heuristic: when b has at least 200 elements, every
//     element that occurs more than len(b)/100+1 times in b is "popular" and
//     is removed from the index of b, so it can only join a match by the
//     extension step that follows the indexed search (difflib's isjunk is
//     None, so nothing is junk in the narrower sense);
//   - the ratio is computed as 2.0*M/T in float64, the same IEEE operations
//     as CPython.
//
// NB: Ratio is not symmetric: autojunk looks only at b, and ties are broken
// by position. Only the sum len(a)+len(b) is symmetric.
//
// Cost is O(len(a)·len(b)) time in the worst case and O(len(a)+len(b))
// memory; callers bound their inputs.
func Ratio(a, b string) float64 {
	ra := []rune(a)
	rb := []rune(b)
	total := len(ra) + len(rb)
	if total == 0 {
		return 1.0
	}
	m := newMatcher(ra, rb).matchingSize()
	return 2.0 * float64(m) / float64(total)
}

// autojunkMinLen is difflib's threshold: the popular-element heuristic is
// applied only when b has at least this many elements.
const autojunkMinLen = 200

// matcher holds difflib's SequenceMatcher state for one (a, b) pair.
type matcher struct {
	a, b []rune
	// b2j is difflib's b2j after __chain_b: for each element r of b that is
	// not popular, pos[b2j[r].lo:b2j[r].hi] are its ascending indexes in b;
	// a popular element has an empty range. One flat slice instead of a
	// slice per element keeps the number of allocations constant.
	b2j map[rune]posRange
	pos []int
	// j2len and newj2len are find_longest_match's dicts, as dense slices
	// indexed by j+1 so that j-1 = -1 needs no branch. Only entries listed
	// in touched/newTouched are non-zero, which lets each round reset in
	// time proportional to what it wrote.
	j2len, newj2len     []int
	touched, newTouched []int
}

// posRange is a half-open range of matcher.pos.
type posRange struct{ lo, hi int }

func newMatcher(a, b []rune) *matcher {
	counts := make(map[rune]int)
	for _, r := range b {
		counts[r]++
	}
	popularOver := len(b) // without autojunk, nothing is popular
	if n := len(b); n >= autojunkMinLen {
		popularOver = n/100 + 1
	}
	// A counting sort of b's indexes by element: reserve each non-popular
	// element's range in order of first occurrence, then fill the ranges
	// in index order, so each is ascending as difflib's lists are.
	b2j := make(map[rune]posRange, len(counts))
	size := 0
	for _, r := range b {
		if _, seen := b2j[r]; seen {
			continue
		}
		if c := counts[r]; c <= popularOver {
			b2j[r] = posRange{size, size}
			size += c
		} else {
			b2j[r] = posRange{} // popular: never indexed
		}
	}
	pos := make([]int, size)
	for j, r := range b {
		if counts[r] > popularOver {
			continue
		}
		pr := b2j[r]
		pos[pr.hi] = j
		pr.hi++
		b2j[r] = pr
	}
	return &matcher{
		a:        a,
		b:        b,
		b2j:      b2j,
		pos:      pos,
		j2len:    make([]int, len(b)+1),
		newj2len: make([]int, len(b)+1),
	}
}

// span is a half-open pair of ranges a[alo:ahi], b[blo:bhi] still to search.
type span struct{ alo, ahi, blo, bhi int }

// matchingSize returns the sum of the sizes of difflib's matching blocks.
// difflib sorts and merges adjacent blocks afterwards; neither changes the
// sum, and the subproblems are independent, so the order in which the stack
// is worked off does not matter either.
func (m *matcher) matchingSize() int {
	size := 0
	stack := []span{{0, len(m.a), 0, len(m.b)}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j, k := m.findLongestMatch(s.alo, s.ahi, s.blo, s.bhi)
		if k == 0 {
			continue
		}
		size += k
		if s.alo < i && s.blo < j {
			stack = append(stack, span{s.alo, i, s.blo, j})
		}
		if i+k < s.ahi && j+k < s.bhi {
			stack = append(stack, span{i + k, s.ahi, j + k, s.bhi})
		}
	}
	return size
}

// findLongestMatch is difflib's find_longest_match(alo, ahi, blo, bhi) with
// an empty junk set: the longest block a[i:i+k] == b[j:j+k] inside the
// ranges, found through b2j, then extended over equal elements on both ends
// (which is how popular elements get matched at all).
func (m *matcher) findLongestMatch(alo, ahi, blo, bhi int) (besti, bestj, bestsize int) {
	a, b := m.a, m.b
	besti, bestj = alo, blo
	for i := alo; i < ahi; i++ {
		pr := m.b2j[a[i]]
		for _, j := range m.pos[pr.lo:pr.hi] {
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			k := m.j2len[j] + 1 // j2len[(j-1)+1]
			m.newj2len[j+1] = k
			m.newTouched = append(m.newTouched, j+1)
			if k > bestsize {
				besti, bestj, bestsize = i-k+1, j-k+1, k
			}
		}
		// j2len = newj2len: clear the old round, then swap.
		for _, t := range m.touched {
			m.j2len[t] = 0
		}
		m.j2len, m.newj2len = m.newj2len, m.j2len
		m.touched, m.newTouched = m.newTouched, m.touched[:0]
	}
	for _, t := range m.touched {
		m.j2len[t] = 0
	}
	m.touched = m.touched[:0]

	for besti > alo && bestj > blo && a[besti-1] == b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && a[besti+bestsize] == b[bestj+bestsize] {
		bestsize++
	}
	return besti, bestj, bestsize
}

// runeLen is utf8.RuneCountInString, named for what the policy means by
// "length": Python's len of a str.
func runeLen(s string) int { return utf8.RuneCountInString(s) }
