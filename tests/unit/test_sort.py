"""SORT / SORT_RO: replies and errors side by side with redis-server, effects engine-level."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine.commands.sort import weight
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import Err, run, take_effects

NOT_DOUBLE = "ERR One or more scores can't be converted into double"


def fill(pair):
    pair.both("RPUSH", "l", 3, 1, 2, 10, -5, 2.5)
    pair.both("RPUSH", "words", "pear", "apple", "fig", "banana", "Apple", "")
    pair.both("SADD", "si", 5, 3, 9, 1)
    pair.both("SADD", "sw", "b", "a", "c", "10")
    pair.both("ZADD", "z", 1, "c", 2, "a", 3, "b", 3, "d")
    pair.both("ZADD", "zn", 5, "10", 1, "2", 3, "-1")
    for name, w in (("3", 30), ("1", 10), ("2", 5), ("10", 1), ("-5", 100), ("2.5", 7)):
        pair.both("SET", f"w_{name}", w)
        pair.both("HSET", f"h_{name}", "f", -w, "name", f"n{name}")


# --- the orders ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "ASC"), ("SORT", "l", "ALPHA"),
    ("SORT", "l", "ALPHA", "DESC"), ("SORT", "words", "ALPHA"), ("SORT", "words", "ALPHA", "DESC"),
    ("SORT", "si"), ("SORT", "si", "DESC"), ("SORT", "sw", "ALPHA"), ("SORT", "z", "ALPHA"),
    ("SORT", "zn"), ("SORT", "zn", "DESC"), ("SORT", "missing"), ("SORT", "missing", "ALPHA"),
    ("SORT_RO", "l"), ("SORT_RO", "l", "DESC", "ALPHA"),
])
def test_sort_orders_like_redis(pair, args):
    fill(pair)
    pair.check(*args)


@pytest.mark.parametrize("args", [
    ("SORT", "l", "BY", "w_*"), ("SORT", "l", "BY", "w_*", "DESC"),
    ("SORT", "l", "BY", "h_*->f"), ("SORT", "l", "BY", "h_*->f", "DESC"),
    ("SORT", "l", "BY", "h_*->name", "ALPHA"), ("SORT", "l", "BY", "w_*", "ALPHA"),
    ("SORT", "l", "BY", "nokey_*"), ("SORT", "l", "BY", "h_*->nofield"),
    ("SORT", "l", "BY", "w_*->f"),  # a string is not a hash: no weight
    ("SORT", "l", "BY", "h_*"),  # a hash is not a string: no weight
    ("SORT", "l", "BY", "nosort"), ("SORT", "l", "BY", "nosort", "DESC"),
    ("SORT", "z", "BY", "nosort"), ("SORT", "z", "BY", "nosort", "DESC"),
    ("SORT", "l", "BY", "nosort", "LIMIT", 1, 3), ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", 1, 3),
    ("SORT", "z", "BY", "nosort", "LIMIT", 1, 2), ("SORT", "z", "BY", "nosort", "DESC", "LIMIT", 1, 2),
    ("SORT", "z", "BY", "nosort", "LIMIT", 10, 2), ("SORT", "l", "BY", "nosort", "LIMIT", 0, 0),
    ("SORT", "si", "BY", "nosort"),  # an intset is walked in order by both
    ("SORT", "l", "BY", "w_*", "LIMIT", 1, 2), ("SORT", "l", "BY", "w_*", "DESC", "LIMIT", 0, 3),
])
def test_sort_by_patterns_like_redis(pair, args):
    fill(pair)
    pair.check(*args)


@pytest.mark.parametrize("args", [
    ("SORT", "l", "GET", "#"), ("SORT", "l", "GET", "w_*"), ("SORT", "l", "GET", "h_*->name"),
    ("SORT", "l", "GET", "#", "GET", "w_*", "GET", "h_*->f", "GET", "nope_*"),
    ("SORT", "l", "GET", "fixed"), ("SORT", "l", "GET", "h_*->"),
    ("SORT", "l", "BY", "w_*", "GET", "h_*->name", "DESC"),
    ("SORT", "l", "BY", "nosort", "GET", "#", "GET", "w_*"),
    ("SORT", "z", "BY", "nosort", "GET", "#", "DESC", "LIMIT", 0, 2),
    ("SORT", "missing", "GET", "#"),
])
def test_sort_get_patterns_like_redis(pair, args):
    fill(pair)
    pair.check(*args)


@pytest.mark.parametrize("limit", [
    (0, 3), (2, 2), (5, 10), (6, 1), (100, 2), (-1, 2), (-5, -1), (0, -1), (0, 0), (3, -7),
    (1, 9223372036854775807), (-9223372036854775808, 2), (0, -9223372036854775808),
])
def test_sort_limit_clamps_like_redis(pair, limit):
    fill(pair)
    pair.check("SORT", "l", "LIMIT", *limit)
    pair.check("SORT", "l", "LIMIT", *limit, "DESC")
    pair.check("SORT", "missing", "LIMIT", *limit)


def test_unordered_set_without_sorting_gives_its_members(pair):
    fill(pair)
    pair.check("SORT", "sw", "BY", "nosort", sort=True)


def test_options_may_repeat_and_the_last_wins(pair):
    fill(pair)
    pair.check("SORT", "l", "DESC", "ASC")
    pair.check("SORT", "l", "LIMIT", 0, 1, "LIMIT", 2, 2)
    pair.check("SORT", "l", "BY", "w_*", "BY", "h_*->f")
    pair.check("sort", "l", "desc", "limit", "1", "2", "alpha")


# --- numbers as strtod reads them -------------------------------------------------------

@pytest.mark.parametrize("items", [
    ["1", " 2", "0x10", "-inf", "inf", "1e3", ".5", "5.", "+3", "", "-0", "1e-300"],
    ["1", "1 "], ["x"], ["nan"], ["1e400"], ["1e-400"], ["4e-320"], ["0x"], ["1_0"], ["."],
    ["  "], ["\t7"], ["1e"], ["0x1p-1074"], ["Infinity", "-INF"], ["0e999999"],
])
def test_numeric_weights_read_as_strtod(pair, items):
    pair.both("RPUSH", "l", *items)
    pair.check("SORT", "l")
    pair.check("SORT", "l", "DESC")


def test_weight_parses_as_strtod_does():
    assert weight(b"") == 0.0
    assert weight(b"  -1.5e1") == -15.0
    assert weight(b"0X1.8P1") == 3.0
    assert weight(b"7\x00junk") == 7.0
    for bad in (b"1 ", b"nan", b"1e309", b"1e-320", b"abc", b" ", b"0x1p99999"):
        with pytest.raises(CommandError):
            weight(bad)


def test_equal_weights_order_by_the_element_bytes(pair):
    pair.both("RPUSH", "l", "b", "a", "c", "ab")
    pair.check("SORT", "l", "BY", "nokey_*")
    pair.check("SORT", "l", "BY", "nokey_*", "DESC")
    pair.both("RPUSH", "n", "2", "02", "2.0", "1")
    pair.check("SORT", "n")
    pair.check("SORT", "n", "DESC")


def test_bad_weight_from_a_by_key(pair):
    pair.both("RPUSH", "l", 1, 2)
    pair.both("SET", "w_1", "x")
    pair.check("SORT", "l", "BY", "w_*")
    pair.check("SORT", "l", "BY", "w_*", "STORE", "dst")
    pair.check("EXISTS", "dst")
    pair.check("SORT", "l", "BY", "w_*", "ALPHA")


def test_alpha_compares_bytes(pair):
    pair.both("RPUSH", "l", "\xc3\xa9", "z", "Z", "a\x00b", "a", "10", "9")
    pair.check("SORT", "l", "ALPHA", "STORE", "dst")
    pair.check("LRANGE", "dst", 0, -1)
    pair.both("RPUSH", "m", "\xc3\xa9", "z", "Z", "a", "10", "9", "")
    pair.check("SORT", "m", "ALPHA")


# --- STORE -----------------------------------------------------------------------

def test_store_writes_a_list_and_counts(pair):
    fill(pair)
    pair.check("SORT", "l", "STORE", "dst")
    pair.check("LRANGE", "dst", 0, -1)
    pair.check("TYPE", "dst")
    pair.check("SORT", "l", "BY", "w_*", "GET", "#", "GET", "nope_*", "STORE", "dst")
    pair.check("LRANGE", "dst", 0, -1)


def test_store_replaces_any_type_and_drops_the_ttl(pair):
    fill(pair)
    pair.both("SET", "dst", "x", "EX", 100)
    pair.check("SORT", "l", "STORE", "dst")
    pair.check("TTL", "dst")
    pair.check("LRANGE", "dst", 0, -1)


def test_store_of_nothing_deletes_the_destination(pair):
    pair.both("SET", "dst", "x")
    pair.check("SORT", "missing", "STORE", "dst")
    pair.check("EXISTS", "dst")
    pair.both("RPUSH", "l", 1, 2)
    pair.both("SET", "dst", "x")
    pair.check("SORT", "l", "LIMIT", 5, 1, "STORE", "dst")
    pair.check("EXISTS", "dst")


def test_store_onto_the_sorted_key(pair):
    pair.both("RPUSH", "l", 3, 1, 2)
    pair.check("SORT", "l", "DESC", "STORE", "l")
    pair.check("LRANGE", "l", 0, -1)


def test_store_of_a_set_without_sorting_sorts_alpha(pair):
    fill(pair)
    pair.check("SORT", "sw", "BY", "nosort", "STORE", "dst")
    pair.check("LRANGE", "dst", 0, -1)
    pair.check("SORT", "si", "BY", "nosort", "DESC", "STORE", "dst")
    pair.check("LRANGE", "dst", 0, -1)


def test_last_store_wins(pair):
    pair.both("RPUSH", "l", 1)
    pair.check("SORT", "l", "STORE", "a", "STORE", "b")
    pair.check("EXISTS", "a", "b")


# --- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("SORT",), ("SORT_RO",),
    ("SORT", "l", "LIMIT"), ("SORT", "l", "LIMIT", 1), ("SORT", "l", "LIMIT", "x", 1),
    ("SORT", "l", "LIMIT", 1, "x"), ("SORT", "l", "LIMIT", 1, "1.5"),
    ("SORT", "l", "LIMIT", 0, "9223372036854775808"), ("SORT", "l", "BY"), ("SORT", "l", "GET"),
    ("SORT", "l", "STORE"), ("SORT", "l", "BOGUS"), ("SORT", "l", "DESC", "BOGUS"),
    ("SORT_RO", "l", "STORE", "dst"), ("SORT", "str"), ("SORT", "h"), ("SORT", "str", "BY", "nosort"),
    ("SORT", "l", "BOGUS", "LIMIT", "x", 1), ("SORT", "l", "LIMIT", "x", 1, "BOGUS"),
    ("SORT", "str", "BOGUS"), ("SORT", "words"),
])
def test_errors_like_redis(pair, args):
    fill(pair)
    pair.both("SET", "str", "v")
    pair.both("HSET", "h", "f", "v")
    reply = pair.check(*args)
    assert isinstance(reply, Err)


def test_sort_converts_a_small_sorted_set_to_skiplist(pair):
    pair.both("ZADD", "z", 1, "a", 2, "b")
    pair.both("ZADD", "y", 1, "a")
    pair.check("OBJECT", "ENCODING", "z")
    pair.check("SORT", "z", "ALPHA")
    pair.check("OBJECT", "ENCODING", "z")
    pair.check("SORT_RO", "y", "BY", "nosort")
    pair.check("OBJECT", "ENCODING", "y")
    pair.check("ZRANGE", "y", 0, -1, "WITHSCORES")


def test_a_failed_store_changes_nothing(pair):
    pair.both("RPUSH", "l", "a")
    pair.both("SET", "dst", "keep")
    pair.check("SORT", "l", "STORE", "dst")
    pair.check("GET", "dst")


# --- COMMAND: keys and flags --------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("SORT", "a"), ("SORT", "a", "STORE", "d"), ("SORT", "a", "BY", "x", "STORE", "d", "GET", "y"),
    ("SORT", "a", "STORE", "d", "STORE", "e"), ("SORT", "a", "LIMIT", 1, "STORE"),
    ("SORT", "a", "LIMIT", "store", "x", "d"), ("SORT", "a", "GET", "store", "d"),
    ("SORT", "a", "store", "store", "store"), ("SORT_RO", "a", "STORE", "d"),
])
def test_command_getkeys_finds_the_store_destination(pair, args):
    pair.check("COMMAND", "GETKEYS", *args)


def test_command_info_sort(pair):
    for name in ("sort", "sort_ro"):
        ours = pair.keel.call("COMMAND", "INFO", name)[0]
        theirs = pair.ref.call("COMMAND", "INFO", name)[0]
        assert ours[:6] == theirs[:6]


# --- engine level: effects, encodings, cost -------------------------------------------------

@pytest.fixture
def c():
    return Session(Keyspace())


def test_store_journals_its_outcome(c):
    run(c, "RPUSH", "l", "3", "1", "2")
    run(c, "SADD", "s", "b", "a")
    take_effects(c)
    assert run(c, "SORT", "l", "STORE", "dst") == 3
    assert take_effects(c) == [[b"RPUSH", b"dst", b"1", b"2", b"3"]]
    assert run(c, "SORT", "s", "BY", "nosort", "STORE", "dst", "GET", "#", "GET", "nope*") == 4
    assert take_effects(c) == [[b"DEL", b"dst"], [b"RPUSH", b"dst", b"a", b"", b"b", b""]]
    assert run(c, "SORT", "nothing", "STORE", "dst") == 0
    assert take_effects(c) == [[b"DEL", b"dst"]]
    assert run(c, "SORT", "nothing", "STORE", "dst") == 0
    assert take_effects(c) == []


def test_sort_without_store_journals_nothing(c):
    run(c, "RPUSH", "l", "3", "1")
    take_effects(c)
    assert run(c, "SORT", "l") == [b"1", b"3"]
    assert run(c, "SORT_RO", "l", "DESC") == [b"3", b"1"]
    assert take_effects(c) == []


def test_a_failed_sort_journals_nothing(c):
    run(c, "RPUSH", "l", "x")
    take_effects(c)
    with pytest.raises(CommandError, match="converted into double"):
        run(c, "SORT", "l", "STORE", "dst")
    assert take_effects(c) == [] and c.db.get(b"dst") is None


def test_stored_list_takes_the_listpack_encoding_when_small(c):
    # Redis 7.2 converts the stored list once it is built (7.0 keeps a quicklist).
    run(c, "RPUSH", "l", "3", "1", "2")
    run(c, "SORT", "l", "STORE", "dst")
    assert run(c, "OBJECT", "ENCODING", "dst") == b"listpack"
    run(c, "RPUSH", "big", *[b"%d" % i for i in range(3000)])
    run(c, "SORT", "big", "STORE", "dst")
    assert run(c, "OBJECT", "ENCODING", "dst") == b"quicklist"
    assert run(c, "LLEN", "dst") == 3000


def test_sort_of_a_large_sorted_set_and_set(c):
    n = 2000
    run(c, "ZADD", "z", *[x for i in range(n) for x in (b"%d" % (n - i), b"m%05d" % i)])
    assert run(c, "OBJECT", "ENCODING", "z") == b"skiplist"
    got = run(c, "SORT", "z", "BY", "nosort", "LIMIT", 0, 3)
    assert got == [b"m01999", b"m01998", b"m01997"]
    assert run(c, "SORT", "z", "BY", "nosort", "DESC", "LIMIT", 1, 2) == [b"m00001", b"m00002"]
    assert run(c, "SORT", "z", "ALPHA", "LIMIT", 0, 2) == [b"m00000", b"m00001"]
    run(c, "SADD", "s", *[b"%d" % i for i in range(n)])
    assert run(c, "SORT", "s", "DESC", "LIMIT", 0, 2) == [b"1999", b"1998"]


def test_replaying_the_effects_gives_the_same_destination(c):
    run(c, "SADD", "s", *[b"m%d" % i for i in range(50)])
    run(c, "RPUSH", "l", "5", "3", "9")
    for i in range(50):
        run(c, "SET", b"w_m%d" % i, (i * 37) % 11)
    run(c, "SET", "dst", "old")
    replica = Session(Keyspace())
    for argv in take_effects(c):
        run(replica, *argv)
    run(c, "SORT", "s", "BY", "w_*", "GET", "#", "GET", "w_*", "STORE", "dst")
    run(c, "SORT", "l", "DESC", "STORE", "dst2")
    for argv in take_effects(c):
        run(replica, *argv)
    for key in ("dst", "dst2"):
        assert run(replica, "LRANGE", key, 0, -1) == run(c, "LRANGE", key, 0, -1)
    assert run(c, "LRANGE", "dst2", 0, -1) == [b"9", b"5", b"3"]
