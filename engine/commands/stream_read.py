"""XREAD and XREADGROUP, blocking or not.

Both read, per stream, the entries after an ID: XREAD's given ID (``$``: the
stream's last ID when the command ran; ``+``: just before its last entry,
Redis 7.4's form), XREADGROUP's ``>`` (after the group's last-delivered
ID: new entries, delivered and added to the PEL unless NOACK) or a history
ID (the consumer's own pending entries after it, their delivery count
raised; an entry deleted since is returned as ``[id, nil]``).

Blocking (``engine.commands.blocking``): with BLOCK, a read that finds
nothing returns a ``WouldBlock`` on its keys whose attempt runs the same
read again with the IDs resolved when the command ran (``$`` stays the ID it
named then). XREAD waits for kind ``stream``: a key deleted or of another
type wakes nobody. XREADGROUP waits for kind ``stream-group``: any change to
the key reruns it, so a stream deleted (or replaced) ends the wait with
``-UNBLOCKED the stream key no longer exists`` and a group destroyed with
``-NOGROUP the consumer group this client was blocked on no longer exists``,
Redis's words. Inside MULTI or a script the reply is the
non-blocking one (a nil array). A history read never blocks.

Effects, as Redis propagates XREADGROUP: one ``XCLAIM key group consumer 0
id TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <last id>`` per delivered
entry (none under NOACK), then ``XGROUP SETID key group <last id>
ENTRIESREAD <n>`` when ``>`` moved the group; ``XGROUP CREATECONSUMER``
first for a consumer it creates. XREAD journals nothing.
"""

from __future__ import annotations

from itertools import chain, repeat

from hiredis import pack_command as _pack

from engine import errors
from engine.commands.blocking import WAIT, WouldBlock
from engine.commands.stream import get_stream, parse_id, remember_ids
from engine.commands.stream_groups import claim_effect, consumer, nogroup
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import keyword_spec
from engine.registry import command
from engine.reply import NULL_ARRAY, Raw
from engine.types.stream import MAX_ID, UINT64_MAX, Stream, fields_of, format_id
from engine.types.stream_group import Pending, estimate_read, has_tombstones
from engine.util import INT64_MAX, to_int_or_none

UNBALANCED = ("ERR Unbalanced '{}' list of streams: for each stream key an ID or '{}' must be specified.")
DOLLAR_IN_GROUP = ("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of "
                   "this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would "
                   "just return an empty result set.")
GT_WITHOUT_GROUP = ("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
                    "<consumer> option.")
MISSING_GROUP = "ERR Missing GROUP option for XREADGROUP"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
UNBLOCKED_NO_KEY = "UNBLOCKED the stream key no longer exists"
UNBLOCKED_NO_GROUP = "NOGROUP the consumer group this client was blocked on no longer exists"
_NEW = object()  # XREADGROUP's ">"
_WHERE = " in XREADGROUP with GROUP option"


def _after(i):
    """The smallest ID greater than ``i`` (None past the last possible one)."""
    if i[1] < UINT64_MAX:
        return i[0], i[1] + 1
    if i[0] < UINT64_MAX:
        return i[0] + 1, 0
    return None


def _block_ms(arg: bytes) -> int:
    ms = to_int_or_none(arg)
    if ms is None:
        raise CommandError(TIMEOUT_NOT_INTEGER)
    if ms < 0:
        raise CommandError(errors.NEGATIVE_TIMEOUT)
    return ms


def _parse(argv: list, grouped: bool):
    """(count, block ms or None, noack, group, consumer, keys, id args)."""
    n = len(argv)
    if (grouped and n == 9 and argv[1].upper() == b"GROUP" and argv[4].upper() == b"COUNT"
            and argv[6].upper() == b"STREAMS"):  # a consumer's usual read, what the loop below makes of it
        v = to_int_or_none(argv[5])
        if v is None:
            raise CommandError(errors.NOT_INTEGER)
        return max(v, 0), None, False, argv[2], argv[3], argv[7:8], argv[8:]
    name = "xreadgroup" if grouped else "xread"
    count = 0
    block = None
    noack = False
    group = cname = None
    i = 1
    streams = 0
    while i < n:
        w = argv[i].upper()
        more = n - i - 1
        if w == b"BLOCK" and more:
            block = _block_ms(argv[i + 1])
            i += 2
        elif w == b"COUNT" and more:
            v = to_int_or_none(argv[i + 1])
            if v is None:
                raise CommandError(errors.NOT_INTEGER)
            count = max(v, 0)
            i += 2
        elif w == b"STREAMS" and more:
            streams = i + 1
            if (n - streams) % 2:
                raise CommandError(UNBALANCED.format(name, ">" if grouped else "$"))
            break
        elif grouped and w == b"GROUP" and more >= 2:
            group, cname = argv[i + 1], argv[i + 2]
            i += 3
        elif grouped and w == b"NOACK":
            noack = True
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
    if not streams:
        raise CommandError(errors.SYNTAX)
    if grouped and group is None:
        raise CommandError(MISSING_GROUP)
    half = (n - streams) // 2
    return count, block, noack, group, cname, argv[streams:streams + half], argv[streams + half:]


