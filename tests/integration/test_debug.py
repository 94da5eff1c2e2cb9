"""DEBUG's subcommands, side by side with a real redis-server where Redis has them.

PROTOCOL is compared byte for byte in RESP2 and RESP3 over raw sockets;
errors word for word; POPULATE by the keys and values it leaves. DIGEST is
Keel's own (see engine.digest), so it is held to its contract instead: zeros
when empty, equal for the same data however it was built (order, encodings,
even on another server), different after any change. RELOAD must give back
exactly what it had (DIGEST, TTLs, every database), and a restart after it
too.
"""

from __future__ import annotations

import re
import time

import pytest

from server.commands.admin import DEBUG_SUBCOMMANDS
from tests.support import Err, KeelProcess, Pair, RedisProcess, encode, help_subcommands

ZEROS = b"0" * 40


@pytest.fixture(scope="module")
def keel_debug():
    """A Keel server of this module's own: RELOAD, PAUSE-CRON and the list threshold change it."""
    p = KeelProcess("--appendonly", "yes").start()
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def redis_debug():
    p = RedisProcess("--enable-debug-command", "yes").start()
    yield p
    p.cleanup()


@pytest.fixture
def dk(keel_debug):
    c = keel_debug.client()
    c.call("FLUSHALL")
    yield c
    c.close()


@pytest.fixture
def dpair(keel_debug, redis_debug):
    pr = Pair(keel_debug.client(), redis_debug.client())
    pr.keel.call("FLUSHALL")
    pr.ref.call("FLUSHALL")
    yield pr
    pr.close()


def raw(client, *args) -> bytes:
    """The exact bytes of one command's reply: a PING sent behind it marks its end."""
    client.send_raw(encode(args) + encode(("PING",)))
    buf = b""
    while not buf.endswith(b"+PONG\r\n"):
        chunk = client.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf[:-7]


# --- PROTOCOL ---------------------------------------------------------------------

PROTOCOL_TYPES = ("string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push",
                  "verbatim", "true", "false")


@pytest.mark.parametrize("resp", [2, 3])
def test_protocol_replies_are_redis_bytes(keel_debug, redis_debug, resp):
    k, r = keel_debug.client(timeout=2), redis_debug.client(timeout=2)
    try:
        for c in (k, r):
            c.call("HELLO", str(resp))
        for t in PROTOCOL_TYPES + ("nosuch", "MAP"):
            mine, theirs = raw(k, "DEBUG", "PROTOCOL", t), raw(r, "DEBUG", "PROTOCOL", t)
            assert mine == theirs, f"RESP{resp} DEBUG PROTOCOL {t}: keel {mine!r} != redis {theirs!r}"
    finally:
        k.close()
        r.close()


# --- errors, word for word -------------------------------------------------------------

