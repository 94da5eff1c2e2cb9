"""String commands: GET/SET and their variants, counters, ranges, LCS.

A string value is stored as ``bytes``; any other value type under the key
makes a command that reads it fail with WRONGTYPE (commands that overwrite,
like SET and MSET, replace whatever is there).

Effects (what the log and replicas receive) follow Redis's propagation, made
deterministic: relative expiry times become ``SET k v PXAT <ms>`` or
``PEXPIREAT``, INCRBYFLOAT becomes ``SET k <result> KEEPTTL``, GETDEL becomes
``DEL``, GETSET and SETNX become ``SET``. A command that changed nothing
records nothing.

The plain ``SET key value`` and ``GET key`` are the benchmarked hot path:
they do no option parsing and allocate nothing beyond the effect entry.
"""

from __future__ import annotations

from engine import errors, longdouble
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.registry import checks_own_arguments, command
from engine.reply import INTS, OK, ONE, ZERO
from engine.util import INT64_MAX, INT64_MIN, parse_int, to_int_or_none

# proto-max-bulk-len's default: the longest string a command may build.
# The server may set ``Keyspace.proto_max_bulk_len`` from its configuration.
DEFAULT_MAX_STRING = 512 * 1024 * 1024


def max_string_len(c) -> int:
    """The configured proto-max-bulk-len (APPEND, SETRANGE, bit offsets)."""
    return getattr(c.ks, "proto_max_bulk_len", DEFAULT_MAX_STRING)


def check_string_length(c, size: int) -> None:
    if size > max_string_len(c):
        raise CommandError(errors.STRING_TOO_LONG)


def get_string(c, key: bytes):
    """The string under ``key``, None when missing, WRONGTYPE otherwise."""
    v = c.db.get(key)
    if v is None or type(v) is bytes:
        return v
    raise CommandError(errors.WRONGTYPE)


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
    if flags & GET and old is not None and type(old) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    found = old is not None
    if (flags & NX and found) or (flags & XX and not found):
        return old if flags & GET else abort_reply
    if when is not None and when <= now:
        if found:
            db.delete(key)
            c.emit([b"DEL", key])
    elif when is not None:
        db.set(key, value)
        db.set_expire(key, when)
        c.emit([b"SET", key, value, b"PXAT", b"%d" % when])
    elif flags & KEEPTTL:
        db.set(key, value, keep_ttl=True)
        c.emit([b"SET", key, value, b"KEEPTTL"])
    else:
        db.set(key, value)
        c.emit([b"SET", key, value])
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
    if type(v) is bytes:
        return v
    raise CommandError(errors.WRONGTYPE)


@command("set", -3, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Store a string, with optional conditions and expiry", since="1.0.0")
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
        db = c.db
        db.data[key] = value
        if db.expires:
            db.expires.pop(key, None)
        d = db.dirty
        if d is not None:
            d.add(key)
        ks = c.ks
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
         summary="Store a string under a name that is not taken yet", since="1.0.0")
def setnx(c, argv):
    """SETNX key value -- 1 if the key was set, 0 if it existed. O(1). Effect: SET."""
    return _set_generic(c, argv[1], argv[2], NX, None, "setnx", ONE, ZERO)


