"""Generic key commands: DEL, UNLINK, EXISTS, TYPE, TOUCH, RENAME, RENAMENX,
MOVE, COPY, KEYS, SCAN, RANDOMKEY, OBJECT.

They work on any value without looking inside it: type names, encodings and
copies come from ``engine.types``. Every argument is validated before the first
change. Effects: DEL/UNLINK journal ``DEL`` of the keys actually removed;
RENAME/RENAMENX journal ``RENAME src dst``; MOVE and COPY journal themselves
(they carry their database numbers); nothing is journaled when nothing changed.

SCAN
----
Redis's cursor walks its hash table in reverse-bit order, which survives
rehashing. A Python dict offers no stable position, so Keel takes a snapshot:
SCAN 0 copies the database's key list (``list(db.data)``, one C-speed pass)
into a ``ScanRegistry``, and the cursor it returns encodes (position,
snapshot id) as ``position << 32 | id``. Each call examines the next COUNT
snapshot entries and returns those that still exist, have not expired and pass
MATCH / TYPE. A key present for the whole scan is therefore returned exactly
once; a key added during the scan may or may not be; a deleted one is not.
The registry keeps the 32 most recently used snapshots per keyspace (LRU), so
memory is bounded by 32 key lists; a snapshot is dropped as soon as its scan
reaches the end. A cursor whose snapshot was evicted, belongs to another
database, or was never issued starts a fresh snapshot from the beginning:
SCAN's contract allows duplicates, never misses. (A client that lets more
than 32 other scans start between two of its calls restarts its scan.)

OBJECT
------
Keel keeps no per-key access clock or counter: either would cost a clock read
and a store on every read command. So OBJECT FREQ answers Redis's own "LFU
policy not selected, access frequency not tracked" error (true of Keel
whatever ``maxmemory-policy`` says), and OBJECT IDLETIME reports 0 — "not
known to be idle" — so that tools that act on idle keys take no action on
invented data. OBJECT REFCOUNT reports what Redis reports for the same value
(its shared integers 0..9999 show 2147483647, everything else 1), and OBJECT
ENCODING what Redis would use to store it (for strings: int, embstr up to 44
bytes, raw beyond and once written in place; see ``engine.types``).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from itertools import islice

from engine import errors, glob
from engine.commands.db import parse_db_index
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import INTS, OK, ONE, ZERO, Raw, help_lines
from engine.types import copy_value, encoding, is_int_string, type_name
from engine.util import parse_int

_NONE = Raw(b"+none\r\n")
_TYPE_REPLIES: dict[str, Raw] = {}


def _count(n: int):
    return INTS[n] if n < len(INTS) else n


# --- DEL, UNLINK, EXISTS, TOUCH, TYPE -----------------------------------------

def _del_generic(c, argv):
    db = c.db
    gone = [key for key in argv[1:] if db.delete(key)]
    if gone:
        c.emit([b"DEL", *gone])
    return _count(len(gone))


@command("del", -2, "write", (1, -1, 1), "@keyspace @write @slow")
def del_(c, argv):
    """DEL key [key ...] -- delete keys; the number deleted. O(N)."""
    return _del_generic(c, argv)


@command("unlink", -2, "write fast", (1, -1, 1), "@keyspace @write @fast", since="4.0.0")
def unlink(c, argv):
    """UNLINK key [key ...] -- DEL (Keel frees memory inline); the number deleted. O(N)."""
    return _del_generic(c, argv)


def _existing(c, argv) -> int:
    get = c.db.get
    return sum(1 for key in argv[1:] if get(key) is not None)


@command("exists", -2, "readonly fast", (1, -1, 1), "@keyspace @read @fast")
def exists(c, argv):
    """EXISTS key [key ...] -- how many of the keys exist, duplicates counted. O(N)."""
    return _count(_existing(c, argv))


@command("touch", -2, "readonly fast", (1, -1, 1), "@keyspace @read @fast", since="3.2.1")
def touch(c, argv):
    """TOUCH key [key ...] -- how many of the keys exist (Keel tracks no access time). O(N)."""
    return _count(_existing(c, argv))


@command("type", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast")
def type_(c, argv):
    """TYPE key -- the type of the value at key, or none. O(1)."""
    v = c.db.get(argv[1])
    if v is None:
        return _NONE
    name = type_name(v)
    r = _TYPE_REPLIES.get(name)
    if r is None:
        r = _TYPE_REPLIES[name] = Raw(b"+%s\r\n" % name.encode())
    return r


# --- RENAME, RENAMENX, MOVE, COPY ---------------------------------------------

def _rename_generic(c, argv, nx: bool):
    db = c.db
    src, dst = argv[1], argv[2]
    v = db.get(src)
    if v is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        return ZERO if nx else OK
    if nx and db.get(dst) is not None:
        return ZERO
    when = db.expires.get(src)
    db.delete(src)
    db.set(dst, v)
    if when is not None:
        db.set_expire(dst, when)
    c.emit([b"RENAME", src, dst])
    return ONE if nx else OK


@command("rename", 3, "write", (1, 2, 1), "@keyspace @write @slow")
def rename(c, argv):
    """RENAME key newkey -- move a value (and its TTL) to another name. O(1)."""
    return _rename_generic(c, argv, nx=False)


@command("renamenx", 3, "write fast", (1, 2, 1), "@keyspace @write @fast")
def renamenx(c, argv):
    """RENAMENX key newkey -- RENAME unless newkey exists; 1 if renamed. O(1)."""
    return _rename_generic(c, argv, nx=True)


@command("move", 3, "write fast", (1, 1, 1), "@keyspace @write @fast")
def move(c, argv):
    """MOVE key db -- move a key (and its TTL) to another database; 1 if moved. O(1)."""
    target = parse_db_index(c, argv[2])
    src = c.db
    if target == src.index:
        raise CommandError(errors.SAME_OBJECT)
    key = argv[1]
    v = src.get(key)
    if v is None:
        return ZERO
    dst = c.ks.dbs[target]
    if dst.get(key) is not None:
        return ZERO
    when = src.expires.get(key)
    dst.set(key, v)
    if when is not None:
        dst.set_expire(key, when)
    src.delete(key)
    c.emit([b"MOVE", key, argv[2]])
    return ONE


@command("copy", -3, "write denyoom", (1, 2, 1), "@keyspace @write @slow", since="6.2.0")
def copy(c, argv):
    """COPY source destination [DB db] [REPLACE] -- copy a value and its TTL; 1 if copied. O(N)."""
    src_db = c.db
    target = src_db.index
    replace = False
    i, n = 3, len(argv)
    while i < n:
        opt = argv[i].upper()
        if opt == b"REPLACE":
            replace = True
            i += 1
        elif opt == b"DB" and i + 1 < n:
            target = parse_db_index(c, argv[i + 1])
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    src, dst = argv[1], argv[2]
    if src == dst and target == src_db.index:
        raise CommandError(errors.SAME_OBJECT)
    v = src_db.get(src)
    if v is None:
        return ZERO
    dst_db = c.ks.dbs[target]
    if not replace and dst_db.get(dst) is not None:
        return ZERO
    when = src_db.expires.get(src)
    dst_db.set(dst, copy_value(v))
    if when is not None:
        dst_db.set_expire(dst, when)
    c.emit([b"COPY", *argv[1:]])
    return ONE


# --- KEYS, SCAN, RANDOMKEY ----------------------------------------------------

@command("keys", 2, "readonly", acl="@keyspace @read @slow @dangerous")
def keys(c, argv):
    """KEYS pattern -- every live key matching the glob pattern. O(N)."""
    db = c.db
    pattern = argv[1]
    if pattern == b"*":
        found = list(db.data)
    else:
        m = glob.compile(pattern)
        found = [key for key in db.data if m(key)]
    expires = db.expires
    if expires:
        # Due keys are skipped, not deleted: KEYS reads, it does not journal.
        now = now_ms()
        found = [key for key in found if expires.get(key, now + 1) > now]
    return found


class ScanRegistry:
    """SCAN's key snapshots: id -> (db index, key list), most recently used last."""

    LIMIT = 32
    __slots__ = ("snapshots", "next_id")

    def __init__(self):
        self.snapshots: OrderedDict[int, tuple[int, list]] = OrderedDict()
        self.next_id = 1

    def start(self, db) -> tuple[int, list]:
        snap_id = self.next_id
        self.next_id = snap_id + 1 if snap_id < 0xFFFFFFFF else 1
        keys_ = list(db.data)
        self.snapshots[snap_id] = (db.index, keys_)
        if len(self.snapshots) > self.LIMIT:
            self.snapshots.popitem(last=False)
        return snap_id, keys_

    def resume(self, db, snap_id: int) -> list | None:
        snap = self.snapshots.get(snap_id)
        if snap is None or snap[0] != db.index:
            return None
        self.snapshots.move_to_end(snap_id)
        return snap[1]

    def finish(self, snap_id: int) -> None:
        self.snapshots.pop(snap_id, None)


