"""List commands answer as redis-server does: replies, errors, nil forms.

Side by side with a real redis-server (``pair``) for everything 7.0 and 7.2
agree on; the RESP2 difference between a nil bulk (``$-1``) and a nil array
(``*-1``) is compared on the raw bytes, since hiredis reads both as None.
"""

from __future__ import annotations

import pytest

from tests.support import encode

LLONG_MIN = "-9223372036854775808"
LLONG_MAX = "9223372036854775807"


def raw(client, *args) -> bytes:
    """The exact bytes of one short reply."""
    client.sock.sendall(encode(args))
    return client.sock.recv(65536)


def raw_check(pair, *args) -> bytes:
    k, r = raw(pair.keel, *args), raw(pair.ref, *args)
    assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
    return k


@pytest.fixture
def filled(pair):
    pair.check("RPUSH", "l", "a", "b", "c", "a", "d", "a")
    pair.check("SET", "s", "x")
    return pair


def test_pushes_return_the_length_and_keep_order(pair):
    pair.check("LPUSH", "l", "a", "b", "c")
    pair.check("RPUSH", "l", "x", "y")
    pair.check("LRANGE", "l", 0, -1)
    pair.check("LPUSHX", "l", "z")
    pair.check("RPUSHX", "l", "w", "v")
    pair.check("LPUSHX", "missing", "z")
    pair.check("RPUSHX", "missing", "z")
    pair.check("EXISTS", "missing")
    pair.check("LRANGE", "l", 0, -1)
    pair.check("LLEN", "l")
    pair.check("LLEN", "missing")
    pair.check("TYPE", "l")


def test_pops_without_and_with_count(filled):
    p = filled
    p.check("LPOP", "l")
    p.check("RPOP", "l")
    p.check("LPOP", "l", 2)
    p.check("RPOP", "l", 1)
    p.check("LPOP", "l", 100)
    p.check("EXISTS", "l")
    p.check("LPOP", "l")


def test_pop_nil_forms_are_redis_exactly(filled):
    p = filled
    assert raw_check(p, "LPOP", "missing") == b"$-1\r\n"
    assert raw_check(p, "LPOP", "missing", 2) == b"*-1\r\n"
    assert raw_check(p, "RPOP", "missing", 0) == b"*-1\r\n"
    assert raw_check(p, "LPOP", "l", 0) == b"*0\r\n"
    raw_check(p, "LMPOP", 1, "missing", "LEFT")
    raw_check(p, "LPOS", "missing", "a")
    raw_check(p, "LPOS", "missing", "a", "COUNT", 0)
    raw_check(p, "LINDEX", "missing", 0)
    raw_check(p, "LMOVE", "missing", "x", "LEFT", "LEFT")
    raw_check(p, "RPOPLPUSH", "missing", "x")
    raw_check(p, "LRANGE", "missing", 0, -1)


def test_pop_count_errors(filled):
    p = filled
    for bad in ("-1", "x", LLONG_MIN, "1.5"):
        p.check("LPOP", "l", bad)
        p.check("RPOP", "missing", bad)
    p.check("LPOP", "l", 1, 2)
    p.check("RPOP", "s")
    p.check("LPOP", "s", 0)
    p.check("LPOP", "l", LLONG_MAX)


def test_wrong_type_everywhere(filled):
    p = filled
    for args in (("LPUSH", "s", "a"), ("RPUSH", "s", "a"), ("LPUSHX", "s", "a"), ("RPUSHX", "s", "a"),
                 ("LLEN", "s"), ("LRANGE", "s", 0, 1), ("LINDEX", "s", 0), ("LSET", "s", 0, "a"),
                 ("LINSERT", "s", "BEFORE", "a", "b"), ("LREM", "s", 0, "a"), ("LTRIM", "s", 0, 1),
                 ("LPOS", "s", "a"), ("RPOPLPUSH", "s", "l"), ("RPOPLPUSH", "l", "s"),
                 ("LMOVE", "l", "s", "LEFT", "RIGHT"), ("LMPOP", 2, "s", "l", "LEFT"), ("LPOP", "s", 2)):
        p.check(*args)
    p.check("LRANGE", "l", 0, -1)  # nothing moved by a refused LMOVE
    p.check("GET", "s")


def test_arity_errors(pair):
    for args in (("LPUSH", "l"), ("RPUSH", "l"), ("LPUSHX", "l"), ("LPOP",), ("LLEN",), ("LLEN", "a", "b"),
                 ("LRANGE", "l", 0), ("LINDEX", "l"), ("LSET", "l", 0), ("LINSERT", "l", "BEFORE", "a"),
                 ("LREM", "l", 0), ("LTRIM", "l", 0), ("LPOS", "l"), ("RPOPLPUSH", "a"),
                 ("LMOVE", "a", "b", "LEFT"), ("LMPOP", 1, "l")):
        pair.check(*args)


