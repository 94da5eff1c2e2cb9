"""RDB files exchanged with a real redis-server 7.0.15, both ways.

The same commands build the same dataset on a Keel server and on a
redis-server: every type in its small and big encodings (strings int,
embstr, raw and LZF-compressible; lists of one listpack and of many nodes;
sets intset and hashtable; hashes and zsets listpack and table/skiplist;
streams with deleted entries, several nodes, consumer groups, PELs with
delivery counts, an empty one), keys with TTLs, three databases and a
FUNCTION library.

* Redis writes it (SAVE) -> ``parse_file`` -> every key, expiry, database
  and the library equal to Keel's: values are compared by Keel's digest of
  their logical content (engine.digest), against the value Keel holds for
  the same key.
* Keel's values -> ``RdbWriter`` (version 10) -> a new redis-server started
  on that file loads it -> every key read back from Redis (DUMP, decoded by
  Keel) equal to Keel's, with the same expiry, and the library callable.
"""

from __future__ import annotations

import os
import time

import pytest

from engine import rdb, rdbfile
from engine.digest import value_digest
from tests.conftest import reference
from tests.support import RedisProcess

FUTURE_MS = 4102444800000  # 2100-01-01: the same absolute expiry on both servers
LIBRARY = "#!lua name=rdblib\nredis.register_function('rdbf', function(keys, args) return 'from-rdb' end)"

DATASET = [
    ("SET", "s:int", "12345"), ("SET", "s:neg", "-70000"), ("SET", "s:emb", "hello"), ("SET", "s:empty", ""),
    ("SET", "s:raw", "r" * 100), ("SET", "s:lzf", "abc" * 2000), ("SET", "s:bin", bytes(range(256))),
    ("SET", "12345", "an integer key"), ("SET", "s:ttl", "v", "PXAT", FUTURE_MS),
    ("SET", "s:grown", "abc"), ("APPEND", "s:grown", "def" * 30),
    ("PFADD", "hll", "a", "b", "c"),
    ("RPUSH", "l:small", "a", "1", "-2", "x" * 70),
    ("RPUSH", "l:big", *[f"item:{i}" for i in range(3000)]),
    ("RPUSH", "l:huge-element", "a", "y" * 10000, "b"),
    ("SADD", "set:int", "1", "2", "-3", "9223372036854775807"),
    ("SADD", "set:small-strings", "a", "b", "7"),
    ("SADD", "set:table", *[f"m{i}" for i in range(200)]),
    ("SADD", "set:bigint", *[str(i) for i in range(600)]),
    ("HSET", "h:lp", "f", "v", "n", "12"),
    ("HSET", "h:table", *[x for i in range(600) for x in (f"f{i}", f"v{i}")]),
    ("HSET", "h:long-value", "f", "v" * 100),
    ("ZADD", "z:lp", "1", "a", "2.5", "b", "-inf", "c"),
    ("ZADD", "z:skip", *[x for i in range(200) for x in (str(i / 3), f"m{i}")]),
    ("ZADD", "z:long-member", "1", "m" * 100),
    ("PEXPIREAT", "h:table", FUTURE_MS), ("PEXPIREAT", "z:lp", FUTURE_MS + 1),
    ("XADD", "x:s", "1-1", "f", "v"), ("XADD", "x:s", "1-2", "f", "w"),
    ("XADD", "x:s", "2-0", "a", "b", "c", "d"), ("XADD", "x:s", "3-0", "f", "z"),
    ("XDEL", "x:s", "1-2"),
    ("XGROUP", "CREATE", "x:s", "g1", "0"), ("XGROUP", "CREATE", "x:s", "g2", "$"),
    ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "1", "STREAMS", "x:s", ">"),
    ("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", "x:s", ">"),
    ("XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "x:s", "0"),  # delivery count 2
    ("XGROUP", "CREATECONSUMER", "x:s", "g1", "carol"),
    ("XGROUP", "CREATE", "x:empty", "g", "$", "MKSTREAM"),
    *[("XADD", "x:big", f"{i}-0", "f", str(i), *(("extra", "e") if i % 7 == 0 else ())) for i in range(1, 301)],
    ("XTRIM", "x:big", "MAXLEN", "250"), ("XDEL", "x:big", "100-0", "101-0"),
    ("XGROUP", "CREATE", "x:big", "g", "0"),
    ("XREADGROUP", "GROUP", "g", "c", "COUNT", "20", "STREAMS", "x:big", ">"),
    ("XACK", "x:big", "g", "60-0", "61-0"),
    ("SELECT", "2"), ("SET", "d2:k", "v"), ("HSET", "d2:h", "a", "b"), ("PEXPIREAT", "d2:k", FUTURE_MS),
    ("SELECT", "15"), ("SET", "d15:k", "v"),
    ("SELECT", "0"),
    ("FUNCTION", "LOAD", LIBRARY),
]
DATABASES = (0, 2, 15)


class Collect:
    """A sink keeping everything ``parse`` hands over."""

    def __init__(self):
        self.aux_fields = {}
        self.keys = {}
        self.functions = []

    def aux(self, name, value):
        self.aux_fields[name] = value

    def key(self, db, key, value, expire_ms):
        self.keys[(db, key)] = (value, expire_ms)

    def function(self, code):
        self.functions.append(code)


def keys_and_values(client) -> dict:
    """{(db, key): (value, expire_ms)} of a server, read by DUMP and PEXPIRETIME."""
    out = {}
    for db in DATABASES:
        client.call("SELECT", db)
        for key in client.call("KEYS", "*"):
            expire = client.call("PEXPIRETIME", key)
            out[(db, key)] = (rdb.restore(client.call("DUMP", key)), None if expire < 0 else expire)
    client.call("SELECT", 0)
    return out


