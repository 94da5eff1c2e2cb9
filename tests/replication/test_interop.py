"""Keel and a real redis-server 7.0.15 replicating each other.

- redis-server as a replica of a Keel primary holding every type: the RDB
  Keel sends (diskless ``$EOF:`` and disk ``$<length>``) loads on Redis
  with every key, expiry, stream group and library equal, and the live stream
  (MULTI/EXEC, a writing EVAL, EXPIRE, SPOP, INCRBYFLOAT, a BLPOP served
  later) keeps it equal: Keel streams effects, as Redis does.
- Keel as a replica of a redis-server primary holding every type, synced
  from Redis's diskless form (``$EOF:<mark>``) and from its disk form
  (``$<length>``), then following the live stream.
- The replication commands' replies and errors, the same commands sent to
  a Keel server and to a redis-server.

The data makers at the top (every type, a writer thread) serve the other
replication modules too.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.replication.conftest import need
from tests.replication.support import HOST, Group, Node, call, wait_for, wait_link_up, wait_offsets_match
from tests.support import Err, KeelProcess, Pair, RedisProcess, RespClient

DELAY0 = ["--repl-diskless-sync-delay", "0"]


# --- data makers, shared with test_keel_replication and test_faults ----------------------

LIBRARY = ("#!lua name=keellib\n"
           "redis.register_function('kset', function(keys, args) "
           "return redis.call('SET', keys[1], args[1]) end)")


def fill_every_type(c: RespClient, prefix: str = "") -> None:
    """Every type in its small and its big encoding, TTLs, a stream with a
    consumer group and a PEL, three databases and a function library."""
    p = prefix
    big = 200  # past every *-max-listpack-entries default (128)
    cmds = [
        ("SELECT", 0),
        ("SET", p + "s:int", 12345), ("SET", p + "s:raw", "hello world, a raw string of some length"),
        ("SET", p + "s:big", "x" * 20000), ("SET", p + "s:ttl", "v", "PX", 3_600_000),
        ("RPUSH", p + "l:small", "a", "b", "c"),
        ("RPUSH", p + "l:big", *[f"item-{i}" for i in range(big)]),
        ("SADD", p + "set:int", 1, 2, 3, 99),
        ("SADD", p + "set:lp", "a", "b", "c"),
        ("SADD", p + "set:ht", *[f"m{i}" for i in range(big)]),
        ("ZADD", p + "z:small", 1, "a", 2.5, "b", -3, "c"),
        ("ZADD", p + "z:big", *[x for i in range(big) for x in (i * 1.5, f"m{i}")]),
        ("HSET", p + "h:small", "f1", "v1", "f2", 2),
        ("HSET", p + "h:big", *[x for i in range(big) for x in (f"f{i}", f"v{i}")]),
        ("PEXPIRE", p + "h:big", 7_200_000),
        ("XADD", p + "x", "1-1", "a", 1), ("XADD", p + "x", "1-2", "b", 2), ("XADD", p + "x", "2-0", "c", 3),
        ("XGROUP", "CREATE", p + "x", "g1", "0"),
        ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 2, "STREAMS", p + "x", ">"),
        ("XGROUP", "CREATE", p + "x", "g2", "$"),
        ("SELECT", 3),
        ("SET", p + "db3:k", "in db 3"), ("RPUSH", p + "db3:l", 1, 2, 3),
        ("HSET", p + "db3:h", "f", "v"), ("EXPIRE", p + "db3:k", 5000),
        ("SELECT", 15),
        ("ZADD", p + "db15:z", 1, "one"),
        ("SELECT", 0),
    ]
    for cmd in cmds:
        r = c.call(*cmd)
        assert not isinstance(r, Err), (cmd, r)
    r = c.call("FUNCTION", "LOAD", "REPLACE", LIBRARY)
    assert r == b"keellib", r


class Writer(threading.Thread):
    """Keeps writing to ``port`` (several types, two databases) until ``stop()``."""

    def __init__(self, port: int, prefix: str = "w:"):
        super().__init__(daemon=True)
        self.port = port
        self.prefix = prefix
        self.done = threading.Event()
        self.count = 0
        self.error = None

    def run(self) -> None:
        p = self.prefix
        try:
            c = RespClient(self.port)
            i = 0
            while not self.done.is_set():
                db = 0 if i % 5 else 3
                batch = [("SELECT", db), ("INCR", p + "ctr"), ("RPUSH", p + "list", i),
                         ("HSET", p + "hash", f"f{i % 300}", i), ("ZADD", p + "zset", i, f"m{i % 250}"),
                         ("SADD", p + "set", i % 400), ("XADD", p + "stream", "*", "i", i),
                         ("SET", p + f"k{i % 50}", i, "EX", 1000), ("DEL", p + f"k{(i + 7) % 50}")]
                for r in c.pipeline(batch):
                    if isinstance(r, Err):
                        raise AssertionError(f"writer got {r}")
                self.count += 1
                i += 1
            c.close()
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self) -> int:
        self.done.set()
        self.join(10)
        assert self.error is None, self.error
        return self.count




# Keel's DEBUG DIGEST is its own hash (engine/digest.py), not Redis's bytes:
# across the two servers the datasets are compared as a logical dump.

READ = {b"string": lambda k: ("GET", k), b"list": lambda k: ("LRANGE", k, 0, -1),
        b"set": lambda k: ("SMEMBERS", k), b"zset": lambda k: ("ZRANGE", k, 0, -1, "WITHSCORES"),
        b"hash": lambda k: ("HGETALL", k)}


def _stream(c: RespClient, k: bytes):
    """A stream's entries, metadata, groups, PELs (without times) and consumers."""
    info = c.call("XINFO", "STREAM", k)
    meta = dict(zip(info[::2], info[1::2]))
    groups = []
    for g in c.call("XINFO", "GROUPS", k):
        name = dict(zip(g[::2], g[1::2]))[b"name"]
        pel = [e[:2] + e[3:] for e in c.call("XPENDING", k, name, "-", "+", 10000)]
        consumers = sorted((d[b"name"], d[b"pending"]) for d in
                           (dict(zip(x[::2], x[1::2])) for x in c.call("XINFO", "CONSUMERS", k, name)))
        groups.append((g, pel, consumers))
    return (c.call("XRANGE", k, "-", "+"), groups,
            [meta[f] for f in (b"length", b"last-generated-id", b"max-deleted-entry-id",
                               b"entries-added", b"recorded-first-entry-id")])


