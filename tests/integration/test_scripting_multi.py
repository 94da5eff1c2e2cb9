"""Scripts inside MULTI/EXEC journal their effects inside the transaction's
one MULTI … EXEC, as Redis propagates them: no markers of their own nested
in it. Checked in Keel's log (``keel-wal dump``), against what a real
redis-server writes to its append-only file for the same commands, and by a
restart that replays the log."""

from __future__ import annotations

import glob
import io
import os

import hiredis
import pytest

from tests.support import KeelProcess, RedisProcess

SCRIPT = "redis.call('set', KEYS[1], ARGV[1]); return redis.call('incr', KEYS[2])"
FUNCTION = """#!lua name=txlib
redis.register_function('two', function(keys, args)
  redis.call('rpush', keys[1], args[1]); return redis.call('rpush', keys[1], args[2]) end)
"""


def _transactions(c, sha):
    """The commands every test sends (to Keel or to Redis), and the replies due."""
    assert c.call("FUNCTION", "LOAD", FUNCTION) == b"txlib"
    steps = [
        # a transaction holding scripts among other writes
        (("MULTI",), b"OK"), (("SET", "x", "1"), b"QUEUED"),
        (("EVAL", SCRIPT, "2", "a", "cnt", "va"), b"QUEUED"),
        (("EVALSHA", sha, "2", "b", "cnt", "vb"), b"QUEUED"),
        (("FCALL", "two", "1", "l", "p", "q"), b"QUEUED"),
        (("SET", "y", "2"), b"QUEUED"),
        (("EXEC",), [b"OK", 1, 2, 2, b"OK"]),
        # a transaction that is one script, with two writes
        (("MULTI",), b"OK"), (("EVAL", SCRIPT, "2", "c", "cnt", "vc"), b"QUEUED"), (("EXEC",), [3]),
        # a script with a SELECT, inside a transaction: the writes after it stay in the caller's database
        (("MULTI",), b"OK"),
        (("EVAL", "redis.call('select', 2); redis.call('set', 'in2', 'v'); return redis.call('set', 'in2b', 'w')",
          "0"), b"QUEUED"),
        (("SET", "in0", "z"), b"QUEUED"), (("EXEC",), [b"OK", b"OK"]),
        # and a script on its own, after them: its own MULTI/EXEC, as before
        (("EVAL", SCRIPT, "2", "d", "cnt", "vd"), 4),
    ]
    for args, want in steps:
        got = c.call(*args)
        if isinstance(got, bytes) or isinstance(want, bytes):
            got = bytes(got) if not isinstance(got, bytes) else got
        assert got == want, (args, got)


def _keel_log(path) -> list:
    from wal.__main__ import main as wal_main

    out = io.StringIO()
    wal_main(["dump", str(path)], out=out)
    commands = []
    for line in out.getvalue().splitlines():
        fields = line.split("\t")
        if len(fields) >= 4:
            db = fields[2]
            words = fields[3].split(" ")
            commands.append([db, words[0].upper()] + words[1:])
    return commands


def _redis_aof(path) -> list:
    commands = []
    for name in sorted(glob.glob(os.path.join(path, "appendonlydir", "*.incr.aof"))):
        reader = hiredis.Reader()
        reader.feed(open(name, "rb").read())
        db = "db=0"
        while True:
            argv = reader.gets()
            if argv is False:
                break
            words = [a.decode() for a in argv]
            if words[0].upper() == "SELECT":
                db = "db=" + words[1]
                continue
            commands.append([db, words[0].upper()] + words[1:])
    return commands


def _without_loading(commands: list) -> list:
    return [c for c in commands if c[1] != "FUNCTION"]


@pytest.fixture
def logged(tmp_path):
    """Run the transactions on Keel (always fsync) and on a redis-server with
    an fsync-always AOF; (Keel's log, Redis's AOF, the Keel process, killed)."""
    keel = KeelProcess("--appendfsync", "always", dir=str(tmp_path)).start()
    ref = RedisProcess("--appendonly", "yes", "--appendfsync", "always").start()
    try:
        for proc in (keel, ref):
            c = proc.client()
            _transactions(c, c.call("SCRIPT", "LOAD", SCRIPT).decode())
            c.close()
        keel.kill()
        yield _keel_log(tmp_path), _redis_aof(ref.dir), keel
    finally:
        keel.cleanup()
        ref.cleanup()


def test_scripts_in_exec_journal_inside_the_one_multi_exec(logged):
    keel_log, _, _ = logged
    cmds = [c[1:] for c in _without_loading(keel_log)]
    names = [c[0] for c in cmds]
    assert names.count("MULTI") == 4 and names.count("EXEC") == 4, cmds
    depth = 0
    for name in names:  # never nested
        depth += (name == "MULTI") - (name == "EXEC")
        assert depth in (0, 1), cmds
    first = names.index("EXEC")
    assert names[:first + 1] == ["MULTI", "SET", "SET", "INCR", "SET", "INCR", "RPUSH", "RPUSH", "SET", "EXEC"], cmds
    assert names[first + 1:first + 5] == ["MULTI", "SET", "INCR", "EXEC"], cmds


def test_the_log_holds_what_redis_propagates(logged):
    keel_log, redis_aof, _ = logged
    assert _without_loading(keel_log) == _without_loading(redis_aof)


def test_a_restart_replays_the_scripts_run_by_exec(logged):
    _, _, keel = logged
    keel.start()
    c = keel.client()
    assert [c.call("GET", k) for k in ("x", "a", "b", "y", "c", "d", "in0")] == \
        [b"1", b"va", b"vb", b"2", b"vc", b"vd", b"z"]
    assert c.call("GET", "cnt") == b"4" and c.call("LRANGE", "l", "0", "-1") == [b"p", b"q"]
    assert c.call("GET", "in2") is None
    c.call("SELECT", "2")
    assert c.call("GET", "in2") == b"v" and c.call("GET", "in2b") == b"w"
    c.close()
