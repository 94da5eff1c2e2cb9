"""Client limits with real clients, on Keel and on a real redis-server side by
side: client-output-buffer-limit normal (hard, and soft with seconds),
client-query-buffer-limit, maxmemory-clients with CLIENT NO-EVICT, and the
errors bad values get, in Redis's words.

A client that never reads is one that sends a pipeline of GETs of a 256 KB
value and reads nothing: the kernel's socket buffers take a few MB, the rest
waits in the server's output buffer, past the limits the tests set.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support import Err, KeelProcess, RedisProcess, encode

BIG = 256 * 1024
PIPELINE = 64  # GETs of BIG: 16 MB of replies, well past what the socket buffers hold


@pytest.fixture(scope="module")
def servers():
    keel = KeelProcess("--appendonly", "no").start()
    procs = {"keel": keel}
    if RedisProcess.available():
        procs["redis"] = RedisProcess().start()
    yield procs
    for p in procs.values():
        p.cleanup()


@pytest.fixture(params=["keel", "redis"])
def server(request, servers):
    """Each test runs on Keel and on redis-server, limits reset after it."""
    if request.param not in servers:
        pytest.skip("redis-server is not installed")
    p = servers[request.param]
    admin = p.client()
    admin.call("FLUSHALL")
    admin.call("SET", "big", "x" * BIG)
    yield p, admin
    admin.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0")
    admin.call("CONFIG", "SET", "client-query-buffer-limit", "1gb")
    admin.call("CONFIG", "SET", "maxmemory-clients", "0")
    admin.call("CONFIG", "SET", "maxmemory", "0")
    admin.close()


def _names(admin) -> set:
    out = set()
    for line in admin.call("CLIENT", "LIST").decode().splitlines():
        for field in line.split():
            if field.startswith("name="):
                out.add(field[5:])
    return out


def _named(p, name: str):
    c = p.client()
    assert c.call("CLIENT", "SETNAME", name) == b"OK"
    return c


def _gone_within(admin, name: str, seconds: float) -> float | None:
    """Seconds until no client is named ``name`` (None: still there after ``seconds``)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if name not in _names(admin):
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def _never_reads(c) -> None:
    c.send_raw(encode(["GET", "big"]) * PIPELINE)


def _closed(c) -> bool:
    """Whether the server closed ``c`` before it sent every reply of the pipeline."""
    try:
        got = c.recv_all(timeout=1.0)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return len(got) < PIPELINE * BIG


# --- client-output-buffer-limit normal ----------------------------------------------

def test_a_client_past_the_hard_limit_is_disconnected_while_another_is_served(server):
    p, admin = server
    assert admin.call("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0") == b"OK"
    slow = _named(p, "slow")
    _never_reads(slow)
    assert _gone_within(admin, "slow", 3.0) is not None
    assert admin.call("PING") == b"PONG"
    assert admin.call("STRLEN", "big") == BIG
    assert _closed(slow)
    if isinstance(p, KeelProcess):
        assert "scheduled to be closed ASAP for overcoming of output buffer limits" in p.log()


def test_without_normal_limits_a_client_that_does_not_read_stays(server):
    p, admin = server
    if not isinstance(p, KeelProcess):
        pytest.skip("Keel's own: no limit is the default in both")
    slow = _named(p, "patient")
    _never_reads(slow)
    assert _gone_within(admin, "patient", 0.3) is None
    # It reads at last: every reply arrives.
    slow.sock.settimeout(10)
    got = 0
    for _ in range(PIPELINE):
        assert len(slow.read()) == BIG
        got += 1
    assert got == PIPELINE
    slow.close()


def test_a_client_over_the_soft_limit_for_longer_than_its_seconds_is_disconnected(server):
    p, admin = server
    assert admin.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 512kb 1") == b"OK"
    slow = _named(p, "soft")
    _never_reads(slow)
    time.sleep(0.5)
    assert "soft" in _names(admin)  # over the soft limit, not yet for a second
    took = _gone_within(admin, "soft", 3.0)
    assert took is not None
    assert _closed(slow)


# --- client-query-buffer-limit --------------------------------------------------------

def test_a_query_buffer_past_the_limit_closes_the_client(server):
    p, admin = server
    assert admin.call("CONFIG", "SET", "client-query-buffer-limit", "1mb") == b"OK"
    c = _named(p, "greedy")
    # A SET whose value is announced at 4 MB and sent in part: 2 MB wait, unparsed.
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n")
    chunk = b"x" * 65536
    try:
        for _ in range(32):
            c.send_raw(chunk)
    except (ConnectionResetError, BrokenPipeError):
        pass
    assert _gone_within(admin, "greedy", 3.0) is not None
    with pytest.raises((ConnectionError, OSError)):
        c.sock.settimeout(2)
        if not c.sock.recv(1):
            raise ConnectionError("closed")
    assert admin.call("EXISTS", "k") == 0
    if isinstance(p, KeelProcess):
        assert "Closing client that reached max query buffer length" in p.log()


def test_a_big_request_under_the_query_buffer_limit_runs(server):
    p, admin = server
    assert admin.call("CONFIG", "SET", "client-query-buffer-limit", "4mb") == b"OK"
    c = p.client()
    assert c.call("SET", "k", "y" * 2_000_000) == b"OK"
    assert admin.call("STRLEN", "k") == 2_000_000
    c.close()


# --- maxmemory-clients and CLIENT NO-EVICT --------------------------------------------

