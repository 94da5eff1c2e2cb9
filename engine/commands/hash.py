"""Hash commands: HSET … HSCAN over ``engine.types.hash.Hash``.

Handlers never look at a hash's encoding; they call its methods, and the
type decides when the packed form becomes a table (``c.ks.limits``).

Keys: a write that creates a hash stores it with ``Database.set``; one that
changes a hash in place calls ``Database.touched``; a hash that loses its
last field is deleted (Redis keeps no empty hash). Every argument is checked
before the first change, so a refused command changes nothing.

Effects (made deterministic, as DESIGN.md asks): HSET, HMSET, HSETNX, HDEL
and HINCRBY are journaled as sent when they changed something -- HSETNX on
an existing field and HDEL of fields that are all absent journal nothing
(Redis propagates HDEL as sent, absent fields included, when it removed any);
HINCRBYFLOAT becomes ``HSET key field <result>``, so replay does not redo
long-double arithmetic; the reads, HRANDFIELD included, journal nothing.

Keyspace events (class ``h``): one ``hset`` for HSET, HMSET and an HSETNX
that set its field (a field set to the value it had included); ``hdel``
when fields were removed, then ``del`` (class ``g``) if the hash is gone;
``hincrby``; ``hincrbyfloat``.
"""

from __future__ import annotations

from engine import errors, longdouble
from engine.commands.scan import parse_cursor, parse_scan_options
from engine.errors import CommandError
from engine.keyspecs import spec
from engine.notify import GENERIC, HASH
from engine.registry import command
from engine.reply import INTS, OK, ONE, ZERO
from engine.types.hash import Hash
from engine.util import INT64_MAX, INT64_MIN, add_int64, parse_int

# HRANDFIELD ... WITHVALUES refuses a count beyond LONG_MAX / 2 either way.
_HALF_LONG = INT64_MAX // 2


def _write_hash(c, key: bytes):
    """The hash under ``key`` for a write: None when missing, WRONGTYPE otherwise."""
    v = c.db.get(key)
    if v is None or type(v) is Hash:
        return v
    raise CommandError(errors.WRONGTYPE)


def _read_hash(c, key: bytes):
    """The hash under ``key`` for a read, counted as a keyspace hit or miss."""
    v = c.db.get(key)
    if v is None:
        c.ks.misses += 1
        return None
    if type(v) is Hash:
        c.ks.hits += 1
        return v
    raise CommandError(errors.WRONGTYPE)


def _check_pairs(argv: list, name: str) -> None:
    if len(argv) % 2:
        raise CommandError(errors.WRONG_ARITY.format(name))


def _set_pairs(c, argv: list) -> int:
    key = argv[1]
    h = _write_hash(c, key)
    if h is None:
        h = Hash()
        created = h.set_pairs(argv, 2, c.ks.limits)
        c.db.set(key, h)
    else:
        created = h.set_pairs(argv, 2, c.ks.limits)
        c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(HASH, b"hset", key)
    return created


def _set_one(c, key: bytes, h, field: bytes, value: bytes) -> None:
    """Store one field of ``h`` (None: a new hash under ``key``)."""
    if h is None:
        h = Hash()
        h.set(field, value, c.ks.limits)
        c.db.set(key, h)
    else:
        h.set(field, value, c.ks.limits)
        c.db.touched(key)


def _count(n: int):
    return INTS[n] if n < 1024 else n


# --- writes --------------------------------------------------------------------

@command("hset", -4, "write denyoom fast", (1, 1, 1), "@write @hash @fast", group="hash",
         summary="Set fields of a hash", since="2.0.0",
         key_specs=(spec("RW update"),))
def hset(c, argv):
    """HSET key field value [field value ...] -- the number of fields added.

    O(1) per pair (O(n) for the packed encoding). Effect: as sent.
    """
    if len(argv) == 4:
        # One field of an existing hash with no TTL (the common case written
        # out: the general path's calls were a third of its cost).
        key = argv[1]
        db = c.db
        h = db.data.get(key)
        if type(h) is Hash and not (db.expires and key in db.expires):
            ks = c.ks
            created = h.set(argv[2], argv[3], ks.limits)
            ks.changed(db, key)
            ks.effects.append((db.index, argv))
            if ks.notify_flags:
                c.notify(HASH, b"hset", key)
            return ONE if created else ZERO
    _check_pairs(argv, "hset")
    return _count(_set_pairs(c, argv))


@command("hmset", -4, "write denyoom fast", (1, 1, 1), "@write @hash @fast", group="hash",
         summary="Set fields of a hash (deprecated form of HSET)", since="2.0.0",
         key_specs=(spec("RW update"),))
def hmset(c, argv):
    """HMSET key field value [field value ...] -- OK. O(1) per pair. Effect: as sent."""
    _check_pairs(argv, "hmset")
    _set_pairs(c, argv)
    return OK


