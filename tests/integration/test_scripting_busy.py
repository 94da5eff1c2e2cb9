"""A script that runs long: -BUSY to the other clients past
busy-reply-threshold, SCRIPT KILL, UNKILLABLE after a write, SHUTDOWN
NOSAVE; the same on Keel and on redis-server where both can run it."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support import Err, KeelProcess, RedisProcess, RespClient

BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."


def _start(client, *args):
    out = []
    t = threading.Thread(target=lambda: out.append(client.call(*args)), daemon=True)
    t.start()
    return t, out


def _busy_kill_sequence(port: int) -> list:
    """What a second and a third client see while a script loops forever."""
    a, b = RespClient(port), RespClient(port)
    seen = [b.call("CONFIG", "SET", "busy-reply-threshold", "200")]
    b.call("SCRIPT", "FLUSH")
    t, out = _start(a, "EVAL", "local i = 0 while true do i = i + 1 end", "0")
    time.sleep(0.05)
    t0 = time.monotonic()
    seen.append(b.call("GET", "x"))  # answered once the threshold has passed, not after the script
    assert time.monotonic() - t0 < 2
    fresh = RespClient(port)  # connected while the script runs
    seen.append(fresh.call("PING"))
    seen.append(fresh.call("EVAL", "return 1", "0"))
    seen.append(fresh.call("SHUTDOWN"))  # SHUTDOWN without NOSAVE is refused too
    seen.append(b.call("SCRIPT", "KILL"))
    t.join(5)
    seen.append(out[0])
    seen.append(b.call("SCRIPT", "KILL"))
    seen.append(fresh.call("PING"))
    seen.append(a.call("PING"))
    b.call("CONFIG", "SET", "busy-reply-threshold", "5000")
    for c in (a, b, fresh):
        c.close()
    return seen


def test_busy_script_and_script_kill_match_redis(keel, redis_ref):
    assert _busy_kill_sequence(keel.port) == _busy_kill_sequence(redis_ref.port)


def test_busy_script_answers_busy_then_kill(keel):
    seen = _busy_kill_sequence(keel.port)
    assert seen[1] == Err(BUSY) and seen[2] == Err(BUSY) and seen[5] == b"OK"
    assert seen[6].startswith("ERR Script killed by user with SCRIPT KILL...")
    assert seen[7] == Err("NOTBUSY No scripts in execution right now.")
    assert seen[8] == b"PONG" and seen[9] == b"PONG"


def test_script_that_wrote_is_unkillable_and_shutdown_nosave_stops_the_server(tmp_path):
    keel = KeelProcess("--busy-reply-threshold", "200", dir=str(tmp_path)).start()
    try:
        a, b = keel.client(), keel.client()
        b.call("SET", "before", "1")
        t, out = _start(a, "EVAL", "redis.call('set', 'partial', '1') while true do end", "0")
        time.sleep(0.4)
        r = b.call("SCRIPT", "KILL")
        assert isinstance(r, Err) and r.startswith("UNKILLABLE Sorry the script already executed write commands")
        assert b.call("PING") == Err(BUSY)
        b.send_raw(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        assert keel.proc.wait(10) == 0
        t.join(5)
        keel.start()
        c = keel.client()
        # The unfinished script's write was never acknowledged nor journaled.
        assert c.call("GET", "before") == b"1" and c.call("GET", "partial") is None
        c.close()
    finally:
        keel.cleanup()


def test_short_scripts_never_see_busy(k):
    k.call("CONFIG", "SET", "busy-reply-threshold", "0")  # every hook tick is past it
    try:
        assert k.call("EVAL", "local n = 0 for i = 1, 300000 do n = n + i end return n", "0") == 45000150000
    finally:
        k.call("CONFIG", "SET", "busy-reply-threshold", "5000")


def _function_kill_sequence(port: int) -> list:
    a, b = RespClient(port), RespClient(port)
    b.call("CONFIG", "SET", "busy-reply-threshold", "200")
    b.call("FUNCTION", "LOAD", "REPLACE", "#!lua name=spin\n"
           "redis.register_function('spin', function() while true do end end)")
    t, out = _start(a, "FCALL", "spin", "0")
    time.sleep(0.4)
    seen = [b.call("PING"), b.call("SCRIPT", "KILL"), b.call("FUNCTION", "KILL")]
    t.join(5)
    seen += [out[0], b.call("FUNCTION", "DELETE", "spin")]
    b.call("CONFIG", "SET", "busy-reply-threshold", "5000")
    a.close()
    b.close()
    return seen


def test_busy_function_and_function_kill_match_redis(keel, redis_ref):
    seen = _function_kill_sequence(keel.port)
    assert seen == _function_kill_sequence(redis_ref.port)
    assert seen[0].startswith("BUSY") and seen[2] == b"OK"
