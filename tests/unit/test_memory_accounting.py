"""Keyspace.mem_used: the dataset estimate rises and falls with every mutator.

Two things are checked after every command: the direction (a write that
adds data raises the estimate, one that removes data lowers it) and the
bookkeeping (``engine.memory.recount``, every value's size read afresh,
equals ``mem_used``): a handler that changed a value in place without
``touched`` would leave the two apart, and a removal that subtracted the
wrong charge would never bring ``mem_used`` back to 0.
"""

from __future__ import annotations

import random

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine.keyspace import Keyspace, now_ms
from engine.memory import DICT_ENTRY, TTL_COST, bytes_cost, charge, key_cost, recount
from engine.session import Session
from tests.support import run


@pytest.fixture
def c():
    return Session(Keyspace())


def fresh(ks) -> int:
    return sum(recount(db) for db in ks.dbs)


def step(c, *args):
    """Run one command; the estimate must equal a fresh count afterwards."""
    before = c.ks.mem_used
    reply = run(c, *args)
    assert c.ks.mem_used == fresh(c.ks), args
    return before, c.ks.mem_used, reply


def rises(c, *args):
    before, after, reply = step(c, *args)
    assert after > before, args
    return reply


def falls(c, *args):
    before, after, reply = step(c, *args)
    assert after < before, args
    return reply


# --- strings ---------------------------------------------------------------------

def test_a_string_costs_its_key_and_value_blocks(c):
    run(c, "SET", "key:000000000000", "val:000000000000")
    # 16-byte bytes objects: 33 + 16 = 49 bytes, in 64-byte pymalloc blocks
    assert bytes_cost(16) == 64
    assert c.ks.mem_used == 64 + DICT_ENTRY + 64


def test_overwriting_a_string_charges_the_difference(c):
    rises(c, "SET", "k", "v")
    rises(c, "SET", "k", "v" * 100)
    falls(c, "SET", "k", "v")
    run(c, "DEL", "k")
    assert c.ks.mem_used == 0


def test_in_place_string_writes_are_counted(c):
    rises(c, "SET", "s", "abc")
    rises(c, "APPEND", "s", "x" * 200)
    rises(c, "SETRANGE", "s", "1000", "y")
    rises(c, "SETBIT", "b", "80000", "1")
    rises(c, "SETBIT", "b", "160000", "1")
    step(c, "BITFIELD", "b", "SET", "u8", "0", "255")
    step(c, "INCRBYFLOAT", "f", "1.5")
    step(c, "PFADD", "h", "a", "b", "c")
    falls(c, "DEL", "s", "b", "f", "h")
    assert c.ks.mem_used == 0
    assert all(not db.ba_mem for db in c.ks.dbs)


def test_a_bytearray_overwritten_by_set_releases_its_charge(c):
    run(c, "APPEND", "s", "abc")
    run(c, "APPEND", "s", "def")  # now a bytearray
    assert type(c.db.data[b"s"]) is bytearray
    falls(c, "SET", "s", "x")
    assert not c.db.ba_mem
    run(c, "DEL", "s")
    assert c.ks.mem_used == 0


# --- collections -----------------------------------------------------------------

