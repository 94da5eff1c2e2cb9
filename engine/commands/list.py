"""List commands (the non-blocking ones): pushes, pops, moves, reads, edits.

Values are ``engine.types.list.List`` (listpack while small, quicklist
beyond; the type converts itself given ``list-max-listpack-size``). A list is
never stored empty: the command that removes its last element deletes the
key, as Redis does.

For the blocking forms (``engine.commands.list_blocking`` or wherever they
live): the pop and move logic is in plain functions that check types, change
the keyspace and keep its invariants but record no effect, so a caller
decides what to journal:

* ``pop_generic(c, key, head, count) -> list | None`` -- up to ``count``
  elements from the head (``head`` true) or the tail of ``key``, in pop
  order; None when the key is missing; WRONGTYPE for another type. Deletes
  the key when it empties it.
* ``move_generic(c, src, dst, from_head, to_head) -> bytes | None`` -- LMOVE's
  work: the element moved, None when ``src`` is missing; WRONGTYPE (before any
  change) when either key holds another type.
* ``mpop_parse(argv, first) -> (keys, head, count)`` -- LMPOP's arguments from
  the numkeys argument at ``argv[first]`` (BLMPOP has its timeout first).

The handlers ``lpop``, ``rpop``, ``lmove``, ``rpoplpush`` and ``lmpop`` are
registered with ``@command`` and may be called directly by a server that
serves a woken client (``TABLE[b"lmove"].handler(session, argv)``): each
journals its own effect.

Effects: pushes, LSET, LINSERT, LREM, LTRIM, LMOVE and RPOPLPUSH as sent
(all deterministic), only when they changed something; LPOP/RPOP as sent;
LMPOP as the concrete ``LPOP key n`` / ``RPOP key n`` of the key it popped.

Keyspace events (class ``l``, ``del`` is ``g``), in Redis's order: one
``lpush``/``rpush`` a push (however many elements); ``lpop``/``rpop`` for
each pop (LMPOP and a served BLPOP included: ``pop_generic`` announces them),
then ``del`` when the list is gone; LMOVE and RPOPLPUSH announce the push to
the destination first, then the pop from the source (and its ``del``);
``lset``, ``linsert``, ``lrem`` (then ``del``) and ``ltrim`` (even when it
kept everything; then ``del``).
"""

from __future__ import annotations

from engine import errors
from engine.commands.zset import numkeys_keys
from engine.errors import CommandError
from engine.notify import GENERIC, LIST
from engine.registry import checks_own_arguments, command
from engine.reply import EMPTY_ARRAY, INTS, NULL_ARRAY, OK, ZERO
from engine.types.list import List
from engine.util import INT64_MAX, parse_int, to_int_or_none

_LEFT, _RIGHT = b"LEFT", b"RIGHT"


def get_list(c, key: bytes):
    """The list under ``key``, None when missing, WRONGTYPE otherwise."""
    v = c.db.get(key)
    if v is None or type(v) is List:
        return v
    raise CommandError(errors.WRONGTYPE)


def _fill(c) -> int:
    return c.ks.limits.list_max_listpack_size


def _length_reply(n: int):
    return INTS[n] if n < 1024 else n


def _count(arg: bytes, error: str, low: int = 0) -> int:
    """A count in ``low..LONG_MAX``; ``error`` for anything else (Redis's
    getRangeLong with a message gives that message for a non-integer too)."""
    v = to_int_or_none(arg)
    if v is None or v < low:
        raise CommandError(error)
    return v


def _where(arg: bytes) -> bool:
    """True for LEFT (the head), False for RIGHT; syntax error otherwise."""
    w = arg.upper()
    if w == _LEFT:
        return True
    if w == _RIGHT:
        return False
    raise CommandError(errors.SYNTAX)


# --- pushes ------------------------------------------------------------------

