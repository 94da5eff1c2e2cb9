"""engine.types.zset_runs.Runs, the large sorted set encoding, against a plain
sorted list of (score, member) under random operations, with runs a few
entries long so that every split, merge and dropped run happens."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from math import inf

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.types import zset_runs
from engine.types.zset_runs import Runs

SCORES = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, inf, -inf, 1e300]) | st.floats(
    allow_nan=False, min_value=-1e6, max_value=1e6)
MEMBERS = st.binary(max_size=3)
OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), SCORES, MEMBERS),
    st.tuples(st.just("discard"), st.integers(0, 10**6)),
    st.tuples(st.just("take"), st.integers(0, 10**6), st.integers(1, 12)),
    st.tuples(st.just("copy")),
), max_size=120)


def check(r: Runs, ref: list) -> None:
    assert len(r) == len(ref)
    assert list(r) == ref
    assert list(reversed(r)) == ref[::-1]
    assert r.d == {m: s for s, m in ref}
    assert all(len(a) for a in r._sc)
    assert [len(a) for a in r._sc] == [len(m) for m in r._mem]
    assert list(r._maxs) == [a[-1] for a in r._sc] and r._maxm == [m[-1] for m in r._mem]
    for p in range(len(r._sc) + 1):
        assert r._before(p) == sum(len(a) for a in r._sc[:p])
    for i, (s, m) in enumerate(ref):
        assert r[i] == (s, m)
        assert r.rank(s, m) == i
        assert r.bisect(s, m) == i and r.bisect(s, m, right=True) == i + 1
        assert r.bisect_score(s) == bisect_left(ref, (s,))
    for probe in {s for s, _ in ref} | {-inf, inf, 0.5}:
        assert r.bisect_score(probe) == sum(1 for s, _ in ref if s < probe)
        assert r.bisect_score(probe, right=True) == sum(1 for s, _ in ref if s <= probe)
        for m in (b"", b"\x01", b"\xff\xff\xff\xff"):
            assert r.bisect(probe, m) == bisect_left(ref, (probe, m))
            assert r.bisect(probe, m, right=True) == bisect_right(ref, (probe, m))
    for a in range(0, len(ref) + 1, 3):
        for b in (a, a + 1, a + 7, len(ref)):
            b = min(b, len(ref))
            assert r.slice(a, b) == ref[a:b]


@pytest.fixture
def small_runs(monkeypatch):
    monkeypatch.setattr(zset_runs, "LOAD", 4)


@settings(max_examples=300, deadline=None)
@given(start=st.dictionaries(MEMBERS, SCORES, max_size=40), ops=OPS)
def test_runs_keep_the_order_of_a_sorted_list(start, ops):
    old = zset_runs.LOAD
    zset_runs.LOAD = 4  # (not the fixture: Hypothesis reuses function-scoped fixtures)
    try:
        ref = sorted((s, m) for m, s in start.items())
        r = Runs(list(ref))
        check(r, ref)
        for op in ops:
            if op[0] == "add":
                _, s, m = op
                if m in r.d:
                    o = r.d[m]
                    r.discard(o, m)
                    ref.remove((o, m))
                r.add(s, m)
                insort(ref, (s, m))
            elif op[0] == "discard" and ref:
                s, m = ref.pop(op[1] % len(ref))
                r.discard(s, m)
            elif op[0] == "take" and ref:
                a = op[1] % len(ref)
                b = min(len(ref), a + op[2])
                assert r.take(a, b) == ref[a:b]
                del ref[a:b]
            elif op[0] == "copy":
                c = r.copy()
                r.add(9e9, b"copied")  # the copy shares nothing mutable
                assert b"copied" not in c.d and len(c) == len(ref)
                r.discard(9e9, b"copied")
                r = c
            check(r, ref)
    finally:
        zset_runs.LOAD = old


def test_minus_zero_and_zero_tie_and_keep_their_sign(small_runs):
    r = Runs([])
    r.add(0.0, b"b")
    r.add(-0.0, b"a")
    r.add(-0.0, b"c")
    assert [m for _, m in r] == [b"a", b"b", b"c"]
    assert str(r[0][0]) == "-0.0" and str(r.d[b"c"]) == "-0.0"
    assert r.bisect_score(0.0) == 0 and r.bisect_score(-0.0, right=True) == 3


def test_a_large_set_answers_by_rank_across_runs():
    pairs = [(float(i // 3), b"m%07d" % i) for i in range(300_000)]
    r = Runs(pairs)
    assert len(r._sc) == 300_000 // zset_runs.LOAD
    for i in (0, 1, 999, 1000, 150_001, 299_999):
        assert r[i] == pairs[i] and r.rank(*pairs[i]) == i
    assert r.take(0, 1) == pairs[:1] and r.take(len(r) - 1, len(r)) == pairs[-1:]
    assert r.slice(0, 3) == pairs[1:4]
