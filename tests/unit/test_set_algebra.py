"""SINTER, SINTERCARD, SINTERSTORE, SUNION(STORE), SDIFF(STORE): replies and
errors side by side with redis-server; result encodings and effects in the engine.

Unordered replies are compared sorted (Redis 7.0 keeps small string sets in
a hash table); the encodings a STORE leaves follow Redis 7.2's algorithms.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import Err, run
from tests.support import take_effects as effects

BIG = [f"m{i}" for i in range(300)]
INTS = [str(i) for i in range(300)]


@pytest.fixture
def c():
    return Session(Keyspace())


def enc(c, key) -> bytes:
    return run(c, "OBJECT", "ENCODING", key)


def fill(pair):
    pair.both("SADD", "i1", "1", "2", "3", "4")
    pair.both("SADD", "i2", "3", "4", "5")
    pair.both("SADD", "l1", "a", "b", "3", "4")
    pair.both("SADD", "l2", "b", "c", "4")
    pair.both("SADD", "h1", *BIG, "3", "4", "a")
    pair.both("SADD", "h2", *BIG[::2], "b")
    pair.both("SADD", "n1", *INTS)
    pair.both("SET", "str", "v")


KEYSETS = [["i1"], ["i1", "i2"], ["i1", "l1"], ["l1", "l2"], ["l1", "h1"], ["h1", "h2"], ["h1", "i1"],
           ["i1", "nokey"], ["nokey", "i1"], ["h2", "h1", "l2"], ["i1", "i1"], ["h1", "h1", "h2"],
           ["n1", "i1", "i2"], ["n1", "h1"], ["h1", "n1"]]


@pytest.mark.parametrize("keys", KEYSETS)
@pytest.mark.parametrize("op", ["SINTER", "SUNION", "SDIFF"])
def test_set_algebra_replies_match_redis(pair, op, keys):
    fill(pair)
    pair.check(op, *keys, sort=True)
    pair.check(op + "STORE", "dst", *keys)
    pair.check("SMEMBERS", "dst", sort=True)
    pair.check("EXISTS", "dst")


@pytest.mark.parametrize("keys", KEYSETS)
def test_sintercard_matches_redis(pair, keys):
    fill(pair)
    pair.check("SINTERCARD", len(keys), *keys)
    for limit in ("0", "1", "2", "1000"):
        pair.check("SINTERCARD", len(keys), *keys, "LIMIT", limit)


def test_intersections_of_intsets_come_in_ascending_order(pair):
    fill(pair)
    pair.check("SINTER", "i1", "i2")
    pair.check("SUNION", "i1", "i2")
    pair.check("SDIFF", "i1", "i2")


def test_an_empty_result_deletes_the_destination(pair):
    fill(pair)
    for op, keys in [("SINTERSTORE", ["i1", "nokey"]), ("SINTERSTORE", ["i2", "l2", "c"]),
                     ("SUNIONSTORE", ["nokey"]), ("SDIFFSTORE", ["i1", "i1"]), ("SDIFFSTORE", ["nokey", "i1"])]:
        pair.both("SADD", "dst", "x")
        pair.check(op, "dst", *keys)
        pair.check("EXISTS", "dst")


def test_a_store_replaces_a_destination_of_any_type_and_its_ttl(pair):
    fill(pair)
    for op in ("SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"):
        pair.both("SET", "dst", "v", "EX", "100")
        pair.check(op, "dst", "i1", "i2")
        pair.check("TYPE", "dst")
        pair.check("TTL", "dst")
        pair.check("SMEMBERS", "dst")


def test_a_store_may_name_its_destination_among_its_sources(pair):
    fill(pair)
    pair.check("SUNIONSTORE", "i1", "i1", "l2")
    pair.check("SMEMBERS", "i1", sort=True)
    pair.check("SINTERSTORE", "l1", "l1", "h1")
    pair.check("SMEMBERS", "l1", sort=True)
    pair.check("SDIFFSTORE", "h1", "h1", "h2")
    pair.check("SMEMBERS", "h1", sort=True)


@pytest.mark.parametrize("op", ["SINTER", "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
def test_a_source_of_another_type_is_refused_even_after_a_missing_one(pair, op):
    fill(pair)
    args = ["dst"] if op.endswith("STORE") else []
    pair.both("SADD", "dst", "keep")
    for keys in (["str"], ["i1", "str"], ["nokey", "str"], ["str", "nokey"]):
        assert pair.check(op, *args, *keys) == Err(errors.WRONGTYPE)
    pair.check("SMEMBERS", "dst")


@pytest.mark.parametrize("args", [
    ("0", "i1"), ("-1", "i1"), ("x", "i1"), ("2", "i1"), ("1", "i1", "LIMIT"), ("1", "i1", "LIMIT", "-1"),
    ("1", "i1", "LIMIT", "x"), ("1", "i1", "FOO"), ("1", "i1", "i2"), ("9223372036854775808", "i1"),
    ("1", "str"), ("2", "nokey", "str"), ("1", "i1", "limit", "1", "LIMIT", "2"),
])
def test_sintercard_errors_match_redis(pair, args):
    fill(pair)
    pair.check("SINTERCARD", *args)


@pytest.mark.parametrize("args", [("SINTER",), ("SUNION",), ("SDIFF",), ("SINTERSTORE", "d"), ("SUNIONSTORE", "d"),
                                  ("SDIFFSTORE", "d"), ("SINTERCARD", "1")])
def test_wrong_arity_matches_redis(pair, args):
    assert pair.check(*args).startswith("ERR wrong number of arguments")


@pytest.mark.parametrize("name", ["sinter", "sintercard", "sinterstore", "sunion", "sunionstore", "sdiff",
                                  "sdiffstore"])
def test_command_info_matches_redis(pair, name):
    keel, ref = pair.both("COMMAND", "INFO", name)
    assert keel[0][:7] == ref[0][:7]


# --- engine: the encodings a store leaves (Redis 7.2's algorithms) ----------------------

def test_store_results_take_the_compact_encodings_that_fit(c):
    run(c, "SADD", "i1", "1", "2", "3")
    run(c, "SADD", "i2", "2", "3", "4")
    run(c, "SADD", "l1", "a", "2", "3")
    run(c, "SADD", "h1", *BIG, "2", "3")
    run(c, "SINTERSTORE", "d1", "i1", "i2")
    run(c, "SINTERSTORE", "d2", "l1", "h1")  # only integers in common: an intset
    run(c, "SINTERSTORE", "d3", "l1", "l1")
    run(c, "SUNIONSTORE", "d4", "i1", "i2")
    run(c, "SUNIONSTORE", "d5", "i1", "l1")
    run(c, "SUNIONSTORE", "d6", "i1", "h1")
    run(c, "SDIFFSTORE", "d7", "l1", "i1")
    run(c, "SDIFFSTORE", "d8", "h1", "l1")
    assert [enc(c, f"d{i}") for i in range(1, 9)] == [
        b"intset", b"intset", b"listpack", b"intset", b"listpack", b"hashtable", b"listpack", b"hashtable"]


def test_an_intersection_walked_from_a_hashtable_outgrows_a_listpack_for_good(c):
    run(c, "SADD", "a", *INTS, "x")
    run(c, "SADD", "b", *INTS, "y")
    run(c, "SINTERSTORE", "d", "a", "b")
    # 300 integers: built as a listpack that outgrew into a table, so not an intset.
    assert enc(c, "d") == b"hashtable"
    run(c, "SADD", "small", *INTS[:100], "x")
    run(c, "SINTERSTORE", "e", "a", "small")
    assert enc(c, "e") == b"listpack"
    run(c, "SREM", "small", "x")
    run(c, "SINTERSTORE", "f", "a", "small")
    assert enc(c, "f") == b"intset"


def test_a_difference_that_adds_then_removes_keeps_the_table_it_grew(c):
    # Five sets, the others small: Redis adds the first set whole, then removes.
    run(c, "SADD", "a", *BIG)
    for k in range(4):
        run(c, "SADD", f"o{k}", *BIG[k * 70:(k + 1) * 70])
    run(c, "SDIFFSTORE", "d", "a", "o0", "o1", "o2", "o3")
    assert sorted(run(c, "SMEMBERS", "d")) == sorted(m.encode() for m in BIG[280:])
    assert enc(c, "d") == b"hashtable"
    # Two sets: walking the first is cheaper; the 20 left make a listpack.
    run(c, "SADD", "o", *BIG[:280])
    run(c, "SDIFFSTORE", "e", "a", "o")
    assert enc(c, "e") == b"listpack"


def test_sintercard_stops_counting_at_the_limit(c):
    run(c, "SADD", "a", *BIG)
    run(c, "SADD", "b", *BIG)
    assert run(c, "SINTERCARD", "2", "a", "b", "LIMIT", "5") in (5, b":5\r\n")


# --- engine: effects --------------------------------------------------------------------

def test_stores_journal_themselves_when_they_change_something(c):
    run(c, "SADD", "a", "1", "2")
    run(c, "SADD", "b", "2", "3")
    effects(c)
    run(c, "SINTERSTORE", "d", "a", "b")
    run(c, "SUNIONSTORE", "d", "a", "b")
    run(c, "SDIFFSTORE", "d", "a", "a")  # empty: deletes d
    run(c, "SDIFFSTORE", "d", "a", "a")  # empty, no d: nothing
    run(c, "SINTERSTORE", "e", "a", "nokey")
    assert effects(c) == [[b"SINTERSTORE", b"d", b"a", b"b"], [b"SUNIONSTORE", b"d", b"a", b"b"],
                          [b"SDIFFSTORE", b"d", b"a", b"a"]]


def test_reads_journal_nothing(c):
    run(c, "SADD", "a", "1", "2")
    effects(c)
    for op in ("SINTER", "SUNION", "SDIFF"):
        run(c, op, "a", "b")
    run(c, "SINTERCARD", "1", "a")
    assert effects(c) == []
