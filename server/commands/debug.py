"""DEBUG subcommands beyond SLEEP and SET-ACTIVE-EXPIRE (those live in admin.py).

Each one is registered with ``admin.debug_subcommand`` and so sits behind
``enable-debug-command`` like every DEBUG subcommand. Replies and errors are
Redis 7.2's, word for word, where Redis has the subcommand; where Keel has no
equivalent of Redis's internals the reply keeps Redis's shape:

OBJECT key            Redis's status line; ``encoding`` is what OBJECT ENCODING
                      says, ``serializedlength`` the length of the value's RDB
                      body (what DUMP writes, without its type byte, as Redis
                      counts it; Keel writes no LZF, so a long compressible
                      string counts longer than on Redis), ``lru`` and
                      ``lru_seconds_idle`` from OBJECT IDLETIME.
RELOAD [MERGE] [NOFLUSH] [NOSAVE]
                      write a checkpoint, then rebuild the dataset in place from
                      what is on disk (``server.debug_reload``).
DIGEST / DIGEST-VALUE key...
                      a digest of the logical content (``server.debug_digest``).
POPULATE count [prefix] [size]
                      ``prefix:N`` = ``value:N`` (cut or padded with zero bytes
                      to ``size``), existing keys untouched. Unlike Redis, the
                      keys are journaled (as SETs): every write in Keel is, so
                      that a restart and a replica hold them too.
PROTOCOL type         one test value of each RESP3 type, downgraded in RESP2
                      exactly as Redis downgrades it (push is refused there).
ERROR msg, LOG msg, CHANGE-REPL-ID, QUICKLIST-PACKED-THRESHOLD, LISTPACK,
QUICKLIST, STRINGMATCH-LEN, PAUSE-CRON, REPLYBUFFER, DICT-RESIZING.

LISTPACK and QUICKLIST print their dump into the server log (Redis prints it
on its standard output, which a Keel server under a supervisor rarely has)
and reply Redis's status line.
"""

from __future__ import annotations

import logging
import os
import random

from engine import errors, glob, rdb
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.reply import OK, BigNumber, Raw, Set, Status, Verbatim
from engine.types import encoding
from engine.types import list_quicklist
from engine.types.list import List
from engine.util import parse_int
from server.commands.admin import _loose_int, debug_subcommand
from server.config import ConfigError, parse_memory
from engine.digest import dataset_digest, key_digest
from server.debug_reload import reload_dataset

log = logging.getLogger("keel.debug")