SCRIPTS = {
    "hash": [("HSET", "k", "f", "v"), ("HSET", "k", *[f"f{i}" for i in range(400)]), ("HINCRBY", "k", "n", "5"),
             ("HSETNX", "k", "new", "x" * 100)],
    "list": [("RPUSH", "k", "a"), ("LPUSH", "k", *["x" * 30] * 3000), ("LINSERT", "k", "BEFORE", "a", "y" * 50)],
    "set": [("SADD", "k", "1"), ("SADD", "k", *range(600)), ("SADD", "k", "text"), ("SADD", "k", *[f"m{i}" for i in range(200)])],
    "zset": [("ZADD", "k", "1", "a"), ("ZADD", "k", *[x for i in range(300) for x in (i, f"m{i}")]),
             ("ZINCRBY", "k", "2", "new")],
    # An XADD that closes the open node packs it: its Python objects go, its
    # estimate falls (as the process's memory does); the others rise.
    "stream": [("XADD", "k", "*", "f", "v"), ("~XADD", 300, "k", "*", "f", "v", "g", "x" * 20),
               ("XGROUP", "CREATE", "k", "g", "0"), ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "50", "STREAMS", "k", ">")],
}
SHRINK = {
    "hash": [("HDEL", "k", *[f"f{i}" for i in range(0, 400, 2)])],
    "list": [("RPOP", "k", "100"), ("LTRIM", "k", "0", "99"), ("LPOP", "k")],
    "set": [("SREM", "k", *[f"m{i}" for i in range(100)]), ("SPOP", "k", "100")],
    "zset": [("ZREM", "k", *[f"m{i}" for i in range(100)]), ("ZPOPMIN", "k", "50")],
    "stream": [("XTRIM", "k", "MAXLEN", "10")],
}


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_a_collection_is_counted_as_it_grows_shrinks_and_goes(c, kind):
    for cmd in SCRIPTS[kind]:
        if cmd[0].startswith("~"):  # repeated, rising overall
            before = c.ks.mem_used
            for _ in range(cmd[1]):
                step(c, cmd[0][1:], *cmd[2:])
            assert c.ks.mem_used > before
        else:
            rises(c, *cmd)
    for cmd in SHRINK[kind]:
        falls(c, *cmd)
    falls(c, "DEL", "k")
    assert c.ks.mem_used == 0


@pytest.mark.parametrize("kind", sorted(SCRIPTS))
def test_a_collection_estimate_is_near_its_real_python_size(c, kind):
    """The O(1) figure against a walk of the objects (sys.getsizeof over the
    containers and elements): within the model's intent, not byte-exact."""
    for cmd in SCRIPTS[kind]:
        for _ in range(cmd[1] if cmd[0].startswith("~") else 1):
            run(c, cmd[0].lstrip("~"), *cmd[2 if cmd[0].startswith("~") else 1:])
    v = c.db.data[b"k"]
    assert v.mem_size() == v._held
    walked = _walk(v)
    assert 0.6 * walked < v.mem_size() < 1.6 * walked, (v.mem_size(), walked)


# The accounting's own slots, and a stream's cache of one decoded node (a
# read fills it, and reads pay nothing, so it is left out of the estimate).
_NOT_DATA = ("_held", "_per", "_at", "_cache")


def _walk(v) -> int:
    import sys

    seen = set()

    def size(o) -> int:
        if id(o) in seen or isinstance(o, (int, type(None))) and sys.getsizeof(o) <= 28:
            return 0
        seen.add(id(o))
        n = sys.getsizeof(o)
        if isinstance(o, dict):
            n += sum(size(k) + size(x) for k, x in o.items())
        elif isinstance(o, (list, tuple, set, frozenset)) or type(o).__name__ == "deque":
            n += sum(size(x) for x in o)
        elif hasattr(o, "__slots__"):
            for cls in type(o).__mro__:
                for s in getattr(cls, "__slots__", ()):
                    if s not in _NOT_DATA and hasattr(o, s):
                        n += size(getattr(o, s))
        return n
    return size(v)


def test_samples_recount_a_big_collection_without_changing_the_books(c):
    run(c, "HSET", "k", *[x for i in range(1000) for x in (f"f{i}", "v" * (1 + i % 50))])
    v = c.db.data[b"k"]
    held = v._held
    assert v.mem_size(0) > 0 and v.mem_size(5) > 0
    assert v._held == held and c.ks.mem_used == fresh(c.ks)


def test_a_store_command_replacing_a_collection_subtracts_the_old_one(c):
    run(c, "SADD", "a", *range(1000))
    run(c, "SADD", "b", "x")
    step(c, "SUNIONSTORE", "a", "b")
    step(c, "SORT", "b", "ALPHA", "STORE", "dst")
    run(c, "DEL", "a", "b", "dst")
    assert c.ks.mem_used == 0


# --- keys, TTLs and databases --------------------------------------------------

