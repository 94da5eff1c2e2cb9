"""String commands: GET/SET and their variants, APPEND, STRLEN, counters.

(GETRANGE, SETRANGE and LCS are in ``engine.commands.string_range``.)

A string value is stored as ``bytes`` when it is created whole and as a
``bytearray`` once a command changes it in place (``writable_string``): APPEND
here, SETRANGE, SETBIT and BITFIELD elsewhere. Readers accept both and reply
alike; OBJECT ENCODING tells them apart (``raw`` for a bytearray, as Redis
reports a string it has written into). Any other value type under the key
makes a command that reads it fail with WRONGTYPE (commands that overwrite,
like SET and MSET, replace whatever is there).

A read may return the stored bytearray itself: every caller encodes a reply
before the next command runs (``server.resp`` copies the bytes out), so a
later in-place write cannot reach a reply. Code that keeps a reply value
unencoded past the next command must copy a bytearray first.

Effects (what the log and replicas receive) follow Redis's propagation, made
deterministic: relative expiry times become ``SET k v PXAT <ms>`` or
``PEXPIREAT``, INCRBYFLOAT becomes ``SET k <result> KEEPTTL``, GETDEL becomes
``DEL``, GETSET and SETNX become ``SET``. A command that changed nothing
records nothing.

Keyspace events (``engine.notify``): ``set`` for SET and its variants,
GETSET and each key of MSET/MSETNX, followed by ``expire`` when the command
gave a TTL; ``del`` for GETDEL and for a TTL already past; GETEX ``expire``,
``persist`` or ``del``; ``append`` (an empty tail too); ``incrby`` for
INCR/DECR/INCRBY/DECRBY; ``incrbyfloat``.

The plain ``SET key value`` and ``GET key`` are the benchmarked hot path:
they do no option parsing and allocate nothing beyond the effect entry.
With notifications on, plain SET takes the general path, whose lookup
announces a replaced expired key as Redis does.
"""

from __future__ import annotations

from engine import errors, longdouble
from engine.notify import GENERIC, STRING
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import flags_of, spec
from engine.memory import TTL_COST
from engine.registry import checks_own_arguments, command
from engine.reply import INTS, OK, ONE, ZERO
from engine.util import INT64_MAX, INT64_MIN, add_int64, parse_int

def max_string_len(c) -> int:
    """The configured proto-max-bulk-len (APPEND, SETRANGE, bit offsets)."""
    return c.ks.proto_max_bulk_len


def check_string_length(c, size: int) -> None:
    if size > max_string_len(c):
        raise CommandError(errors.STRING_TOO_LONG)


def is_string(v) -> bool:
    """Whether a stored value is a string (either representation)."""
    return type(v) is bytes or type(v) is bytearray


def get_string(c, key: bytes):
    """The string under ``key``, None when missing, WRONGTYPE otherwise."""
    v = c.db.get(key)
    if v is None or type(v) is bytes or type(v) is bytearray:
        return v
    raise CommandError(errors.WRONGTYPE)


def writable_string(c, key: bytes, v):
    """The string ``v`` stored under ``key``, as a bytearray to change in place.

    A ``bytes`` value is converted once, O(N), as Redis unshares an embedded
    or integer string into a raw one before writing into it; a bytearray is
    returned as it is, O(1). The content is the same, so nothing is marked
    here: the caller calls ``Database.touched`` once it changed the bytes
    (and records nothing when it did not).
    """
    if type(v) is bytearray:
        return v
    buf = bytearray(v)
    c.db.retype(key, buf)
    return buf


# --- SET options (shared by SET, SETEX, PSETEX, SETNX, GETEX) ---------------

NX, XX, GET, KEEPTTL, PERSIST = 1, 2, 4, 8, 16
EX, PX, EXAT, PXAT = 32, 64, 128, 256
_EXPIRY = EX | PX | EXAT | PXAT
_SECONDS = EX | EXAT
_RELATIVE = EX | PX
_ABSOLUTE = EXAT | PXAT
_UNITS = {b"EX": EX, b"PX": PX, b"EXAT": EXAT, b"PXAT": PXAT}


