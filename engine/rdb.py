"""Value encoding in Redis's RDB format, and the DUMP payload around it.

Pure: bytes in, values out; no I/O. Used by DUMP/RESTORE, by checkpoints
(``wal.checkpoint`` stores ``encode_value`` output) and, later, by full
synchronisation (an RDB file is a sequence of these encodings).

Interface
---------
``dump(value) -> bytes``
    The DUMP payload: ``encode_value(value)`` + RDB version (2 bytes, little
    endian) + CRC64 of everything before it (8 bytes, little endian).
``restore(payload) -> value``
    The inverse. Raises ``PayloadVersionError`` when the payload is too short,
    its version is newer than ``RDB_VERSION`` or its checksum is wrong, and
    ``PayloadError`` when the encoded value itself is malformed or of a type
    Keel cannot hold (RESTORE replies ``ERR Bad data format``).
``encode_value(value) -> bytes`` / ``decode_value(buf, pos) -> (value, pos)``
    One value as ``type byte + body``, the unit an RDB file and a checkpoint
    record carry.
``crc64(data, crc=0) -> int``
    Redis's CRC-64 (Jones polynomial, reflected, init 0, no final xor); the
    C one from ``engine._crc64`` when it is built, else a table loop here.

Versions: Keel writes ``RDB_VERSION`` = 11, the number Redis 7.2 writes (7.0
writes 10), matching the 7.2 that Keel reports itself as. It accepts every
payload whose version is <= 11: strings are encoded the same way in all of
them. A Redis 7.0 refuses version-11 payloads (its own check is ``<= 10``);
``dump(value, version=10)`` produces what a 7.0 accepts, byte for byte.

Types plug in from their own modules. A type with one RDB encoding calls
``register(type_byte, python_type, encode, decode)``, where ``encode(value)
-> body`` and ``decode(buf, pos) -> (value, pos)``. A type with several (a
hash is written as a listpack or as a hash table, and read from a ziplist,
zipmap, listpack or table) calls ``register_encoder(python_type, encode)``
with ``encode(value) -> type byte + body`` once, and
``register_decoder(type_byte, decode)`` for every type byte it reads. An
unregistered type byte is ``PayloadError``, as Redis treats an unknown type. A string changed in place
is a ``bytearray`` (see ``engine.types``): it encodes exactly as the ``bytes``
of the same content, as Redis writes a raw and an embedded string alike, and
it decodes as ``bytes`` (a restored string is created whole).

String encodings (what Redis writes, so DUMP payloads compare byte for byte):
* a canonical decimal integer of at most 11 characters that fits in 32 bits
  is stored as INT8 / INT16 / INT32 (``0xC0``-``0xC2`` + little-endian bytes);
* anything else as a length (6-bit, 14-bit, 32-bit or 64-bit encoding) and the
  raw bytes. Redis LZF-compresses strings over 20 bytes when that pays; Keel
  writes them raw (still valid for any Redis) and reads LZF (``0xC3``) ones.

Decoding reads from the whole payload, footer included, exactly like Redis:
bytes left between the value and the footer are ignored, and a value whose
stated length runs into the footer takes those bytes (both Redis behaviours,
kept so RESTORE accepts and rejects the same payloads).
"""

from __future__ import annotations

from typing import Callable

from engine.lzf import LzfError, decompress
from engine.util import to_int_or_none

RDB_VERSION = 11

TYPE_STRING = 0

# Length encodings: the two high bits of the first byte.
_LEN_6BIT = 0
_LEN_14BIT = 1
_LEN_32BIT = 0x80
_LEN_64BIT = 0x81
_LEN_SPECIAL = 3
# Special string encodings (first byte 0b11xxxxxx, xxxxxx below).
_ENC_INT8 = 0
_ENC_INT16 = 1
_ENC_INT32 = 2
_ENC_LZF = 3

_FOOTER = 10  # 2-byte version + 8-byte CRC64


class PayloadError(ValueError):
    """The encoded value is malformed or of a type Keel does not hold."""


class PayloadVersionError(PayloadError):
    """The payload is too short, from a newer RDB version, or fails its CRC64."""


# --- CRC-64 (Jones polynomial, reflected) ------------------------------------

_CRC64_POLY_REFLECTED = 0x95AC9329AC4BC9B5  # bit-reversal of 0xAD93D23594C935A9


def _crc64_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's crc64(crc, data): ``crc64(b"123456789") == 0xe9c6d914c4b8d9ca``."""
    table = _CRC64_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


crc64_python = crc64
try:  # the same function in C (engine/_crc64.c), when it is built
    from engine._crc64 import crc64  # noqa: F811
except ImportError:
    pass


# --- lengths and strings -----------------------------------------------------

def encode_length(n: int) -> bytes:
    """The shortest RDB length encoding of ``n``."""
    if n < 1 << 6:
        return bytes((n,))
    if n < 1 << 14:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n < 1 << 32:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def read_length(buf: bytes, pos: int) -> tuple[int, int, bool]:
    """``(value, new_pos, is_special)``: a length, or a special-encoding tag."""
    try:
        first = buf[pos]
        kind = first >> 6
        if kind == _LEN_6BIT:
            return first & 0x3F, pos + 1, False
        if kind == _LEN_14BIT:
            return ((first & 0x3F) << 8) | buf[pos + 1], pos + 2, False
        if kind == _LEN_SPECIAL:
            return first & 0x3F, pos + 1, True
        if first == _LEN_32BIT:
            end = pos + 5
        elif first == _LEN_64BIT:
            end = pos + 9
        else:
            raise PayloadError(f"unknown length encoding {first}")
        if end > len(buf):
            raise PayloadError("length past the end of the payload")
        return int.from_bytes(buf[pos + 1:end], "big"), end, False
    except IndexError:
        raise PayloadError("length past the end of the payload") from None


