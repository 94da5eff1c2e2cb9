"""maxmemory, the eviction policies and per-key access information, on a real
Keel server, with redis-server side by side wherever the answer is
deterministic (maxmemory 1 refuses every denyoom command on both).

Sizes are small: the limit is ``STARTUP`` (what an empty server counts as
used) plus 256 KB, about a thousand 100-byte strings.
"""

from __future__ import annotations

import time

import pytest

from engine.memory import STARTUP
from tests.support import Err, KeelProcess, Pair, RedisProcess

OOM = Err("OOM command not allowed when used memory > 'maxmemory'.")
LIMIT = STARTUP + 256 * 1024
VALUE = b"v" * 100


@pytest.fixture(scope="module")
def servers():
    keel = KeelProcess("--appendfsync", "everysec").start()
    ref = RedisProcess().start()
    yield keel, ref
    keel.cleanup()
    ref.cleanup()


@pytest.fixture
def both(servers):
    keel, ref = servers
    p = Pair(keel.client(), ref.client())
    for c in (p.keel, p.ref):
        c.call("CONFIG", "SET", "maxmemory", "0")
        c.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        c.call("FLUSHALL")
    yield p
    for c in (p.keel, p.ref):
        c.call("CONFIG", "SET", "maxmemory", "0")
    p.close()


@pytest.fixture
def k(both):
    return both.keel


