"""Keel replicating Keel, real processes on loopback behind the harness's proxies:
a full sync of every type while a writer goes on, the read-only replica,
partial resync after a cut (from the log on disk, past repl-backlog-size),
a replica killed and restarted, a primary restarted under a behind replica,
a sub-replica, promotion and the other replica following the new id, ROLE
and INFO replication next to a redis-server pair (link up and down), WAIT
and WAITAOF, and the synchronous mode (min-replicas-to-ack) under a
partition; FAILOVER. The digest helpers at the top are shared with
test_faults (the data makers, with test_interop's).

Datasets are compared with DEBUG DIGEST (Keel's own hash of the logical
content, so Keel against Keel only: test_interop compares Keel with Redis
key by key), INFO keyspace and FUNCTION LIST. Whether a reconnect was a partial resync is read
from the primary's INFO stats (``sync_partial_ok``, ``sync_full``), as
Redis counts them.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from tests.replication.conftest import need
from tests.replication.support import (HOST, Group, Node, call, repl_offset, wait_for,
                                       wait_link_up, wait_offsets_match)
from tests.replication.test_interop import Writer, fill_every_type
from tests.support import Err, RespClient


# --- helpers shared with test_faults ----------------------------------------------------

def digest(port: int):
    r = call(port, "DEBUG", "DIGEST", timeout=10)
    assert not isinstance(r, Err), r
    return r


def dataset(port: int):
    """What two servers holding the same data agree on: digest, key counts, libraries."""
    return digest(port), call(port, "INFO", "keyspace").split(b"\r\n", 1)[1].replace(b"\r\n", b" ") \
        .decode(), call(port, "FUNCTION", "LIST")


def strip_expires(keyspace: str) -> str:
    return re.sub(r",avg_ttl=\d+", "", keyspace)


def assert_same_data(a: int, b: int) -> None:
    da, db = dataset(a), dataset(b)
    assert strip_expires(da[1]) == strip_expires(db[1])
    assert da[0] == db[0], "DEBUG DIGEST differs"
    assert da[2] == db[2]


def log_count(node: Node, text: str) -> int:
    return node.log().count(text)


def full_syncs(primary: Node) -> int:
    return int(primary.info("stats")["sync_full"])


def continues(primary: Node) -> int:
    return int(primary.info("stats")["sync_partial_ok"])


# --- the shared group: 1 primary + 1 replica, synced while a writer writes ---

ARGS = ["--repl-backlog-size", "16kb", "--checkpoint-log-size", "16kb"]


@pytest.fixture(scope="module")
def group():
    """A Keel primary filled with every type; its replica starts and syncs in
    full while a writer keeps writing; then the writer stops."""
    g = Group("keel", 1, args=ARGS)
    try:
        g.primary.start()
        c = g.primary.client(direct=True)
        fill_every_type(c)
        c.close()
        w = Writer(g.primary.direct)
        w.start()
        wait_for(lambda: w.count > 20, what="the writer to get going")
        before = w.count
        g.replicas[0].start(["--replicaof", HOST, str(g.primary.port)])
        wait_link_up(g.replicas[0])
        wait_for(lambda: w.count > before + 50, what="writes after the sync")
        g.during_sync = w.stop() - before
        wait_offsets_match(g.primary, g.replicas)
    except BaseException:
        g.cleanup()
        raise
    yield g
    g.cleanup()


@pytest.fixture(scope="module")
def redis_pair():
    """The same shape on redis-server, for ROLE / INFO / error texts."""
    need("redis-server")
    g = Group("redis", 1, args=["--repl-backlog-size", "16kb", "--enable-debug-command", "yes"])
    g.start()
    yield g
    g.cleanup()


def test_full_sync_of_every_type_under_writes_ends_equal(group):
    p, r = group.primary, group.replicas[0]
    assert group.during_sync > 50
    assert full_syncs(p) == 1
    assert_same_data(p.direct, r.direct)
    assert call(r.direct, "FUNCTION", "LIST") != []
    for cmd, want in [(("OBJECT", "ENCODING", "s:int"), b"int"), (("OBJECT", "ENCODING", "set:int"), b"intset"),
                      (("OBJECT", "ENCODING", "set:ht"), b"hashtable"), (("OBJECT", "ENCODING", "z:big"), b"skiplist"),
                      (("OBJECT", "ENCODING", "h:small"), b"listpack"), (("LLEN", "l:big"), 200),
                      (("XPENDING", "x", "g1"), [2, b"1-1", b"1-2", [[b"alice", b"2"]]])]:
        assert call(r.direct, *cmd) == want, cmd
    assert 3_500_000 < call(r.direct, "PTTL", "s:ttl") <= 3_600_000


def test_replica_refuses_writes_with_redis_text(group, redis_pair):
    r = group.replicas[0]
    want = call(redis_pair.replicas[0].direct, "SET", "k", "v")
    assert want == Err("READONLY You can't write against a read only replica.")
    assert call(r.direct, "SET", "k", "v") == want
    assert call(r.direct, "LPUSH", "l:small", "z") == want
    assert call(r.direct, "GET", "s:int") == b"12345"  # reads are served


def test_replica_read_only_no_takes_local_writes(group):
    r = group.replicas[0]
    assert call(r.direct, "CONFIG", "SET", "replica-read-only", "no") == b"OK"
    try:
        assert call(r.direct, "SET", "local-only", "1") == b"OK"
        assert call(r.direct, "GET", "local-only") == b"1"
        assert call(group.primary.direct, "EXISTS", "local-only") == 0  # local: not propagated
        assert call(r.direct, "DEL", "local-only") == 1
    finally:
        call(r.direct, "CONFIG", "SET", "replica-read-only", "yes")
    assert call(r.direct, "SET", "k", "v") == Err("READONLY You can't write against a read only replica.")


def test_cut_link_resyncs_partially_from_the_log_past_the_backlog(group):
    """repl-backlog-size 16kb and checkpoints every 16kb: 100 kB written
    while the link is cut come from the log's segments, +CONTINUE."""
    p, r = group.primary, group.replicas[0]
    fulls, conts = full_syncs(p), continues(p)
    checkpoints = log_count(p, "background checkpoint done")
    w = Writer(p.direct, prefix="cw:")
    w.start()
    try:
        wait_for(lambda: w.count > 10, what="writes")
        p.proxy.cut()
        try:
            wait_for(lambda: r.info()["master_link_status"] == "down", what="the link to drop")
            behind = repl_offset(r)
            c = p.client(direct=True)
            c.pipeline([("SET", f"cut:{i}", "v" * 1000) for i in range(100)])
            c.close()
            assert repl_offset(p) - behind > 100_000
            wait_for(lambda: log_count(p, "background checkpoint done") > checkpoints, what="a checkpoint")
        finally:
            p.proxy.heal()
        wait_link_up(r)
        n = w.count
        wait_for(lambda: w.count > n + 10, what="writes after the heal")
    finally:
        w.stop()
    wait_offsets_match(p, [r])
    assert continues(p) == conts + 1
    assert full_syncs(p) == fulls
    assert "partial resynchronisation" in r.log()
    assert int(p.info()["repl_backlog_histlen"]) > 100_000
    assert_same_data(p.direct, r.direct)