def encode_string(s: bytes | bytearray) -> bytes:
    """A string in RDB encoding: integer-encoded when Redis would, else raw."""
    n = len(s)
    if n <= 11 and n:
        v = to_int_or_none(s)
        if v is not None:
            if -0x80 <= v <= 0x7F:
                return b"\xc0" + v.to_bytes(1, "little", signed=True)
            if -0x8000 <= v <= 0x7FFF:
                return b"\xc1" + v.to_bytes(2, "little", signed=True)
            if -0x80000000 <= v <= 0x7FFFFFFF:
                return b"\xc2" + v.to_bytes(4, "little", signed=True)
    return encode_length(n) + s


def read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    """``(string, new_pos)`` for an RDB-encoded string at ``pos``."""
    n, pos, special = read_length(buf, pos)
    if not special:
        end = pos + n
        if end > len(buf):
            raise PayloadError("string past the end of the payload")
        return buf[pos:end], end
    if n == _ENC_INT8:
        width = 1
    elif n == _ENC_INT16:
        width = 2
    elif n == _ENC_INT32:
        width = 4
    elif n == _ENC_LZF:
        clen, pos, sp1 = read_length(buf, pos)
        ulen, pos, sp2 = read_length(buf, pos)
        end = pos + clen
        if sp1 or sp2 or ulen == 0 or end > len(buf):
            raise PayloadError("invalid LZF string header")
        try:
            return decompress(buf[pos:end], ulen), end
        except LzfError as e:
            raise PayloadError(f"invalid LZF string: {e}") from None
    else:
        raise PayloadError(f"unknown string encoding {n}")
    end = pos + width
    if end > len(buf):
        raise PayloadError("integer past the end of the payload")
    return b"%d" % int.from_bytes(buf[pos:end], "little", signed=True), end


# --- the type registry -------------------------------------------------------

Encoder = Callable[[object], bytes]
Decoder = Callable[[bytes, int], "tuple[object, int]"]

_ENCODERS: dict[type, Encoder] = {}  # value -> type byte + body
_DECODERS: dict[int, Decoder] = {}


def register_encoder(python_type: type, encode: Encoder) -> None:
    """Values of ``python_type`` are written by ``encode(value) -> type byte + body``."""
    if python_type in _ENCODERS:
        raise RuntimeError(f"RDB encoder for {python_type!r} registered twice")
    _ENCODERS[python_type] = encode


def register_decoder(type_byte: int, decode: Decoder) -> None:
    """RDB type ``type_byte`` is read by ``decode(buf, pos) -> (value, pos)``."""
    if type_byte in _DECODERS:
        raise RuntimeError(f"RDB type {type_byte} registered twice")
    _DECODERS[type_byte] = decode


def decoder(type_byte: int) -> Decoder | None:
    """The decoder of RDB type ``type_byte`` (None: Keel reads no such type);
    an RDB file puts the key between a value's type byte and its body."""
    return _DECODERS.get(type_byte)


def register(type_byte: int, python_type: type, encode: Encoder, decode: Decoder) -> None:
    """A data type with one RDB encoding: ``python_type`` <-> ``type_byte``."""
    prefix = bytes((type_byte,))
    register_encoder(python_type, lambda value: prefix + encode(value))
    register_decoder(type_byte, decode)


register(TYPE_STRING, bytes, encode_string, read_string)
# Encoding only: a payload decodes to one Python type per RDB type.
register_encoder(bytearray, _ENCODERS[bytes])


def encode_value(value) -> bytes:
    """``type byte + body`` for ``value``."""
    try:
        encode = _ENCODERS[type(value)]
    except KeyError:
        raise TypeError(f"no RDB encoding for {type(value).__name__}") from None
    return encode(value)


def decode_value(buf: bytes, pos: int = 0) -> tuple[object, int]:
    """``(value, new_pos)`` for the ``type byte + body`` at ``pos``."""
    if pos >= len(buf):
        raise PayloadError("missing type byte")
    decode = _DECODERS.get(buf[pos])
    if decode is None:
        raise PayloadError(f"unknown RDB type {buf[pos]}")
    return decode(buf, pos + 1)


# --- DUMP payloads -----------------------------------------------------------

def dump(value, version: int = RDB_VERSION) -> bytes:
    """The DUMP payload of ``value``."""
    body = encode_value(value) + version.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def check_footer(payload: bytes) -> int:
    """The payload's RDB version, after checking it and the CRC64."""
    if len(payload) < _FOOTER:
        raise PayloadVersionError("payload shorter than its footer")
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION:
        raise PayloadVersionError(f"RDB version {version} is newer than {RDB_VERSION}")
    if crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise PayloadVersionError("CRC64 mismatch")
    return version


def restore(payload: bytes):
    """The value a DUMP payload holds (see the module docstring for errors)."""
    check_footer(payload)
    return decode_value(payload, 0)[0]