def test_a_ttl_costs_an_expires_entry(c):
    run(c, "SET", "k", "v")
    base = c.ks.mem_used
    run(c, "EXPIRE", "k", "100")
    assert c.ks.mem_used == base + TTL_COST
    run(c, "EXPIRE", "k", "200")  # a new time, the same entry
    assert c.ks.mem_used == base + TTL_COST
    falls(c, "PERSIST", "k")
    assert c.ks.mem_used == base
    run(c, "SET", "k", "v", "EX", "100")
    falls(c, "SET", "k", "v")  # SET clears the TTL
    assert c.ks.mem_used == base


def test_expired_keys_give_their_memory_back(c):
    ks = c.ks
    db = c.db
    for i in range(50):
        run(c, "SET", f"k{i}", "v" * i)
        db.set_expire(b"k%d" % i, now_ms() - 1)
    assert db.get(b"k0") is None  # lazy
    ks.active_expire(50.0)  # active
    assert not db.data and ks.mem_used == 0


def test_rename_move_copy_and_swapdb_keep_the_books(c):
    run(c, "RPUSH", "l", *range(500))
    run(c, "SET", "s", "x" * 50, "EX", "100")
    step(c, "RENAME", "l", "l2")
    rises(c, "COPY", "l2", "l3")
    step(c, "MOVE", "s", "3")
    total = c.ks.mem_used
    step(c, "SWAPDB", "0", "3")
    assert c.ks.mem_used == total
    assert recount(c.ks.dbs[3]) > recount(c.ks.dbs[0]) > 0
    step(c, "FLUSHDB")  # db 0 now holds what was db 3's
    assert c.ks.mem_used == recount(c.ks.dbs[3]) == total - key_cost(b"s") - charge(b"x" * 50) - TTL_COST
    run(c, "FLUSHALL")
    assert c.ks.mem_used == 0


def test_the_peak_is_kept_when_keys_go(c):
    run(c, "SET", "k", "v" * 1000)
    high = c.ks.mem_used
    run(c, "DEL", "k")
    assert c.ks.mem_peak == high
    run(c, "SET", "k", "v")
    run(c, "FLUSHALL")
    assert c.ks.mem_peak == high


def test_a_value_not_of_a_value_type_is_not_counted(c):
    c.db.set(b"odd", object())  # what some tests store to provoke WRONGTYPE
    c.db.delete(b"odd")
    assert c.ks.mem_used == 0


