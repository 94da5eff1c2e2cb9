"""A replica whose disk fills up stops; its primary goes on; restarted with
room again, the replica resumes from its own log and catches up.

A replica acknowledges (REPLCONF ACK) only what it journaled, so when its log
write fails it must not go on applying: it exits with a non-zero status, as
a primary does (tests/crash/test_disk_full.py). Its data directory is a
small tmpfs (needs root, as CI and the developer machines run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from tests.crash.test_disk_full import small_disk  # noqa: F401 - the fixture
from tests.replication.support import info, wait_for
from tests.support import KeelProcess

VALUE = b"x" * 100_000


def test_a_full_disk_stops_the_replica_and_it_resumes_after(small_disk):  # noqa: F811
    logdir = tempfile.mkdtemp(prefix="keel-full-log-")
    primary = KeelProcess("--repl-diskless-sync-delay", "0")
    replica = KeelProcess("--checkpoint-log-size", "0", "--appendfsync", "always", dir=small_disk)
    replica.log_path = os.path.join(logdir, "keel.log")  # its own log must not fill the disk
    try:
        primary.start()
        p = primary.client()
        assert p.call(b"SET", b"before", b"1") == b"OK"
        replica.start()
        r = replica.client()
        assert r.call(b"REPLICAOF", b"127.0.0.1", str(primary.port).encode()) == b"OK"
        wait_for(lambda: info(replica.port).get("master_link_status") == "up", 15, what="the replica's link")
        r.close()
        # 60 x 100 KB is twice the replica's 3 MB disk.
        for i in range(60):
            assert p.call(b"SET", b"k%d" % i, VALUE) == b"OK"  # the primary does not wait for it
        assert replica.proc.wait(20) != 0  # stopped, not applying what it cannot journal
        assert "write-ahead log failure" in replica.log()
        assert p.call(b"PING") == b"PONG"  # the primary is unaffected
        for i in range(60, 70):
            assert p.call(b"SET", b"k%d" % i, VALUE) == b"OK"
        # The operator adds room; the replica comes back and resumes from its own log.
        subprocess.run(["mount", "-o", "remount,size=32m", small_disk], check=True)
        replica.start()
        r = replica.client()
        if info(replica.port).get("role") != "slave":  # (REPLICAOF was a command, not in a config file)
            assert r.call(b"REPLICAOF", b"127.0.0.1", str(primary.port).encode()) == b"OK"
        want = int(info(primary.port)["master_repl_offset"])
        wait_for(lambda: int(info(replica.port).get("slave_repl_offset", -1)) == want, 20,
                 what="the replica to catch up")
        assert r.call(b"DBSIZE") == p.call(b"DBSIZE") == 71
        for i in range(70):
            assert r.call(b"STRLEN", b"k%d" % i) == len(VALUE), i
        assert r.call(b"GET", b"before") == b"1"
        stats = p.call(b"INFO", b"stats").decode()
        assert "sync_full:1\r\n" in stats  # the first sync only:
        assert "sync_partial_ok:1\r\n" in stats  # it resumed from its own log (its torn tail set aside)
        r.close()
        p.close()
    finally:
        replica.kill()  # (its dir is the fixture's tmpfs)
        primary.kill()
        primary.cleanup()
        shutil.rmtree(logdir, ignore_errors=True)
