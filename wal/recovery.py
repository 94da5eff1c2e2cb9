"""Recovery: verify the log on disk, repair a torn tail, refuse anything else.

``scan`` reads every segment in offset order and checks each segment header
(magic, version, CRC, first offset equal to the file name and to the previous
segment's end), then each record (length, CRC, offset equal to the running
end offset). It stops at the first thing that does not hold and describes it
as a ``Damage``.

What the damage means:
- **torn tail**: the damage is in the *last* segment and no valid record
  follows it (the last record was cut short, or the file ends in zero bytes
  from a preallocated or partial write, or the final record's bytes never all
  reached the disk). A crash mid-write leaves exactly this, so ``recover``
  repairs it: copy the segment to ``<name>.broken-<time>``, truncate it at the
  last good record, fsync, and warn naming the file, the byte position and
  how many bytes were dropped;
- **corruption**: anything else - a bad record followed by valid ones, a bad
  CRC in an earlier segment, a gap or overlap in offsets (a missing segment),
  a bad segment header. ``recover`` raises ``CorruptionError`` naming the file
  and byte position; the operator decides, with ``keel-wal repair DIR``
  (``repair`` below), to keep the records before the damage.

"Followed by valid records" is decided by searching the bytes after the
damage for any frame whose length, CRC and offset are plausible for that
position, so a corrupted length field cannot hide valid records behind it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from typing import Callable, NamedTuple

from crc32c import crc32c

from wal import record, segment
from wal.record import HEADER, HEADER_SIZE, CorruptionError
from wal.segment import SegmentFile

log = logging.getLogger("keel.wal")

Progress = Callable[[int, int], None]
Visitor = Callable[[int, int, bytes], None]

_PROGRESS_STEP = 8 << 20
_NONZERO = re.compile(rb"[^\x00]")


class Damage(NamedTuple):
    path: str
    position: int  # byte in the file where the log stops being valid
    reason: str
    torn: bool  # in the last segment with nothing valid after it
    segment_index: int


class Scan(NamedTuple):
    directory: str
    segments: list[SegmentFile]  # every segment file found, in order
    start_offset: int | None  # first segment's first offset (None: no segment)
    end_offset: int | None  # offset after the last good record
    records: int  # good records before the damage
    damage: Damage | None


class TornTail(NamedTuple):
    path: str
    position: int  # the file now ends here
    dropped_bytes: int
    backup: str


class Recovery(NamedTuple):
    """What ``recover`` found; the log is valid on disk when it returns."""

    directory: str
    segments: list[SegmentFile]
    start_offset: int | None
    end_offset: int | None
    records: int
    torn: TornTail | None


class Repair(NamedTuple):
    damage: Damage | None  # None: the log was intact, nothing was done
    records_kept: int
    end_offset: int | None
    dropped_bytes: int
    dropped_records: int  # intact-looking records found after the damage
    moved: list[tuple[str, str]]  # (file, where it went)
    truncated: TornTail | None


# --------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def find_valid_record(buf: bytes, start: int, end: int, lo: int) -> int:
    """Position of the first plausible record in ``buf[start:end]``, or -1.

    Plausible: complete, CRC valid, and its offset between ``lo`` (the offset
    the log expected at ``start``) and ``lo + (position - start)`` (no record
    can be further ahead in the stream than the bytes skipped). Candidates
    are found with ``bytes.find`` on the high bytes shared by every plausible
    offset, and runs of zero bytes are skipped whole.
    """
    hi = lo + (end - start)
    k = 0
    while k < 8 and (lo >> (8 * k)) != (hi >> (8 * k)):
        k += 1
    pattern = lo.to_bytes(8, "little")[k:]
    view = memoryview(buf)
    lead = 8 + k  # the pattern starts this far into a record
    q = start
    while q + HEADER_SIZE <= end:
        if pattern:
            j = buf.find(pattern, q + lead, end)
            if j < 0:
                return -1
            q = j - lead
            if q + HEADER_SIZE > end:
                return -1
        length, crc, offset, _ = HEADER.unpack_from(buf, q)
        if length == 0:
            # no record starts inside a zero run, except in its last 3 bytes
            m = _NONZERO.search(buf, q, end)
            if m is None:
                return -1
            q = max(q + 1, m.start() - 3)
            continue
        stop = q + 8 + length
        if (
            length >= 16
            and stop <= end
            and lo <= offset <= lo + (q - start)
            and crc32c(view[q + 8:stop]) == crc
        ):
            return q
        q += 1
    return -1


def _why(buf: bytes, pos: int, end: int, expected: int) -> str:
    if not buf[pos:end].strip(b"\x00"):
        return f"{end - pos} zero bytes where a record should start"
    if end - pos < HEADER_SIZE:
        return f"record header cut short ({end - pos} of {HEADER_SIZE} bytes)"
    length, _, offset, _ = HEADER.unpack_from(buf, pos)
    if length < 16:
        return f"impossible record length {length}"
    if pos + 8 + length > end:
        return f"record of {length} bytes runs past the end of the file ({end - pos - 8} present)"
    if record.check(buf, pos, end) is None:
        return "record checksum mismatch"
    return f"record offset {offset} breaks continuity (expected {expected})"


def scan(
    directory: str,
    progress: Progress | None = None,
    on_record: Visitor | None = None,
    replay_from: int = 0,
) -> Scan:
    """Verify the whole log; call ``on_record(offset, ts, payload)`` per good record.

    Records ending at or before ``replay_from`` are not visited; a record
    that contains ``replay_from`` is visited with its payload trimmed to
    start there. Visiting happens as the scan goes, so a caller that applies
    records must discard its work if the scan then reports corruption.
    """
    segs = segment.list_segments(directory)
    total = sum(os.path.getsize(s.path) for s in segs)
    done = 0
    records = 0
    expected: int | None = None
    start = segs[0].first_offset if segs else None
    crc = crc32c
    unpack = HEADER.unpack_from
    for i, seg in enumerate(segs):
        buf = _read(seg.path)
        end = len(buf)
        last = i == len(segs) - 1
        first, why = segment.decode_header(buf)
        if first is None:
            return Scan(directory, segs, start, expected, records,
                        Damage(seg.path, 0, why, False, i))
        if first != seg.first_offset:
            return Scan(directory, segs, start, expected, records,
                        Damage(seg.path, 0, f"header says first offset {first} but the "
                               f"file name says {seg.first_offset}", False, i))
        if expected is not None and first != expected:
            what = "missing segment?" if first > expected else "overlapping segments"
            return Scan(directory, segs, start, expected, records,
                        Damage(seg.path, 0, f"offset gap: the previous segment ends at "
                               f"{expected} but this one starts at {first} ({what})", False, i))
        view = memoryview(buf)
        off = first
        pos = segment.HEADER_SIZE
        next_report = pos + _PROGRESS_STEP
        while pos < end:
            damaged = pos + HEADER_SIZE > end
            if not damaged:
                length, c, roff, ts = unpack(buf, pos)
                stop = pos + 8 + length
                damaged = (length < 16 or stop > end or roff != off
                           or crc(view[pos + 8:stop]) != c)
            if damaged:
                reason = _why(buf, pos, end, off)
                torn = (last and record.check(buf, pos, end) is None
                        and find_valid_record(buf, pos + 1, end, off) < 0)
                return Scan(directory, segs, start, off, records,
                            Damage(seg.path, pos, reason, torn, i))
            n = length - 16
            if on_record is not None and off + n > replay_from:
                skip = replay_from - off if off < replay_from else 0
                on_record(off + skip, ts, buf[pos + HEADER_SIZE + skip:stop])
            off += n
            pos = stop
            records += 1
            if progress is not None and pos >= next_report:
                progress(done + pos, total)
                next_report = pos + _PROGRESS_STEP
        expected = off
        done += end
        if progress is not None:
            progress(done, total)
    return Scan(directory, segs, start, expected, records, None)


# --------------------------------------------------------------------------
# Repairing
# --------------------------------------------------------------------------


def _truncate(path: str, position: int) -> TornTail:
    """Back up ``path``, cut it at ``position``, make both durable."""
    size = os.path.getsize(path)
    backup = segment.aside_name(path, "broken")
    shutil.copyfile(path, backup)
    with open(backup, "rb+") as f:
        os.fsync(f.fileno())
    with open(path, "rb+") as f:
        f.truncate(position)
        os.fsync(f.fileno())
    segment.fsync_dir(os.path.dirname(path) or ".")
    return TornTail(path, position, size - position, backup)


def recover(
    directory: str,
    progress: Progress | None = None,
    on_record: Visitor | None = None,
    replay_from: int = 0,
) -> Recovery:
    """Verify the log, repair a torn tail, raise CorruptionError on anything else."""
    s = scan(directory, progress, on_record, replay_from)
    torn = None
    d = s.damage
    if d is not None:
        if not d.torn:
            raise CorruptionError(directory, d.path, d.position, d.reason)
        torn = _truncate(d.path, d.position)
        log.warning(
            "write-ahead log: torn tail in %s at byte %d (%s): dropped %d bytes "
            "after the last complete record; the original is kept as %s",
            d.path, d.position, d.reason, torn.dropped_bytes, torn.backup,
        )
    return Recovery(directory, s.segments, s.start_offset, s.end_offset, s.records, torn)


def _count_salvageable(buf: bytes, pos: int, lo: int) -> int:
    """How many intact records a resynchronising reader finds after ``pos``."""
    count = 0
    end = len(buf)
    while True:
        q = find_valid_record(buf, pos, end, lo)
        if q < 0:
            return count
        while True:
            r = record.check(buf, q, end)
            if r is None:
                break
            count += 1
            lo = r[0] + (r[3] - r[2])
            q = r[3]
        pos = q + 1


def repair(directory: str, progress: Progress | None = None) -> Repair:
    """Keep the records before the first damage; back up and move aside the rest.

    The damaged segment is copied to ``<name>.broken-<time>`` and truncated
    at the first bad record (or, when its header is bad or it does not
    continue the previous segment, renamed to that name whole); every later
    segment is renamed to ``<name>.dropped-<time>``. Nothing is deleted.
    """
    s = scan(directory, progress)
    d = s.damage
    if d is None:
        return Repair(None, s.records, s.end_offset, 0, 0, [], None)
    dropped_bytes = 0
    dropped_records = 0
    moved = []
    truncated = None
    for seg in s.segments[d.segment_index + 1:]:
        buf = _read(seg.path)
        dropped_bytes += len(buf)
        dropped_records += _count_salvageable(buf, segment.HEADER_SIZE, seg.first_offset)
        dest = segment.aside_name(seg.path, "dropped")
        os.rename(seg.path, dest)
        moved.append((seg.path, dest))
    buf = _read(d.path)
    if d.position == 0:
        dropped_bytes += len(buf)
        first = s.segments[d.segment_index].first_offset
        dropped_records += _count_salvageable(buf, segment.HEADER_SIZE, first)
        dest = segment.aside_name(d.path, "broken")
        os.rename(d.path, dest)
        moved.insert(0, (d.path, dest))
    else:
        dropped_bytes += len(buf) - d.position
        dropped_records += _count_salvageable(buf, d.position + 1, s.end_offset)
        truncated = _truncate(d.path, d.position)
    segment.fsync_dir(directory)
    return Repair(d, s.records, s.end_offset, dropped_bytes, dropped_records, moved, truncated)