def test_replica_kill_9_and_restart_continues(group):
    p, r = group.primary, group.replicas[0]
    fulls, conts = full_syncs(p), continues(p)
    call(p.direct, "SET", "before-kill", "1")
    wait_offsets_match(p, [r])
    r.kill()
    c = p.client(direct=True)
    c.pipeline([("INCR", "while-down")] * 50 + [("SADD", "set:int", 1000)])
    c.close()
    r.start(["--replicaof", HOST, str(p.port)])
    wait_link_up(r)
    wait_offsets_match(p, [r])
    assert continues(p) == conts + 1
    assert full_syncs(p) == fulls
    assert call(r.direct, "GET", "while-down") == b"50"
    assert_same_data(p.direct, r.direct)


def test_a_write_while_a_replica_catches_up_from_a_restarted_primary(group):
    """The replica is behind when its primary is killed and restarted; it
    continues from the recovered log, and a write fed live meanwhile must
    not drop it."""
    p, r = group.primary, group.replicas[0]
    wait_offsets_match(p, [r])
    p.proxy.cut()
    try:
        wait_for(lambda: r.info()["master_link_status"] == "down", what="the link to drop")
        c = p.client(direct=True)
        c.pipeline([("SET", f"behind:{i}", "x" * 500) for i in range(40)])
        c.close()
        p.kill()
        p.start()
    finally:
        p.proxy.heal()
    wait_link_up(r)
    assert call(p.direct, "SET", "after-restart", "1") == b"OK"
    wait_offsets_match(p, [r])
    assert_same_data(p.direct, r.direct)
    assert "stream gap" not in p.log()
    assert (continues(p), full_syncs(p)) == (1, 0)  # (the counters restarted with the process)


