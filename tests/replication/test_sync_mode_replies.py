"""Synchronous mode holds every reply that depends on the log until a replica
acknowledges it, reads included; replies that depend on no key (PING, INFO,
ROLE, PUBLISH, a replica's handshake: server.protocol_slow.REPLY_FREE) leave
at once on a connection that holds nothing earlier, so Sentinel's checks
and a reconnecting replica are answered while the replicas are silent."""

from __future__ import annotations

import socket
import time

import pytest

from tests.replication.support import HOST, Group, Node, call, wait_for, wait_link_up, wait_offsets_match


@pytest.fixture(scope="module")
def held():
    """1 primary in synchronous mode (lag 10 s: nothing is refused here) + 1 replica."""
    g = Group("keel", 1, primary_args=["--min-replicas-to-ack", "1", "--min-replicas-max-lag", "10"])
    try:
        g.start()
        wait_offsets_match(g.primary, g.replicas)
    except BaseException:
        g.cleanup()
        raise
    yield g
    g.cleanup()


def _paused_with_a_held_write(g):
    p = g.primary
    assert call(p.direct, "SET", "k", "before") == b"OK"
    p.proxy.pause()  # the replica hears nothing, acks nothing
    c = p.client(direct=True, timeout=0.5)
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nheld\r\n")
    with pytest.raises(socket.timeout):
        c.read()
    return c


def _heal(g, c):
    g.primary.proxy.heal()
    c.sock.settimeout(10)
    assert c.read() == b"OK"  # the held reply, once the replica acknowledged
    c.close()
    wait_link_up(g.replicas[0])


def test_replies_that_read_no_key_leave_while_a_write_waits_for_acks(held):
    p = held.primary
    c = _paused_with_a_held_write(held)
    try:
        other = p.client(direct=True, timeout=0.5)
        assert other.call("PING") == b"PONG"
        assert other.call("ECHO", "x") == b"x"
        assert other.call("ROLE")[0] == b"master"
        assert other.call("INFO", "replication").startswith(b"# Replication\r\nrole:master\r\n")
        assert other.call("PUBLISH", "__sentinel__:hello", "x") == 0
        assert other.pipeline([["PING"], ["CLIENT", "ID"]])[0] == b"PONG"
        other.close()
        reader = p.client(direct=True, timeout=0.5)
        with pytest.raises(socket.timeout):
            reader.call("GET", "k")  # a read: it might see the write no replica has
        reader.close()
        mixed = p.client(direct=True, timeout=0.5)
        with pytest.raises(socket.timeout):
            mixed.pipeline([["PING"], ["EXISTS", "k"]])  # one that reads a key holds the read's replies
        mixed.close()
    finally:
        _heal(held, c)


def test_a_connection_holding_a_reply_gets_its_ping_after_it(held):
    p = held.primary
    c = _paused_with_a_held_write(held)
    try:
        c.send_raw(b"*1\r\n$4\r\nPING\r\n")
        with pytest.raises(socket.timeout):
            c.read()  # behind the held OK: replies leave in order
    finally:
        p.proxy.heal()
        c.sock.settimeout(10)
        assert c.read() == b"OK"
        assert c.read() == b"PONG"
        c.close()
        wait_link_up(held.replicas[0])


def test_the_only_replica_reset_drops_the_held_client_then_it_rejoins(held):
    """The only replica's link is reset while a reply waits for its ack: no
    replica is left, so the held client is disconnected unanswered at once
    (its write may or may not survive a failover), PING is answered, data
    commands are refused until the replica is back by PSYNC; then writes are
    acknowledged again."""
    p, r = held.primary, held.replicas[0]
    c = _paused_with_a_held_write(held)
    p.proxy.cut()  # the paused link is reset; new connections are refused
    c.sock.settimeout(5)
    with pytest.raises((ConnectionError, OSError)):
        c.read()
    c.close()
    assert call(p.direct, "PING") == b"PONG"
    assert call(p.direct, "GET", "k").startswith("NOREPLICAS ")
    p.proxy.heal()
    wait_link_up(r)
    wait_for(lambda: call(p.direct, "SET", "k2", "v") == b"OK", 10, what="writes acknowledged again")
    assert call(r.direct, "GET", "k2") == b"v"


def test_writes_are_acknowledged_as_soon_as_the_replica_is_up():
    """Until a replica is online, synchronous mode refuses; the moment the
    primary has it online (its first ACK in), writes are taken again — not
    at the primary's next cron tick (up to 100 ms of -NOREPLICAS)."""
    for _ in range(3):
        p = Node("keel", "p", ["--min-replicas-to-ack", "1", "--repl-diskless-sync-delay", "0"])
        r = Node("keel", "r", [])
        try:
            p.start()
            assert call(p.direct, "SET", "k", "v").startswith("NOREPLICAS ")
            r.start()
            c = p.client(direct=True, timeout=5)
            assert call(r.direct, "REPLICAOF", HOST, p.port) == b"OK"
            # The primary's own view (a replica's "up" may reach the test before
            # its ACK reaches the primary): once it lists the replica online,
            # the refusal is over.
            wait_for(lambda: "state=online" in p.info().get("slave0", ""), 15, 0.005, what="the replica online")
            assert c.call("SET", "k", "v") == b"OK"
            c.close()
        finally:
            r.cleanup()
            p.cleanup()


def test_config_set_of_synchronous_mode_refuses_at_once():
    """CONFIG SET min-replicas-to-ack 1 with no replica: the next write gets
    -NOREPLICAS (before, it was taken and its client dropped at the next tick)."""
    p = Node("keel", "p", [])
    try:
        p.start()
        c = p.client(direct=True, timeout=5)
        assert c.call("CONFIG", "SET", "min-replicas-to-ack", "1") == b"OK"
        assert c.call("SET", "k", "v").startswith("NOREPLICAS ")
        assert c.call("PING") == b"PONG"
        assert c.call("CONFIG", "SET", "min-replicas-to-ack", "0") == b"OK"
        assert c.call("SET", "k", "v") == b"OK"
        c.close()
    finally:
        p.cleanup()


def test_a_push_waits_behind_the_replies_waiting_for_acks(held):
    """A tracking invalidation pushed to a connection whose reply waits for
    acks leaves after that reply, never before it."""
    p = held.primary
    a = p.client(direct=True, timeout=5)
    assert isinstance(a.call("HELLO", "3"), dict)
    assert a.call("CLIENT", "TRACKING", "ON") == b"OK"
    assert call(p.direct, "SET", "x", "1") == b"OK"
    assert a.call("GET", "x") == b"1"  # tracked
    p.proxy.pause()
    b = p.client(direct=True, timeout=0.5)
    try:
        a.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\ny\r\n$1\r\n2\r\n")  # held for acks
        time.sleep(0.2)  # its reply is in the ack queue by now (not merely held for the commit)
        b.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n2\r\n")  # invalidates x for a
        a.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            a.sock.recv(65536)  # neither the OK nor the invalidation, before the ack
    finally:
        p.proxy.heal()
    a.sock.settimeout(10)
    assert a.read() == b"OK"
    assert a.read() == [b"invalidate", [b"x"]]
    b.sock.settimeout(10)
    assert b.read() == b"OK"
    a.close()
    b.close()
    wait_link_up(held.replicas[0])