NOT_LISTPACK = "ERR Not a listpack encoded object."
NOT_QUICKLIST = "ERR Not a quicklist encoded object."
POPULATE_RANGE = "ERR value is out of range, must be positive"
RELOAD_OPTIONS = "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
PROTOCOL_TYPES = ("ERR Wrong protocol type name. Please use one of the following: "
                  "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
PUSH_RESP2 = "ERR RESP2 is not supported by this command"
PACKED_THRESHOLD = "ERR argument must be a memory value bigger than 1 and smaller than 4gb"
STRINGMATCH_PASSED = Status("Apparently Redis did not crash: test passed")

_LRU_MASK = (1 << 24) - 1  # Redis's LRU clock: seconds, 24 bits (INFO lru_clock)


def _key(c, argv):
    v = c.db.get(argv[2])
    if v is None:
        raise CommandError(errors.NO_SUCH_KEY)
    return v


def _int_reply(r) -> int:
    """An integer reply as a handler returns it (an int, or a pre-encoded ``:N``)."""
    if type(r) is Raw:
        return int(r[1:-2])
    return int(r) if r is not None else 0


# --- OBJECT ----------------------------------------------------------------------

def _idle_seconds(c, key: bytes) -> int:
    """What OBJECT IDLETIME says (0 when it refuses, as under an LFU policy)."""
    from engine.commands.keys import object_idletime

    try:
        return _int_reply(object_idletime(c, [b"OBJECT", b"IDLETIME", key]))
    except CommandError:
        return 0


def _refcount(c, key: bytes) -> int:
    from engine.commands.keys import object_refcount

    return _int_reply(object_refcount(c, [b"OBJECT", b"REFCOUNT", key]))


def _quicklist_of(v):
    """The ``Quicklist`` behind a quicklist-encoded list (None for a listpack)."""
    q = getattr(v, "_v", None)
    return q if isinstance(q, list_quicklist.Quicklist) else None


@debug_subcommand("object", 3, ("OBJECT <key>", "    Show low level info about `key` and associated value."),
                  max_argc=3)
def debug_object(c, argv):
    key = argv[2]
    v = _key(c, argv)
    idle = _idle_seconds(c, key)
    lru = (int(now_ms() // 1000) - idle) & _LRU_MASK
    line = (f"Value at:{id(v):#x} refcount:{_refcount(c, key)} encoding:{encoding(v)} "
            f"serializedlength:{len(rdb.encode_value(v)) - 1} lru:{lru} lru_seconds_idle:{idle}")
    q = _quicklist_of(v) if type(v) is List else None
    if q is not None:
        nodes = len(q.nodes)
        line += (f" ql_nodes:{nodes} ql_avg_node:{q.count / nodes if nodes else 0:.2f}"
                 f" ql_listpack_max:{q.fill} ql_compressed:{int(c.ks.limits.list_compress_depth != 0)}"
                 f" ql_uncompressed_size:{sum(n.sz for n in q.nodes)}")
    return Status(line)


# --- LISTPACK, QUICKLIST ---------------------------------------------------------

def _entries_of(v) -> list:
    """The listpack entries of a packed value, in order (a hash or zset: field, value, ...)."""
    t = type(v).__name__
    if t == "List":
        return v.elements()
    if t == "Hash":
        return v.flat()
    if t == "Set":
        return v.members()
    if t == "ZSet":
        return [x for m, s in v.items() for x in (m, repr(s).encode())]
    return []


@debug_subcommand("listpack", 3, ("LISTPACK <key>", "    Show low level info about the listpack encoding of <key>."),
                  max_argc=3)
def debug_listpack(c, argv):
    v = _key(c, argv)
    if isinstance(v, (bytes, bytearray)) or encoding(v) != "listpack":
        raise CommandError(NOT_LISTPACK)
    entries = _entries_of(v)
    lines = [f"{{listpack of key {argv[2]!r}: {len(entries)} entries}}"]
    lines += [f"{{entry {i}: {e!r}}}" for i, e in enumerate(entries)]
    log.warning("DEBUG LISTPACK:\n%s", "\n".join(lines))
    return Status("Listpack structure printed on stdout")


@debug_subcommand("quicklist", 3, ("QUICKLIST <key> [<0|1>]", "    Show low level info about the quicklist encoding of <key>.",
                                   "    The optional argument (0 by default) sets the level of detail"),
                  max_argc=4)
def debug_quicklist(c, argv):
    v = _key(c, argv)
    q = _quicklist_of(v) if type(v) is List else None
    if q is None:
        raise CommandError(NOT_QUICKLIST)
    full = len(argv) == 4 and _loose_int(argv[3]) != 0
    lines = [f"{{count : {q.count}}}", f"{{len : {len(q.nodes)}}}", f"{{fill : {q.fill}}}",
             f"{{compress : {c.ks.limits.list_compress_depth}}}"]
    for i, n in enumerate(q.nodes):
        lines.append(f"{{quicklist node({i})")
        lines.append(f"{{container : {'PLAIN' if n.plain else 'PACKED'}, size: {n.sz}, count: {n.count}}}")
        if full:
            lines += [f"{{entry : {e!r}}}" for e in n.peek()]
    log.warning("DEBUG QUICKLIST:\n%s", "\n".join(lines))
    return Status("Quicklist structure printed on stdout")


@debug_subcommand("quicklist-packed-threshold", 3,
                  ("QUICKLIST-PACKED-THRESHOLD <size>",
                   "    Sets the threshold for elements to be inserted as plain vs packed nodes",
                   "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default."),
                  max_argc=3)
def debug_quicklist_packed_threshold(c, argv):
    try:
        n = parse_memory(argv[2].decode("utf-8", "replace"))
    except ConfigError:
        raise CommandError(PACKED_THRESHOLD) from None
    if not 0 <= n <= (1 << 32) - (1 << 20):
        raise CommandError(PACKED_THRESHOLD)
    list_quicklist.set_packed_threshold(n or list_quicklist.DEFAULT_PACKED_THRESHOLD)
    return OK


# --- RELOAD, DIGEST ---------------------------------------------------------------

@debug_subcommand("reload", 2, ("RELOAD [option ...]",
                                "    Write a checkpoint and rebuild the dataset from it in place. Options:",
                                "    * MERGE: conflicting keys will be loaded from the checkpoint.",
                                "    * NOFLUSH: the existing dataset is not removed before the load",
                                "      (a conflicting key is refused, nothing changed, without MERGE).",
                                "    * NOSAVE: write no checkpoint: rebuild from what is on disk, the last",
                                "      checkpoint and the log after it (what a restart would load)."))
def debug_reload(c, argv):
    opts = set()
    for a in argv[2:]:
        o = a.lower()
        if o not in (b"merge", b"noflush", b"nosave"):
            raise CommandError(RELOAD_OPTIONS)
        opts.add(o)
    reload_dataset(c.server, merge=b"merge" in opts, flush=b"noflush" not in opts, save=b"nosave" not in opts)
    log.warning("DB reloaded by DEBUG RELOAD")
    return OK


@debug_subcommand("digest", 2, ("DIGEST", "    Output a hex signature representing the current DB content."),
                  max_argc=2)
def debug_digest(c, argv):
    return Status(dataset_digest(c.ks))


@debug_subcommand("digest-value", 2, ("DIGEST-VALUE <key> [<key> ...]",
                                      "    Output a hex signature of the values of all the specified keys."))
def debug_digest_value(c, argv):
    db = c.db
    return [Status(key_digest(db, key)) for key in argv[2:]]


# --- POPULATE ----------------------------------------------------------------------

@debug_subcommand("populate", 3, ("POPULATE <count> [<prefix>] [<size>]",
                                  "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                                  "    it is used instead of the 'key' prefix. Keel journals them (Redis does not",
                                  "    propagate them)."),
                  max_argc=5)
def debug_populate(c, argv):
    count = parse_int(argv[2], POPULATE_RANGE)
    if count < 0:
        raise CommandError(POPULATE_RANGE)
    prefix = argv[3] if len(argv) > 3 else b"key"
    size = 0
    if len(argv) > 4:
        size = parse_int(argv[4], POPULATE_RANGE)
        if size < 0:
            raise CommandError(POPULATE_RANGE)
    db = c.db
    data = db.data
    emit = c.emit
    for j in range(count):
        key = b"%s:%d" % (prefix, j)
        if key in data and db.get(key) is not None:
            continue  # an existing key is left as it is (a due one expires first, as Redis's lookup does)
        value = b"value:%d" % j
        if size:
            value = value[:size].ljust(size, b"\0")
        db.set(key, value)
        emit([b"SET", key, value])
    return OK


# --- PROTOCOL -----------------------------------------------------------------------

_ATTRIBUTE = Raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n")
_ATTRIB_TEXT = b"Some real reply following the attribute"
_PUSH = b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n"
_PUSH_TEXT = b"Some real reply following the push reply"


def _protocol_value(kind: bytes, resp3: bool):
    if kind == b"string":
        return b"Hello World"
    if kind == b"integer":
        return 12345
    if kind == b"double":
        return 3.141
    if kind == b"bignum":
        return BigNumber(b"1234567999999999999999999999999999999")
    if kind == b"null":
        return None
    if kind == b"array":
        return [0, 1, 2]
    if kind == b"set":
        return Set([0, 1, 2])
    if kind == b"map":
        return {0: False, 1: True, 2: False}
    if kind == b"attrib":
        if not resp3:
            return _ATTRIB_TEXT
        return Raw(_ATTRIBUTE + b"$%d\r\n%s\r\n" % (len(_ATTRIB_TEXT), _ATTRIB_TEXT))
    if kind == b"push":
        if not resp3:
            raise CommandError(PUSH_RESP2)
        return Raw(_PUSH + b"$%d\r\n%s\r\n" % (len(_PUSH_TEXT), _PUSH_TEXT))
    if kind == b"verbatim":
        return Verbatim(b"This is a verbatim\nstring")
    if kind == b"true":
        return True
    if kind == b"false":
        return False
    raise CommandError(PROTOCOL_TYPES)


@debug_subcommand("protocol", 3, ("PROTOCOL <type>",
                                  "    Reply with a test value of the specified type. <type> can be: string,",
                                  "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
                                  "    true, false."),
                  max_argc=3)
def debug_protocol(c, argv):
    return _protocol_value(argv[2].lower(), c.protocol >= 3)


# --- small hooks --------------------------------------------------------------------

@debug_subcommand("error", 3, ("ERROR <string>",
                               "    Return a Redis protocol error with <string> as message. Useful for clients",
                               "    unit tests to simulate Redis errors."),
                  max_argc=3)
def debug_error(c, argv):
    # The text goes out as sent (newlines become spaces when encoded), with
    # no "ERR " put in front: the client chooses the error code.
    raise CommandError(argv[2].decode("utf-8", "surrogateescape"))


@debug_subcommand("log", 3, ("LOG <message>", "    Write <message> to the server log."), max_argc=3)
def debug_log(c, argv):
    log.warning("DEBUG LOG: %s", argv[2].decode("utf-8", "replace"))
    return OK


@debug_subcommand("change-repl-id", 2, ("CHANGE-REPL-ID",
                                        "    Change the replication IDs of the instance.",
                                        "    Dangerous: should be used only for testing the replication subsystem."),
                  max_argc=2)
def debug_change_repl_id(c, argv):
    server = c.server
    log.warning("Changing replication IDs after receiving DEBUG change-repl-id")
    server.repl.replid = os.urandom(20).hex()  # what INFO replication's master_replid reads
    server.repl.replid2 = "0" * 40
    server.repl.second_offset = -1
    server.repl.save_state()
    return OK


def _stringmatch_fuzz(rounds: int = 1000) -> None:
    """Random patterns and names through the glob matcher: it must never raise."""
    rng = random.Random()
    alphabet = b"*?[]^-\\ab"
    for _ in range(rounds):
        pattern = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 24)))
        name = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        glob.match(pattern, name)


@debug_subcommand("stringmatch-len", 2, ("STRINGMATCH-LEN",
                                         "    Run a fuzz tester against the glob-style pattern matcher."), max_argc=2)
def debug_stringmatch_len(c, argv):
    _stringmatch_fuzz()
    return STRINGMATCH_PASSED


debug_subcommand("stringmatch-test", 2, ("STRINGMATCH-TEST", "    Redis 7.0's name for STRINGMATCH-LEN."),
                 max_argc=2)(debug_stringmatch_len)


@debug_subcommand("pause-cron", 3, ("PAUSE-CRON <0|1>", "    Stop periodic cron job processing (in Keel that includes the everysec fsync,",
                                     "    automatic checkpoints and client timeouts)."), max_argc=3)
def debug_pause_cron(c, argv):
    server = c.server
    pause = _loose_int(argv[2]) != 0
    paused = getattr(server, "cron_paused", False)
    if pause and not paused:
        if server.cron_handle is not None:
            server.cron_handle.cancel()
        server.cron_paused = True
    elif not pause and paused:
        server.cron_paused = False
        server.cron_handle = server.loop.call_soon(server.cron)  # it schedules its next run itself
    return OK


@debug_subcommand("replybuffer", 4, ("REPLYBUFFER PEAK-RESET-TIME <NEVER|RESET|time>",
                                     "    Accepted for Redis's tests; Keel's reply buffers have no peak to reset.",
                                     "REPLYBUFFER RESIZING <0|1>",
                                     "    Accepted for Redis's tests; Keel does not resize reply buffers."),
                  max_argc=4)
def debug_replybuffer(c, argv):
    sub = argv[2].lower()
    if sub == b"peak-reset-time":
        if argv[3].lower() not in (b"never", b"reset"):
            parse_int(argv[3])
        return OK
    if sub == b"resizing":
        return OK
    raise CommandError(errors.DEBUG_UNKNOWN.format(argv[1].decode("utf-8", "replace")))


@debug_subcommand("dict-resizing", 3, ("DICT-RESIZING <0|1>",
                                       "    Accepted for Redis's tests; Python's dicts resize themselves."),
                  max_argc=3)
def debug_dict_resizing(c, argv):
    return OK