def dump(port: int) -> dict:
    """Every key of every database with its type, absolute expiry and content
    (unordered collections sorted), and the libraries; pipelined a SCAN
    batch at a time."""
    c = RespClient(port, timeout=60)
    out = {"functions": c.call("FUNCTION", "LIST")}
    for db in range(16):
        c.call("SELECT", db)
        cursor = b"0"
        while True:
            cursor, keys = c.call("SCAN", cursor, "COUNT", 1000)
            meta = c.pipeline([x for k in keys for x in (("TYPE", k), ("PEXPIRETIME", k))])
            types, expiries = meta[::2], meta[1::2]
            plain = [(k, t) for k, t in zip(keys, types) if t in READ]
            values = dict(zip([k for k, _ in plain], c.pipeline([READ[t](k) for k, t in plain])))
            for k, t, when in zip(keys, types, expiries):
                if t == b"stream":
                    v = _stream(c, k)
                elif t in (b"set", b"hash"):
                    v = sorted(values[k]) if t == b"set" else sorted(zip(values[k][::2], values[k][1::2]))
                elif t in READ:
                    v = values[k]
                else:
                    raise AssertionError(f"unexpected type {t!r} of {k!r}")
                out[(db, k)] = (t, when, v)
            if cursor == b"0":
                break
    c.close()
    return out