@command("hsetnx", 4, "write denyoom fast", (1, 1, 1), "@write @hash @fast", group="hash",
         summary="Set a hash field only if it does not exist yet", since="2.0.0",
         key_specs=(spec("RW insert"),))
def hsetnx(c, argv):
    """HSETNX key field value -- 1 if set, 0 if the field existed. O(1).

    Effect: as sent when it set the field, nothing otherwise.
    """
    key, field = argv[1], argv[2]
    h = _write_hash(c, key)
    if h is not None and field in h:
        return ZERO
    _set_one(c, key, h, field, argv[3])
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(HASH, b"hset", key)
    return ONE


@command("hdel", -3, "write fast", (1, 1, 1), "@write @hash @fast", group="hash",
         summary="Remove fields from a hash", since="2.0.0",
         key_specs=(spec("RW delete"),))
def hdel(c, argv):
    """HDEL key field [field ...] -- the number of fields removed. O(N) fields.

    The key goes with its last field. Effect: as sent, when any was removed.
    """
    key = argv[1]
    h = _write_hash(c, key)
    if h is None:
        return ZERO
    n = h.delete(argv[2:])
    if n:
        notifying = c.ks.notify_flags
        if notifying:
            c.notify(HASH, b"hdel", key)
        if len(h):
            c.db.touched(key)
        else:
            c.db.delete(key)
            if notifying:
                c.notify(GENERIC, b"del", key)
        c.emit(argv)
    return _count(n)


@command("hincrby", 4, "write denyoom fast", (1, 1, 1), "@write @hash @fast", group="hash",
         summary="Add an integer to a hash field's integer", since="2.0.0")
def hincrby(c, argv):
    """HINCRBY key field increment -- the new value. O(1). Effect: as sent.

    A missing field counts as 0; a value that is not a canonical 64-bit
    integer, or a sum out of range, is refused and changes nothing.
    """
    key, field = argv[1], argv[2]
    incr = parse_int(argv[3])
    h = _write_hash(c, key)
    new = add_int64(h.get(field) if h is not None else None, incr, errors.HASH_VALUE_NOT_INTEGER)
    _set_one(c, key, h, field, b"%d" % new)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(HASH, b"hincrby", key)
    return INTS[new] if 0 <= new < 1024 else new


@command("hincrbyfloat", 4, "write denyoom fast", (1, 1, 1), "@write @hash @fast", group="hash",
         summary="Add a decimal number to a hash field's number", since="2.6.0")
def hincrbyfloat(c, argv):
    """HINCRBYFLOAT key field increment -- the new value, as Redis prints it. O(1).

    Long-double arithmetic and formatting, as INCRBYFLOAT (engine.longdouble).
    An infinite increment is refused before the key is read; a stored value
    that is not a number, or an infinite sum, is refused too.
    Effect: ``HSET key field <result>``.
    """
    key, field = argv[1], argv[2]
    incr = longdouble.parse(argv[3])
    if incr is None:
        raise CommandError(errors.NOT_FLOAT)
    if type(incr) is float:
        raise CommandError(errors.INCREMENT_NAN_OR_INF)
    h = _write_hash(c, key)
    old = h.get(field) if h is not None else None
    if old is None:
        current = longdouble.ZERO
    else:
        current = longdouble.parse(old)
        if current is None:
            raise CommandError(errors.HASH_VALUE_NOT_FLOAT)
    total = longdouble.add(current, incr)
    if total is None or type(total) is float:
        raise CommandError(errors.NAN_OR_INF)
    out = longdouble.format_human(total)
    _set_one(c, key, h, field, out)
    c.emit([b"HSET", key, field, out])
    if c.ks.notify_flags:
        c.notify(HASH, b"hincrbyfloat", key)
    return out


# --- reads ---------------------------------------------------------------------

@command("hget", 3, "readonly fast", (1, 1, 1), "@read @hash @fast", group="hash",
         summary="The value of a hash field", since="2.0.0")
def hget(c, argv):
    """HGET key field -- the value, or nil. O(1)."""
    h = c.db.get(argv[1])  # _read_hash, inlined: the hottest hash read
    if h is None:
        c.ks.misses += 1
        return None
    if type(h) is not Hash:
        raise CommandError(errors.WRONGTYPE)
    c.ks.hits += 1
    return h.get(argv[2])


@command("hmget", -3, "readonly fast", (1, 1, 1), "@read @hash @fast", group="hash",
         summary="The values of several hash fields", since="2.0.0")
