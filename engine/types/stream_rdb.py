"""RDB encodings of the stream (DUMP/RESTORE, checkpoints, full sync).

Keel writes ``STREAM_LISTPACKS_3`` (21), what Redis 7.2 writes, and reads it,
``STREAM_LISTPACKS_2`` (19, Redis 7.0's) and ``STREAM_LISTPACKS`` (15,
Redis 5/6's). The body, in Redis's layout:

* the node count, then per node its key (an RDB string of 16 bytes: the
  master ID's ms and seq, big-endian) and an RDB string holding the node's
  listpack: the master entry (live count, deleted count, field count, the
  master fields, a 0), then per entry its flags (1 deleted, 2 same fields as
  the master), ms and seq as differences from the master ID, then either
  the values alone (same fields) or the field count and field, value
  pairs, and last the entry's element count;
* the length, last ID (ms, seq); from 19 on, the recorded first ID, the max
  deleted ID and entries-added;
* the group count, then per group its name, last ID, (19+) entries-read
  (2**64-1 for unknown), its PEL (16 raw ID bytes, the delivery time as 8
  little-endian bytes, the delivery count) and its consumers (name, seen
  time, (21) active time, and the IDs of the PEL entries it owns).

Keel writes only live entries (deleted count 0): a deleted entry keeps no
content in Keel. On loading, a 15/19 payload's consumers get their seen
time as active time, and a 15 payload's groups an estimated entries-read,
as Redis 7.2 does. Damage is ``rdb.PayloadError``: a node key that is not
16 bytes, a listpack that does not decode or whose entries do not add up,
an empty node, a PEL entry owned by no consumer or a consumer owning an ID
its group does not have pending.
"""

from __future__ import annotations

import struct

from engine import listpack, rdb
from engine.types.stream import UINT64_MAX, Stream
from engine.types.stream_group import Consumer, Group, Pending, estimate_read

RDB_STREAM_LISTPACKS, RDB_STREAM_LISTPACKS_2, RDB_STREAM_LISTPACKS_3 = 15, 19, 21
_FLAG_DELETED, _FLAG_SAMEFIELDS = 1, 2
_MS = struct.Struct("<q")
_ID = struct.Struct(">QQ")
_INVALID = UINT64_MAX  # SCG_INVALID_ENTRIES_READ as an unsigned length


def _signed(d: int) -> int:
    d &= UINT64_MAX
    return d - 2**64 if d >= 2**63 else d


