"""Blocking XREAD and XREADGROUP over real sockets, on Keel and on a real redis-server side by side.

Each scenario runs against both servers with fresh connections: waiters are
parked (``wait_blocked`` polls INFO until the server reports them blocked),
a writer wakes them, and the bytes every connection received are compared.
IDs are explicit so that replies do not depend on the clock.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.test_blocking import raw_reply, silent, wait_blocked
from tests.support import RespClient, encode


def _both(keel, redis_ref, scenario):
    """Run ``scenario(port) -> result`` on each server; the results must match."""
    got = []
    for port in (keel.port, redis_ref.port):
        admin = RespClient(port)
        admin.call("FLUSHALL")
        got.append(scenario(port, admin))
        admin.close()
    assert got[0] == got[1], f"keel {got[0]!r} != redis {got[1]!r}"
    return got[0]


def _send(port: int, *args) -> RespClient:
    c = RespClient(port)
    c.send_raw(encode(args))
    return c


def test_xread_waiters_all_get_the_new_entry_in_arrival_order(keel, redis_ref):
    def scenario(port, admin):
        admin.call("XADD", "s", "1-1", "f", "old")
        waiters = [_send(port, "XREAD", "BLOCK", "0", "STREAMS", "s", "$") for _ in range(3)]
        wait_blocked(admin, 3)
        admin.call("XADD", "s", "2-1", "f", "new", "g", "x")
        out = [raw_reply(w) for w in waiters]
        wait_blocked(admin, 0)
        return out

    out = _both(keel, redis_ref, scenario)
    assert b"new" in out[0] and b"old" not in out[0]


def test_xread_waits_on_several_keys_and_a_missing_one(keel, redis_ref):
    def scenario(port, admin):
        admin.call("XADD", "a", "5-1", "f", "v")
        w = _send(port, "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "b", "$", "0")
        wait_blocked(admin, 1)
        admin.call("SET", "other", "x")
        quiet = silent(w)
        admin.call("XADD", "b", "1-1", "f", "v")
        admin.call("XADD", "b", "1-2", "f", "v")
        return quiet, raw_reply(w)

    _both(keel, redis_ref, scenario)


def test_xread_times_out_with_a_nil_array(keel, redis_ref):
    def scenario(port, admin):
        w = _send(port, "XREAD", "BLOCK", "50", "STREAMS", "s", "0")
        r2 = _send(port, "HELLO", "3")
        raw_reply(r2)
        r2.send_raw(encode(["XREAD", "BLOCK", "50", "STREAMS", "s", "0"]))
        return raw_reply(w), raw_reply(r2)

    assert _both(keel, redis_ref, scenario) == (b"*-1\r\n", b"_\r\n")


def test_xread_plus_reads_the_last_entry(k):
    # Redis 7.4's form (the reference 7.0 refuses it): "+" is the last entry.
    assert k.call("XREAD", "STREAMS", "s", "+") is None
    k.call("XADD", "s", "1-1", "f", "1")
    k.call("XADD", "s", "2-1", "f", "2")
    assert k.call("XREAD", "STREAMS", "s", "+") == [[b"s", [[b"2-1", [b"f", b"2"]]]]]


def test_xreadgroup_waiters_share_new_entries_first_come_first_served(keel, redis_ref):
    def scenario(port, admin):
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        a = _send(port, "XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        b = _send(port, "XREADGROUP", "GROUP", "g", "bob", "COUNT", "5", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 2)
        admin.call("XADD", "s", "1-1", "f", "1")
        first = raw_reply(a)
        bob_waits = silent(b)
        admin.call("XADD", "s", "2-1", "f", "2")
        second = raw_reply(b)
        pending = admin.call("XPENDING", "s", "g")
        groups = admin.call("XINFO", "GROUPS", "s")
        return first, bob_waits, second, pending, groups

    first, bob_waits, second, pending, _ = _both(keel, redis_ref, scenario)
    assert b"1-1" in first and bob_waits and b"2-1" in second
    assert pending[0] == 2


def test_xreadgroup_history_and_noack_never_block(keel, redis_ref):
    def scenario(port, admin):
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        c = RespClient(port)
        hist = c.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", "0")
        w = _send(port, "XREADGROUP", "GROUP", "g", "c", "NOACK", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        admin.call("XADD", "s", "3-1", "f", "v")
        return hist, raw_reply(w), admin.call("XPENDING", "s", "g")

    _both(keel, redis_ref, scenario)


@pytest.mark.parametrize("change", [("DEL", "s"), ("SET", "s", "x"), ("XGROUP", "DESTROY", "s", "g"), ("FLUSHALL",)],
                         ids=["del", "retyped", "group-destroyed", "flushall"])
def test_xreadgroup_woken_with_an_error_when_its_stream_or_group_goes(keel, redis_ref, change):
    def scenario(port, admin):
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        w = _send(port, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        admin.call(*change)
        return raw_reply(w)

    assert _both(keel, redis_ref, scenario)[:1] == b"-"


def test_xread_keeps_waiting_when_its_stream_is_deleted(keel, redis_ref):
    def scenario(port, admin):
        admin.call("XADD", "s", "1-1", "f", "v")
        w = _send(port, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(admin, 1)
        admin.call("DEL", "s")
        quiet = silent(w)
        admin.call("XADD", "s", "0-5", "f", "early")  # before the ID it waits after: not served
        admin.call("XADD", "s", "9-5", "f", "again")
        return quiet, raw_reply(w)

    assert _both(keel, redis_ref, scenario)[0]


def test_inside_multi_blocking_reads_answer_at_once_and_exec_serves_waiters(keel, redis_ref):
    def scenario(port, admin):
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        w = _send(port, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(admin, 1)
        m = RespClient(port)
        m.call("MULTI")
        m.call("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        m.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        m.call("XADD", "s", "7-1", "f", "v")
        m.call("XADD", "s", "7-2", "f", "w")
        execd = m.call("EXEC")
        return execd, raw_reply(w)

    execd, served = _both(keel, redis_ref, scenario)
    assert execd[0] is None and execd[1] is None
    assert b"7-1" in served and b"7-2" in served


def test_a_served_xreadgroup_is_durable(tmp_path):
    from tests.support import KeelProcess

    server = KeelProcess(dir=str(tmp_path)).start()
    try:
        admin = server.client()
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        w = RespClient(server.port)
        w.send_raw(encode(["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]))
        wait_blocked(admin, 1)
        admin.call("XADD", "s", "5-1", "f", "v")
        raw_reply(w)
        before = admin.call("XINFO", "STREAM", "s", "FULL")
        server.kill()
        server = KeelProcess(dir=str(tmp_path), port=server.port).start()
        deadline = time.time() + 10
        admin = server.client()
        after = admin.call("XINFO", "STREAM", "s", "FULL")
        while isinstance(after, Exception) and time.time() < deadline:
            time.sleep(0.05)
            after = admin.call("XINFO", "STREAM", "s", "FULL")
        assert _without_times(after) == _without_times(before)
    finally:
        server.cleanup()


def _without_times(full):
    """XINFO STREAM FULL with the group's delivery and seen times taken out."""
    out = dict(zip(full[::2], full[1::2]))
    for g in out[b"groups"]:
        gm = dict(zip(g[::2], g[1::2]))
        for p in gm[b"pending"]:
            p[2] = None
        for cons in gm[b"consumers"]:
            cm = dict(zip(cons[::2], cons[1::2]))
            for k in (b"seen-time", b"active-time"):
                if k in cm:
                    cons[cons.index(k) + 1] = None
            for p in cm[b"pending"]:
                p[1] = None
    return full
