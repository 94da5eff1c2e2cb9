"""Whole RDB files: the writer Keel's full sync uses, and the reader of the
RDB a real Redis sends or wrote to disk (``dump.rdb``).

Pure: bytes in, bytes out; the only file access is ``parse_file``'s mmap of
the path it is given. The values inside are ``engine.rdb``'s (each type's
codec); this module is the frame around them.

Layout (Redis's): ``REDIS`` + 4 ASCII digits of version, then records, each
opening with one byte: a value type (0-21: the key follows as an RDB string,
then the value's body) or an opcode:

====  ==============  ====================================================
0xF5  FUNCTION2       one function library's code (an RDB string)
0xF6  FUNCTION        pre-GA 7.0 library format: refused
0xF7  MODULE_AUX      module data: refused (as are value types 6 and 7)
0xF8  IDLE            LRU idle seconds of the next key (a length): ignored
0xF9  FREQ            LFU counter of the next key (1 byte): ignored
0xFA  AUX             name, value (two RDB strings)
0xFB  RESIZEDB        key count, expiring-key count of the current db
0xFC  EXPIRETIME_MS   the next key's expiry, 8 bytes little endian (ms)
0xFD  EXPIRETIME      the same in seconds, 4 bytes (old files)
0xFE  SELECTDB        the following keys' database (a length)
0xFF  EOF             then (version >= 5) the CRC-64 of every byte before
                      it, 8 bytes little endian; 0 means "not computed"
====  ==============  ====================================================

Versions: Keel writes 10 (``RDB_FILE_VERSION``), what Redis 7.0 writes and
the newest a 7.0 loads, and reads 1 to 11 (Redis 7.2's). Two encodings Keel
keeps for DUMP (Redis 7.2's) are newer than 10: a listpack set (type 20) and
a stream with consumers' active times (21). ``RdbWriter.entry`` rewrites
them for a version-10 file, as an intset (11) or a plain set (2), and as a
``STREAM_LISTPACKS_2`` (19) without the active times, which a 7.0 does not
keep. Everything else Keel writes (strings, quicklist 2 lists, listpack or
table hashes and zsets) a 7.0 reads as it is.

Reader invariants: damaged or truncated input is ``RdbError`` naming the
byte where the record starts and what is wrong, never another exception and
never a normal return (the sink may have received keys by then: the caller
drops them). The sink's own exceptions pass through unchanged. Expiry times
are passed through as they are: the caller drops keys already past due.
Database numbers are passed through too (the sink refuses one it lacks).
Bytes after the checksum are ignored, as Redis ignores them in a file.
"""

from __future__ import annotations

import mmap
import struct
from typing import Protocol

from engine import intset, listpack, rdb
# The type modules register their decoders with engine.rdb on import.
from engine.types import hash as _hash, list as _list, set as _set  # noqa: F401
from engine.types import stream_rdb as _stream, zset_rdb as _zset  # noqa: F401
from engine.util import to_int_or_none

try:
    from engine._crc64 import lzf_decompress as _lzf_c
except ImportError:
    _lzf_c = None

RDB_FILE_VERSION = 10
MAX_READ_VERSION = 11

OP_FUNCTION2 = 0xF5
OP_FUNCTION_PRE_GA = 0xF6
OP_MODULE_AUX = 0xF7
OP_IDLE = 0xF8
OP_FREQ = 0xF9
OP_AUX = 0xFA
OP_RESIZEDB = 0xFB
OP_EXPIRETIME_MS = 0xFC
OP_EXPIRETIME = 0xFD
OP_SELECTDB = 0xFE
OP_EOF = 0xFF

TYPE_STRING = 0
TYPE_SET = 2
TYPE_MODULE, TYPE_MODULE_2 = 6, 7
TYPE_SET_INTSET = 11
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_SET_LISTPACK = 20
TYPE_STREAM_LISTPACKS_3 = 21

_VALUE_TYPE_END = 32  # a record byte below this is a value type (Redis's run to 21)
_CRC_BATCH = 1 << 16  # bytes the writer collects before one crc64 call
_MS = struct.Struct("<q")
_BYTE = [bytes((n,)) for n in range(256)]  # also a 6-bit length
_INT_START = frozenset(b"-0123456789")


class RdbError(Exception):
    """The RDB file is damaged, truncated or holds what Keel cannot load."""


class RdbSink(Protocol):
    """What ``parse`` hands the file's content to. ``resize(db, nkeys,
    nexpires)`` is called too when the sink has it."""

    def aux(self, name: bytes, value: bytes) -> None: ...

    def key(self, db: int, key: bytes, value, expire_ms: int | None) -> None: ...

    def function(self, code: bytes) -> None: ...