def _node_listpack(first, mf, ids, vals) -> bytes:
    live = [(i, v) for i, v in zip(ids, vals) if v is not None]
    out = [len(live), 0, len(mf), *mf, 0]
    m0, s0 = first
    for i, v in live:
        if type(v) is tuple:
            out += [_FLAG_SAMEFIELDS, _signed(i[0] - m0), _signed(i[1] - s0), *v, len(v) + 3]
        else:
            out += [0, _signed(i[0] - m0), _signed(i[1] - s0), len(v) // 2, *v, len(v) + 4]
    return listpack.encode(out)


def _length(n: int) -> bytes:
    return rdb.encode_length(n)


def _encode(s: Stream) -> bytes:
    parts = [bytes((RDB_STREAM_LISTPACKS_3,)), _length(s.node_count())]
    for k, mf, ids, vals in s.entries():
        parts.append(rdb.encode_string(_ID.pack(*s._firsts[k])))
        parts.append(rdb.encode_string(_node_listpack(s._firsts[k], mf, ids, vals)))
    parts += [_length(s.length), _length(s.last_id[0]), _length(s.last_id[1]),
              _length(s.first_id[0]), _length(s.first_id[1]),
              _length(s.max_deleted[0]), _length(s.max_deleted[1]), _length(s.entries_added)]
    groups = s.groups or {}
    parts.append(_length(len(groups)))
    for name, g in groups.items():
        parts += [rdb.encode_string(name), _length(g.last_id[0]), _length(g.last_id[1]),
                  _length(_INVALID if g.entries_read is None else g.entries_read), _length(len(g.pel))]
        for i, p in g.pel.items():
            parts += [_ID.pack(*i), _MS.pack(p.time), _length(p.count)]
        parts.append(_length(len(g.consumers)))
        for cname, cons in sorted(g.consumers.items()):
            parts += [rdb.encode_string(cname), _MS.pack(cons.seen), _MS.pack(cons.active), _length(len(cons.pel))]
            parts += [_ID.pack(*i) for i in cons.pel]
    return b"".join(parts)


# --- decoding ------------------------------------------------------------------------

class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos

    def length(self) -> int:
        n, self.pos, special = rdb.read_length(self.buf, self.pos)
        if special:
            raise rdb.PayloadError("stream: a length where an encoded string is")
        return n

    def string(self) -> bytes:
        s, self.pos = rdb.read_string(self.buf, self.pos)
        return s

    def raw(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise rdb.PayloadError("stream: payload ends early")
        b = self.buf[self.pos:end]
        self.pos = end
        return b

    def id(self):
        return _ID.unpack(self.raw(16))

    def ms(self) -> int:
        return _MS.unpack(self.raw(8))[0]


def _int(b: bytes) -> int:
    try:
        return int(b)
    except ValueError:
        raise rdb.PayloadError("stream listpack: an integer field is not one") from None


def _load_node(s: Stream, key: bytes, lp: bytes) -> None:
    if len(key) != 16:
        raise rdb.PayloadError("stream node key is not 16 bytes")
    first = _ID.unpack(key)
    try:
        e = listpack.decode(lp)
    except listpack.FormatError as err:
        raise rdb.PayloadError(f"stream listpack: {err}") from None
    try:
        live, dead, nf = _int(e[0]), _int(e[1]), _int(e[2])
        mf = tuple(e[3:3 + nf])
        if len(mf) != nf or e[3 + nf] != b"0":
            raise rdb.PayloadError("stream listpack: bad master entry")
        pos = 4 + nf
        ids, vals = [], []
        while pos < len(e):
            flags = _int(e[pos])
            i = ((first[0] + _int(e[pos + 1])) & UINT64_MAX, (first[1] + _int(e[pos + 2])) & UINT64_MAX)
            pos += 3
            if flags & _FLAG_SAMEFIELDS:
                v = tuple(e[pos:pos + nf])
                pos += nf
                want = nf + 3
            else:
                n = _int(e[pos])
                v = list(e[pos + 1:pos + 1 + 2 * n])
                pos += 1 + 2 * n
                want = 2 * n + 4
            if _int(e[pos]) != want:
                raise rdb.PayloadError("stream listpack: entry count mismatch")
            pos += 1
            ids.append(i)
            vals.append(None if flags & _FLAG_DELETED else v)
    except IndexError:
        raise rdb.PayloadError("stream listpack: entry runs past the end") from None
    if not ids or sum(1 for v in vals if v is not None) != live or len(ids) != live + dead:
        raise rdb.PayloadError("stream listpack: counts do not add up")
    if ids != sorted(ids) or ids[0] < first or (s._lasts and ids[0] <= s._lasts[-1]):
        raise rdb.PayloadError("stream listpack: IDs out of order")
    s.add_node(first, mf, ids, vals, dead, ids[-1])
    s.set_tail_size(len(lp))


def _decoder(rdbtype: int):
    def decode(buf: bytes, pos: int):
        r = _Reader(buf, pos)
        s = Stream()
        for _ in range(r.length()):
            key = r.string()
            _load_node(s, key, r.string())
        length = r.length()
        if length != s.length:
            raise rdb.PayloadError("stream length does not match its entries")
        s.last_id = (r.length(), r.length())
        if rdbtype >= RDB_STREAM_LISTPACKS_2:
            s.first_id = (r.length(), r.length())
            s.max_deleted = (r.length(), r.length())
            s.entries_added = r.length()
        else:
            first = s.first_entry()
            s.first_id = first[0] if first else (0, 0)
            s.entries_added = s.length
        last = s.last_entry()
        if last is not None and last[0] > s.last_id:
            raise rdb.PayloadError("stream last ID is below its last entry")
        ngroups = r.length()
        if ngroups:
            s.groups = {}
        for _ in range(ngroups):
            name = r.string()
            g_last = (r.length(), r.length())
            if rdbtype >= RDB_STREAM_LISTPACKS_2:
                er = r.length()
                entries_read = None if er == _INVALID else er
            else:
                entries_read = None
            g = Group(g_last, entries_read)
            if rdbtype < RDB_STREAM_LISTPACKS_2:
                g.entries_read = estimate_read(s, g_last)
            unowned = {}
            for _ in range(r.length()):
                i = r.id()
                t = r.ms()
                unowned[i] = Pending(None, t, r.length())
            for _ in range(r.length()):
                cname = r.string()
                cons = Consumer(cname, r.ms())
                cons.active = r.ms() if rdbtype >= RDB_STREAM_LISTPACKS_3 else cons.seen
                for _ in range(r.length()):
                    i = r.id()
                    p = unowned.pop(i, None)
                    if p is None:
                        raise rdb.PayloadError("stream consumer owns an ID its group has not pending")
                    p.consumer = cons
                    g.pel[i] = p
                    cons.pel.add(i)
                if cname in g.consumers:
                    raise rdb.PayloadError("duplicate stream consumer")
                g.consumers[cname] = cons
            if unowned:
                raise rdb.PayloadError("stream PEL entry owned by no consumer")
            if name in s.groups:
                raise rdb.PayloadError("duplicate stream consumer group")
            s.groups[name] = g
        if s.groups is not None:
            s.groups = dict(sorted(s.groups.items()))
        return s, r.pos

    return decode


rdb.register_encoder(Stream, _encode)
for _t in (RDB_STREAM_LISTPACKS, RDB_STREAM_LISTPACKS_2, RDB_STREAM_LISTPACKS_3):
    rdb.register_decoder(_t, _decoder(_t))
