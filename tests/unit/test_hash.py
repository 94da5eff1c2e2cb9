"""Hash commands: replies and errors side by side with redis-server, effects in the engine.

Differential tests (``pair.check``) send the same command to Keel and to a
real redis-server and require identical replies, errors included; a small
hash is a listpack on both, whose order Keel keeps, so its replies compare
byte for byte; replies from a hashtable are compared sorted. Engine tests
run the handlers on an in-process ``Keyspace`` and read ``ks.effects``:
what the log and replicas receive.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import Err, run
from tests.support import take_effects as effects

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


@pytest.fixture
def c():
    return Session(Keyspace())


def _big(pair, key="big", n=600):
    args = [x for i in range(n) for x in (f"f{i}", f"v{i}")]
    pair.check("HSET", key, *args)
    assert pair.check("OBJECT", "ENCODING", key) == b"hashtable"


# --- HSET / HMSET / HSETNX / HGET / HMGET -----------------------------------------

def test_hset_counts_new_fields_and_overwrites(pair):
    assert pair.check("HSET", "h", "a", "1", "b", "2") == 2
    assert pair.check("HSET", "h", "a", "10", "c", "3") == 1
    assert pair.check("HSET", "h", "a", "11", "a", "12") == 0
    pair.check("HGETALL", "h")
    pair.check("HGET", "h", "a")
    pair.check("HGET", "h", "nofield")
    pair.check("HGET", "nokey", "a")
    pair.check("HMGET", "h", "a", "x", "c", "a")
    pair.check("HMGET", "nokey", "a", "b")


def test_hmset_replies_ok(pair):
    assert pair.check("HMSET", "h", "a", "1", "b", "") == b"OK"
    pair.check("HGETALL", "h")


def test_hsetnx_sets_only_missing_fields(pair):
    assert pair.check("HSETNX", "h", "a", "1") == 1
    assert pair.check("HSETNX", "h", "a", "2") == 0
    pair.check("HGET", "h", "a")


def test_binary_and_empty_fields_and_values(pair):
    pair.check("HSET", "h", "", "", "\x00\xff", "x\r\ny", "12", "-7")
    pair.check("HGETALL", "h")
    pair.check("HSTRLEN", "h", "12")


@pytest.mark.parametrize("args", [("HSET", "h"), ("HSET", "h", "a"), ("HSET", "h", "a", "1", "b"),
                                  ("HMSET", "h", "a"), ("HMSET", "h", "a", "1", "b"),
                                  ("HSETNX", "h", "a"), ("HGET", "h"), ("HMGET", "h"), ("HDEL", "h"),
                                  ("HLEN",), ("HLEN", "h", "x"), ("HSTRLEN", "h"), ("HEXISTS", "h"),
                                  ("HKEYS",), ("HVALS", "h", "x"), ("HGETALL",), ("HINCRBY", "h", "a"),
                                  ("HINCRBYFLOAT", "h", "a", "1", "2"), ("HRANDFIELD",), ("HSCAN", "h")])
def test_wrong_arity(pair, args):
    assert pair.check(*args).startswith("ERR wrong number of arguments")


@pytest.mark.parametrize("args", [("HSET", "s", "a", "1"), ("HMSET", "s", "a", "1"), ("HSETNX", "s", "a", "1"),
                                  ("HGET", "s", "a"), ("HMGET", "s", "a"), ("HDEL", "s", "a"), ("HLEN", "s"),
                                  ("HSTRLEN", "s", "a"), ("HEXISTS", "s", "a"), ("HKEYS", "s"), ("HVALS", "s"),
                                  ("HGETALL", "s"), ("HINCRBY", "s", "a", "1"), ("HINCRBYFLOAT", "s", "a", "1"),
                                  ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "2"), ("HRANDFIELD", "s", "2", "WITHVALUES"),
                                  ("HSCAN", "s", "0"), ("HSCAN", "s", "0", "bad")])
def test_wrong_type(pair, args):
    pair.check("SET", "s", "x")
    assert pair.check(*args) == Err(errors.WRONGTYPE)
    pair.check("GET", "s")


def test_string_commands_refuse_a_hash(pair):
    pair.check("HSET", "h", "a", "1")
    assert pair.check("GET", "h") == Err(errors.WRONGTYPE)
    assert pair.check("TYPE", "h") == b"hash"


# --- HDEL / HLEN / HEXISTS / HSTRLEN / HKEYS / HVALS -------------------------------

def test_hdel_counts_removed_fields_and_deletes_the_emptied_key(pair):
    pair.check("HSET", "h", "a", "1", "b", "2", "c", "3")
    assert pair.check("HDEL", "h", "a", "x", "a") == 1
    assert pair.check("HDEL", "nokey", "a") == 0
    pair.check("HKEYS", "h")
    assert pair.check("HDEL", "h", "b", "c") == 2
    assert pair.check("EXISTS", "h") == 0


def test_hdel_on_a_hashtable(pair):
    _big(pair)
    assert pair.check("HDEL", "big", "f1", "f2", "nope") == 2
    assert pair.check("HLEN", "big") == 598
    assert pair.check("OBJECT", "ENCODING", "big") == b"hashtable"  # never converts back


def test_counts_and_lengths(pair):
    pair.check("HSET", "h", "a", "hello", "n", "-123456789012")
    for args in (("HLEN", "h"), ("HLEN", "nokey"), ("HEXISTS", "h", "a"), ("HEXISTS", "h", "x"),
                 ("HEXISTS", "nokey", "a"), ("HSTRLEN", "h", "a"), ("HSTRLEN", "h", "n"),
                 ("HSTRLEN", "h", "x"), ("HSTRLEN", "nokey", "a"), ("HKEYS", "h"), ("HVALS", "h"),
                 ("HKEYS", "nokey"), ("HVALS", "nokey"), ("HGETALL", "nokey")):
        pair.check(*args)


def test_listpack_keeps_insertion_order_like_redis(pair):
    pair.check("HSET", "h", "z", "1", "y", "2", "x", "3")
    pair.check("HDEL", "h", "y")
    pair.check("HSET", "h", "y", "4", "z", "5")
    pair.check("HGETALL", "h")
    pair.check("HKEYS", "h")
    pair.check("HVALS", "h")
    pair.check("HSCAN", "h", "0")


def test_hashtable_replies_hold_the_same_pairs(pair):
    _big(pair)
    pair.check("HGETALL", "big", sort=True)
    pair.check("HKEYS", "big", sort=True)
    pair.check("HVALS", "big", sort=True)
    pair.check("HMGET", "big", "f3", "f599", "f600")


def test_resp3_hgetall_is_a_map(keel):
    from tests.support import RespClient
    k = RespClient(keel.port)
    try:
        k.call("HELLO", "3")
        k.call("DEL", "h")
        k.call("HSET", "h", "a", "1", "b", "2")
        k.send_raw(b"*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n")
        assert k.sock.recv(1000) == b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
        k.send_raw(b"*2\r\n$7\r\nHGETALL\r\n$5\r\nnokey\r\n")
        assert k.sock.recv(1000) == b"%0\r\n"
    finally:
        k.call("DEL", "h")
        k.close()


# --- encodings and conversion ----------------------------------------------------

def test_encoding_converts_at_the_entry_limit(pair):
    for i in range(0, 512, 64):
        pair.check("HSET", "h", *[x for j in range(i, i + 64) for x in (f"f{j}", "v")])
    assert pair.check("OBJECT", "ENCODING", "h") == b"listpack"
    pair.check("HSET", "h", "f0", "again")
    assert pair.check("OBJECT", "ENCODING", "h") == b"listpack"
    pair.check("HSET", "h", "f512", "v")
    assert pair.check("OBJECT", "ENCODING", "h") == b"hashtable"


@pytest.mark.parametrize("cmd", [("HSET", "h", "x" * 65, "v"), ("HSET", "h", "f", "v" * 65),
                                 ("HSETNX", "h", "g", "v" * 65), ("HMSET", "h", "a", "b", "c", "d" * 65)])
def test_a_long_field_or_value_converts(pair, cmd):
    pair.check("HSET", "h", "a", "1")
    pair.check("HSET", "h", "ok", "v" * 64)
    assert pair.check("OBJECT", "ENCODING", "h") == b"listpack"
    pair.check(*cmd)
    assert pair.check("OBJECT", "ENCODING", "h") == b"hashtable"
    pair.check("HGETALL", "h", sort=True)


def test_hincrbyfloat_result_too_long_converts(pair):
    pair.check("HSET", "h", "a", "1")
    pair.check("HINCRBYFLOAT", "h", "a", "1e70")
    assert pair.check("OBJECT", "ENCODING", "h") == b"hashtable"


def test_thresholds_follow_config_set(pair):
    pair.check("CONFIG", "SET", "hash-max-listpack-entries", "2")
    pair.check("CONFIG", "SET", "hash-max-listpack-value", "4")
    try:
        pair.check("HSET", "a", "f1", "1", "f2", "2")
        assert pair.check("OBJECT", "ENCODING", "a") == b"listpack"
        pair.check("HSET", "a", "f3", "3")
        assert pair.check("OBJECT", "ENCODING", "a") == b"hashtable"
        pair.check("HSET", "b", "f", "12345")
        assert pair.check("OBJECT", "ENCODING", "b") == b"hashtable"
        pair.check("CONFIG", "SET", "hash-max-ziplist-entries", "0")
        pair.check("HSET", "c", "f", "1")
        assert pair.check("OBJECT", "ENCODING", "c") == b"hashtable"
    finally:
        pair.check("CONFIG", "SET", "hash-max-listpack-entries", "512")
        pair.check("CONFIG", "SET", "hash-max-listpack-value", "64")


def test_hset_naming_more_pairs_than_the_limit_converts_as_7_2_does(c):
    # Redis 7.2 sizes a table from the argument count before it writes,
    # duplicates included (7.0 would stay listpack here): engine-level.
    c.ks.limits.hash_max_listpack_entries = 2
    run(c, "HSET", "h", "a", "1", "a", "2", "a", "3")
    assert run(c, "OBJECT", "ENCODING", "h") == b"hashtable"
    run(c, "HSET", "g", "a", "1", "b", "2")
    assert run(c, "OBJECT", "ENCODING", "g") == b"listpack"


def test_hdel_then_hset_keeps_the_table(c):
    run(c, "HSET", "h", "x" * 100, "1")
    run(c, "HDEL", "h", "x" * 100)
    assert run(c, "EXISTS", "h") == b":0\r\n"
    run(c, "HSET", "h", "x" * 100, "1", "a", "b")
    run(c, "HDEL", "h", "x" * 100)
    assert run(c, "OBJECT", "ENCODING", "h") == b"hashtable"


# --- HINCRBY / HINCRBYFLOAT -------------------------------------------------------

def test_hincrby(pair):
    assert pair.check("HINCRBY", "h", "a", "5") == 5
    assert pair.check("HINCRBY", "h", "a", "-15") == -10
    pair.check("HSET", "h", "big", str(LLONG_MAX - 1))
    assert pair.check("HINCRBY", "h", "big", "1") == LLONG_MAX
    pair.check("HGETALL", "h")


@pytest.mark.parametrize("stored,incr", [("abc", "1"), (" 1", "1"), ("01", "1"), ("1.5", "1"), ("", "1"),
                                         ("1", "x"), ("1", "1.0"), ("1", str(LLONG_MAX + 1)), ("1", ""),
                                         (str(LLONG_MAX), "1"), (str(LLONG_MIN), "-1"), ("-1", str(LLONG_MIN))])
def test_hincrby_errors(pair, stored, incr):
    pair.check("HSET", "h", "a", stored)
    pair.check("HINCRBY", "h", "a", incr)
    pair.check("HGET", "h", "a")
    pair.check("HINCRBY", "nokey", "a", incr)
    pair.check("EXISTS", "nokey")


def test_hincrby_errors_have_redis_words(c):
    run(c, "HSET", "h", "a", "x")
    with pytest.raises(CommandError) as e:
        run(c, "HINCRBY", "h", "a", "1")
    assert e.value.text == errors.HASH_VALUE_NOT_INTEGER
    with pytest.raises(CommandError) as e:
        run(c, "HINCRBYFLOAT", "h", "a", "1")
    assert e.value.text == errors.HASH_VALUE_NOT_FLOAT


@pytest.mark.parametrize("stored,incr", [(None, "0.1"), ("10.5", "0.1"), ("3", "-3"), ("1e3", "1.5e3"),
                                         ("0x10", "1"), ("5", "0x1p-2"), ("  1", "1"), ("abc", "1"),
                                         ("1", "abc"), ("1", "inf"), ("1", "-inf"), ("1", "nan"),
                                         ("inf", "1"), ("1.1e4932", "1.1e4932"), ("1", ""), ("7", "1e-20")])
def test_hincrbyfloat_matches_redis_digits_and_errors(pair, stored, incr):
    if stored is not None:
        pair.check("HSET", "h", "a", stored)
    pair.check("HINCRBYFLOAT", "h", "a", incr)
    pair.check("HGETALL", "h")


# --- HRANDFIELD ------------------------------------------------------------------

def test_hrandfield_missing_key(pair):
    pair.check("HRANDFIELD", "nokey")
    pair.check("HRANDFIELD", "nokey", "3")
    pair.check("HRANDFIELD", "nokey", "-3", "WITHVALUES")


@pytest.mark.parametrize("args", [("x",), ("1.5",), ("",), (str(LLONG_MIN),), (str(LLONG_MAX + 1),),
                                  ("1", "foo"), ("1", "WITHVALUES", "x"), (str(LLONG_MAX), "WITHVALUES"),
                                  (str(-(LLONG_MAX // 2) - 1), "withvalues"), (str(LLONG_MIN), "WITHVALUES")])
def test_hrandfield_bad_arguments(pair, args):
    pair.check("HSET", "h", "a", "1")
    r = pair.check("HRANDFIELD", "h", *args)
    assert isinstance(r, Err)
    assert pair.check("HRANDFIELD", "nokey", *args) == r  # checked before the key


def test_hrandfield_absurd_count_is_refused_in_redis_words(c):
    run(c, "HSET", "h", "a", "1")
    with pytest.raises(CommandError) as e:
        run(c, "HRANDFIELD", "h", str(LLONG_MIN))
    assert e.value.text == errors.COUNT_OUT_OF_RANGE


@pytest.mark.parametrize("big", [False, True])
def test_hrandfield_whole_hash_when_count_covers_it(pair, big):
    if big:
        _big(pair, "h")
    else:
        pair.check("HSET", "h", "a", "1", "b", "2", "c", "3")
    n = pair.check("HLEN", "h")
    pair.check("HRANDFIELD", "h", str(n), "WITHVALUES", sort=big)
    pair.check("HRANDFIELD", "h", str(n + 5), sort=big)
    assert pair.check("HRANDFIELD", "h", "0") == []


@pytest.mark.parametrize("big", [False, True])
def test_hrandfield_distinct_and_repeating(c, big):
    n = 700 if big else 20
    run(c, "HSET", "h", *[x for i in range(n) for x in (f"f{i}", f"v{i}")])
    assert run(c, "OBJECT", "ENCODING", "h") == (b"hashtable" if big else b"listpack")
    fields = set(run(c, "HKEYS", "h"))
    for count in (1, 2, n // 4, n // 2, n - 1):
        got = run(c, "HRANDFIELD", "h", str(count))
        assert len(got) == count and len(set(got)) == count and set(got) <= fields
    got = run(c, "HRANDFIELD", "h", str(-3 * n), "WITHVALUES")
    assert len(got) == 6 * n
    assert all(v == b"v" + f[1:] for f, v in zip(got[::2], got[1::2]))
    assert len(set(got[::2])) < n * 3  # repeats
    assert run(c, "HRANDFIELD", "h") in fields
    if not big:  # a listpack's distinct sample keeps the encoding's order, as Redis's does
        order = run(c, "HKEYS", "h")
        got = run(c, "HRANDFIELD", "h", "7")
        assert got == sorted(got, key=order.index)


def test_hrandfield_resp3_pairs(c):
    run(c, "HSET", "h", "a", "1", "b", "2")
    c.protocol = 3
    assert run(c, "HRANDFIELD", "h", "5", "WITHVALUES") == [[b"a", b"1"], [b"b", b"2"]]
    got = run(c, "HRANDFIELD", "h", "-4", "WITHVALUES")
    assert len(got) == 4 and all(p in ([b"a", b"1"], [b"b", b"2"]) for p in got)
    assert run(c, "HRANDFIELD", "h", "-2") in ([b"a", b"a"], [b"a", b"b"], [b"b", b"a"], [b"b", b"b"])


def test_hrandfield_single_field(pair):
    pair.check("HSET", "h", "only", "1")
    pair.check("HRANDFIELD", "h")
    pair.check("HRANDFIELD", "h", "-3", "WITHVALUES")
    pair.check("HRANDFIELD", "h", "1")


# --- HSCAN -----------------------------------------------------------------------

def test_hscan_listpack_is_one_call(pair):
    pair.check("HSET", "h", "a1", "1", "b2", "2", "a3", "3")
    pair.check("HSCAN", "h", "0")
    pair.check("HSCAN", "h", "0", "COUNT", "1")
    pair.check("HSCAN", "h", "0", "MATCH", "a*")
    pair.check("HSCAN", "h", "12345", "match", "*3", "count", "100")
    pair.check("HSCAN", "nokey", "0")
    pair.check("HSCAN", "nokey", "0", "bad")


@pytest.mark.parametrize("opts", [("COUNT", "0"), ("COUNT", "-1"), ("COUNT", "x"), ("MATCH",), ("TYPE", "string"),
                                  ("FOO", "1"), ("COUNT", "1", "MATCH")])
def test_hscan_bad_options(pair, opts):
    pair.check("HSET", "h", "a", "1")
    assert isinstance(pair.check("HSCAN", "h", "0", *opts), Err)


@pytest.mark.parametrize("cursor", ["x", "-", "1.5", "18446744073709551616"])
def test_hscan_bad_cursor(pair, cursor):
    pair.check("HSET", "h", "a", "1")
    assert pair.check("HSCAN", "h", cursor) == Err(errors.INVALID_CURSOR)
    assert pair.check("HSCAN", "nokey", cursor) == Err(errors.INVALID_CURSOR)


def test_hscan_hashtable_walks_every_field_once_while_unchanged(c):
    n = 1000
    run(c, "HSET", "h", *[x for i in range(n) for x in (f"f{i}", f"v{i}")])
    seen = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, flat = run(c, "HSCAN", "h", cursor, "COUNT", "50")
        calls += 1
        for f, v in zip(flat[::2], flat[1::2]):
            assert f not in seen
            seen[f] = v
        if cursor == b"0":
            break
    assert seen == run(c, "HGETALL", "h")
    assert 15 <= calls <= 30  # COUNT is honoured, not one call for everything
    cursor, flat = run(c, "HSCAN", "h", "0", "MATCH", "f1?", "COUNT", "2000")
    assert cursor == b"0" and sorted(flat[::2]) == sorted(b"f1%d" % i for i in range(10))


def test_hscan_keeps_fields_present_throughout(c):
    run(c, "HSET", "h", *[x for i in range(500) for x in (f"k{i}", "v")])
    seen = set()
    cursor = b"0"
    i = 0
    while True:
        cursor, flat = run(c, "HSCAN", "h", cursor, "COUNT", "20")
        seen.update(flat[::2])
        run(c, "HSET", "h", f"new{i}", "v")  # the table grows (and is rebuilt) meanwhile
        run(c, "HDEL", "h", f"k{499 - i}")
        i += 1
        if cursor == b"0":
            break
    assert {b"k%d" % j for j in range(500 - i)} <= seen


# --- effects ---------------------------------------------------------------------

def test_effects_of_writes(c):
    run(c, "HSET", "h", "a", "1")
    run(c, "HMSET", "h", "b", "2")
    assert effects(c) == [[b"HSET", b"h", b"a", b"1"], [b"HMSET", b"h", b"b", b"2"]]
    run(c, "HSETNX", "h", "a", "9")
    assert effects(c) == []
    run(c, "HSETNX", "h", "c", "3")
    assert effects(c) == [[b"HSETNX", b"h", b"c", b"3"]]
    run(c, "HDEL", "h", "x", "y")
    run(c, "HDEL", "nokey", "a")
    assert effects(c) == []
    run(c, "HDEL", "h", "x", "a")
    assert effects(c) == [[b"HDEL", b"h", b"x", b"a"]]
    run(c, "HINCRBY", "h", "n", "0")
    assert effects(c) == [[b"HINCRBY", b"h", b"n", b"0"]]
    run(c, "HINCRBYFLOAT", "h", "f", "10.5")
    run(c, "HINCRBYFLOAT", "h", "f", "0.1")
    assert effects(c) == [[b"HSET", b"h", b"f", b"10.5"], [b"HSET", b"h", b"f", b"10.6"]]


def test_refused_writes_change_and_journal_nothing(c):
    run(c, "HSET", "h", "a", "x", "n", str(LLONG_MAX))
    before = run(c, "HGETALL", "h")
    effects(c)
    for args in (("HINCRBY", "h", "a", "1"), ("HINCRBY", "h", "n", "1"), ("HINCRBYFLOAT", "h", "a", "1"),
                 ("HINCRBYFLOAT", "h", "b", "inf"), ("HINCRBY", "new", "a", "x"), ("HINCRBYFLOAT", "new", "a", "x"),
                 ("HSET", "h", "a")):
        with pytest.raises(CommandError):
            run(c, *args)
    assert run(c, "HGETALL", "h") == before and run(c, "EXISTS", "new") == b":0\r\n"
    assert effects(c) == []


def test_reads_journal_nothing(c):
    run(c, "HSET", "h", "a", "1")
    effects(c)
    for args in (("HGET", "h", "a"), ("HMGET", "h", "a"), ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"),
                 ("HLEN", "h"), ("HSTRLEN", "h", "a"), ("HEXISTS", "h", "a"), ("HRANDFIELD", "h", "-2"),
                 ("HSCAN", "h", "0")):
        run(c, *args)
    assert effects(c) == []


def test_replaying_effects_rebuilds_the_same_hash(c):
    run(c, "HSET", "h", "a", "1", "b", "2")
    run(c, "HINCRBYFLOAT", "h", "a", "0.1")
    run(c, "HINCRBY", "h", "b", "3")
    run(c, "HDEL", "h", "zz", "b")
    run(c, "HSETNX", "h", "c", "x")
    log = effects(c)
    replica = Session(Keyspace())
    for argv in log:
        run(replica, *argv)
    assert run(replica, "HGETALL", "h") == run(c, "HGETALL", "h")


def test_writes_mark_the_key_changed(c):
    seen = []
    c.ks.watchers.append(lambda db, key: seen.append(key))
    run(c, "HSET", "h", "a", "1")
    run(c, "HSET", "h", "b", "1")
    run(c, "HINCRBY", "h", "b", "1")
    run(c, "HDEL", "h", "a")
    run(c, "HDEL", "h", "b")
    assert seen == [b"h"] * 5
    seen.clear()
    run(c, "HDEL", "h", "zz")
    run(c, "HGET", "h", "a")
    assert seen == []


def test_copy_is_independent(c):
    run(c, "HSET", "h", "a", "1")
    run(c, "HSET", "big", *[x for i in range(600) for x in (f"f{i}", "v")])
    run(c, "COPY", "h", "h2")
    run(c, "COPY", "big", "big2")
    run(c, "HSET", "h", "a", "2")
    run(c, "HDEL", "big", "f0")
    assert run(c, "HGET", "h2", "a") == b"1"
    assert run(c, "HEXISTS", "big2", "f0") == b":1\r\n"
    assert run(c, "OBJECT", "ENCODING", "big2") == b"hashtable"


def test_resp3_replies_match_redis(pair):
    pair.both("HELLO", "3")
    pair.check("HSET", "h", "a", "1", "b", "2")
    pair.check("HRANDFIELD", "h", "5", "WITHVALUES")
    pair.check("HRANDFIELD", "h", "2")
    pair.check("HGETALL", "h")
    pair.check("HGETALL", "nokey")
    pair.check("HRANDFIELD", "nokey")
    pair.check("HRANDFIELD", "nokey", "2", "WITHVALUES")
    pair.check("HSCAN", "h", "0")
    pair.check("HMGET", "h", "a", "zz")