def _push(c, argv: list, head: bool, only_existing: bool):
    key = argv[1]
    if len(argv) == 3:
        # One element into an existing list with no TTL, written out (the
        # redis-benchmark shape): the calls below, fewer around them. The hot
        # path leaves the arguments' types to LPUSH and RPUSH (see below).
        x = argv[2]
        if type(key) is not bytes or type(x) is not bytes:
            raise TypeError("list elements must be bulk strings")  # the hot path names the protocol error
        db = c.db
        lst = db.data.get(key)
        if type(lst) is List and not (db.expires and key in db.expires):
            ks = c.ks
            n = lst.push_one(x, head, ks.limits.list_max_listpack_size)
            ks.changed(db, key)
            ks.effects.append((db.index, argv))
            if ks.notify_flags:
                c.notify(LIST, b"lpush" if head else b"rpush", key)
            return INTS[n] if n < 1024 else n
    lst = get_list(c, key)
    values = argv[2:]
    if lst is None:
        if only_existing:
            return ZERO
        lst = List()
        n = lst.push(values, head, _fill(c))
        c.db.set(key, lst)
    else:
        n = lst.push(values, head, _fill(c))
        c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(LIST, b"lpush" if head else b"rpush", key)
    return _length_reply(n)


@command("lpush", -3, "write denyoom fast", (1, 1, 1), "@write @list @fast", group="list",
         summary="Prepend elements to a list", since="1.0.0")
def lpush(c, argv):
    """LPUSH key element [element ...] -- the new length. O(1) per element."""
    return _push(c, argv, True, False)


@command("rpush", -3, "write denyoom fast", (1, 1, 1), "@write @list @fast", group="list",
         summary="Append elements to a list", since="1.0.0")
def rpush(c, argv):
    """RPUSH key element [element ...] -- the new length. O(1) per element."""
    return _push(c, argv, False, False)


# The one-element forms check their own arguments' types (in ``_push``),
# cheaper than the hot path's generic check.
checks_own_arguments("lpush", 3)
checks_own_arguments("rpush", 3)


@command("lpushx", -3, "write denyoom fast", (1, 1, 1), "@write @list @fast", group="list",
         summary="Prepend elements to a list only when it exists", since="2.2.0")
def lpushx(c, argv):
    """LPUSHX key element [element ...] -- the new length, 0 if no list. O(1) per element."""
    return _push(c, argv, True, True)


@command("rpushx", -3, "write denyoom fast", (1, 1, 1), "@write @list @fast", group="list",
         summary="Append elements to a list only when it exists", since="2.2.0")
def rpushx(c, argv):
    """RPUSHX key element [element ...] -- the new length, 0 if no list. O(1) per element."""
    return _push(c, argv, False, True)


# --- pops and moves ----------------------------------------------------------

def pop_generic(c, key: bytes, head: bool, count: int):
    """Pop up to ``count`` elements (see the module docstring); no effect recorded."""
    lst = get_list(c, key)
    if lst is None:
        return None
    out = lst.pop(head, count, _fill(c))
    if out:
        notifying = c.ks.notify_flags
        if notifying:
            c.notify(LIST, b"lpop" if head else b"rpop", key)
        if lst.empty():
            c.db.delete(key)
            if notifying:
                c.notify(GENERIC, b"del", key)
        else:
            c.db.touched(key)
    return out


def _pop(c, argv: list, head: bool):
    if len(argv) == 2:
        # One element from a list that keeps one or more, with no TTL,
        # written out: pop_generic's calls, in its order. The hot path leaves
        # the key's type to LPOP and RPOP (see below).
        key = argv[1]
        if type(key) is not bytes:
            raise TypeError("a key must be a bulk string")  # the hot path names the protocol error
        db = c.db
        lst = db.data.get(key)
        if type(lst) is List and not (db.expires and key in db.expires):
            ks = c.ks
            v = lst.pop_one(head, ks.limits.list_max_listpack_size)
            if v is not None:
                if ks.notify_flags:
                    c.notify(LIST, b"lpop" if head else b"rpop", key)
                ks.changed(db, key)
                ks.effects.append((db.index, argv))
                return v
    if len(argv) > 3:
        raise CommandError(errors.WRONG_ARITY.format("lpop" if head else "rpop"))
    if len(argv) == 2:
        out = pop_generic(c, argv[1], head, 1)
        if not out:
            return None
        c.emit(argv)
        return out[0]
    count = _count(argv[2], errors.MUST_BE_POSITIVE)
    lst = get_list(c, argv[1])
    if lst is None:
        return NULL_ARRAY
    if count == 0:
        return EMPTY_ARRAY
    out = pop_generic(c, argv[1], head, count)
    c.emit(argv)
    return out