def test_lrange_and_lindex_indexes(filled):
    p = filled
    for start, stop in ((0, -1), (1, 3), (-3, -1), (-100, 100), (5, 2), (6, 10), (-1, -2), (0, 0),
                        (LLONG_MIN, LLONG_MAX), (LLONG_MAX, LLONG_MIN)):
        p.check("LRANGE", "l", start, stop)
    for i in (0, 5, 6, -1, -6, -7, LLONG_MIN, LLONG_MAX):
        p.check("LINDEX", "l", i)
    for bad in ("x", "1.0", "", "99999999999999999999"):
        p.check("LRANGE", "l", bad, 1)
        p.check("LRANGE", "missing", 0, bad)
        p.check("LINDEX", "l", bad)
    p.check("LINDEX", "missing", "x")


def test_lset(filled):
    p = filled
    p.check("LSET", "l", 0, "first")
    p.check("LSET", "l", -1, "last")
    p.check("LSET", "l", 6, "x")
    p.check("LSET", "l", -7, "x")
    p.check("LSET", "l", "x", "x")
    p.check("LSET", "missing", 0, "x")
    p.check("LSET", "missing", "x", "x")
    p.check("LRANGE", "l", 0, -1)


def test_linsert(filled):
    p = filled
    p.check("LINSERT", "l", "BEFORE", "a", "new")
    p.check("LINSERT", "l", "after", "d", "new2")
    p.check("LINSERT", "l", "AFTER", "zz", "x")
    p.check("LINSERT", "l", "middle", "a", "x")
    p.check("LINSERT", "missing", "BEFORE", "a", "x")
    p.check("LINSERT", "missing", "middle", "a", "x")
    p.check("LRANGE", "l", 0, -1)


def test_lrem(filled):
    p = filled
    p.check("LREM", "l", 1, "a")
    p.check("LRANGE", "l", 0, -1)
    p.check("LREM", "l", -1, "a")
    p.check("LRANGE", "l", 0, -1)
    p.check("RPUSH", "l", "a", "a", "b", "a")
    p.check("LREM", "l", 0, "a")
    p.check("LRANGE", "l", 0, -1)
    p.check("LREM", "l", 0, "nope")
    p.check("LREM", "l", "x", "a")
    p.check("LREM", "missing", 1, "a")
    p.check("LREM", "l", LLONG_MIN, "b")
    p.check("LREM", "l", 0, "c")
    p.check("EXISTS", "l")


def test_ltrim(pair):
    for start, stop in ((1, -2), (0, -1), (-100, 100), (2, 1), (10, 20), (-2, -1), (LLONG_MIN, LLONG_MAX)):
        pair.check("DEL", "l")
        pair.check("RPUSH", "l", *"abcdef")
        pair.check("LTRIM", "l", start, stop)
        pair.check("LRANGE", "l", 0, -1)
        pair.check("EXISTS", "l")
    pair.check("LTRIM", "missing", 0, 1)
    pair.check("LTRIM", "l", "x", 1)
    pair.check("LTRIM", "l", 0, "y")


def test_lpos(pair):
    pair.check("RPUSH", "l", *"abcabcabca")
    for opts in ((), ("RANK", 1), ("RANK", 2), ("RANK", -1), ("RANK", -3), ("RANK", 9), ("RANK", -9),
                 ("COUNT", 0), ("COUNT", 2), ("COUNT", 0, "RANK", -2), ("MAXLEN", 3), ("MAXLEN", 4),
                 ("COUNT", 0, "MAXLEN", 5, "RANK", -1), ("COUNT", 1), ("MAXLEN", 0), ("RANK", LLONG_MAX),
                 ("RANK", 1, "RANK", 2), ("rank", 2, "count", 10)):
        pair.check("LPOS", "l", "a", *opts)
        pair.check("LPOS", "l", "zz", *opts)
    for bad in (("RANK", 0), ("RANK", "x"), ("COUNT", -1), ("COUNT", "x"), ("MAXLEN", -1), ("MAXLEN", "x"),
                ("RANK",), ("FOO", 1), ("COUNT", 1, "MAXLEN"), ("COUNT", LLONG_MIN)):
        pair.check("LPOS", "l", "a", *bad)
        pair.check("LPOS", "missing", "a", *bad)