# --- writing ------------------------------------------------------------------

def _aux_bytes(v) -> bytes:
    if isinstance(v, int):
        return b"%d" % v
    if isinstance(v, str):
        return v.encode()
    return bytes(v)


class RdbWriter:
    """The bytes of one RDB file, piece by piece, in the order written:
    ``header``, any ``function``s, per database ``select`` then its
    ``entry``/``string_entry``s, ``end``. It keeps the running CRC-64 of
    every byte it returned, for ``end``'s trailer."""

    def __init__(self, version: int = RDB_FILE_VERSION):
        if version not in (10, 11):
            raise ValueError(f"Keel writes RDB versions 10 and 11, not {version}")
        self.version = version
        self._crc = 0
        self._pending: list[bytes] = []  # returned, not yet in _crc
        self._pending_size = 0

    def _out(self, b: bytes) -> bytes:
        if len(b) >= _CRC_BATCH:  # a big value: checksummed where it is, not copied into a batch
            if self._pending:
                self._settle()
            self._crc = rdb.crc64(b, self._crc)
            return b
        self._pending.append(b)
        self._pending_size += len(b)
        if self._pending_size >= _CRC_BATCH:
            self._settle()
        return b

    def _settle(self) -> None:
        self._crc = rdb.crc64(b"".join(self._pending), self._crc)
        self._pending.clear()
        self._pending_size = 0

    def header(self, aux: dict) -> bytes:
        """Magic, version and one AUX record per ``aux`` item (str, bytes or int values)."""
        parts = [b"REDIS%04d" % self.version]
        for name, value in aux.items():
            parts += [b"\xfa", rdb.encode_string(_aux_bytes(name)), rdb.encode_string(_aux_bytes(value))]
        return self._out(b"".join(parts))

    def select(self, db: int, nkeys: int, nexpires: int) -> bytes:
        """SELECTDB ``db`` and RESIZEDB: the counts size the loader's tables."""
        e = rdb.encode_length
        return self._out(b"\xfe" + e(db) + b"\xfb" + e(nkeys) + e(nexpires))

    def function(self, code: bytes) -> bytes:
        """One function library (FUNCTION2): its code, ``#!lua name=...`` first."""
        return self._out(b"\xf5" + rdb.encode_string(code))

    def string_entry(self, key: bytes, value: bytes, expire_ms: int | None = None) -> bytes:
        """A string key: the same bytes as ``entry(key, encode_value(value))``, faster."""
        n = len(key)
        k = _BYTE[n] + key if n < 64 else rdb.encode_length(n) + key
        n = len(value)
        if n < 64 and (n > 11 or not n or value[0] not in _INT_START):
            v = _BYTE[n] + value
        else:
            v = rdb.encode_string(value)
        if expire_ms is None:
            b = b"\x00" + k + v
        else:
            b = b"\xfc" + _MS.pack(expire_ms) + b"\x00" + k + v
        self._pending.append(b)
        self._pending_size += len(b)
        if self._pending_size >= _CRC_BATCH:
            self._settle()
        return b

    def entry(self, key: bytes, encoded: bytes, expire_ms: int | None = None) -> bytes:
        """A key whose value ``encoded`` is ``engine.rdb.encode_value`` output,
        rewritten into an encoding this file's version has where needed."""
        t = encoded[0]
        if self.version < 11 and t >= TYPE_SET_LISTPACK:
            encoded = _to_v10(encoded)
            t = encoded[0]
        n = len(key)
        parts = [b"\xfc" + _MS.pack(expire_ms) if expire_ms is not None else b"",
                 _BYTE[t], rdb.encode_length(n) if n >= 64 else _BYTE[n], key, memoryview(encoded)[1:]]
        return self._out(b"".join(parts))

    def end(self) -> bytes:
        """EOF and the CRC-64 of everything written before it, EOF included."""
        self._pending.append(b"\xff")
        self._settle()
        return b"\xff" + self._crc.to_bytes(8, "little")


def _to_v10(encoded: bytes) -> bytes:
    """A type-20 set or type-21 stream encoding as RDB 10 writes the same value."""
    t = encoded[0]
    if t == TYPE_SET_LISTPACK:
        blob = rdb.read_string(encoded, 1)[0]
        members = listpack.decode(blob)
        ints = []
        for m in members:
            v = to_int_or_none(m) if len(m) <= 20 else None
            if v is None:
                break
            ints.append(v)
        else:
            body = intset.encode(ints)
            return bytes((TYPE_SET_INTSET,)) + rdb.encode_length(len(body)) + body
        return b"".join([bytes((TYPE_SET,)), rdb.encode_length(len(members)),
                         *[rdb.encode_string(m) for m in members]])
    if t == TYPE_STREAM_LISTPACKS_3:
        return _stream_3_to_2(encoded)
    raise ValueError(f"RDB type {t} has no version-10 form Keel knows")