def _parse_options(argv: list, first: int, for_set: bool):
    """Redis's option grammar: (flags, expire argument or None).

    SET takes NX|XX, GET, KEEPTTL and one of EX/PX/EXAT/PXAT; GETEX takes one
    of EX/PX/EXAT/PXAT or PERSIST. Repeating an option is allowed (the last
    expire value wins); combining exclusive ones is a syntax error.
    """
    flags = 0
    expire = None
    n = len(argv)
    j = first
    while j < n:
        opt = argv[j].upper()
        unit = _UNITS.get(opt)
        if unit is not None:
            if j + 1 >= n or flags & (KEEPTTL | PERSIST | (_EXPIRY & ~unit)):
                raise CommandError(errors.SYNTAX)
            flags |= unit
            expire = argv[j + 1]
            j += 2
            continue
        if opt == b"NX" and for_set and not flags & XX:
            flags |= NX
        elif opt == b"XX" and for_set and not flags & NX:
            flags |= XX
        elif opt == b"GET" and for_set:
            flags |= GET
        elif opt == b"KEEPTTL" and for_set and not flags & (PERSIST | _EXPIRY):
            flags |= KEEPTTL
        elif opt == b"PERSIST" and not for_set and not flags & (KEEPTTL | _EXPIRY):
            flags |= PERSIST
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    return flags, expire