def info(c, section: str = "stats") -> dict:
    text = c.call("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def fill(c, prefix: str, n: int, *extra) -> list:
    """SET prefix0..prefix{n-1} (pipelined); the replies."""
    return c.pipeline([("SET", "%s%d" % (prefix, i), VALUE, *extra) for i in range(n)])


def dump_of(c, value=VALUE) -> bytes:
    c.call("SET", "__tmp", value)
    payload = c.call("DUMP", "__tmp")
    c.call("DEL", "__tmp")
    return payload


# --- OOM, side by side ----------------------------------------------------------

def test_noeviction_refuses_denyoom_commands_and_changes_nothing(both):
    both.check("SET", "a", "1")
    both.check("RPUSH", "l", "x")
    both.check("CONFIG", "SET", "maxmemory", "1")
    both.check("SET", "a", "2")
    both.check("SET", "b", "2")
    both.check("INCR", "a")  # denyoom too
    both.check("RPUSH", "l", "y")
    both.check("GET", "a")  # reads run
    both.check("LRANGE", "l", "0", "-1")
    both.check("DBSIZE")
    both.check("EXPIRE", "a", "100")  # not denyoom: runs
    both.check("DEL", "l")  # frees memory: runs
    both.check("DBSIZE")


def test_oom_in_multi_as_redis(both):
    both.check("SET", "a", "1")
    both.check("CONFIG", "SET", "maxmemory", "1")
    both.check("MULTI")
    both.check("GET", "a")  # over the limit every queued command is refused
    both.check("EXEC")  # EXECABORT
    both.check("MULTI")
    both.check("EXEC")  # an empty one runs


def test_exec_refused_when_a_queued_command_is_denyoom(both, servers):
    both.check("MULTI")
    both.check("SET", "a", "1")
    for s in servers:  # another client lowers the limit meanwhile
        c = s.client()
        c.call("CONFIG", "SET", "maxmemory", "1")
        c.close()
    both.check("EXEC")  # EXECABORT ... because of: OOM ...
    both.check("GET", "a")
    both.check("MULTI")
    both.check("GET", "a")


def test_oom_in_scripts_as_redis(both):
    both.check("SET", "a", "1")
    both.check("CONFIG", "SET", "maxmemory", "1")
    both.check("EVAL", "return redis.call('set','x','y')", "0")  # its first write is refused
    both.check("EVAL", "redis.call('get','a'); return redis.call('set','x','y')", "0")
    both.check("EVAL", "return redis.call('get','a')", "0")
    both.check("EVAL", "#!lua\nreturn redis.call('get','a')", "0")  # a shebang without flags: denyoom
    both.check("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set','x','y')", "0")
    both.check("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0")
    both.check("GET", "x")
    both.check("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)")


def test_functions_follow_their_flags_over_the_limit(both):
    both.check("FUNCTION", "FLUSH")
    both.check("FUNCTION", "LOAD", "#!lua name=lib\n"
               "redis.register_function('w', function() return 1 end)\n"
               "redis.register_function{function_name='r', callback=function() return 2 end, flags={'no-writes'}}")
    both.check("CONFIG", "SET", "maxmemory", "1")
    both.check("FCALL", "w", "0")
    both.check("FCALL", "r", "0")
    both.check("CONFIG", "SET", "maxmemory", "0")
    both.check("FUNCTION", "FLUSH")


def test_config_set_errors_as_redis(both):
    for name, value in (("maxmemory", "10xb"), ("maxmemory", "-1"), ("maxmemory", "1.5mb"),
                        ("maxmemory-policy", "lru"), ("maxmemory-samples", "0"),
                        ("maxmemory-eviction-tenacity", "101"), ("maxmemory-eviction-tenacity", "x"),
                        ("lfu-log-factor", "-1"), ("lfu-decay-time", "-1")):
        both.check("CONFIG", "SET", name, value)
    both.check("CONFIG", "SET", "maxmemory", "64mb")
    both.check("CONFIG", "GET", "maxmemory")
    both.check("CONFIG", "SET", "maxmemory", "1GB")
    both.check("CONFIG", "GET", "maxmemory")
    both.check("CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LFU")
    both.check("CONFIG", "GET", "maxmemory-policy")
    both.check("CONFIG", "SET", "maxmemory", "0")
    for name in ("maxmemory-samples", "maxmemory-eviction-tenacity", "lfu-log-factor", "lfu-decay-time"):
        both.check("CONFIG", "GET", name)


# --- OBJECT IDLETIME / FREQ, RESTORE, TOUCH, CLIENT NO-TOUCH ---------------------

def test_object_freq_and_idletime_errors_as_redis(both):
    both.check("SET", "a", "1")
    both.check("OBJECT", "FREQ", "a")  # no LFU policy: refused
    both.check("OBJECT", "FREQ", "nosuch")
    both.check("CONFIG", "SET", "maxmemory-policy", "volatile-lfu")
    both.check("OBJECT", "IDLETIME", "a")  # an LFU policy: refused
    both.check("OBJECT", "IDLETIME", "nosuch")
    both.check("SET", "b", "hello")  # (not an integer: Redis shares those, and their counter)
    both.check("OBJECT", "FREQ", "b")  # a new key starts at 5
    both.check("GET", "b")
    both.check("OBJECT", "FREQ", "b")  # the first read from 5 always counts


def test_restore_sets_idletime_and_freq_as_redis(both):
    payloads = (dump_of(both.keel), dump_of(both.ref))  # each server's own RDB version

    def restore(*args):
        k = both.keel.call("RESTORE", args[0], "0", payloads[0], *args[1:])
        r = both.ref.call("RESTORE", args[0], "0", payloads[1], *args[1:])
        assert k == r, (args, k, r)

    both.check("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    restore("r", "IDLETIME", "5000")
    k, r = both.both("OBJECT", "IDLETIME", "r")
    assert 5000 <= k <= 5001 and 5000 <= r <= 5001
    both.check("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    restore("f", "FREQ", "100")
    both.check("OBJECT", "FREQ", "f")
    restore("g", "FREQ", "256")
    restore("g", "IDLETIME", "-1")
    restore("g", "FREQ", "1", "IDLETIME", "1")


def test_reads_touch_and_type_ttl_exists_object_do_not(k):
    payload = dump_of(k)
    k.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    k.call("RESTORE", "a", "0", payload, "IDLETIME", "1000")
    for cmd in (("TYPE", "a"), ("TTL", "a"), ("PTTL", "a"), ("EXISTS", "a"), ("OBJECT", "ENCODING", "a"),
                ("EXPIRETIME", "a")):
        k.call(*cmd)
    assert k.call("OBJECT", "IDLETIME", "a") >= 1000
    k.call("GET", "a")
    assert k.call("OBJECT", "IDLETIME", "a") <= 1
    k.call("RESTORE", "b", "0", payload, "IDLETIME", "1000")
    k.call("MULTI")
    k.call("STRLEN", "b")  # inside EXEC too
    k.call("EXEC")
    assert k.call("OBJECT", "IDLETIME", "b") <= 1


def test_access_information_moves_with_swapdb_and_goes_with_flushdb(k):
    payload = dump_of(k)
    k.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    k.call("RESTORE", "a", "0", payload, "IDLETIME", "1000")
    k.pipeline([("SWAPDB", "0", "1"), ("SELECT", "1")])  # the hot path, then the full dispatch
    assert k.call("OBJECT", "IDLETIME", "a") >= 1000
    k.call("SWAPDB", "0", "1")
    k.call("SELECT", "0")
    assert k.call("OBJECT", "IDLETIME", "a") >= 1000
    k.call("FLUSHDB")
    k.call("SET", "a", "x")
    assert k.call("OBJECT", "IDLETIME", "a") <= 1


def test_client_no_touch(k):
    payload = dump_of(k)
    k.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    k.call("RESTORE", "a", "0", payload, "IDLETIME", "1000")
    assert k.call("CLIENT", "NO-TOUCH", "ON") == b"OK"
    k.call("GET", "a")
    k.pipeline([("GET", "a"), ("APPEND", "a", "x")])
    assert k.call("OBJECT", "IDLETIME", "a") >= 1000
    assert k.call("TOUCH", "a") == 1  # TOUCH still touches
    assert k.call("OBJECT", "IDLETIME", "a") <= 1
    k.call("RESTORE", "a", "0", payload, "IDLETIME", "1000", "REPLACE")
    assert k.call("CLIENT", "NO-TOUCH", "OFF") == b"OK"
    k.call("GET", "a")
    assert k.call("OBJECT", "IDLETIME", "a") <= 1
    assert k.call("CLIENT", "NO-TOUCH", "MAYBE") == Err("ERR syntax error")
    assert k.call("CLIENT", "NO-TOUCH") == Err("ERR wrong number of arguments for 'client|no-touch' command")


# --- eviction per policy --------------------------------------------------------

def _limit(k, policy: str) -> None:
    k.call("CONFIG", "SET", "maxmemory-policy", policy)
    k.call("CONFIG", "SET", "maxmemory", str(LIMIT))


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_evict_only_keys_with_a_ttl(k, policy):
    _limit(k, policy)
    fill(k, "keep", 300)
    assert set(fill(k, "ttl", 3000, "EX", "1000")) == {b"OK"}
    assert int(info(k)["evicted_keys"]) > 0
    assert k.pipeline([("EXISTS", "keep%d" % i) for i in range(300)]) == [1] * 300
    # Keys without a TTL until nothing is left to evict: then OOM, and nothing changes.
    replies = fill(k, "more", 2000)
    assert OOM in replies
    n = k.call("DBSIZE")
    assert k.call("SET", "one-more", "x") == OOM
    assert k.call("DBSIZE") == n and k.call("EXISTS", "one-more") == 0
    assert k.pipeline([("EXISTS", "keep%d" % i) for i in range(300)]) == [1] * 300


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_allkeys_policies_stay_under_the_limit(k, policy):
    _limit(k, policy)
    before = int(info(k)["evicted_keys"])
    assert set(fill(k, "k", 5000)) == {b"OK"}
    # Read together (one read, run back to back): the loop may still evict between two reads.
    n, stats = k.pipeline([("DBSIZE",), ("INFO", "stats")])
    assert 300 < n < 2000, n
    evicted = int(dict(line.split(":", 1) for line in stats.decode().splitlines() if ":" in line)["evicted_keys"])
    assert evicted - before == 5000 - n


def test_lru_keeps_the_keys_being_read(k):
    payload = dump_of(k)
    _limit(k, "allkeys-lru")
    # Hot keys look idle for an hour, then are read; cold ones look idle for 100 s.
    k.pipeline([("RESTORE", "hot%d" % i, "0", payload, "IDLETIME", "3600") for i in range(200)])
    k.pipeline([("GET", "hot%d" % i) for i in range(200)])
    k.pipeline([("RESTORE", "cold%d" % i, "0", payload, "IDLETIME", "100") for i in range(4000)])
    kept = sum(k.pipeline([("EXISTS", "hot%d" % i) for i in range(200)]))
    assert kept >= 190, kept
    # Not read, the idlest keys go first.
    k.pipeline([("RESTORE", "old%d" % i, "0", payload, "IDLETIME", "7200") for i in range(200)])
    k.pipeline([("RESTORE", "new%d" % i, "0", payload, "IDLETIME", "100") for i in range(2000)])
    assert sum(k.pipeline([("EXISTS", "old%d" % i) for i in range(200)])) <= 20


def test_lfu_keeps_the_keys_read_often(k):
    _limit(k, "allkeys-lfu")
    fill(k, "hot", 200)
    for _ in range(30):
        k.pipeline([("GET", "hot%d" % i) for i in range(200)])
    fill(k, "cold", 4000)
    kept = sum(k.pipeline([("EXISTS", "hot%d" % i) for i in range(200)]))
    assert kept >= 190, kept


def test_volatile_ttl_evicts_the_soonest_expiring_first(k):
    _limit(k, "volatile-ttl")
    k.pipeline([("SET", "soon%d" % i, VALUE, "EX", str(1000 + i)) for i in range(300)])
    k.pipeline([("SET", "late%d" % i, VALUE, "EX", str(100000 + i)) for i in range(3000)])
    assert sum(k.pipeline([("EXISTS", "soon%d" % i) for i in range(300)])) <= 30


def test_eviction_is_announced_journaled_as_del_and_stays_after_restart(tmp_path):
    keel = KeelProcess("--maxmemory", str(LIMIT), "--maxmemory-policy", "allkeys-random",
                       "--notify-keyspace-events", "Ee", dir=str(tmp_path)).start()
    try:
        sub = keel.client()
        sub.call("SUBSCRIBE", "__keyevent@0__:evicted")
        c = keel.client()
        fill(c, "k", 3000)
        msg = sub.read()
        assert msg[:2] == [b"message", b"__keyevent@0__:evicted"] and msg[2].startswith(b"k")
        st = info(c)
        assert int(st["evicted_keys"]) > 0 and "total_eviction_exceeded_time" in st
        assert "current_eviction_exceeded_time" in st
        kept = sorted(c.call("KEYS", "*"))
        assert 0 < len(kept) < 3000
        keel.stop()
        keel.start()
        c = keel.client()
        assert sorted(c.call("KEYS", "*")) == kept
    finally:
        keel.cleanup()


def test_eviction_after_config_set_runs_from_the_loop_and_is_journaled(tmp_path):
    """A lowered limit evicts at once, slice by slice from a loop callback (no
    command needed), and those DELs are in the log by themselves: after a
    kill -9 with no command since, the evicted keys stay gone."""
    keel = KeelProcess("--maxmemory-policy", "allkeys-lru", "--appendfsync", "always", dir=str(tmp_path)).start()
    try:
        c = keel.client()
        fill(c, "k", 3000)
        c.call("CONFIG", "SET", "maxmemory", str(LIMIT))
        time.sleep(1.0)  # nothing sent meanwhile: only the loop callback evicts and journals
        keel.kill()
        keel.start()
        n = keel.client().call("DBSIZE")
        assert 0 < n < 2000, n
    finally:
        keel.cleanup()