def _skip_length(buf, pos: int) -> int:
    _, pos, special = rdb.read_length(buf, pos)
    if special:
        raise ValueError("stream encoding: an encoded string where a length is")
    return pos


def _skip_string(buf, pos: int) -> int:
    return rdb.read_string(buf, pos)[1]


def _stream_3_to_2(buf: bytes) -> bytes:
    """STREAM_LISTPACKS_3 -> _2: the same bytes without each consumer's
    8-byte active time (the only difference between the two)."""
    out = [bytes((TYPE_STREAM_LISTPACKS_2,))]
    pos = 1
    nodes, pos, _ = rdb.read_length(buf, pos)
    for _ in range(2 * nodes):  # node key, node listpack
        pos = _skip_string(buf, pos)
    for _ in range(8):  # length, last id, first id, max deleted id, entries added
        pos = _skip_length(buf, pos)
    ngroups, pos, _ = rdb.read_length(buf, pos)
    copied = 1
    for _ in range(ngroups):
        pos = _skip_string(buf, pos)
        for _ in range(3):  # last id (ms, seq), entries read
            pos = _skip_length(buf, pos)
        npel, pos, _ = rdb.read_length(buf, pos)
        for _ in range(npel):  # raw id, delivery time, delivery count
            pos = _skip_length(buf, pos + 24)
        nconsumers, pos, _ = rdb.read_length(buf, pos)
        for _ in range(nconsumers):
            pos = _skip_string(buf, pos) + 8  # name, seen time
            out.append(buf[copied:pos])
            pos += 8  # the active time, which 19 does not have
            copied = pos
            owned, pos, _ = rdb.read_length(buf, pos)
            pos += 16 * owned
    if pos != len(buf):
        raise ValueError("stream encoding does not end where its groups do")
    out.append(buf[copied:])
    return b"".join(out)


# --- reading ------------------------------------------------------------------

def _version(buf) -> int:
    if len(buf) < 9 or buf[:5] != b"REDIS":
        raise RdbError("RDB byte 0: not an RDB file (no REDIS magic)")
    digits = buf[5:9]
    if not digits.isdigit():
        raise RdbError(f"RDB byte 5: bad version field {digits!r}")
    version = int(digits)
    if not 1 <= version <= MAX_READ_VERSION:
        raise RdbError(f"RDB byte 5: can't handle RDB format version {version} (Keel reads 1 to {MAX_READ_VERSION})")
    return version


def _check_eof(buf, pos: int, version: int, verify: bool) -> None:
    """``pos`` is the EOF byte; the checksum (version >= 5) follows it."""
    if version < 5:
        return
    if pos + 9 > len(buf):
        raise RdbError(f"RDB byte {pos + 1}: the file ends inside its checksum")
    stored = int.from_bytes(buf[pos + 1:pos + 9], "little")
    if not verify or stored == 0:
        return
    with memoryview(buf) as whole, whole[:pos + 1] as covered:
        actual = rdb.crc64(covered)
    if actual != stored:
        raise RdbError(f"RDB byte {pos + 1}: wrong checksum (file says {stored:016x}, content gives {actual:016x})")


def _damage(buf, start: int, e: Exception) -> RdbError:
    """What to say of the record at ``start`` whose reading raised ``e``."""
    if start >= len(buf):
        return RdbError(f"RDB byte {start}: the file ends before its EOF record")
    op = buf[start]
    what = "key record" if op < _VALUE_TYPE_END else f"record (opcode 0x{op:02x})"
    if isinstance(e, IndexError):
        return RdbError(f"RDB byte {start}: the file ends inside a {what}")
    return RdbError(f"RDB byte {start}: damaged {what}: {e or type(e).__name__}")


def _short_length(buf, pos: int) -> tuple[int, int]:
    """A 6- or 14-bit length at ``pos``, else (-1, pos)."""
    b = buf[pos]
    if b < 64:
        return b, pos + 1
    if b < 128:
        return ((b & 63) << 8) | buf[pos + 1], pos + 2
    return -1, pos


