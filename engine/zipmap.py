"""Redis's zipmap, the small-hash format of Redis 2.x, byte for byte.

Pure functions over bytes. Redis 7 still reads a hash stored as a zipmap
(RDB type 9) and converts it on load; Keel reads it for the same reason.
``encode`` exists so tests can build such payloads.

Layout
------
::

    <count: 1 byte> (<key length> <key> <value length> <free> <value> <free bytes>)... 0xFF

The count is the number of key/value pairs when below 254; 254 means "walk
the map to know". A length is one byte when below 254, else the byte 254
followed by the length as uint32 LE. A key length whose first byte is 255 is
the terminator. ``free`` is one byte: how many unused bytes follow the value
(left there by an in-place update); they are skipped.

Interface
---------
``decode(buf) -> list[bytes]``: keys and values alternating; ``validate(buf)``
raises ``FormatError`` when anything runs past the end, the map is empty
(Redis refuses that), the count disagrees with the pairs, or bytes follow the
terminator. ``decode`` validates too. Duplicate keys are the hash type's
concern, as they are Redis's loader's. ``encode(pairs) -> bytes`` writes a
zipmap with no free bytes.
"""

from __future__ import annotations

__all__ = ["FormatError", "encode", "decode", "validate"]

BIGLEN = 254
END = 0xFF


class FormatError(ValueError):
    """A buffer that is not a well-formed zipmap."""


def _length(buf: bytes, pos: int, n: int) -> tuple[int, int]:
    """``(length, position after it)`` for a length at ``pos``."""
    if pos >= n:
        raise FormatError(f"length at {pos} runs past the end")
    b = buf[pos]
    if b < BIGLEN:
        return b, pos + 1
    if pos + 5 > n:
        raise FormatError(f"length at {pos} runs past the end")
    return int.from_bytes(buf[pos + 1:pos + 5], "little"), pos + 5


def decode(buf: bytes) -> list[bytes]:
    """Keys and values alternating; ``FormatError`` on any damage."""
    n = len(buf)
    if n < 2:
        raise FormatError(f"zipmap of {n} bytes is shorter than count and terminator")
    out = []
    pos = 1
    while True:
        if pos >= n:
            raise FormatError("missing terminator")
        if buf[pos] == END:
            break
        klen, pos = _length(buf, pos, n)
        if pos + klen > n:
            raise FormatError(f"key at {pos} runs past the end")
        out.append(bytes(buf[pos:pos + klen]))
        pos += klen
        vlen, pos = _length(buf, pos, n)
        if pos >= n:
            raise FormatError(f"free byte at {pos} runs past the end")
        free = buf[pos]
        pos += 1
        if pos + vlen + free > n:
            raise FormatError(f"value at {pos} runs past the end")
        out.append(bytes(buf[pos:pos + vlen]))
        pos += vlen + free
    pairs = len(out) // 2
    if pairs == 0:
        raise FormatError("empty zipmap")
    if buf[0] != BIGLEN and buf[0] != pairs:
        raise FormatError(f"count says {buf[0]} pairs, found {pairs}")
    if pos + 1 != n:
        raise FormatError(f"{n - pos - 1} bytes after the terminator")
    return out


def validate(buf: bytes) -> None:
    """Raise ``FormatError`` unless ``buf`` is a well-formed zipmap."""
    decode(buf)


def _encode_length(n: int) -> bytes:
    return bytes((n,)) if n < BIGLEN else bytes((BIGLEN,)) + n.to_bytes(4, "little")


def encode(pairs) -> bytes:
    """A zipmap of ``pairs`` (keys and values alternating, bytes), no free bytes."""
    items = list(pairs)
    parts = [bytes((min(len(items) // 2, BIGLEN),))]
    for i in range(0, len(items) - 1, 2):
        k, v = bytes(items[i]), bytes(items[i + 1])
        parts += [_encode_length(len(k)), k, _encode_length(len(v)), b"\x00", v]
    parts.append(b"\xff")
    return b"".join(parts)