# --- ROLE and INFO replication next to redis-server ------------------------------

def _names(i: dict) -> list[str]:
    return [k for k in i]


SLAVE_LINE = re.compile(r"^ip=127\.0\.0\.1,port=(\d+),state=online,offset=(\d+),lag=(\d+)$")
DETERMINISTIC = ("role", "master_host", "master_link_status", "master_sync_in_progress",
                 "slave_priority", "slave_read_only", "replica_announced", "connected_slaves",
                 "master_failover_state", "master_replid2", "second_repl_offset",
                 "repl_backlog_active", "repl_backlog_size")


@pytest.mark.parametrize("side", ["primary", "replica"])
def test_info_replication_fields_and_order_match_redis(group, redis_pair, side):
    call(group.primary.direct, "SET", "info", "1")
    call(redis_pair.primary.direct, "SET", "info", "1")
    for g in (group, redis_pair):
        wait_for(lambda g=g: repl_offset(g.replicas[0]) == repl_offset(g.primary)
                 and g.primary.info().get("slave0", "").endswith(",lag=0"), what="both settled")
    pick = (lambda g: g.primary) if side == "primary" else (lambda g: g.replicas[0])
    nodes = [pick(group), pick(redis_pair)]
    settings = [("replica-priority", 7, 100), ("replica-announced", "no", "yes")] if side == "replica" else []
    for name, value, _ in settings:  # what Sentinel reads to choose a replica, set by hand
        for n in nodes:
            assert call(n.direct, "CONFIG", "SET", name, value) == b"OK"
    try:
        k, ref = nodes[0].info(), nodes[1].info()
    finally:
        for name, _, default in settings:
            for n in nodes:
                call(n.direct, "CONFIG", "SET", name, default)
    assert _names(k) == _names(ref)
    for f in DETERMINISTIC:
        if f in ref:
            assert k[f] == ref[f], f
    if side == "primary":
        m = SLAVE_LINE.match(k["slave0"])
        assert m, k["slave0"]
        assert int(m.group(1)) == group.replicas[0].port  # the announced (proxy) port
        assert SLAVE_LINE.match(ref["slave0"]), ref["slave0"]
    else:
        assert (k["slave_priority"], k["replica_announced"]) == ("7", "0")
        assert int(k["master_port"]) == group.primary.port
        assert k["master_replid"] == group.primary.info()["master_replid"]
        assert k["slave_repl_offset"] == group.primary.info()["master_repl_offset"]


