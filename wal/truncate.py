"""Cutting a closed log back to an offset: a demoted primary's divergent tail.

``truncate(directory, offset)`` makes the log in ``directory`` end exactly at
``offset``: segments wholly after it are removed, and the segment holding it
is cut at the record that holds it; when ``offset`` falls inside a record
(a record is one loop turn's batch, and its primary's history may have
gone another way after any command of it), that record is rewritten with
the payload's first ``offset - record offset`` bytes, same offset and
timestamp, new length and CRC. Every step is fsynced; a crash half-way
leaves a log whose end is at or after ``offset``, never damage (the
rewritten record is written after the cut, and is whole or torn).

The log must be closed (no ``wal.log.Log`` open on it). Raises ValueError
when ``offset`` is outside the log, CorruptionError when a record before it
does not verify.
"""

from __future__ import annotations

import os

from wal import record, segment
from wal.record import HEADER, HEADER_SIZE, CorruptionError


def truncate(directory: str, offset: int) -> int:
    """Cut the log to end at ``offset``; the number of payload bytes removed."""
    segs = segment.list_segments(directory)
    if not segs or offset < segs[0].first_offset:
        raise ValueError(f"offset {offset} is before the log in {directory}")
    keep = [s for s in segs if s.first_offset <= offset]
    # A segment starting exactly at ``offset`` holds only what goes: the one
    # before it ends there (unless it is the first, which is cut to its header).
    if len(keep) > 1 and keep[-1].first_offset == offset:
        keep.pop()
    last = keep[-1]
    removed = 0
    for s in segs[len(keep):]:
        removed += _payload_bytes(directory, s)
        os.unlink(s.path)
    with open(last.path, "rb") as f:
        buf = f.read()
    pos = segment.HEADER_SIZE
    off = last.first_offset
    end = len(buf)
    rewrite = None
    while pos < end:
        if pos + HEADER_SIZE > end:
            break  # a torn header: past the end the log had
        length, crc, roff, ts = HEADER.unpack_from(buf, pos)
        stop = pos + 8 + length
        got = record.check(buf, pos, end)
        if got is None or roff != off:
            if off >= offset:
                break
            raise CorruptionError(directory, last.path, pos, "record does not verify")
        nxt = off + length - 16
        if nxt > offset:
            if off < offset:
                rewrite = record.encode(off, ts, bytes(buf[pos + HEADER_SIZE:pos + HEADER_SIZE + offset - off]))
            removed += nxt - max(off, offset)
            break
        off = nxt
        pos = stop
    else:
        if off < offset:
            raise ValueError(f"offset {offset} is past the end of the log in {directory} ({off})")
    # Everything from ``pos`` on goes (what followed in this segment was counted below).
    tail = pos
    p2, o2 = pos, off
    while True:
        got = record.check(buf, p2, end) if p2 < end else None
        if got is None:
            break
        length = HEADER.unpack_from(buf, p2)[0]
        if p2 != pos:
            removed += length - 16
        p2 += 8 + length
        o2 += length - 16
    fd = os.open(last.path, os.O_WRONLY)
    try:
        os.ftruncate(fd, tail)
        if rewrite is not None:
            os.lseek(fd, tail, os.SEEK_SET)
            segment.write_all(fd, rewrite)
        os.fsync(fd)
    finally:
        os.close(fd)
    segment.fsync_dir(directory)
    return removed


def _payload_bytes(directory: str, s) -> int:
    with open(s.path, "rb") as f:
        buf = f.read()
    pos = segment.HEADER_SIZE
    n = 0
    while True:
        got = record.check(buf, pos, len(buf))
        if got is None:
            return n
        length = HEADER.unpack_from(buf, pos)[0]
        n += length - 16
        pos += 8 + length
