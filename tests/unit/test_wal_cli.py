"""keel-wal verify / dump / repair: exit codes and output."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from engine.keyspace import Keyspace
from wal import Log, segment
from wal.checkpoint import Checkpointer
from wal.__main__ import EXIT_CORRUPT, EXIT_OK, EXIT_TORN, EXIT_USAGE, main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cmd(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def write(d, payloads, segment_size=1 << 20, ts=1_700_000_000_123):
    log = Log.open(str(d), segment_size=segment_size)
    for p in payloads:
        log.append(p, timestamp_ms=ts)
    log.close()


def flip_bit(path: str, pos: int) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([b ^ 1]))


SET_A = cmd(b"SET", b"a", b"1")
N = len(SET_A)  # 27
ONE_RECORD_FILE = segment.HEADER_SIZE + 24 + N  # 75
ONE_RECORD_OK = f"OK: 1 segments, 1 records, offsets 0..{N}, {ONE_RECORD_FILE} bytes\n"


def test_verify_an_intact_log_exits_0_with_a_summary(tmp_path):
    write(tmp_path, [SET_A] * 10, segment_size=200)
    code, out = run("verify", str(tmp_path))
    assert code == EXIT_OK
    nsegs = len(segment.list_segments(str(tmp_path)))
    size = sum(os.path.getsize(s.path) for s in segment.list_segments(str(tmp_path)))
    assert out == f"OK: {nsegs} segments, 10 records, offsets 0..{10 * N}, {size} bytes\n"


def test_verify_corruption_exits_1_naming_file_and_byte(tmp_path):
    write(tmp_path, [SET_A] * 5)
    (seg,) = segment.list_segments(str(tmp_path))
    second = segment.HEADER_SIZE + 24 + len(SET_A)
    flip_bit(seg.path, second + 30)
    code, out = run("verify", str(tmp_path))
    assert code == EXIT_CORRUPT
    assert out.startswith(f"CORRUPT: {seg.path} at byte {second}: record checksum mismatch\n")
    assert "1 records before it are intact" in out
    assert f"keel-wal repair {tmp_path}" in out


def test_verify_torn_tail_exits_3_and_changes_nothing(tmp_path):
    write(tmp_path, [SET_A] * 5)
    (seg,) = segment.list_segments(str(tmp_path))
    size = os.path.getsize(seg.path)
    os.truncate(seg.path, size - 3)
    code, out = run("verify", str(tmp_path))
    assert code == EXIT_TORN
    assert out.startswith(f"TORN TAIL: {seg.path} at byte {size - 24 - len(SET_A)}: ")
    assert os.path.getsize(seg.path) == size - 3
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(seg.path)]


def test_dump_prints_offset_time_database_and_command(tmp_path):
    second = cmd(b"SELECT", b"2") + cmd(b"INCR", b"n")
    write(tmp_path, [
        SET_A,
        second,
        cmd(b"MULTI") + cmd(b"SET", b"k y", b"a\"b\n\x00") + cmd(b"EXEC"),
    ])
    third = N + len(second)
    code, out = run("dump", str(tmp_path))
    assert code == EXIT_OK
    t = "2023-11-14T22:13:20.123Z"
    assert out.splitlines() == [
        f"0\t{t}\tdb=0\tSET a 1",
        f"{N}\t{t}\tdb=2\tINCR n",
        f"{third}\t{t}\tdb=2\tMULTI",
        f"{third}\t{t}\tdb=2\tSET \"k y\" \"a\\\"b\\n\\x00\"",
        f"{third}\t{t}\tdb=2\tEXEC",
    ]


def test_dump_of_a_log_not_starting_at_zero_shows_unknown_db_until_select(tmp_path):
    log = Log.open(str(tmp_path), start_offset=100)
    log.append(SET_A, timestamp_ms=0)
    log.append(cmd(b"SELECT", b"0") + SET_A, timestamp_ms=0)
    log.close()
    code, out = run("dump", str(tmp_path))
    assert [line.split("\t")[2] for line in out.splitlines()] == ["db=?", "db=0"]


def test_dump_stops_at_corruption_with_exit_1(tmp_path, capsys):
    write(tmp_path, [SET_A] * 4)
    (seg,) = segment.list_segments(str(tmp_path))
    flip_bit(seg.path, segment.HEADER_SIZE + 2 * (24 + len(SET_A)) + 26)
    code, out = run("dump", str(tmp_path))
    assert code == EXIT_CORRUPT
    assert len(out.splitlines()) == 2
    assert "corruption" in capsys.readouterr().err


def test_dump_marks_a_payload_that_is_not_resp(tmp_path):
    write(tmp_path, [b"hello"])
    code, out = run("dump", str(tmp_path))
    assert code == EXIT_OK
    assert "<undecodable payload of 5 bytes" in out


def test_repair_reports_what_it_kept_and_dropped(tmp_path):
    write(tmp_path, [SET_A] * 20, segment_size=300)
    segs = segment.list_segments(str(tmp_path))
    total = sum(os.path.getsize(s.path) for s in segs)
    flip_bit(segs[0].path, segment.HEADER_SIZE + 24 + len(SET_A) + 26)
    code, out = run("repair", str(tmp_path))
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[1] == f"kept 1 records (log now ends at offset {N})"
    dropped = total - ONE_RECORD_FILE
    assert lines[2] == f"dropped {dropped} bytes (18 intact-looking records after the damage)"
    truncated = f"truncated {segs[0].path} at byte {ONE_RECORD_FILE}; original saved as "
    assert lines[3].startswith(truncated)
    assert [line.split()[1] for line in lines[4:]] == [s.path for s in segs[1:]]
    assert run("verify", str(tmp_path)) == (EXIT_OK, ONE_RECORD_OK)


def test_repair_of_an_intact_log_exits_0_and_says_so(tmp_path):
    write(tmp_path, [SET_A] * 3)
    said = "OK: the log is intact (3 records), nothing to repair\n"
    assert run("repair", str(tmp_path)) == (EXIT_OK, said)


def test_missing_directory_exits_2(tmp_path, capsys):
    assert run("verify", str(tmp_path / "nope"))[0] == EXIT_USAGE
    assert "no such directory" in capsys.readouterr().err


def test_python_dash_m_wal_runs_the_tool(tmp_path):
    write(tmp_path, [SET_A])
    done = subprocess.run([sys.executable, "-m", "wal", "verify", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, ONE_RECORD_OK)


# --- a data directory: the log in its appendonlydir, the checkpoint beside it

def data_dir(tmp_path, payloads=(SET_A,) * 5, start_offset=0, checkpoint_at=None):
    """A server's data directory: ``appendonlydir`` and, when asked, a
    checkpoint covering ``checkpoint_at``."""
    d = tmp_path / "data"
    log = Log.open(str(d / "appendonlydir"), start_offset=start_offset)
    for p in payloads:
        log.append(p, timestamp_ms=0)
    log.close()
    if checkpoint_at is not None:
        cp = Checkpointer(str(d / "checkpoint.lmdb"))
        ks = Keyspace()
        ks.dbs[0].set(b"a", b"1")
        cp.start_tracking(ks)
        cp.write(cp.capture(ks), checkpoint_at)
        cp.close()
    return d


def log_segment(d) -> str:
    (seg,) = segment.list_segments(str(d / "appendonlydir"))
    return seg.path


def test_verify_of_a_data_directory_checks_its_log_and_checkpoint(tmp_path):
    d = data_dir(tmp_path, checkpoint_at=2 * N)
    size = os.path.getsize(log_segment(d))
    code, out = run("verify", str(d))
    assert code == EXIT_OK
    assert out.splitlines() == [
        f"OK: 1 segments, 5 records, offsets 0..{5 * N}, {size} bytes",
        f"checkpoint: {d / 'checkpoint.lmdb'} covers offsets up to {2 * N} (1 keys)",
    ]


def test_verify_of_the_appendonlydir_finds_the_checkpoint_beside_it(tmp_path):
    d = data_dir(tmp_path, start_offset=100, checkpoint_at=50)
    code, out = run("verify", str(d / "appendonlydir"))
    assert code == EXIT_CORRUPT
    assert out.startswith("GAP: ")


def test_verify_of_a_data_directory_names_the_damaged_file_and_byte(tmp_path):
    d = data_dir(tmp_path, checkpoint_at=N)
    seg = log_segment(d)
    second = segment.HEADER_SIZE + 24 + N
    flip_bit(seg, second + 30)
    code, out = run("verify", str(d))
    assert code == EXIT_CORRUPT
    assert out.startswith(f"CORRUPT: {seg} at byte {second}: record checksum mismatch\n")
    assert f"keel-wal repair {d}`" in out


def test_verify_fails_on_a_log_that_starts_after_the_checkpoint(tmp_path):
    d = data_dir(tmp_path, start_offset=100, checkpoint_at=50)
    code, out = run("verify", str(d))
    assert code == EXIT_CORRUPT
    assert out.splitlines()[0] == (
        f"GAP: the log in {d / 'appendonlydir'} starts at offset 100 but the checkpoint "
        f"{d / 'checkpoint.lmdb'} covers only up to 50: the records between are missing "
        f"and the server will refuse to start")
    assert "OK" not in out


def test_a_log_starting_at_the_checkpoint_has_no_gap(tmp_path):
    d = data_dir(tmp_path, start_offset=100, checkpoint_at=100)
    code, out = run("verify", str(d))
    assert code == EXIT_OK
    assert out.startswith("OK: ")


def test_verify_accepts_a_log_that_ends_before_the_checkpoint(tmp_path):
    d = data_dir(tmp_path, checkpoint_at=1000)
    code, out = run("verify", str(d))
    assert code == EXIT_OK
    assert (f"note: the log ends at offset {5 * N}, before the checkpoint's 1000: on start "
            f"the server sets it aside and begins a new log at 1000") in out.splitlines()


def test_verify_of_an_unreadable_checkpoint_exits_1_naming_it(tmp_path):
    d = data_dir(tmp_path)
    os.makedirs(d / "checkpoint.lmdb")
    (d / "checkpoint.lmdb" / "data.mdb").write_bytes(b"not an LMDB file" * 512)
    code, out = run("verify", str(d))
    assert code == EXIT_CORRUPT
    assert out.startswith("CORRUPT CHECKPOINT: ") and "data.mdb" in out


def test_repair_of_a_data_directory_repairs_its_log(tmp_path):
    d = data_dir(tmp_path, checkpoint_at=N)
    flip_bit(log_segment(d), segment.HEADER_SIZE + 2 * (24 + N) + 30)
    code, out = run("repair", str(d))
    assert code == EXIT_OK
    assert f"kept 2 records (log now ends at offset {2 * N})" in out.splitlines()
    code, out = run("verify", str(d))
    assert code == EXIT_OK and out.startswith(f"OK: 1 segments, 2 records, offsets 0..{2 * N}")


def test_repair_cannot_close_a_gap_before_the_log(tmp_path):
    d = data_dir(tmp_path, start_offset=100, checkpoint_at=50)
    code, out = run("repair", str(d))
    assert code == EXIT_CORRUPT
    assert out.splitlines() == [
        "OK: the log is intact (5 records), nothing to repair",
        f"GAP: the log in {d / 'appendonlydir'} starts at offset 100 but the checkpoint "
        f"{d / 'checkpoint.lmdb'} covers only up to 50: the records between are missing "
        f"and the server will refuse to start",
    ]


def test_dump_of_a_data_directory_prints_its_log(tmp_path):
    d = data_dir(tmp_path, payloads=[SET_A])
    code, out = run("dump", str(d))
    assert (code, out) == (EXIT_OK, "0\t1970-01-01T00:00:00.000Z\tdb=0\tSET a 1\n")


@pytest.mark.parametrize("action", ["verify", "dump", "repair"])
@pytest.mark.parametrize("layout", ["empty", "empty appendonlydir", "checkpoint only"])
def test_a_directory_without_a_log_is_an_error_saying_where_it_looked(tmp_path, capsys, action, layout):
    d = tmp_path / "data"
    os.makedirs(d)
    if layout == "empty appendonlydir":
        os.makedirs(d / "appendonlydir")
    elif layout == "checkpoint only":
        Checkpointer(str(d / "checkpoint.lmdb")).close()
    code, out = run(action, str(d))
    assert code == EXIT_USAGE and out == ""
    err = capsys.readouterr().err
    assert f"no write-ahead log in {d}" in err
    assert f"in {d} nor in {d / 'appendonlydir'}" in err
