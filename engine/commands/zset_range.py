"""Sorted set ranges: ZRANGE (by rank, score or lex, either direction, LIMIT),
its older forms, ZRANGESTORE, ZCOUNT, ZLEXCOUNT and the ZREMRANGEBY* family.

Every range is turned into positions in the set's order (``ZSet.score_span``,
``ZSet.lex_span``: O(log N) on the large encoding) and then sliced, so a
range costs O(log N + M) for M members returned, as Redis documents.

Argument checks follow Redis's order: options first (a bad LIMIT integer or an
unknown word before anything else), then the conflicts between them, then the
range itself, and only then the key's type. Effects: ZRANGESTORE and the
ZREMRANGEBY* commands are recorded as sent when they changed something.

Keyspace events: ``zrangestore`` (class ``z``) on the destination, after
its ``new``, or ``del`` (class ``g``) when an empty range removed it;
``zremrangebyrank``, ``zremrangebyscore``, ``zremrangebylex`` (Redis's
names), then ``del`` if the set is gone.
"""

from __future__ import annotations

from engine import errors
from engine.commands.zset import get_zset, parse_bound, parse_lex, scored
from engine.errors import CommandError
from engine.notify import GENERIC, ZSET
from engine.reply import EMPTY_ARRAY
from engine.registry import command
from engine.types.zset import ZSet
from engine.util import parse_int

RANK, SCORE, LEX = 1, 2, 3


def rank_span(start: int, end: int, n: int):
    """Positions (a, b) of ranks start..end (negatives from the end), Redis's clamping."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return 0, 0
    if end >= n:
        end = n - 1
    return start, end + 1


def _select(z: ZSet, kind: int, reverse: bool, lo, hi, offset: int, limit: int) -> list:
    """The (score, member) pairs of a range, in reply order."""
    n = len(z)
    if kind == RANK:
        a, b = rank_span(lo, hi, n)
        if reverse:
            a, b = n - b, n - a
            out = z.slice(a, b)
            out.reverse()
            return out
        return z.slice(a, b)
    if offset < 0:
        return []
    if kind == SCORE:
        a, b = z.score_span(lo[0], lo[1], hi[0], hi[1])
    else:  # (Redis passes over the offset before it checks the far bound)
        a, b = z.lex_span(lo, hi, reverse, offset)
        offset = 0
    if reverse:
        top = b - offset
        bottom = a if limit < 0 else max(a, top - limit)
        if top <= bottom:
            return []
        out = z.slice(bottom, top)
        out.reverse()
        return out
    start = a + offset
    stop = b if limit < 0 else min(b, start + limit)
    return z.slice(start, stop) if start < stop else []


def _range_generic(c, argv, first: int, store: bool, kind: int = 0, reverse=None):
    """Parse a range command from ``argv[first]`` (the source key); (z or None, pairs, withscores)."""
    withscores = False
    offset, limit = 0, -1
    has_limit = False
    n = len(argv)
    j = first + 3
    while j < n:
        opt = argv[j].upper()
        if not store and opt == b"WITHSCORES":
            withscores = True
        elif opt == b"LIMIT" and n - j - 1 >= 2:
            offset = parse_int(argv[j + 1])
            limit = parse_int(argv[j + 2])
            has_limit = True
            j += 2
        elif reverse is None and opt == b"REV":
            reverse = True
        elif kind == 0 and opt == b"BYLEX":
            kind = LEX
        elif kind == 0 and opt == b"BYSCORE":
            kind = SCORE
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    reverse = bool(reverse)
    kind = kind or RANK
    if has_limit and kind == RANK:
        raise CommandError(errors.ZRANGE_LIMIT_NEEDS_BY)
    if withscores and kind == LEX:
        raise CommandError(errors.ZRANGE_BYLEX_WITHSCORES)
    lo_arg, hi_arg = argv[first + 1], argv[first + 2]
    if reverse and kind != RANK:
        lo_arg, hi_arg = hi_arg, lo_arg
    if kind == RANK:
        lo, hi = parse_int(lo_arg), parse_int(hi_arg)
    elif kind == SCORE:
        lo, hi = parse_bound(lo_arg), parse_bound(hi_arg)
    else:
        try:
            lo, hi = parse_lex(lo_arg), parse_lex(hi_arg)
        except CommandError:
            raise CommandError(errors.ZSET_LEX_RANGE) from None
    z = get_zset(c, argv[first])
    if z is None:
        return None, [], withscores
    return z, _select(z, kind, reverse, lo, hi, offset, limit), withscores


def _reply(c, argv, first, kind=0, reverse=None):
    z, pairs, withscores = _range_generic(c, argv, first, False, kind, reverse)
    if z is None:
        return EMPTY_ARRAY
    return scored(c, pairs, withscores)


@command("zrange", -4, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Members in a range of ranks, scores or lex order", since="1.2.0")
def zrange(c, argv):
    """ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES] -- the members. O(log N + M)."""
    return _reply(c, argv, 1)


@command("zrangestore", -5, "write denyoom", (1, 2, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Store a range of a sorted set", since="6.2.0")
def zrangestore(c, argv):
    """ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] -- members stored. O(log N + M)."""
    _, pairs, _ = _range_generic(c, argv, 2, True)
    return store_result(c, argv, argv[1], pairs, b"zrangestore")


def store_result(c, argv, dst: bytes, pairs, event: bytes) -> int:
    """Replace ``dst`` by a set of ``pairs`` (deleted when none); records ``argv``
    if anything changed, announces ``event`` (or ``del``)."""
    if pairs:
        c.db.set(dst, ZSet(pairs, c.ks.limits))
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(ZSET, event, dst)
    elif c.db.delete(dst):
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(GENERIC, b"del", dst)
    return len(pairs)


@command("zrevrange", -4, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Members in a range of ranks, highest score first", since="1.2.0")
def zrevrange(c, argv):
    """ZREVRANGE key start stop [WITHSCORES] -- the members, highest first. O(log N + M)."""
    return _reply(c, argv, 1, RANK, True)


@command("zrangebyscore", -4, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Members in a range of scores", since="1.0.5")
def zrangebyscore(c, argv):
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count] -- the members. O(log N + M)."""
    return _reply(c, argv, 1, SCORE, False)


