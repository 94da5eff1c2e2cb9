"""RDB encodings of the sorted set (DUMP/RESTORE, checkpoints, full sync).

What Redis 7.0/7.2 write, and what Keel writes:

* ``ZSET_LISTPACK`` (17), for the listpack encoding: one RDB string holding
  a listpack of member, score, member, score… in set order, each score as
  Redis's ``d2string`` prints it (an integral score as an integer entry);
* ``ZSET_2`` (5), for the skiplist encoding: the length, then each member as
  an RDB string and its score as 8 little-endian bytes (a binary double),
  highest score first, as Redis walks its skiplist from the tail.

Also read, as Redis still loads them: ``ZSET_ZIPLIST`` (12, a ziplist of the
same pairs) and ``ZSET`` (3, scores as length-prefixed text, 253/254/255
standing for nan/+inf/-inf).

A loaded set takes the encoding Redis gives it with the default thresholds
(the codec has no keyspace): a listpack or ziplist with more than 128 members
becomes a skiplist (a long member does not unpack it, as in Redis), and a
ZSET/ZSET_2 that fits (count and member length) becomes a listpack. Damage is ``rdb.PayloadError`` (RESTORE answers
"Bad data format"), never a stored value: an odd entry count, a score that is
not a number (or NaN), a duplicate member, an empty set, or a ziplist or
listpack whose structure is wrong.
"""

from __future__ import annotations

import struct
from itertools import chain

from engine import listpack, rdb, ziplist
from engine.types.limits import Limits
from engine.types.zset import ZSet, scan_score

RDB_ZSET, RDB_ZSET_2, RDB_ZSET_ZIPLIST, RDB_ZSET_LISTPACK = 3, 5, 12, 17
_LOAD_LIMITS = Limits()
_DOUBLE = struct.Struct("<d")


def _encode(z: ZSet) -> bytes:
    pairs = z.pairs()
    if z.encoding == "listpack":
        entries = []
        for s, m in pairs:
            entries.append(m)
            entries.append(scan_score(s))
        buf = listpack.encode(entries)
        return bytes((RDB_ZSET_LISTPACK,)) + rdb.encode_length(len(buf)) + buf
    parts = [bytes((RDB_ZSET_2,)), rdb.encode_length(len(pairs))]
    encode_string, pack = rdb.encode_string, _DOUBLE.pack
    for scores, members in pairs.backwards():
        parts += chain.from_iterable(zip(map(encode_string, members), map(pack, scores)))
    return b"".join(parts)


def _score(text: bytes) -> float:
    try:
        v = float(text)
    except ValueError:
        raise rdb.PayloadError("sorted set score is not a number") from None
    if v != v:
        raise rdb.PayloadError("sorted set score is NaN")
    return v


def _build(pairs, packed: bool = False) -> ZSet:
    if not pairs:
        raise rdb.PayloadError("empty sorted set")
    if packed and len(pairs) <= _LOAD_LIMITS.zset_max_listpack_entries:
        z = ZSet(pairs)  # Redis keeps a loaded listpack packed whatever its members' length
    else:
        z = ZSet(pairs, _LOAD_LIMITS)
    # A skiplist's member dict drops a repeated member: its size tells (a
    # listpack keeps every pair, so a set counts them).
    if (len(z) if z.encoding == "skiplist" else len({m for _, m in pairs})) != len(pairs):
        raise rdb.PayloadError("duplicate sorted set member")
    return z


def _from_entries(entries) -> ZSet:
    if len(entries) % 2:
        raise rdb.PayloadError("odd number of sorted set entries")
    return _build([(_score(entries[i + 1]), entries[i]) for i in range(0, len(entries), 2)], packed=True)


def _decode_listpack(buf: bytes, pos: int):
    blob, pos = rdb.read_string(buf, pos)
    try:
        entries = listpack.decode(blob)
    except listpack.FormatError as e:
        raise rdb.PayloadError(f"bad sorted set listpack: {e}") from None
    return _from_entries(entries), pos


def _decode_ziplist(buf: bytes, pos: int):
    blob, pos = rdb.read_string(buf, pos)
    try:
        entries = ziplist.decode(blob)
    except ziplist.FormatError as e:
        raise rdb.PayloadError(f"bad sorted set ziplist: {e}") from None
    return _from_entries(entries), pos


def _decode_zset2(buf: bytes, pos: int):
    n, pos, special = rdb.read_length(buf, pos)
    if special:
        raise rdb.PayloadError("malformed sorted set length")
    pairs = []
    read_string, unpack = rdb.read_string, _DOUBLE.unpack_from
    size = len(buf)
    for _ in range(n):
        k = buf[pos] if pos < size else 255
        if k < 64:  # a plain string of up to 63 bytes (most members): read here, not in read_string
            pos += 1
            m = buf[pos:pos + k]
            pos += k
        else:
            m, pos = read_string(buf, pos)
        if pos + 8 > size:
            raise rdb.PayloadError("sorted set score past the end of the payload")
        (s,) = unpack(buf, pos)
        if s != s:
            raise rdb.PayloadError("sorted set score is NaN")
        pos += 8
        pairs.append((s, m))
    return _build(pairs), pos


_SPECIAL_SCORES = {254: float("inf"), 255: float("-inf")}


def _decode_zset(buf: bytes, pos: int):
    n, pos, special = rdb.read_length(buf, pos)
    if special:
        raise rdb.PayloadError("malformed sorted set length")
    pairs = []
    read_string = rdb.read_string
    for _ in range(n):
        m, pos = read_string(buf, pos)
        if pos >= len(buf):
            raise rdb.PayloadError("sorted set score past the end of the payload")
        k = buf[pos]
        pos += 1
        if k in _SPECIAL_SCORES:
            s = _SPECIAL_SCORES[k]
        elif k == 253:
            raise rdb.PayloadError("sorted set score is NaN")
        else:
            if pos + k > len(buf):
                raise rdb.PayloadError("sorted set score past the end of the payload")
            s = _score(bytes(buf[pos:pos + k]))
            pos += k
        pairs.append((s, m))
    return _build(pairs), pos


rdb.register_encoder(ZSet, _encode)
rdb.register_decoder(RDB_ZSET, _decode_zset)
rdb.register_decoder(RDB_ZSET_2, _decode_zset2)
rdb.register_decoder(RDB_ZSET_ZIPLIST, _decode_ziplist)
rdb.register_decoder(RDB_ZSET_LISTPACK, _decode_listpack)