def _expire_at(arg: bytes, flags: int, name: str, now: int) -> int:
    """The absolute expiry time in ms that ``arg`` names under ``flags``."""
    ms = parse_int(arg)
    if ms <= 0 or (flags & _SECONDS and ms > INT64_MAX // 1000):
        raise CommandError(errors.INVALID_EXPIRE.format(name))
    if flags & _SECONDS:
        ms *= 1000
    if flags & _RELATIVE:
        ms += now
        if ms > INT64_MAX:
            raise CommandError(errors.INVALID_EXPIRE.format(name))
    return ms


def _set_generic(c, key: bytes, value: bytes, flags: int, expire, name: str, ok_reply, abort_reply):
    """The one SET: every variant is this with different flags and replies.

    Validates everything before touching the key. An expiry time that has
    already passed (EXAT/PXAT in the past) leaves the key deleted, recorded as
    ``DEL`` when there was a key to delete.
    """
    when = None
    if expire is not None:
        now = now_ms()
        when = _expire_at(expire, flags, name, now)
    db = c.db
    old = db.get(key)
    if flags & GET and old is not None and not is_string(old):
        raise CommandError(errors.WRONGTYPE)
    found = old is not None
    if (flags & NX and found) or (flags & XX and not found):
        return old if flags & GET else abort_reply
    if when is not None and when <= now:
        if found:
            db.delete(key)
            c.emit([b"DEL", key])
            if c.ks.notify_flags:
                c.notify(GENERIC, b"del", key)
    elif when is not None:
        db.set(key, value)
        db.set_expire(key, when)
        c.emit([b"SET", key, value, b"PXAT", b"%d" % when])
        if c.ks.notify_flags:
            c.notify(STRING, b"set", key)
            c.notify(GENERIC, b"expire", key)
    else:
        if flags & KEEPTTL:
            db.set(key, value, keep_ttl=True)
            c.emit([b"SET", key, value, b"KEEPTTL"])
        else:
            db.set(key, value)
            c.emit([b"SET", key, value])
        if c.ks.notify_flags:
            c.notify(STRING, b"set", key)
    return old if flags & GET else ok_reply


# --- GET / SET family ---------------------------------------------------------

@command("get", 2, "readonly fast", (1, 1, 1), "@read @string @fast", group="string",
         summary="Read a string value", since="1.0.0")
def get(c, argv):
    """GET key -- the value of key, or nil. O(1)."""
    db = c.db
    key = argv[1]
    v = db.data.get(key)
    if v is not None and db.expires and key in db.expires:
        v = db.get(key)  # the slow lookup: it may expire the key
    if v is None:
        c.ks.misses += 1
        return None
    c.ks.hits += 1
    if type(v) is bytes or type(v) is bytearray:  # the encoders take both
        return v
    raise CommandError(errors.WRONGTYPE)


_SET_READS = flags_of("RW access update")
_SET_OVERWRITES = flags_of("OW update")


def _set_keys(argv: list) -> list[tuple]:
    """SET's key and how it is used: read too when GET asks for the old value."""
    for arg in argv[3:]:
        if arg.lower() == b"get":
            return [(1, _SET_READS)]
    return [(1, _SET_OVERWRITES)]


@command("set", -3, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Store a string, with optional conditions and expiry", since="1.0.0", getkeys=_set_keys,
         key_specs=(spec("RW access update variable_flags",
                         notes="Read (RW, access) only with GET, which returns the old value; overwritten otherwise"),))
def set_(c, argv):
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]

    Reply: OK; nil when NX/XX prevented the write; with GET, the old value
    (nil if none). O(1). Effect: ``SET k v``, ``SET k v KEEPTTL`` or
    ``SET k v PXAT <ms>`` (GET, NX and XX are not needed to replay it).
    """
    if len(argv) == 3:
        # Database.set, inlined: plain SET is the hottest write and the call
        # costs 5% of it. tests/unit/test_keyspace_set.py keeps the two alike.
        key = argv[1]
        value = argv[2]
        if type(key) is not bytes or type(value) is not bytes:
            raise TypeError("SET arguments must be bulk strings")  # the hot path names the protocol error
        ks = c.ks
        if ks.notify_flags:  # the events need the lookup the general path does
            return _set_generic(c, key, value, 0, None, "set", OK, None)
        db = c.db
        data = db.data
        old = data.get(key)
        data[key] = value
        # The memory accounting (Keyspace.mem_used) has nothing to do for a
        # string of the same length (a bytes value's charge is its length's;
        # comparing contents would read a big value through); a new key
        # (None), a bytearray or a collection go through Database.replaced.
        if type(old) is not bytes or len(old) != len(value):
            db.replaced(key, old, value)
        if db.expires and db.expires.pop(key, None) is not None:
            ks.mem_used -= TTL_COST
        d = db.dirty
        if d is not None:
            d.add(key)
        ks.dirty += 1
        if ks.watchers:
            for w in ks.watchers:
                w(db, key)
        ks.effects.append((db.index, argv))
        return OK
    flags, expire = _parse_options(argv, 3, True)
    return _set_generic(c, argv[1], argv[2], flags, expire, "set", OK, None)


checks_own_arguments("set", 3)


@command("setnx", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Store a string under a name that is not taken yet", since="1.0.0",
         key_specs=(spec("OW insert"),))
def setnx(c, argv):
    """SETNX key value -- 1 if the key was set, 0 if it existed. O(1). Effect: SET."""
    return _set_generic(c, argv[1], argv[2], NX, None, "setnx", ONE, ZERO)


@command("setex", 4, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Store a string that expires after a number of seconds", since="2.0.0",
         key_specs=(spec("OW update"),))
def setex(c, argv):
    """SETEX key seconds value -- OK. O(1). Effect: SET k v PXAT <ms>."""
    return _set_generic(c, argv[1], argv[3], EX, argv[2], "setex", OK, None)


@command("psetex", 4, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Store a string that expires after a number of milliseconds", since="2.6.0",
         key_specs=(spec("OW update"),))
def psetex(c, argv):
    """PSETEX key milliseconds value -- OK. O(1). Effect: SET k v PXAT <ms>."""
    return _set_generic(c, argv[1], argv[3], PX, argv[2], "psetex", OK, None)


@command("getset", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Replace a string and answer what it was before", since="1.0.0")
def getset(c, argv):
    """GETSET key value -- the old value or nil; the TTL is cleared. O(1). Effect: SET."""
    key, value = argv[1], argv[2]
    old = get_string(c, key)
    c.db.set(key, value)
    c.emit([b"SET", key, value])
    if c.ks.notify_flags:
        c.notify(STRING, b"set", key)
    return old


@command("getdel", 2, "write fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Read a string and remove its key", since="6.2.0",
         key_specs=(spec("RW access delete"),))
def getdel(c, argv):
    """GETDEL key -- the value (then deleted) or nil. O(1). Effect: DEL."""
    key = argv[1]
    v = get_string(c, key)
    if v is not None:
        c.db.delete(key)
        c.emit([b"DEL", key])
        if c.ks.notify_flags:
            c.notify(GENERIC, b"del", key)
    return v


@command("getex", -2, "write fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Read a string and change or remove its time to live", since="6.2.0",
         key_specs=(spec("RW access update", notes="RW and update: the key's time to live may change"),))
def getex(c, argv):
    """GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST] -- the value or nil. O(1).

    A missing key answers nil before the expire argument is looked at, as in
    Redis. Effect: ``PEXPIREAT k <ms>``, ``PERSIST k`` (only if there was a
    TTL), ``DEL k`` for a time already past, nothing without an option.
    """
    flags, expire = _parse_options(argv, 2, False)
    key = argv[1]
    v = get_string(c, key)
    if v is None:
        return None
    db = c.db
    if expire is not None:
        now = now_ms()
        when = _expire_at(expire, flags, "getex", now)
        if flags & _ABSOLUTE and when <= now:
            db.delete(key)
            c.emit([b"DEL", key])
            event = b"del"
        else:
            db.set_expire(key, when)
            c.emit([b"PEXPIREAT", key, b"%d" % when])
            event = b"expire"
    elif flags & PERSIST and db.persist(key):
        c.emit([b"PERSIST", key])
        event = b"persist"
    else:
        return v
    if c.ks.notify_flags:
        c.notify(GENERIC, event, key)
    return v


@command("mget", -2, "readonly fast", (1, -1, 1), "@read @string @fast", group="string",
         summary="Read several strings at once", since="1.0.0",
         tips="request_policy:multi_shard")
def mget(c, argv):
    """MGET key [key ...] -- each value, nil for missing keys and non-strings. O(N)."""
    get_ = c.db.get
    out = []
    hits = 0
    for key in argv[1:]:
        v = get_(key)
        if v is not None:
            hits += 1
        out.append(v if type(v) is bytes or type(v) is bytearray else None)
    c.ks.hits += hits
    c.ks.misses += len(out) - hits
    return out


def _check_pairs(argv: list, name: str) -> None:
    if len(argv) % 2 == 0:
        raise CommandError(errors.WRONG_ARITY.format(name))


@command("mset", -3, "write denyoom", (1, -1, 2), "@write @string @slow", group="string",
         summary="Store several strings at once", since="1.0.1",
         key_specs=(spec("OW update", 1, -1, 2),), tips="request_policy:multi_shard response_policy:all_succeeded")
def mset(c, argv):
    """MSET key value [key value ...] -- OK. O(N). Effect: MSET, as sent."""
    _check_pairs(argv, "mset")
    _set_pairs(c, argv)
    c.emit([b"MSET"] + argv[1:])
    return OK


def _set_pairs(c, argv: list) -> None:
    """MSET's stores, each announced ``set`` after its own ``new``, as Redis does."""
    set_ = c.db.set
    ks = c.ks
    for j in range(1, len(argv), 2):
        set_(argv[j], argv[j + 1])
        if ks.notify_flags:
            c.notify(STRING, b"set", argv[j])