def _deadline(block: int) -> int:
    if not block:
        return 0
    now = now_ms()
    if block > INT64_MAX - now:
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
    return now + block


# An entry of a node's master fields encodes as one template filled by ``%``:
# ``*2 $<id>`` then the fields, their names baked in (``%`` doubled), each
# value a ``$%d %s`` slot. Templates are kept per master field list.
_TEMPLATES: dict = {}


def _template(mf) -> bytes:
    t = _TEMPLATES.get(mf)
    if t is None:
        if len(_TEMPLATES) >= 1024:
            _TEMPLATES.clear()
        parts = [b"*2\r\n$%%d\r\n%%s\r\n*%d\r\n" % (2 * len(mf))]
        for f in mf:
            parts.append(b"$%d\r\n%s\r\n$%%d\r\n%%s\r\n" % (len(f), f.replace(b"%", b"%%")))
        t = _TEMPLATES[mf] = b"".join(parts)
    return t


def _encode_chunks(chunks, idbs) -> bytes:
    """The RESP of ``[[id, [field, value, ...]], ...]`` for ``Stream.slices`` chunks whose
    formatted IDs are ``idbs`` (all chunks' in a row): the same bytes in RESP2 and RESP3."""
    out = [b"*%d\r\n" % len(idbs)]
    push = out.append
    at = 0
    for mf, ids, vals in chunks:
        t = _template(mf)
        n = len(mf)
        cut = idbs[at:at + len(ids)] if at or len(chunks) > 1 else idbs
        at += len(ids)
        for idb, v in zip(cut, vals):
            if type(v) is not tuple:  # other fields than the master's: [f, v, ...]
                push(b"*2\r\n$%d\r\n%s\r\n" % (len(idb), idb) + _pack(tuple(v)))
            elif n == 2:
                a, b = v
                push(t % (len(idb), idb, len(a), a, len(b), b))
            elif n == 1:
                a, = v
                push(t % (len(idb), idb, len(a), a))
            else:
                push(t % (len(idb), idb, *chain.from_iterable(zip(map(len, v), v))))
    return b"".join(out)


def _ids_of(chunks) -> list:
    return chunks[0][1] if len(chunks) == 1 else [i for ch in chunks for i in ch[1]]


def _reply(c, out: list):
    """``[[key, entries], ...]`` (a map in RESP3) of ``(key, encoded entries)`` pairs, or nil."""
    if not out:
        return NULL_ARRAY
    if not all(type(v) is bytes for _, v in out):  # a history read's entries (lists) among them
        pairs = [(k, Raw(v) if type(v) is bytes else v) for k, v in out]
        return dict(pairs) if c.protocol == 3 else [[k, v] for k, v in pairs]
    if c.protocol == 3:
        parts = [b"%%%d\r\n" % len(out)]
        for k, v in out:
            parts.append(b"$%d\r\n%s\r\n" % (len(k), k))
            parts.append(v)
    else:
        parts = [b"*%d\r\n" % len(out)]
        for k, v in out:
            parts.append(b"*2\r\n$%d\r\n%s\r\n" % (len(k), k))
            parts.append(v)
    return Raw(b"".join(parts))


# --- XREAD ---------------------------------------------------------------------------

@command("xread", -4, "readonly blocking movablekeys", (0, 0, 0), "@read @stream @slow @blocking", group="stream",
         summary="Return never seen elements in multiple streams, with IDs greater than the ones reported by the "
         "caller for each stream. Can block.", since="5.0.0", fast_path=False,
         key_specs=(keyword_spec("RO access", "STREAMS", 1, last=-1, limit=2),))
def xread(c, argv):
    """XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...] -- [[key, entries], ...] or nil. O(log N + M)."""
    count, block, _, _, _, keys, id_args = _parse(argv, False)
    starts = []
    for key, a in zip(keys, id_args):
        s = get_stream(c, key)
        if a == b"$":
            starts.append(_after(s.last_id) if s is not None else (0, 1))
        elif a == b">":
            raise CommandError(GT_WITHOUT_GROUP)
        elif a == b"+":
            last = s.last_entry() if s is not None else None
            starts.append(last[0] if last is not None else (0, 1))
        else:
            starts.append(_after(parse_id(a, strict=True)))

    def attempt(c):
        out = []
        for key, start in zip(keys, starts):
            s = get_stream(c, key)
            if s is None or start is None:
                continue
            chunks = s.slices(start, count)
            if chunks:
                out.append((key, _encode_chunks(chunks, [b"%d-%d" % i for i in _ids_of(chunks)])))
        return _reply(c, out) if out or block is None else WAIT

    r = attempt(c)
    if r is WAIT:
        return WouldBlock(keys, "stream", _deadline(block), attempt, NULL_ARRAY)
    return r