@command("setex", 4, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Store a string that expires after a number of seconds", since="2.0.0")
def setex(c, argv):
    """SETEX key seconds value -- OK. O(1). Effect: SET k v PXAT <ms>."""
    return _set_generic(c, argv[1], argv[3], EX, argv[2], "setex", OK, None)


@command("psetex", 4, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Store a string that expires after a number of milliseconds", since="2.6.0")
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
    return old


@command("getdel", 2, "write fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Read a string and remove its key", since="6.2.0")
def getdel(c, argv):
    """GETDEL key -- the value (then deleted) or nil. O(1). Effect: DEL."""
    key = argv[1]
    v = get_string(c, key)
    if v is not None:
        c.db.delete(key)
        c.emit([b"DEL", key])
    return v


@command("getex", -2, "write fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Read a string and change or remove its time to live", since="6.2.0")
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
        else:
            db.set_expire(key, when)
            c.emit([b"PEXPIREAT", key, b"%d" % when])
    elif flags & PERSIST and db.persist(key):
        c.emit([b"PERSIST", key])
    return v


@command("mget", -2, "readonly fast", (1, -1, 1), "@read @string @fast", group="string",
         summary="Read several strings at once", since="1.0.0")
def mget(c, argv):
    """MGET key [key ...] -- each value, nil for missing keys and non-strings. O(N)."""
    get_ = c.db.get
    out = []
    hits = 0
    for key in argv[1:]:
        v = get_(key)
        if v is not None:
            hits += 1
        out.append(v if type(v) is bytes else None)
    c.ks.hits += hits
    c.ks.misses += len(out) - hits
    return out


def _check_pairs(argv: list, name: str) -> None:
    if len(argv) % 2 == 0:
        raise CommandError(errors.WRONG_ARITY.format(name))


@command("mset", -3, "write denyoom", (1, -1, 2), "@write @string @slow", group="string",
         summary="Store several strings at once", since="1.0.1")
def mset(c, argv):
    """MSET key value [key value ...] -- OK. O(N). Effect: MSET, as sent."""
    _check_pairs(argv, "mset")
    set_ = c.db.set
    for j in range(1, len(argv), 2):
        set_(argv[j], argv[j + 1])
    c.emit([b"MSET"] + argv[1:])
    return OK


@command("msetnx", -3, "write denyoom", (1, -1, 2), "@write @string @slow", group="string",
         summary="Store several strings, or none if any of the names is taken", since="1.0.1")
def msetnx(c, argv):
    """MSETNX key value [key value ...] -- 1 if all were set, 0 if any key existed. O(N)."""
    _check_pairs(argv, "msetnx")
    db = c.db
    for j in range(1, len(argv), 2):
        if db.get(argv[j]) is not None:
            return ZERO
    for j in range(1, len(argv), 2):
        db.set(argv[j], argv[j + 1])
    c.emit([b"MSET"] + argv[1:])
    return ONE


@command("append", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", group="string",
         summary="Add bytes to the end of a string", since="2.0.0")
def append(c, argv):
    """APPEND key value -- the new length. O(1) amortized in Redis, O(N) here.

    The TTL is kept. Appending nothing to an existing string changes nothing
    and records no effect (the key still counts as touched for WATCH, as in
    Redis).
    """
    key, tail = argv[1], argv[2]
    v = get_string(c, key)
    db = c.db
    if v is None:
        db.set(key, tail)
        c.emit([b"APPEND", key, tail])
        return len(tail)
    check_string_length(c, len(v) + len(tail))
    if not tail:
        db.touched(key)
        return len(v)
    v += tail
    db.set(key, v, keep_ttl=True)
    c.emit([b"APPEND", key, tail])
    return len(v)


@command("strlen", 2, "readonly fast", (1, 1, 1), "@read @string @fast", group="string",
         summary="The length in bytes of a string", since="2.2.0")
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
    v = get_string(c, key)
    if v is None:
        current = 0
    else:
        current = to_int_or_none(v)
        if current is None:
            raise CommandError(errors.NOT_INTEGER)
    new = current + delta
    if not INT64_MIN <= new <= INT64_MAX:
        raise CommandError(errors.OVERFLOW)
    c.db.set(key, b"%d" % new, keep_ttl=True)
    c.emit(argv)
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
    return out


# --- ranges ------------------------------------------------------------------

def _getrange(c, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    v = get_string(c, argv[1])
    if v is None:
        return b""
    n = len(v)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return v[start:end + 1]


@command("getrange", 4, "readonly", (1, 1, 1), "@read @string @slow", group="string",
         summary="The bytes of a string between two offsets, both included", since="2.4.0")
def getrange(c, argv):
    """GETRANGE key start end -- the bytes from start to end, both included. O(N).

    Negative indexes count from the end; the range is clamped to the string.
    """
    return _getrange(c, argv)


@command("substr", 4, "readonly", (1, 1, 1), "@read @string @slow", group="string",
         summary="The old name of GETRANGE", since="1.0.0")
def substr(c, argv):
    """SUBSTR key start end -- the old name of GETRANGE. O(N)."""
    return _getrange(c, argv)


@command("setrange", 4, "write denyoom", (1, 1, 1), "@write @string @slow", group="string",
         summary="Write bytes into a string at an offset, padding it with zeros if needed", since="2.2.0")
def setrange(c, argv):
    """SETRANGE key offset value -- the new length. O(N).

    Pads with zero bytes up to offset; the TTL is kept. An empty value
    changes nothing (a missing key stays missing). Writing the bytes that
    are already there records no effect but touches the key for WATCH, as
    Redis does. Effect: the command as sent.
    """
    key, patch = argv[1], argv[3]
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    v = get_string(c, key)
    db = c.db
    if v is None:
        if not patch:
            return ZERO
        check_string_length(c, offset + len(patch))
        new = bytes(offset) + patch
        db.set(key, new)
        c.emit([b"SETRANGE", key, argv[2], patch])
        return len(new)
    if not patch:
        return len(v)
    check_string_length(c, offset + len(patch))
    n = len(v)
    if offset > n:
        new = v + bytes(offset - n) + patch
    else:
        new = v[:offset] + patch + v[offset + len(patch):]
    if new == v:
        db.touched(key)
        return n
    db.set(key, new, keep_ttl=True)
    c.emit([b"SETRANGE", key, argv[2], patch])
    return len(new)


# --- LCS ---------------------------------------------------------------------

def _lcs_rows(a: bytes, b: bytes) -> list:
    """Bit-parallel LCS table (Hyyro): one int per prefix of ``a``.

    In row i, bit j is 0 where LCS(a[:i], b[:j+1]) exceeds LCS(a[:i], b[:j]),
    so LCS(a[:i], b[:j]) is the number of zero bits below bit j. Each row is
    computed from the previous one with a handful of big-int operations.
    """
    mask = (1 << len(b)) - 1
    match = {}
    for j, ch in enumerate(b):
        match[ch] = match.get(ch, 0) | (1 << j)
    row = mask
    rows = [row]
    for ch in a:
        u = row & match.get(ch, 0)
        row = ((row + u) | (row - u)) & mask
        rows.append(row)
    return rows


def _lcs_at(rows: list, i: int, j: int) -> int:
    return j - (rows[i] & ((1 << j) - 1)).bit_count()


@command("lcs", -3, "readonly", (1, 2, 1), "@read @string @slow", group="string",
         summary="The longest common subsequence of two strings, or its length or positions", since="7.0.0")
def lcs(c, argv):
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN] -- O(N*M).

    The longest common subsequence of two strings (missing keys are empty):
    the string itself, its length (LEN), or the matching ranges (IDX), walked
    from the end of both strings and tie-broken exactly as Redis does, so the
    ranges reported are Redis's.
    """
    a = c.db.get(argv[1])
    b = c.db.get(argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise CommandError(errors.LCS_NOT_STRINGS)
    a = a or b""
    b = b or b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 3
    n = len(argv)
    while j < n:
        opt = argv[j].upper()
        if opt == b"IDX":
            getidx = True
        elif opt == b"LEN":
            getlen = True
        elif opt == b"WITHMATCHLEN":
            withmatchlen = True
        elif opt == b"MINMATCHLEN" and j + 1 < n:
            minmatchlen = max(parse_int(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    if getidx and getlen:
        raise CommandError(errors.LCS_LEN_AND_IDX)
    if (len(a) + 1) * (len(b) + 1) * 4 > max_string_len(c):
        raise CommandError(errors.LCS_TOO_BIG)

    rows = _lcs_rows(a, b)
    total = _lcs_at(rows, len(a), len(b))
    if getlen:
        return total
    # Walk back from (len(a), len(b)): on a match take the byte and extend
    # the current range; otherwise step towards the larger neighbour
    # (i-1 only when strictly larger), closing the range if one is open.
    out = bytearray(total)
    k = total
    matches = []
    unset = len(a)
    a_start = unset
    a_end = b_start = b_end = 0
    i, j = len(a), len(b)
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[k - 1] = a[i - 1]
            if a_start == unset:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            k -= 1
            i -= 1
            j -= 1
        else:
            if _lcs_at(rows, i - 1, j) > _lcs_at(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != unset:
                emit = True
        if emit:
            length = a_end - a_start + 1
            if getidx and (minmatchlen == 0 or length >= minmatchlen):
                item = [[a_start, a_end], [b_start, b_end]]
                if withmatchlen:
                    item.append(length)
                matches.append(item)
            a_start = unset
    if getidx:
        return {b"matches": matches, b"len": total}
    return bytes(out)
