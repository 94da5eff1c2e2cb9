"""The checkpoint's on-disk layout: LMDB keys, record and bucket codecs.

Role: everything that knows how bytes in the LMDB environment look, shared by
the writer (``wal.checkpoint.writer``, which encodes) and the loader
(``wal.checkpoint.loader``, which decodes). Invariant: every record and
bucket carries a CRC32C over its LMDB key and its value, so nothing is
decoded before its checksum held.

Layout (``FORMAT_VERSION`` 2)
-----------------------------
``path`` is an LMDB environment directory (``data.mdb``, ``lock.mdb``) with
three named databases. Every LMDB key starts with the LEB128 varint of the
database index (a prefix-free code, so each database is one contiguous
range; indexes < 128 take one byte).

``buckets``
    Plain strings without a TTL — most keys — are grouped by
    ``crc32c(key) % NBUCKETS`` so that a load decodes thousands of keys per
    LMDB record in C instead of one record per key in Python (LMDB cursor
    iteration alone costs about a microsecond per record). Key: db prefix +
    bucket number (u16 BE). Value::

        count (u32 LE)  marshal.dumps({key: value, ...}, 4)  crc32c (4 bytes LE)

    marshal builds only plain objects (it runs no code) and its format 4 has
    not changed since Python 3.4; the CRC is checked before it reads a byte.
    An incremental checkpoint rewrites only the buckets of changed keys.
``keys``
    Every other key, one record each: key = db prefix + the key's bytes,
    value::

        tag (1 byte) [expiry: int64 LE unix ms, when tag & 1] body  crc32c (4 bytes LE)

    tag 0xF0/0xF1: body is the raw string; tag 0xE0/0xE1: body is
    ``engine.rdb.encode_value`` (RDB type byte + encoding), for every other
    type.

In both, the CRC32C covers the LMDB key and the value before it, so a record
read under the wrong key fails too (CRC32C, hardware accelerated, rather than
the DUMP format's CRC64, because the check runs over everything at load).
``meta``
    ``offset`` (u64 LE, the log offset the checkpoint covers), ``format``
    (u32 LE), ``created_ms`` (u64 LE, wall clock of the write), ``keys`` (u64
    LE, number of keys), ``functions`` (when there are function libraries:
    their code, a marshal'd list of bytes, loaded back through
    ``ks.scripting.load_codes``).

Errors: a checkpoint that cannot be read — not an LMDB file, truncated, a
record failing its checksum or not decoding, an unknown format — raises
``CheckpointError`` naming the file (and the key, for a bad record).
"""

from __future__ import annotations

import marshal

from crc32c import crc32c

from engine import rdb

FORMAT_VERSION = 2
NBUCKETS = 4096  # plain-string buckets per database

_TAG_STRING = 0xF0
_TAG_RDB = 0xE0
_HAS_EXPIRE = 1
_STRING = bytes((_TAG_STRING,))
_STRING_EXP = bytes((_TAG_STRING | _HAS_EXPIRE,))
_RDB = bytes((_TAG_RDB,))
_RDB_EXP = bytes((_TAG_RDB | _HAS_EXPIRE,))
# A string value is bytes, or a bytearray once written in place (APPEND,
# SETRANGE, SETBIT, BITFIELD): both are stored alike and load back as bytes.
STRING_TYPES = frozenset((bytes, bytearray))
# CRC32C over a message followed by its own CRC (little endian) is constant:
# checking a record is one crc32c call over all of it.
_CRC_RESIDUE = 0x48674BC7


class CheckpointError(Exception):
    """The checkpoint on disk is damaged or unreadable; the message names the file."""


def db_prefix(index: int) -> bytes:
    """LEB128 varint of a database index: the prefix of its keys in LMDB."""
    out = bytearray()
    while True:
        low = index & 0x7F
        index >>= 7
        if index:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_prefix(k: bytes) -> tuple[int, int]:
    """``(db index, prefix length)`` of an LMDB key."""
    index = shift = 0
    for i, b in enumerate(k):
        index |= (b & 0x7F) << shift
        if not b & 0x80:
            return index, i + 1
        shift += 7
    raise ValueError("key without a complete database prefix")


def encode_record(lkey: bytes, value, expire: int | None) -> bytes:
    """The LMDB value for ``value`` stored under ``lkey``."""
    if type(value) in STRING_TYPES:
        body = _STRING + value if expire is None else _STRING_EXP + expire.to_bytes(8, "little", signed=True) + value
    else:
        enc = rdb.encode_value(value)
        body = _RDB + enc if expire is None else _RDB_EXP + expire.to_bytes(8, "little", signed=True) + enc
    return body + crc32c(body, crc32c(lkey)).to_bytes(4, "little")


def encode_bucket(bkey: bytes, bucket: dict) -> bytes:
    body = len(bucket).to_bytes(4, "little") + marshal.dumps(bucket, 4)
    return body + crc32c(body, crc32c(bkey)).to_bytes(4, "little")


def decode_bucket(file: str, bkey: bytes, v: bytes) -> dict:
    """The ``{key: value}`` of the bucket ``v`` stored under ``bkey`` in ``file``."""
    if len(v) < 8 or crc32c(v, crc32c(bkey)) != _CRC_RESIDUE:
        raise CheckpointError(f"{file}: checksum mismatch in bucket {bkey.hex()}")
    try:
        bucket = marshal.loads(memoryview(v)[4:-4])
    except (ValueError, EOFError, TypeError):
        raise CheckpointError(f"{file}: undecodable bucket {bkey.hex()}") from None
    if type(bucket) is not dict or len(bucket) != int.from_bytes(v[:4], "little"):
        raise CheckpointError(f"{file}: malformed bucket {bkey.hex()}")
    return bucket