# --- XREADGROUP ------------------------------------------------------------------------

def _read_new(c, key, gname, g, cname, s, count: int, noack: bool, now: int):
    """The encoded entries after the group's last ID (None when there are none), delivered."""
    start = _after(g.last_id)
    chunks = s.slices(start, count) if start is not None else None
    if not chunks:
        return None  # nothing new: the consumer is not even created (Redis creates it to serve)
    cons = consumer(c, key, gname, g, cname, now)
    ids = _ids_of(chunks)
    if g.entries_read is not None and not has_tombstones(s, ids[0]):
        g.entries_read += len(ids)  # no deletion ahead of the first: none ahead of any
    else:
        for i in ids:
            if g.entries_read is not None and not has_tombstones(s, i):
                g.entries_read += 1
            elif s.entries_added:
                g.entries_read = estimate_read(s, i)
    idbs = [b"%d-%d" % i for i in ids]
    reply = _encode_chunks(chunks, idbs)
    if not noack:
        remember_ids(idbs, ids)  # for their XACK
        pel = g.pel
        if pel.beyond(ids[0]):  # none of them pending: a work queue's delivery
            pel.put_many(ids, [Pending(cons, now, 1) for _ in ids])
        else:
            pending = pel.map
            for i in ids:
                p = pending.get(i)
                if p is None:
                    pel[i] = Pending(cons, now, 1)
                else:  # delivered before (the group was moved back): taken over, its count reset
                    if p.consumer is not cons:
                        p.consumer.pel.discard(i)
                        p.consumer = cons
                    p.time = now
                    p.count = 1
        cons.pel.put_many(ids, repeat(True))
        nowb = b"%d" % now
        dbi = c.db.index
        c.ks.effects.extend([(dbi, [b"XCLAIM", key, gname, cname, b"0", idb, b"TIME", nowb, b"RETRYCOUNT", b"1",
                                    b"FORCE", b"JUSTID", b"LASTID", idb]) for idb in idbs])
    g.last_id = ids[-1]
    c.emit([b"XGROUP", b"SETID", key, gname, idbs[-1],
            *([b"ENTRIESREAD", b"%d" % g.entries_read] if g.entries_read is not None else [])])
    cons.active = now
    c.db.touched(key)
    return reply


def _read_history(c, key, gname, g, cons, s, start, count: int, now: int) -> list:
    out = []
    if start is None:
        return out
    for i in cons.pel.irange(start, MAX_ID):
        p = g.pel[i]
        e = s.get(i)
        if e is None:
            out.append([format_id(i), None])
        else:
            out.append([format_id(i), fields_of(e[1], e[0])])
        p.time = now
        p.count += 1
        c.emit(claim_effect(key, gname, cons.name, i, p, g))
        if len(out) == count:
            break
    if out:
        cons.active = now
        c.db.touched(key)
    return out


@command("xreadgroup", -7, "write blocking movablekeys", (0, 0, 0), "@write @stream @slow @blocking", group="stream",
         summary="Return new entries from a stream using a consumer group, or access the history of the pending "
         "entries for a given consumer. Can block.", since="5.0.0", fast_path=False,
         key_specs=(keyword_spec("RO access", "STREAMS", 4, last=-1, limit=2),))
def xreadgroup(c, argv):
    """XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key [key ...] id [id ...]
    -- [[key, entries], ...] or nil. O(log N + M)."""
    count, block, noack, gname, cname, keys, id_args = _parse(argv, True)
    starts = []
    for key, a in zip(keys, id_args):
        s = get_stream(c, key)
        if s is None or s.group(gname) is None:
            raise nogroup(key, gname, _WHERE)
        if a == b">":
            starts.append(_NEW)
        elif a == b"$":
            raise CommandError(DOLLAR_IN_GROUP)
        else:
            starts.append(_after(parse_id(a, strict=True)))
    history = any(st is not _NEW for st in starts)

    def read(c, parked: bool):
        now = now_ms()
        out = []
        for key, start in zip(keys, starts):
            if parked:
                s = c.db.get(key)
                if type(s) is not Stream:
                    raise CommandError(UNBLOCKED_NO_KEY)
                g = s.group(gname)
                if g is None:
                    raise CommandError(UNBLOCKED_NO_GROUP)
            else:
                s = get_stream(c, key)
                g = s.group(gname)
            if start is _NEW:
                entries = _read_new(c, key, gname, g, cname, s, count, noack, now)
                if entries is not None:
                    out.append((key, entries))
            else:
                cons = consumer(c, key, gname, g, cname, now)
                out.append((key, _read_history(c, key, gname, g, cons, s, start, count, now)))
        if out or block is None or history:
            return _reply(c, out)
        return WAIT

    r = read(c, False)
    if r is WAIT:
        return WouldBlock(keys, "stream-group", _deadline(block), lambda c: read(c, True), NULL_ARRAY)
    return r