@command("lpop", -2, "write fast", (1, 1, 1), "@write @list @fast", group="list",
         summary="Remove and return the first elements of a list", since="1.0.0")
def lpop(c, argv):
    """LPOP key [count] -- the first element (nil if none); with count, an array
    of up to count (nil array if no list). O(N) in the elements returned."""
    return _pop(c, argv, True)


@command("rpop", -2, "write fast", (1, 1, 1), "@write @list @fast", group="list",
         summary="Remove and return the last elements of a list", since="1.0.0")
def rpop(c, argv):
    """RPOP key [count] -- as LPOP, from the tail."""
    return _pop(c, argv, False)


checks_own_arguments("lpop", 2)  # as LPUSH's: the key's type is checked in ``_pop``
checks_own_arguments("rpop", 2)


def move_generic(c, src: bytes, dst: bytes, from_head: bool, to_head: bool):
    """LMOVE's work (see the module docstring); no effect recorded."""
    source = get_list(c, src)
    if source is None:
        return None
    target = get_list(c, dst)
    fill = _fill(c)
    value = source.pop(from_head, 1, fill)[0]
    if target is None:
        target = List()
        target.push((value,), to_head, fill)
        c.db.set(dst, target)
    else:
        target.push((value,), to_head, fill)
        if src == dst:
            target.shrink_check(fill)
        c.db.touched(dst)
    notifying = c.ks.notify_flags
    if notifying:
        c.notify(LIST, b"lpush" if to_head else b"rpush", dst)
        c.notify(LIST, b"lpop" if from_head else b"rpop", src)
    if src != dst:
        if source.empty():
            c.db.delete(src)
            if notifying:
                c.notify(GENERIC, b"del", src)
        else:
            c.db.touched(src)
    return value


@command("lmove", 5, "write denyoom", (1, 2, 1), "@write @list @slow", group="list",
         summary="Pop an element from one list and push it onto another", since="6.2.0")
def lmove(c, argv):
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT -- the element moved, nil
    if the source is missing. O(1)."""
    from_head = _where(argv[3])
    to_head = _where(argv[4])
    value = move_generic(c, argv[1], argv[2], from_head, to_head)
    if value is not None:
        c.emit(argv)
    return value


@command("rpoplpush", 3, "write denyoom", (1, 2, 1), "@write @list @slow", group="list",
         summary="Pop the last element of a list and push it onto another's head", since="1.2.0")
def rpoplpush(c, argv):
    """RPOPLPUSH source destination -- LMOVE source destination RIGHT LEFT. O(1)."""
    value = move_generic(c, argv[1], argv[2], False, True)
    if value is not None:
        c.emit(argv)
    return value


def mpop_parse(argv: list, first: int):
    """(keys, head, count) of ``numkeys key [key ...] LEFT|RIGHT [COUNT count]``."""
    numkeys = _count(argv[first], errors.NUMKEYS_NOT_POSITIVE, 1)
    where_at = first + 1 + numkeys
    if where_at >= len(argv):
        raise CommandError(errors.SYNTAX)
    head = _where(argv[where_at])
    count = None
    j = where_at + 1
    n = len(argv)
    while j < n:
        if argv[j].upper() == b"COUNT" and j + 1 < n and count is None:
            count = _count(argv[j + 1], errors.COUNT_NOT_POSITIVE, 1)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return argv[first + 1:where_at], head, 1 if count is None else count


def mpop_first(c, keys, head: bool, count: int):
    """Pop from the first non-empty list of ``keys``: ``[key, elements]`` and the
    effect to journal, or (None, None) when every key is missing."""
    for key in keys:
        if get_list(c, key) is None:
            continue
        out = pop_generic(c, key, head, count)
        effect = [b"LPOP" if head else b"RPOP", key, b"%d" % len(out)]
        return [key, out], effect
    return None, None


@command("lmpop", -4, "write movablekeys", (0, 0, 0), "@write @list @slow", group="list",
         summary="Pop elements from the first non-empty list of several", since="7.0.0",
         getkeys=numkeys_keys(1))
def lmpop(c, argv):
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] -- [key, elements] of
    the first non-empty list, nil if none. O(N+M): keys looked at, elements."""
    keys, head, count = mpop_parse(argv, 1)
    reply, effect = mpop_first(c, keys, head, count)
    if reply is None:
        return NULL_ARRAY
    c.emit(effect)
    return reply


