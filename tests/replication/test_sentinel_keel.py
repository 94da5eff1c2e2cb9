"""Real redis-sentinels fail over a group of Keel servers.

One Keel primary and two Keel replicas, each behind its proxy, three real
``redis-sentinel`` processes (down-after 1000 ms). The sentinels must find
the replicas in Keel's INFO and each other through its pub/sub; on a kill -9
of the primary they promote a replica (MULTI / SLAVEOF NO ONE / CONFIG
REWRITE / CLIENT KILL / EXEC), repoint the other, and turn the restarted old
primary into a replica; redis-py's ``Sentinel`` finds the new primary. The
SIGSTOP and network-cut variants run under ``--soak``.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.replication.conftest import need_sentinel
from tests.replication.support import (HOST, MASTER, Group, Sentinels, wait_for, wait_link_up,
                                       wait_offsets_match)
from tests.support import Err, free_port

SYNC = ["--min-replicas-to-ack", "1", "--min-replicas-max-lag", "1"]


@pytest.fixture
def watched(make_group, make_sentinels):
    """1 Keel primary + 2 Keel replicas, 3 sentinels that know them all."""
    need_sentinel()
    g = make_group("keel", 2)
    s = make_sentinels(g, 3, down_after_ms=1000)
    s.wait_discovered()
    return g, s


def _demoted(old, new, sentinels=None) -> None:
    try:
        wait_for(lambda: old.info().get("master_port") == str(new.port), 30, 0.2,
                 what="the old primary turned into a replica of the new one")
    except TimeoutError:
        # What the sentinels and the old primary said, for the failure report.
        print("--- old primary's log ---\n" + old.log()[-4000:])
        print("--- new primary's log ---\n" + new.log()[-4000:])
        if sentinels is not None:
            # Each sentinel's events (its "#" lines), whole: which of them saw what go down.
            print("--- sentinels ---\n" + "\n".join(
                line for line in sentinels.logs().splitlines() if " # " in line or line.startswith("---")))
        raise
    wait_link_up(old)


@pytest.fixture(scope="module")
def killed():
    """One kill -9 failover and the old primary's return, run once; the tests
    below each check one part of what happened."""
    need_sentinel()
    g = Group("keel", 2)
    s = None
    try:
        g.start()
        # 2000 ms, as Redis's own Sentinel tests use: with 1000, one sentinel
        # that took the new primary by a hello message sometimes marked it down
        # exactly 1 s after (its new link's first PONG not in yet) and failed
        # it over a second time (2 runs in 8), while a probe opening a new
        # connection every 20 ms through the same proxy got PONG within 16 ms.
        s = Sentinels(g, 3, down_after_ms=2000).start()
        s.wait_discovered()
        old = g.primary
        seen = {"master": [x.master() for x in s.all], "replicas": [x.replicas() for x in s.all],
                "sentinels": [x.sentinels() for x in s.all]}
        old.redis().sadd("s", *range(100))
        wait_offsets_match(old, g.replicas)
        t = time.monotonic()
        old.kill()
        new, (other,) = s.wait_failed_over(old)
        took = time.monotonic() - t
        roles = {"new": new.client().call("ROLE"), "other": other.client().call("ROLE")}
        found = redis.Sentinel(s.addresses(), socket_timeout=2).discover_master(MASTER)
        redis.Sentinel(s.addresses(), socket_timeout=2).master_for(MASTER).sadd("s", "after")
        old.start()  # comes back believing it is a primary; the sentinels demote it
        _demoted(old, new, s)
        wait_offsets_match(new, [other, old])
        yield SimpleNamespace(g=g, s=s, old=old, new=new, other=other, seen=seen, took=took,
                              roles=roles, found=found)
    finally:
        if s is not None:
            s.cleanup()
        g.cleanup()


def test_sentinels_discover_the_replicas_and_each_other(killed):
    k = killed
    for master, replicas, sentinels in zip(k.seen["master"], k.seen["replicas"], k.seen["sentinels"]):
        assert master["port"] == str(k.old.port) and master["flags"] == "master"
        assert {x["port"] for x in replicas} == {str(n.port) for n in k.g.replicas}
        assert all(x["flags"] == "slave" and x["master-link-status"] == "ok" for x in replicas)
        assert len(sentinels) == 2


def test_kill_promotes_a_replica_and_repoints_the_other(killed):
    k = killed
    assert k.new in k.g.replicas and k.took < 15
    assert k.roles["new"][0] == b"master"
    assert k.roles["other"][:3] == [b"slave", HOST.encode(), k.new.port]
    assert k.new.redis().scard("s") == 101
    assert k.other.client().call("SADD", "s", "x") == Err("READONLY You can't write against a read only replica.")


def test_redis_py_sentinel_finds_the_new_primary(killed):
    assert killed.found == (HOST, killed.new.port)
    assert killed.other.redis().sismember("s", "after")


def test_restarted_old_primary_comes_back_as_a_replica(killed):
    k = killed
    assert k.old.client().call("ROLE")[:3] == [b"slave", HOST.encode(), k.new.port]
    assert k.old.redis().scard("s") == 101
    assert k.old.redis().sismember("s", "after")


def test_restarted_old_primary_resumes_by_psync(killed):
    # It keeps its replication id across the kill, and the new primary's
    # replid2 is that id: the sentinels' repoint costs no full sync.
    assert killed.new.info("stats")["sync_full"] == "0"


@pytest.mark.soak
def test_sentinels_fail_over_a_stopped_keel_primary(watched):
    g, s = watched
    old = g.primary
    old.stop()
    try:
        new, _ = s.wait_failed_over(old)
    finally:
        old.cont()
    _demoted(old, new)


@pytest.mark.soak
def test_sentinels_fail_over_a_cut_off_keel_primary(watched):
    g, s = watched
    old = g.primary
    old.proxy.cut()
    try:
        new, _ = s.wait_failed_over(old)
        old.redis(direct=True).sadd("divergent", "x")  # written on the old side only
    finally:
        old.proxy.heal()
    _demoted(old, new)
    wait_offsets_match(new, [n for n in g.nodes if n is not new])
    assert old.redis().exists("divergent") == 0  # its divergent tail was cut back


def _scard(node):
    """SCARD, or 0 while the primary refuses (a replica that stalled for
    min-replicas-max-lag on a loaded machine; the writers retry too)."""
    try:
        return node.redis().scard("s")
    except redis.ResponseError as e:
        if str(e).startswith("NOREPLICAS"):
            return 0
        raise


def _refused(node):
    """True once a fresh connection's SADD gets -NOREPLICAS; a reply held for
    acks (before max-lag) times out and is tried again."""
    c = node.client(direct=True, timeout=0.5)
    try:
        got = c.call("SADD", "s", "probe")
    except (OSError, ConnectionError):
        return False
    finally:
        c.close()
    return isinstance(got, str) and got.startswith("NOREPLICAS ")


def test_sync_mode_primary_cut_under_writes_still_answers_ping_and_info(make_group):
    g = make_group("keel", 1, args=SYNC)
    p = g.primary
    stop = threading.Event()

    def write(i):
        r = p.redis(direct=True, socket_timeout=1, retry=Retry(NoBackoff(), 0))
        n = 0
        while not stop.is_set():
            try:
                r.sadd("s", f"{i}-{n}")
            except redis.RedisError:
                time.sleep(0.05)
            n += 1
    writers = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(3)]
    for w in writers:
        w.start()
    try:
        wait_for(lambda: _scard(p) > 100, 10, what="writes to flow")
        p.proxy.cut()  # writes in flight lose their acks for good
        t = time.monotonic()
        # Past min-replicas-max-lag (1, counted in whole seconds as Redis does:
        # up to 2 s of silence) the primary refuses data commands ...
        wait_for(lambda: _refused(p), 6, what="-NOREPLICAS after the cut")
        assert time.monotonic() - t < 4
        c = p.client(direct=True, timeout=1)
        # ... and the replies still waiting for acks no longer hold these: Sentinel reads them
        assert c.call("PING") == b"PONG"
        assert c.call("INFO", "replication").startswith(b"# Replication\r\nrole:master\r\n")
        assert c.call("ROLE")[0] == b"master"
        assert c.call("SADD", "s", "late").startswith("NOREPLICAS ")
    finally:
        stop.set()
        for w in writers:
            w.join(3)


def _failover_transaction(c, *slaveof):
    return c.pipeline([["MULTI"], ["SLAVEOF", *slaveof], ["CONFIG", "REWRITE"],
                       ["CLIENT", "KILL", "TYPE", "normal"], ["CLIENT", "KILL", "TYPE", "pubsub"],
                       ["EXEC"]])


def test_sentinels_reconfiguring_transaction_gets_redis_replies(servers):
    """What a sentinel sends to repoint a server, then to promote it, with one
    other client and one subscriber connected: replies equal to redis-server's."""
    replies = []
    for server in servers:
        c = server.client()
        other, sub = server.client(), server.client()
        other.call("PING")
        sub.call("SUBSCRIBE", "__sentinel__:hello")
        repoint = _failover_transaction(c, HOST, str(free_port()))  # nobody listens there
        role = c.call("ROLE")[:2]
        with pytest.raises((ConnectionError, OSError)):
            other.call("PING")  # killed as a normal client; the sender is skipped
        promote = _failover_transaction(c, "NO", "ONE")
        replies.append((repoint, role, promote, c.call("ROLE")[0]))
        for x in (c, other, sub):
            x.close()
    keel, ref = replies
    assert keel == ref
    assert keel[0][-1] == [b"OK", Err("ERR The server is running without a config file"), 1, 1]
    assert keel[1] == [b"slave", HOST.encode()] and keel[3] == b"master"