def assert_same_data(a: int, b: int) -> None:
    da, db = dump(a), dump(b)
    assert da.keys() == db.keys()
    for k in da:
        assert da[k] == db[k], k


def live_writes(port: int) -> None:
    """The writes whose effects differ from their requests."""
    c = RespClient(port)
    assert c.pipeline([("MULTI",), ("SET", "tx:a", 1), ("INCR", "tx:a"), ("LPUSH", "tx:l", "x", "y"),
                       ("EXEC",)])[-1] == [b"OK", 2, 2]
    assert c.call("EVAL", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], 5)",
                  2, "ev:a", "ev:n", "val") == 5
    assert c.call("EXPIRE", "s:raw", 1000) == 1
    assert c.call("SET", "ex:k", "v", "EX", 500) == b"OK"
    c.call("SADD", "sp", *range(20))
    assert len(c.call("SPOP", "sp", 5)) == 5
    assert c.call("SPOP", "sp") is not None
    assert c.call("INCRBYFLOAT", "fl", "1.1") == b"1.1"
    assert c.call("INCRBYFLOAT", "fl", "2.05") == b"3.15"
    assert c.call("HINCRBYFLOAT", "h:small", "fl", "0.5") == b"0.5"
    blocked = RespClient(port)
    blocked.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nbl\r\n$1\r\n0\r\n")
    wait_for(lambda: b"blocked_clients:1" in c.call("INFO", "clients"), what="BLPOP to block")
    assert c.call("RPUSH", "bl", "one", "two") == 2
    blocked.sock.settimeout(5)
    assert blocked.read() == [b"bl", b"one"]
    blocked.close()
    assert not isinstance(c.call("XADD", "x", "*", "live", 1), Err)
    assert c.call("XACK", "x", "g1", "1-1") == 1
    assert c.call("ZINCRBY", "z:small", "0.25", "a") == b"1.25"
    assert c.call("SELECT", 3) == b"OK"
    assert c.call("DEL", "db3:l") == 1
    assert c.call("SETRANGE", "db3:k", 3, "X") == 7
    c.close()


def _offsets_equal(primary: Node, replica: Node) -> bool:
    """The replica's offset equals the primary's; Redis's slave_repl_offset and
    Keel's master_repl_offset count the same bytes."""
    p = primary.info()
    r = replica.info()
    return r.get("master_link_status") == "up" and r["slave_repl_offset"] == p["master_repl_offset"]


# --- redis-server replicating Keel -----------------------------------------------------

@pytest.fixture(scope="module")
def keel_to_redis():
    need("redis-server")
    primary = Node("keel", "keel-primary", DELAY0)
    replica = Node("redis", "redis-replica", ["--enable-debug-command", "yes"])
    try:
        primary.start()
        c = primary.client(direct=True)
        fill_every_type(c)
        c.close()
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_link_up(replica)
        wait_for(lambda: _offsets_equal(primary, replica), what="redis replica caught up")
    except BaseException:
        primary.cleanup()
        replica.cleanup()
        raise
    yield primary, replica
    replica.cleanup()
    primary.cleanup()


def test_redis_replica_of_keel_loads_every_type(keel_to_redis):
    primary, replica = keel_to_redis
    assert_same_data(primary.direct, replica.direct)
    assert call(replica.direct, "OBJECT", "ENCODING", "z:big") == b"skiplist"
    assert call(replica.direct, "XINFO", "GROUPS", "x")[0][:8] == call(primary.direct, "XINFO", "GROUPS", "x")[0][:8]
    assert 3_000_000 < call(replica.direct, "PTTL", "s:ttl") <= 3_600_000
    assert call(replica.direct, "FCALL_RO", "kset", 1, "k", "v") == \
        Err("READONLY You can't write against a read only replica.")