@pytest.fixture(scope="module")
def built(keel_own, redis_own):
    """Both servers hold DATASET; (Keel's keys and values, Keel client, Redis client)."""
    keel, ref = keel_own.client(), redis_own.client()
    for c in (keel, ref):
        c.call("FLUSHALL")
        c.call("FUNCTION", "FLUSH")
        for cmd, reply in zip(DATASET, c.pipeline(DATASET)):
            assert not isinstance(reply, str), (cmd, reply)
    yield keys_and_values(keel), keel, ref
    keel.close()
    ref.close()


def test_redis_dump_rdb_parses_into_keels_values(built, redis_own):
    expected, _, ref = built
    assert ref.call("SAVE") == b"OK"
    sink = Collect()
    rdbfile.parse_file(os.path.join(redis_own.dir, "dump.rdb"), sink)
    assert sink.aux_fields[b"redis-ver"] == b"7.0.15"
    assert sink.functions == [LIBRARY.encode()]
    assert set(sink.keys) == set(expected)
    for where, (value, expire) in expected.items():
        got, got_expire = sink.keys[where]
        assert got_expire == expire, where
        assert value_digest(got) == value_digest(value), where
    # delivery times (which the digest leaves out) are Redis's
    now = int(time.time() * 1000)
    pel = sink.keys[(0, b"x:s")][0].groups[b"g1"].pel
    for entry_id, consumer, idle, count in ref.call("XPENDING", "x:s", "g1", "-", "+", 10):
        ms, seq = map(int, entry_id.split(b"-"))
        assert abs((now - pel[(ms, seq)].time) - idle) < 2000
        assert pel[(ms, seq)].count == count and pel[(ms, seq)].consumer.name == consumer


def test_the_redis_file_held_the_encodings_under_test(built, redis_own):
    _, _, ref = built
    want = {"s:int": b"int", "s:emb": b"embstr", "s:raw": b"raw", "l:big": b"quicklist",
            "set:int": b"intset", "set:table": b"hashtable", "h:lp": b"listpack", "h:table": b"hashtable",
            "z:lp": b"listpack", "z:skip": b"skiplist", "x:s": b"stream"}
    for key, enc in want.items():
        assert ref.call("OBJECT", "ENCODING", key) == enc, key
    assert ref.call("CONFIG", "GET", "rdbcompression") == [b"rdbcompression", b"yes"]  # s:lzf is compressed


@pytest.fixture(scope="module")
def loaded(built):
    """A redis-server 7.0.15 started on the RDB file Keel's values were written into."""
    expected, keel, _ = built
    libraries = keel.call("FUNCTION", "LIST", "WITHCODE")
    codes = [lib[lib.index(b"library_code") + 1] for lib in libraries]
    w = rdbfile.RdbWriter()
    parts = [w.header({"redis-ver": "7.0.15", "redis-bits": 64, "ctime": 1700000000, "aof-base": 0})]
    parts += [w.function(code) for code in codes]
    for db in DATABASES:
        here = {k: v for (d, k), v in expected.items() if d == db}
        parts.append(w.select(db, len(here), sum(1 for _, e in here.values() if e is not None)))
        for key, (value, expire) in here.items():
            if type(value) is bytes and len(key) % 2:  # both paths, on alternate keys
                parts.append(w.string_entry(key, value, expire))
            else:
                parts.append(w.entry(key, rdb.encode_value(value), expire))
    parts.append(w.end())
    if not RedisProcess.available():
        reference()  # skips, or fails under CI
    proc = RedisProcess("--dbfilename", "keel.rdb")
    with open(os.path.join(proc.dir, "keel.rdb"), "wb") as f:
        f.write(b"".join(parts))
    proc.start()
    c = proc.client()
    yield expected, c
    c.close()
    proc.cleanup()


def test_redis_7_0_loads_the_rdb_keel_writes_with_every_key_equal(loaded):
    expected, c = loaded
    assert keys_and_values(c).keys() == expected.keys()
    for where, (value, expire) in keys_and_values(c).items():
        assert expire == expected[where][1], where
        assert value_digest(value) == value_digest(expected[where][0]), where


def test_redis_7_0_reads_the_streams_groups_and_pending_entries_keel_wrote(loaded, built):
    _, c = loaded
    _, keel, _ = built
    for key, group in (("x:s", "g1"), ("x:big", "g")):
        assert c.call("XPENDING", key, group) == keel.call("XPENDING", key, group)
        assert c.call("XRANGE", key, "-", "+") == keel.call("XRANGE", key, "-", "+")
        theirs = c.call("XPENDING", key, group, "-", "+", 100)
        ours = keel.call("XPENDING", key, group, "-", "+", 100)
        assert [p[:2] + p[3:] for p in theirs] == [p[:2] + p[3:] for p in ours]
        # delivery times carried: the idle times agree but for the time between the two reads
        assert all(abs(t[2] - o[2]) < 2000 for t, o in zip(theirs, ours))
    theirs = {row[1]: dict(zip(row[::2], row[1::2])) for row in c.call("XINFO", "CONSUMERS", "x:s", "g1")}
    ours = {row[1]: dict(zip(row[::2], row[1::2])) for row in keel.call("XINFO", "CONSUMERS", "x:s", "g1")}
    assert sorted(theirs) == [b"alice", b"bob", b"carol"] == sorted(ours)
    for name in theirs:  # seen times carried
        assert theirs[name][b"pending"] == ours[name][b"pending"]
        assert abs(theirs[name][b"idle"] - ours[name][b"idle"]) < 2000


def test_redis_7_0_runs_the_function_library_keel_wrote(loaded):
    _, c = loaded
    assert c.call("FCALL", "rdbf", 0) == b"from-rdb"
