"""CLIENT PAUSE / UNPAUSE, run the same way against Keel and a real redis-server.

A pause holds every client of the server, so this module starts its own Keel
and its own redis-server (one each, shared by its tests) and every scenario
runs on both: what WRITE holds (writes, PFCOUNT, PUBLISH, EVAL unless
no-writes, EXEC of writes, a write queued in MULTI) and what it lets through
(reads, read-only scripts and transactions, refusals such as a wrong argument
count), ALL holding reads until the timeout, the stricter and later pause
winning, UNPAUSE releasing held clients in the order they came with the rest
of their pipelines behind them, expiry stopped meanwhile, CLIENT UNBLOCK not
releasing a paused client, and the errors in Redis's words.

Held is observed without sleeping: INFO's blocked_clients counts a held
client, as in Redis, and the test polls it until the count is reached.
"""

from __future__ import annotations

import select
import time

import pytest

from tests.support import Err, Pair, encode


@pytest.fixture(params=["keel", "redis"])
def srv(request, keel_own, redis_own):
    """Each scenario runs on Keel and on redis-server; the admin client unpauses afterwards."""
    proc = keel_own if request.param == "keel" else redis_own
    admin = proc.client()
    admin.call("CLIENT", "UNPAUSE")
    admin.call("FLUSHALL")
    clients = []

    def connect():
        c = proc.client()
        clients.append(c)
        return c

    yield admin, connect
    admin.call("CLIENT", "UNPAUSE")
    for c in clients:
        c.close()
    admin.close()


@pytest.fixture
def own_pair(keel_own, redis_own):
    p = Pair(keel_own.client(), redis_own.client())
    yield p
    p.both("CLIENT", "UNPAUSE")
    p.close()


def blocked(admin, n: int, timeout: float = 5.0) -> None:
    """Wait until INFO reports ``n`` blocked (held) clients."""
    deadline = time.monotonic() + timeout
    while True:
        info = admin.call("INFO", "clients").decode()
        count = int(info.split("blocked_clients:")[1].split("\r\n")[0])
        if count == n:
            return
        assert time.monotonic() < deadline, f"blocked_clients stayed {count}, expected {n}"
        time.sleep(0.002)


def quiet(c) -> bool:
    """True if nothing has arrived for ``c`` (its reply is held)."""
    return not select.select([c.sock], [], [], 0)[0]


def fields(line: bytes) -> dict:
    return dict(f.split(b"=", 1) for f in line.split())


def test_write_pause_holds_a_write_and_answers_reads(srv):
    admin, connect = srv
    b = connect()
    bid = b.call("CLIENT", "ID")
    assert admin.call("CLIENT", "PAUSE", "100000", "WRITE") == b"OK"
    assert b.call("GET", "k") is None
    assert b.call("PING") == b"PONG"
    b.send_raw(encode(("SET", "k", "v")))
    blocked(admin, 1)
    assert quiet(b)
    line = fields(admin.call("CLIENT", "LIST", "ID", str(bid)))
    assert line[b"flags"] == b"b" and line[b"cmd"] == b"set" and line[b"argv-mem"] == b"5"
    assert admin.call("GET", "k") is None
    assert admin.call("CLIENT", "UNPAUSE") == b"OK"
    assert b.read() == b"OK"
    assert admin.call("GET", "k") == b"v"
    blocked(admin, 0)


def test_write_pause_holds_commands_that_may_write(srv):
    admin, connect = srv
    admin.call("PFADD", "hll", "a")
    queued = connect()
    assert queued.call("MULTI") == b"OK"
    assert queued.call("SET", "m", "1") == b"QUEUED"
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    held = [
        ("PFCOUNT", "hll"),
        ("PUBLISH", "ch", "msg"),
        ("EVAL", "return 1", "0"),
        ("EVAL", "#!lua\nreturn 2", "0"),  # a shebang without no-writes may write
        ("INCR", "n"),
    ]
    clients = []
    for i, cmd in enumerate(held):
        c = connect()
        c.send_raw(encode(cmd))
        clients.append(c)
        blocked(admin, i + 1)
    queued.send_raw(encode(("EXEC",)))
    blocked(admin, len(held) + 1)
    in_multi = connect()
    assert in_multi.call("MULTI") == b"OK"
    in_multi.send_raw(encode(("SET", "q", "1")))  # a write is held even when it would only be queued
    blocked(admin, len(held) + 2)
    assert all(quiet(c) for c in clients + [queued, in_multi])
    admin.call("CLIENT", "UNPAUSE")
    assert [c.read() for c in clients] == [1, 0, 1, 2, 1]
    assert queued.read() == [b"OK"]
    assert in_multi.read() == b"QUEUED"
    assert in_multi.call("EXEC") == [b"OK"]


def test_write_pause_runs_read_only_scripts_and_transactions(srv):
    admin, connect = srv
    admin.call("SET", "x", "y")
    admin.call("FUNCTION", "LOAD", "REPLACE",
               "#!lua name=pauselib\nredis.register_function{function_name='ro', "
               "callback=function() return 'hello' end, flags={'no-writes'}}")
    sha = admin.call("SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 3")
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    c = connect()
    assert c.call("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", "1", "x") == b"y"
    assert c.call("EVAL_RO", "return redis.call('get', KEYS[1])", "1", "x") == b"y"
    assert c.call("EVALSHA", sha, "0") == 3
    assert c.call("FCALL", "ro", "0") == b"hello"
    assert c.call("FCALL_RO", "ro", "0") == b"hello"
    assert c.call("MULTI") == b"OK"
    assert c.call("PING") == b"QUEUED"
    assert c.call("GET", "x") == b"QUEUED"
    assert c.call("EXEC") == [b"PONG", b"y"]
    assert c.call("SET", "x") == Err("ERR wrong number of arguments for 'set' command")  # refused at once
    blocked(admin, 0)
    admin.call("CLIENT", "UNPAUSE")
    admin.call("FUNCTION", "DELETE", "pauselib")


