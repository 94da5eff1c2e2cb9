"""The reaper (engine.lazyfree) on every type: what UNLINK / FLUSHALL ASYNC
hand it is taken apart a batch at a time, small values are left to be freed
at once, the counters say what waits and what was freed, and the keyspace
is untouched by it (the value left it before).

Handlers run directly on a ``Keyspace`` + ``Session`` with a ``Reaper`` set
as the server sets it; ``step`` is called by the test, as the loop would.
"""

from __future__ import annotations

import time

import hiredis
import pytest

import engine.commands  # noqa: F401  (registers every command)
from engine import lazyfree
from engine.keyspace import Keyspace
from engine.lazyfree import LAZYFREE_THRESHOLD, Reaper, effort
from engine.registry import TABLE
from engine.reply import Raw
from engine.session import Session
from wal.checkpoint.tracker import KeyLog


def run(s: Session, *args):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    r = TABLE[argv[0].lower()].handler(s, argv)
    if type(r) is Raw:  # a pre-encoded integer (:1) or status
        reader = hiredis.Reader()
        reader.feed(bytes(r))
        return reader.gets()
    return r


@pytest.fixture
def s():
    ks = Keyspace()
    r = ks.reaper = Reaper()
    r.woken = 0

    def wake():
        r.woken += 1

    r.wake = wake
    return Session(ks)