def test_maxmemory_clients_evicts_the_biggest_client_and_no_evict_protects(server):
    p, admin = server
    assert admin.call("CLIENT", "NO-EVICT", "on") == b"OK"
    stats = _stat(admin, "evicted_clients")
    small = _named(p, "small")
    big = _named(p, "big")
    assert admin.call("CONFIG", "SET", "maxmemory-clients", "4mb") == b"OK"
    _never_reads(big)
    # Closing the biggest brings the total under the limit: the others stay.
    assert _gone_within(admin, "big", 3.0) is not None
    assert "small" in _names(admin)
    assert small.call("PING") == b"PONG"
    assert _stat(admin, "evicted_clients") == stats + 1
    # A client that said NO-EVICT is never closed, even over the limit alone:
    # every other client goes instead (the admin said NO-EVICT too).
    guarded = _named(p, "guarded")
    assert guarded.call("CLIENT", "NO-EVICT", "ON") == b"OK"
    _never_reads(guarded)
    assert _gone_within(admin, "small", 3.0) is not None
    time.sleep(0.3)
    assert "guarded" in _names(admin)
    assert _stat(admin, "evicted_clients") == stats + 2
    assert admin.call("CONFIG", "SET", "maxmemory-clients", "0") == b"OK"
    guarded.close()


def test_maxmemory_clients_as_a_share_of_maxmemory(server):
    p, admin = server
    assert admin.call("CLIENT", "NO-EVICT", "on") == b"OK"
    assert admin.call("CONFIG", "SET", "maxmemory", "1gb") == b"OK"
    assert admin.call("CONFIG", "SET", "maxmemory-clients", "1%") == b"OK"  # about 10 MB
    assert admin.call("CONFIG", "GET", "maxmemory-clients") == [b"maxmemory-clients", b"1%"]
    big = _named(p, "share")
    _never_reads(big)
    assert _gone_within(admin, "share", 3.0) is not None
    assert admin.call("CONFIG", "SET", "maxmemory-clients", "0") == b"OK"
    assert admin.call("CONFIG", "SET", "maxmemory", "0") == b"OK"


def _stat(admin, name: str) -> int:
    for line in admin.call("INFO", "stats").decode().splitlines():
        if line.startswith(name + ":"):
            return int(line.split(":")[1])
    raise AssertionError(f"{name} not in INFO stats")


# --- replies and errors, compared with redis-server -------------------------------------

BAD_SETS = [
    ("maxmemory-clients", "abc"),
    ("maxmemory-clients", "-10%"),
    ("maxmemory-clients", "150%"),
    ("maxmemory-clients", "1.5mb"),
    ("maxmemory-clients", "%"),
    ("client-output-buffer-limit", "normal 1mb 2mb"),
    ("client-output-buffer-limit", "normal 1mb 2mb x"),
    ("client-output-buffer-limit", "foo 1mb 2mb 3"),
    ("client-query-buffer-limit", "1000"),
    ("client-query-buffer-limit", "1x"),
]


@pytest.mark.parametrize("name,value", BAD_SETS)
def test_bad_values_are_refused_in_redis_words_and_change_nothing(servers, name, value):
    if "redis" not in servers:
        pytest.skip("redis-server is not installed")
    replies = []
    for p in (servers["keel"], servers["redis"]):
        c = p.client()
        before = c.call("CONFIG", "GET", name)
        r = c.call("CONFIG", "SET", name, value)
        assert isinstance(r, Err)
        assert c.call("CONFIG", "GET", name) == before
        replies.append((r, before))
        c.close()
    assert replies[0] == replies[1]


@pytest.mark.parametrize("value", ["0", "10%", "100%", "1mb", "1000", "0%"])
def test_maxmemory_clients_values_read_back_as_redis_shows_them(servers, value):
    if "redis" not in servers:
        pytest.skip("redis-server is not installed")
    got = []
    for p in (servers["keel"], servers["redis"]):
        c = p.client()
        assert c.call("CONFIG", "SET", "maxmemory-clients", value) == b"OK"
        got.append(c.call("CONFIG", "GET", "maxmemory-clients"))
        c.call("CONFIG", "SET", "maxmemory-clients", "0")
        c.close()
    assert got[0] == got[1]


@pytest.mark.parametrize("args", [
    ("CLIENT", "NO-EVICT"),
    ("CLIENT", "NO-EVICT", "maybe"),
    ("CLIENT", "NO-EVICT", "on", "x"),
    ("CLIENT", "NO-EVICT", "On"),
    ("CLIENT", "NO-EVICT", "OFF"),
    ("COMMAND", "INFO", "client|no-evict"),
])
def test_client_no_evict_replies_as_redis(servers, args):
    if "redis" not in servers:
        pytest.skip("redis-server is not installed")
    got = []
    for p in (servers["keel"], servers["redis"]):
        c = p.client()
        got.append(c.call(*args))
        c.close()
    k, r = got
    if args[0] == "COMMAND":  # name, arity, flags, key positions, ACL categories (tips and the rest aside)
        k, r = k[0][:7], r[0][:7]
    assert k == r


def test_lower_normal_limits_apply_to_connected_clients(servers):
    """A CONFIG SET reaches the clients already connected (their transports'
    marks move), not only the ones that connect after it."""
    p = servers["keel"]
    admin = p.client()
    admin.call("SET", "big", "x" * BIG)
    slow = _named(p, "early")
    assert admin.call("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0") == b"OK"
    try:
        _never_reads(slow)
        assert _gone_within(admin, "early", 3.0) is not None
    finally:
        admin.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0")
        admin.close()