def _lzf_string(buf, pos: int) -> tuple[bytes, int]:
    """``rdb.read_string`` of an LZF string (Redis writes every string over
    20 bytes this way when it pays), its usual short lengths read here."""
    clen, p = _short_length(buf, pos + 1)
    if clen >= 0 and _lzf_c is not None:
        ulen, p = _short_length(buf, p)
        end = p + clen
        if ulen > 0 and end <= len(buf):
            v = _lzf_c(buf[p:end], ulen)
            if type(v) is bytes:
                return v, end
    return rdb.read_string(buf, pos)  # any other case, errors included


def parse(buf, sink, verify_checksum: bool = True) -> None:
    """Hand every record of the RDB file in ``buf`` to ``sink`` (see the
    module docstring); returns only once the EOF record and checksum held."""
    if isinstance(buf, (bytearray, memoryview)):
        buf = bytes(buf)  # values are bytes, never views into the caller's buffer
    version = _version(buf)
    n = len(buf)
    read_string = rdb.read_string
    read_length = rdb.read_length
    decoder = rdb.decoder
    on_key = sink.key
    resize = getattr(sink, "resize", None)
    db = 0
    expire = None
    pos = 9
    while True:
        start = pos
        try:
            op = buf[pos]
            if op == TYPE_STRING:  # the common case, read inline
                kn = buf[pos + 1]
                if kn < 64:
                    pos += 2 + kn
                    k = buf[pos - kn:pos]
                else:
                    k, pos = read_string(buf, pos + 1)
                vn = buf[pos]
                if vn < 64:
                    pos += 1 + vn
                    v = buf[pos - vn:pos]
                    if pos > n:
                        raise IndexError
                elif vn == 0xC3:
                    v, pos = _lzf_string(buf, pos)
                else:
                    v, pos = read_string(buf, pos)
            elif op < _VALUE_TYPE_END:
                k, pos = read_string(buf, pos + 1)
                decode = decoder(op)
                if decode is None:
                    if op in (TYPE_MODULE, TYPE_MODULE_2):
                        raise RdbError(f"RDB byte {start}: module data not supported (key {k!r})")
                    raise RdbError(f"RDB byte {start}: unknown value type {op} (key {k!r})")
                v, pos = decode(buf, pos)
            elif op == OP_EXPIRETIME_MS:
                if pos + 9 > n:
                    raise IndexError
                expire = _MS.unpack_from(buf, pos + 1)[0]
                pos += 9
                continue
            elif op == OP_SELECTDB:
                db, pos, special = read_length(buf, pos + 1)
                if special:
                    raise ValueError("database number is an encoded string")
                continue
            elif op == OP_RESIZEDB:
                k, pos, _ = read_length(buf, pos + 1)
                v, pos, _ = read_length(buf, pos)
            elif op == OP_AUX:
                k, pos = read_string(buf, pos + 1)
                v, pos = read_string(buf, pos)
            elif op == OP_EOF:
                _check_eof(buf, pos, version, verify_checksum)
                return
            elif op == OP_EXPIRETIME:
                if pos + 5 > n:
                    raise IndexError
                expire = int.from_bytes(buf[pos + 1:pos + 5], "little", signed=True) * 1000
                pos += 5
                continue
            elif op == OP_IDLE:
                _, pos, _ = read_length(buf, pos + 1)
                continue
            elif op == OP_FREQ:
                if pos + 2 > n:
                    raise IndexError
                pos += 2
                continue
            elif op == OP_FUNCTION2:
                v, pos = read_string(buf, pos + 1)
            elif op == OP_FUNCTION_PRE_GA:
                raise RdbError(f"RDB byte {start}: function library in the pre-GA Redis 7.0 format not supported")
            elif op == OP_MODULE_AUX:
                raise RdbError(f"RDB byte {start}: module data not supported")
            else:
                raise RdbError(f"RDB byte {start}: unknown record type {op}")
        except RdbError:
            raise
        except Exception as e:  # anything a damaged value makes a decoder raise
            raise _damage(buf, start, e) from None
        # The sink is called outside the try: its own exceptions are its own.
        if op < _VALUE_TYPE_END:
            on_key(db, k, v, expire)
            expire = None
        elif op == OP_AUX:
            sink.aux(k, v)
        elif op == OP_FUNCTION2:
            sink.function(v)
        elif resize is not None:  # RESIZEDB
            resize(db, k, v)


def parse_file(path: str, sink, verify_checksum: bool = True) -> None:
    """``parse`` the RDB file at ``path``, mapped into memory, not read."""
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise RdbError("RDB byte 0: empty file") from None
    with mm:
        parse(mm, sink, verify_checksum)