def test_redis_replica_of_keel_follows_the_live_stream(keel_to_redis):
    primary, replica = keel_to_redis
    live_writes(primary.direct)
    wait_for(lambda: _offsets_equal(primary, replica), what="redis replica caught up")
    assert_same_data(primary.direct, replica.direct)
    assert call(replica.direct, "GET", "fl") == b"3.15"
    assert call(replica.direct, "LRANGE", "bl", 0, -1) == [b"two"]
    assert 0 < call(replica.direct, "TTL", "s:raw") <= 1000


def test_redis_replica_of_keel_loads_a_disk_form_rdb(keel_to_redis):
    """repl-diskless-sync no on Keel: the RDB goes as ``$<length>``."""
    primary, replica = keel_to_redis
    assert call(primary.direct, "CONFIG", "SET", "repl-diskless-sync", "no") == b"OK"
    try:
        fulls = int(primary.info("stats")["sync_full"])
        assert call(replica.direct, "REPLICAOF", "NO", "ONE") == b"OK"
        assert call(replica.direct, "SET", "replica-only", "1") == b"OK"
        assert call(replica.direct, "REPLICAOF", HOST, primary.port) == b"OK"
        wait_link_up(replica)
        wait_for(lambda: _offsets_equal(primary, replica), what="redis replica caught up")
        assert int(primary.info("stats")["sync_full"]) == fulls + 1
        assert call(replica.direct, "EXISTS", "replica-only") == 0
        assert_same_data(primary.direct, replica.direct)
    finally:
        call(primary.direct, "CONFIG", "SET", "repl-diskless-sync", "yes")


def test_wait_counts_a_redis_replica(keel_to_redis):
    primary, replica = keel_to_redis
    c = primary.client(direct=True)
    assert c.call("SET", "waited", "1") == b"OK"
    t = time.monotonic()
    assert c.call("WAIT", 1, 2000) == 1  # the GETACK in the stream makes Redis answer at once
    assert time.monotonic() - t < 1.0
    c.close()
    info = primary.info()
    assert info["connected_slaves"] == "1"
    assert info["slave0"].startswith(f"ip=127.0.0.1,port={replica.port},state=online,")


# --- Keel replicating redis-server ------------------------------------------------------

@pytest.fixture(scope="module")
def redis_to_keel():
    need("redis-server")
    primary = Node("redis", "redis-primary", DELAY0 + ["--enable-debug-command", "yes",
                                                        "--repl-diskless-sync", "yes"])
    replica = Node("keel", "keel-replica", [])
    try:
        primary.start()
        c = primary.client(direct=True)
        fill_every_type(c)
        c.close()
        replica.start(["--replicaof", HOST, str(primary.port)])
        wait_link_up(replica)
        wait_for(lambda: _offsets_equal(primary, replica), what="keel replica caught up")
    except BaseException:
        primary.cleanup()
        replica.cleanup()
        raise
    yield primary, replica
    replica.cleanup()
    primary.cleanup()


def _full_syncs(redis_primary: Node) -> int:
    return int(redis_primary.info("stats")["sync_full"])


def test_keel_replica_of_redis_loads_a_diskless_rdb(redis_to_keel):
    primary, replica = redis_to_keel
    assert _full_syncs(primary) == 1
    assert primary.info("persistence")["rdb_saves"] == "0"  # diskless: no file was saved
    assert_same_data(primary.direct, replica.direct)
    assert call(replica.direct, "XPENDING", "x", "g1") == [2, b"1-1", b"1-2", [[b"alice", b"2"]]]
    assert call(replica.direct, "SET", "k", "v") == Err("READONLY You can't write against a read only replica.")


def test_keel_replica_of_redis_follows_the_live_stream(redis_to_keel):
    primary, replica = redis_to_keel
    live_writes(primary.direct)
    wait_for(lambda: _offsets_equal(primary, replica), what="keel replica caught up")
    assert_same_data(primary.direct, replica.direct)
    assert call(replica.direct, "GET", "ev:a") == b"val"


