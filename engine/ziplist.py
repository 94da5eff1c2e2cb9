"""Redis's ziplist, the listpack's predecessor, byte for byte.

Pure functions over bytes. Redis 7 no longer writes ziplists but still reads
them from RDB files and RESTORE payloads made by older versions: a list
(type 10, and every node of a type-14 quicklist), a hash (type 13) and a
sorted set (type 12) could each be one. Keel reads them for the same reason;
``encode`` exists so tests can build the payloads an old Redis wrote.

Layout
------
::

    <total bytes: uint32 LE> <offset of the last entry: uint32 LE>
    <entry count: uint16 LE> <entry>... 0xFF

The header is ten bytes. The last-entry offset is where the last entry
starts, or 10 (the header's end) when there are no entries. The count is
65535 when there are 65535 or more.

Each entry is ``<previous entry's length> <encoding> <data>``. The previous
length is one byte when below 254, else the byte 0xFE followed by the length
as uint32 LE (Redis sometimes keeps the five-byte form for a small length, so
both are accepted); it is 0 for the first entry. The encoding:

====================  ========================================================
first byte            meaning
====================  ========================================================
``00xxxxxx``          a string of up to 63 bytes, its length in the low bits
``01xxxxxx`` + 1      a string of up to 16383 bytes: 14-bit length, high first
``10xxxxxx`` + 4      a string with a 32-bit big-endian length (low bits unused)
``0xC0`` + 2          a 16-bit signed integer, little endian
``0xD0`` + 4          a 32-bit signed integer
``0xE0`` + 8          a 64-bit signed integer
``0xF0`` + 3          a 24-bit signed integer
``0xFE`` + 1          an 8-bit signed integer
``0xF1``-``0xFD``     the integers 0..12 in the low four bits (minus one)
other ``11xxxxxx``    unused (damage); ``0xFF`` is the terminator
====================  ========================================================

Interface
---------
``decode(buf) -> list[bytes]`` (integers as decimal bytes); ``validate(buf)``
raises ``FormatError`` on a total that disagrees with the buffer, a missing
terminator or bytes after it, an unknown encoding, an entry running past the
end, a previous-length that disagrees with the previous entry, a last-entry
offset that is not the last entry, or a count that disagrees with the
entries. ``decode`` validates as it goes. ``encode(entries) -> bytes`` writes
what Redis 6 wrote (integer-looking strings of up to 32 characters as
integers). An empty ziplist is well formed here; refusing an empty value is
the type's business, as in Redis.
"""

from __future__ import annotations

from engine.util import to_int_or_none

__all__ = ["FormatError", "encode", "decode", "validate"]

HEADER_SIZE = 10
EOF = 0xFF
COUNT_UNKNOWN = 0xFFFF


class FormatError(ValueError):
    """A buffer that is not a well-formed ziplist."""


_INT_WIDTH = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def _entry_at(buf: bytes, pos: int, end: int) -> tuple[int, bytes, int]:
    """``(previous length, value, position after the entry)`` of the entry at ``pos``."""
    b = buf[pos]
    if b < 0xFE:
        prev, p = b, pos + 1
    else:  # 0xFE; 0xFF is the terminator and never reaches here
        p = pos + 5
        if p > end:
            raise FormatError(f"previous length of the entry at {pos} runs past the end")
        prev = int.from_bytes(buf[pos + 1:p], "little")
    if p >= end:
        raise FormatError(f"entry at {pos} runs past the end")
    e = buf[p]
    kind = e >> 6
    if kind == 0:
        start, n = p + 1, e & 0x3F
    elif kind == 1:
        if p + 2 > end:
            raise FormatError(f"entry at {pos} runs past the end")
        start, n = p + 2, ((e & 0x3F) << 8) | buf[p + 1]
    elif kind == 2:
        if p + 5 > end:
            raise FormatError(f"entry at {pos} runs past the end")
        start, n = p + 5, int.from_bytes(buf[p + 1:p + 5], "big")
    elif 0xF1 <= e <= 0xFD:
        return prev, b"%d" % ((e & 0x0F) - 1), p + 1
    else:
        width = _INT_WIDTH.get(e)
        if width is None:
            raise FormatError(f"unknown entry encoding 0x{e:02x} at {p}")
        after = p + 1 + width
        if after > end:
            raise FormatError(f"entry at {pos} runs past the end")
        return prev, b"%d" % int.from_bytes(buf[p + 1:after], "little", signed=True), after
    after = start + n
    if after > end:
        raise FormatError(f"string entry at {pos} runs past the end")
    return prev, bytes(buf[start:after]), after