def test_a_replica_whose_link_is_down_answers_as_redis(group, redis_pair):
    """What Sentinel reads while a replica is cut off: the same INFO fields in
    order, ROLE; with replica-serve-stale-data no, -MASTERDOWN for data."""
    infos, roles, stale = {}, {}, {}
    for g in (group, redis_pair):
        r = g.replicas[0]
        g.primary.proxy.cut()
        try:
            wait_for(lambda r=r: r.info()["master_link_status"] == "down", what="the link to drop")
            infos[g.kind] = r.info()
            infos[g.kind + " primary"] = g.primary.info()
            roles[g.kind] = call(r.direct, "ROLE")
            assert call(r.direct, "CONFIG", "SET", "replica-serve-stale-data", "no") == b"OK"
            stale[g.kind] = [call(r.direct, *cmd) for cmd in (("GET", "s:int"), ("PING",), ("INFO", "server"))]
        finally:
            call(r.direct, "CONFIG", "SET", "replica-serve-stale-data", "yes")
            g.primary.proxy.heal()
    for g in (group, redis_pair):
        wait_link_up(g.replicas[0])
    k, ref = infos["keel"], infos["redis"]
    assert _names(k) == _names(ref)
    assert k["master_link_status"] == ref["master_link_status"] == "down"
    assert int(k["master_link_down_since_seconds"]) >= 0
    assert k["slave_repl_offset"] == infos["keel primary"]["master_repl_offset"]  # what it has, kept
    for kind in ("keel", "redis"):
        assert roles[kind][0] == b"slave" and roles[kind][3] in (b"connect", b"connecting"), roles
        assert roles[kind][4] == -1, roles  # no offset while the link is down
    assert stale["redis"][0] == Err("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    assert stale["keel"][:2] == stale["redis"][:2]
    assert stale["keel"][2].startswith(b"# Server")  # INFO is served stale


def test_a_replica_of_a_replica_follows_the_chain(group):
    p, mid = group.primary, group.replicas[0]
    sub = Node("keel", "sub", ["--repl-diskless-sync-delay", "0"])
    try:
        sub.start(["--replicaof", HOST, str(mid.port)])
        wait_link_up(sub)
        assert call(p.direct, "HSET", "chain", "f", "v") == 1
        wait_offsets_match(p, [mid, sub])
        assert call(sub.direct, "HGET", "chain", "f") == b"v"
        assert_same_data(p.direct, sub.direct)
        assert mid.info()["connected_slaves"] == "1"
        assert sub.info()["master_replid"] == p.info()["master_replid"]  # one history down the chain
        assert call(sub.direct, "SET", "k", "v") == Err("READONLY You can't write against a read only replica.")
    finally:
        sub.cleanup()


def test_role_on_both_sides_shaped_as_redis(group, redis_pair):
    def shape(v):
        if isinstance(v, list):
            return [shape(x) for x in v]
        return type(v).__name__
    for g in (group, redis_pair):
        wait_for(lambda g=g: call(g.primary.direct, "ROLE")[2], what="a replica in ROLE")
    kp, rp = call(group.primary.direct, "ROLE"), call(redis_pair.primary.direct, "ROLE")
    assert shape(kp) == shape(rp)
    assert kp[0] == b"master" and kp[2][0][:2] == [HOST.encode(), b"%d" % group.replicas[0].port]
    kr, rr = call(group.replicas[0].direct, "ROLE"), call(redis_pair.replicas[0].direct, "ROLE")
    assert shape(kr) == shape(rr)
    assert kr[:4] == [b"slave", HOST.encode(), group.primary.port, b"connected"]
    assert rr[3] == b"connected"


# --- WAIT, WAITAOF ---------------------------------------------------------------------

def test_wait_counts_the_replica_that_has_the_write(group):
    c = group.primary.client(direct=True)
    assert c.call("SET", "waited", "1") == b"OK"
    assert c.call("WAIT", 1, 0) == 1
    t = time.monotonic()
    assert c.call("WAIT", 2, 100) == 1  # only one replica: the timeout answers
    took = time.monotonic() - t
    assert 0.09 <= took < 1.0, took
    assert c.call("WAIT", 0, 0) == 1
    c.close()


def test_wait_errors_match_redis(group, redis_pair):
    for args in [("WAIT", "x", 0), ("WAIT", 1, "x"), ("WAIT", 1, -1), ("WAIT", 1)]:
        want = call(redis_pair.primary.direct, *args)
        assert isinstance(want, Err), args
        assert call(group.primary.direct, *args) == want, args
    want = call(redis_pair.replicas[0].direct, "WAIT", 1, 0)
    assert want.startswith("ERR WAIT cannot be used with replica instances")
    assert call(group.replicas[0].direct, "WAIT", 1, 0) == want


def test_waitaof_counts_local_and_replica_fsyncs(group):
    c = group.primary.client(direct=True)
    assert c.call("SET", "aof", "1") == b"OK"
    assert c.call("WAITAOF", 1, 1, 0) == [1, 1]
    t = time.monotonic()
    assert c.call("WAITAOF", 1, 2, 100) == [1, 1]
    assert time.monotonic() - t >= 0.09
    c.close()


def test_waitaof_errors(group):
    # redis-server 7.0 has no WAITAOF: these are 7.2's texts (its tests/unit/wait.tcl).
    assert call(group.replicas[0].direct, "WAITAOF", 1, 0, 0) == Err(
        "ERR WAITAOF cannot be used with replica instances. Please also note that writes to "
        "replicas are just local and are not propagated.")
    assert call(group.primary.direct, "WAITAOF", 1, 1, -1) == Err("ERR timeout is negative")
    assert call(group.primary.direct, "WAITAOF", 1, 1, "x") == Err("ERR timeout is not an integer or out of range")
    assert call(group.primary.direct, "WAITAOF", "x", 1, 0) == Err("ERR value is not an integer or out of range")
    assert call(group.primary.direct, "WAITAOF", 1, 1) == Err("ERR wrong number of arguments for 'waitaof' command")


# --- synchronous mode ------------------------------------------------------------------

@pytest.fixture
def sync_mode(group):
    p = group.primary
    assert call(p.direct, "CONFIG", "SET", "min-replicas-max-lag", 2) == b"OK"
    assert call(p.direct, "CONFIG", "SET", "min-replicas-to-ack", 1) == b"OK"
    yield group
    call(p.direct, "CONFIG", "SET", "min-replicas-to-ack", 0)
    call(p.direct, "CONFIG", "SET", "min-replicas-max-lag", 10)
    p.proxy.heal()
    wait_link_up(group.replicas[0])


def test_sync_mode_holds_a_reply_until_the_partition_heals(sync_mode):
    p, r = sync_mode.primary, sync_mode.replicas[0]
    c = p.client(direct=True, timeout=5)
    assert c.call("SET", "sync:1", "a") == b"OK"
    assert call(r.direct, "GET", "sync:1") == b"a"  # the reply left once the replica had it
    p.proxy.pause()  # a partition: no reset, the primary hears nothing
    c.sock.settimeout(0.8)
    with pytest.raises(socket.timeout):
        c.call("SET", "sync:2", "b")
    p.proxy.heal()  # within min-replicas-max-lag (2 s)
    c.sock.settimeout(5)
    assert c.read() == b"OK"  # the held reply arrives
    assert call(r.direct, "GET", "sync:2") == b"b"
    c.close()


def test_sync_mode_refuses_after_max_lag_and_drops_held_clients(sync_mode):
    """Past min-replicas-max-lag with no ack, data commands get -NOREPLICAS and
    the clients whose replies still wait are closed unanswered (so that the
    PING and INFO behind them are not held); healed, commands work again."""
    p, r = sync_mode.primary, sync_mode.replicas[0]
    c = p.client(direct=True, timeout=5)
    assert c.call("SET", "sync:3", "a") == b"OK"
    p.proxy.pause()
    c.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):
        c.call("SET", "sync:4", "b")
    t = time.monotonic()
    refused = wait_for(lambda: (lambda x: x if isinstance(x, Err) else None)(
        call(p.direct, "GET", "sync:3", timeout=0.5)), timeout=5, what="-NOREPLICAS")
    assert refused.startswith("NOREPLICAS ")
    assert time.monotonic() - t < 3.5  # about min-replicas-max-lag after the last ack
    assert call(p.direct, "SET", "sync:5", "c").startswith("NOREPLICAS ")
    assert call(p.direct, "PING") == b"PONG"  # not a data command
    c.sock.settimeout(5)
    with pytest.raises(ConnectionError):
        c.read()  # closed, never told OK
    c.close()
    p.proxy.heal()
    wait_for(lambda: call(p.direct, "GET", "sync:3") == b"a", what="commands served again")
    wait_for(lambda: call(r.direct, "GET", "sync:4") == b"b", what="the unanswered write replicated")
    assert call(r.direct, "EXISTS", "sync:5") == 0