@command("msetnx", -3, "write denyoom", (1, -1, 2), "@write @string @slow", group="string",
         summary="Store several strings, or none if any of the names is taken", since="1.0.1",
         key_specs=(spec("OW insert", 1, -1, 2),), tips="request_policy:multi_shard response_policy:agg_min")
def msetnx(c, argv):
    """MSETNX key value [key value ...] -- 1 if all were set, 0 if any key existed. O(N)."""
    _check_pairs(argv, "msetnx")
    db = c.db
    for j in range(1, len(argv), 2):
        if db.get(argv[j]) is not None:
            return ZERO
    _set_pairs(c, argv)
    c.emit([b"MSET"] + argv[1:])
    return ONE


@command("append", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Add bytes to the end of a string", since="2.0.0",
         key_specs=(spec("RW insert"),))
def append(c, argv):
    """APPEND key value -- the new length. O(M) amortized, M the length of value.

    A missing key is created with value, encoded as SET would (int, embstr,
    raw). An existing string is extended in place (CPython over-allocates a
    bytearray, as Redis's sds grows) and becomes raw, as in Redis, even when
    value is empty: that changes no byte and records no effect, but the key
    counts as touched for WATCH, as in Redis. The TTL is kept. Effect: the
    command as sent.
    """
    # Written out rather than through get_string/touched/emit: an append is
    # a log's hot write, and the calls were a third of its cost. The effect
    # is argv itself, so a read of plain APPENDs is journaled as its bytes.
    key, tail = argv[1], argv[2]
    db = c.db
    ks = c.ks
    v = db.data.get(key)
    if v is not None and db.expires and key in db.expires:
        v = db.get(key)  # the slow lookup: it may expire the key
    if v is None:
        db.set(key, tail)
        ks.effects.append((db.index, argv))
        if ks.notify_flags:
            c.notify(STRING, b"append", key)
        return len(tail)
    t = type(v)
    if t is not bytearray and t is not bytes:
        raise CommandError(errors.WRONGTYPE)
    n = len(v) + len(tail)
    if n > ks.proto_max_bulk_len:
        raise CommandError(errors.STRING_TOO_LONG)
    if t is bytes:
        v = writable_string(c, key, v)
    ks.changed(db, key)
    if tail:
        v += tail
        db.resized(key)  # marked before the write, counted after it (Keyspace.mem_used)
        ks.effects.append((db.index, argv))
    if ks.notify_flags:  # an empty tail too, as Redis announces it
        c.notify(STRING, b"append", key)
    return n


