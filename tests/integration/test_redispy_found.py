"""What redis-py's own test suite found in Keel (tools/redispy_suite.py), one
differential test per fix: the same commands to Keel and to redis-server.

Each test names the redis-py test that showed the difference.
"""

from __future__ import annotations

import itertools

import pytest

# --- lex ranges on a sorted set with mixed scores ----------------------------------
# redis-py tests/test_commands.py::test_zrangestore stores a BYLEX range of
# {a1: 1, a2: 2, a3: 3}: Redis scans its listpack from the head to the first
# member >= min and takes members while <= max, whatever their scores; Keel
# bounded lex ranges by the members at the first score and stored nothing.

MIXED = [(1, "a1"), (2, "a2"), (3, "a3")]


def _zadd(pair, key, pairs):
    args = [x for s, m in pairs for x in (s, m)]
    pair.check("ZADD", key, *args)


def test_zrangestore_bylex_limit_on_mixed_scores(pair):
    _zadd(pair, "a", MIXED)
    assert pair.check("ZRANGESTORE", "b", "a", "[a2", "(a3", "BYLEX", "LIMIT", 0, 1) == 1
    assert pair.check("ZRANGE", "b", 0, -1) == [b"a2"]


LEX_BOUNDS = ["-", "+", "[a1", "(a1", "[a2", "(a2", "[a3", "(a3", "[a", "[b", "(b"]


def test_lex_ranges_on_mixed_scores_in_lex_order(pair):
    """Members whose lex order is their score order: every lex read and removal agrees."""
    _zadd(pair, "z", MIXED)
    for lo, hi in itertools.product(LEX_BOUNDS, repeat=2):
        pair.check("ZRANGE", "z", lo, hi, "BYLEX")
        pair.check("ZRANGE", "z", hi, lo, "BYLEX", "REV")
        pair.check("ZRANGEBYLEX", "z", lo, hi, "LIMIT", 1, 1)
        pair.check("ZREVRANGEBYLEX", "z", hi, lo, "LIMIT", 0, 2)
        pair.check("ZLEXCOUNT", "z", lo, hi)
        pair.check("ZRANGESTORE", "d", "z", lo, hi, "BYLEX")
        pair.check("ZRANGE", "d", 0, -1, "WITHSCORES")


@pytest.mark.parametrize("members", [
    [(0, "b"), (1, "a"), (2, "c")],          # out of lex order: a scan, not a bisection
    [(3, "a"), (1, "c"), (2, "b"), (0, "d")],
    [(0, "c"), (0, "d"), (1, "a"), (1, "b")],
])
def test_lex_ranges_on_listpack_out_of_lex_order_scan_as_redis(pair, members):
    """On the small encoding Redis's answer is determined (a scan from either end)."""
    bounds = ["-", "+", "[a", "(a", "[b", "(b", "[c", "(c", "[d"]
    for lo, hi in itertools.product(bounds, repeat=2):
        pair.check("DEL", "z")
        _zadd(pair, "z", members)
        pair.check("ZRANGE", "z", lo, hi, "BYLEX")
        pair.check("ZRANGE", "z", hi, lo, "BYLEX", "REV")
        for offset, count in [(1, 1), (2, 1), (2, -1), (3, 2), (-1, 1)]:
            pair.check("ZRANGE", "z", lo, hi, "BYLEX", "LIMIT", offset, count)
            pair.check("ZREVRANGEBYLEX", "z", hi, lo, "LIMIT", offset, count)
        pair.check("ZLEXCOUNT", "z", lo, hi)
        pair.check("ZREMRANGEBYLEX", "z", lo, hi)
        pair.check("ZRANGE", "z", 0, -1)


def test_a_lex_limit_offset_is_passed_over_before_the_far_bound_is_checked(pair):
    """Redis skips the offset unchecked: past a member out of range it takes one in range."""
    _zadd(pair, "z", [(0, "b"), (1, "z"), (2, "c")])
    assert pair.check("ZRANGE", "z", "[a", "[c", "BYLEX", "LIMIT", 2, 1) == [b"c"]
    assert pair.check("ZRANGE", "z", "[a", "[c", "BYLEX", "LIMIT", 1, 1) == []
    assert pair.check("ZRANGESTORE", "d", "z", "[a", "[c", "BYLEX", "LIMIT", 2, 1) == 1
    _zadd(pair, "y", [(0, "c"), (1, "a"), (2, "b")])
    assert pair.check("ZRANGE", "y", "[c", "[b", "BYLEX", "REV", "LIMIT", 2, 1) == [b"c"]


def test_lex_ranges_on_a_large_set_with_mixed_scores_in_lex_order(pair):
    """The skiplist encoding: members m000..m299 with scores rising with them."""
    members = [(i // 7, "m%03d" % i) for i in range(300)]
    _zadd(pair, "z", members)
    assert pair.check("OBJECT", "ENCODING", "z") == b"skiplist"
    for lo, hi in [("[m010", "(m200"), ("(m010", "[m299"), ("-", "[m150"), ("[m150", "+"),
                   ("[m2", "+"), ("[m0", "(m1"), ("[m299", "[m299"), ("(m299", "+")]:
        pair.check("ZRANGE", "z", lo, hi, "BYLEX", "LIMIT", 3, 5)
        pair.check("ZRANGE", "z", hi, lo, "BYLEX", "REV", "LIMIT", 3, 5)
        pair.check("ZLEXCOUNT", "z", lo, hi)
    assert pair.check("ZREMRANGEBYLEX", "z", "[m100", "(m200") == 100
    pair.check("ZRANGE", "z", 95, 105)