def hmget(c, argv):
    """HMGET key field [field ...] -- each value, nil for missing ones. O(N) fields."""
    h = _read_hash(c, argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    return h.get_many(argv[2:])


@command("hgetall", 2, "readonly", (1, 1, 1), "@read @hash @slow", group="hash",
         summary="Every field and value of a hash", since="2.0.0",
         tips="nondeterministic_output_order")
def hgetall(c, argv):
    """HGETALL key -- field, value, ... (a map in RESP3), in the encoding's order. O(N)."""
    h = _read_hash(c, argv[1])
    return {} if h is None else h.to_dict()


@command("hkeys", 2, "readonly", (1, 1, 1), "@read @hash @slow", group="hash",
         summary="Every field of a hash", since="2.0.0",
         tips="nondeterministic_output_order")
def hkeys(c, argv):
    """HKEYS key -- the fields, in the encoding's order. O(N)."""
    h = _read_hash(c, argv[1])
    return [] if h is None else h.fields()


@command("hvals", 2, "readonly", (1, 1, 1), "@read @hash @slow", group="hash",
         summary="Every value of a hash", since="2.0.0",
         tips="nondeterministic_output_order")
def hvals(c, argv):
    """HVALS key -- the values, in the encoding's order. O(N)."""
    h = _read_hash(c, argv[1])
    return [] if h is None else h.values()


@command("hlen", 2, "readonly fast", (1, 1, 1), "@read @hash @fast", group="hash",
         summary="The number of fields in a hash", since="2.0.0",
         key_specs=(spec("RO"),))
def hlen(c, argv):
    """HLEN key -- the number of fields, 0 if missing. O(1)."""
    h = _read_hash(c, argv[1])
    return ZERO if h is None else _count(len(h))


@command("hstrlen", 3, "readonly fast", (1, 1, 1), "@read @hash @fast", group="hash",
         summary="The length of a hash field's value", since="3.2.0",
         key_specs=(spec("RO"),))
def hstrlen(c, argv):
    """HSTRLEN key field -- the value's length in bytes, 0 if missing. O(1)."""
    h = _read_hash(c, argv[1])
    v = None if h is None else h.get(argv[2])
    return ZERO if v is None else _count(len(v))


@command("hexists", 3, "readonly fast", (1, 1, 1), "@read @hash @fast", group="hash",
         summary="Whether a hash has a field", since="2.0.0",
         key_specs=(spec("RO"),))
def hexists(c, argv):
    """HEXISTS key field -- 1 or 0. O(1)."""
    h = _read_hash(c, argv[1])
    return ONE if h is not None and argv[2] in h else ZERO


@command("hrandfield", -2, "readonly", (1, 1, 1), "@read @hash @slow", group="hash",
         summary="Random fields of a hash", since="6.2.0",
         tips="nondeterministic_output")
def hrandfield(c, argv):
    """HRANDFIELD key [count [WITHVALUES]] -- random fields (and values).

    Without count: one field, nil when the key is missing. A positive count
    gives up to that many distinct fields (the whole hash, in order, when it
    asks for as many as there are); a negative one that many picks, which may
    repeat. WITHVALUES interleaves the values (RESP3: one [field, value]
    pair per pick). O(count) (O(N) for a distinct count of a third or more).
    The arguments are checked before the key is looked up, as in Redis.
    """
    if len(argv) == 2:
        h = _read_hash(c, argv[1])
        return None if h is None else h.random_field()[0]
    count = parse_int(argv[2])
    if count == INT64_MIN:
        raise CommandError(errors.COUNT_OUT_OF_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(errors.SYNTAX)
    withvalues = len(argv) == 4
    if withvalues and not -_HALF_LONG <= count <= _HALF_LONG:
        raise CommandError(errors.VALUE_OUT_OF_RANGE)
    h = _read_hash(c, argv[1])
    if h is None or count == 0:
        return []
    size = len(h)
    if count < 0 or count == 1:
        fields, values = h.random_repeating(-count if count < 0 else 1)
    elif count >= size:
        fields, values = h.fields(), h.values()
    else:
        fields, values = h.random_distinct(count)
    if not withvalues:
        return fields
    if c.protocol >= 3:
        return [list(p) for p in zip(fields, values)]
    out = [None] * (2 * len(fields))
    out[::2] = fields
    out[1::2] = values
    return out


@command("hscan", -3, "readonly", (1, 1, 1), "@read @hash @slow", group="hash",
         summary="Walk the fields of a hash", since="2.8.0",
         tips="nondeterministic_output")
def hscan(c, argv):
    """HSCAN key cursor [MATCH pattern] [COUNT count] -- [next cursor, [field, value, ...]].

    A packed hash is answered whole in one call (cursor 0), as Redis answers
    for a listpack; a table is walked by position, O(COUNT) per call, with
    SCAN's guarantee (``engine.dictscan``). MATCH filters on the field. The
    cursor is checked before the key, the options after it, as in Redis (a
    missing key answers an empty scan whatever the options say).
    """
    cursor = parse_cursor(argv[2])
    h = _read_hash(c, argv[1])
    if h is None:
        return [b"0", []]
    count, matcher, _ = parse_scan_options(argv, 3, allow_type=False)
    nxt, fields, values = h.scan(cursor, count)
    out = []
    for f, v in zip(fields, values):
        if matcher is None or matcher(f):
            out.append(f)
            out.append(v)
    return [b"%d" % nxt, out]
