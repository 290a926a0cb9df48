#!/usr/bin/env python3
"""Writes ratio_vectors.jsonl: pairs (a, b) with CPython's
difflib.SequenceMatcher(None, a, b).ratio(), for TestRatioMatchesCPython.

Run from passpolicy/testdata:  python3 gen_ratio.py > ratio_vectors.jsonl
The seed is fixed, so a rerun with the same CPython gives the same file.
"""
import difflib
import json
import random

rng = random.Random(20240611)
alphabets = ["ab", "abc", "abcdefgh", "aab ", "0123456789", "aéж€𝄞b", "xyzXYZ.@-"]


def rand_str(alpha, n):
    return "".join(rng.choice(alpha) for _ in range(n))


cases = []
for _ in range(400):
    alpha = rng.choice(alphabets)
    la = rng.choice([0, 1, 2, 5, 12, 30, 80])
    lb = rng.choice([0, 1, 3, 12, 40, 150, 199, 200, 201, 260, 420])
    cases.append((rand_str(alpha, la), rand_str(alpha, lb)))
# Skewed b so that autojunk removes some but not all elements.
for _ in range(100):
    a = rand_str("abcde", rng.choice([5, 20, 60]))
    b = "".join(rng.choice("aaaaaaaaaaaaaaaaaaaabbbbbbcde") for _ in range(rng.choice([199, 200, 250, 333])))
    cases.append((a, b))

for a, b in cases:
    r = difflib.SequenceMatcher(None, a, b).ratio()
    print(json.dumps({"a": a, "b": b, "ratio": r}, ensure_ascii=False))
