"""String commands: replies and errors side by side with redis-server, effects in the engine.

Differential tests send the same command to Keel and to a real redis-server
(``pair.check``) and require identical replies, errors included. Effect
tests run handlers on an in-process ``Keyspace`` and read ``ks.effects``:
what the write-ahead log and replicas will receive.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors
from engine.errors import CommandError
from engine.keyspace import Keyspace, now_ms
from engine.session import Session
from tests.support import Err, run
from tests.support import take_effects as effects

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


# --- engine-level helpers ---------------------------------------------------------

@pytest.fixture
def c():
    return Session(Keyspace())


# --- GET / SET ------------------------------------------------------------------------

def test_plain_set_then_get_matches_redis(pair):
    pair.check("SET", "k", "v")
    pair.check("GET", "k")
    pair.check("SET", "k", "")
    pair.check("GET", "k")
    pair.check("GET", "nokey")


@pytest.mark.parametrize("args", [
    ("NX",), ("XX",), ("GET",), ("KEEPTTL",), ("EX", "100"), ("PX", "100000"),
    ("EXAT", "4000000000"), ("PXAT", "4000000000000"), ("nx", "get"), ("XX", "GET", "EX", "10"),
    ("EX", "10", "EX", "20"), ("GET", "GET"), ("NX", "NX"), ("keepttl", "xx"),
])
def test_set_options_reply_like_redis_on_missing_and_existing_keys(pair, args):
    pair.check("SET", "k", "v1", *args)
    pair.check("GET", "k")
    pair.check("SET", "k", "v2", *args)
    pair.check("GET", "k")


@pytest.mark.parametrize("args", [
    ("NX", "XX"), ("XX", "NX"), ("EX", "10", "PX", "10"), ("KEEPTTL", "EX", "10"),
    ("EX", "10", "KEEPTTL"), ("PXAT", "1", "EXAT", "1"), ("EX",), ("PX",), ("PERSIST",),
    ("FOO",), ("NXX",), ("EX", "10", "foo"),
])
def test_set_refuses_conflicting_or_unknown_options(pair, args):
    assert pair.check("SET", "k", "v", *args) == Err(errors.SYNTAX)
    pair.check("EXISTS", "k")


@pytest.mark.parametrize("args", [
    ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("EXAT", "0"), ("PXAT", "-5"),
    ("EX", str(LLONG_MAX // 1000 + 1)), ("PX", str(LLONG_MAX)), ("EX", str(LLONG_MAX // 1000)),
])
def test_set_refuses_invalid_expire_times(pair, args):
    assert pair.check("SET", "k", "v", *args) == Err("ERR invalid expire time in 'set' command")
    pair.check("EXISTS", "k")


@pytest.mark.parametrize("value", ["abc", "1.5", " 1", "01", "9223372036854775808", ""])
def test_set_refuses_non_integer_expire_times(pair, value):
    assert pair.check("SET", "k", "v", "EX", value) == Err(errors.NOT_INTEGER)


def test_set_with_expiry_in_the_past_leaves_no_key(pair):
    pair.check("SET", "k", "old")
    pair.check("SET", "k", "new", "PXAT", "1")
    pair.check("EXISTS", "k")
    pair.check("SET", "k", "old")
    pair.check("SET", "k", "new", "EXAT", "1", "GET")
    pair.check("EXISTS", "k")


def test_set_get_with_nx_returns_old_value_without_writing(pair):
    pair.check("SET", "k", "old")
    pair.check("SET", "k", "new", "NX", "GET")
    pair.check("GET", "k")
    pair.check("SET", "fresh", "new", "NX", "GET")
    pair.check("GET", "fresh")


def test_set_option_errors_come_before_the_wrong_type_check(c):
    c.db.set(b"h", object())
    with pytest.raises(CommandError) as e:
        run(c, "SET", "h", "v", "EX", "0", "GET")
    assert e.value.text == "ERR invalid expire time in 'set' command"
    with pytest.raises(CommandError) as e:
        run(c, "SET", "h", "v", "GET")
    assert e.value.text == errors.WRONGTYPE
    assert run(c, "SET", "h", "v") == b"+OK\r\n"


def test_get_of_a_non_string_is_wrongtype(c):
    c.db.set(b"h", object())
    with pytest.raises(CommandError, match="WRONGTYPE"):
        run(c, "GET", "h")


def test_set_keepttl_keeps_and_plain_set_clears_the_ttl(c):
    run(c, "SET", "k", "v", "PX", "100000")
    when = c.db.expires[b"k"]
    run(c, "SET", "k", "w", "KEEPTTL")
    assert c.db.expires[b"k"] == when
    run(c, "SET", "k", "x")
    assert b"k" not in c.db.expires


# --- SET effects ---------------------------------------------------------------------

def test_set_with_relative_expiry_records_absolute_pxat(c):
    before = now_ms()
    run(c, "SET", "k", "v", "EX", "10", "GET")
    (eff,) = effects(c)
    assert eff[:4] == [b"SET", b"k", b"v", b"PXAT"]
    assert before + 10_000 <= int(eff[4]) <= now_ms() + 10_000
    assert c.db.expires[b"k"] == int(eff[4])
    run(c, "SET", "k", "v", "PX", "1500")
    assert effects(c)[0][3] == b"PXAT"
    run(c, "SET", "k", "v", "EXAT", "4000000000")
    assert effects(c) == [[b"SET", b"k", b"v", b"PXAT", b"4000000000000"]]
    run(c, "SET", "k", "v", "PXAT", "4000000000123")
    assert effects(c) == [[b"SET", b"k", b"v", b"PXAT", b"4000000000123"]]


def test_set_effect_keeps_keepttl_and_drops_get_nx_xx(c):
    run(c, "SET", "k", "v", "GET", "NX")
    run(c, "SET", "k", "w", "XX", "KEEPTTL", "GET")
    run(c, "SET", "k", "x", "XX")
    assert effects(c) == [[b"SET", b"k", b"v"], [b"SET", b"k", b"w", b"KEEPTTL"], [b"SET", b"k", b"x"]]


def test_set_that_nx_or_xx_prevented_records_nothing(c):
    run(c, "SET", "missing", "v", "XX")
    run(c, "SET", "k", "v")
    effects(c)
    assert run(c, "SET", "k", "w", "NX") is None
    assert run(c, "SET", "k", "w", "NX", "GET") == b"v"
    assert effects(c) == []


def test_set_with_past_expiry_deletes_the_key_and_records_del(c):
    run(c, "SET", "k", "v")
    effects(c)
    assert run(c, "SET", "k", "w", "PXAT", "1") == b"+OK\r\n"
    assert b"k" not in c.db.data
    assert effects(c) == [[b"DEL", b"k"]]
    run(c, "SET", "k", "w", "EXAT", "1")
    assert effects(c) == []  # there was nothing to delete


def test_plain_set_records_itself(c):
    run(c, "SET", "k", "v")
    assert effects(c) == [[b"SET", b"k", b"v"]]


# --- SETNX / SETEX / PSETEX / GETSET / GETDEL --------------------------------------

def test_setnx_replies_one_then_zero(pair):
    assert pair.check("SETNX", "k", "a") == 1
    assert pair.check("SETNX", "k", "b") == 0
    pair.check("GET", "k")


def test_setex_and_psetex_set_value_and_ttl(pair):
    pair.check("SETEX", "k", "100", "v")
    pair.check("GET", "k")
    pair.check("PSETEX", "p", "100000", "v")
    pair.check("GET", "p")


@pytest.mark.parametrize("cmd", ["SETEX", "PSETEX"])
@pytest.mark.parametrize("ttl", ["0", "-10", "abc", "9223372036854775807", "1.5"])
def test_setex_and_psetex_refuse_bad_ttls(pair, cmd, ttl):
    pair.check(cmd, "k", ttl, "v")
    pair.check("EXISTS", "k")


def test_setnx_setex_psetex_getset_effects(c):
    run(c, "SETNX", "a", "1")
    run(c, "SETNX", "a", "2")
    run(c, "SETEX", "b", "10", "x")
    run(c, "PSETEX", "d", "10", "y")
    run(c, "GETSET", "a", "3")
    eff = effects(c)
    assert eff[0] == [b"SET", b"a", b"1"]
    assert eff[1][:4] == [b"SET", b"b", b"x", b"PXAT"] and eff[2][:4] == [b"SET", b"d", b"y", b"PXAT"]
    assert eff[3] == [b"SET", b"a", b"3"]
    assert len(eff) == 4


def test_getset_returns_old_value_and_clears_ttl(pair, c):
    pair.check("GETSET", "k", "a")
    pair.check("GETSET", "k", "b")
    pair.check("GET", "k")
    run(c, "SET", "k", "v", "EX", "100")
    assert run(c, "GETSET", "k", "w") == b"v"
    assert b"k" not in c.db.expires


def test_getdel_returns_and_deletes(pair):
    pair.check("SET", "k", "v")
    pair.check("GETDEL", "k")
    pair.check("GETDEL", "k")
    pair.check("EXISTS", "k")


def test_getdel_records_del_only_when_it_deleted(c):
    run(c, "SET", "k", "v")
    effects(c)
    run(c, "GETDEL", "k")
    run(c, "GETDEL", "k")
    assert effects(c) == [[b"DEL", b"k"]]


def test_string_commands_refuse_non_string_values(c):
    c.db.set(b"h", object())
    for args in (("GETSET", "h", "v"), ("GETDEL", "h"), ("GETEX", "h"), ("APPEND", "h", "x"),
                 ("STRLEN", "h"), ("INCR", "h"), ("INCRBYFLOAT", "h", "1"), ("GETRANGE", "h", "0", "1"),
                 ("SETRANGE", "h", "0", "x"), ("SET", "h", "v", "GET")):
        with pytest.raises(CommandError) as e:
            run(c, *args)
        assert e.value.text == errors.WRONGTYPE, args
    assert run(c, "MGET", "h", "nokey") == [None, None]
    with pytest.raises(CommandError) as e:
        run(c, "LCS", "h", "nokey")
    assert e.value.text == errors.LCS_NOT_STRINGS


# --- GETEX -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    (), ("EX", "100"), ("PX", "100000"), ("EXAT", "4000000000"), ("PXAT", "4000000000000"), ("PERSIST",),
    ("EX", "0"), ("PX", "-1"), ("EX", "abc"), ("EX",), ("PERSIST", "EX", "10"), ("EX", "10", "PX", "10"),
    ("KEEPTTL",), ("NX",), ("GET",), ("EX", "9223372036854775807"), ("EXAT", "1"), ("PXAT", "1"),
])
def test_getex_matches_redis_on_existing_and_missing_keys(pair, args):
    pair.check("GETEX", "nokey", *args)
    pair.check("SET", "k", "v")
    pair.check("GETEX", "k", *args)
    pair.check("EXISTS", "k")


def test_getex_effects(c):
    run(c, "SET", "k", "v")
    effects(c)
    run(c, "GETEX", "k")
    assert effects(c) == []
    before = now_ms()
    run(c, "GETEX", "k", "EX", "10")
    ((name, key, when),) = effects(c)
    assert (name, key) == (b"PEXPIREAT", b"k") and before + 10_000 <= int(when) <= now_ms() + 10_000
    run(c, "GETEX", "k", "PERSIST")
    assert effects(c) == [[b"PERSIST", b"k"]]
    run(c, "GETEX", "k", "PERSIST")
    assert effects(c) == []  # no TTL left to remove
    run(c, "GETEX", "k", "PXAT", "4000000000000")
    assert effects(c) == [[b"PEXPIREAT", b"k", b"4000000000000"]]
    assert run(c, "GETEX", "k", "EXAT", "1") == b"v"
    assert effects(c) == [[b"DEL", b"k"]]
    assert b"k" not in c.db.data


# --- MGET / MSET / MSETNX ------------------------------------------------------------

def test_mget_mset_msetnx_match_redis(pair):
    pair.check("MSET", "a", "1", "b", "2", "a", "3")
    pair.check("MGET", "a", "b", "c", "a")
    pair.check("MSETNX", "c", "1", "a", "x")
    pair.check("MGET", "a", "c")
    pair.check("MSETNX", "c", "1", "d", "2", "c", "3")
    pair.check("MGET", "c", "d")


@pytest.mark.parametrize("cmd", ["MSET", "MSETNX"])
def test_mset_with_a_missing_value_is_an_arity_error(pair, cmd):
    assert pair.check(cmd, "a", "1", "b") == Err(errors.WRONG_ARITY.format(cmd.lower()))
    pair.check(cmd, "a")
    pair.check("EXISTS", "a")


def test_mset_and_msetnx_effects(c):
    run(c, "MSET", "a", "1", "b", "2")
    run(c, "MSETNX", "a", "9", "z", "9")
    run(c, "MSETNX", "x", "1", "y", "2")
    assert effects(c) == [[b"MSET", b"a", b"1", b"b", b"2"], [b"MSET", b"x", b"1", b"y", b"2"]]


# --- APPEND / STRLEN -------------------------------------------------------------------

def test_append_and_strlen_match_redis(pair):
    pair.check("STRLEN", "k")
    pair.check("APPEND", "k", "")
    pair.check("EXISTS", "k")
    pair.check("APPEND", "k", "abc")
    pair.check("APPEND", "k", "de")
    pair.check("APPEND", "k", "")
    pair.check("STRLEN", "k")
    pair.check("GET", "k")
    pair.check("SET", "n", "10")
    pair.check("APPEND", "n", "5")
    pair.check("INCR", "n")


def test_append_keeps_ttl_and_records_only_real_changes(c):
    run(c, "SET", "k", "a", "EX", "100")
    when = c.db.expires[b"k"]
    effects(c)
    assert run(c, "APPEND", "k", "b") == 2
    assert run(c, "APPEND", "k", "") == 2
    assert run(c, "APPEND", "new", "") == 0
    assert c.db.expires[b"k"] == when
    assert effects(c) == [[b"APPEND", b"k", b"b"], [b"APPEND", b"new", b""]]
    assert c.db.data[b"new"] == b""


def test_append_beyond_proto_max_bulk_len_is_refused(c):
    c.ks.proto_max_bulk_len = 10
    run(c, "SET", "k", "12345")
    assert run(c, "APPEND", "k", "67890") == 10
    with pytest.raises(CommandError) as e:
        run(c, "APPEND", "k", "x")
    assert e.value.text == errors.STRING_TOO_LONG
    assert c.db.data[b"k"] == b"1234567890"


# --- counters ----------------------------------------------------------------------------

def test_counters_match_redis(pair):
    pair.check("INCR", "n")
    pair.check("INCRBY", "n", "41")
    pair.check("DECR", "n")
    pair.check("DECRBY", "n", "-100")
    pair.check("DECRBY", "n", "1000")
    pair.check("GET", "n")
    pair.check("INCRBY", "n", "0")


@pytest.mark.parametrize("value", ["abc", "", " 1", "1 ", "01", "-0", "+1", "1.0", "9223372036854775808",
                                   "-9223372036854775809", "0x10", "1e3"])
def test_counters_refuse_non_canonical_integers(pair, value):
    pair.check("SET", "n", value)
    for cmd in (("INCR", "n"), ("DECR", "n"), ("INCRBY", "n", "1"), ("DECRBY", "n", "1")):
        assert pair.check(*cmd) == Err(errors.NOT_INTEGER)
    pair.check("GET", "n")
    if value:
        pair.check("INCRBY", "x", value)
        pair.check("DECRBY", "x", value)


def test_counters_refuse_overflow_in_both_directions(pair):
    pair.check("SET", "n", str(LLONG_MAX))
    assert pair.check("INCR", "n") == Err(errors.OVERFLOW)
    pair.check("INCRBY", "n", "0")
    pair.check("SET", "n", str(LLONG_MIN))
    assert pair.check("DECR", "n") == Err(errors.OVERFLOW)
    pair.check("INCRBY", "n", str(LLONG_MAX))
    pair.check("SET", "n", "-2")
    pair.check("INCRBY", "n", str(LLONG_MIN))
    pair.check("DECRBY", "n", str(LLONG_MAX))
    pair.check("GET", "n")


def test_decrby_llong_min_is_refused_before_the_key_is_read(pair):
    assert pair.check("DECRBY", "n", str(LLONG_MIN)) == Err(errors.DECREMENT_OVERFLOW)
    pair.check("SET", "n", "abc")
    assert pair.check("DECRBY", "n", str(LLONG_MIN)) == Err(errors.DECREMENT_OVERFLOW)
    pair.check("EXISTS", "x")


def test_counters_keep_ttl_and_record_the_command(c):
    run(c, "SET", "n", "5", "EX", "100")
    when = c.db.expires[b"n"]
    effects(c)
    assert run(c, "INCRBY", "n", "10") == b":15\r\n"
    assert run(c, "DECR", "n") == b":14\r\n"
    assert c.db.expires[b"n"] == when
    assert c.db.data[b"n"] == b"14"
    assert effects(c) == [[b"INCRBY", b"n", b"10"], [b"DECR", b"n"]]


def test_failed_counter_records_nothing_and_changes_nothing(c):
    run(c, "SET", "n", str(LLONG_MAX))
    effects(c)
    with pytest.raises(CommandError):
        run(c, "INCR", "n")
    assert effects(c) == [] and c.db.data[b"n"] == str(LLONG_MAX).encode()


# --- GETRANGE / SUBSTR / SETRANGE --------------------------------------------------------

RANGES = [(0, -1), (0, 0), (2, 4), (-3, -1), (-1, -3), (-100, 100), (5, 2), (100, 200), (-1, -1),
          (0, LLONG_MAX), (LLONG_MIN, -1), (3, -100), (-100, -50)]


@pytest.mark.parametrize("cmd", ["GETRANGE", "SUBSTR"])
def test_getrange_matches_redis(pair, cmd):
    pair.check("SET", "k", "Hello, World")
    pair.check("SET", "e", "")
    for start, end in RANGES:
        pair.check(cmd, "k", start, end)
        pair.check(cmd, "e", start, end)
        pair.check(cmd, "missing", start, end)
    assert pair.check(cmd, "k", "a", "1") == Err(errors.NOT_INTEGER)
    pair.check(cmd, "k", "1", "1.5")
    pair.check(cmd, "missing", "x", "1")


def test_setrange_matches_redis(pair):
    pair.check("SETRANGE", "k", "0", "")
    pair.check("EXISTS", "k")
    pair.check("SETRANGE", "k", "5", "abc")
    pair.check("GET", "k")
    pair.check("SETRANGE", "k", "1", "XY")
    pair.check("SETRANGE", "k", "0", "")
    pair.check("SETRANGE", "k", "100", "")
    pair.check("SETRANGE", "k", "7", "tail-beyond")
    pair.check("GET", "k")
    pair.check("SET", "n", "1234")
    pair.check("SETRANGE", "n", "1", "9")
    pair.check("INCR", "n")


@pytest.mark.parametrize("offset", ["-1", "abc", "536870912", "536870911", "9223372036854775807", "1.5"])
def test_setrange_refuses_bad_offsets_and_oversized_results(pair, offset):
    pair.check("SETRANGE", "k", offset, "ab")
    pair.check("SETRANGE", "k", offset, "")
    pair.check("EXISTS", "k")
    pair.check("SET", "s", "x")
    pair.check("SETRANGE", "s", offset, "ab")
    pair.check("SETRANGE", "s", offset, "")
    pair.check("GET", "s")


def test_setrange_keeps_ttl_and_skips_identical_writes(c):
    run(c, "SET", "k", "abcdef", "EX", "100")
    when = c.db.expires[b"k"]
    effects(c)
    assert run(c, "SETRANGE", "k", "2", "cd") == 6
    assert effects(c) == []
    assert run(c, "SETRANGE", "k", "2", "XY") == 6
    assert run(c, "SETRANGE", "z", "2", "Q") == 3
    assert c.db.data[b"z"] == b"\x00\x00Q"
    assert effects(c) == [[b"SETRANGE", b"k", b"2", b"XY"], [b"SETRANGE", b"z", b"2", b"Q"]]
    assert c.db.data[b"k"] == b"abXYef" and c.db.expires[b"k"] == when


# --- LCS ---------------------------------------------------------------------------------------

LCS_PAIRS = [
    ("ohmytext", "mynewtext"), ("", ""), ("abc", ""), ("abc", "abc"), ("abcdef", "fedcba"),
    ("aaaa", "aa"), ("xyzabcxyz", "abc"), ("abab", "baba"), ("rosettacode", "raisethysword"),
    ("thisisatest", "testing123testing"), ("a" * 50 + "b" * 50, "b" * 30 + "a" * 70),
]


@pytest.mark.parametrize("a,b", LCS_PAIRS)
def test_lcs_matches_redis_in_every_form(pair, a, b):
    pair.check("MSET", "a", a or "x", "b", b or "x")
    if not a:
        pair.check("DEL", "a")
    if not b:
        pair.check("DEL", "b")
    pair.check("LCS", "a", "b")
    pair.check("LCS", "b", "a")
    pair.check("LCS", "a", "b", "LEN")
    pair.check("LCS", "a", "b", "IDX")
    pair.check("LCS", "a", "b", "IDX", "WITHMATCHLEN")
    pair.check("LCS", "a", "b", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN")
    pair.check("LCS", "b", "a", "idx", "minmatchlen", "-5")


@pytest.mark.parametrize("args", [
    ("LEN", "IDX"), ("FOO",), ("MINMATCHLEN",), ("MINMATCHLEN", "x"), ("IDX", "MINMATCHLEN", "1.5"),
    ("LEN", "LEN"),
])
def test_lcs_option_errors_match_redis(pair, args):
    pair.check("MSET", "a", "ohmytext", "b", "mynewtext")
    pair.check("LCS", "a", "b", *args)


def test_lcs_refuses_tables_larger_than_proto_max_bulk_len(c):
    c.ks.proto_max_bulk_len = 1024 * 1024
    run(c, "MSET", "a", "x" * 600, "b", "y" * 600)
    with pytest.raises(CommandError) as e:
        run(c, "LCS", "a", "b")
    assert e.value.text == errors.LCS_TOO_BIG


def test_lcs_of_long_strings_is_fast_and_exact(pair):
    import random
    rnd = random.Random(7)
    a = "".join(rnd.choice("ACGT") for _ in range(2000))
    b = "".join(rnd.choice("ACGT") for _ in range(2000))
    pair.check("MSET", "a", a, "b", b)
    pair.check("LCS", "a", "b", "LEN")
    pair.check("LCS", "a", "b")
    pair.check("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN")


# --- arity --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("GET",), ("GET", "a", "b"), ("SET", "a"), ("SETNX", "a"), ("SETEX", "a", "1"), ("PSETEX", "a", "1"),
    ("MGET",), ("MSET", "a"), ("GETSET", "a"), ("GETDEL",), ("GETEX",), ("APPEND", "a"), ("STRLEN",),
    ("INCR",), ("DECR", "a", "b"), ("INCRBY", "a"), ("DECRBY", "a"), ("INCRBYFLOAT", "a"),
    ("GETRANGE", "a", "1"), ("SUBSTR", "a"), ("SETRANGE", "a", "1"), ("LCS", "a"),
])
def test_wrong_arity_errors_match_redis(pair, args):
    pair.check(*args)


def test_setrange_and_append_without_change_still_touch_watched_keys_like_redis(c):
    run(c, "SET", "k", "abc")
    seen = []
    c.ks.watchers.append(lambda db, key: seen.append(key))
    run(c, "SETRANGE", "k", "0", "ab")
    run(c, "APPEND", "k", "")
    assert seen == [b"k", b"k"]
    assert effects(c) == [[b"SET", b"k", b"abc"]]
