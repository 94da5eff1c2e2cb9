"""Redis's intset: a sorted array of distinct integers, byte for byte.

Pure functions over bytes. A set of integers is written to RDB (type 11) as
an RDB string holding this buffer; ``encode`` builds it exactly as Redis does
for the same members, so DUMP payloads compare byte for byte.

Layout
------
::

    <width: uint32 LE> <count: uint32 LE> <member: width bytes, signed LE>...

The width is the size of every member in bytes: 2, 4 or 8. The members are
sorted ascending with no two equal, and the buffer is exactly ``8 + width *
count`` bytes long.

Redis widens an intset when a member needs more bytes and never narrows it
again, so a set that once held a large integer may keep width 8 after it is
gone; ``decode`` and ``validate`` accept any width that holds the members.
``encode`` picks the smallest width that holds them all, which is what Redis
writes for a set built from those members.

Interface
---------
``encode(ints) -> bytes`` (any order, duplicates dropped); ``decode(buf) ->
list[int]``; ``validate(buf)`` raises ``FormatError`` on a width other than 2,
4 or 8, a length that disagrees with the count, an empty set (Redis never
writes one), or members out of order or repeated. ``decode`` validates too.
"""

from __future__ import annotations

__all__ = ["FormatError", "encode", "decode", "validate", "width_for"]

HEADER_SIZE = 8


class FormatError(ValueError):
    """A buffer that is not a well-formed intset."""


def width_for(v: int) -> int:
    """The smallest intset width (2, 4 or 8 bytes) that holds ``v``."""
    if -32768 <= v <= 32767:
        return 2
    if -2147483648 <= v <= 2147483647:
        return 4
    if -9223372036854775808 <= v <= 9223372036854775807:
        return 8
    raise ValueError(f"integer {v} does not fit in 64 bits")


def encode(ints) -> bytes:
    """The intset holding ``ints``: sorted, distinct, smallest width."""
    members = sorted(set(ints))
    width = 2
    if members:
        width = max(width_for(members[0]), width_for(members[-1]))
    body = b"".join([v.to_bytes(width, "little", signed=True) for v in members])
    return width.to_bytes(4, "little") + len(members).to_bytes(4, "little") + body


def decode(buf: bytes) -> list[int]:
    """The members of the intset ``buf``, ascending; ``FormatError`` on damage."""
    n = len(buf)
    if n < HEADER_SIZE:
        raise FormatError(f"intset of {n} bytes is shorter than its header")
    width = int.from_bytes(buf[0:4], "little")
    if width not in (2, 4, 8):
        raise FormatError(f"intset width {width} is not 2, 4 or 8")
    count = int.from_bytes(buf[4:8], "little")
    if HEADER_SIZE + count * width != n:
        raise FormatError(f"intset of {count} members of {width} bytes cannot be {n} bytes")
    if count == 0:
        raise FormatError("empty intset")
    fb = int.from_bytes
    members = [fb(buf[p:p + width], "little", signed=True) for p in range(HEADER_SIZE, n, width)]
    prev = members[0]
    for v in members[1:]:
        if v <= prev:
            raise FormatError(f"intset members out of order or repeated: {prev} then {v}")
        prev = v
    return members


def validate(buf: bytes) -> None:
    """Raise ``FormatError`` unless ``buf`` is a well-formed intset."""
    decode(buf)
