"""Generic key commands: DEL, UNLINK, EXISTS, TYPE, TOUCH, RENAME, RENAMENX,
MOVE, COPY, KEYS, OBJECT (SCAN and RANDOMKEY are in ``engine.commands.scan``).

They work on any value without looking inside it: type names, encodings and
copies come from ``engine.types``. Every argument is validated before the first
change. Effects: DEL/UNLINK journal ``DEL`` of the keys actually removed;
RENAME/RENAMENX journal ``RENAME src dst``; MOVE and COPY journal themselves
(they carry their database numbers); nothing is journaled when nothing changed.

Keyspace events (class ``g``), in Redis's order: ``del`` for each key
DEL/UNLINK removed, as it goes; RENAME ``rename_from`` (source) then
``rename_to`` (destination); MOVE ``move_from`` (source database) then
``move_to`` (target database); COPY ``copy_to``. The destination of RENAME,
of MOVE and of COPY is announced ``new`` first, an overwritten one included:
Redis deletes the old value before it adds the new key.

OBJECT
------
OBJECT IDLETIME and FREQ read the keys' access information (``engine.evict``,
``ks.access``), kept while ``maxmemory-policy`` is an LRU or LFU policy: FREQ
is refused unless the policy is LFU, IDLETIME under an LFU policy, in Redis's
words. Under the other policies Keel keeps no access clock (it would cost
every read command a store), and OBJECT IDLETIME reports 0 — "not known to
be idle" — so that tools that act on idle keys take no action on invented
data. OBJECT REFCOUNT reports what Redis reports for the same value
(its shared integers 0..9999 show 2147483647, everything else 1), and OBJECT
ENCODING what Redis would use to store it (for strings: int, embstr up to 44
bytes, raw beyond and once written in place; see ``engine.types``).
"""

from __future__ import annotations

from engine import errors, glob, lazyfree
from engine.commands.db import parse_db_index
from engine.errors import CommandError
from engine.evict import LFU, OFF
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.notify import GENERIC
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import INTS, OK, ONE, ZERO, Raw, help_lines
from engine.types import copy_value, encoding, is_int_string, type_name
from engine.util import parse_int

_NONE = Raw(b"+none\r\n")
_TYPE_REPLIES: dict[str, Raw] = {}


def _count(n: int):
    return INTS[n] if n < len(INTS) else n


# --- DEL, UNLINK, EXISTS, TOUCH, TYPE -----------------------------------------

def _del_generic(c, argv, lazy: bool = False):
    db = c.db
    ks = c.ks
    gone = []
    # UNLINK (and DEL under lazyfree-lazy-user-del) hands each big value it
    # removes to the reaper (engine.lazyfree) instead of freeing it here.
    reaper = lazyfree.reaper(ks) if lazy or lazyfree.user_del(ks) else None
    data = db.data
    for key in argv[1:]:
        v = data.get(key) if reaper is not None else None
        if db.delete(key):
            gone.append(key)
            if ks.notify_flags:
                c.notify(GENERIC, b"del", key)
        if v is not None and data.get(key) is not v:  # gone (deleted, or expired just now)
            reaper.free(v)
    if gone:
        c.emit([b"DEL", *gone])
    return _count(len(gone))


@command("del", -2, "write", (1, -1, 1), "@keyspace @write @slow",
         key_specs=(spec("RM delete", 1, -1),), tips="request_policy:multi_shard response_policy:agg_sum")
def del_(c, argv):
    """DEL key [key ...] -- delete keys; the number deleted. O(N)."""
    return _del_generic(c, argv)


@command("unlink", -2, "write fast", (1, -1, 1), "@keyspace @write @fast", since="4.0.0",
         key_specs=(spec("RM delete", 1, -1),), tips="request_policy:multi_shard response_policy:agg_sum")
def unlink(c, argv):
    """UNLINK key [key ...] -- DEL, big values freed later, a slice per loop turn
    (engine.lazyfree); the number deleted. O(N) in the keys, O(1) per value."""
    return _del_generic(c, argv, lazy=True)


def _existing(c, argv) -> int:
    get = c.db.get
    return sum(1 for key in argv[1:] if get(key) is not None)


@command("exists", -2, "readonly fast", (1, -1, 1), "@keyspace @read @fast",
         key_specs=(spec("RO", 1, -1),), tips="request_policy:multi_shard response_policy:agg_sum")
def exists(c, argv):
    """EXISTS key [key ...] -- how many of the keys exist, duplicates counted. O(N)."""
    return _count(_existing(c, argv))


@command("touch", -2, "readonly fast", (1, -1, 1), "@keyspace @read @fast", since="3.2.1",
         key_specs=(spec("RO", 1, -1),), tips="request_policy:multi_shard response_policy:agg_sum")