def _fill(s, kind: str, key: bytes, n: int) -> None:
    """A value of ``kind`` with ``n`` elements at ``key``, in its large encoding."""
    batch = 500
    for i in range(0, n, batch):
        els = [b"m%d" % j for j in range(i, min(n, i + batch))]
        if kind == "set":
            run(s, "SADD", key, *els)
        elif kind == "hash":
            run(s, "HSET", key, *[x for e in els for x in (e, b"v")])
        elif kind == "list":
            run(s, "RPUSH", key, *els)
        elif kind == "zset":
            run(s, "ZADD", key, *[x for j, e in enumerate(els) for x in (b"%d" % (i + j), e)])
        elif kind == "stream":
            for e in els:
                run(s, "XADD", key, b"*", b"f", e)
    if kind == "stream":
        run(s, "XGROUP", "CREATE", key, "g", "0")
        run(s, "XREADGROUP", "GROUP", "g", "alice", "COUNT", n // 2, "STREAMS", key, ">")
        run(s, "XREADGROUP", "GROUP", "g", "bob", "STREAMS", key, ">")


KINDS = ("set", "hash", "list", "zset", "stream")


@pytest.mark.parametrize("kind", KINDS)
def test_unlink_hands_a_big_value_to_the_reaper_which_empties_it(s, kind):
    # A list's effort is its nodes (about a thousand short elements each), as in Redis.
    _fill(s, kind, b"big", {"list": 100_000, "stream": 5000}.get(kind, 20000))
    v = s.db.data[b"big"]
    assert effort(v) > LAZYFREE_THRESHOLD
    r = s.ks.reaper
    assert run(s, "UNLINK", b"big") == 1
    assert b"big" not in s.db.data
    assert r.pending == 1 and r.freed == 0 and r.woken == 1
    steps = 0
    while r.step(1):  # one batch a step
        steps += 1
    assert steps >= len(lazyfree._parts(v))  # (nothing was freed by UNLINK itself)
    assert r.pending == 0 and r.freed == 1
    # Emptied while the reaper held it: nothing of it is left to free at once.
    for c in lazyfree._parts(v):
        assert len(c) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_small_value_is_freed_at_once(s, kind):
    _fill(s, kind, b"small", 10)
    assert effort(s.db.data[b"small"]) <= LAZYFREE_THRESHOLD
    assert run(s, "UNLINK", b"small") == 1
    assert s.ks.reaper.pending == 0 and not s.ks.reaper.jobs and s.ks.reaper.woken == 0


def test_del_frees_at_once_unless_lazy_user_del(s):
    r = s.ks.reaper
    _fill(s, "set", b"a", 1000)
    assert run(s, "DEL", b"a") == 1
    assert not r.jobs
    r.user_del = True
    _fill(s, "set", b"a", 1000)
    assert run(s, "DEL", b"a", b"missing") == 1
    assert r.pending == 1
    r.finish()
    assert r.pending == 0 and r.freed == 1


def test_unlink_of_an_expired_big_key_frees_it_later_and_counts_nothing(s):
    _fill(s, "set", b"a", 1000)
    s.db.expires[b"a"] = 1  # long due
    assert run(s, "UNLINK", b"a") == 0
    assert b"a" not in s.db.data
    assert s.ks.reaper.pending == 1


def test_flushall_async_empties_at_once_and_frees_later(s):
    r = s.ks.reaper
    for i in range(3000):
        s.db.set(b"k%d" % i, b"v")
    s.db.set_expire(b"k1", 2**50)
    _fill(s, "zset", b"z", 5000)
    s.ks.dbs[3].set(b"other", b"x")
    run(s, "FLUSHALL", "ASYNC")
    assert all(not db.data and not db.expires for db in s.ks.dbs)
    assert r.pending == 3000 + 1 + 1
    while r.step(20_000):
        pass
    # The sorted set went on as its own job, taken apart like any big value.
    assert r.pending == 0 and r.freed == 3002
    assert s.ks.effects[-1] == (0, [b"FLUSHALL"])


def test_flushdb_async_and_lazy_user_flush(s):
    r = s.ks.reaper
    for i in range(100):
        s.db.set(b"k%d" % i, b"v")
    run(s, "FLUSHDB", "SYNC")
    assert not r.jobs and not s.db.data
    for i in range(100):
        s.db.set(b"k%d" % i, b"v")
    r.user_flush = True
    run(s, "FLUSHDB")
    assert not s.db.data and r.pending == 100
    r.finish()
    for i in range(100):
        s.db.set(b"k%d" % i, b"v")
    run(s, "FLUSHDB", "SYNC")  # SYNC wins over the directive
    assert r.pending == 0 and r.freed == 100


def test_without_a_reaper_or_while_loading_values_are_freed_at_once():
    ks = Keyspace()
    s = Session(ks)
    _fill(s, "set", b"a", 1000)
    assert run(s, "UNLINK", b"a") == 1  # no reaper: DEL
    r = ks.reaper = Reaper()
    ks.loading = True  # the log replayed on the loader's thread
    _fill(s, "set", b"a", 1000)
    assert run(s, "UNLINK", b"a") == 1
    run(s, "FLUSHALL", "ASYNC")
    assert not r.jobs and r.pending == 0


def test_a_step_keeps_to_its_budget():
    r = Reaper()
    ks = Keyspace()
    s = Session(ks)
    ks.reaper = r
    _fill(s, "set", b"a", 100_000)
    run(s, "UNLINK", b"a")
    worst = 0.0
    steps = 0
    while True:
        t = time.thread_time()  # CPU time: what the step did, not the machine's other processes
        more = r.step(1_000_000)
        worst = max(worst, time.thread_time() - t)
        steps += 1
        if not more:
            break
    assert steps > 1  # 100k members take more than one 1 ms step
    assert worst < 0.01  # a 1 ms budget, looked at after every batch of 1024


# --- lazyfree-lazy-expire / -eviction / -server-del: the keyspace's own removals ---

@pytest.mark.parametrize("lazy", [False, True])
def test_an_expired_big_value_follows_lazy_expire(s, lazy):
    r = s.ks.reaper
    r.expire = lazy
    _fill(s, "set", b"a", 1000)
    _fill(s, "hash", b"b", 1000)
    s.db.expires[b"a"] = s.db.expires[b"b"] = 1  # long due
    assert run(s, "EXISTS", b"a") == 0  # expired on lookup
    assert s.ks.active_expire(budget_ms=50) == 1  # b, by the active cycle
    assert r.pending == (2 if lazy else 0)


@pytest.mark.parametrize("lazy", [False, True])
def test_an_evicted_big_value_follows_lazy_eviction(s, lazy):
    r = s.ks.reaper
    r.eviction = lazy
    _fill(s, "zset", b"z", 1000)
    assert s.db.evict(b"z")
    assert b"z" not in s.db.data
    assert r.pending == (1 if lazy else 0)


@pytest.mark.parametrize("lazy", [False, True])
def test_an_overwritten_big_value_follows_lazy_server_del(s, lazy):
    r = s.ks.reaper
    r.server_del = lazy
    _fill(s, "set", b"a", 1000)
    assert run(s, "SET", b"a", b"v") == b"OK"  # the inlined SET
    _fill(s, "list", b"l", 100_000)
    _fill(s, "set", b"src", 3)
    assert run(s, "SUNIONSTORE", b"l", b"src") == 3  # Database.set over the list
    assert run(s, "SET", b"a", b"w") == b"OK"  # a string over a string: nothing to free
    assert r.pending == (2 if lazy else 0)
    r.finish()
    assert s.db.data[b"a"] == b"w" and run(s, "SCARD", b"l") == 3


def test_flushes_hand_over_the_checkpoints_set_of_changed_keys_too(s):
    """A checkpointer tracks the keys changed since its last capture in a set
    per database: FLUSHDB/FLUSHALL ASYNC start a new one and the old one,
    as big as the database, is emptied by the reaper, not dropped at once."""
    r = s.ks.reaper
    for flush in (("FLUSHDB", "ASYNC"), ("FLUSHALL", "ASYNC")):
        s.db.dirty = set()
        for i in range(5000):
            s.db.set(b"k%d" % i, b"v")
        old = s.db.dirty
        assert len(old) == 5000
        run(s, *flush)
        assert s.db.dirty is not old and not s.db.dirty
        assert len(old) == 5000  # waiting for the reaper
        r.finish()
        assert not old


def test_a_keylog_and_the_set_it_grew_from_go_to_the_reaper_too(s):
    """Past a share of its database the checkpoint's dirty set becomes a
    KeyLog that keeps the set as ``earlier``: both are a million entries
    after a bulk load, and both are emptied by the reaper."""
    r = s.ks.reaper
    earlier = {b"k%d" % i for i in range(3000)}
    s.db.dirty = log = KeyLog(earlier)
    for i in range(5000):
        s.db.set(b"k%d" % i, b"v")
    assert len(log) == 5000
    run(s, "FLUSHALL", "ASYNC")
    assert len(log) == 5000 and len(earlier) == 3000
    r.finish()
    assert not log and not earlier


def test_flushdb_async_takes_the_database_out_of_mem_used_at_once(s):
    """mem_used drops when the database is detached, not as the reaper frees
    it, whichever side is cheaper to sum (the others, or the flushed one)."""
    ks = s.ks
    for i in range(2000):
        ks.dbs[0].set(b"k%d" % i, b"v" * (i % 50))
    ks.dbs[0].set_expire(b"k1", 2**50)
    _fill(s, "hash", b"h", 1000)
    for i in range(10):
        ks.dbs[1].set(b"o%d" % i, b"w")
    small = ks.dbs[1].mem_total()
    run(s, "FLUSHDB", "ASYNC")  # db 0: the others are smaller
    assert ks.mem_used == small
    for i in range(2000):
        ks.dbs[0].set(b"k%d" % i, b"v")
    big = ks.dbs[0].mem_total()
    s.select(1)
    run(s, "FLUSHDB", "ASYNC")  # db 1: the others are bigger
    assert ks.mem_used == big
    ks.reaper.finish()
    assert ks.mem_used == big


def test_a_flushed_database_of_medium_collections_is_dropped_a_few_keys_a_batch(s):
    """Values of effort up to 64 are dropped with their keys, not queued on
    their own: a batch of a thousand such keys would free 60 000 elements at
    once, so batches shrink to keep near a thousand elements each."""
    r = s.ks.reaper
    long = b"x" * 70  # members past set-max-listpack-value: a hashtable of 40
    for i in range(2000):
        run(s, "SADD", b"s%d" % i, *[long + b"%d" % j for j in range(40)])
    assert effort(s.db.data[b"s1"]) == 40
    run(s, "FLUSHALL", "ASYNC")
    steps = 0
    while r.step(1):  # one batch a step
        steps += 1
    assert steps > 30  # 2000 keys of 40 elements, ~1000 elements a batch
    assert r.pending == 0 and r.freed == 2000
    for i in range(3000):
        s.db.set(b"k%d" % i, b"v")
    run(s, "FLUSHALL", "ASYNC")
    steps = 0
    while r.step(1):
        steps += 1
    assert steps <= 8  # strings: a thousand keys a batch again (and a step per emptied part)
