"""One kind of damage per test, each asserting exactly what survives.

A torn tail of the last segment is repaired on open (backup, truncate,
warning); every other damage makes open refuse with the file and byte, and
``repair`` then keeps exactly the records before the damage.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct

import pytest
from crc32c import crc32c

from wal import CorruptionError, Log, recover, repair, scan, segment

SEG = segment.HEADER_SIZE
REC = 24  # record header


def make_payloads(n: int, size: int = 40) -> list[bytes]:
    out = []
    for i in range(n):
        key = b"key:%d" % i
        val = (b"%d-" % i * size)[: max(1, size - 25 - len(key))]
        out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                   % (len(key), key, len(val), val))
    return out


def write_log(d, items, segment_size=1 << 20) -> list[int]:
    """Write ``items`` one record each; return each record's file position."""
    log = Log.open(str(d), segment_size=segment_size, fsync="always")
    for p in items:
        log.append(p)
    log.close()
    positions = []
    for seg in segment.list_segments(str(d)):
        pos = SEG
        data = open(seg.path, "rb").read()
        while pos < len(data):
            positions.append((seg.path, pos))
            pos += 8 + struct.unpack_from("<I", data, pos)[0]
    return positions


def surviving(d) -> list[bytes]:
    log = Log.open(str(d))
    try:
        return [p for _, _, p in log.read_from(log.start_offset)]
    finally:
        log.close()


def only_segment(d) -> str:
    (seg,) = segment.list_segments(str(d))
    return seg.path


def patch(path: str, pos: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(data)


def flip_bit(path: str, pos: int) -> None:
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([b ^ 0x10]))


def backups(d, tag="broken") -> list[str]:
    return sorted(n for n in os.listdir(d) if f".{tag}-" in n)


# --------------------------------------------------------------------------
# Torn tails: repaired on open
# --------------------------------------------------------------------------


def test_last_record_cut_at_every_byte_keeps_every_earlier_record(tmp_path, caplog):
    items = make_payloads(5)
    src = tmp_path / "src"
    positions = write_log(src, items)
    path, last_pos = positions[-1]
    full = open(path, "rb").read()
    for cut in range(last_pos + 1, len(full)):
        d = tmp_path / f"cut{cut}"
        shutil.copytree(src, d)
        seg = os.path.join(d, os.path.basename(path))
        os.truncate(seg, cut)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="keel.wal"):
            log = Log.open(str(d))
        torn = log.recovered.torn
        assert (torn.path, torn.position, torn.dropped_bytes) == (seg, last_pos, cut - last_pos)
        assert open(torn.backup, "rb").read() == full[:cut]
        assert os.path.getsize(seg) == last_pos
        assert log.end_offset == sum(map(len, items[:4]))
        (message,) = [r.getMessage() for r in caplog.records]
        assert seg in message and f"at byte {last_pos}" in message
        assert f"dropped {cut - last_pos} bytes" in message
        # the log goes on where the good records end
        log.append(items[4])
        assert [p for _, _, p in log.read_from(0)] == items
        log.close()
        shutil.rmtree(d)


def test_trailing_zero_bytes_after_the_last_record_are_dropped(tmp_path):
    items = make_payloads(6)
    write_log(tmp_path, items)
    path = only_segment(tmp_path)
    size = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096)
    log = Log.open(str(tmp_path))
    assert (log.recovered.torn.position, log.recovered.torn.dropped_bytes) == (size, 4096)
    assert [p for _, _, p in log.read_from(0)] == items
    log.close()


def test_final_record_with_a_zeroed_sector_is_a_torn_tail(tmp_path):
    items = make_payloads(3) + [b"x" * 2000]
    positions = write_log(tmp_path, items)
    path, last_pos = positions[-1]
    patch(path, 1024, b"\x00" * 512)  # inside the last record only
    assert 1024 > last_pos
    assert surviving(tmp_path) == items[:3]
    assert os.path.getsize(path) == last_pos
    assert len(backups(tmp_path)) == 1


def test_torn_tail_in_the_last_of_several_segments_keeps_earlier_segments(tmp_path):
    items = make_payloads(40)
    positions = write_log(tmp_path, items, segment_size=400)
    path, last_pos = positions[-1]
    assert len(segment.list_segments(str(tmp_path))) > 3
    os.truncate(path, last_pos + 10)
    assert surviving(tmp_path) == items[:-1]


# --------------------------------------------------------------------------
# Corruption: refused with file and byte, then repaired by the operator
# --------------------------------------------------------------------------


def assert_refused(d, path: str, position: int, words: str) -> CorruptionError:
    with pytest.raises(CorruptionError) as info:
        Log.open(str(d))
    err = info.value
    assert (err.path, err.position) == (path, position)
    assert words in err.reason
    text = str(err)
    assert path in text and f"byte {position}" in text and f"keel-wal repair {d}" in text
    return err


def test_bit_flip_mid_log_is_refused_then_repair_keeps_the_records_before_it(tmp_path):
    items = make_payloads(10)
    positions = write_log(tmp_path, items)
    path, pos = positions[4]
    size = os.path.getsize(path)
    flip_bit(path, pos + REC + 5)
    assert_refused(tmp_path, path, pos, "checksum mismatch")
    r = repair(str(tmp_path))
    assert (r.records_kept, r.dropped_bytes, r.dropped_records) == (4, size - pos, 5)
    assert surviving(tmp_path) == items[:4]
    (backup,) = backups(tmp_path)
    assert os.path.getsize(tmp_path / backup) == size


