"""Hashes cost what Redis's do: memory per key and per field, time per call at any size.

Memory (tracemalloc, in-process): 100k keys each holding 10 short fields
must take at most 662 B a key (2x Redis 7.0's 331 B), and one hash of 1M
fields at most 145 B a field (2x the 72.4 B measured on redis-server 7.0 for
the same fields, ``field:N`` -> ``v:NNNNNN``). Time: HGET and HSET on a 1M-field
hash against the same calls on a 10-field (packed) one: the target is within
2x, the bound asserted 10x, so that a shared machine never flakes it. Every
O(1) command at 1M fields against 1k: random probes into ~130 MB miss the
caches that 1k fields fit in (Redis pays that too), 1.2-5x on an idle
machine and up to 25x seen on a loaded one; the bound asserted is 50x,
while a command that walked the hash would be ~1000x slower. Run with
``-s`` to see the figures.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine.keyspace import Keyspace
from engine.registry import COMMANDS
from engine.session import Session

CALLS = 2000
HSET = COMMANDS["hset"].handler


def _fill(c, key: bytes, n: int, first: int = 0, batch: int = 100) -> None:
    for i in range(0, n, batch):
        argv = [b"HSET", key]
        for j in range(i, min(n, i + batch)):
            argv += [b"field:%d" % j, b"v:%06d" % (first + j)]
        HSET(c, argv)
    c.ks.effects.clear()


def _traced(build) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = build()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del keep
    return grown


def test_small_hashes_take_at_most_twice_redis_per_key():
    n = 100_000

    def build():
        c = Session(Keyspace())
        for i in range(n):
            _fill(c, b"key:%08d" % i, 10, first=i)
        assert c.db.data[b"key:00000001"].encoding == "listpack"
        return c

    per_key = _traced(build) / n
    print(f"\n10-field hash: {per_key:.0f} B per key (Redis 331)")
    assert per_key <= 662


def test_a_million_field_hash_takes_at_most_twice_redis_per_field():
    n = 1_000_000

    def build():
        c = Session(Keyspace())
        _fill(c, b"big", n, batch=1000)
        assert c.db.data[b"big"].encoding == "hashtable"
        return c

    per_field = _traced(build) / n
    print(f"\n1M-field hash: {per_field:.1f} B per field (Redis 72.4)")
    assert per_field <= 145


def _argvs(name: str, n: int, rep: int) -> list:
    rnd = random.Random(n + rep)
    base = rep * CALLS  # HDEL and HSET new meet fresh fields each repetition

    def f():
        return b"field:%d" % rnd.randrange(n)
    return {
        "HGET": lambda: [[b"HGET", b"h", f()] for _ in range(CALLS)],
        "HSET": lambda: [[b"HSET", b"h", f(), b"v:1"] for _ in range(CALLS)],
        "HSET new": lambda: [[b"HSET", b"h", b"new%d" % (base + i), b"v"] for i in range(CALLS)],
        "HEXISTS": lambda: [[b"HEXISTS", b"h", f()] for _ in range(CALLS)],
        "HINCRBY": lambda: [[b"HINCRBY", b"h", b"n%d" % (i % 5), b"1"] for i in range(CALLS)],
        "HDEL": lambda: [[b"HDEL", b"h", b"field:%d" % (base + i)] for i in range(CALLS)],
        "HRANDFIELD": lambda: [[b"HRANDFIELD", b"h", b"-5"] for _ in range(CALLS)],
        "HSCAN": lambda: [[b"HSCAN", b"h", b"0", b"COUNT", b"10"] for _ in range(CALLS)],
    }[name]()


NAMES = ["HGET", "HSET", "HEXISTS", "HINCRBY", "HRANDFIELD", "HSCAN", "HSET new", "HDEL"]


def per_call(c, name: str, n: int) -> float:
    """The best of three timings of CALLS calls on the hash ``h`` of ``c``, in seconds."""
    best = float("inf")
    handler = COMMANDS[name.split()[0].lower()].handler
    for rep in range(3):
        argvs = _argvs(name, n, rep)
        gc.disable()
        try:
            t = time.perf_counter()
            for argv in argvs:
                handler(c, argv)
            best = min(best, (time.perf_counter() - t) / CALLS)
        finally:
            gc.enable()
        c.ks.effects.clear()
    return best


@pytest.fixture(scope="module")
def timings():
    out = {}
    for n in (10, 1000, 1_000_000):
        c = Session(Keyspace())
        _fill(c, b"h", n, batch=1000)
        for name in NAMES:  # the writes that change the size last, on a packed hash too
            if n == 10 and name in ("HSET new", "HDEL"):
                c = Session(Keyspace())
                _fill(c, b"h", 10 + 3 * CALLS if name == "HDEL" else 10, batch=1000)
            out[(name, n)] = per_call(c, name, n)
    return out


@pytest.mark.parametrize("name", ["HGET", "HSET"])
def test_hget_hset_on_a_million_fields_cost_what_they_do_on_ten(timings, name):
    small, big = timings[(name, 10)], timings[(name, 1_000_000)]
    print(f"\n{name}: {small * 1e6:.2f} us at 10 fields, {big * 1e6:.2f} us at 1M ({big / small:.2f}x)")
    assert big <= 10 * small


@pytest.mark.parametrize("name", NAMES)
def test_per_field_commands_do_not_grow_with_the_hash(timings, name):
    k1, m1 = timings[(name, 1000)], timings[(name, 1_000_000)]
    print(f"\n{name}: {k1 * 1e6:.2f} us at 1k fields, {m1 * 1e6:.2f} us at 1M ({m1 / k1:.2f}x)")
    assert m1 <= 50 * k1
