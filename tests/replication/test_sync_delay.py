"""repl-diskless-sync-delay and repl-diskless-sync-max-replicas: a diskless
full sync starts after the delay, or once that many replicas wait."""

from __future__ import annotations

import time

from tests.replication.support import HOST, Node, call, wait_link_up


def _timed_sync(primary_args: list[str]) -> float:
    p = Node("keel", "p", primary_args)
    r = Node("keel", "r", [])
    try:
        p.start()
        assert call(p.direct, "SET", "k", "v") == b"OK"
        r.start()
        t = time.monotonic()
        assert call(r.direct, "REPLICAOF", HOST, p.port) == b"OK"
        wait_link_up(r, timeout=30)
        took = time.monotonic() - t
        assert call(r.direct, "GET", "k") == b"v"
        return took
    finally:
        r.cleanup()
        p.cleanup()


def test_the_delay_is_waited_while_fewer_replicas_than_max_wait():
    took = _timed_sync(["--repl-diskless-sync-delay", "2", "--repl-diskless-sync-max-replicas", "2"])
    assert took >= 1.9


def test_max_replicas_waiting_starts_the_sync_before_the_delay_ends():
    took = _timed_sync(["--repl-diskless-sync-delay", "30", "--repl-diskless-sync-max-replicas", "1"])
    assert took < 10


def test_max_replicas_is_read_at_each_wait():
    """CONFIG SET during the delay reaches the waiting sync."""
    p = Node("keel", "p", ["--repl-diskless-sync-delay", "30"])
    r = Node("keel", "r", [])
    try:
        p.start()
        r.start()
        assert call(r.direct, "REPLICAOF", HOST, p.port) == b"OK"
        time.sleep(0.5)
        assert r.info()["master_link_status"] == "down"  # waiting out the 30 s
        t = time.monotonic()
        assert call(p.direct, "CONFIG", "SET", "repl-diskless-sync-max-replicas", "1") == b"OK"
        wait_link_up(r, timeout=10)
        assert time.monotonic() - t < 5
    finally:
        r.cleanup()
        p.cleanup()
