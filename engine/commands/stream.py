"""Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID.

(XINFO is in ``engine.commands.stream_info``, XREAD/XREADGROUP in
``stream_read``, consumer groups in ``stream_groups``.)

IDs are read as Redis reads them (``parse_id``): ``ms-seq`` or ``ms``, each
part an unsigned 64-bit integer as ``string2ull`` takes it (a canonical
integer, else what ``strtoull`` accepts whole: leading blanks, a sign,
leading zeros), at most 127 bytes; ``-`` and ``+`` where a range allows
them, ``ms-*`` in XADD only.

Effects, as Redis propagates them: XADD journals the ID it chose (``*`` and
``ms-*`` replaced by it) and, when it trimmed with ``~``, the exact trim
that happened (``MAXLEN = <length after>``, or ``MINID = <first ID>``);
XTRIM with ``~`` likewise; the others as sent; a command that changed
nothing journals nothing.

Keyspace events (class ``t``): ``xadd``, then ``xtrim`` when XADD trimmed;
``xtrim``; ``xdel``; ``xsetid``.
"""

from __future__ import annotations

from itertools import repeat

from engine import errors
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.notify import STREAM
from engine.registry import command
from engine.reply import EMPTY_ARRAY, NULL_ARRAY, OK
from engine.types import stream_rdb  # noqa: F401  (registers the RDB codec)
from engine.types.stream import MAX_ID, MIN_ID, UINT64_MAX, Stream, fields_of, format_id
from engine.util import parse_int

INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
XADD_SMALLER = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
XADD_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
LIMIT_NO_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
LIMIT_NO_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
BOTH_STRATEGIES = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
BAD_START = "ERR invalid start ID for the interval"
BAD_END = "ERR invalid end ID for the interval"
NO_SUCH_KEY = "ERR no such key"
XSETID_SMALLER = "ERR The ID specified in XSETID is smaller than the target stream top item"
XSETID_ADDED_SMALLER = "ERR The entries_added specified in XSETID is smaller than the target stream length"
XSETID_MAXDEL = "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"

_BLANKS = b" \t\n\v\f\r"
_SEQ_STAR = object()  # "ms-*": the sequence is to be generated


def _u64(b: bytes):
    """An unsigned 64-bit integer as Redis's string2ull reads it, or None."""
    if not b:
        return None
    if b.isdigit():
        v = int(b)
        return v if v <= UINT64_MAX else None
    s = b.lstrip(_BLANKS)
    neg = s[:1] == b"-"
    if s[:1] in (b"-", b"+"):
        s = s[1:]
    if not s.isdigit() or not s.isascii():
        return None
    v = int(s)
    if v > UINT64_MAX:
        return None
    if neg:
        if b[:1] == b"-" and v:
            return None  # a plain negative integer (string2ll reads it first)
        v = (-v) & UINT64_MAX
    return v


def parse_id(b: bytes, missing_seq: int = 0, strict: bool = False, star: bool = False):
    """An ID ``(ms, seq)``; ``-``/``+`` unless ``strict``; ``(ms, _SEQ_STAR)``
    for ``ms-*`` when ``star``; CommandError(INVALID_ID) otherwise."""
    ms_b, dash, seq_b = b.partition(b"-")
    if dash and ms_b.isdigit() and seq_b.isdigit() and len(b) < 42:  # the canonical form, at once
        ms, seq = int(ms_b), int(seq_b)
        if ms <= UINT64_MAX and seq <= UINT64_MAX:
            return ms, seq
    if not strict and len(b) == 1:
        if b == b"-":
            return MIN_ID
        if b == b"+":
            return MAX_ID
    if len(b) > 127:
        raise CommandError(INVALID_ID)
    dash = b.find(b"-")
    if dash < 0:
        ms = _u64(b)
        if ms is None:
            raise CommandError(INVALID_ID)
        return ms, missing_seq
    ms = _u64(b[:dash])
    rest = b[dash + 1:]
    if ms is None:
        raise CommandError(INVALID_ID)
    if star and rest == b"*":
        return ms, _SEQ_STAR
    seq = _u64(rest)
    if seq is None:
        raise CommandError(INVALID_ID)
    return ms, seq


# The text of IDs XREADGROUP delivered lately -> the ID: XACK sends them back
# byte for byte, and a dict lookup costs a fraction of reading two integers.
# A memo of parse_id and nothing more (each key is exactly ``b"%d-%d" % its
# value``): an ID found in it is the one parse_id reads, and one not found is
# parsed. Taken out when used; cleared when it outgrows DELIVERED_MAX (IDs
# delivered and never acknowledged).
DELIVERED: dict = {}
DELIVERED_MAX = 4096