def test_sync_mode_refuses_at_once_when_the_link_is_cut(sync_mode):
    p = sync_mode.primary
    p.proxy.cut()
    refused = wait_for(lambda: (lambda x: x if isinstance(x, Err) else None)(
        call(p.direct, "SET", "cut:sync", "1", timeout=0.5)), timeout=5, what="-NOREPLICAS")
    assert refused.startswith("NOREPLICAS ")
    p.proxy.heal()
    wait_link_up(sync_mode.replicas[0])
    wait_for(lambda: call(p.direct, "SET", "cut:sync", "2") == b"OK", what="writes again")


def test_min_replicas_to_write_refuses_as_redis_does(group, redis_pair):
    texts = {}
    for g in (group, redis_pair):
        p = g.primary
        assert call(p.direct, "CONFIG", "SET", "min-replicas-to-write", 1) == b"OK"
        try:
            assert call(p.direct, "SET", "mrw", "1") == b"OK"
            p.proxy.cut()
            texts[g.kind] = wait_for(lambda p=p: (lambda x: x if isinstance(x, Err) else None)(
                call(p.direct, "SET", "mrw:probe", "2")), timeout=5, what="-NOREPLICAS")
            assert call(p.direct, "GET", "mrw") == b"1"  # reads go on
            assert call(p.direct, "INCR", "mrw") == texts[g.kind]
        finally:
            p.proxy.heal()
            wait_link_up(g.replicas[0])
            wait_for(lambda p=p: call(p.direct, "SET", "mrw", "3") == b"OK", what="writes again")
            call(p.direct, "CONFIG", "SET", "min-replicas-to-write", 0)
    assert texts["redis"] == Err("NOREPLICAS Not enough good replicas to write.")
    assert texts["keel"] == texts["redis"]