def test_keel_replica_of_redis_loads_a_disk_rdb(redis_to_keel):
    """repl-diskless-sync no: Redis saves to disk and sends ``$<length>``.
    REPLICAOF NO ONE gives Keel a new id, so its PSYNC gets +FULLRESYNC."""
    primary, replica = redis_to_keel
    assert call(primary.direct, "CONFIG", "SET", "repl-diskless-sync", "no") == b"OK"
    c = primary.client(direct=True)
    assert c.call("FLUSHALL") == b"OK"
    fill_every_type(c)
    c.close()
    fulls = _full_syncs(primary)
    assert call(replica.direct, "REPLICAOF", "NO", "ONE") == b"OK"
    assert call(replica.direct, "SET", "replica-only", "1") == b"OK"  # gone after the full sync
    assert call(replica.direct, "REPLICAOF", HOST, primary.port) == b"OK"
    wait_for(lambda: _full_syncs(primary) == fulls + 1, what="a full sync")
    wait_for(lambda: primary.info("persistence")["rdb_saves"] == "1", what="the RDB saved to disk")
    wait_link_up(replica)
    wait_for(lambda: _offsets_equal(primary, replica), what="keel replica caught up")
    assert_same_data(primary.direct, replica.direct)
    assert call(replica.direct, "EXISTS", "replica-only") == 0
    live_writes(primary.direct)
    wait_for(lambda: _offsets_equal(primary, replica), what="keel replica caught up")
    assert_same_data(primary.direct, replica.direct)


def test_redis_sub_replica_of_a_keel_replica_of_redis(redis_to_keel):
    """redis-server -> Keel -> redis-server: the Keel replica serves a full
    sync of what it got from Redis, and passes the live stream on."""
    primary, replica = redis_to_keel
    sub = Node("redis", "redis-sub", ["--enable-debug-command", "yes"])
    try:
        sub.start(["--replicaof", HOST, str(replica.port)])
        wait_link_up(sub)
        c = primary.client(direct=True)
        assert c.pipeline([("MULTI",), ("HSET", "chain", "f", "v"), ("SPOP", "sp"), ("EXEC",)])[-1][0] == 1
        c.close()
        wait_for(lambda: _offsets_equal(primary, replica) and _offsets_equal(primary, sub),
                 what="the chain caught up")
        assert call(sub.direct, "HGET", "chain", "f") == b"v"
        assert_same_data(primary.direct, sub.direct)
        assert sub.info()["master_replid"] == primary.info()["master_replid"]
    finally:
        sub.cleanup()


@pytest.mark.soak
def test_full_sync_of_a_big_dataset_under_writers_ends_equal():
    """200k keys and every type, three writers going on while a fresh replica
    syncs in full and catches up, then a redis-server replica too."""
    need("redis-server")
    g = Group("keel", 1)
    redis_replica = Node("redis", "redis-replica", ["--enable-debug-command", "yes"])
    try:
        g.primary.start()
        p, r = g.primary, g.replicas[0]
        assert call(p.direct, "DEBUG", "POPULATE", 200_000, "big", 100, timeout=60) == b"OK"
        c = p.client(direct=True)
        fill_every_type(c)
        c.close()
        writers = [Writer(p.direct, prefix=f"soak{i}:") for i in range(3)]
        for w in writers:
            w.start()
        r.start(["--replicaof", HOST, str(p.port)])
        redis_replica.start(["--replicaof", HOST, str(p.port)])
        wait_link_up(r, 120)
        wait_link_up(redis_replica, 120)
        time.sleep(2)
        for w in writers:
            w.stop()
        wait_offsets_match(p, [r], timeout=60)
        assert p.info("stats")["sync_full"] == "2"
        assert call(p.direct, "DEBUG", "DIGEST", timeout=30) == call(r.direct, "DEBUG", "DIGEST", timeout=30)
        wait_for(lambda: redis_replica.info()["slave_repl_offset"] == p.info()["master_repl_offset"], timeout=60,
                 what="the redis replica caught up")
        assert_same_data(p.direct, redis_replica.direct)
    finally:
        redis_replica.cleanup()
        g.cleanup()


