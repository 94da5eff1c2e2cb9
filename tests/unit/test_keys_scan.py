"""SCAN: its replies and errors against redis-server, and its guarantee — a key
present for the whole iteration is returned — while the database grows and
shrinks under it, and when its snapshot is evicted."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine.commands.keys import ScanRegistry, parse_cursor
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


def test_a_scan_whose_snapshot_was_evicted_starts_over_and_misses_nothing(k):
    keys = {b"k%d" % i for i in range(50)}
    k.pipeline([("SET", key, "v") for key in keys])
    cursor, first = k.call("SCAN", "0", "COUNT", "10")
    for _ in range(ScanRegistry.LIMIT + 1):
        k.call("SCAN", "0", "COUNT", "1")  # each starts a snapshot and leaves it open
    seen = list(first)
    while cursor != b"0":
        cursor, batch = k.call("SCAN", cursor, "COUNT", "10")
        seen.extend(batch)
    assert keys <= set(seen)
    assert len(seen) > len(keys)  # it started over: the first batch came twice


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


# --- the registry ----------------------------------------------------------------------

def _scan(s, *args):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in ("SCAN",) + args]
    return TABLE[b"scan"].handler(s, argv)


def test_the_snapshot_registry_is_bounded_and_least_recently_used_goes_first():
    s = Session(Keyspace())
    for i in range(10):
        s.db.set(b"k%d" % i, b"v")
    first_cursor, _ = _scan(s, "0", "COUNT", "1")
    for _ in range(ScanRegistry.LIMIT - 1):
        _scan(s, "0", "COUNT", "1")
    first_cursor, _ = _scan(s, first_cursor, "COUNT", "1")  # used: now most recent
    _scan(s, "0", "COUNT", "1")                             # evicts the oldest other one
    assert len(s.ks.scans.snapshots) == ScanRegistry.LIMIT
    assert (int(first_cursor) & 0xFFFFFFFF) in s.ks.scans.snapshots


def test_a_finished_scan_releases_its_snapshot():
    s = Session(Keyspace())
    s.db.set(b"a", b"v")
    assert _scan(s, "0") == [b"0", [b"a"]]
    assert not s.ks.scans.snapshots


@pytest.mark.parametrize("text,value", [(b"0", 0), (b"", 0), (b"42", 42), (b"+7", 7), (b"-0", 0),
                                        (b"-1", 2**64 - 1), (b"18446744073709551615", 2**64 - 1),
                                        (b"-18446744073709551615", 1)])
def test_cursor_parsing_follows_strtoul(text, value):
    assert parse_cursor(text) == value


@pytest.mark.parametrize("text", [b"-", b"+", b" 1", b"1 ", b"1e3", b"18446744073709551616", b"--1", b"+-1"])
def test_cursor_parsing_rejects(text):
    with pytest.raises(CommandError):
        parse_cursor(text)