# --- reads -----------------------------------------------------------------

@command("llen", 2, "readonly fast", (1, 1, 1), "@read @list @fast", group="list",
         summary="The length of a list", since="1.0.0")
def llen(c, argv):
    """LLEN key -- the number of elements, 0 if no list. O(1)."""
    lst = get_list(c, argv[1])
    return ZERO if lst is None else _length_reply(len(lst))


def clamp_range(start: int, stop: int, n: int):
    """Redis's index range: (first, last) inclusive, or None when empty."""
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    if start < 0:
        start = 0
    if start > stop or start >= n:
        return None
    return start, min(stop, n - 1)


# Indexes as LRANGE's callers write them ("0", "-1", "99"), read from a table:
# parse_int costs twice the rest of an LRANGE 0 99 of short elements. The
# integers in it are the interpreter's shared small ones (about 20 KB).
_SMALL_INDEX = {b"%d" % i: i for i in range(-16, 257)}


@command("lrange", 4, "readonly", (1, 1, 1), "@read @list @slow", group="list",
         summary="A range of elements of a list", since="1.0.0")
def lrange(c, argv):
    """LRANGE key start stop -- the elements start..stop (inclusive, negative
    from the tail). O(S+N): S the distance of start from its end, N returned."""
    start = _SMALL_INDEX.get(argv[2])
    if start is None:
        start = parse_int(argv[2])
    stop = _SMALL_INDEX.get(argv[3])
    if stop is None:
        stop = parse_int(argv[3])
    key = argv[1]
    db = c.db
    lst = db.data.get(key)
    if type(lst) is not List or (db.expires and key in db.expires):
        lst = get_list(c, key)
        if lst is None:
            return EMPTY_ARRAY
    return lst.window(start, stop)


@command("lindex", 3, "readonly", (1, 1, 1), "@read @list @slow", group="list",
         summary="An element of a list by its index", since="1.0.0")
def lindex(c, argv):
    """LINDEX key index -- the element, nil when out of range. O(N) in the
    distance of index from the nearer end (in nodes)."""
    lst = get_list(c, argv[1])
    if lst is None:
        return None
    return lst.index(parse_int(argv[2]))


_RANK_OUT_OF_RANGE = errors.COUNT_OUT_OF_RANGE  # -LONG_MAX..LONG_MAX, in the same words


@command("lpos", -3, "readonly", (1, 1, 1), "@read @list @slow", group="list",
         summary="The positions of an element in a list", since="6.0.6")