_U64 = 2**64


def parse_cursor(arg: bytes) -> int:
    """A SCAN cursor as Redis reads it (C ``strtoul``: sign allowed, wraps; empty is 0)."""
    s = arg
    if s[:1] in (b"+", b"-"):
        negative = s[:1] == b"-"
        s = s[1:]
        if not s:
            raise CommandError(errors.INVALID_CURSOR)
    else:
        negative = False
    if s and not s.isdigit():
        raise CommandError(errors.INVALID_CURSOR)
    v = int(s) if s else 0
    if v >= _U64:
        raise CommandError(errors.INVALID_CURSOR)
    return (_U64 - v) % _U64 if negative else v


def parse_scan_options(argv, start: int, allow_type: bool):
    """COUNT / MATCH / TYPE options of the SCAN family: (count, matcher or None, type or None)."""
    count = 10
    matcher = None
    type_filter = None
    i, n = start, len(argv)
    while i < n:
        opt = argv[i].upper()
        if i + 1 >= n:
            raise CommandError(errors.SYNTAX)
        arg = argv[i + 1]
        if opt == b"COUNT":
            count = _parse_count(arg)
        elif opt == b"MATCH":
            matcher = None if arg == b"*" else glob.compile(arg)
        elif opt == b"TYPE" and allow_type:
            type_filter = arg.decode("utf-8", "replace").lower()
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return count, matcher, type_filter