def decode(buf: bytes) -> list[bytes]:
    """Every entry of the ziplist ``buf``; ``FormatError`` on any damage."""
    n = len(buf)
    if n < HEADER_SIZE + 1:
        raise FormatError(f"ziplist of {n} bytes is shorter than header and terminator")
    total = int.from_bytes(buf[0:4], "little")
    if total != n:
        raise FormatError(f"header says {total} bytes, buffer has {n}")
    if buf[n - 1] != EOF:
        raise FormatError("missing terminator")
    tail = int.from_bytes(buf[4:8], "little")
    count = int.from_bytes(buf[8:10], "little")
    end = n - 1
    out = []
    pos, last, prev_size = HEADER_SIZE, HEADER_SIZE, 0
    while pos < end:
        if buf[pos] == EOF:
            raise FormatError(f"terminator inside the ziplist at {pos}")
        prev, value, after = _entry_at(buf, pos, end)
        if prev != prev_size:
            raise FormatError(f"entry at {pos} says the previous entry is {prev} bytes, "
                              f"it is {prev_size}")
        out.append(value)
        last, prev_size, pos = pos, after - pos, after
    if tail != last:
        raise FormatError(f"header says the last entry is at {tail}, it is at {last}")
    if count != COUNT_UNKNOWN and count != len(out):
        raise FormatError(f"header says {count} entries, found {len(out)}")
    return out


def validate(buf: bytes) -> None:
    """Raise ``FormatError`` unless ``buf`` is a well-formed ziplist."""
    decode(buf)


# --- encoding (what Redis 6 wrote) -------------------------------------------------

def _encode_value(e: bytes | int) -> bytes:
    v = e if type(e) is int else None
    if v is None and 0 < len(e) <= 32:
        v = to_int_or_none(bytes(e))
    if v is not None:
        if 0 <= v <= 12:
            return bytes((0xF1 + v,))
        if -128 <= v <= 127:
            return b"\xfe" + v.to_bytes(1, "little", signed=True)
        if -32768 <= v <= 32767:
            return b"\xc0" + v.to_bytes(2, "little", signed=True)
        if -8388608 <= v <= 8388607:
            return b"\xf0" + v.to_bytes(3, "little", signed=True)
        if -2147483648 <= v <= 2147483647:
            return b"\xd0" + v.to_bytes(4, "little", signed=True)
        return b"\xe0" + v.to_bytes(8, "little", signed=True)
    s = bytes(e)
    n = len(s)
    if n <= 0x3F:
        return bytes((n,)) + s
    if n <= 0x3FFF:
        return bytes((0x40 | (n >> 8), n & 0xFF)) + s
    return b"\x80" + n.to_bytes(4, "big") + s


def encode(entries) -> bytes:
    """A ziplist holding ``entries`` (bytes or int), as Redis 6 wrote it."""
    parts = []
    prev, last, pos = 0, HEADER_SIZE, HEADER_SIZE
    for e in entries:
        head = bytes((prev,)) if prev < 254 else b"\xfe" + prev.to_bytes(4, "little")
        entry = head + _encode_value(e)
        parts.append(entry)
        last, prev = pos, len(entry)
        pos += prev
    total = pos + 1
    return (total.to_bytes(4, "little") + last.to_bytes(4, "little")
            + min(len(parts), COUNT_UNKNOWN).to_bytes(2, "little") + b"".join(parts) + b"\xff")
