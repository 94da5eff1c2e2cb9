"""Strings changed in place: raw encoding like Redis, and every command alike on both forms.

A string is ``bytes`` when created whole and a ``bytearray`` once APPEND,
SETRANGE, SETBIT or a BITFIELD write changed it in place (engine.types).
These tests prove that: every reader and writer answers the same on both
forms (engine level, replies and errors); OBJECT ENCODING follows Redis
(differential, each rule checked against a real redis-server); COPY gives an
independent value; DUMP of a raw string is Redis's payload; effects stay the
command as sent; and a reply cannot see a write made after it, even while it
is held for the log.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import rdb
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.reply import ONE
from engine.session import Session
from tests.support import run
from tests.support import take_effects as effects
from tests.unit.test_dump import as_v10

VALUES = [b"", b"0", b"12", b"-7", b"hello", b"1.5", b"\xff\x00\x81\x7f", b"x" * 44, b"y" * 100]


def store(c, key: bytes, value: bytes, raw: bool) -> None:
    """``key`` = ``value``, as bytes (created whole) or as a bytearray (changed in place)."""
    run(c, "SET", key, value)
    if raw:
        run(c, "APPEND", key, b"")  # converts it, changes no byte
    assert type(c.db.data[key]) is (bytearray if raw else bytes)
    effects(c)


def outcome(c, args):
    """What a command answers: its reply with strings as bytes, or its error text."""
    try:
        r = run(c, *args)
    except CommandError as e:
        return ("error", e.text)
    return ("reply", _plain(r))


def _plain(r):
    if type(r) is bytearray:
        return ("string", bytes(r))
    if type(r) is bytes:
        return ("string", r)
    if isinstance(r, list):
        return [_plain(x) for x in r]
    if isinstance(r, dict):
        return {_plain(k): _plain(v) for k, v in r.items()}
    return r


def both_forms(value: bytes, *commands):
    """Run ``commands`` on ``k`` holding ``value`` as bytes and as a bytearray.

    Returns the two lists of (outcome, GET k, effects) per command.
    """
    results = []
    for raw in (False, True):
        c = Session(Keyspace())
        store(c, b"k", value, raw)
        run(c, "SET", "other", "hxllo")
        effects(c)
        seen = []
        for args in commands:
            seen.append((outcome(c, args), _plain(c.db.get(b"k")), effects(c)))
        results.append(seen)
    return results


READS = [
    ("GET", "k"), ("STRLEN", "k"), ("GETRANGE", "k", "0", "-1"), ("GETRANGE", "k", "1", "3"),
    ("SUBSTR", "k", "-3", "-1"), ("MGET", "k", "nokey", "k"), ("GETBIT", "k", "3"), ("GETBIT", "k", "9999"),
    ("BITCOUNT", "k"), ("BITCOUNT", "k", "0", "0"), ("BITCOUNT", "k", "1", "10", "BIT"), ("BITPOS", "k", "1"),
    ("BITPOS", "k", "0", "0", "-1", "BIT"), ("BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i5", "3"),
    ("BITFIELD", "k", "GET", "i64", "4"), ("LCS", "k", "other"), ("LCS", "k", "other", "IDX", "WITHMATCHLEN"),
    ("LCS", "k", "k", "LEN"), ("TYPE", "k"), ("DUMP", "k"), ("EXISTS", "k"),
    ("GETEX", "k"), ("GETEX", "k", "PXAT", "4000000000000"),
]
WRITES = [
    ("APPEND", "k", "abc"), ("APPEND", "k", ""), ("SETRANGE", "k", "1", "zz"), ("SETRANGE", "k", "150", "q"),
    ("SETRANGE", "k", "0", ""), ("SETRANGE", "k", "-1", "x"), ("SETBIT", "k", "5", "1"), ("SETBIT", "k", "5", "0"),
    ("SETBIT", "k", "1000", "1"), ("SETBIT", "k", "1", "2"),
    ("BITFIELD", "k", "SET", "u8", "4", "255", "INCRBY", "i4", "0", "3", "GET", "u16", "0"),
    ("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "7"), ("BITFIELD", "k", "SET", "u99", "0", "1"),
    ("BITOP", "OR", "dest", "k", "other"), ("BITOP", "NOT", "k", "k"),
    ("INCR", "k"), ("DECRBY", "k", "5"), ("INCRBYFLOAT", "k", "1.5"),
    ("SET", "k", "new", "GET"), ("GETSET", "k", "newer"), ("GETDEL", "k"),
]


@pytest.mark.parametrize("value", VALUES)
def test_readers_answer_the_same_on_both_forms(value):
    whole, raw = both_forms(value, *READS)
    assert raw == whole


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("args", WRITES, ids=lambda a: " ".join(a))
def test_writers_answer_record_and_store_the_same_on_both_forms(value, args):
    # Each write, then a second one on its result: the first one may have
    # converted the value, so the second runs on a bytearray either way.
    whole, raw = both_forms(value, args, args, ("GET", "k"))
    assert raw == whole


def test_in_place_writes_keep_the_same_bytearray_and_record_the_command():
    c = Session(Keyspace())
    store(c, b"k", b"hello", raw=False)
    run(c, "APPEND", "k", " world")
    buf = c.db.data[b"k"]
    assert type(buf) is bytearray and buf == b"hello world"
    run(c, "SETRANGE", "k", "0", "J")
    run(c, "SETBIT", "k", "7", "1")
    run(c, "BITFIELD", "k", "SET", "u8", "8", "97")
    assert c.db.data[b"k"] is buf and buf == b"Kallo world"
    assert effects(c) == [[b"APPEND", b"k", b" world"], [b"SETRANGE", b"k", b"0", b"J"],
                          [b"SETBIT", b"k", b"7", b"1"], [b"BITFIELD", b"k", b"SET", b"u8", b"8", b"97"]]


def test_in_place_writes_keep_the_ttl_and_count_as_changes_for_watch():
    c = Session(Keyspace())
    store(c, b"k", b"abc", raw=True)
    run(c, "PEXPIRE", "k", "100000")
    seen = []
    c.ks.watchers.append(lambda db, key: seen.append(key))
    for args in (("APPEND", "k", "d"), ("SETRANGE", "k", "0", "z"), ("SETBIT", "k", "0", "1"),
                 ("BITFIELD", "k", "INCRBY", "u8", "8", "1")):
        run(c, *args)
    assert seen == [b"k"] * 4
    assert b"k" in c.db.expires and c.db.data[b"k"] == b"\xfaccd"


def test_a_failed_in_place_write_changes_nothing():
    c = Session(Keyspace())
    store(c, b"k", b"abc", raw=False)
    c.ks.proto_max_bulk_len = 4
    for args in (("APPEND", "k", "de"), ("SETRANGE", "k", "3", "de"), ("SETBIT", "k", "40", "1"),
                 ("BITFIELD", "k", "SET", "u8", "40", "1"), ("SETRANGE", "k", "-1", "x"), ("SETBIT", "k", "0", "x")):
        with pytest.raises(CommandError):
            run(c, *args)
    assert type(c.db.data[b"k"]) is bytes and c.db.data[b"k"] == b"abc"
    assert effects(c) == []


# --- OBJECT ENCODING, against redis-server ----------------------------------------

ENCODING_CASES = {
    "set int": [("SET", "k", "123")],
    "set 44 bytes": [("SET", "k", "a" * 44)],
    "set 45 bytes": [("SET", "k", "a" * 45)],
    "set non-canonical int": [("SET", "k", "0123")],
    "append creating an int": [("APPEND", "k", "123")],
    "append creating a short string": [("APPEND", "k", "abc")],
    "append creating a long string": [("APPEND", "k", "a" * 50)],
    "append to a short string": [("SET", "k", "abc"), ("APPEND", "k", "d")],
    "append to an int": [("SET", "k", "12"), ("APPEND", "k", "3")],
    "append nothing to a short string": [("SET", "k", "abc"), ("APPEND", "k", "")],
    "append nothing to an int": [("SET", "k", "12"), ("APPEND", "k", "")],
    "append past 44 bytes": [("SET", "k", "a" * 44), ("APPEND", "k", "b")],
    "setrange creating": [("SETRANGE", "k", "0", "12")],
    "setrange changing": [("SET", "k", "abc"), ("SETRANGE", "k", "0", "x")],
    "setrange writing the same bytes": [("SET", "k", "abc"), ("SETRANGE", "k", "0", "a")],
    "setrange of nothing": [("SET", "k", "abc"), ("SETRANGE", "k", "0", "")],
    "setrange of nothing on an int": [("SET", "k", "77"), ("SETRANGE", "k", "5", "")],
    "setbit creating": [("SETBIT", "k", "1", "1")],
    "setbit to the same value": [("SET", "k", "abc"), ("SETBIT", "k", "0", "0")],
    "setbit on an int": [("SET", "k", "12"), ("SETBIT", "k", "0", "0")],
    "setbit changing": [("SET", "k", "abc"), ("SETBIT", "k", "1", "0")],
    "getbit": [("SET", "k", "abc"), ("GETBIT", "k", "1")],
    "bitfield get": [("SET", "k", "abc"), ("BITFIELD", "k", "GET", "u8", "0")],
    "bitfield set of the same value": [("SET", "k", "abc"), ("BITFIELD", "k", "SET", "u8", "0", "97")],
    "bitfield refused by overflow fail": [("SET", "k", "abc"),
                                          ("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "100")],
    "bitfield creating": [("BITFIELD", "k", "SET", "u8", "0", "49")],
    "bitfield creating, refused": [("BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u2", "0", "9")],
    "bitfield without ops": [("SET", "k", "abc"), ("BITFIELD", "k")],
    "bitop": [("SET", "a", "abc"), ("BITOP", "OR", "k", "a")],
    "bitop of an int": [("SET", "a", "12"), ("BITOP", "OR", "k", "a")],
    "incr of a raw string": [("SETRANGE", "k", "0", "12"), ("INCR", "k")],
    "incrbyfloat of a raw string": [("SETRANGE", "k", "0", "1.5"), ("INCRBYFLOAT", "k", "1")],
    "getset of a raw string": [("SETRANGE", "k", "0", "ab"), ("GETSET", "k", "cd")],
    "set keepttl over a raw string": [("SETRANGE", "k", "0", "ab"), ("SET", "k", "ab", "KEEPTTL")],
    "getex of a raw string": [("SETRANGE", "k", "0", "ab"), ("GETEX", "k", "EX", "100")],
    "copy of a raw string": [("SETRANGE", "a", "0", "ab"), ("COPY", "a", "k")],
    "rename of a raw string": [("SETRANGE", "a", "0", "ab"), ("RENAME", "a", "k")],
    "move of a raw string": [("SETRANGE", "k", "0", "ab"), ("MOVE", "k", "1"), ("SELECT", "1")],
    "mset": [("MSET", "k", "5")],
    "incrbyfloat with a fraction": [("INCRBYFLOAT", "k", "1.5")],
}


@pytest.mark.parametrize("steps", ENCODING_CASES.values(), ids=ENCODING_CASES.keys())
def test_object_encoding_and_refcount_of_strings_match_redis(pair, steps):
    for args in steps:
        pair.check(*args)
    pair.check("OBJECT", "ENCODING", "k")
    pair.check("OBJECT", "REFCOUNT", "k")
    pair.check("GET", "k")
    pair.both("SELECT", "0")


def test_restore_of_a_raw_strings_payload_is_created_whole_like_redis(pair):
    pair.check("SETRANGE", "a", "0", "ab")
    pair.check("RESTORE", "k", "0", pair.ref.call("DUMP", "a"))
    pair.check("OBJECT", "ENCODING", "k")


# --- COPY, DUMP --------------------------------------------------------------------

def test_copy_of_a_raw_string_is_independent():
    c = Session(Keyspace())
    store(c, b"a", b"abc", raw=True)
    assert run(c, "COPY", "a", "b") == ONE
    assert type(c.db.data[b"b"]) is bytearray and c.db.data[b"b"] is not c.db.data[b"a"]
    run(c, "APPEND", "a", "d")
    run(c, "SETBIT", "b", "0", "1")
    assert c.db.data[b"a"] == b"abcd" and c.db.data[b"b"] == b"\xe1bc"


def test_copy_of_a_raw_string_is_independent_like_redis(pair):
    pair.check("SETRANGE", "a", "0", "abc")
    pair.check("COPY", "a", "b")
    pair.check("APPEND", "a", "d")
    pair.check("SETRANGE", "b", "1", "X")
    pair.check("MGET", "a", "b")


@pytest.mark.parametrize("pieces", [
    [b"12", b"3"],                       # reads as an integer: INT16 encoded
    [b"hello", b" ", b"world"],          # short: never compressed
    [bytes(range(256)), bytes(range(255, -1, -1))],  # long, incompressible
])
def test_dump_of_a_raw_string_is_redis_payload(pair, pieces):
    for piece in pieces:
        pair.check("APPEND", "k", piece)
    pair.check("OBJECT", "ENCODING", "k")
    keel, ref = pair.both("DUMP", "k")
    assert as_v10(keel) == ref
    assert pair.ref.call("RESTORE", "r", "0", as_v10(keel)) == b"OK"
    assert pair.keel.call("RESTORE", "r", "0", ref) == b"OK"
    pair.check("GET", "r")


def test_dump_encodes_a_bytearray_exactly_as_bytes():
    for value in VALUES + [bytes(range(256)) * 300]:
        assert rdb.dump(bytearray(value)) == rdb.dump(value)
        assert rdb.restore(rdb.dump(bytearray(value))) == value


# --- replies are not aliased to the stored value --------------------------------------

def test_pipelined_reads_and_in_place_writes_reply_like_redis(pair):
    # Under appendfsync always these replies are held together until the
    # fsync: each must be what the value was when its command ran.
    pair.check("SETRANGE", "k", "0", "abc")
    commands = [("GET", "k"), ("APPEND", "k", "def"), ("GET", "k"), ("MGET", "k", "k"),
                ("SETRANGE", "k", "0", "XY"), ("GETRANGE", "k", "0", "-1"), ("GETEX", "k"),
                ("SETBIT", "k", "0", "1"), ("GET", "k"), ("BITFIELD", "k", "SET", "u8", "8", "0"),
                ("SET", "k", "whole", "GET"), ("APPEND", "k", "!"), ("GETDEL", "k")]
    assert pair.keel.pipeline(commands) == pair.ref.pipeline(commands)


def test_a_returned_value_is_encoded_before_a_later_write_can_change_it():
    from server.resp import encode2, encode3

    c = Session(Keyspace())
    store(c, b"k", b"abc", raw=True)
    r = run(c, "GET", "k")
    out2, out3 = encode2(r), encode3([r])
    run(c, "APPEND", "k", "def")
    assert out2 == b"$3\r\nabc\r\n" and out3 == b"*1\r\n$3\r\nabc\r\n"
