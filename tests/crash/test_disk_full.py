"""A failed log write stops the server without acknowledging the write.

A real disk that fills up: Keel's data directory is a small tmpfs mounted for
the test (needs root, as CI and the developer machines run). Values are
written until the log write fails with ENOSPC; the server must then exit
with a non-zero status, the write in flight must get no OK, and — once
space is added — a restart must hold every write that was acknowledged. (On
a still-full disk the restart refuses: backing up the torn tail needs room.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.support import KeelProcess


@pytest.fixture
def small_disk():
    mnt = tempfile.mkdtemp(prefix="keel-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", mnt], capture_output=True)
    shutil.rmtree(mnt, ignore_errors=True)


def test_a_full_disk_stops_the_server_and_loses_no_acknowledged_write(small_disk):
    logdir = tempfile.mkdtemp(prefix="keel-full-log-")
    try:
        keel = KeelProcess("--checkpoint-log-size", "0", "--appendfsync", "always", dir=small_disk)
        keel.log_path = os.path.join(logdir, "keel.log")  # the server's own log must not fill up too
        keel.start()
        c = keel.client()
        acked = []
        value = b"x" * 100_000
        failed = False
        for i in range(200):
            try:
                r = c.call(b"SET", b"k%d" % i, value)
            except (ConnectionError, OSError):
                failed = True
                break
            assert r == b"OK", r
            acked.append(b"k%d" % i)
        c.close()
        assert failed, "the disk never filled up"
        assert keel.proc.wait(20) != 0
        assert "write-ahead log failure" in keel.log()
        # The operator adds space; the restart backs up the torn tail first.
        subprocess.run(["mount", "-o", "remount,size=16m", small_disk], check=True)
        keel.start()
        c = keel.client()
        assert c.call(b"DBSIZE") >= len(acked)
        for k in acked:
            assert c.call(b"STRLEN", k) == len(value), k
        c.close()
        keel.stop(timeout=20)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