def lpos(c, argv):
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len] -- the
    index of the rank-th match (nil if none); with COUNT, an array of up to
    num-matches indexes (0: all). O(N), N at most MAXLEN."""
    rank, count, maxlen = 1, None, 0
    j, n = 3, len(argv)
    while j < n:
        opt = argv[j].upper()
        more = j + 1 < n
        if opt == b"RANK" and more:
            rank = parse_int(argv[j + 1])
            if rank == -(2**63):
                raise CommandError(_RANK_OUT_OF_RANGE)
            if rank == 0:
                raise CommandError(errors.LPOS_RANK_ZERO)
        elif opt == b"COUNT" and more:
            count = _count(argv[j + 1], errors.LPOS_COUNT_NEGATIVE)
        elif opt == b"MAXLEN" and more:
            maxlen = _count(argv[j + 1], errors.LPOS_MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
        j += 2
    lst = get_list(c, argv[1])
    if lst is None:
        return EMPTY_ARRAY if count is not None else None
    want = 1 if count is None else (count or INT64_MAX)
    found = lst.positions(argv[2], rank, want, maxlen)
    if count is None:
        return found[0] if found else None
    return found


# --- edits -------------------------------------------------------------------

@command("lset", 4, "write denyoom", (1, 1, 1), "@write @list @slow", group="list",
         summary="Replace an element of a list by its index", since="1.0.0")
def lset(c, argv):
    """LSET key index element -- OK. O(N) in the distance of index from the
    nearer end (in nodes), plus the node it changes."""
    key = argv[1]
    lst = c.db.get(key)
    if lst is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if type(lst) is not List:
        raise CommandError(errors.WRONGTYPE)
    index = parse_int(argv[2])
    if not lst.set(index, argv[3], _fill(c)):
        raise CommandError(errors.INDEX_OUT_OF_RANGE)
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(LIST, b"lset", key)
    return OK


@command("linsert", 5, "write denyoom", (1, 1, 1), "@write @list @slow", group="list",
         summary="Insert an element before or after another in a list", since="2.2.0")
def linsert(c, argv):
    """LINSERT key BEFORE|AFTER pivot element -- the new length, -1 when the
    pivot is not found, 0 when there is no list. O(N) to find the pivot."""
    where = argv[2].upper()
    if where == b"AFTER":
        after = True
    elif where == b"BEFORE":
        after = False
    else:
        raise CommandError(errors.SYNTAX)
    key = argv[1]
    lst = get_list(c, key)
    if lst is None:
        return ZERO
    if not lst.insert(argv[3], argv[4], after, _fill(c)):
        return -1
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(LIST, b"linsert", key)
    return _length_reply(len(lst))


@command("lrem", 4, "write", (1, 1, 1), "@write @list @slow", group="list",
         summary="Remove occurrences of an element from a list", since="1.0.0")
def lrem(c, argv):
    """LREM key count element -- how many were removed: the first count from
    the head (count > 0), from the tail (< 0), or all (0). O(N)."""
    count = parse_int(argv[2])
    key = argv[1]
    lst = get_list(c, key)
    if lst is None:
        return ZERO
    removed = lst.remove(argv[3], count, _fill(c))
    if removed:
        notifying = c.ks.notify_flags
        if notifying:
            c.notify(LIST, b"lrem", key)
        if lst.empty():
            c.db.delete(key)
            if notifying:
                c.notify(GENERIC, b"del", key)
        else:
            c.db.touched(key)
        c.emit(argv)
    return _length_reply(removed)


@command("ltrim", 4, "write", (1, 1, 1), "@write @list @slow", group="list",
         summary="Keep only a range of elements of a list", since="1.0.0")
def ltrim(c, argv):
    """LTRIM key start stop -- OK. O(N) in the elements removed."""
    start = parse_int(argv[2])
    stop = parse_int(argv[3])
    key = argv[1]
    lst = get_list(c, key)
    if lst is None:
        return OK
    n = len(lst)
    r = clamp_range(start, stop, n)
    if r is None:
        c.db.delete(key)
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(LIST, b"ltrim", key)
            c.notify(GENERIC, b"del", key)
        return OK
    left, right = r[0], n - 1 - r[1]
    if left or right:
        lst.trim(left, right, _fill(c))
        c.db.touched(key)
        c.emit(argv)
    if c.ks.notify_flags:  # a trim that kept everything too, as Redis announces it
        c.notify(LIST, b"ltrim", key)
    return OK
