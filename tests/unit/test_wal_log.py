"""wal.Log: framing, offsets, segment rotation, reads, fsync policies, failures."""

from __future__ import annotations

import os
import struct

import pytest
from crc32c import crc32c

from wal import Log, WALWriteError, recover, record, segment


def cmd(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def payloads(n: int) -> list[bytes]:
    return [cmd(b"SET", b"key:%d" % i, b"v" * (i % 7)) for i in range(n)]


def all_records(log: Log) -> list[tuple[int, bytes]]:
    return [(off, p) for off, _, p in log.read_from(log.start_offset)]


def expected_records(items: list[bytes], start: int = 0) -> list[tuple[int, bytes]]:
    out, off = [], start
    for p in items:
        out.append((off, p))
        off += len(p)
    return out


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------


def test_record_bytes_follow_the_documented_layout():
    payload = b"*1\r\n$4\r\nPING\r\n"
    framed = record.encode(1000, 1700000000123, payload)
    length, crc, offset, ts = struct.unpack_from("<IIQQ", framed)
    assert length == 16 + len(payload) == len(framed) - 8
    assert crc == crc32c(framed[8:])
    assert (offset, ts) == (1000, 1700000000123)
    assert framed[24:] == payload


def test_log_appends_exactly_the_framed_record_after_the_segment_header(tmp_path):
    log = Log.open(str(tmp_path), fsync="always")
    log.append(b"abc", timestamp_ms=42)
    log.close()
    data = (tmp_path / "00000000000000000000.wal").read_bytes()
    assert data[:8] == b"KEELWAL\x00"
    assert struct.unpack_from("<IQ", data, 8) == (1, 0)
    assert struct.unpack_from("<I", data, 20)[0] == crc32c(data[:20])
    assert data[24:] == record.encode(0, 42, b"abc")


def test_segment_header_round_trips_and_rejects_other_magic():
    assert segment.decode_header(segment.encode_header(12345)) == (12345, "")
    assert segment.decode_header(b"NOTAWAL\x00" + segment.encode_header(1)[8:])[0] is None


# --------------------------------------------------------------------------
# Offsets
# --------------------------------------------------------------------------


def test_append_returns_the_end_offset_counting_payload_bytes_only(tmp_path):
    log = Log.open(str(tmp_path))
    assert log.end_offset == 0
    assert log.append(b"12345") == 5
    assert log.append(b"678") == 8
    assert all_records(log) == [(0, b"12345"), (5, b"678")]
    log.close()


def test_empty_log_starts_at_the_given_start_offset(tmp_path):
    log = Log.open(str(tmp_path), start_offset=5000)
    assert (log.start_offset, log.end_offset) == (5000, 5000)
    assert log.append(b"xy") == 5002
    assert os.path.basename(log.segments()[0].path) == "00000000000000005000.wal"
    log.close()


def test_reopening_continues_offsets_in_the_last_segment(tmp_path):
    items = payloads(30)
    log = Log.open(str(tmp_path), segment_size=300)
    for p in items[:20]:
        log.append(p)
    log.close()
    log = Log.open(str(tmp_path), segment_size=300)
    assert log.recovered.records == 20 and log.recovered.torn is None
    assert log.durable_offset == log.end_offset == sum(map(len, items[:20]))
    for p in items[20:]:
        log.append(p)
    assert all_records(log) == expected_records(items)
    log.close()


def test_empty_payload_is_refused(tmp_path):
    log = Log.open(str(tmp_path))
    with pytest.raises(ValueError):
        log.append(b"")
    log.close()


# --------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------


def test_segments_are_cut_at_the_size_limit_and_named_by_first_offset(tmp_path):
    items = payloads(60)
    log = Log.open(str(tmp_path), segment_size=400)
    for p in items:
        log.append(p)
    log.sync()
    segs = log.segments()
    assert len(segs) > 3
    ends = [s.first_offset for s in segs[1:]] + [log.end_offset]
    for seg, end in zip(segs, ends):
        data = open(seg.path, "rb").read()
        assert os.path.basename(seg.path) == segment.name_for(seg.first_offset)
        assert segment.decode_header(data)[0] == seg.first_offset
        assert len(data) <= 400
        # the next record would not have fitted: the cut was not early
        if end != log.end_offset:
            nxt = next(p for o, p in expected_records(items) if o == end)
            assert len(data) + 24 + len(nxt) > 400
    log.close()


def test_offsets_are_continuous_across_segments(tmp_path):
    items = payloads(60)
    log = Log.open(str(tmp_path), segment_size=400)
    for p in items:
        log.append(p)
    log.close()
    rec = recover(str(tmp_path))
    assert rec.records == 60 and len(rec.segments) > 3
    log = Log.open(str(tmp_path), segment_size=400)
    assert all_records(log) == expected_records(items)
    log.close()


def test_a_record_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200)
    log.append(b"a" * 10)
    log.append(b"b" * 1000)
    log.append(b"c" * 10)
    assert [s.first_offset for s in log.segments()] == [0, 10, 1010]
    assert all_records(log) == [(0, b"a" * 10), (10, b"b" * 1000), (1010, b"c" * 10)]
    log.close()