# --- promotion ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trio():
    g = Group("keel", 2)
    g.start()
    yield g
    g.cleanup()


def test_promotion_and_the_others_continue_with_the_new_id(trio):
    """REPLICAOF NO ONE on one replica, the other repointed at it: +CONTINUE
    under the new id, the old one as replid2 up to second_repl_offset."""
    old, a, b = trio.primary, trio.replicas[0], trio.replicas[1]
    c = old.client(direct=True)
    fill_every_type(c)
    c.close()
    end = wait_offsets_match(old, [a, b])
    old_id = old.info()["master_replid"]
    assert call(a.direct, "REPLICAOF", "NO", "ONE") == b"OK"
    ia = a.info()
    assert ia["role"] == "master"
    assert ia["master_replid2"] == old_id and ia["master_replid"] != old_id
    assert int(ia["second_repl_offset"]) == end + 1
    assert call(b.direct, "REPLICAOF", HOST, a.port) == b"OK"
    wait_link_up(b)
    assert continues(a) == 1 and full_syncs(a) == 0
    ib = b.info()
    assert ib["master_replid"] == ia["master_replid"]
    assert ib["master_replid2"] == old_id and int(ib["second_repl_offset"]) == end + 1
    assert call(a.direct, "SET", "after-promotion", "1") == b"OK"
    assert call(a.direct, "RPUSH", "l:small", "d") == 4
    wait_offsets_match(a, [b])
    assert call(b.direct, "GET", "after-promotion") == b"1"
    assert_same_data(a.direct, b.direct)
    # The old primary, with no writes of its own since, follows the new one.
    assert call(old.direct, "REPLICAOF", HOST, a.port) == b"OK"
    wait_link_up(old)
    wait_offsets_match(a, [b, old])
    assert continues(a) == 2 and full_syncs(a) == 0
    assert old.info()["master_replid"] == ia["master_replid"]
    assert_same_data(a.direct, old.direct)
    assert call(old.direct, "SET", "k", "v") == Err("READONLY You can't write against a read only replica.")


# --- FAILOVER --------------------------------------------------------------------------------

def _roles(g: Group) -> tuple[Node, list[Node]]:
    primaries = [n for n in g.nodes if n.role() == "master"]
    assert len(primaries) == 1, [n.role() for n in g.nodes]
    return primaries[0], [n for n in g.nodes if n is not primaries[0]]


