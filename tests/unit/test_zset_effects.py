"""Sorted sets in the engine: effects (what the log replays), 7.2-only behaviour, encodings, pop_generic."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors
from engine.commands.zset import MAX, MIN, pop_generic
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.reply import NULL_ARRAY, ZERO
from engine.session import Session
from tests.support import run
from tests.support import take_effects as effects


@pytest.fixture
def c():
    return Session(Keyspace())


def replay(argvs) -> Session:
    s = Session(Keyspace())
    for argv in argvs:
        run(s, *argv)
    return s


def test_zadd_incr_and_zincrby_journal_the_resulting_score(c):
    run(c, "ZADD", "z", "0.1", "a")
    effects(c)
    run(c, "ZINCRBY", "z", "0.2", "a")
    run(c, "ZADD", "z", "INCR", "1e-16", "a")
    run(c, "ZADD", "z", "INCR", "1e-17", "a")  # too small to change the double: nothing to record
    got = effects(c)
    assert got == [[b"ZADD", b"z", b"0.30000000000000004", b"a"], [b"ZADD", b"z", b"%.17g" % (0.1 + 0.2 + 1e-16), b"a"]]
    assert replay([[b"ZADD", b"z", b"0.1", b"a"]] + got).db.data[b"z"].score(b"a") == 0.1 + 0.2 + 1e-16


def test_a_zadd_that_changes_nothing_records_nothing(c):
    run(c, "ZADD", "z", "1", "a")
    effects(c)
    assert run(c, "ZADD", "z", "1", "a") == ZERO  # (the one-pair path answers pre-encoded)
    assert run(c, "ZADD", "z", "NX", "5", "a") == 0
    assert run(c, "ZADD", "z", "GT", "0", "a") == 0
    assert run(c, "ZADD", "z", "XX", "1", "b") == 0
    assert run(c, "ZADD", "z", "INCR", "0", "a") == 1.0
    assert run(c, "ZREM", "z", "nope") == 0
    assert run(c, "ZREMRANGEBYSCORE", "z", "5", "9") == 0
    assert run(c, "ZPOPMIN", "missing") is not None
    assert effects(c) == []
    assert b"b" not in c.db.data


def test_pops_journal_the_count_taken_and_delete_an_emptied_key(c):
    run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    effects(c)
    run(c, "ZPOPMAX", "z")
    run(c, "ZMPOP", "1", "z", "MIN", "COUNT", "10")
    assert effects(c) == [[b"ZPOPMAX", b"z", b"1"], [b"ZPOPMIN", b"z", b"2"]]
    assert b"z" not in c.db.data


def test_pop_generic_serves_the_blocking_commands(c):
    assert pop_generic(c, b"z", MIN, 1) is None
    run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    effects(c)
    assert pop_generic(c, b"z", MAX, 2) == [(b"c", 3.0), (b"b", 2.0)]
    assert pop_generic(c, b"z", MIN, 5) == [(b"a", 1.0)]
    assert effects(c) == [[b"ZPOPMAX", b"z", b"2"], [b"ZPOPMIN", b"z", b"1"]]
    assert b"z" not in c.db.data
    run(c, "SET", "s", "x")
    with pytest.raises(CommandError):
        pop_generic(c, b"s", MIN, 1)


def test_a_failed_command_changes_nothing(c):
    run(c, "ZADD", "z", "inf", "a", "1", "b")
    effects(c)
    for args in (("ZADD", "z", "1", "new", "x", "b"), ("ZADD", "z", "INCR", "-inf", "a"), ("ZINCRBY", "z", "-inf", "a")):
        with pytest.raises(CommandError):
            run(c, *args)
    assert c.db.data[b"z"].items() == [(b"b", 1.0), (b"a", float("inf"))]
    assert effects(c) == []


def test_zincrby_nan_is_refused_in_redis_words(c):
    run(c, "ZADD", "z", "inf", "a")
    with pytest.raises(CommandError) as e:
        run(c, "ZINCRBY", "z", "-inf", "a")
    assert e.value.text == errors.ZSET_NAN == "ERR resulting score is not a number (NaN)"


def test_store_and_range_removals_replay_to_the_same_state(c):
    cmds = [("ZADD", "a", "1", "x", "2", "y", "3", "z"), ("ZADD", "b", "0.5", "y", "7", "w"),
            ("ZUNIONSTORE", "u", "2", "a", "b", "WEIGHTS", "0.1", "3"), ("ZINTERSTORE", "i", "2", "a", "b"),
            ("ZDIFFSTORE", "d", "2", "a", "b"), ("ZRANGESTORE", "r", "a", "(1", "inf", "BYSCORE"),
            ("ZREMRANGEBYRANK", "a", "0", "0"), ("ZREMRANGEBYLEX", "b", "[w", "[w"), ("ZUNIONSTORE", "gone", "1", "nothing")]
    for args in cmds:
        run(c, *args)
    again = replay(effects(c))
    for key in (b"a", b"b", b"u", b"i", b"d", b"r"):
        assert again.db.data[key].items() == c.db.data[key].items()
    assert b"gone" not in again.db.data


def test_zrank_withscore_as_redis_7_2(c):
    run(c, "ZADD", "z", "1", "a", "2.5", "b")
    assert run(c, "ZRANK", "z", "b", "WITHSCORE") == [1, 2.5]
    assert run(c, "ZREVRANK", "z", "b", "withscore") == [0, 2.5]
    assert run(c, "ZRANK", "z", "nope", "WITHSCORE") is NULL_ARRAY
    assert run(c, "ZRANK", "missing", "a", "WITHSCORE") is NULL_ARRAY
    with pytest.raises(CommandError) as e:
        run(c, "ZRANK", "z", "a", "WITHSCORES")
    assert e.value.text == errors.SYNTAX
    with pytest.raises(CommandError) as e:
        run(c, "ZRANK", "z", "a", "WITHSCORE", "x")
    assert e.value.text == errors.WRONG_ARITY.format("zrank")


def test_zadd_of_many_pairs_starts_as_a_skiplist_as_in_7_2(c):
    # 7.2 sizes a new set by the number of pairs given, duplicates included.
    args = []
    for i in range(129):
        args += ["1", "same"]
    run(c, "ZADD", "z", *args)
    assert run(c, "OBJECT", "ENCODING", "z") == b"skiplist"
    run(c, "ZADD", "y", "1", "a", "2", "b")
    assert run(c, "OBJECT", "ENCODING", "y") == b"listpack"


def test_conversion_thresholds_follow_config(c):
    c.ks.limits.zset_max_listpack_entries = 3
    run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert run(c, "OBJECT", "ENCODING", "z") == b"listpack"
    run(c, "ZADD", "z", "1", "a")
    assert run(c, "OBJECT", "ENCODING", "z") == b"listpack"
    run(c, "ZADD", "z", "4", "d")
    assert run(c, "OBJECT", "ENCODING", "z") == b"skiplist"
    run(c, "ZREMRANGEBYRANK", "z", "0", "-2")
    assert run(c, "OBJECT", "ENCODING", "z") == b"skiplist"  # never back
    c.ks.limits.zset_max_listpack_entries = 0
    run(c, "ZADD", "e", "1", "a")
    assert run(c, "OBJECT", "ENCODING", "e") == b"skiplist"


def test_copy_is_independent(c):
    for n in (3, 300):
        run(c, "ZADD", "src", *[x for i in range(n) for x in (str(i), f"m{i}")])
        run(c, "COPY", "src", "dst", "REPLACE")
        run(c, "ZADD", "dst", "-1", "m0", "5", "new")
        assert c.db.data[b"src"].score(b"m0") == 0.0
        assert c.db.data[b"src"].score(b"new") is None
        run(c, "DEL", "src")


def test_every_change_marks_the_key(c):
    touched = []
    c.ks.watchers.append(lambda db, key: touched.append(key))
    run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    for args in (("ZADD", "z", "5", "a"), ("ZINCRBY", "z", "1", "b"), ("ZREM", "z", "c"), ("ZPOPMIN", "z"),
                 ("ZREMRANGEBYSCORE", "z", "-inf", "inf")):
        touched.clear()
        run(c, *args)
        assert touched, args
    assert b"z" not in c.db.data


def test_resp3_pop_shapes(c):
    c.protocol = 3
    run(c, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert run(c, "ZPOPMIN", "z") == [b"a", 1.0]
    assert run(c, "ZPOPMIN", "z", "1") == [[b"b", 2.0]]
    assert run(c, "ZMPOP", "1", "z", "MAX") == [b"z", [[b"c", 3.0]]]
    assert run(c, "ZMPOP", "1", "z", "MAX") is NULL_ARRAY