ERRORS = [
    ("DEBUG", "NOSUCH"), ("DEBUG", "object"), ("DEBUG", "OBJECT", "a", "b"), ("DEBUG", "OBJECT", "nokey"),
    ("DEBUG", "DIGEST", "x"), ("DEBUG", "ERROR"), ("DEBUG", "ERROR", "a", "b"), ("DEBUG", "LOG"),
    ("DEBUG", "LOG", "a", "b"), ("DEBUG", "POPULATE"), ("DEBUG", "POPULATE", "-1"), ("DEBUG", "POPULATE", "abc"),
    ("DEBUG", "POPULATE", "1", "x", "-1"), ("DEBUG", "POPULATE", "1", "x", "y"),
    ("DEBUG", "POPULATE", "1", "x", "3", "extra"), ("DEBUG", "RELOAD", "BAD"), ("DEBUG", "RELOAD", "NOSAVE", "x"),
    ("DEBUG", "LISTPACK"), ("DEBUG", "LISTPACK", "nokey"), ("DEBUG", "LISTPACK", "str"),
    ("DEBUG", "LISTPACK", "h", "x"), ("DEBUG", "QUICKLIST", "str"), ("DEBUG", "QUICKLIST", "nokey"),
    ("DEBUG", "QUICKLIST"), ("DEBUG", "QUICKLIST-PACKED-THRESHOLD"),
    ("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "5000000000"), ("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "abc"),
    ("DEBUG", "PROTOCOL"), ("DEBUG", "PROTOCOL", "nosuch"), ("DEBUG", "PROTOCOL", "string", "x"),
    ("DEBUG", "SLEEP"), ("DEBUG", "SLEEP", "0", "1"), ("DEBUG", "CHANGE-REPL-ID", "x"), ("DEBUG", "PAUSE-CRON"),
    ("DEBUG", "REPLYBUFFER", "foo", "1"), ("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "abc"),
    ("DEBUG", "REPLYBUFFER", "RESIZING"), ("DEBUG", "SET-ACTIVE-EXPIRE"), ("DEBUG", "HELP", "x"),
    ("DEBUG", "DIGEST-VALUE"), ("DEBUG", "ZIPLIST", "h"), ("DEBUG", "JMAP"),  # gone in Redis 7 / never in Redis
]


def test_errors_match_redis(dpair):
    for c in (dpair.keel, dpair.ref):
        c.call("SET", "str", "x")
        c.call("HSET", "h", "f", "v")
    for args in ERRORS:
        dpair.check(*args)


def test_error_sends_the_message_as_given(keel_debug, redis_debug):
    k, r = keel_debug.client(), redis_debug.client()
    try:
        for msg in ("hello world", "-X foo", "WRONGTYPE made up", "a\nb\rc", ""):
            assert raw(k, "DEBUG", "ERROR", msg) == raw(r, "DEBUG", "ERROR", msg)
        assert raw(k, "DEBUG", "ERROR", "hello world") == b"-hello world\r\n"
    finally:
        k.close()
        r.close()


def test_harmless_hooks_reply_as_redis(dpair):
    for args in [("DEBUG", "SLEEP", "0"), ("DEBUG", "LOG", "hello"),
                 ("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "NEVER"), ("DEBUG", "REPLYBUFFER", "PEAK-RESET-TIME", "100"),
                 ("DEBUG", "REPLYBUFFER", "RESIZING", "1"), ("DEBUG", "SET-ACTIVE-EXPIRE", "1"),
                 ("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"), ("DEBUG", "CHANGE-REPL-ID")]:
        dpair.check(*args)
    # Redis's own fuzz run takes seconds: its reply, as 7.0 and 7.2 send it, written here.
    for name in ("STRINGMATCH-LEN", "STRINGMATCH-TEST"):
        assert dpair.keel.call("DEBUG", name) == b"Apparently Redis did not crash: test passed"


def test_set_disable_deny_scripts_as_redis(dpair):
    """1 lets scripts call commands flagged noscript (DEBUG itself among them);
    0 (or what atoi reads as 0) refuses them again."""
    call_debug = "return redis.call('debug', 'log', 'from a script')"
    steps = [("EVAL", call_debug, "0"),
             ("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"),
             ("EVAL", call_debug, "0"),
             ("EVAL", "return redis.call('debug', 'set-disable-deny-scripts', '0')", "0"),
             ("EVAL", call_debug, "0"),
             ("DEBUG", "SET-DISABLE-DENY-SCRIPTS"),
             ("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1", "2"),
             ("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"),
             ("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "x"),  # atoi: 0
             ("EVAL", call_debug, "0")]
    got = [dpair.check(*args) for args in steps]
    assert isinstance(got[0], Err) and "not allowed from script" in got[0]
    assert got[2] == b"OK" and isinstance(got[4], Err) and isinstance(got[-1], Err)


def test_help_names_every_subcommand(dk):
    names = help_subcommands(dk, "DEBUG")
    # (SET-DISABLE-DENY-SCRIPTS is missing from Redis's DEBUG HELP too.)
    assert names == set(DEBUG_SUBCOMMANDS) - {b"set-disable-deny-scripts"}
    assert {b"object", b"reload", b"sleep", b"set-active-expire", b"quicklist-packed-threshold", b"listpack",
            b"stringmatch-len", b"change-repl-id", b"error", b"protocol", b"digest", b"digest-value",
            b"populate", b"log", b"pause-cron", b"replybuffer", b"dict-resizing"} <= names


# --- OBJECT, LISTPACK, QUICKLIST ------------------------------------------------------

OBJECT_LINE = re.compile(rb"Value at:0x[0-9a-f]+ refcount:(\d+) encoding:(\S+) serializedlength:(\d+) "
                         rb"lru:(\d+) lru_seconds_idle:(\d+)(.*)")


def test_object_reports_encoding_and_serialized_length(dpair):
    k = dpair.keel
    for c in (k, dpair.ref):
        c.call("SET", "s", "bar")
        c.call("SET", "n", "123")
        c.call("SET", "big", "y" * 100)
        c.call("HSET", "h", "f", "v")
        c.call("SADD", "is", "1", "2", "3")
    for key in (b"s", b"n", b"big", b"h", b"is"):
        m = OBJECT_LINE.fullmatch(k.call("DEBUG", "OBJECT", key))
        assert m, key
        refcount, enc, serialized = int(m[1]), m[2], int(m[3])
        assert enc == k.call("OBJECT", "ENCODING", key)
        assert refcount == k.call("OBJECT", "REFCOUNT", key)
        # DUMP = type byte + body + 2-byte version + 8-byte CRC; Redis counts the body.
        assert serialized == len(k.call("DUMP", key)) - 11
        theirs = OBJECT_LINE.fullmatch(dpair.ref.call("DEBUG", "OBJECT", key))
        assert (m[1], m[2]) == (theirs[1], theirs[2]), key
        if key != b"big":  # Redis LZF-compresses the 100 y's; Keel writes strings raw
            assert m[3] == theirs[3], key


def test_object_of_a_quicklist_has_redis_fields(dpair):
    for c in (dpair.keel, dpair.ref):
        c.call("RPUSH", "l", *[b"e%03d" % i + b"." * 20 for i in range(1000)])  # ~25 KB: several nodes
    mine = OBJECT_LINE.fullmatch(dpair.keel.call("DEBUG", "OBJECT", "l"))
    theirs = OBJECT_LINE.fullmatch(dpair.ref.call("DEBUG", "OBJECT", "l"))
    assert mine[2] == theirs[2] == b"quicklist"
    fields = lambda m: dict(kv.split(b":") for kv in m[6].split())  # noqa: E731
    assert fields(mine).keys() == fields(theirs).keys()
    assert fields(mine)[b"ql_listpack_max"] == b"-2"
    assert int(fields(mine)[b"ql_nodes"]) > 1
    assert float(fields(mine)[b"ql_avg_node"]) == pytest.approx(1000 / int(fields(mine)[b"ql_nodes"]), abs=0.01)
    dpair.check("DEBUG", "QUICKLIST", "l")
    dpair.check("DEBUG", "QUICKLIST", "l", "1")


def test_listpack_and_quicklist_dumps_go_to_the_log(keel_debug, dk):
    dk.call("HSET", "hlp", "field-one", "value-one")
    assert dk.call("DEBUG", "LISTPACK", "hlp") == b"Listpack structure printed on stdout"
    assert dk.call("DEBUG", "LOG", "marker-for-the-test") == b"OK"
    log = keel_debug.log()
    assert "{entry 0: b'field-one'}" in log and "{entry 1: b'value-one'}" in log
    assert "DEBUG LOG: marker-for-the-test" in log


def test_quicklist_packed_threshold_makes_plain_nodes(keel_debug, dk):
    try:
        assert dk.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100") == b"OK"
        dk.call("RPUSH", "ql", *[b"x" * 30] * 400)  # a quicklist of packed nodes
        dk.call("RPUSH", "ql", b"p" * 150)  # over the threshold: a plain node
        assert dk.call("DEBUG", "QUICKLIST", "ql") == b"Quicklist structure printed on stdout"
        assert "container : PLAIN, size: 150" in keel_debug.log()
    finally:
        dk.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0")
    assert dk.call("LINDEX", "ql", "-1") == b"p" * 150


# --- DIGEST, DIGEST-VALUE --------------------------------------------------------------

def build(c, order: int) -> None:
    """The same data in two orders, with different encodings in the second."""
    if order == 0:
        c.call("SET", "s", "v")
        c.call("RPUSH", "l", "a", "b", "c")
        c.call("HSET", "h", "f1", "1", "f2", "2")
        c.call("SADD", "set", "1", "2", "3")
        c.call("ZADD", "z", "1", "a", "2.5", "b")
        c.call("XADD", "st", "1-1", "f", "v")
        c.call("XADD", "st", "2-1", "g", "w")
        c.call("XGROUP", "CREATE", "st", "grp", "0")
        c.call("SET", "t", "x", "PXAT", "4102444800000")
        c.call("SELECT", "5")
        c.call("SET", "s", "other db")
        c.call("SELECT", "0")
    else:
        c.call("SELECT", "5")
        c.call("SET", "s", "other db")
        c.call("SELECT", "0")
        c.call("SET", "t", "x", "PXAT", "4102444800000")
        c.call("XADD", "st", "1-1", "f", "v")
        c.call("XADD", "st", "2-1", "g", "w")
        c.call("XGROUP", "CREATE", "st", "grp", "0")
        c.call("ZADD", "z", "2.5", "b", "1", "a", "3", "big" + "x" * 100)  # a skiplist ...
        c.call("ZREM", "z", "big" + "x" * 100)  # ... that stays one
        c.call("SADD", "set", "3", "notint", "2", "1")  # a listpack, not an intset ...
        c.call("SREM", "set", "notint")
        c.call("HSET", "h", "f2", "2", "big", "y" * 100, "f1", "1")  # a hashtable ...
        c.call("HDEL", "h", "big")
        c.call("LPUSH", "l", "c", "b", "a")
        c.call("APPEND", "s", "v")  # a raw string, not an embstr


def test_digest_is_zero_when_empty_as_redis(dpair):
    assert dpair.check("DEBUG", "DIGEST") == ZEROS
    assert dpair.check("DEBUG", "DIGEST-VALUE", "nokey", "other") == [ZEROS, ZEROS]


def test_digest_equal_for_the_same_data_built_differently(dk, k):
    build(dk, 0)
    first = dk.call("DEBUG", "DIGEST")
    values = dk.call("DEBUG", "DIGEST-VALUE", "s", "l", "h", "set", "z", "st", "t", "nokey")
    assert re.fullmatch(rb"[0-9a-f]{40}", first) and first != ZEROS
    assert dk.call("OBJECT", "ENCODING", "set") == b"intset"
    dk.call("FLUSHALL")
    build(dk, 1)
    assert dk.call("OBJECT", "ENCODING", "set") == b"listpack"
    assert dk.call("OBJECT", "ENCODING", "h") == b"hashtable"
    assert dk.call("OBJECT", "ENCODING", "z") == b"skiplist"
    assert dk.call("DEBUG", "DIGEST") == first
    assert dk.call("DEBUG", "DIGEST-VALUE", "s", "l", "h", "set", "z", "st", "t", "nokey") == values
    assert values[-1] == ZEROS and len(set(values[:-1])) == 7
    build(k, 1)  # another server (the session's), the same data: the same digest
    assert k.call("DEBUG", "DIGEST") == first


@pytest.mark.parametrize("change", [
    ("SET", "s", "w"), ("RPUSH", "l", "d"), ("LSET", "l", "0", "z"), ("HSET", "h", "f1", "9"),
    ("SADD", "set", "4"), ("ZADD", "z", "1.5", "a"), ("XADD", "st", "3-1", "f", "v"),
    ("XREADGROUP", "GROUP", "grp", "alice", "COUNT", "1", "STREAMS", "st", ">"),
    ("PEXPIREAT", "t", "4102444800001"), ("PERSIST", "t"), ("EXPIRE", "s", "1000"), ("MOVE", "l", "7"),
    ("RENAME", "h", "h2"), ("DEL", "z"),
])
def test_digest_changes_with_any_change(dk, change):
    build(dk, 0)
    before = dk.call("DEBUG", "DIGEST")
    r = dk.call(*change)
    assert not isinstance(r, Err), r
    assert dk.call("DEBUG", "DIGEST") != before


def test_digest_value_follows_value_and_ttl(dk):
    dk.call("SET", "a", "1")
    dk.call("SET", "b", "1")
    a, b = dk.call("DEBUG", "DIGEST-VALUE", "a", "b")
    assert a == b  # the key's name is not part of its value's digest
    dk.call("EXPIRE", "b", "100")
    assert dk.call("DEBUG", "DIGEST-VALUE", "b") != [a]
    dk.call("PERSIST", "b")
    assert dk.call("DEBUG", "DIGEST-VALUE", "b") == [a]


# --- RELOAD ------------------------------------------------------------------------------

def state(c) -> tuple:
    """The digest, the keys and TTLs per database, and whether t and s still have a TTL."""
    ttls = tuple(c.call("PTTL", key) > 0 for key in (b"t", b"s"))
    keyspace = re.sub(rb",avg_ttl=\d+", b"", c.call("INFO", "keyspace"))
    return c.call("DEBUG", "DIGEST"), c.call("DBSIZE"), keyspace, ttls


def test_reload_keeps_everything(keel_debug, dk):
    build(dk, 0)
    dk.call("SET", "s", "v", "EX", "1000")
    before = state(dk)
    assert before[3] == (True, True)
    assert dk.call("DEBUG", "RELOAD") == b"OK"
    assert state(dk) == before
    assert dk.call("XINFO", "GROUPS", "st")[0][1] == b"grp"
    # NOSAVE rebuilds from the checkpoint and the log written since: the same again.
    dk.call("SET", "after", "reload")
    dk.call("DEL", "l")
    expected = state(dk)
    assert dk.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert state(dk) == expected
    # And so does a restart, from what the reloads left on disk.
    keel_debug.stop()
    keel_debug.start()
    c = keel_debug.client()
    try:
        assert state(c) == expected
    finally:
        c.close()


def test_reload_noflush_refuses_conflicts_without_merge(dk):
    dk.call("SET", "a", "disk")
    assert dk.call("DEBUG", "RELOAD") == b"OK"
    dk.call("SET", "a", "memory")
    dk.call("SET", "only-memory", "1")
    r = dk.call("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH")
    assert isinstance(r, Err) and "'a'" in r
    assert dk.call("GET", "a") == b"memory"  # nothing changed
    # NOSAVE rebuilds what is on disk, log included: a is "memory" there too.
    assert dk.call("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE") == b"OK"
    assert dk.call("MGET", "a", "only-memory") == [b"memory", b"1"]
    assert dk.call("DEBUG", "RELOAD", "MERGE") == b"OK"  # MERGE alone: a flush, then the load
    assert dk.call("DBSIZE") == 2


def test_reload_does_not_journal_twice(keel_debug, dk):
    """What the log holds after a reload replays to the same data (no doubled INCRs)."""
    dk.call("INCR", "counter")
    assert dk.call("DEBUG", "RELOAD") == b"OK"
    dk.call("INCR", "counter")
    assert dk.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert dk.call("GET", "counter") == b"2"


# --- POPULATE, CHANGE-REPL-ID, PAUSE-CRON ------------------------------------------------

def test_populate_as_redis(dpair):
    dpair.check("SET", "key:1", "mine")
    dpair.check("DEBUG", "POPULATE", "5")
    dpair.check("DEBUG", "POPULATE", "3", "pre", "10")
    dpair.check("DEBUG", "POPULATE", "3", "cut", "3")
    dpair.check("DEBUG", "POPULATE", "0")
    dpair.check("DEBUG", "POPULATE", "2", "pre", "0")
    dpair.check("DBSIZE")
    dpair.check("KEYS", "*", sort=True)
    dpair.check("MGET", "key:0", "key:1", "key:4", "pre:0", "pre:2", "cut:1", "key:5")


def test_populate_is_journaled(keel_debug, dk):
    dk.call("DEBUG", "POPULATE", "100", "durable")
    digest = dk.call("DEBUG", "DIGEST")
    assert dk.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"  # rebuilt from the log alone
    assert dk.call("DEBUG", "DIGEST") == digest and dk.call("DBSIZE") == 100


def test_change_repl_id_changes_master_replid(dk):
    def replid():
        line = [x for x in dk.call("INFO", "replication").split(b"\r\n") if x.startswith(b"master_replid:")]
        return line[0].split(b":")[1]

    before = replid()
    assert dk.call("DEBUG", "CHANGE-REPL-ID") == b"OK"
    after = replid()
    assert after != before and re.fullmatch(rb"[0-9a-f]{40}", after)


def test_pause_cron_stops_active_expiry(dk):
    try:
        assert dk.call("DEBUG", "PAUSE-CRON", "1") == b"OK"
        dk.call("SET", "gone", "1", "PX", "20")
        time.sleep(0.25)
        assert dk.call("DBSIZE") == 1  # nobody read it, no cron deleted it
    finally:
        assert dk.call("DEBUG", "PAUSE-CRON", "0") == b"OK"
    deadline = time.time() + 3
    while dk.call("DBSIZE") and time.time() < deadline:
        time.sleep(0.02)
    assert dk.call("DBSIZE") == 0


def test_reload_nosave_replays_function_records(dk):
    """FUNCTION LOAD in the log since the checkpoint replays into a scratch registry."""
    assert dk.call("DEBUG", "RELOAD") == b"OK"
    lib = "#!lua name=reloadlib\nredis.register_function('reloadf', function() return 7 end)"
    assert dk.call("FUNCTION", "LOAD", "REPLACE", lib) == b"reloadlib"
    dk.call("SET", "x", "1")
    try:
        assert dk.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"
        assert dk.call("FCALL", "reloadf", "0") == 7 and dk.call("GET", "x") == b"1"
    finally:
        dk.call("FUNCTION", "DELETE", "reloadlib")


def test_reload_refused_inside_a_transaction(dk):
    dk.call("SET", "a", "1")
    assert dk.call("MULTI") == b"OK"
    assert dk.call("INCR", "a") == b"QUEUED"
    assert dk.call("DEBUG", "RELOAD") == b"QUEUED"
    assert dk.call("INCR", "a") == b"QUEUED"
    assert dk.call("EXEC") == [2, Err("ERR DEBUG RELOAD is not allowed inside a transaction"), 3]
    assert dk.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"  # the log holds the whole transaction
    assert dk.call("GET", "a") == b"3"