def _parse_count(arg: bytes) -> int:
    count = parse_int(arg)
    if count < 1:
        raise CommandError(errors.SYNTAX)
    return count


@command("scan", -2, "readonly", acl="@keyspace @read @slow", since="2.8.0")
def scan(c, argv):
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] -- [next cursor, keys]. O(COUNT) per call."""
    cursor = parse_cursor(argv[1])
    count, matcher, type_filter = parse_scan_options(argv, 2, allow_type=True)
    db = c.db
    reg = c.ks.scans
    if reg is None:
        reg = c.ks.scans = ScanRegistry()
    snap_id, pos = cursor & 0xFFFFFFFF, cursor >> 32
    keys_ = reg.resume(db, snap_id) if cursor else None
    if keys_ is None:
        snap_id, keys_ = reg.start(db)
        pos = 0
    end = pos + count
    out = []
    get = db.get
    for key in islice(keys_, pos, end):
        if matcher is not None and not matcher(key):
            continue
        v = get(key)
        if v is None or (type_filter is not None and type_name(v) != type_filter):
            continue
        out.append(key)
    if end >= len(keys_):
        reg.finish(snap_id)
        return [b"0", out]
    return [b"%d" % (end << 32 | snap_id), out]


@command("randomkey", 1, "readonly", acl="@keyspace @read @slow")
def randomkey(c, argv):
    """RANDOMKEY -- a random live key, or nil. Amortized O(1); see ``_key_sample``.

    Up to ``_RANDOM_TRIES`` picks from the sample: a key deleted since is
    skipped, a due one expired (as Redis expires those it meets). When none
    is live, it walks the dict from a random position to the first live key,
    expiring the due ones met on the way: nil only when no key is live.
    """
    db = c.db
    data = db.data
    if not data:
        return None
    keys = _key_sample(db, data)
    expires = db.expires
    pick = random.randrange
    for _ in range(_RANDOM_TRIES):
        key = keys[pick(len(keys))]
        if key in data and (not expires or db.get(key) is not None):
            return key
    db.sample = None  # mostly dead keys: take a fresh sample next time
    return _random_walk(db, db.data)


_RANDOM_TRIES = 16


def _key_sample(db, data) -> list:
    """The key list RANDOMKEY picks from.

    A dict has no random access, and walking to a random position costs
    27 ns a key (12 ms at a million keys, per call). So RANDOMKEY picks from
    a list of the keys (``list(data)``, one C-speed pass) kept on the
    database and taken again after a quarter as many calls as it has keys,
    when the database has grown or shrunk by a quarter, or when FLUSHDB or
    SWAPDB replaced the dict: about 0.1 us per call. A key added since the
    list was taken is not picked until then; Redis's pick is not uniform
    either.
    """
    s = db.sample
    n = len(data)
    if s is not None and s[0] is data and s[2] > 0 and 3 * len(s[1]) <= 4 * n <= 5 * len(s[1]):
        s[2] -= 1
        return s[1]
    keys = list(data)
    db.sample = [data, keys, max(64, n >> 2)]
    return keys


def _random_walk(db, data):
    """The first live key from a random position (wrapping), or None. O(N)."""
    n = len(data)
    if not n:
        return None
    start = random.randrange(n)
    expires = db.expires
    if not expires:
        return next(islice(data, start, None))
    # Due keys met on the way are expired afterwards (not while iterating the dict).
    now = now_ms()
    due = []
    found = None
    for key in islice(data, start, None):
        if expires.get(key, now + 1) > now:
            found = key
            break
        due.append(key)
    if found is None:
        for key in islice(data, 0, start):
            if expires.get(key, now + 1) > now:
                found = key
                break
            due.append(key)
    for key in due:
        db.get(key)
    return found


# --- OBJECT -------------------------------------------------------------------

@command("object", -2, "", acl="@slow", since="2.2.3")
def object_(c, argv):
    """OBJECT <subcommand> ... -- inspect the internals of a value."""
    return dispatch_subcommand(object_.command, c, argv)


@subcommand("object", "encoding", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="2.2.3")
def object_encoding(c, argv):
    """OBJECT ENCODING key -- the internal representation of the value, or nil. O(1)."""
    v = c.db.get(argv[2])
    return None if v is None else encoding(v).encode()


@subcommand("object", "freq", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="4.0.0")
def object_freq(c, argv):
    """OBJECT FREQ key -- not tracked by Keel: Redis's error for "no LFU policy". O(1)."""
    if c.db.get(argv[2]) is None:
        return None
    raise CommandError(errors.LFU_NOT_SELECTED)


