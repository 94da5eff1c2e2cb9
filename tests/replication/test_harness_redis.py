"""The replication harness proved on real redis-server groups, which replicate
already: the proxy's faults do what they say, a replica behind it follows its
primary and catches up after a cut or a pause, and three real sentinels fail
a group over when its primary is killed, stopped or cut off (under
``--soak``: test_sentinel_keel.py does the same to Keel by default). The Keel
tests use the same helpers.
"""

from __future__ import annotations

import socket
import time

import pytest
import redis

from tests.replication.conftest import need, need_sentinel
from tests.replication.support import (HOST, MASTER, Group, Proxy, repl_offset,
                                       wait_for, wait_link_up, wait_offsets_match)
from tests.support import Err, RespClient


@pytest.fixture(scope="module")
def group():
    """One redis-server primary and one replica, shared by the module."""
    need("redis-server")
    g = Group("redis", 1).start()
    yield g
    g.cleanup()


@pytest.fixture
def healed(group):
    """The group with every proxy healed again after the test."""
    yield group
    for n in group.nodes:
        n.proxy.heal()
    wait_link_up(group.replicas[0])


# --- the proxy -------------------------------------------------------------------

def test_proxy_forwards_both_ways(group):
    c = RespClient(group.primary.port)
    assert c.call("SET", "via-proxy", "1") == b"OK"
    assert group.primary.redis(direct=True).get("via-proxy") == b"1"
    c.close()


def test_cut_drops_open_connections_and_refuses_new(healed):
    p = healed.primary
    c = RespClient(p.port, timeout=2)
    assert c.call("PING") == b"PONG"
    p.proxy.cut()
    with pytest.raises((ConnectionError, OSError)):
        c.call("PING")
    with pytest.raises((ConnectionError, OSError)):
        RespClient(p.port, timeout=2).call("PING")
    p.proxy.heal()
    assert RespClient(p.port, timeout=2).call("PING") == b"PONG"


def test_pause_holds_bytes_until_heal(healed):
    p = healed.primary
    c = RespClient(p.port, timeout=0.3)
    p.proxy.pause()
    with pytest.raises(socket.timeout):
        c.call("PING")
    p.proxy.heal()
    c.sock.settimeout(2)
    assert c.read() == b"PONG"  # the held request went through: no reset, no loss


def test_delay_adds_latency_each_way(healed):
    p = healed.primary
    c = RespClient(p.port)
    c.call("PING")
    p.proxy.delay(100)
    t = time.monotonic()
    assert c.call("PING") == b"PONG"
    assert time.monotonic() - t >= 0.2  # 100 ms there, 100 ms back
    p.proxy.heal()
    t = time.monotonic()
    c.call("PING")
    assert time.monotonic() - t < 0.1


def test_proxy_to_a_down_server_resets_the_client():
    with socket.socket() as s:
        s.bind((HOST, 0))
        dead = s.getsockname()[1]  # bound, never listening: connections are refused
        px = Proxy(dead).start()
        try:
            with pytest.raises((ConnectionError, OSError)):
                RespClient(px.port, timeout=2).call("PING")
        finally:
            px.close()


# --- a primary and its replica ---------------------------------------------------

def test_replica_follows_and_is_read_only(group):
    p, r = group.primary, group.replicas[0]
    info = wait_link_up(r)
    assert info["master_host"] == HOST and info["master_port"] == str(p.port)
    primary_info = p.info()
    assert primary_info["connected_slaves"] == "1"
    # the replica announced its proxy: sentinels and clients will use that
    assert f"port={r.port}," in primary_info["slave0"]
    p.redis().sadd("s", "a", "b")
    wait_offsets_match(p, [r])
    assert r.redis().smembers("s") == {b"a", b"b"}
    assert r.client().call("SADD", "s", "c") == Err("READONLY You can't write against a read only replica.")


def test_cut_link_goes_down_and_heal_catches_up(healed):
    p, r = healed.primary, healed.replicas[0]
    wait_link_up(r)
    p.proxy.cut()
    wait_for(lambda: r.info()["master_link_status"] == "down", 5, what="link down")
    w = p.redis(direct=True)  # a client on the primary's side of the cut
    for i in range(100):
        w.rpush("during-cut", i)
    assert r.redis().llen("during-cut") == 0
    p.proxy.heal()
    wait_link_up(r)
    wait_offsets_match(p, [r])
    assert r.redis().llen("during-cut") == 100


def test_pause_stalls_the_stream_then_resumes(healed):
    p, r = healed.primary, healed.replicas[0]
    wait_offsets_match(p, [r])
    before = repl_offset(r)
    p.proxy.pause()
    p.redis(direct=True).set("during-pause", "x")
    time.sleep(0.2)
    assert repl_offset(r) == before and r.redis().get("during-pause") is None
    assert r.info()["master_link_status"] == "up"  # silence is not a reset (repl-timeout is 60 s)
    p.proxy.heal()
    wait_offsets_match(p, [r])
    assert r.redis().get("during-pause") == b"x"


# --- sentinels -------------------------------------------------------------------

@pytest.fixture
def watched(make_group, make_sentinels):
    """1 redis-server primary + 2 replicas, 3 sentinels (down-after 1000 ms) that know them all."""
    need_sentinel()
    g = make_group("redis", 2)
    s = make_sentinels(g, 3, down_after_ms=1000)
    s.wait_discovered()
    return g, s


@pytest.mark.soak  # test_sentinel_keel.py runs the same by default, on Keel
def test_sentinels_discover_the_group_and_fail_over_a_killed_primary(watched):
    g, s = watched
    old = g.primary
    for sen in s.all:
        assert sen.master()["port"] == str(old.port)
        assert {x["port"] for x in sen.replicas()} == {str(n.port) for n in g.replicas}
        assert len(sen.sentinels()) == 2
    assert s.agreed_primary() is old
    old.redis().set("before", "1")
    wait_offsets_match(old, g.replicas)
    t = time.monotonic()
    old.kill()
    new, (other,) = s.wait_failed_over(old)
    assert time.monotonic() - t < 15
    assert new.redis().get("before") == b"1"
    client = redis.Sentinel(s.addresses(), socket_timeout=2)
    assert client.discover_master(MASTER) == (HOST, new.port)
    client.master_for(MASTER).set("after", "2")
    wait_offsets_match(new, [other])
    assert other.redis().get("after") == b"2"


@pytest.mark.soak
def test_killed_primary_restarted_rejoins_as_replica(watched):
    g, s = watched
    old = g.primary
    old.kill()
    new, _ = s.wait_failed_over(old)
    old.start()  # comes back believing it is a primary; sentinels demote it (~8-10 s)
    wait_for(lambda: old.info().get("master_port") == str(new.port), 30, 0.2, what="old primary demoted")
    wait_link_up(old)


@pytest.mark.soak
def test_sentinels_fail_over_a_stopped_primary(watched):
    g, s = watched
    old = g.primary
    old.stop()
    try:
        s.wait_failed_over(old)
    finally:
        old.cont()
    wait_for(lambda: old.role() == "slave", 30, 0.2, what="old primary demoted")


@pytest.mark.soak
def test_sentinels_fail_over_a_cut_off_primary(watched):
    g, s = watched
    old = g.primary
    old.proxy.cut()
    try:
        new, _ = s.wait_failed_over(old)
        assert old.role() == "master"  # alone on its side of the cut, it still thinks so
    finally:
        old.proxy.heal()
    wait_for(lambda: old.info().get("master_port") == str(new.port), 30, 0.2, what="old primary demoted")