def test_rotation_makes_the_finished_segment_durable(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200, fsync="no")
    log.append(b"x" * 100)
    log.append(b"y" * 100)  # does not fit: the first segment is synced and closed
    assert log.durable_offset == 100
    assert log.end_offset == 200
    log.close()


def test_delete_before_drops_only_segments_wholly_before_the_offset(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200)
    for i in range(6):
        log.append(bytes([65 + i]) * 100)  # one record per segment
    firsts = [s.first_offset for s in log.segments()]
    assert firsts == [0, 100, 200, 300, 400, 500]
    removed = log.delete_before(250)  # segment 200 holds 200..300: kept
    assert [os.path.basename(p) for p in removed] == [segment.name_for(0), segment.name_for(100)]
    assert [s.first_offset for s in log.segments()] == [200, 300, 400, 500]
    assert sorted(os.listdir(tmp_path)) == [segment.name_for(o) for o in (200, 300, 400, 500)]
    assert log.start_offset == 200
    assert [o for o, _ in all_records(log)] == [200, 300, 400, 500]
    log.close()
    reopened = Log.open(str(tmp_path), segment_size=200)
    assert (reopened.start_offset, reopened.end_offset) == (200, 600)
    reopened.close()


def test_delete_before_never_deletes_the_current_segment(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200)
    log.append(b"a" * 100)
    log.append(b"b" * 100)
    assert len(log.delete_before(10**9)) == 1
    assert [s.first_offset for s in log.segments()] == [100]
    log.close()


