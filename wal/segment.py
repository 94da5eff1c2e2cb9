"""Segment files: the log is a directory of them, named by first offset.

A segment is ``<first offset, 20 decimal digits>.wal`` (for example
``00000000000000000000.wal``) and starts with a 24-byte header (little-endian)::

    0   8 bytes  magic      b"KEELWAL\\x00"
    8   u32      version    FORMAT_VERSION (1)
    12  u64      first      offset of the first record (equals the file name)
    20  u32      crc        CRC32C of bytes 0..20

followed by records (wal.record) back to back, with no padding.

Invariants:
- a segment appears under its final name only complete with its header: it is
  written as ``<name>.tmp``, fsynced, renamed, and the directory is fsynced;
- a segment is fsynced before the next one is created, so only the last
  segment can end in a torn write;
- each segment's first offset is the previous segment's end offset.
Files whose names do not match the pattern (``*.tmp`` leftovers, backups
named ``*.broken-*`` or ``*.dropped-*``) are not part of the log.
"""

from __future__ import annotations

import os
import re
import struct
import time
from typing import NamedTuple

from crc32c import crc32c

MAGIC = b"KEELWAL\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIQI")
HEADER_SIZE = _HEADER.size  # 24
SUFFIX = ".wal"
_NAME = re.compile(r"^(\d{20})\.wal$")


class SegmentFile(NamedTuple):
    first_offset: int
    path: str


def name_for(first_offset: int) -> str:
    return "%020d%s" % (first_offset, SUFFIX)


def encode_header(first_offset: int) -> bytes:
    head = struct.pack("<8sIQ", MAGIC, FORMAT_VERSION, first_offset)
    return head + struct.pack("<I", crc32c(head))


def decode_header(buf) -> tuple[int | None, str]:
    """Return ``(first_offset, "")`` or ``(None, why the header is bad)``."""
    if len(buf) < HEADER_SIZE:
        return None, f"segment header cut short ({len(buf)} of {HEADER_SIZE} bytes)"
    magic, version, first, crc = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        return None, "bad segment magic (not a Keel write-ahead log segment)"
    if crc32c(bytes(buf[:20])) != crc:
        return None, "segment header checksum mismatch"
    if version != FORMAT_VERSION:
        return None, f"unsupported segment format version {version}"
    return first, ""


def list_segments(directory: str) -> list[SegmentFile]:
    """The log's segments, in offset order."""
    found = []
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m:
            found.append(SegmentFile(int(m.group(1)), os.path.join(directory, name)))
    found.sort()
    return found


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create(directory: str, first_offset: int) -> int:
    """Create a segment atomically; return a write fd positioned after the header.

    OSError propagates: the caller decides what a failure means.
    """
    path = os.path.join(directory, name_for(first_offset))
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, encode_header(first_offset))
        os.fsync(fd)
        os.rename(tmp, path)
        fsync_dir(directory)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def remove_stale_tmp(directory: str) -> None:
    """A ``.tmp`` segment was never renamed, so it never held a record."""
    for name in os.listdir(directory):
        if name.endswith(SUFFIX + ".tmp") and _NAME.match(name[:-4]):
            os.unlink(os.path.join(directory, name))


def aside_name(path: str, tag: str) -> str:
    """A free name ``<path>.<tag>-<UTC time>`` for a backup or a moved-aside file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = f"{path}.{tag}-{stamp}"
    n = 1
    while os.path.exists(candidate):
        candidate = f"{path}.{tag}-{stamp}-{n}"
        n += 1
    return candidate
