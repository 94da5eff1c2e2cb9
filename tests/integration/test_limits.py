"""Limits: bulk length, query buffer, unauthenticated clients, maxclients,
idle timeout, and a client that never reads its replies.

Where Redis has the same limit, the same bytes go to a real redis-server
configured alike and the answers (replies, and whether the connection was
closed) must be equal.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.test_protocol import exchange, same
from tests.support import KeelProcess, RedisProcess


def _config_both(keel, redis_ref, name: str, value: str):
    """CONFIG SET on both servers; returns the previous values to restore."""
    olds = []
    for proc in (keel, redis_ref):
        c = proc.client()
        try:
            olds.append(c.call("CONFIG", "GET", name)[1])
            assert c.call("CONFIG", "SET", name, value) == b"OK"
        finally:
            c.close()
    return olds


def _restore_both(keel, redis_ref, name: str, olds):
    for proc, old in zip((keel, redis_ref), olds):
        c = proc.client()
        try:
            c.call("CONFIG", "SET", name, old)
        finally:
            c.close()


@pytest.fixture
def small_bulk(keel, redis_ref):
    olds = _config_both(keel, redis_ref, "proto-max-bulk-len", "1mb")
    yield
    _restore_both(keel, redis_ref, "proto-max-bulk-len", olds)


def test_bulk_header_above_proto_max_bulk_len_is_refused_before_the_body(keel, redis_ref, small_bulk):
    head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n"
    reply, closed = same(keel, redis_ref, head)
    assert closed and reply == b"-ERR Protocol error: invalid bulk length\r\n"


def test_bulk_header_at_proto_max_bulk_len_waits_for_its_body(keel, redis_ref, small_bulk):
    reply, closed = same(keel, redis_ref, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n")
    assert reply == b"" and not closed


def test_bulk_at_proto_max_bulk_len_is_stored(keel, small_bulk):
    c = keel.client()
    try:
        assert c.call("SET", "maxbulk", b"v" * 1048576) == b"OK"
        assert c.call("STRLEN", "maxbulk") == 1048576
    finally:
        c.call("DEL", "maxbulk")
        c.close()


@pytest.fixture
def small_query_buffer(keel, redis_ref):
    olds = _config_both(keel, redis_ref, "client-query-buffer-limit", "1mb")
    yield
    _restore_both(keel, redis_ref, "client-query-buffer-limit", olds)


def test_client_whose_pending_request_outgrows_the_query_buffer_limit_is_closed(keel, redis_ref, small_query_buffer):
    data = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n" + b"x" * 1_500_000
    cuts = list(range(65536, len(data), 65536))
    reply, closed = same(keel, redis_ref, data, chunks=cuts)
    assert reply == b"" and closed
    other = keel.client()
    try:
        assert other.call("PING") == b"PONG"
    finally:
        other.close()


def test_pending_request_within_the_query_buffer_limit_is_kept(keel, small_query_buffer):
    c = keel.client()
    try:
        value = b"y" * 900_000
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$2\r\nqb\r\n$%d\r\n" % len(value))
        c.send_raw(value[:500_000])
        time.sleep(0.1)
        c.send_raw(value[500_000:] + b"\r\n")
        assert c.read() == b"OK"
        assert c.call("STRLEN", "qb") == len(value)
        c.call("DEL", "qb")
    finally:
        c.close()


# --- unauthenticated clients ------------------------------------------------

@pytest.fixture(scope="module")
def with_password():
    """A Keel and a redis-server whose default user needs a password."""
    if not RedisProcess.available():
        pytest.skip("redis-server is not installed")
    keel, ref = KeelProcess(), RedisProcess()
    try:
        for proc in (keel.start(), ref.start()):
            c = proc.client()
            assert c.call("CONFIG", "SET", "requirepass", "secret") == b"OK"
            c.close()
        yield keel, ref
    finally:
        keel.cleanup()
        ref.cleanup()


AUTH = b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"
ELEVEN = b"*11\r\n$4\r\nECHO\r\n" + b"$1\r\na\r\n" * 10

UNAUTH_CASES = {
    "multibulk_over_10_refused": b"*11\r\n",
    "multibulk_of_10_waits": b"*10\r\n",
    "bulk_over_16384_refused": b"*2\r\n$4\r\nECHO\r\n$16385\r\n",
    "bulk_of_16384_waits": b"*2\r\n$4\r\nECHO\r\n$16384\r\n",
    "invalid_length_named_before_unauthenticated": b"*2\r\n$4\r\nECHO\r\n$600000000\r\n",
    "commands_refused_with_noauth": b"PING\r\n*1\r\n$4\r\nPING\r\n",
    "auth_lifts_the_multibulk_limit": AUTH + ELEVEN,
    "inline_auth_lifts_the_bulk_limit": b"AUTH secret\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n" + b"z" * 20000 + b"\r\n",
    "failed_auth_keeps_the_limit": b"AUTH wrong\r\n*11\r\n",
}


@pytest.mark.parametrize("data", list(UNAUTH_CASES.values()), ids=list(UNAUTH_CASES))
def test_unauthenticated_client_limits_match_redis(with_password, data):
    keel, ref = with_password
    same(keel, ref, data)


def test_unauthenticated_limit_errors_are_redis_texts(with_password):
    keel, _ = with_password
    assert exchange(keel.port, b"*11\r\n") == (b"-ERR Protocol error: unauthenticated multibulk length\r\n", True)
    assert exchange(keel.port, b"*1\r\n$16385\r\n") == (b"-ERR Protocol error: unauthenticated bulk length\r\n", True)


# --- maxclients ---------------------------------------------------------------

def test_client_beyond_maxclients_is_refused_and_counted():
    keel = KeelProcess("--maxclients", "2").start()
    try:
        a, b = keel.client(), keel.client()
        assert a.call("PING") == b"PONG" and b.call("PING") == b"PONG"
        third = keel.client()
        assert third.recv_all(2.0) == b"-ERR max number of clients reached\r\n"  # and closed
        third.close()
        assert a.call("PING") == b"PONG"
        info = a.call("INFO", "stats").decode()
        assert "rejected_connections:1\r\n" in info
        b.close()
        time.sleep(0.2)
        again = keel.client()
        assert again.call("PING") == b"PONG"
        again.close()
        a.close()
    finally:
        keel.cleanup()


# --- idle timeout -------------------------------------------------------------

def test_idle_client_is_closed_after_timeout_and_a_busy_one_is_not():
    keel = KeelProcess("--timeout", "1").start()
    try:
        idle, busy = keel.client(), keel.client()
        assert idle.call("PING") == b"PONG"
        deadline = time.monotonic() + 2.6
        while time.monotonic() < deadline:
            assert busy.call("PING") == b"PONG"
            time.sleep(0.2)
        assert idle.recv_all(0.5) == b""  # closed by the server, nothing sent
        with pytest.raises((ConnectionError, OSError)):
            idle.call("PING")
        assert busy.call("PING") == b"PONG"
        busy.close()
    finally:
        keel.cleanup()


def test_timeout_zero_never_closes_an_idle_client(keel):
    c = keel.client()
    try:
        assert c.call("CONFIG", "GET", "timeout") == [b"timeout", b"0"]
        time.sleep(2.2)
        assert c.call("PING") == b"PONG"
    finally:
        c.close()


def test_timeout_set_at_run_time_applies_to_connected_clients(keel):
    setter = keel.client()
    idle = keel.client()
    try:
        assert idle.call("PING") == b"PONG"
        assert setter.call("CONFIG", "SET", "timeout", "1") == b"OK"
        deadline = time.monotonic() + 2.6
        while time.monotonic() < deadline:
            assert setter.call("PING") == b"PONG"
            time.sleep(0.2)
        assert idle.recv_all(0.3) == b""
        with pytest.raises((ConnectionError, OSError)):
            idle.call("PING")
    finally:
        setter.call("CONFIG", "SET", "timeout", "0")
        setter.close()
        idle.close()


# --- a client that never reads ------------------------------------------------

def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_never_reads_replies_cannot_grow_server_memory():
    keel = KeelProcess().start()
    try:
        c = keel.client()
        assert c.call("SET", "big", b"v" * (1024 * 1024)) == b"OK"
        base = _rss_kb(keel.proc.pid)
        # 3000 GETs ask for ~3 GB of replies; the client reads none of them.
        c.sock.settimeout(0.5)
        get = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"
        sent = 0
        try:
            for _ in range(30):
                c.sock.sendall(get * 100)
                sent += 100
        except OSError:
            pass  # the server stopped reading: our send buffer filled up
        time.sleep(1.0)
        grown = _rss_kb(keel.proc.pid) - base
        assert grown < 200 * 1024, f"server RSS grew by {grown} kB"
        # The server still serves others, and the stalled client gets every
        # reply, in order, once it reads.
        other = keel.client()
        assert other.call("PING") == b"PONG"
        other.close()
        c.sock.settimeout(20)
        for _ in range(sent):
            assert len(c.read()) == 1024 * 1024
        c.close()
    finally:
        keel.cleanup()
