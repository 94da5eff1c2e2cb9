"""Redis's listpack: a flat buffer of strings and integers, byte for byte.

Pure functions over bytes; nothing here knows which type a listpack carries
(a hash's field/value pairs, a sorted set's member/score pairs, a list node,
a 7.2 set). RDB encodings of those types put this buffer inside an RDB
string; DUMP payloads compare byte for byte with Redis's only if the buffer
is built exactly as Redis builds it, which ``encode`` does.

Layout
------
A header of six bytes, the entries, then one terminator byte::

    <total bytes: uint32 LE> <entry count: uint16 LE> <entry>... 0xFF

The total counts every byte, header and terminator included. The count is
the number of entries, or 65535 when there are 65535 or more (the reader then
has to walk the buffer to know).

Each entry is ``<encoding + data> <back length>``. The first byte of the
encoding says what follows:

====================  ========================================================
first byte            meaning
====================  ========================================================
``0xxxxxxx``          an integer 0..127 held in the low seven bits
``10xxxxxx``          a string of up to 63 bytes; the low six bits are its
                      length, the bytes follow
``110xxxxx`` + 1      a 13-bit signed integer: the low five bits are its high
                      part, the next byte its low part (two's complement)
``1110xxxx`` + 1      a string of up to 4095 bytes: the low four bits and the
                      next byte are its length (high part first)
``0xF0`` + 4          a string with a 32-bit little-endian length
``0xF1`` + 2          a 16-bit signed integer, little endian
``0xF2`` + 3          a 24-bit signed integer, little endian
``0xF3`` + 4          a 32-bit signed integer, little endian
``0xF4`` + 8          a 64-bit signed integer, little endian
``0xF5``-``0xFE``     unused (damage)
``0xFF``              the terminator, never an entry
====================  ========================================================

The back length is the size of ``<encoding + data>`` written so that it can
be read from its last byte backwards: seven bits per byte, the least
significant group in the last byte; every byte but the first (leftmost) has
its top bit set. Lengths up to 127 take one byte.

Which form an entry takes (what Redis writes)
---------------------------------------------
A Python ``int``, and a string that is the canonical decimal form of a signed
64-bit integer (no sign on zero, no leading zeros, no ``+``, no spaces), are
stored as the smallest integer encoding that holds the value; every other
string as the smallest string encoding for its length. Decoding gives back
integers as their decimal bytes, so a string survives a round trip unchanged.

Interface
---------
``encode(entries) -> bytes``; ``decode(buf) -> list[bytes]``;
``validate(buf)`` raises ``FormatError`` (with what is wrong and where) on any
damage: a header whose total disagrees with the buffer, an unknown encoding,
an entry or back length running past the end, a back length that disagrees
with its entry, a count that disagrees with the entries, a missing terminator
or bytes after it. ``decode`` validates as it goes, so it raises the same
``FormatError`` on damaged input and never returns garbage.
"""

from __future__ import annotations

from engine.util import to_int_or_none

__all__ = ["FormatError", "encode", "decode", "validate", "HEADER_SIZE", "EOF"]

HEADER_SIZE = 6
EOF = 0xFF
COUNT_UNKNOWN = 0xFFFF


class FormatError(ValueError):
    """A buffer that is not a well-formed listpack."""


# --- encoding ----------------------------------------------------------------

def _backlen(n: int) -> bytes:
    """The back length of an entry whose encoding + data is ``n`` bytes."""
    if n <= 127:
        return bytes((n,))
    if n < 16383:
        return bytes((n >> 7, (n & 127) | 128))
    if n < 2097151:
        return bytes((n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128))
    if n < 268435455:
        return bytes((n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128,
                      (n & 127) | 128))
    return bytes((n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128,
                  ((n >> 7) & 127) | 128, (n & 127) | 128))


# The common small entries, precomputed: a 7-bit integer is two bytes with its
# back length, a short string one header byte and its back length.
_SMALL_INTS = tuple(bytes((v, 1)) for v in range(128))


