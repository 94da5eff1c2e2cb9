"""The keyspace events of every command, in order, engine-level.

Each script is a sequence of ``COMMAND args -> events`` lines run on a fresh
keyspace with every class on (``KEAn``): the events a line must announce,
``event:key`` (``@db`` outside database 0), nothing after ``->`` for none,
``!`` for a command that must fail (and announce nothing). The sequences
are those redis-server 7.0 sends for the same lines
(``tests/integration/test_notify_redis.py`` compares the two live); where
Keel differs on purpose it is said next to the line.
"""

from __future__ import annotations

import pytest

from engine.errors import CommandError
from tests.support import run
from tests.unit.test_notify import session


def check(script: str, flags: str = "KEAn") -> None:
    c, seen = session(flags)
    for lineno, line in enumerate(script.strip().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        command, _, expected = line.partition("->")
        args = [b"" if a == "''" else a.encode() for a in command.split()]
        expected = expected.strip()
        seen.clear()
        if expected == "!":
            with pytest.raises(CommandError):
                run(c, *args)
            assert seen == [], f"line {lineno} {command.strip()!r}"
            continue
        run(c, *args)
        assert " ".join(seen) == expected, f"line {lineno} {command.strip()!r}"


# --- strings ($) ------------------------------------------------------------------

SET_VARIANTS = """
        SET k v                 -> new:k set:k
        SET k v2                -> set:k
        SET k v EX 100          -> set:k expire:k
        SET k v PX 100 GET      -> set:k expire:k
        SET k v KEEPTTL         -> set:k
        SET k v NX              ->
        SET k v XX              -> set:k
        SET n v XX              ->
        SET k v XX GET          -> set:k
        SETNX k v               ->
        SETNX k2 v              -> new:k2 set:k2
        SETEX k3 100 v          -> new:k3 set:k3 expire:k3
        PSETEX k4 100 v         -> new:k4 set:k4 expire:k4
        SETEX k3 0 v            -> !
        GETSET k x              -> set:k
        GETSET g y              -> new:g set:g
        GETDEL k                -> del:k
        GETDEL k                ->
    """


def test_set_and_its_variants():
    check(SET_VARIANTS)


SET_PAST_TIME = """
        SET k v                 -> new:k set:k
        SET k v PXAT 1          -> del:k
        SET j v EXAT 1          ->
    """


def test_set_with_a_time_already_past_deletes_the_key():
    # Keel deletes the key at once (as GETEX and EXPIRE do) where Redis 7.0
    # stores it and lets it expire: announced as GETEX announces it.
    check(SET_PAST_TIME)


GETEX = """
        SET k v                 -> new:k set:k
        GETEX k                 ->
        GETEX k EX 100          -> expire:k
        GETEX k PERSIST         -> persist:k
        GETEX k PERSIST         ->
        GETEX k PXAT 1          -> del:k
        GETEX nokey EX 10       ->
    """


def test_getex():
    check(GETEX)


MSET = """
        MSET a 1 b 2 a 3        -> new:a set:a new:b set:b set:a
        MSETNX a 1 c 2          ->
        MSETNX c 1 d 2          -> new:c set:c new:d set:d
    """


def test_mset_announces_each_key_in_order():
    check(MSET)


APPEND_SETRANGE = """
        SET k abc               -> new:k set:k
        APPEND k ''             -> append:k
        APPEND n ''             -> new:n append:n
        APPEND k de             -> append:k
        SETRANGE k 0 ''         ->
        SETRANGE m 0 ''         ->
        SETRANGE k 5 ''         ->
        SETRANGE k 0 a          -> setrange:k
        SETRANGE k 1 X          -> setrange:k
        SETRANGE k 1 X          -> setrange:k
        SETRANGE p 2 abc        -> new:p setrange:p
        SETRANGE p 9 z          -> setrange:p
    """


def test_append_and_setrange():
    check(APPEND_SETRANGE)


COUNTERS = """
        INCR i                  -> new:i incrby:i
        INCRBY i 5              -> incrby:i
        DECR i                  -> incrby:i
        DECRBY i 2              -> incrby:i
        INCRBY k2 0             -> new:k2 incrby:k2
        INCRBYFLOAT f 1.5       -> new:f incrbyfloat:f
        INCRBYFLOAT f 1         -> incrbyfloat:f
        SET s abc               -> new:s set:s
        INCR s                  -> !
        INCRBYFLOAT s 1         -> !
    """


def test_counters():
    check(COUNTERS)


BITS = """
        SETBIT b 3 1            -> new:b setbit:b
        SETBIT b 3 1            ->
        SETBIT b 100 0          -> setbit:b
        SETBIT b 3 0            -> setbit:b
        SETBIT b 3 0            ->
        BITFIELD b SET u8 0 5   -> setbit:b
        BITFIELD b SET u8 0 5   ->
        BITFIELD b GET u8 0     ->
        BITFIELD b SET u8 200 0 -> setbit:b
        BITFIELD b OVERFLOW FAIL INCRBY u8 400 300 ->
        BITFIELD c INCRBY u8 0 1 OVERFLOW FAIL INCRBY u8 0 300 -> new:c setbit:c
        BITFIELD d OVERFLOW FAIL INCRBY u8 0 300 -> new:d
        SET a x                 -> new:a set:a
        BITOP OR dst a          -> new:dst set:dst
        BITOP AND dst empty     -> del:dst
        BITOP AND dst empty     ->
        BITOP NOT dst a         -> new:dst set:dst
    """


def test_setbit_bitfield_and_bitop():
    check(BITS)


# --- generic (g) ------------------------------------------------------------------

DEL = """
        SET a 1                 -> new:a set:a
        SET b 2                 -> new:b set:b
        DEL a b c               -> del:a del:b
        UNLINK b                ->
        SET a 1                 -> new:a set:a
        UNLINK a a              -> del:a
    """


def test_del_and_unlink_announce_each_key_they_removed():
    check(DEL)


RENAME = """
        SET a 1                 -> new:a set:a
        RENAME a b              -> new:b rename_from:a rename_to:b
        SET c 3                 -> new:c set:c
        RENAME b c              -> new:c rename_from:b rename_to:c
        RENAMENX c d            -> new:d rename_from:c rename_to:d
        SET e 1                 -> new:e set:e
        RENAMENX d e            ->
        RENAME d d              ->
        RENAMENX d d            ->
        RENAME zz y             -> !
    """


def test_rename_announces_from_then_to_and_the_destination_new():
    check(RENAME)


MOVE_COPY = """
        SET a 1                 -> new:a set:a
        MOVE a 1                -> new:a@1 move_from:a move_to:a@1
        MOVE a 1                ->
        SET a 1                 -> new:a set:a
        COPY a b                -> new:b copy_to:b
        COPY a b                ->
        COPY a b REPLACE        -> new:b copy_to:b
        COPY a c DB 2           -> new:c@2 copy_to:c@2
        COPY a a                -> !
    """


def test_move_and_copy_announce_in_the_target_database():
    check(MOVE_COPY)


EXPIRE = """
        SET a 1                 -> new:a set:a
        EXPIRE a 100            -> expire:a
        EXPIRE a 100 NX         ->
        EXPIRE a 200 GT         -> expire:a
        PEXPIRE a 100000        -> expire:a
        EXPIREAT a 9999999999   -> expire:a
        PEXPIREAT a 99999999999999 -> expire:a
        PERSIST a               -> persist:a
        PERSIST a               ->
        EXPIRE a -1             -> del:a
        EXPIRE a 10             ->
        SET a 1                 -> new:a set:a
        PEXPIREAT a 1           -> del:a
        SET a 1                 -> new:a set:a
        EXPIREAT a 1            -> del:a
        EXPIRE a 0              ->
    """


def test_expire_persist():
    check(EXPIRE)


def test_restore():
    c, seen = session()
    run(c, "SET", "a", 1)
    payload = run(c, "DUMP", "a")
    seen.clear()
    for args, events in (
        (("RESTORE", "b", 0, payload), ["new:b", "restore:b"]),
        (("RESTORE", "b", 0, payload), None),
        (("RESTORE", "b", 0, payload, "REPLACE"), ["new:b", "restore:b"]),
        (("RESTORE", "b", 100000, payload, "REPLACE"), ["new:b", "restore:b"]),
        (("RESTORE", "b", 1, payload, "REPLACE", "ABSTTL"), ["del:b"]),
        (("RESTORE", "b", 1, payload, "ABSTTL"), []),
        (("RESTORE", "b", 0, payload), ["new:b", "restore:b"]),
    ):
        seen.clear()
        if events is None:
            with pytest.raises(CommandError):
                run(c, *args)
            events = []
        else:
            run(c, *args)
        assert seen == events, args


SORT = """
        RPUSH l 3 1 2           -> new:l rpush:l
        SORT l STORE d          -> new:d sortstore:d
        SORT l STORE d          -> sortstore:d
        SORT nope STORE d       -> del:d
        SORT nope STORE d       ->
        SORT l                  ->
        SORT l ALPHA LIMIT 0 1 STORE d2 -> new:d2 sortstore:d2
        SADD s 1 2              -> new:s sadd:s
        SORT s STORE d          -> new:d sortstore:d
    """


def test_sort_store():
    check(SORT)


# --- lists (l) ------------------------------------------------------------------

PUSHES = """
        LPUSH l a b             -> new:l lpush:l
        LPUSH l c               -> lpush:l
        RPUSH l d e             -> rpush:l
        LPUSHX l x              -> lpush:l
        LPUSHX nope x           ->
        RPUSHX l y              -> rpush:l
        RPUSHX nope y           ->
        SET s v                 -> new:s set:s
        LPUSH s a               -> !
    """


def test_pushes_announce_once_however_many_elements():
    check(PUSHES)


POPS = """
        RPUSH l a b c           -> new:l rpush:l
        LPOP l                  -> lpop:l
        RPOP l                  -> rpop:l
        LPOP l 5                -> lpop:l del:l
        LPOP l                  ->
        LPOP nope 2             ->
        RPUSH l a b c           -> new:l rpush:l
        LPOP l 0                ->
        RPOP l 2                -> rpop:l
        RPOP l 2                -> rpop:l del:l
        RPUSH l a b c           -> new:l rpush:l
        LMPOP 2 nope l LEFT COUNT 2 -> lpop:l
        LMPOP 1 l RIGHT COUNT 5 -> rpop:l del:l
        LMPOP 1 l RIGHT         ->
    """


def test_pops_then_del_when_the_list_is_gone():
    check(POPS)


LIST_EDITS = """
        RPUSH l a b c           -> new:l rpush:l
        LSET l 0 x              -> lset:l
        LSET l 0 x              -> lset:l
        LSET l 9 x              -> !
        LINSERT l BEFORE x y    -> linsert:l
        LINSERT l AFTER zz y    ->
        LINSERT nope AFTER a b  ->
        RPUSH m a b a c a       -> new:m rpush:m
        LREM m 2 a              -> lrem:m
        LREM m 0 zz             ->
        LREM m 0 a              -> lrem:m
        LREM m 0 b              -> lrem:m
        LREM m 0 c              -> lrem:m del:m
        RPUSH t a b c d         -> new:t rpush:t
        LTRIM t 1 2             -> ltrim:t
        LTRIM t 0 -1            -> ltrim:t
        LTRIM t 5 10            -> ltrim:t del:t
        LTRIM nope 0 1          ->
    """


def test_edits():
    check(LIST_EDITS)


LIST_MOVES = """
        RPUSH l a b             -> new:l rpush:l
        LMOVE l d LEFT RIGHT    -> new:d rpush:d lpop:l
        LMOVE l d RIGHT LEFT    -> lpush:d rpop:l del:l
        LMOVE l d LEFT LEFT     ->
        RPUSH l a b             -> new:l rpush:l
        RPOPLPUSH l e           -> new:e lpush:e rpop:l
        RPOPLPUSH l e           -> lpush:e rpop:l del:l
        RPOPLPUSH l e           ->
        RPUSH l a b             -> new:l rpush:l
        RPOPLPUSH l l           -> lpush:l rpop:l
        LMOVE l l LEFT RIGHT    -> rpush:l lpop:l
        RPUSH one a             -> new:one rpush:one
        RPOPLPUSH one one       -> lpush:one rpop:one
    """


def test_moves_announce_the_push_then_the_pop():
    check(LIST_MOVES)


BLOCKING = """
        RPUSH l a               -> new:l rpush:l
        BLPOP l 0               -> lpop:l del:l
        RPUSH l a b             -> new:l rpush:l
        BRPOP nope l 0          -> rpop:l
        BLMOVE l d RIGHT LEFT 0 -> new:d lpush:d rpop:l del:l
        RPUSH l x               -> new:l rpush:l
        BRPOPLPUSH l d 0        -> lpush:d rpop:l del:l
        BLMPOP 0 1 d LEFT COUNT 5 -> lpop:d del:d
        ZADD z 1 a              -> new:z zadd:z
        BZPOPMIN z 0            -> zpopmin:z del:z
        ZADD z 1 a 2 b          -> new:z zadd:z
        BZPOPMAX nope z 0       -> zpopmax:z
        BZMPOP 0 1 z MIN COUNT 3 -> zpopmin:z del:z
    """


def test_blocking_pops_served_at_once_announce_their_non_blocking_form():
    check(BLOCKING)


def test_a_blmove_served_later_announces_the_push_and_the_pop():
    c, seen = session()
    r = run(c, "BLMOVE", "w", "v", "LEFT", "RIGHT", 0)
    run(c, "RPUSH", "w", "a")
    assert r.attempt(c) == b"a"
    assert seen == ["new:w", "rpush:w", "new:v", "rpush:v", "lpop:w", "del:w"]


# --- hashes (h) ------------------------------------------------------------------

HASHES = """
        HSET h a 1 b 2          -> new:h hset:h
        HSET h a 1              -> hset:h
        HSET h a 3              -> hset:h
        HMSET h c 4             -> hset:h
        HSETNX h a 1            ->
        HSETNX h z 1            -> hset:h
        HSETNX h2 a 1           -> new:h2 hset:h2
        HDEL h zz               ->
        HDEL h a zz             -> hdel:h
        HDEL h2 a               -> hdel:h2 del:h2
        HINCRBY n a 1           -> new:n hincrby:n
        HINCRBY n a 2           -> hincrby:n
        HINCRBY n a 0           -> hincrby:n
        HINCRBYFLOAT n f 1.5    -> hincrbyfloat:n
        HINCRBYFLOAT n f 0      -> hincrbyfloat:n
        HSET n s abc            -> hset:n
        HINCRBY n s 1           -> !
        HINCRBYFLOAT n s 1      -> !
        HSET n odd              -> !
    """


def test_hash_writes():
    check(HASHES)


# --- sets (s) ------------------------------------------------------------------

SETS = """
        SADD s a b              -> new:s sadd:s
        SADD s a                ->
        SADD s c                -> sadd:s
        SREM s zz               ->
        SREM s a zz             -> srem:s
        SREM s b c              -> srem:s del:s
        SREM nope a             ->
        SADD s a b c            -> new:s sadd:s
        SPOP s                  -> spop:s
        SPOP s 0                ->
        SPOP s 5                -> spop:s del:s
        SPOP s                  ->
        SPOP s 1                ->
        SADD s a                -> new:s sadd:s
        SPOP s 1                -> spop:s del:s
        SADD s 1 2 3            -> new:s sadd:s
        SPOP s 2                -> spop:s
        SADD one a              -> new:one sadd:one
        SPOP one                -> spop:one del:one
    """


def test_set_writes():
    check(SETS)


SMOVE = """
        SADD s a b              -> new:s sadd:s
        SMOVE s d a             -> srem:s new:d sadd:d
        SMOVE s d zz            ->
        SMOVE s d b             -> srem:s del:s sadd:d
        SMOVE nope d a          ->
        SADD s a                -> new:s sadd:s
        SMOVE s d a             -> srem:s del:s
        SADD s a                -> new:s sadd:s
        SMOVE s s a             ->
    """


def test_smove():
    check(SMOVE)


SET_STORES = """
        SADD a 1 2 3            -> new:a sadd:a
        SADD b 2 3 4            -> new:b sadd:b
        SINTERSTORE d a b       -> new:d sinterstore:d
        SINTERSTORE d a b       -> sinterstore:d
        SUNIONSTORE d a b       -> sunionstore:d
        SDIFFSTORE d a b        -> sdiffstore:d
        SDIFFSTORE d a a        -> del:d
        SDIFFSTORE d a a        ->
        SINTERSTORE d2 nope a   ->
        SUNIONSTORE d3 nope     ->
    """


def test_set_algebra_stores():
    check(SET_STORES)


# --- sorted sets (z) ------------------------------------------------------------------

ZADD = """
        ZADD z 1 a 2 b          -> new:z zadd:z
        ZADD z 1 a              ->
        ZADD z 3 a              -> zadd:z
        ZADD z NX 5 a           ->
        ZADD z XX 5 zz          ->
        ZADD z INCR 1 a         -> zincr:z
        ZADD z INCR 0 a         ->
        ZADD z XX INCR 1 zz     ->
        ZADD z CH 9 a 9 b       -> zadd:z
        ZADD z GT 0 a           ->
        ZADD z LT 0 a           -> zadd:z
        ZADD z INCR GT -1 a     ->
        ZINCRBY y 1 a           -> new:y zincr:y
        ZINCRBY y 2 a           -> zincr:y
        ZINCRBY y 0 a           ->
        ZADD y NX INCR 1 a      ->
        ZADD y nan m            -> !
    """


def test_zadd_and_zincrby():
    check(ZADD)


ZREM = """
        ZADD z 1 a 2 b 3 c      -> new:z zadd:z
        ZREM z zz               ->
        ZREM z a zz             -> zrem:z
        ZREM z b c              -> zrem:z del:z
        ZADD z 1 a 2 b 3 c 4 d  -> new:z zadd:z
        ZREMRANGEBYSCORE z 10 20 ->
        ZREMRANGEBYSCORE z 1 1  -> zremrangebyscore:z
        ZREMRANGEBYRANK z 0 0   -> zremrangebyrank:z
        ZREMRANGEBYLEX z - +    -> zremrangebylex:z del:z
        ZREMRANGEBYRANK nope 0 1 ->
        ZADD y 1 a 2 b          -> new:y zadd:y
        ZREMRANGEBYRANK y 0 -1  -> zremrangebyrank:y del:y
    """


def test_zrem_and_the_range_removals():
    check(ZREM)


ZPOPS = """
        ZADD z 1 a 2 b 3 c      -> new:z zadd:z
        ZPOPMIN z               -> zpopmin:z
        ZPOPMAX z 1             -> zpopmax:z
        ZPOPMIN z 0             ->
        ZPOPMIN z 5             -> zpopmin:z del:z
        ZPOPMIN z               ->
        ZPOPMIN nope 3          ->
        ZADD z 1 a 2 b 3 c      -> new:z zadd:z
        ZMPOP 2 nope z MIN COUNT 2 -> zpopmin:z
        ZMPOP 1 z MAX COUNT 9   -> zpopmax:z del:z
        ZMPOP 1 z MAX           ->
    """


def test_zset_pops():
    check(ZPOPS)


ZSTORES = """
        ZADD a 1 x 2 y          -> new:a zadd:a
        ZADD b 1 y 2 w          -> new:b zadd:b
        ZUNIONSTORE d 2 a b     -> new:d zunionstore:d
        ZINTERSTORE d 2 a b     -> zinterstore:d
        ZDIFFSTORE d 2 a b      -> zdiffstore:d
        ZINTERSTORE d 2 a nope  -> del:d
        ZINTERSTORE d 2 a nope  ->
        ZRANGESTORE e a 0 -1    -> new:e zrangestore:e
        ZRANGESTORE e a 5 9     -> del:e
        ZRANGESTORE e a 5 9     ->
        ZDIFFSTORE f 1 nope     ->
        SADD s 1                -> new:s sadd:s
        ZUNIONSTORE d 2 s a     -> new:d zunionstore:d
    """


def test_zset_stores():
    check(ZSTORES)


# --- classes filter each command's events -----------------------------------------------

def test_a_move_between_types_announces_only_the_classes_that_are_on():
    check("""
        RPUSH l a b             -> rpush:l
        LMOVE l d LEFT RIGHT    -> rpush:d lpop:l
        LMOVE l d LEFT RIGHT    -> rpush:d lpop:l
        SADD s a                ->
    """, flags="El")
    check("""
        RPUSH l a               ->
        LMOVE l d LEFT RIGHT    -> del:l
        SET k v EX 10           -> expire:k
    """, flags="Kg")


# The scripts tests/integration/test_notify_redis.py runs on Keel and on
# redis-server side by side (SET_PAST_TIME is where Keel differs on purpose).
DIFFERENTIAL = {
    "set": SET_VARIANTS, "getex": GETEX, "mset": MSET, "append_setrange": APPEND_SETRANGE,
    "counters": COUNTERS, "bits": BITS, "del": DEL, "rename": RENAME, "move_copy": MOVE_COPY,
    "expire": EXPIRE, "sort": SORT, "pushes": PUSHES, "pops": POPS, "list_edits": LIST_EDITS,
    "list_moves": LIST_MOVES, "blocking": BLOCKING, "hashes": HASHES, "sets": SETS, "smove": SMOVE,
    "set_stores": SET_STORES, "zadd": ZADD, "zrem": ZREM, "zpops": ZPOPS, "zstores": ZSTORES,
}
