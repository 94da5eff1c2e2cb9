"""Record framing: how one journaled effect is laid out on disk.

A record (all integers little-endian)::

    0   u32  length     bytes that follow the CRC field: 16 + len(payload)
    4   u32  crc        CRC32C of bytes 8 .. 8+length (offset, timestamp, payload)
    8   u64  offset     replication offset of the payload's first byte
    16  u64  timestamp  wall-clock time of the append, ms since the Unix epoch
    24  ...  payload    RESP bytes of the effects (an array per command)

Offsets count payload bytes only, as Redis counts its replication stream:
record N+1's offset is record N's offset + len(payload N). The header is not
part of the stream, so a replica's offset and the log's offset are the same
number.

This module also holds the package's error types, so that every module can
raise them without importing each other.
"""

from __future__ import annotations

import struct

from crc32c import crc32c

HEADER = struct.Struct("<IIQQ")
HEADER_SIZE = HEADER.size  # 24
_LEN_CRC = struct.Struct("<II")
_OFF_TS = struct.Struct("<QQ")
_OFF_TS_SIZE = _OFF_TS.size  # 16: the fixed part covered by the CRC
MAX_PAYLOAD = 0xFFFFFFFF - _OFF_TS_SIZE


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class WALWriteError(Exception):
    """A write, fsync, create or rename of the log failed.

    The log is unusable afterwards (a failed fsync may have dropped dirty
    pages: retrying could report success for data that is gone), so every
    later append or sync raises it again. The server must stop.
    """


class CorruptionError(Exception):
    """Damage the log cannot repair by itself: the server must not start.

    ``path`` and ``position`` name the file and byte where the damage starts;
    the message tells the operator how to keep the records before it.
    """

    def __init__(self, directory: str, path: str, position: int, reason: str):
        self.directory = directory
        self.path = path
        self.position = position
        self.reason = reason
        super().__init__(
            f"write-ahead log corrupted in {path} at byte {position}: {reason}. "
            f"The records before this point are intact; run "
            f"`keel-wal repair {directory}` to keep them and move the rest aside "
            f"(nothing is deleted)."
        )


# --------------------------------------------------------------------------
# Encoding and decoding
# --------------------------------------------------------------------------


def encode(offset: int, timestamp_ms: int, payload: bytes) -> bytes:
    """Frame one record. The payload is opaque here."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("record payload too large")
    tail = _OFF_TS.pack(offset, timestamp_ms)
    crc = crc32c(payload, crc32c(tail))
    return _LEN_CRC.pack(_OFF_TS_SIZE + len(payload), crc) + tail + payload


def check(buf, pos: int, end: int):
    """Validate the record framed at ``buf[pos:]`` (``buf`` ends at ``end``).

    Returns ``(offset, timestamp, payload_start, payload_end)`` or None when
    the header is incomplete, the length is impossible or runs past ``end``,
    or the CRC does not match.
    """
    if pos + HEADER_SIZE > end:
        return None
    length, crc, offset, ts = HEADER.unpack_from(buf, pos)
    stop = pos + 8 + length
    if length < _OFF_TS_SIZE or stop > end:
        return None
    if crc32c(memoryview(buf)[pos + 8:stop]) != crc:
        return None
    return offset, ts, pos + HEADER_SIZE, stop