def touch(c, argv):
    """TOUCH key [key ...] -- how many of the keys exist; they count as accessed. O(N)."""
    return _count(_existing(c, argv))


@command("type", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast",
         key_specs=(spec("RO"),))
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
    notifying = c.ks.notify_flags
    if notifying:
        db.delete(dst)  # the old value goes first: the destination is announced new
    db.set(dst, v)
    if when is not None:
        db.set_expire(dst, when)
    c.emit([b"RENAME", src, dst])
    if notifying:
        c.notify(GENERIC, b"rename_from", src)
        c.notify(GENERIC, b"rename_to", dst)
    return ONE if nx else OK


@command("rename", 3, "write", (1, 2, 1), "@keyspace @write @slow",
         key_specs=(spec("RW access delete"), spec("OW update", 2)))
def rename(c, argv):
    """RENAME key newkey -- move a value (and its TTL) to another name. O(1)."""
    return _rename_generic(c, argv, nx=False)


@command("renamenx", 3, "write fast", (1, 2, 1), "@keyspace @write @fast",
         key_specs=(spec("RW access delete"), spec("OW insert", 2)))
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
    ks = c.ks
    if ks.notify_flags:
        ks.notify(GENERIC, b"move_from", src.index, key)
        ks.notify(GENERIC, b"move_to", target, key)
    return ONE


@command("copy", -3, "write denyoom", (1, 2, 1), "@keyspace @write @slow", since="6.2.0",
         key_specs=(spec("RO access"), spec("OW update", 2)))
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
    ks = c.ks
    if replace and ks.notify_flags:
        dst_db.delete(dst)  # the old value goes first: the destination is announced new
    dst_db.set(dst, copy_value(v))
    if when is not None:
        dst_db.set_expire(dst, when)
    c.emit([b"COPY", *argv[1:]])
    if ks.notify_flags:
        ks.notify(GENERIC, b"copy_to", target, dst)
    return ONE


# --- KEYS, SCAN, RANDOMKEY ----------------------------------------------------

@command("keys", 2, "readonly", acl="@keyspace @read @slow @dangerous",
         tips="request_policy:all_shards nondeterministic_output_order")
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


# --- OBJECT -------------------------------------------------------------------

@command("object", -2, "", acl="@slow", since="2.2.3")
def object_(c, argv):
    """OBJECT <subcommand> ... -- inspect the internals of a value."""
    return dispatch_subcommand(object_.command, c, argv)


@subcommand("object", "encoding", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="2.2.3",
            key_specs=(spec("RO", 2),), tips="nondeterministic_output")
def object_encoding(c, argv):
    """OBJECT ENCODING key -- the internal representation of the value, or nil. O(1)."""
    v = c.db.get(argv[2])
    return None if v is None else encoding(v).encode()


@subcommand("object", "freq", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="4.0.0",
            key_specs=(spec("RO", 2),), tips="nondeterministic_output")
def object_freq(c, argv):
    """OBJECT FREQ key -- the key's logarithmic access counter (an LFU policy only), or nil. O(1)."""
    if c.db.get(argv[2]) is None:
        return None
    access = getattr(c.ks, "access", None)
    if access is None or access.mode != LFU:
        raise CommandError(errors.LFU_NOT_SELECTED)
    return access.freq(c.db, argv[2])


@subcommand("object", "idletime", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="2.2.3",
            key_specs=(spec("RO", 2),), tips="nondeterministic_output")
def object_idletime(c, argv):
    """OBJECT IDLETIME key -- seconds since the key was last touched (0 unless
    an LRU policy is set: no clock is kept), or nil. O(1)."""
    if c.db.get(argv[2]) is None:
        return None
    access = getattr(c.ks, "access", None)
    if access is None or access.mode == OFF:
        return ZERO
    if access.mode == LFU:
        raise CommandError(errors.LFU_SELECTED)
    return access.idle_seconds(c.db, argv[2])


_SHARED_REFCOUNT = 2147483647  # what Redis shows for its shared integer objects
_SHARED_INTEGERS = 10000


@subcommand("object", "refcount", 3, "readonly", (2, 2, 1), "@keyspace @read @slow", since="2.2.3",
            key_specs=(spec("RO", 2),), tips="nondeterministic_output")
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
    "    Seconds since <key> was last used (0 unless an LRU maxmemory policy is set).",
    "REFCOUNT <key>",
    "    How many references share the value at <key>.",
)


@subcommand("object", "help", 2, "loading stale", acl="@keyspace @slow", since="6.2.0")
def object_help(c, argv):
    """OBJECT HELP -- what the subcommands do."""
    return help_lines("OBJECT", _OBJECT_HELP)
