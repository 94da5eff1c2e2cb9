"""EVAL on Keel: what a script journals, the caller's state around it, and
the libraries that ship Lua to Redis (redis-py's Script and Lock)."""

from __future__ import annotations

import io
import threading
import time

import pytest

from tests.support import Err, KeelProcess


def test_script_journals_its_effects_wrapped_in_multi_exec(tmp_path):
    from wal.__main__ import main as wal_main

    keel = KeelProcess("--appendfsync", "always", dir=str(tmp_path)).start()
    try:
        c = keel.client()
        assert c.call("EVAL", "redis.call('set', KEYS[1], ARGV[1]); redis.call('expire', KEYS[1], 100); "
                      "return redis.call('incr', KEYS[2])", "2", "a", "cnt", "v") == 1
        assert c.call("EVAL", "return redis.call('set', 'single', 'x')", "0") == b"OK"
        assert c.call("EVAL", "return redis.call('get', 'single')", "0") == b"x"  # a read journals nothing
        assert c.call("EVAL", "redis.set_repl(redis.REPL_NONE); redis.call('set', 'unlogged', 'x'); "
                      "redis.set_repl(redis.REPL_ALL); return redis.call('set', 'logged', 'y')", "0") == b"OK"
        c.close()
        keel.kill()
        out = io.StringIO()
        wal_main(["dump", str(tmp_path)], out=out)
        text = out.getvalue().lower()
        assert "eval" not in text, text  # effects, not the script
        assert text.index("multi") < text.index("pexpireat") < text.index("incr") < text.index("exec") \
            < text.index("single"), text
        assert text.count("multi") == 1 and "unlogged" not in text and "logged" in text, text
        keel.start()
        c = keel.client()
        assert c.call("GET", "a") == b"v" and c.call("GET", "cnt") == b"1" and c.call("GET", "single") == b"x"
        assert 0 < c.call("TTL", "a") <= 100
        c.close()
    finally:
        keel.cleanup()


def test_select_inside_script_leaves_the_caller_in_its_database(k):
    assert k.call("EVAL", "redis.call('select', 5); return redis.call('set', 'k5', 'v')", "0") == b"OK"
    assert k.call("GET", "k5") is None
    k.call("SELECT", "5")
    assert k.call("GET", "k5") == b"v"
    k.call("SELECT", "0")


def test_failed_script_keeps_the_writes_before_the_error(k):
    # Redis does not roll back: what ran before the error stays (and is journaled).
    r = k.call("EVAL", "redis.call('set', 'before', '1'); redis.call('incr', 'before2'); "
               "return redis.call('lpush', 'before', 'x')", "0")
    assert isinstance(r, Err) and r.startswith("WRONGTYPE")
    assert k.call("GET", "before") == b"1" and k.call("GET", "before2") == b"1"


def test_script_inside_multi(k):
    k.call("MULTI")
    assert k.call("EVAL", "return redis.call('incr', 'm')", "0") == b"QUEUED"
    assert k.call("EXEC") == [1]


def test_eval_serves_blocked_clients_after_the_script(keel):
    waiter = keel.client()
    writer = keel.client()
    writer.call("DEL", "q")
    waiter.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n5\r\n")
    time.sleep(0.1)
    assert writer.call("EVAL", "redis.call('rpush', 'q', 'a', 'b'); return redis.call('llen', 'q')", "0") == 2
    assert waiter.read() == [b"q", b"a"]
    assert writer.call("LRANGE", "q", "0", "-1") == [b"b"]
    waiter.close()
    writer.close()


def test_redis_py_script_object(r):
    incr = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr(keys=["n"], args=[5]) == 5
    r.script_flush()
    assert incr(keys=["n"], args=[2]) == 7  # NOSCRIPT -> EVAL -> cached again
    assert r.script_exists(incr.sha) == [True]


def test_redis_py_lock(r):
    lock = r.lock("resource", timeout=5)
    assert lock.acquire(blocking=False)
    assert r.get("resource") == lock.local.token
    other = r.lock("resource", timeout=5)
    assert not other.acquire(blocking=False)
    assert lock.extend(10)
    assert 5 < r.pttl("resource") / 1000 <= 15
    assert lock.reacquire()
    assert 4 < r.pttl("resource") / 1000 <= 5
    lock.release()
    assert r.get("resource") is None
    assert other.acquire(blocking=False)
    other.release()


def test_redis_py_lock_blocking_waits_for_release(r, keel):
    holder = r.lock("blk", timeout=5)
    assert holder.acquire()
    got = []

    def wait():
        c = keel.redis()
        waiter = c.lock("blk", timeout=5, blocking_timeout=5, sleep=0.02)
        got.append(waiter.acquire())
        waiter.release()
        c.close()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    holder.release()
    t.join(10)
    assert got == [True]


def test_lua_memory_is_limited(k):
    limit = k.call("CONFIG", "GET", "lua-max-memory")[1]
    k.call("CONFIG", "SET", "lua-max-memory", "32mb")
    try:
        r = k.call("EVAL", "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end", "0")
        assert isinstance(r, Err) and "memory" in r, r
        assert k.call("EVAL", "return 1", "0") == 1  # the state is still usable
    finally:
        k.call("CONFIG", "SET", "lua-max-memory", limit)


@pytest.mark.parametrize("script", ["local function f() return 1 + f() end return f()",
                                    "local function f(n) return f(n + 1) + 1 end return f(1)"])
def test_unbounded_recursion_is_an_error(k, script):
    r = k.call("EVAL", script, "0")
    assert isinstance(r, Err) and "stack overflow" in r, r
    assert k.call("PING") == b"PONG"


def test_info_memory_counts_scripts(k):
    k.call("SCRIPT", "FLUSH")
    k.call("SCRIPT", "LOAD", "return 'info test'")
    info = k.call("INFO", "memory").decode()
    assert "number_of_cached_scripts:1\r\n" in info
    assert "used_memory_scripts:" in info and "used_memory_vm_eval:" in info