# --- the commands' replies and errors, next to redis-server ---------------------------

COMMANDS = [
    ("REPLICAOF",), ("REPLICAOF", "127.0.0.1"), ("REPLICAOF", "127.0.0.1", "abc"),
    ("REPLICAOF", "127.0.0.1", "70000"), ("REPLICAOF", "127.0.0.1", "-1"), ("REPLICAOF", "NO", "TWO"),
    ("REPLICAOF", "NO", "ONE"), ("SLAVEOF", "no", "one"), ("ROLE", "x"), ("ROLE",),
    ("REPLCONF",), ("REPLCONF", "listening-port"), ("REPLCONF", "bogus", "1"), ("REPLCONF", "capa", "eof"),
    ("REPLCONF", "listening-port", "x"), ("REPLCONF", "listening-port", "70000"),
    ("PSYNC",), ("PSYNC", "?"), ("PSYNC", "?", "x"), ("SYNC", "x"),
    ("WAIT", 0, 0), ("MULTI",), ("WAIT", 1, 0), ("EXEC",), ("EVAL", "return redis.call('WAIT', 0, 0)", 0),
    ("FAILOVER", "x"), ("FAILOVER",), ("FAILOVER", "ABORT"), ("FAILOVER", "TO", "127.0.0.1"),
    ("FAILOVER", "TIMEOUT", "x"), ("FAILOVER", "TO", "127.0.0.1", 1, "FORCE"), ("FAILOVER", "TIMEOUT", 0),
    ("FAILOVER", "TIMEOUT", -1), ("FAILOVER", "TO", "h", "x"), ("FAILOVER", "TIMEOUT", 10, "TIMEOUT", 20),
    ("FAILOVER", "TO", "h", 1, "TO", "h", 2), ("FAILOVER", "abort"), ("FAILOVER", "to", "h", 1, "timeout", 5),
    ("FAILOVER", "TO", "h", 1, "FORCE", "TIMEOUT", 10), ("FAILOVER", "FORCE"),
    ("FAILOVER", "TO", "h", 1, "TIMEOUT", 10, "FORCE"), ("FAILOVER", "ABORT", "TIMEOUT", 5),
    ("FAILOVER", "ABORT", "TO", "h", 1),
    # a primary nobody serves: a replica whose link never comes up
    ("REPLICAOF", "127.0.0.1", 1), ("REPLICAOF", "127.0.0.1", 1), ("WAIT", 0, 0), ("FAILOVER",),
    ("ROLE",),  # (the state is checked apart: connect or connecting, depending on the moment)
    ("REPLICAOF", "no", "one"), ("ROLE",),
]


@pytest.fixture(scope="module")
def pair():
    need("redis-server")
    k, r = KeelProcess().start(), RedisProcess().start()
    p = Pair(k.client(), r.client())
    yield p
    p.close()
    k.cleanup()
    r.cleanup()


def test_replication_commands_reply_as_redis(pair):
    for cmd in COMMANDS:
        if cmd == ("ROLE",) and pair.keel.call("ROLE")[0] == b"slave":
            for role in pair.both("ROLE"):
                assert role[:3] == [b"slave", b"127.0.0.1", 1] and role[3] in (b"connect", b"connecting")
                assert role[4] == -1
            continue
        pair.check(*cmd)


def test_a_server_without_a_log_cannot_replicate_or_waitaof():
    k = KeelProcess("--appendonly", "no").start()
    try:
        c = k.client()
        assert c.call("REPLICAOF", "127.0.0.1", 1) == Err(
            "ERR a Keel replica journals what it applies: set appendonly yes first")
        assert c.call("WAITAOF", 1, 0, 0) == Err(
            "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
        assert c.call("WAITAOF", 0, 0, 0) == [0, 0]
        assert c.call("ROLE") == [b"master", 0, []]
        c.close()
    finally:
        k.cleanup()