def test_stale_tmp_segment_is_removed_on_open(tmp_path):
    (tmp_path / "00000000000000000077.wal.tmp").write_bytes(segment.encode_header(77))
    log = Log.open(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["00000000000000000000.wal"]
    log.close()


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def test_read_from_every_record_offset_yields_the_rest_of_the_log(tmp_path):
    items = payloads(40)
    log = Log.open(str(tmp_path), segment_size=500)
    for p in items:
        log.append(p)
    expect = expected_records(items)
    for i, (off, _) in enumerate(expect):
        assert [(o, p) for o, _, p in log.read_from(off)] == expect[i:]
    assert list(log.read_from(log.end_offset)) == []
    log.close()


def test_read_from_inside_a_record_yields_its_payload_from_that_byte(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200)
    log.append(b"0123456789")
    log.append(b"abcdef")
    got = [(o, p) for o, _, p in log.read_from(13)]
    assert got == [(13, b"def")]
    got = [(o, p) for o, _, p in log.read_from(4)]
    assert got == [(4, b"456789"), (10, b"abcdef")]
    log.close()


def test_read_from_includes_records_still_buffered(tmp_path):
    log = Log.open(str(tmp_path), fsync="no")
    log.append(b"abc")
    assert log.written_offset == 0
    assert [p for _, _, p in log.read_from(0)] == [b"abc"]
    log.close()


def test_read_from_keeps_timestamps(tmp_path):
    log = Log.open(str(tmp_path))
    log.append(b"a", timestamp_ms=111)
    log.append(b"b", timestamp_ms=222)
    assert [ts for _, ts, _ in log.read_from(0)] == [111, 222]
    log.close()


def test_read_from_outside_the_log_is_refused(tmp_path):
    log = Log.open(str(tmp_path), start_offset=100)
    log.append(b"abc")
    with pytest.raises(ValueError):
        log.read_from(99)
    with pytest.raises(ValueError):
        log.read_from(104)
    log.close()


# --------------------------------------------------------------------------
# Fsync policies
# --------------------------------------------------------------------------


def test_always_makes_every_committed_record_durable(tmp_path):
    log = Log.open(str(tmp_path), fsync="always")
    for p in payloads(50):
        log.append(p)
    assert log.durable_offset == 0
    assert log.commit() == log.end_offset
    assert log.durable_offset == log.written_offset == log.end_offset
    log.close()


def test_everysec_writes_on_commit_and_syncs_once_a_second(tmp_path):
    log = Log.open(str(tmp_path), fsync="everysec")
    log.append(b"abc")
    assert log.commit() == 0
    assert (log.written_offset, log.durable_offset) == (3, 0)
    assert os.path.getsize(log.segments()[-1].path) == segment.HEADER_SIZE + 24 + 3
    now = log.last_sync_ms
    assert log.maybe_sync_everysec(now + 999) is False
    assert log.durable_offset == 0
    assert log.maybe_sync_everysec(now + 1000) is True
    assert log.durable_offset == 3
    log.close()


def test_everysec_background_sync_hands_out_a_descriptor_and_an_offset(tmp_path):
    log = Log.open(str(tmp_path), fsync="everysec")
    log.append(b"abc")  # buffered, not even written yet
    now = log.last_sync_ms
    assert log.start_background_sync(now + 999) is None
    fd, offset = log.start_background_sync(now + 1000)
    try:
        assert offset == 3 and log.written_offset == 3  # written out for the fsync
        assert log.durable_offset == 0  # not durable until the worker says so
        assert os.path.samestat(os.fstat(fd), os.stat(log.segments()[-1].path))
        os.fdatasync(fd)
    finally:
        os.close(fd)
    log.background_synced(offset)
    assert log.durable_offset == 3
    assert log.start_background_sync(now + 5000) is None  # nothing new to sync
    log.close()


def _background_sync(log, now_ms):
    fd, offset = log.start_background_sync(now_ms)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
    log.background_synced(offset)


def test_deferred_rotation_cuts_a_full_segment_after_the_next_background_sync(tmp_path):
    log = Log.open(str(tmp_path), segment_size=300, fsync="everysec")
    log.defer_rotation = True
    for _ in range(8):  # 8 * 37 bytes + header: past 300, short of 600
        log.append(b"x" * 13)
        log.commit()
    assert len(log.segments()) == 1  # past the limit, still one segment
    full_end = log.end_offset
    _background_sync(log, log.last_sync_ms + 1000)
    segs = log.segments()
    assert len(segs) == 2 and segs[1].first_offset == full_end
    assert log.durable_offset == full_end  # the cut segment is durable
    log.append(b"after")
    log.close()
    reopened = Log.open(str(tmp_path), segment_size=300)
    assert [p for _, _, p in reopened.read_from(0)] == [b"x" * 13] * 8 + [b"after"]
    reopened.close()


def test_deferred_rotation_cuts_at_once_at_twice_the_size(tmp_path):
    log = Log.open(str(tmp_path), segment_size=300, fsync="everysec")
    log.defer_rotation = True
    for _ in range(20):  # no background sync ever comes
        log.append(b"x" * 13)
        log.commit()
    segs = log.segments()
    assert len(segs) == 2
    assert os.path.getsize(segs[0].path) <= 600
    assert log.durable_offset >= segs[1].first_offset  # cut only after a sync
    log.close()


def test_always_never_defers_rotation(tmp_path):
    log = Log.open(str(tmp_path), segment_size=300, fsync="always")
    log.defer_rotation = True
    for _ in range(9):
        log.append(b"x" * 13)
        log.commit()
    assert len(log.segments()) == 2
    log.close()


def test_no_policy_writes_on_commit_and_never_syncs_by_itself(tmp_path):
    log = Log.open(str(tmp_path), fsync="no")
    log.append(b"abc")
    assert log.commit() == 0
    assert log.written_offset == 3
    assert log.maybe_sync_everysec(log.last_sync_ms + 10_000) is False
    assert log.durable_offset == 0
    assert log.sync() == 3
    log.close()


def test_switching_to_always_syncs_what_is_pending(tmp_path):
    log = Log.open(str(tmp_path), fsync="no")
    log.append(b"abc")
    log.commit()
    log.set_fsync("always")
    assert log.fsync_policy == "always"
    assert log.durable_offset == 3
    log.close()


def test_unknown_fsync_policy_is_refused(tmp_path):
    with pytest.raises(ValueError):
        Log.open(str(tmp_path), fsync="sometimes")
    log = Log.open(str(tmp_path))
    with pytest.raises(ValueError):
        log.set_fsync("sometimes")
    assert log.fsync_policy == "everysec"
    log.close()


# --------------------------------------------------------------------------
# Write failures
# --------------------------------------------------------------------------


def test_failed_write_raises_walwriteerror_and_the_log_stays_failed(tmp_path):
    log = Log.open(str(tmp_path), fsync="always")
    log.append(b"abc")
    # the kernel now refuses writes to the segment's descriptor
    ro = os.open(os.devnull, os.O_RDONLY)
    os.dup2(ro, log._fd)
    os.close(ro)
    with pytest.raises(WALWriteError, match="write"):
        log.commit()
    assert log.durable_offset == 0
    with pytest.raises(WALWriteError):
        log.append(b"more")
    with pytest.raises(WALWriteError):
        log.sync()
    log.close()


def test_failed_segment_creation_raises_walwriteerror_and_the_log_stays_failed(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200)
    log.append(b"a" * 100)
    # a directory squats the next segment's temporary name: open(2) fails
    (tmp_path / (segment.name_for(100) + ".tmp")).mkdir()
    with pytest.raises(WALWriteError, match="segment creation"):
        log.append(b"b" * 100)
    with pytest.raises(WALWriteError):
        log.append(b"c")
    assert log.durable_offset == 100
    log.close()


# --------------------------------------------------------------------------
# Recovery hooks
# --------------------------------------------------------------------------


def test_progress_reports_bytes_done_up_to_the_total(tmp_path):
    log = Log.open(str(tmp_path), segment_size=300)
    for p in payloads(40):
        log.append(p)
    log.close()
    total = sum(os.path.getsize(s.path) for s in segment.list_segments(str(tmp_path)))
    seen = []
    Log.open(str(tmp_path), progress=lambda done, tot: seen.append((done, tot))).close()
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) == len(segment.list_segments(str(tmp_path)))


def test_open_replays_records_from_the_checkpoint_offset_in_one_pass(tmp_path):
    log = Log.open(str(tmp_path), segment_size=200)
    for p in (b"0123456789", b"abcdef", b"XYZ"):
        log.append(p)
    log.close()
    seen = []
    Log.open(str(tmp_path), on_record=lambda o, t, p: seen.append((o, p)), replay_from=13).close()
    assert seen == [(13, b"def"), (16, b"XYZ")]
    seen.clear()
    Log.open(str(tmp_path), on_record=lambda o, t, p: seen.append((o, p))).close()
    assert seen == [(0, b"0123456789"), (10, b"abcdef"), (16, b"XYZ")]
