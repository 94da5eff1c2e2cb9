"""keel-wal on a real server's data directory, as a new user runs it.

Each test runs real Keel processes on their ``--dir``, damages the log the
way a bad disk would, and runs ``python -m wal`` on that same directory
(never on the ``appendonlydir`` inside it): verify must find what stops the
server, and repair must make it start with every record before the damage.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.crash.test_recovery_server import segments, start_fails, write_keys
from tests.support import ROOT, KeelProcess


@pytest.fixture
def datadir():
    d = tempfile.mkdtemp(prefix="keel-walcli-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def keel_wal(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wal", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def flip(path: str, pos: int) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([b ^ 0x10]))


def test_a_flipped_byte_is_found_by_verify_on_the_data_dir_and_repair_makes_the_server_start(datadir):
    keel = KeelProcess("--checkpoint-log-size", "0", dir=datadir).start()
    write_keys(keel, 100, b"a")
    c = keel.client()
    assert c.call(b"SAVE") == b"OK"  # a checkpoint: verify checks the log against it
    c.close()
    write_keys(keel, 200, b"b")  # after the checkpoint: only in the log
    keel.kill()
    (seg,) = segments(datadir)
    flip(seg, os.path.getsize(seg) * 3 // 4)  # among the b keys' records

    out = start_fails(keel)
    m = re.search(r"corrupted in (\S+) at byte (\d+)", out)
    assert m, out
    assert m.group(1) == seg
    at = int(m.group(2))

    v = keel_wal("verify", datadir)
    assert v.returncode == 1, v.stdout + v.stderr
    assert v.stdout.startswith(f"CORRUPT: {seg} at byte {at}: ")
    assert f"keel-wal repair {datadir}" in v.stdout
    assert "checkpoint: " in v.stdout and "checkpoint.lmdb" in v.stdout

    r = keel_wal("repair", datadir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"truncated {seg} at byte {at}" in r.stdout
    assert keel_wal("verify", datadir).returncode == 0

    keel.start()
    c = keel.client()
    n = c.call(b"DBSIZE") - 100
    assert 50 < n < 200
    # The checkpoint and every record before the damage; nothing after it.
    assert all(c.call(b"GET", b"a%d" % i) == b"v%d" % i for i in range(100))
    assert all(c.call(b"GET", b"b%d" % i) == b"v%d" % i for i in range(n))
    assert c.call(b"GET", b"b%d" % n) is None
    c.close()
    keel.stop()


def test_verify_on_the_data_dir_names_a_log_that_starts_after_the_checkpoint(datadir):
    keel = KeelProcess("--wal-segment-size", "4096", "--checkpoint-log-size", "0", dir=datadir).start()
    write_keys(keel, 300, b"a")
    c = keel.client()
    assert c.call(b"SAVE") == b"OK"  # deletes the segments wholly before it
    c.close()
    write_keys(keel, 300, b"b")
    keel.kill()
    first = segments(datadir)[0]  # holds the checkpoint's offset
    os.unlink(first)

    out = start_fails(keel)
    assert "the records between are missing" in out

    v = keel_wal("verify", datadir)
    assert v.returncode == 1, v.stdout + v.stderr
    assert v.stdout.startswith(f"GAP: the log in {os.path.join(datadir, 'appendonlydir')} starts at offset ")
    assert keel_wal("repair", datadir).returncode == 1


def test_verify_on_a_data_dir_without_a_log_fails_saying_where_it_looked(datadir):
    keel = KeelProcess("--appendonly", "no", dir=datadir).start()
    write_keys(keel, 10, b"a")
    assert keel.stop() == 0  # a checkpoint, no log
    v = keel_wal("verify", datadir)
    assert v.returncode == 2
    assert f"no write-ahead log in {datadir}" in v.stderr
    assert os.path.join(datadir, "appendonlydir") in v.stderr