def test_failover_to_a_replica_loses_no_acknowledged_write(trio):
    p, (target, other) = _roles(trio)
    acked, errors = [0], []
    done = threading.Event()

    def writer():
        c = RespClient(p.direct)
        while not done.is_set():
            r = c.call("INCR", "fo:ctr")
            if isinstance(r, Err):
                errors.append(r)
                return
            acked[0] = r
        c.close()
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    wait_for(lambda: acked[0] > 20, what="writes")
    conts, fulls = continues(target), full_syncs(target)
    assert call(p.direct, "FAILOVER", "TO", HOST, target.port) == b"OK"
    wait_for(lambda: p.role() == "slave" and p.info()["master_failover_state"] == "no-failover"
             and target.role() == "master", what="the failover")
    t.join(5)
    done.set()
    assert errors == [Err("READONLY You can't write against a read only replica.")]
    assert int(call(target.direct, "GET", "fo:ctr")) >= acked[0]  # every acknowledged INCR is there
    assert (continues(target), full_syncs(target)) == (conts + 1, fulls)  # the old primary continued
    assert int(p.info()["master_port"]) == target.port
    wait_offsets_match(target, [p, other])
    assert_same_data(target.direct, other.direct)


@pytest.mark.parametrize("end", ["timeout", "abort"])
def test_failover_that_cannot_sync_resumes_as_primary(trio, end):
    """The replicas hear nothing (paused link) after a write: the failover
    waits for an ack that never comes; at its TIMEOUT, or on ABORT, the
    primary resumes and the write it held while waiting gets its reply."""
    p, replicas = _roles(trio)
    p.proxy.pause()
    try:
        assert call(p.direct, "SET", "fo:unacked", "1") == b"OK"
        timeout = 600 if end == "timeout" else 60000
        assert call(p.direct, "FAILOVER", "TIMEOUT", timeout) == b"OK"
        assert p.info()["master_failover_state"] == "waiting-for-sync"
        c = RespClient(p.direct, timeout=5)
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$7\r\nfo:held\r\n$1\r\n1\r\n")
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.read()  # writes are paused while the failover waits
        assert call(p.direct, "GET", "fo:unacked") == b"1"  # reads are not
        if end == "abort":
            assert call(p.direct, "FAILOVER", "ABORT") == b"OK"
        c.sock.settimeout(5)
        assert c.read() == b"OK"
        c.close()
        assert p.info()["master_failover_state"] == "no-failover"
        assert p.role() == "master"
    finally:
        p.proxy.heal()
    wait_offsets_match(p, replicas)


def test_failover_force_hands_over_at_the_timeout(trio):
    """TO target TIMEOUT FORCE with the target cut off from the stream: at the
    timeout the primary hands over anyway; the write the target never got is
    the old primary's divergent tail, cut back when it follows the target."""
    p, replicas = _roles(trio)
    target = replicas[0]
    p.proxy.pause()  # the replicas' links to p hear nothing; p still reaches them
    try:
        assert call(p.direct, "SET", "fo:forced", "1") == b"OK"
        assert call(p.direct, "FAILOVER", "TO", HOST, target.port, "FORCE", "TIMEOUT", 300) == b"OK"
        wait_for(lambda: target.role() == "master" and p.role() == "slave"
                 and p.info()["master_link_status"] == "up", what="the forced failover")
    finally:
        p.proxy.heal()
    wait_offsets_match(target, [p])
    assert call(target.direct, "EXISTS", "fo:forced") == 0  # never reached it
    assert_same_data(target.direct, p.direct)  # the old primary dropped it too
    assert p.info()["master_failover_state"] == "no-failover"


# --- scripts on a read-only replica -----------------------------------------------------

def test_replica_refuses_scripts_that_write(group, redis_pair):
    rr, kr = redis_pair.replicas[0].direct, group.replicas[0].direct
    script = ("EVAL", "return redis.call('SET', KEYS[1], 'x')", 1, "script-key")
    try:
        want = call(rr, *script)
        assert want.startswith("READONLY You can't write against a read only replica.")
        assert call(kr, "FCALL", "kset", 1, "fcall-key", "v") == \
            Err("READONLY You can't write against a read only replica.")
        assert call(kr, *script).startswith("READONLY You can't write against a read only replica.")
        assert call(kr, "EXISTS", "script-key", "fcall-key") == 0
        assert call(kr, "EVAL", "return redis.call('GET', KEYS[1])", 1, "s:int") == b"12345"  # reads run
    finally:  # should it write again, what it wrote stays off the other tests' data
        call(kr, "CONFIG", "SET", "replica-read-only", "no")
        call(kr, "DEL", "script-key", "fcall-key")
        call(kr, "CONFIG", "SET", "replica-read-only", "yes")