def remember_ids(texts: list, ids: list) -> None:
    """Note ``texts[k]`` as the canonical text of ``ids[k]`` (see DELIVERED)."""
    if len(DELIVERED) > DELIVERED_MAX:
        DELIVERED.clear()
    DELIVERED.update(zip(texts, ids))


def parse_ids(argv: list, start: int) -> list:
    """The strict IDs ``argv[start:]`` (XDEL's, XACK's): delivered ones from DELIVERED,
    canonical ``ms-seq`` read inline."""
    args = argv[start:]
    got = list(map(DELIVERED.pop, args, repeat(None)))
    if None not in got:
        return got
    out = []
    for a, i in zip(args, got):
        if i is not None:
            out.append(i)
            continue
        ms_b, dash, seq_b = a.partition(b"-")
        if dash and ms_b.isdigit() and seq_b.isdigit() and len(a) < 42:
            i = (int(ms_b), int(seq_b))
            if i[0] <= UINT64_MAX and i[1] <= UINT64_MAX:
                out.append(i)
                continue
        out.append(parse_id(a, strict=True))
    return out


def parse_range_bound(b: bytes, start: bool):
    """A range bound of XRANGE/XPENDING/XAUTOCLAIM: ``-``, ``+``, an ID, or ``(ID``."""
    if b[:1] == b"(" and len(b) > 1:
        i = parse_id(b[1:], 0 if start else UINT64_MAX, strict=True)
        if start:
            if i == MAX_ID:
                raise CommandError(BAD_START)
            return (i[0], i[1] + 1) if i[1] < UINT64_MAX else (i[0] + 1, 0)
        if i == MIN_ID:
            raise CommandError(BAD_END)
        return (i[0], i[1] - 1) if i[1] else (i[0] - 1, UINT64_MAX)
    return parse_id(b, 0 if start else UINT64_MAX)


def get_stream(c, key: bytes):
    """The stream under ``key``, None when missing, WRONGTYPE otherwise."""
    v = c.db.get(key)
    if v is None or type(v) is Stream:
        return v
    raise CommandError(errors.WRONGTYPE)


def entry_reply(i, v, mf) -> list:
    return [format_id(i), fields_of(mf, v)]


def entries_reply(rows) -> list:
    return [[format_id(i), fields_of(mf, v)] for i, v, mf in rows]


# --- trimming options --------------------------------------------------------------

