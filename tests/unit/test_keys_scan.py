"""SCAN: its replies and errors against redis-server, and its guarantee — a key
present for the whole iteration is returned — while the database grows,
shrinks and is rebuilt under it, with cursors that are plain integers."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine.commands.scan import parse_cursor
from engine.dictscan import layout
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.registry import TABLE
from engine.session import Session


def full_scan(client, *options, between=None):
    """Every key a complete SCAN returns (a list: duplicates kept), and the call count."""
    cursor = b"0"
    out = []
    calls = 0
    while True:
        cursor, keys = client.call("SCAN", cursor, *options)
        out.extend(keys)
        calls += 1
        if cursor == b"0":
            return out, calls
        if between is not None:
            between(calls)
        assert calls < 100_000


# --- replies and errors against Redis -----------------------------------------

@pytest.mark.parametrize("cursor", ["abc", " 1", "1 ", "1.5", "0x1", "-", "+", "18446744073709551616",
                                    "-18446744073709551616"])
def test_invalid_cursor(pair, cursor):
    assert pair.check("SCAN", cursor) == "ERR invalid cursor"


@pytest.mark.parametrize("cursor", ["0", "", "-0", "+0", "00"])
def test_cursors_that_read_as_zero_start_a_scan(pair, cursor):
    pair.check("SET", "a", "1")
    assert pair.check("SCAN", cursor) == [b"0", [b"a"]]


@pytest.mark.parametrize("options", [
    ("COUNT", "0"), ("COUNT", "-1"), ("COUNT", "x"), ("COUNT",), ("MATCH",), ("TYPE",), ("BOGUS", "1"),
    ("COUNT", "x", "BOGUS"), ("BOGUS", "COUNT", "x"), ("COUNT", "5", "COUNT"), ("MATCH", "*", "TYPE"),
])
def test_option_errors(pair, options):
    pair.check("SCAN", "0", *options)


def test_invalid_cursor_is_reported_before_bad_options(pair):
    assert pair.check("SCAN", "x", "BOGUS") == "ERR invalid cursor"


def test_scan_of_an_empty_database(pair):
    assert pair.check("SCAN", "0") == [b"0", []]


@pytest.mark.parametrize("options", [(), ("COUNT", "1"), ("COUNT", "7"), ("COUNT", "1000"), ("MATCH", "k1*"),
                                     ("MATCH", "*"), ("MATCH", "[k]?"), ("TYPE", "string"), ("TYPE", "STRING"),
                                     ("TYPE", "list"), ("TYPE", "none"), ("MATCH", "k*", "COUNT", "3", "TYPE", "string"),
                                     ("count", "2", "match", "k2*")])
def test_a_full_scan_returns_what_redis_returns(pair, options):
    for i in range(57):
        pair.check("SET", "k%d" % i, "v")
    keel, _ = full_scan(pair.keel, *options)
    ref, _ = full_scan(pair.ref, *options)
    assert len(keel) == len(set(keel))
    assert sorted(keel) == sorted(set(ref))


def test_count_bounds_the_work_of_each_call(k):
    for i in range(100):
        k.call("SET", "k%d" % i, "v")
    keys, calls = full_scan(k, "COUNT", "10")
    assert len(keys) == 100 and calls == 10
    keys, calls = full_scan(k, "COUNT", "10", "MATCH", "nothing*")
    assert keys == [] and calls == 10


def test_scan_cursor_is_an_unsigned_decimal(k):
    for i in range(30):
        k.call("SET", "k%d" % i, "v")
    cursor, _ = k.call("SCAN", "0", "COUNT", "5")
    assert cursor.isdigit() and 0 < int(cursor) < 2**64


# --- the guarantee -------------------------------------------------------------------

def test_keys_present_throughout_are_returned_while_the_database_grows(k):
    stable = {b"stable:%d" % i for i in range(300)}
    for key in stable:
        k.call("SET", key, "v")

    def grow(call):
        k.pipeline([("SET", "new:%d:%d" % (call, j), "v") for j in range(200)])

    seen, _ = full_scan(k, "COUNT", "20", between=grow)
    assert stable <= set(seen)
    assert len(seen) == len(set(seen))


def test_keys_present_throughout_are_returned_while_the_database_shrinks(k):
    stable = [b"stable:%d" % i for i in range(200)]
    doomed = [b"doomed:%d" % i for i in range(400)]
    k.pipeline([("SET", key, "v") for key in stable + doomed])
    deleted: set = set()
    seen = []
    cursor = b"0"
    while True:
        cursor, batch = k.call("SCAN", cursor, "COUNT", "25")
        assert not deleted & set(batch), "a key deleted earlier came back"
        seen.extend(batch)
        if cursor == b"0":
            break
        victims = [key for key in doomed if key not in deleted][::7][:40]
        if victims:
            k.call("DEL", *victims)
            deleted.update(victims)
    assert set(stable) <= set(seen)
    assert len(deleted) > 100


def test_keys_present_throughout_are_returned_when_the_table_churns(k):
    stable = {b"s%d" % i for i in range(100)}
    k.pipeline([("SET", key, "v") for key in stable])

    def churn(call):
        k.pipeline([("SET", "t%d" % j, "v") for j in range(call * 50, call * 50 + 500)])
        k.call("DEL", *["t%d" % j for j in range(call * 50, call * 50 + 450)])

    seen, _ = full_scan(k, "COUNT", "7", between=churn)
    assert stable <= set(seen)


def test_a_cursor_survives_the_client_reconnecting(keel, k):
    keys = {b"k%d" % i for i in range(50)}
    k.pipeline([("SET", key, "v") for key in keys])
    cursor, seen = k.call("SCAN", "0", "COUNT", "10")
    k.close()
    other = keel.client()
    try:
        while cursor != b"0":
            cursor, batch = other.call("SCAN", cursor, "COUNT", "10")
            seen.extend(batch)
    finally:
        other.close()
    assert sorted(seen) == sorted(keys)


def test_a_cursor_used_in_another_database_starts_over_there(k):
    k.call("SET", "zero", "v")
    for i in range(20):
        k.call("SET", "a%d" % i, "v")
    k.call("SELECT", "1")
    k.call("SET", "one", "v")
    k.call("SELECT", "0")
    cursor, _ = k.call("SCAN", "0", "COUNT", "5")
    k.call("SELECT", "1")
    cursor, batch = k.call("SCAN", cursor, "COUNT", "5")
    assert (cursor, batch) == (b"0", [b"one"])


# --- the walk by position (engine-level) ----------------------------------------

def _scan(s, *args):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in ("SCAN",) + args]
    return TABLE[b"scan"].handler(s, argv)


def _walk(s, count=10, between=None):
    cursor, seen, calls = b"0", [], 0
    while True:
        cursor, batch = _scan(s, cursor, "COUNT", count)
        seen.extend(batch)
        calls += 1
        if cursor == b"0":
            return seen
        if between is not None:
            between(calls)


def test_a_rebuild_that_packs_holes_skips_no_key():
    # Delete most of the keys before the cursor, then insert until the dict
    # rebuilds its table: the keys after the cursor move to the front, past
    # where a plain position would resume.
    s = Session(Keyspace())
    db = s.db
    for i in range(2000):
        db.set(b"old%d" % i, b"v")
    cursor, first = _scan(s, "0", "COUNT", "1000")
    for key in first:
        db.delete(key)
    entries_before = layout(db.data)[0]
    i = 0
    while layout(db.data)[0] >= entries_before:  # until the rebuild packed the holes
        db.set(b"new%d" % i, b"v")
        i += 1
    seen = []
    while cursor != b"0":
        cursor, batch = _scan(s, cursor, "COUNT", "100")
        seen.extend(batch)
    assert {b"old%d" % i for i in range(2000)} - set(first) <= set(seen)


def test_a_scan_ends_and_misses_nothing_while_the_table_is_rebuilt_again_and_again():
    s = Session(Keyspace())
    db = s.db
    stable = {b"s%d" % i for i in range(500)}
    for key in stable:
        db.set(key, b"v")
    entries = layout(db.data)[0]

    def churn(call):  # more inserted per call than the scan takes: rebuilds keep coming
        for j in range(300):
            db.set(b"t%d:%d" % (call, j), b"v")
        for j in range(290):
            db.delete(b"t%d:%d" % (call, j))

    seen = _walk(s, count=10, between=churn)
    assert stable <= set(seen)
    assert len(set(seen) & stable) == len(stable)
    assert len(seen) <= 2 * entries  # it ended: the walk never chases what is appended


def test_flushdb_and_swapdb_during_a_scan_end_it_cleanly():
    s = Session(Keyspace())
    for i in range(100):
        s.db.set(b"k%d" % i, b"v")
    s.ks.dbs[1].set(b"other", b"v")
    cursor, _ = _scan(s, "0", "COUNT", "10")
    s.ks.swap(0, 1)
    assert _scan(s, cursor, "COUNT", "10") == [b"0", [b"other"]]
    cursor, _ = _scan(s, "0", "COUNT", "1")
    s.db.clear()
    assert _scan(s, cursor) == [b"0", []]


def test_due_keys_are_expired_as_the_scan_meets_them():
    s = Session(Keyspace())
    s.db.set(b"gone", b"v")
    s.db.set_expire(b"gone", 1)
    s.db.set(b"live", b"v")
    assert _scan(s, "0") == [b"0", [b"live"]]
    assert b"gone" not in s.db.data
    assert s.ks.effects == [(0, [b"DEL", b"gone"])]


@pytest.mark.parametrize("text,value", [(b"0", 0), (b"", 0), (b"42", 42), (b"+7", 7), (b"-0", 0),
                                        (b"-1", 2**64 - 1), (b"18446744073709551615", 2**64 - 1),
                                        (b"-18446744073709551615", 1)])
def test_cursor_parsing_follows_strtoul(text, value):
    assert parse_cursor(text) == value


@pytest.mark.parametrize("text", [b"-", b"+", b" 1", b"1 ", b"1e3", b"18446744073709551616", b"--1", b"+-1"])
def test_cursor_parsing_rejects(text):
    with pytest.raises(CommandError):
        parse_cursor(text)
