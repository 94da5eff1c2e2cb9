"""engine.glob: Redis's glob rules, quirk by quirk, and a Hypothesis
differential test of many generated patterns and names against a real
redis-server's KEYS (and Keel's own KEYS)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import glob


@pytest.mark.parametrize("pattern,name,expected", [
    (b"*", b"anything", True),
    (b"*", b"", False),           # Redis never matches the empty name against a non-empty pattern
    (b"", b"", True),
    (b"", b"a", False),
    (b"a*", b"a", True),
    (b"a*?", b"a", False),
    (b"?", b"\n", True),          # any byte, newline included
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-c]llo", b"hbllo", True),
    (b"h[c-a]llo", b"hbllo", True),   # a reversed range is the same range
    (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False),
    (b"[\\]]", b"]", True),
    (b"[]]", b"]", False),           # ] right after [ closes an empty set ...
    (b"[]a]", b"a]", False),         # ... which never matches
    (b"[^]a]", b"xa]", True),        # an empty negated set matches any byte
    (b"[", b"[", False),
    (b"[^", b"x", True),
    (b"[ab", b"b", True),            # an open set ends with the pattern
    (b"[a-]", b"_", True),           # a-] is the range a..]
    (b"[a-]", b"-", False),
    (b"\\", b"\\", True),            # a trailing backslash is literal
    (b"a\\", b"a\\", True),
    (b"[\\", b"\\", True),
    (b"[\\-z]", b"-", True),
    (b"[\\-z]", b"m", False),
    (b"[\x00-a]", b"\x80", False),
    (b"[a-\xff]", b"\x00", True),     # bounds compare as signed chars: 0xff < 0x00
    (b"[a-\xff]", b"\x80", False),
    (b"[\x80-\xff]", b"\x90", True),
    (b"*a*a*a*b", b"a" * 5000, False),
])
def test_redis_glob_rules(pattern, name, expected):
    assert glob.match(pattern, name) is expected


def test_hostile_patterns_match_in_linear_time():
    name = b"a" * 20_000
    pattern = b"*a" * 30 + b"*b"
    t0 = time.perf_counter()
    assert not glob.match(pattern, name)
    assert not glob.match(b"*?" * 30 + b"b", name)
    assert time.perf_counter() - t0 < 2.0


def test_compiled_patterns_are_cached():
    assert glob.compile(b"cached*") is glob.compile(b"cached*")


# --- differential against redis-server ---------------------------------------------

ALPHABET = b"ab-]^[\\*?z\x00\x80\xff"
patterns = st.lists(st.sampled_from([bytes([c]) for c in ALPHABET]), max_size=8).map(b"".join)
names = st.lists(st.lists(st.sampled_from([bytes([c]) for c in ALPHABET]), max_size=5).map(b"".join),
                 min_size=1, max_size=12, unique=True)


@pytest.fixture(scope="module")
def servers(keel, redis_ref):
    a, b = keel.client(), redis_ref.client()
    a.call("SELECT", "9")
    b.call("SELECT", "9")
    yield a, b
    a.call("FLUSHDB")
    a.close()
    b.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=patterns, keys=names)
def test_generated_patterns_match_what_redis_matches(servers, pattern, keys):
    keel, ref = servers
    for c in servers:
        c.pipeline([("FLUSHDB",)] + [("SET", key, "v") for key in keys])
    expected = sorted(ref.call("KEYS", pattern))
    assert sorted(keel.call("KEYS", pattern)) == expected
    if pattern != b"*":  # KEYS short-cuts "*"; glob itself keeps Redis's empty-name rule
        assert sorted(key for key in keys if glob.match(pattern, key)) == expected