@command("strlen", 2, "readonly fast", (1, 1, 1), "@read @string @fast", group="string",
         summary="The length in bytes of a string", since="2.2.0",
         key_specs=(spec("RO"),))
def strlen(c, argv):
    """STRLEN key -- the length of the string, 0 if missing. O(1)."""
    v = get_string(c, argv[1])
    return 0 if v is None else len(v)


# --- counters ----------------------------------------------------------------

def _incr_by(c, argv, delta: int):
    """Add ``delta`` to the integer under ``argv[1]``; the TTL is kept.

    Effect: the command as sent (it is deterministic).
    """
    key = argv[1]
    new = add_int64(get_string(c, key), delta, errors.NOT_INTEGER)
    c.db.set(key, b"%d" % new, keep_ttl=True)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STRING, b"incrby", key)
    return INTS[new] if 0 <= new < 1024 else new


@command("incr", 2, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Add 1 to an integer held as a string", since="1.0.0")
def incr(c, argv):
    """INCR key -- the new value. O(1)."""
    return _incr_by(c, argv, 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Subtract 1 from an integer held as a string", since="1.0.0")
def decr(c, argv):
    """DECR key -- the new value. O(1)."""
    return _incr_by(c, argv, -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Add an integer to an integer held as a string", since="1.0.0")
def incrby(c, argv):
    """INCRBY key increment -- the new value. O(1)."""
    return _incr_by(c, argv, parse_int(argv[2]))


@command("decrby", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Subtract an integer from an integer held as a string", since="1.0.0")
def decrby(c, argv):
    """DECRBY key decrement -- the new value. O(1).

    A decrement of -2**63 cannot be negated and is refused before the key is
    read ("decrement would overflow"), as Redis does.
    """
    delta = parse_int(argv[2])
    if delta == INT64_MIN:
        raise CommandError(errors.DECREMENT_OVERFLOW)
    return _incr_by(c, argv, -delta)


@command("incrbyfloat", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Add a decimal number to a number held as a string", since="2.6.0")
def incrbyfloat(c, argv):
    """INCRBYFLOAT key increment -- the new value, as Redis prints it. O(1).

    Both numbers are read and added as x87 long doubles (engine.longdouble),
    so the digits are Redis's. The TTL is kept. Effect:
    ``SET k <result> KEEPTTL``.
    """
    key = argv[1]
    v = get_string(c, key)
    current = longdouble.ZERO if v is None else longdouble.parse(v)
    increment = longdouble.parse(argv[2])
    if current is None or increment is None:
        raise CommandError(errors.NOT_FLOAT)
    total = longdouble.add(current, increment)
    if total is None or type(total) is float:
        raise CommandError(errors.NAN_OR_INF)
    out = longdouble.format_human(total)
    c.db.set(key, out, keep_ttl=True)
    c.emit([b"SET", key, out, b"KEEPTTL"])
    if c.ks.notify_flags:
        c.notify(STRING, b"incrbyfloat", key)
    return out