def test_all_pause_holds_reads_until_it_times_out_and_the_stricter_later_pause_wins(srv):
    admin, connect = srv
    b = connect()
    t0 = time.monotonic()
    admin.call("CLIENT", "PAUSE", "250", "ALL")
    admin.call("CLIENT", "PAUSE", "10", "WRITE")  # neither shorter nor milder: ALL for 250 ms goes on
    b.send_raw(encode(("GET", "k")))
    admin.send_raw(encode(("PING",)))  # the pausing client is held too
    assert b.read() is None
    assert admin.read() == b"PONG"
    assert time.monotonic() - t0 >= 0.2


def test_unpause_releases_held_clients_in_arrival_order_with_their_pipelines(srv):
    admin, connect = srv
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    b, c, d = connect(), connect(), connect()
    b.send_raw(encode(("GET", "k")) + encode(("APPEND", "k", "b")) + encode(("GET", "k")))
    assert b.read() is None  # the read before the write ran at once
    blocked(admin, 1)
    c.send_raw(encode(("APPEND", "k", "c")))
    blocked(admin, 2)
    d.send_raw(encode(("APPEND", "k", "d")) + encode(("GET", "k")))
    blocked(admin, 3)
    assert quiet(b) and quiet(c) and quiet(d)
    admin.call("CLIENT", "UNPAUSE")
    assert (b.read(), b.read()) == (1, b"b")  # b's GET waited behind its APPEND
    assert c.read() == 2
    assert (d.read(), d.read()) == (3, b"bcd")


def test_pause_inside_multi_starts_after_exec(srv):
    admin, connect = srv
    assert admin.call("MULTI") == b"OK"
    admin.call("SET", "a", "1")
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    admin.call("SET", "b", "2")
    assert admin.call("EXEC") == [b"OK", b"OK", b"OK"]
    c = connect()
    c.send_raw(encode(("SET", "c", "3")))
    blocked(admin, 1)
    assert admin.call("MGET", "a", "b", "c") == [b"1", b"2", None]
    admin.call("CLIENT", "UNPAUSE")
    assert c.read() == b"OK"


def test_keys_do_not_expire_while_paused(srv):
    admin, connect = srv
    expired = _stat(admin, "expired_keys")
    admin.call("MULTI")
    admin.call("SET", "e", "v", "PX", "20")
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    admin.call("EXEC")
    time.sleep(0.15)  # past the TTL, and more than a tick of active expiry
    assert admin.call("GET", "e") is None  # due: reads as missing...
    assert admin.call("DBSIZE") == 1  # ...but it stays
    assert _stat(admin, "expired_keys") == expired
    admin.call("CLIENT", "UNPAUSE")
    assert admin.call("GET", "e") is None
    assert admin.call("DBSIZE") == 0
    assert _stat(admin, "expired_keys") == expired + 1


def _stat(admin, name: str) -> int:
    info = admin.call("INFO", "stats").decode()
    return int(info.split(name + ":")[1].split("\r\n")[0])


def test_client_unblock_does_not_release_a_paused_client(keel_own):
    # Keel only: redis-server 7.0.15 crashes on this (its pause.tcl says "This
    # used to trigger a panic"); later Redis answers 0 while the pause holds it.
    admin, b = keel_own.client(), keel_own.client()
    admin.call("CLIENT", "UNPAUSE")
    bid = str(b.call("CLIENT", "ID"))
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    b.send_raw(encode(("BLPOP", "nolist", "0")))
    blocked(admin, 1)
    assert admin.call("CLIENT", "UNBLOCK", bid) == 0
    assert admin.call("CLIENT", "UNBLOCK", bid, "ERROR") == 0
    admin.call("CLIENT", "UNPAUSE")
    deadline = time.monotonic() + 5
    while admin.call("CLIENT", "UNBLOCK", bid) != 1:  # now waiting on its list (Keel: from the next turn)
        assert time.monotonic() < deadline
        time.sleep(0.002)
    assert b.read() is None
    admin.close()
    b.close()


def test_a_held_client_that_disconnects_is_forgotten(srv):
    admin, connect = srv
    admin.call("CLIENT", "PAUSE", "100000", "WRITE")
    b = connect()
    b.send_raw(encode(("SET", "gone", "1")))
    blocked(admin, 1)
    b.close()
    blocked(admin, 0)
    admin.call("CLIENT", "UNPAUSE")
    assert admin.call("GET", "gone") is None
    assert admin.call("PING") == b"PONG"


@pytest.mark.parametrize("args", [
    (), ("-1",), ("abc",), ("1.5",), ("",), ("+5",), ("1", "maybe"), ("-1", "maybe"), ("1", "all", "x"),
])
def test_pause_errors(own_pair, args):
    own_pair.check("CLIENT", "PAUSE", *args)


def test_pause_and_unpause_replies(own_pair):
    own_pair.check("CLIENT", "UNPAUSE")  # nothing paused: OK all the same
    own_pair.check("CLIENT", "UNPAUSE", "x")
    own_pair.check("CLIENT", "PAUSE", "0")
    own_pair.check("CLIENT", "PAUSE", "1", "wRiTe")
    own_pair.check("CLIENT", "PAUSE", "1", "ALL")
    own_pair.check("CLIENT", "UNPAUSE")