class Trim:
    """MAXLEN/MINID [=|~] threshold [LIMIT n] as parsed."""

    __slots__ = ("maxlen", "minid", "approx", "limit", "limit_given")

    def __init__(self):
        self.maxlen = None
        self.minid = None
        self.approx = False
        self.limit = 0
        self.limit_given = False

    @property
    def given(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def parse_trim_option(argv: list, i: int, t: Trim) -> int:
    """Parse the option at ``argv[i]`` if it is one: the index after it, or -1."""
    word = argv[i].upper()
    more = len(argv) - 1 - i
    if word in (b"MAXLEN", b"MINID") and more >= 1:
        j = i + 1
        if argv[j] in (b"~", b"=") and more >= 2:
            t.approx = argv[j] == b"~"
            j += 1
        if word == b"MAXLEN":
            if t.given:
                raise CommandError(BOTH_STRATEGIES)
            n = parse_int(argv[j])
            if n < 0:
                raise CommandError(MAXLEN_NEGATIVE)
            t.maxlen = n
        else:
            if t.given:
                raise CommandError(BOTH_STRATEGIES)
            t.minid = parse_id(argv[j], strict=True)
        return j + 1
    if word == b"LIMIT" and more >= 1:
        n = parse_int(argv[i + 1])
        if n < 0:
            raise CommandError(LIMIT_NEGATIVE)
        t.limit = n
        t.limit_given = True
        return i + 2
    return -1


def check_trim(c, t: Trim) -> None:
    if t.limit_given and not t.given:
        raise CommandError(LIMIT_NO_STRATEGY)
    if t.limit_given and not t.approx:
        raise CommandError(LIMIT_NO_APPROX)
    if t.approx and not t.limit_given:
        t.limit = 100 * (c.ks.limits.stream_node_max_entries or 100)
    if not t.approx:
        t.limit = 0


def apply_trim(s: Stream, t: Trim) -> int:
    return s.trim(t.maxlen, t.minid, t.approx, t.limit)


def trim_effect(s: Stream, t: Trim) -> list:
    """The trimming arguments that replay what happened (exact)."""
    if t.approx:
        if t.minid is not None and s.length:
            return [b"MINID", b"=", format_id(s.first_id)]
        return [b"MAXLEN", b"=", b"%d" % s.length]
    if t.maxlen is not None:
        return [b"MAXLEN", b"=", b"%d" % t.maxlen]
    return [b"MINID", b"=", format_id(t.minid)]


# --- XADD ----------------------------------------------------------------------

def next_id(s: Stream | None, want):
    """The ID XADD adds: ``want`` None for ``*``; CommandError when it cannot grow."""
    last = s.last_id if s is not None else MIN_ID
    if last == MAX_ID:
        raise CommandError(EXHAUSTED)
    if want is None:
        now = now_ms()
        if now > last[0]:
            return now, 0
        if last[1] < UINT64_MAX:
            return last[0], last[1] + 1
        return last[0] + 1, 0
    ms, seq = want
    if seq is _SEQ_STAR:
        if ms == last[0]:
            if last[1] == UINT64_MAX:
                raise CommandError(XADD_SMALLER)
            return ms, last[1] + 1
        if ms < last[0]:
            raise CommandError(XADD_SMALLER)
        return ms, 0
    if want <= last:
        raise CommandError(XADD_SMALLER)
    return want


def add_entry(c, s: Stream, i, fv) -> None:
    lim = c.ks.limits
    s.append(i, fv, lim.stream_node_max_bytes, lim.stream_node_max_entries)


@command("xadd", -5, "write denyoom fast", (1, 1, 1), "@write @stream @fast", group="stream",
         summary="Appends a new entry to a stream", since="5.0.0", tips="nondeterministic_output",
         key_specs=(spec("RW update", notes="UPDATE instead of INSERT because of the optional trimming feature"),))
def xadd(c, argv):
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [...] -- the ID. O(1)."""
    n = len(argv)
    key = argv[1]
    if argv[2] == b"*" and n % 2:
        # XADD key * field value ...: the common form, on an existing stream, written out
        db = c.db
        s = db.data.get(key)
        if type(s) is Stream and not (db.expires and key in db.expires):
            new_id = next_id(s, None)
            fv = argv[3:]
            add_entry(c, s, new_id, fv)
            db.touched(key)
            idb = b"%d-%d" % new_id
            c.emit([b"XADD", key, idb, *fv])
            if c.ks.notify_flags:
                c.notify(STREAM, b"xadd", key)
            return idb
    i = 2
    t = None
    nomk = False
    want = None
    while i < n:
        a = argv[i]
        if a == b"*":
            break
        if a[:1].isalpha():
            if t is None:
                t = Trim()
            j = parse_trim_option(argv, i, t)
            if j >= 0:
                i = j
                continue
            if a.upper() == b"NOMKSTREAM":
                nomk = True
                i += 1
                continue
        want = parse_id(a, strict=True, star=True)
        break
    if t is not None:
        check_trim(c, t)
        if not t.given:
            t = None
    fields = n - i - 1
    if fields < 2 or fields % 2:
        raise CommandError(errors.WRONG_ARITY.format("xadd"))
    if want == MIN_ID:
        raise CommandError(XADD_ZERO)
    s = get_stream(c, key)
    if s is None and nomk:
        return None
    new_id = next_id(s, want)
    fv = argv[i + 1:]
    if s is None:
        s = Stream()
        add_entry(c, s, new_id, fv)
        c.db.set(key, s)
    else:
        add_entry(c, s, new_id, fv)
        c.db.touched(key)
    idb = format_id(new_id)
    trimmed = apply_trim(s, t) if t is not None else 0
    if trimmed:
        c.emit([b"XADD", key, *trim_effect(s, t), idb, *fv])
    else:
        c.emit([b"XADD", key, idb, *fv])
    if c.ks.notify_flags:
        c.notify(STREAM, b"xadd", key)
        if trimmed:
            c.notify(STREAM, b"xtrim", key)
    return idb


# --- XLEN / XRANGE / XREVRANGE -----------------------------------------------------

@command("xlen", 2, "readonly fast", (1, 1, 1), "@read @stream @fast", group="stream",
         summary="Return the number of entries in a stream", since="5.0.0", key_specs=(spec("RO"),))
def xlen(c, argv):
    """XLEN key -- the number of entries, 0 for a missing key. O(1)."""
    s = get_stream(c, argv[1])
    return 0 if s is None else s.length


def _range_generic(c, argv, rev: bool):
    lo_arg, hi_arg = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    lo = parse_range_bound(lo_arg, True)
    hi = parse_range_bound(hi_arg, False)
    count = 0
    given = False
    i = 4
    n = len(argv)
    while i < n:
        if argv[i].upper() == b"COUNT" and i + 1 < n:
            count = parse_int(argv[i + 1])
            given = True
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    s = get_stream(c, argv[1])
    if s is None:
        return EMPTY_ARRAY
    if given and count <= 0:
        return NULL_ARRAY
    return entries_reply(s.range(lo, hi, count, rev))


@command("xrange", -4, "readonly", (1, 1, 1), "@read @stream @slow", group="stream",
         summary="Return a range of elements in a stream, with IDs matching the specified IDs interval",
         since="5.0.0", key_specs=(spec("RO access"),))
def xrange(c, argv):
    """XRANGE key start end [COUNT count] -- entries in ID order. O(log N + M)."""
    return _range_generic(c, argv, False)


@command("xrevrange", -4, "readonly", (1, 1, 1), "@read @stream @slow", group="stream",
         summary="Return a range of elements in a stream, with IDs matching the specified IDs interval, in "
         "reverse order (from greater to smaller IDs) compared to XRANGE", since="5.0.0",
         key_specs=(spec("RO access"),))
def xrevrange(c, argv):
    """XREVRANGE key end start [COUNT count] -- entries in reverse ID order. O(log N + M)."""
    return _range_generic(c, argv, True)


# --- XDEL / XTRIM / XSETID ------------------------------------------------------------

@command("xdel", -3, "write fast", (1, 1, 1), "@write @stream @fast", group="stream",
         summary="Removes the specified entries from the stream. Returns the number of items actually deleted, "
         "that may be different from the number of IDs passed in case certain IDs do not exist.",
         since="5.0.0", key_specs=(spec("RW delete"),))
def xdel(c, argv):
    """XDEL key id [id ...] -- how many entries were deleted. O(log N) each."""
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        return 0
    ids = parse_ids(argv, 2)  # all before the first deletion
    n = 0
    for i in ids:
        if s.delete(i):
            n += 1
    if n:
        c.db.touched(key)
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(STREAM, b"xdel", key)
    return n


@command("xtrim", -4, "write", (1, 1, 1), "@write @stream @slow", group="stream",
         summary="Trims the stream to (approximately if '~' is passed) a certain size", since="5.0.0",
         tips="nondeterministic_output", key_specs=(spec("RW delete"),))
def xtrim(c, argv):
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count] -- how many entries went. O(N) in those."""
    t = Trim()
    i = 2
    while i < len(argv):
        j = parse_trim_option(argv, i, t)
        if j < 0:
            raise CommandError(errors.SYNTAX)
        i = j
    check_trim(c, t)
    if not t.given:
        raise CommandError(errors.SYNTAX)
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        return 0
    n = apply_trim(s, t)
    if n:
        c.db.touched(key)
        c.emit([b"XTRIM", key, *trim_effect(s, t)])
        if c.ks.notify_flags:
            c.notify(STREAM, b"xtrim", key)
    return n


@command("xsetid", -3, "write denyoom fast", (1, 1, 1), "@write @stream @fast", group="stream",
         summary="An internal command for replicating stream values", since="5.0.0",
         key_specs=(spec("RW update"),))
def xsetid(c, argv):
    """XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id] -- OK. O(1)."""
    new = parse_id(argv[2], strict=True)
    added_n = None
    maxdel = None
    i = 3
    n = len(argv)
    while i < n:
        w = argv[i].upper()
        if w == b"ENTRIESADDED" and i + 1 < n:
            added_n = parse_int(argv[i + 1])
            if added_n < 0:
                raise CommandError(ENTRIES_ADDED_NEGATIVE)
        elif w == b"MAXDELETEDID" and i + 1 < n:
            maxdel = parse_id(argv[i + 1], strict=True)
            if new < maxdel:
                raise CommandError(XSETID_MAXDEL)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    key = argv[1]
    s = get_stream(c, key)
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    if s.length:
        last = s.last_entry()[0]
        if new < last:
            raise CommandError(XSETID_SMALLER)
        if added_n is not None and s.length > added_n:
            raise CommandError(XSETID_ADDED_SMALLER)
    s.last_id = new
    if added_n is not None:
        s.entries_added = added_n
    if maxdel is not None and maxdel != MIN_ID:
        s.max_deleted = maxdel
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STREAM, b"xsetid", key)
    return OK
