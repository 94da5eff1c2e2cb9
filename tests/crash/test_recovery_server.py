"""The server on damaged or interrupted data: it recovers what it can prove,
refuses what it cannot, and says which file, which offset and what to run.

Each test runs real Keel processes on a real data directory, damages the
files the way a crash or a bad disk would, and restarts.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from tests.support import ROOT, Err, KeelProcess, RespClient


@pytest.fixture
def datadir():
    d = tempfile.mkdtemp(prefix="keel-recovery-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_keys(keel: KeelProcess, n: int, prefix: bytes = b"k") -> None:
    """n SETs, one per round trip: one log record each."""
    c = keel.client()
    for i in range(n):
        assert c.call(b"SET", prefix + b"%d" % i, b"v%d" % i) == b"OK"
    c.close()


def segments(d: str) -> list[str]:
    return sorted(glob.glob(os.path.join(d, "appendonlydir", "*.wal")))


def start_fails(keel: KeelProcess) -> str:
    """Start the server, expect it to refuse: return what it printed."""
    keel.start(wait=False)
    try:
        rc = keel.proc.wait(30)
    except subprocess.TimeoutExpired:
        keel.kill()
        pytest.fail("the server started on damaged data")
    err = keel.proc.stderr.read().decode("utf-8", "replace")
    assert rc != 0
    return err + keel.log()


def test_a_torn_last_record_is_cut_and_reported(datadir):
    keel = KeelProcess(dir=datadir).start()
    write_keys(keel, 50)
    keel.kill()
    seg = segments(datadir)[-1]
    with open(seg, "r+b") as f:
        f.truncate(os.path.getsize(seg) - 5)
    keel.start()
    c = keel.client()
    assert c.call(b"GET", b"k48") == b"v48"
    assert c.call(b"GET", b"k49") is None  # the torn record is dropped
    assert c.call(b"DBSIZE") == 49
    c.close()
    keel.stop()
    assert "torn" in keel.log().lower()
    assert glob.glob(seg + ".broken-*"), "the damaged segment was not backed up"


def test_a_flipped_bit_mid_log_stops_the_start_and_repair_recovers_the_prefix(datadir):
    keel = KeelProcess(dir=datadir).start()
    write_keys(keel, 200)
    keel.kill()
    seg = segments(datadir)[-1]
    middle = os.path.getsize(seg) // 2
    with open(seg, "r+b") as f:
        f.seek(middle)
        b = f.read(1)
        f.seek(middle)
        f.write(bytes([b[0] ^ 0x10]))
    out = start_fails(keel)
    assert os.path.basename(seg) in out
    assert "keel-wal repair" in out
    r = subprocess.run([sys.executable, "-m", "wal", "repair", os.path.join(datadir, "appendonlydir")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    keel.start()
    c = keel.client()
    n = c.call(b"DBSIZE")
    assert 50 < n < 200
    # Exactly a prefix survives: every key before the damage, none after.
    assert all(c.call(b"GET", b"k%d" % i) == b"v%d" % i for i in range(n))
    assert c.call(b"GET", b"k%d" % n) is None
    c.close()
    keel.stop()


def test_a_missing_middle_segment_stops_the_start(datadir):
    keel = KeelProcess("--wal-segment-size", "4096", "--checkpoint-log-size", "0", dir=datadir).start()
    write_keys(keel, 300)
    keel.kill()
    segs = segments(datadir)
    assert len(segs) >= 3
    os.unlink(segs[len(segs) // 2])
    out = start_fails(keel)
    assert "keel-wal repair" in out or "missing" in out or "gap" in out.lower()


def test_a_damaged_checkpoint_stops_the_start_naming_the_file(datadir):
    keel = KeelProcess(dir=datadir).start()
    write_keys(keel, 100)
    assert keel.stop() == 0  # SIGTERM: a checkpoint on the way out
    data = os.path.join(datadir, "checkpoint.lmdb", "data.mdb")
    with open(data, "r+b") as f:
        content = f.read()
        at = content.index(b"v57")  # a stored value: its record checksum must catch it
        f.seek(at)
        f.write(b"X")
    out = start_fails(keel)
    assert "data.mdb" in out


def test_a_truncated_checkpoint_stops_the_start_naming_the_file(datadir):
    keel = KeelProcess(dir=datadir).start()
    write_keys(keel, 100)
    assert keel.stop() == 0
    data = os.path.join(datadir, "checkpoint.lmdb", "data.mdb")
    with open(data, "r+b") as f:
        f.truncate(4096)
    out = start_fails(keel)
    assert "data.mdb" in out


def test_restart_after_shutdown_loads_the_checkpoint_and_the_log_after_it(datadir):
    keel = KeelProcess("--checkpoint-log-size", "0", dir=datadir).start()
    write_keys(keel, 100, b"a")
    c = keel.client()
    assert c.call(b"SAVE") == b"OK"
    t = c.call(b"LASTSAVE")
    assert abs(t - time.time()) < 5
    c.close()
    write_keys(keel, 100, b"b")  # after the checkpoint: only in the log
    keel.kill()
    keel.start()
    c = keel.client()
    assert c.call(b"DBSIZE") == 200
    assert c.call(b"GET", b"a99") == b"v99" and c.call(b"GET", b"b99") == b"v99"
    c.close()
    keel.stop()


def test_checkpoints_triggered_by_log_growth_delete_old_segments(datadir):
    keel = KeelProcess("--wal-segment-size", "8192", "--checkpoint-log-size", "32kb", dir=datadir).start()
    write_keys(keel, 3000)
    time.sleep(1.0)  # let the last background checkpoint finish
    assert len(segments(datadir)) < 20, "segments before the checkpoint were not deleted"
    c = keel.client()
    info = c.call(b"INFO", b"persistence").decode()
    assert "keel_checkpoint_offset:0" not in info
    c.close()
    keel.kill()
    keel.start()
    c = keel.client()
    assert c.call(b"DBSIZE") == 3000
    assert c.call(b"GET", b"k2999") == b"v2999"
    c.close()
    keel.stop()


def _saves(c) -> int:
    info = c.call(b"INFO", b"persistence").decode()
    return int(info.split("rdb_saves:")[1].split()[0])


def test_a_database_rewritten_over_and_over_is_checkpointed_whole_and_survives_kill9(datadir):
    # Past one change per key since the last checkpoint the changed keys are
    # no longer listed one by one: the next checkpoint walks the whole
    # database a chunk per loop turn. 70k keys: past the 65,536-key floor
    # below which tracking is never trimmed.
    keel = KeelProcess("--appendfsync", "always", "--checkpoint-log-size", "0", dir=datadir).start()
    c = keel.client()
    n = 70_000

    def write_all(tag: bytes) -> None:
        for start in range(0, n, 2000):
            c.pipeline([(b"SET", b"k%d" % i, tag) for i in range(start, start + 2000)])

    def bgsave(saves: int) -> None:
        assert c.call(b"BGSAVE") is not None
        deadline = time.time() + 30
        while _saves(c) < saves and time.time() < deadline:
            time.sleep(0.05)
        assert _saves(c) == saves

    write_all(b"v0")
    bgsave(1)
    for r in range(1, 4):
        write_all(b"v%d" % r)
    time.sleep(0.3)  # the cron trims: 210k changes > 70k + 65,536
    bgsave(2)
    c.call(b"DEL", b"k0")
    c.close()
    keel.kill()
    keel.start()
    c = keel.client()
    assert c.call(b"DBSIZE") == n - 1
    assert {c.call(b"GET", b"k%d" % i) for i in range(1, n, 997)} == {b"v3"}
    c.close()
    keel.stop()


def test_a_reply_leaves_only_after_its_write_is_fsynced(datadir):
    keel = KeelProcess("--appendfsync", "always", dir=datadir).start()
    c = keel.client()
    for i in range(20):
        c.call(b"SET", b"k%d" % i, b"v")
        info = dict(line.split(":", 1) for line in c.call(b"INFO", b"persistence").decode().split("\r\n")
                    if ":" in line)
        assert info["keel_log_durable_offset"] == info["keel_log_end_offset"]
    # CONFIG SET appendfsync takes effect live.
    assert c.call(b"CONFIG", b"SET", b"appendfsync", b"everysec") == b"OK"
    assert c.call(b"CONFIG", b"GET", b"appendfsync") == [b"appendfsync", b"everysec"]
    c.close()
    keel.stop()


def test_clients_get_loading_while_the_dataset_loads(datadir):
    keel = KeelProcess(dir=datadir).start()
    c = keel.client()
    for start in range(0, 300_000, 5000):
        c.pipeline([(b"SET", b"key:%d" % i, b"value:%d" % i) for i in range(start, start + 5000)])
    c.close()
    assert keel.stop() == 0
    keel.start(wait=False)
    seen_loading = False
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            c = RespClient(keel.port, timeout=5)
        except OSError:
            time.sleep(0.01)
            continue
        r = c.call(b"GET", b"key:1")
        c.close()
        if isinstance(r, Err):
            assert r.startswith("LOADING")
            seen_loading = True
            continue
        assert r == b"value:1"
        break
    assert seen_loading, "no client saw -LOADING while 300k keys loaded"
    keel.stop()


def test_start_waits_for_loading_behind_a_password(datadir):
    """With requirepass, PING gets -NOAUTH before -LOADING (as in Redis): the
    test harness's start() must still wait until loading is done."""
    keel = KeelProcess(dir=datadir).start()
    c = keel.client()
    assert c.call(b"DEBUG", b"POPULATE", b"300000") == b"OK"
    c.close()
    assert keel.stop() == 0
    keel.args += ["--requirepass", "pw"]
    keel.start()
    c = keel.client()
    assert c.call(b"PING") == Err("NOAUTH Authentication required.")
    assert c.call(b"AUTH", b"pw") == b"OK"
    assert c.call(b"GET", b"key:1") == b"value:1"  # not -LOADING
    c.close()
    keel.stop()


def test_info_persistence_counts_checkpoints(datadir):
    keel = KeelProcess(dir=datadir).start()
    c = keel.client()
    c.call(b"SET", b"a", b"1")

    def info():
        text = c.call(b"INFO", b"persistence").decode()
        return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)

    before = int(info()["rdb_saves"])
    assert info()["rdb_changes_since_last_save"] != "0"
    assert c.call(b"SAVE") == b"OK"
    assert c.call(b"BGSAVE") == b"Background saving started"
    deadline = time.time() + 10
    while info()["rdb_bgsave_in_progress"] != "0" and time.time() < deadline:
        time.sleep(0.05)
    now = info()
    assert int(now["rdb_saves"]) == before + 2
    assert now["rdb_changes_since_last_save"] == "0"
    assert now["rdb_last_bgsave_status"] == "ok"
    assert int(now["rdb_last_bgsave_time_sec"]) >= 0
    c.close()
    keel.stop()