@subcommand("object", "idletime", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="2.2.3")
def object_idletime(c, argv):
    """OBJECT IDLETIME key -- 0 (Keel keeps no access clock), or nil. O(1)."""
    return None if c.db.get(argv[2]) is None else ZERO


_SHARED_REFCOUNT = 2147483647  # what Redis shows for its shared integer objects
_SHARED_INTEGERS = 10000


@subcommand("object", "refcount", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="2.2.3")
def object_refcount(c, argv):
    """OBJECT REFCOUNT key -- the reference count Redis would report, or nil. O(1)."""
    v = c.db.get(argv[2])
    if v is None:
        return None
    # Only a string created whole can be one of Redis's shared integers: one
    # changed in place (a bytearray) is a private raw string, refcount 1.
    if type(v) is bytes and is_int_string(v) and 0 <= int(v) < _SHARED_INTEGERS:
        return _SHARED_REFCOUNT
    return ONE


_OBJECT_HELP = (
    "ENCODING <key>",
    "    How the value at <key> is represented in memory (int, embstr, raw, listpack, ...).",
    "FREQ <key>",
    "    The logarithmic access counter of <key>; refused unless an LFU maxmemory policy is set.",
    "IDLETIME <key>",
    "    Seconds since <key> was last used (Keel keeps no access clock and answers 0).",
    "REFCOUNT <key>",
    "    How many references share the value at <key>.",
)


@subcommand("object", "help", 2, "loading stale", acl="@keyspace @slow", since="6.2.0")
def object_help(c, argv):
    """OBJECT HELP -- what the subcommands do."""
    return help_lines("OBJECT", _OBJECT_HELP)