def _encode_int(v: int) -> bytes:
    if 0 <= v <= 127:
        return _SMALL_INTS[v]
    if -4096 <= v <= 4095:
        v &= 0x1FFF
        return bytes((0xC0 | (v >> 8), v & 0xFF, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + v.to_bytes(2, "little", signed=True) + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + v.to_bytes(3, "little", signed=True) + b"\x04"
    if -2147483648 <= v <= 2147483647:
        return b"\xf3" + v.to_bytes(4, "little", signed=True) + b"\x05"
    if -9223372036854775808 <= v <= 9223372036854775807:
        return b"\xf4" + v.to_bytes(8, "little", signed=True) + b"\x09"
    raise ValueError(f"integer {v} does not fit in 64 bits")


def _encode_str(s: bytes) -> bytes:
    n = len(s)
    if n < 64:
        return bytes((0x80 | n,)) + s + _backlen(n + 1)
    if n < 4096:
        return bytes((0xE0 | (n >> 8), n & 0xFF)) + s + _backlen(n + 2)
    return b"\xf0" + n.to_bytes(4, "little") + s + _backlen(n + 5)


_INT_START = frozenset(b"-0123456789")


def encode_entry(e: bytes | int) -> bytes:
    """One entry (encoding, data and back length) as Redis writes it."""
    if type(e) is int:
        return _encode_int(e)
    if 0 < len(e) <= 20 and e[0] in _INT_START:
        v = to_int_or_none(bytes(e))
        if v is not None:
            return _encode_int(v)
    return _encode_str(bytes(e))


def encode(entries) -> bytes:
    """The listpack holding ``entries`` (bytes or int), as Redis writes it."""
    parts = [encode_entry(e) for e in entries]
    count = len(parts)
    body = b"".join(parts)
    total = HEADER_SIZE + len(body) + 1
    if total > 0xFFFFFFFF:
        raise ValueError("listpack larger than 4 GiB")
    return (total.to_bytes(4, "little") + min(count, COUNT_UNKNOWN).to_bytes(2, "little")
            + body + b"\xff")


# --- decoding ----------------------------------------------------------------

def _entry_at(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """``(entry as bytes, position after its back length)``; FormatError on damage.

    ``end`` is the terminator's position: nothing of an entry may reach it.
    """
    b = buf[pos]
    if b < 0x80:
        value, size = b"%d" % b, 1
    elif b < 0xC0:
        n = b & 0x3F
        size = 1 + n
        if pos + size > end:
            raise FormatError(f"string entry at {pos} runs past the end")
        value = buf[pos + 1:pos + size]
    elif b < 0xE0:
        if pos + 2 > end:
            raise FormatError(f"integer entry at {pos} runs past the end")
        v = ((b & 0x1F) << 8) | buf[pos + 1]
        if v >= 4096:
            v -= 8192
        value, size = b"%d" % v, 2
    elif b < 0xF0:
        if pos + 2 > end:
            raise FormatError(f"string entry at {pos} runs past the end")
        n = ((b & 0x0F) << 8) | buf[pos + 1]
        size = 2 + n
        if pos + size > end:
            raise FormatError(f"string entry at {pos} runs past the end")
        value = buf[pos + 2:pos + size]
    elif b == 0xF0:
        if pos + 5 > end:
            raise FormatError(f"string entry at {pos} runs past the end")
        n = int.from_bytes(buf[pos + 1:pos + 5], "little")
        size = 5 + n
        if pos + size > end:
            raise FormatError(f"string entry at {pos} runs past the end")
        value = buf[pos + 5:pos + size]
    elif b <= 0xF4:
        width = (2, 3, 4, 8)[b - 0xF1]
        size = 1 + width
        if pos + size > end:
            raise FormatError(f"integer entry at {pos} runs past the end")
        value = b"%d" % int.from_bytes(buf[pos + 1:pos + size], "little", signed=True)
    elif b == EOF:
        raise FormatError(f"terminator inside the listpack at {pos}")
    else:
        raise FormatError(f"unknown entry encoding 0x{b:02x} at {pos}")
    # The back length: its bytes are known from ``size``; compare them exactly.
    bl = _backlen(size)
    after = pos + size + len(bl)
    if after > end:
        raise FormatError(f"back length of the entry at {pos} runs past the end")
    if buf[pos + size:after] != bl:
        raise FormatError(f"back length of the entry at {pos} does not match its size {size}")
    return bytes(value), after


def _header(buf: bytes) -> tuple[int, int]:
    """``(count from the header, terminator position)`` after checking the frame."""
    n = len(buf)
    if n < HEADER_SIZE + 1:
        raise FormatError(f"listpack of {n} bytes is shorter than header and terminator")
    total = int.from_bytes(buf[0:4], "little")
    if total != n:
        raise FormatError(f"header says {total} bytes, buffer has {n}")
    if buf[n - 1] != EOF:
        raise FormatError("missing terminator")
    return int.from_bytes(buf[4:6], "little"), n - 1


def decode(buf: bytes) -> list[bytes]:
    """Every entry of the listpack ``buf``, integers as decimal bytes.

    Raises ``FormatError`` on any damage ``validate`` refuses.
    """
    count, end = _header(buf)
    out = []
    append = out.append
    entry_at = _entry_at
    pos = HEADER_SIZE
    while pos < end:
        value, pos = entry_at(buf, pos, end)
        append(value)
    if count != COUNT_UNKNOWN and count != len(out):
        raise FormatError(f"header says {count} entries, found {len(out)}")
    return out


def validate(buf: bytes) -> None:
    """Raise ``FormatError`` unless ``buf`` is a well-formed listpack."""
    decode(buf)
