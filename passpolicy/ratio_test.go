package passpolicy

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// TestRatioAppendixC3 checks Ratio against the ratios Python's
// difflib.SequenceMatcher gives for these pairs, to four decimal places of
// the percentage.
func TestRatioAppendixC3(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want float64 // ratio × 100
	}{
		{"email prefix", "testuser", "testuser@test.org", 64.0},
		{"name with space", "testuser123", "test user", 80.0},
		{"unrelated", "password", "test user", 35.2941},
		{"random vs email", "atyse6m3bsblq9", "jane.public@example.net", 21.6216},
		{"doubled word", "passwordpassword123", "testuser@test.org", 22.2222},
		{"no common rune", "aaaaaaaaaaaaaaaa1", "x@y.z", 0.0},
		{"empty b", "abc", "", 0.0},
		{"both empty", "", "", 100.0},
		{"autojunk", strings.Repeat("ab", 10), strings.Repeat("a", 150) + strings.Repeat("b", 60), 0.8696},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Ratio(tt.a, tt.b) * 100
			if math.Abs(got-tt.want) > 0.00005 {
				t.Errorf("Ratio(%q, %q)×100 = %.4f; want %.4f", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

// TestRatioAutojunkThreshold checks the edges of the heuristic: it starts at
// len(b) == 200 and marks elements occurring more than len(b)/100+1 times.
func TestRatioAutojunkThreshold(t *testing.T) {
	a := strings.Repeat("ab", 10)
	tests := []struct {
		name string
		b    string
		want float64
	}{
		// 199 elements: no autojunk. difflib's blocks (from CPython): "ab"
		// at the a/b boundary, then nine single "b"s: M = 11.
		{"len 199 off", strings.Repeat("a", 140) + strings.Repeat("b", 59), 2.0 * 11 / 219},
		// 200 elements, both runes popular: only the extension step matches.
		{"len 200 on", strings.Repeat("a", 140) + strings.Repeat("b", 60), 2.0 * 1 / 220},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Ratio(a, tt.b); got != tt.want {
				t.Errorf("Ratio(a, b[len %d]) = %v; want %v", len(tt.b), got, tt.want)
			}
		})
	}
}

// TestRatioMatchesCPython compares Ratio bit for bit with CPython's difflib
// on 500 generated pairs (testdata/gen_ratio.py), many of them long enough
// for autojunk and with non-ASCII runes.
func TestRatioMatchesCPython(t *testing.T) {
	f, err := os.Open("testdata/ratio_vectors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var v struct {
			A, B  string
			Ratio float64
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
		if got := Ratio(v.A, v.B); got != v.Ratio {
			t.Errorf("line %d: Ratio(%q, %q) = %v; want %v", n, v.A, v.B, got, v.Ratio)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 500 {
		t.Errorf("read %d vectors; want 500", n)
	}
}

func TestRatioRunes(t *testing.T) {
	// One rune each, not bytes: "é" is two bytes but one element.
	if got, want := Ratio("é", "é"), 1.0; got != want {
		t.Errorf(`Ratio("é", "é") = %v; want %v`, got, want)
	}
	if got, want := Ratio("éa", "éb"), 0.5; got != want {
		t.Errorf(`Ratio("éa", "éb") = %v; want %v`, got, want)
	}
}

func FuzzRatio(f *testing.F) {
	f.Add("testuser", "testuser@test.org")
	f.Add("", "")
	f.Add(strings.Repeat("ab", 10), strings.Repeat("a", 150)+strings.Repeat("b", 60))
	f.Add("\xff\xfe", "é𝄞")
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 2000 || len(b) > 2000 {
			return // quadratic worst case; the policy's inputs are short
		}
		r := Ratio(a, b)
		if !(r >= 0 && r <= 1) {
			t.Fatalf("Ratio(%q, %q) = %v; want in [0, 1]", a, b, r)
		}
		// M is at most the shorter length, so 2M/(la+lb) has this bound,
		// which is symmetric in a and b.
		la, lb := runeLen(a), runeLen(b)
		if la+lb > 0 {
			bound := 2 * float64(min(la, lb)) / float64(la+lb)
			if r > bound {
				t.Fatalf("Ratio(%q, %q) = %v; want ≤ %v", a, b, r, bound)
			}
		}
		// With autojunk off, equal strings match as one block. (With it on,
		// difflib itself can return less than 1 for equal strings.)
		if a == b && lb < autojunkMinLen && r != 1 {
			t.Fatalf("Ratio(%q, %q) = %v; want 1", a, b, r)
		}
		if r2 := Ratio(b, a); !(r2 >= 0 && r2 <= 1) {
			t.Fatalf("Ratio(%q, %q) = %v; want in [0, 1]", b, a, r2)
		}
	})
}
