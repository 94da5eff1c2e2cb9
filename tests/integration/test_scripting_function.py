"""FUNCTION and FCALL: side by side with redis-server, and durable on Keel
(journaled, kept by checkpoints, back after a restart)."""

from __future__ import annotations

import pytest

from tests.support import KeelProcess

LIB = ("#!lua name=mylib\n"
       "redis.register_function('myset', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n"
       "redis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end,"
       " flags={'no-writes'}}\n"
       "redis.register_function('fail', function(keys) return redis.call('incr', keys[1]) end)\n"
       "redis.register_function('boom', function() error('x') end)")

BAD_LIBRARIES = [
    "return 1", "#!lua\nreturn 1", "#!lua name=x\nreturn 1", "#!lua name=x-y\nreturn 1",
    "#!lua name=x foo=bar\nreturn 1", "#!js name=x\nreturn 1", "#!lua name=x\nreturn 1 +",
    "#!lua name=x\nredis.register_function('myset', function() end)",
    "#!lua name=x\nredis.register_function('a', function() end) redis.register_function('a', function() end)",
    "#!lua name=x\nredis.register_function('a-b', function() end)",
    "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, flags={'bad'}}",
    "#!lua name=x\nredis.register_function('a')",
]


@pytest.fixture
def fpair(pair):
    pair.check("FUNCTION", "FLUSH")
    pair.check("FUNCTION", "LOAD", LIB)
    yield pair
    pair.check("FUNCTION", "FLUSH")


def test_function_load_and_fcall_match_redis(fpair):
    p = fpair
    p.check("FUNCTION", "LOAD", LIB)
    p.check("FUNCTION", "LOAD", "REPLACE", LIB)
    p.check("FCALL", "myset", "1", "k", "v")
    p.check("FCALL", "myget", "1", "k")
    p.check("FCALL_RO", "myget", "1", "k")
    p.check("FCALL_RO", "myset", "1", "k", "v")
    p.check("FCALL", "nofn", "0")
    p.check("FCALL", "myget", "5")
    p.check("SET", "s", "abc")
    p.check("FCALL", "fail", "1", "s")
    p.check("FCALL", "boom", "0")
    p.check("FUNCTION", "LIST", sort=True)
    p.check("FUNCTION", "LIST", "WITHCODE", sort=True)
    p.check("FUNCTION", "LIST", "LIBRARYNAME", "my*", sort=True)
    p.check("FUNCTION", "LIST", "LIBRARYNAME", "zz*")
    p.check("FUNCTION", "STATS")
    p.check("FUNCTION", "KILL")
    p.check("FUNCTION", "DELETE", "nolib")
    p.check("FUNCTION", "DELETE", "mylib")
    p.check("FCALL", "myget", "1", "k")


@pytest.mark.parametrize("code", BAD_LIBRARIES, ids=lambda c: c[:40])
def test_bad_libraries_match_redis(fpair, code):
    fpair.check("FUNCTION", "LOAD", code)
    fpair.check("FUNCTION", "LIST", sort=True)


def test_function_dump_restore_policies_match_redis(fpair):
    p = fpair
    payload = p.ref.call("FUNCTION", "DUMP")  # Keel writes RDB version 11 (7.2), which 7.0 refuses
    for policy in ([], ["APPEND"], ["REPLACE"], ["FLUSH"], ["BOGUS"]):
        p.check("FUNCTION", "RESTORE", payload, *policy)
    p.check("FUNCTION", "RESTORE", b"garbage")
    p.check("FUNCTION", "RESTORE", payload[:-1] + b"x")
    own = p.keel.call("FUNCTION", "DUMP")
    p.check("FUNCTION", "FLUSH")
    assert p.keel.call("FUNCTION", "RESTORE", own) == b"OK"
    assert p.ref.call("FUNCTION", "RESTORE", payload) == b"OK"
    p.check("FUNCTION", "LIST", "WITHCODE", sort=True)


@pytest.mark.parametrize("checkpoint", [False, True], ids=["log", "checkpoint"])
def test_functions_survive_kill_9(tmp_path, checkpoint):
    keel = KeelProcess("--appendfsync", "always", dir=str(tmp_path)).start()
    try:
        c = keel.client()
        assert c.call("FUNCTION", "LOAD", LIB) == b"mylib"
        assert c.call("FUNCTION", "LOAD", "#!lua name=gone\nredis.register_function('g', function() return 1 end)") \
            == b"gone"
        assert c.call("FUNCTION", "DELETE", "gone") == b"OK"
        assert c.call("FCALL", "myset", "1", "k", "v") == b"OK"
        if checkpoint:
            assert c.call("SAVE") == b"OK"
        c.close()
        keel.kill()
        keel.start()
        c = keel.client()
        assert c.call("FCALL", "myget", "1", "k") == b"v"
        assert [lib[1] for lib in c.call("FUNCTION", "LIST")] == [b"mylib"]
        c.close()
    finally:
        keel.cleanup()