def test_lpos_rank_llong_min_is_refused_as_in_72(keel):
    # 7.0 takes RANK -9223372036854775808 (and negates it: undefined); 7.2
    # limits RANK to -LONG_MAX..LONG_MAX.
    k = keel.client()
    k.call("FLUSHALL")
    k.call("RPUSH", "l", "a")
    assert k.call("LPOS", "l", "a", "RANK", LLONG_MIN) == (
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    k.close()


def test_lmove_and_rpoplpush(pair):
    pair.check("RPUSH", "a", 1, 2, 3)
    for src_end in ("LEFT", "RIGHT"):
        for dst_end in ("LEFT", "RIGHT"):
            pair.check("LMOVE", "a", "b", src_end, dst_end)
            pair.check("LRANGE", "b", 0, -1)
    pair.check("RPUSH", "a", 4, 5)
    pair.check("LMOVE", "a", "a", "LEFT", "RIGHT")
    pair.check("LRANGE", "a", 0, -1)
    pair.check("RPOPLPUSH", "a", "a")
    pair.check("RPOPLPUSH", "a", "c")
    pair.check("LRANGE", "a", 0, -1)
    pair.check("LMOVE", "a", "b", "UP", "LEFT")
    pair.check("LMOVE", "a", "b", "LEFT", "DOWN")
    pair.check("LMOVE", "missing", "b", "UP", "LEFT")
    pair.check("DEL", "b", "c")
    pair.check("RPUSH", "one", "x")
    pair.check("LMOVE", "one", "one", "LEFT", "LEFT")
    pair.check("RPOPLPUSH", "one", "two")
    pair.check("EXISTS", "one")
    pair.check("LRANGE", "two", 0, -1)


def test_lmpop(pair):
    pair.check("RPUSH", "b", 1, 2, 3, 4)
    pair.check("LMPOP", 2, "a", "b", "LEFT")
    pair.check("LMPOP", 2, "a", "b", "RIGHT", "COUNT", 2)
    pair.check("LMPOP", 1, "b", "left", "count", 10)
    pair.check("LMPOP", 2, "a", "b", "LEFT")
    pair.check("RPUSH", "c", 1)
    for bad in ((0, "c", "LEFT"), (-1, "c", "LEFT"), ("x", "c", "LEFT"), (2, "c", "LEFT"), (1, "c", "MIDDLE"),
                (1, "c", "LEFT", "COUNT", 0), (1, "c", "LEFT", "COUNT", -1), (1, "c", "LEFT", "COUNT", "x"),
                (1, "c", "LEFT", "COUNT", 1, "COUNT", 2), (1, "c", "LEFT", "FOO"), (1, "c", "LEFT", "COUNT"),
                (LLONG_MIN, "c", "LEFT"), (LLONG_MAX, "c", "LEFT"), (1, "c", "LEFT", "COUNT", LLONG_MIN)):
        pair.check("LMPOP", *bad)
    pair.check("LMPOP", 1, "c", "LEFT", "COUNT", LLONG_MAX)


def test_a_large_list_answers_alike(pair):
    values = [f"element:{i}" for i in range(3000)]
    for i in range(0, 3000, 500):
        pair.check("RPUSH", "big", *values[i:i + 500])
        pair.check("LPUSH", "big", *values[i:i + 250])
    pair.check("LLEN", "big")
    for i in (0, 1, 700, 1999, 2000, 3749, -1, -2000):
        pair.check("LINDEX", "big", i)
        pair.check("LSET", "big", i, f"set{i}")
    pair.check("LRANGE", "big", 1000, 1100)
    pair.check("LRANGE", "big", -1100, -1000)
    pair.check("LINSERT", "big", "BEFORE", "element:1500", "ins")
    pair.check("LINSERT", "big", "AFTER", "element:2999", "ins2")
    pair.check("LREM", "big", 2, "element:5")
    pair.check("LREM", "big", -3, "element:7")
    pair.check("LPOS", "big", "element:100", "RANK", -1, "COUNT", 0)
    pair.check("LTRIM", "big", 100, -100)
    pair.check("LPOP", "big", 500)
    pair.check("RPOP", "big", 500)
    pair.check("LRANGE", "big", 0, -1)
    pair.check("LMPOP", 1, "big", "RIGHT", "COUNT", 5000)
    pair.check("EXISTS", "big")


def test_big_elements_in_a_list(pair):
    big = "x" * 10000
    pair.check("RPUSH", "l", "a", big, "b")
    pair.check("LPUSH", "l", big)
    pair.check("LINSERT", "l", "AFTER", "a", big + "y")
    pair.check("LSET", "l", 0, "small")
    pair.check("LSET", "l", -1, big + "z")
    pair.check("LRANGE", "l", 0, -1)
    pair.check("LREM", "l", 0, big)
    pair.check("LRANGE", "l", 0, -1)


@pytest.mark.parametrize("name", ["lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "llen", "lrange", "lindex",
                                  "lset", "linsert", "lrem", "ltrim", "lpos", "rpoplpush", "lmove", "lmpop"])
def test_command_info_matches_redis(pair, name):
    # name, arity, flags, first/last/step keys, ACL categories (key specs aside:
    # LMPOP's keynum spec is the command table's to describe)
    keel, ref = pair.keel.call("COMMAND", "INFO", name)[0], pair.ref.call("COMMAND", "INFO", name)[0]
    assert keel[:7] == ref[:7]


@pytest.mark.parametrize("args", [("LMPOP", 2, "a", "b", "LEFT"), ("LMPOP", 1, "a", "RIGHT", "COUNT", 3),
                                  ("RPOPLPUSH", "a", "b"), ("LMOVE", "a", "b", "LEFT", "RIGHT"), ("LPUSH", "a", "x")])
def test_command_getkeys_matches_redis(pair, args):
    pair.check("COMMAND", "GETKEYS", *args)
