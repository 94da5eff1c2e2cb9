"""Bitmap commands: replies and errors side by side with redis-server, effects in the engine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.registry import TABLE
from engine.session import Session
from tests.support import Err, bitfield_args, run
from tests.support import take_effects as effects

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


@pytest.fixture
def c():
    return Session(Keyspace())


# --- SETBIT / GETBIT ----------------------------------------------------------------

def test_setbit_and_getbit_match_redis(pair):
    for offset, bit in ((7, 1), (0, 1), (7, 0), (100, 1), (100, 1), (3, 0), (0, 0)):
        pair.check("SETBIT", "b", offset, bit)
        pair.check("GET", "b")
    for offset in (0, 1, 7, 100, 101, 10_000):
        pair.check("GETBIT", "b", offset)
        pair.check("GETBIT", "missing", offset)
    pair.check("SETBIT", "z", 20, 0)
    pair.check("GET", "z")


@pytest.mark.parametrize("offset", ["-1", "abc", "1.5", "4294967296", "4294967295", str(LLONG_MAX), "#1", " 1"])
def test_bit_offset_errors_match_redis(pair, offset):
    if offset == "4294967295":
        pair.check("GETBIT", "b", offset)  # valid, but SETBIT there would build 512 MB
        return
    pair.check("SETBIT", "b", offset, "1")
    pair.check("GETBIT", "b", offset)
    pair.check("EXISTS", "b")


@pytest.mark.parametrize("value", ["2", "-1", "abc", "", "1.0", "01"])
def test_setbit_value_errors_match_redis(pair, value):
    assert pair.check("SETBIT", "b", "1", value) == Err(errors.BIT_VALUE)
    pair.check("SETBIT", "b", "abc", value)
    pair.check("EXISTS", "b")


def test_setbit_records_only_real_changes(c):
    assert run(c, "SETBIT", "b", "9", "0") == b":0\r\n"
    assert c.db.data[b"b"] == b"\x00\x00"
    assert run(c, "SETBIT", "b", "9", "0") == b":0\r\n"
    assert run(c, "SETBIT", "b", "9", "1") == b":0\r\n"
    assert run(c, "SETBIT", "b", "9", "1") == b":1\r\n"
    assert effects(c) == [[b"SETBIT", b"b", b"9", b"0"], [b"SETBIT", b"b", b"9", b"1"]]
    assert c.db.data[b"b"] == b"\x00\x40"


def test_setbit_keeps_ttl(c):
    run(c, "SET", "b", "a", "EX", "100")
    when = c.db.expires[b"b"]
    run(c, "SETBIT", "b", "100", "1")
    assert c.db.expires[b"b"] == when


def test_bit_commands_refuse_non_strings(c):
    c.db.set(b"h", object())
    for args in (("SETBIT", "h", "1", "1"), ("GETBIT", "h", "1"), ("BITCOUNT", "h"), ("BITPOS", "h", "1"),
                 ("BITOP", "AND", "d", "h"), ("BITFIELD", "h", "GET", "u8", "0"),
                 ("BITFIELD", "h", "SET", "u8", "0", "1"), ("BITFIELD_RO", "h", "GET", "u8", "0")):
        with pytest.raises(CommandError) as e:
            run(c, *args)
        assert e.value.text == errors.WRONGTYPE, args


def test_bit_offset_limit_follows_proto_max_bulk_len(c):
    c.ks.proto_max_bulk_len = 1024 * 1024
    run(c, "SETBIT", "b", str(1024 * 1024 * 8 - 1), "1")
    with pytest.raises(CommandError) as e:
        run(c, "SETBIT", "b", str(1024 * 1024 * 8), "1")
    assert e.value.text == errors.BIT_OFFSET


# --- BITCOUNT / BITPOS ----------------------------------------------------------------

BITMAP_VALUES = [b"", b"\x00", b"\xff", b"foobar", b"\x00\x00\x01", b"\xff\xf0\x00", b"\x00\xff\x00\x0f",
                 b"\xff\xff\xff", b"\x80", b"\x01", b"\xff\xff\x7f", b"\xfe\xff"]
RANGES = [(0, -1), (0, 0), (1, 1), (1, 3), (-2, -1), (-1, -2), (-100, 100), (5, 2), (2, 100), (0, 7),
          (3, 13), (-5, -1), (7, 8), (9, 9), (LLONG_MIN, LLONG_MAX)]


@pytest.mark.parametrize("value", BITMAP_VALUES)
def test_bitcount_matches_redis(pair, value):
    pair.keel.call("SET", "b", value)
    pair.ref.call("SET", "b", value)
    pair.check("BITCOUNT", "b")
    for start, end in RANGES:
        pair.check("BITCOUNT", "b", start, end)
        pair.check("BITCOUNT", "b", start, end, "BIT")
        pair.check("BITCOUNT", "b", start, end, "byte")


@pytest.mark.parametrize("args", [("1",), ("a", "b"), ("0", "1", "bits"), ("0", "1", "BIT", "x"), ("0", "x")])
def test_bitcount_errors_match_redis_and_missing_keys_answer_zero_first(pair, args):
    pair.check("SET", "b", "foobar")
    pair.check("BITCOUNT", "b", *args)
    pair.check("BITCOUNT", "missing", *args)


@pytest.mark.parametrize("value", BITMAP_VALUES)
def test_bitpos_matches_redis(pair, value):
    pair.keel.call("SET", "b", value)
    pair.ref.call("SET", "b", value)
    for bit in (0, 1):
        pair.check("BITPOS", "b", bit)
        for start, end in RANGES:
            pair.check("BITPOS", "b", bit, start)
            pair.check("BITPOS", "b", bit, start, end)
            pair.check("BITPOS", "b", bit, start, end, "BIT")
            pair.check("BITPOS", "b", bit, start, end, "BYTE")


@pytest.mark.parametrize("args", [
    ("2",), ("-1",), ("x",), ("1", "x"), ("1", "0", "x"), ("0", "0", "1", "bits"), ("0", "0", "x", "foo"),
    ("0", "0", "1", "BIT", "extra"),
])
def test_bitpos_errors_match_redis(pair, args):
    pair.check("SET", "b", b"\xff\x00")
    pair.check("BITPOS", "b", *args)
    pair.check("BITPOS", "missing", *args)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(max_size=6), bit=st.sampled_from([0, 1]),
       start=st.integers(-60, 60), end=st.integers(-60, 60), unit=st.sampled_from(["BIT", "BYTE"]))
def test_bitpos_and_bitcount_agree_with_redis_on_random_ranges(pair, value, bit, start, end, unit):
    pair.keel.call("SET", "b", value)
    pair.ref.call("SET", "b", value)
    pair.check("BITPOS", "b", bit, start, end, unit)
    pair.check("BITPOS", "b", bit, start)
    pair.check("BITCOUNT", "b", start, end, unit)


# --- BITOP ----------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["AND", "OR", "XOR", "and", "Xor"])
def test_bitop_matches_redis(pair, op):
    pair.check("MSET", "a", "foobar", "b", "abc", "c", b"\xff\x00\xff\x00\xff\x00\xff")
    pair.check("BITOP", op, "dest", "a", "b", "c")
    pair.check("GET", "dest")
    pair.check("BITOP", op, "dest", "a", "missing")
    pair.check("GET", "dest")
    pair.check("BITOP", op, "dest", "a")
    pair.check("GET", "dest")
    pair.check("BITOP", op, "dest", "missing", "missing2")
    pair.check("EXISTS", "dest")


def test_bitop_not_matches_redis(pair):
    pair.check("SET", "a", "foobar")
    pair.check("BITOP", "NOT", "dest", "a")
    pair.check("GET", "dest")
    pair.check("BITOP", "not", "a", "a")
    pair.check("GET", "a")


@pytest.mark.parametrize("args", [("NOT", "d", "a", "b"), ("NAND", "d", "a"), ("ANDX", "d", "a")])
def test_bitop_errors_match_redis(pair, args):
    pair.check("SET", "a", "x")
    pair.check("BITOP", *args)
    pair.check("EXISTS", "d")


def test_bitop_effects_and_ttl(c):
    run(c, "SET", "a", b"\x0f")
    run(c, "SET", "d", "old", "EX", "100")
    effects(c)
    assert run(c, "BITOP", "NOT", "d", "a") == 1
    assert c.db.data[b"d"] == b"\xf0" and b"d" not in c.db.expires
    assert run(c, "BITOP", "AND", "d", "missing") == b":0\r\n"
    assert b"d" not in c.db.data
    assert run(c, "BITOP", "OR", "d", "missing") == b":0\r\n"
    assert effects(c) == [[b"BITOP", b"NOT", b"d", b"a"], [b"DEL", b"d"]]


# --- BITFIELD ---------------------------------------------------------------------------------

def test_bitfield_matches_redis(pair):
    pair.check("BITFIELD", "f", "SET", "i8", "0", "-100", "GET", "i8", "0", "GET", "u8", "0")
    pair.check("BITFIELD", "f", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "incrby", "u2", "102", "7")
    pair.check("BITFIELD", "f", "GET", "i64", "0", "GET", "u63", "1", "GET", "i5", "#3", "GET", "u1", "1000")
    pair.check("BITFIELD", "f", "SET", "i64", "#1", str(LLONG_MIN), "INCRBY", "i64", "#1", "-1")
    pair.check("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "i64", "#1", "-1", "GET", "i64", "#1")
    pair.check("GET", "f")
    pair.check("BITFIELD", "f")
    pair.check("BITFIELD", "f", "OVERFLOW", "WRAP")
    pair.check("BITFIELD", "missing", "GET", "u8", "0")
    pair.check("EXISTS", "missing")
    pair.check("BITFIELD_RO", "f", "GET", "u8", "0", "get", "i3", "#2")
    pair.check("BITFIELD_RO", "missing", "GET", "u8", "0")


def test_bitfield_overflow_fail_still_creates_the_key_like_redis(pair):
    pair.check("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "5")
    pair.check("GET", "f")


def test_bitfield_set_of_out_of_range_values_matches_redis_quirks(pair):
    # Redis checks an unsigned SET value as a uint64 (so -1 is huge) and
    # computes the signed limits in 64-bit arithmetic.
    for mode in ("WRAP", "SAT", "FAIL"):
        for kind in ("u8", "i8", "u63", "i64", "u1", "i1"):
            for value in ("-1", "256", "-129", "128", str(LLONG_MIN), str(LLONG_MIN + 100), str(LLONG_MAX)):
                pair.check("BITFIELD", "f", "OVERFLOW", mode, "SET", kind, "3", value, "GET", kind, "3")


@pytest.mark.parametrize("args", [
    ("GET", "u64", "0"), ("GET", "i65", "0"), ("GET", "i0", "0"), ("GET", "U8", "0"), ("GET", "x8", "0"),
    ("GET", "i", "0"), ("GET", "u08", "0"), ("GET", "u8", "-1"), ("GET", "u8", "#-1"), ("GET", "u8", "#"),
    ("GET", "u8", "4294967296"), ("GET", "u8", "#2305843009213693952"), ("GET", "u8"), ("SET", "u8", "0"),
    ("INCRBY", "u8", "0", "x"), ("OVERFLOW",), ("OVERFLOW", "BAD"), ("FOO", "u8", "0"),
    ("GET", "u8", "0", "SET", "u8", "0"), ("SET", "i8", "0", "1.5"), ("OVERFLOW", "SAT", "GET", "u64", "0"),
])
def test_bitfield_errors_match_redis(pair, args):
    pair.check("BITFIELD", "f", *args)
    pair.check("EXISTS", "f")


def test_bitfield_ro_refuses_writes_after_validating_arguments(pair):
    pair.check("SET", "f", "x")
    assert pair.check("BITFIELD_RO", "f", "SET", "u8", "0", "1") == Err(errors.BITFIELD_RO_WRITE)
    pair.check("BITFIELD_RO", "f", "INCRBY", "u8", "0", "1", "GET", "u99", "0")
    pair.check("BITFIELD_RO", "f", "OVERFLOW", "SAT")
    pair.check("GET", "f")


def test_bitfield_records_only_real_changes(c):
    assert run(c, "BITFIELD", "f", "GET", "u8", "0") == [0]
    assert effects(c) == [] and b"f" not in c.db.data
    assert run(c, "BITFIELD", "f", "SET", "u8", "8", "0") == [0]
    assert c.db.data[b"f"] == b"\x00\x00"
    assert run(c, "BITFIELD", "f", "SET", "u8", "8", "0", "INCRBY", "u4", "0", "0") == [0, 0]
    assert run(c, "BITFIELD", "f", "INCRBY", "u4", "0", "3") == b"*1\r\n:3\r\n"  # the one-write path's bytes
    assert effects(c) == [[b"BITFIELD", b"f", b"SET", b"u8", b"8", b"0"],
                          [b"BITFIELD", b"f", b"INCRBY", b"u4", b"0", b"3"]]
    assert c.db.data[b"f"] == b"\x30\x00"


def test_bitfield_counts_a_write_undone_by_a_later_one_as_a_change(c):
    # Redis counts each write that stored another value than it read, not
    # the bytes' net difference: this command is propagated, as there.
    c.db.set(b"f", b"\x00")
    assert run(c, "BITFIELD", "f", "SET", "u8", "0", "7", "SET", "u8", "0", "0") == [0, 7]
    assert c.db.data[b"f"] == b"\x00"
    assert effects(c) == [[b"BITFIELD", b"f", b"SET", b"u8", b"0", b"7", b"SET", b"u8", b"0", b"0"]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(
    st.sampled_from(["GET", "SET", "INCRBY", "OVERFLOW"]),
    st.sampled_from(["i1", "u1", "i7", "u7", "i8", "u8", "i13", "u31", "i63", "u63", "i64"]),
    st.integers(0, 40) | st.integers(0, 5).map(lambda n: f"#{n}"),
    st.integers(LLONG_MIN, LLONG_MAX) | st.integers(-300, 300),
    st.sampled_from(["WRAP", "SAT", "FAIL"]),
), min_size=1, max_size=6), initial=st.binary(max_size=10))
def test_bitfield_agrees_with_redis_on_random_programs(pair, ops, initial):
    pair.keel.call("SET", "f", initial)
    pair.ref.call("SET", "f", initial)
    pair.check("BITFIELD", "f", *bitfield_args(ops))
    pair.check("GET", "f")


# --- arity --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("SETBIT", "a", "1"), ("GETBIT", "a"), ("BITCOUNT",), ("BITPOS", "a"), ("BITOP", "AND", "d"),
    ("BITFIELD",), ("BITFIELD_RO",),
])
def test_wrong_arity_errors_match_redis(pair, args):
    pair.check(*args)


def test_writing_bits_already_there_does_not_touch_watched_keys(c):
    run(c, "SETBIT", "b", "3", "1")
    seen = []
    c.ks.watchers.append(lambda db, key: seen.append(key))
    run(c, "SETBIT", "b", "3", "1")
    run(c, "BITFIELD", "b", "SET", "u4", "0", "1")
    assert seen == []
    run(c, "SETBIT", "b", "3", "0")
    assert seen == [b"b"]


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(["SET", "INCRBY", "set", "incrby"]),
       ftype=st.sampled_from(["i1", "u1", "i7", "u8", "i13", "u31", "i63", "u63", "i64"]),
       offset=st.integers(0, 90), value=st.integers(LLONG_MIN, LLONG_MAX) | st.integers(-300, 300),
       initial=st.binary(min_size=1, max_size=12))
def test_bitfield_one_write_fast_path_answers_as_the_general_path(op, ftype, offset, value, initial):
    # BITFIELD key SET|INCRBY type offset value on a string already written in
    # place takes a path of its own: replies, bytes and effects must be the
    # general path's, in range and out of it (where it hands over).
    from engine.commands.bitmap import _bitfield
    from server.resp import encode2
    argv = [b"BITFIELD", b"f", op.encode(), ftype.encode(), b"%d" % offset, b"%d" % value]
    results = []
    for handler in (TABLE[b"bitfield"].handler, lambda c, a: _bitfield(c, a, False)):
        s = Session(Keyspace())
        s.db.set(b"f", bytearray(initial))
        reply = encode2(handler(s, list(argv)))  # the one-write path answers pre-encoded bytes
        results.append((reply, bytes(s.db.data[b"f"]), s.ks.effects))
    assert results[0] == results[1]