@command("zrevrangebyscore", -4, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Members in a range of scores, highest first", since="2.2.0")
def zrevrangebyscore(c, argv):
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count] -- the members. O(log N + M)."""
    return _reply(c, argv, 1, SCORE, True)


@command("zrangebylex", -4, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Members in a lex range", since="2.8.9")
def zrangebylex(c, argv):
    """ZRANGEBYLEX key min max [LIMIT offset count] -- the members. O(log N + M)."""
    return _reply(c, argv, 1, LEX, False)


@command("zrevrangebylex", -4, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Members in a lex range, highest first", since="2.8.9")
def zrevrangebylex(c, argv):
    """ZREVRANGEBYLEX key max min [LIMIT offset count] -- the members. O(log N + M)."""
    return _reply(c, argv, 1, LEX, True)


# --- counts -----------------------------------------------------------------------

@command("zcount", 4, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="Count the members in a range of scores", since="2.0.0")
def zcount(c, argv):
    """ZCOUNT key min max -- members with a score in range. O(log N)."""
    lo, hi = parse_bound(argv[2]), parse_bound(argv[3])
    z = get_zset(c, argv[1])
    if z is None:
        return 0
    a, b = z.score_span(lo[0], lo[1], hi[0], hi[1])
    return b - a


def _lex_bounds(argv):
    try:
        return parse_lex(argv[2]), parse_lex(argv[3])
    except CommandError:
        raise CommandError(errors.ZSET_LEX_RANGE) from None


@command("zlexcount", 4, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="Count the members in a lex range", since="2.8.9")
def zlexcount(c, argv):
    """ZLEXCOUNT key min max -- members in the lex range. O(log N)."""
    lo, hi = _lex_bounds(argv)
    z = get_zset(c, argv[1])
    if z is None:
        return 0
    a, b = z.lex_span(lo, hi)
    return b - a


# --- ZREMRANGEBY* -------------------------------------------------------------------

def _remove_span(c, argv, z, key, a: int, b: int, event: bytes) -> int:
    if z is None or b <= a:
        return 0
    z.remove_span(a, b)
    notifying = c.ks.notify_flags
    if notifying:
        c.notify(ZSET, event, key)
    if len(z) == 0:
        c.db.delete(key)
        if notifying:
            c.notify(GENERIC, b"del", key)
    else:
        c.db.touched(key)
    c.emit(argv)
    return b - a


@command("zremrangebyrank", 4, "write", (1, 1, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Remove the members in a range of ranks", since="2.0.0")
def zremrangebyrank(c, argv):
    """ZREMRANGEBYRANK key start stop -- how many were removed. O(log N + M)."""
    start, stop = parse_int(argv[2]), parse_int(argv[3])
    z = get_zset(c, argv[1])
    if z is None:
        return 0
    a, b = rank_span(start, stop, len(z))
    return _remove_span(c, argv, z, argv[1], a, b, b"zremrangebyrank")


@command("zremrangebyscore", 4, "write", (1, 1, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Remove the members in a range of scores", since="1.2.0")
def zremrangebyscore(c, argv):
    """ZREMRANGEBYSCORE key min max -- how many were removed. O(log N + M)."""
    lo, hi = parse_bound(argv[2]), parse_bound(argv[3])
    z = get_zset(c, argv[1])
    if z is None:
        return 0
    a, b = z.score_span(lo[0], lo[1], hi[0], hi[1])
    return _remove_span(c, argv, z, argv[1], a, b, b"zremrangebyscore")


@command("zremrangebylex", 4, "write", (1, 1, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Remove the members in a lex range", since="2.8.9")
def zremrangebylex(c, argv):
    """ZREMRANGEBYLEX key min max -- how many were removed. O(log N + M)."""
    lo, hi = _lex_bounds(argv)
    z = get_zset(c, argv[1])
    if z is None:
        return 0
    a, b = z.lex_span(lo, hi)
    return _remove_span(c, argv, z, argv[1], a, b, b"zremrangebylex")