def test_bit_flip_in_an_earlier_segment_is_refused_and_later_segments_moved_aside(tmp_path):
    items = make_payloads(40)
    positions = write_log(tmp_path, items, segment_size=400)
    segs = segment.list_segments(str(tmp_path))
    first_seg_records = [i for i, (p, _) in enumerate(positions) if p == segs[0].path]
    victim = first_seg_records[-1]  # the last record of the first segment
    path, pos = positions[victim]
    flip_bit(path, pos + REC + 1)
    assert_refused(tmp_path, path, pos, "checksum mismatch")
    r = repair(str(tmp_path))
    assert [src for src, _ in r.moved] == [s.path for s in segs[1:]]
    assert r.dropped_records == len(items) - victim - 1
    assert surviving(tmp_path) == items[:victim]
    assert len(backups(tmp_path, "dropped")) == len(segs) - 1
    # a header flip is refused too
    shutil.rmtree(tmp_path)
    write_log(tmp_path, items, segment_size=400)
    flip_bit(segs[2].path, 12)
    assert_refused(tmp_path, segs[2].path, 0, "checksum")


def test_zeroed_sector_mid_log_is_refused_then_repair_keeps_the_records_before_it(tmp_path):
    items = make_payloads(60)
    positions = write_log(tmp_path, items)
    path = only_segment(tmp_path)
    patch(path, 1024, b"\x00" * 512)
    first_bad = max(i for i, (_, p) in enumerate(positions) if p <= 1024)
    assert positions[-1][1] > 1024 + 512  # valid records follow the sector
    assert_refused(tmp_path, path, positions[first_bad][1], "")
    r = repair(str(tmp_path))
    assert r.records_kept == first_bad
    assert surviving(tmp_path) == items[:first_bad]


def test_corrupted_length_field_is_not_mistaken_for_a_torn_tail(tmp_path):
    items = make_payloads(10)
    positions = write_log(tmp_path, items)
    path, pos = positions[3]
    patch(path, pos, struct.pack("<I", 10**6))  # claims to run past the end
    assert_refused(tmp_path, path, pos, "runs past the end")
    repair(str(tmp_path))
    assert surviving(tmp_path) == items[:3]


def test_garbage_mid_log_is_refused(tmp_path):
    items = make_payloads(10)
    positions = write_log(tmp_path, items)
    path, pos = positions[6]
    patch(path, pos, os.urandom(30))
    assert_refused(tmp_path, path, pos, "")
    repair(str(tmp_path))
    assert surviving(tmp_path) == items[:6]


def test_missing_middle_segment_is_a_gap(tmp_path):
    items = make_payloads(40)
    positions = write_log(tmp_path, items, segment_size=400)
    segs = segment.list_segments(str(tmp_path))
    os.unlink(segs[1].path)
    assert_refused(tmp_path, segs[2].path, 0, f"ends at {segs[1].first_offset}")
    r = repair(str(tmp_path))
    kept = sum(1 for p, _ in positions if p == segs[0].path)
    assert r.records_kept == kept
    assert surviving(tmp_path) == items[:kept]
    assert [src for src, _ in r.moved] == [s.path for s in segs[2:]]


def test_bad_magic_is_refused(tmp_path):
    write_log(tmp_path, make_payloads(3))
    path = only_segment(tmp_path)
    patch(path, 0, b"REDIS000")
    assert_refused(tmp_path, path, 0, "bad segment magic")


def test_unsupported_format_version_is_refused(tmp_path):
    write_log(tmp_path, make_payloads(3))
    path = only_segment(tmp_path)
    head = bytearray(segment.encode_header(0))
    struct.pack_into("<I", head, 8, 99)
    struct.pack_into("<I", head, 20, crc32c(bytes(head[:20])))
    patch(path, 0, bytes(head))
    assert_refused(tmp_path, path, 0, "version 99")


def test_segment_header_cut_short_is_refused(tmp_path):
    write_log(tmp_path, make_payloads(3))
    path = only_segment(tmp_path)
    os.truncate(path, 10)
    assert_refused(tmp_path, path, 0, "cut short")


def test_segment_renamed_away_from_its_first_offset_is_refused(tmp_path):
    write_log(tmp_path, make_payloads(3))
    path = only_segment(tmp_path)
    moved = os.path.join(tmp_path, segment.name_for(7))
    os.rename(path, moved)
    assert_refused(tmp_path, moved, 0, "file name says 7")


def test_bad_first_segment_header_repair_moves_the_whole_log_aside(tmp_path):
    items = make_payloads(40)
    write_log(tmp_path, items, segment_size=400)
    segs = segment.list_segments(str(tmp_path))
    patch(segs[0].path, 0, b"XXXXXXXX")
    r = repair(str(tmp_path))
    assert r.records_kept == 0
    assert r.dropped_records == len(items)
    assert segment.list_segments(str(tmp_path)) == []
    names = sorted(os.listdir(tmp_path))
    assert len(names) == len(segs)
    assert names[0].startswith(os.path.basename(segs[0].path) + ".broken-")
    assert all(".dropped-" in n for n in names[1:])


def test_repair_of_an_intact_log_changes_nothing(tmp_path):
    items = make_payloads(5)
    write_log(tmp_path, items)
    before = sorted(os.listdir(tmp_path))
    r = repair(str(tmp_path))
    assert r.damage is None and r.records_kept == 5
    assert sorted(os.listdir(tmp_path)) == before


def test_scan_does_not_modify_a_damaged_log(tmp_path):
    items = make_payloads(5)
    positions = write_log(tmp_path, items)
    path, pos = positions[-1]
    os.truncate(path, pos + 5)
    s = scan(str(tmp_path))
    assert s.damage.torn and s.records == 4
    assert os.path.getsize(path) == pos + 5
    assert recover(str(tmp_path)).torn.dropped_bytes == 5
