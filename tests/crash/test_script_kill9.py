"""Scripts under ``kill -9``: every acknowledged EVALSHA's writes are wholly
there after a restart, and no script is half there.

Writer threads drive several connections in lock-step; each request is one
EVALSHA of a script that sets two keys of its own, increments a shared
counter and appends its id to a shared list, so one event-loop turn runs
many scripts from different clients and the log records them as
MULTI/EXEC. Each round first loads a function library (FUNCTION LOAD
REPLACE), so libraries are journaled among the scripts. The server is killed
with SIGKILL at a random moment and restarted on the same directory,
several rounds in a row; after each restart the checks of
``test_multi_kill9`` hold, and the library is there.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time

from tests.crash.test_multi_kill9 import _check
from tests.crash.lockstep import LockStep
from tests.support import KeelProcess, encode

SCRIPT = (b"redis.call('set', 'tx:' .. ARGV[1] .. ':a', ARGV[1]); redis.call('set', 'tx:' .. ARGV[1] .. ':b', ARGV[1]);"
          b" redis.call('incr', 'txcount'); return redis.call('rpush', 'txlog', ARGV[1])")
LIB = b"#!lua name=crashlib\nredis.register_function('ping', function() return 'pong' end)"


class ScriptWriter(LockStep):
    def __init__(self, port: int, wid: int, rnd: int, nconns: int, sha: bytes):
        super().__init__(port, wid, rnd, nconns)
        self.sha = sha
        self.acked: list[bytes] = []

    def request(self, conn, seq):
        return b"%d.%d.%d.%d" % (self.rnd, self.wid, conn, seq)

    def wire(self, tid):
        return encode((b"EVALSHA", self.sha, b"0", tid))

    def acknowledged(self, tid, reply):
        if isinstance(reply, int):
            self.acked.append(tid)
            return True
        return False


def test_kill9_keeps_every_acknowledged_script_whole():
    d = tempfile.mkdtemp(prefix="keel-crash-script-")
    try:
        keel = KeelProcess("--appendfsync", "always", "--checkpoint-log-size", "256kb",
                           "--wal-segment-size", "128kb", dir=d)
        keel.start()
        acked: list[bytes] = []
        rng = random.Random(2024)
        for rnd in range(4):
            c = keel.client()
            sha = c.call(b"SCRIPT", b"LOAD", SCRIPT)  # the cache is not durable, as in Redis
            assert c.call(b"FUNCTION", b"LOAD", b"REPLACE", LIB) == b"crashlib"
            c.close()
            writers = [ScriptWriter(keel.port, w, rnd, 5, sha) for w in range(3)]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.3, 1.0))
            keel.kill()
            for w in writers:
                w.join(10)
                acked.extend(w.acked)
            keel.start()
            c = keel.client()
            try:
                _check(c, acked, f"kill {rnd + 1}")
                assert c.call(b"FCALL", b"ping", b"0") == b"pong"
            finally:
                c.close()
        assert len(acked) > 100, "too few scripts for the test to mean anything"
        keel.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