@pytest.mark.parametrize("deferred", [False, True], ids=["exact", "deferred"])
def test_random_commands_keep_the_estimate_equal_to_a_fresh_count(c, deferred):
    """Every write handler, in a random mix on colliding keys: the books stay
    exact (deferred: as the server keeps them while maxmemory is 0, exact
    once settled, and removals exact at once)."""
    if deferred:
        c.ks.mem_defer(True)
    rnd = random.Random(13)
    keys = [f"k{i}" for i in range(6)]
    v = lambda: "x" * rnd.choice((1, 5, 40, 70))  # noqa: E731
    ops = [
        lambda k: ("SET", k, v()), lambda k: ("APPEND", k, v()), lambda k: ("SETRANGE", k, rnd.randrange(50), v()),
        lambda k: ("INCR", k), lambda k: ("GETDEL", k), lambda k: ("DEL", k), lambda k: ("EXPIRE", k, 100),
        lambda k: ("PERSIST", k), lambda k: ("HSET", k, f"f{rnd.randrange(200)}", v()),
        lambda k: ("HDEL", k, f"f{rnd.randrange(200)}"), lambda k: ("LPUSH", k, *[v()] * rnd.randrange(1, 300)),
        lambda k: ("RPOP", k, rnd.randrange(1, 100)), lambda k: ("LREM", k, 0, "x"),
        lambda k: ("SADD", k, *[str(rnd.randrange(1000)) for _ in range(rnd.randrange(1, 50))]),
        lambda k: ("SADD", k, v()), lambda k: ("SPOP", k, rnd.randrange(1, 20)),
        lambda k: ("ZADD", k, rnd.random(), f"m{rnd.randrange(300)}"), lambda k: ("ZREM", k, f"m{rnd.randrange(300)}"),
        lambda k: ("ZREMRANGEBYRANK", k, 0, rnd.randrange(10)),
        lambda k: ("XADD", k, "*", "f", v()), lambda k: ("XTRIM", k, "MAXLEN", rnd.randrange(20)),
        lambda k: ("RENAME", k, rnd.choice(keys)), lambda k: ("COPY", k, rnd.choice(keys), "REPLACE"),
        lambda k: ("LMOVE", k, rnd.choice(keys), "LEFT", "RIGHT"), lambda k: ("SMOVE", k, rnd.choice(keys), "1"),
        lambda k: ("SUNIONSTORE", k, rnd.choice(keys), rnd.choice(keys)),
        lambda k: ("ZUNIONSTORE", k, 2, rnd.choice(keys), rnd.choice(keys)),
        lambda k: ("SETBIT", k, rnd.randrange(5000), 1), lambda k: ("PFADD", k, v()),
        lambda k: ("SORT", k, "ALPHA"), lambda k: ("SORT", k, "BY", "nosort", "STORE", rnd.choice(keys)),
        lambda k: ("HINCRBYFLOAT", k, "n", "1.5"), lambda k: ("LSET", k, 0, v()), lambda k: ("LTRIM", k, 1, -2),
    ]
    for _ in range(1500):
        k = rnd.choice(keys)
        try:
            run(c, *rnd.choice(ops)(k))
        except Exception:  # WRONGTYPE and the like: the command changed nothing
            pass
        if deferred and rnd.random() < 0.7:
            continue  # left unsettled: later removals and replacements must still balance
        c.ks.mem_settle()
        assert c.ks.mem_used == fresh(c.ks)
    run(c, "FLUSHALL")
    c.ks.mem_settle()
    assert c.ks.mem_used == 0


def test_deferred_growth_waits_for_the_settle_and_then_counts(c):
    c.ks.mem_defer(True)
    run(c, "RPUSH", "l", *["x" * 30] * 200)
    run(c, "HSET", "h", *[f"f{i}" for i in range(400)])
    c.ks.mem_settle()
    start = c.ks.mem_used
    assert start == fresh(c.ks)
    run(c, "RPUSH", "l", *["y" * 30] * 2000)
    run(c, "HSET", "h", *[f"g{i}" for i in range(2000)])
    assert c.ks.mem_used == start  # noted, not yet re-read
    c.ks.mem_settle()
    assert c.ks.mem_used == fresh(c.ks) > start
    run(c, "RPUSH", "l", "z")
    run(c, "DEL", "l", "h")  # a removal before the settle still balances
    c.ks.mem_settle()
    assert c.ks.mem_used == fresh(c.ks) == 0
    c.ks.mem_defer(False)  # back to exact: settles first
    run(c, "HSET", "h2", *[f"f{i}" for i in range(400)])
    assert c.ks.mem_used == fresh(c.ks)


def test_a_keyspace_filled_without_the_mutators_is_counted_whole(c):
    """What the checkpoint loader does (it stores into ``data`` directly):
    ``account_all`` gives the figure the mutators would have kept."""
    for kind in sorted(SCRIPTS):
        for cmd in SCRIPTS[kind][:2]:
            if not cmd[0].startswith("~"):
                run(c, *[kind if a == "k" else a for a in cmd])
    run(c, "APPEND", "s", "abc")
    run(c, "APPEND", "s", "def")
    run(c, "SET", "t", "v", "EX", "100")
    loaded = Keyspace()
    for src, dst in zip(c.ks.dbs, loaded.dbs):
        dst.data.update(src.data)
        dst.expires.update(src.expires)
    assert loaded.account_all() == c.ks.mem_used == fresh(loaded)
    s = Session(loaded)
    run(s, "HSET", "hash", "more", "x" * 100)
    run(s, "APPEND", "s", "ghi")
    assert loaded.mem_used == fresh(loaded)
    run(s, "FLUSHALL")
    assert loaded.mem_used == 0
