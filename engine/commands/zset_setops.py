"""Sorted set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD.

Inputs may be sorted sets or plain sets (a set member counts as score 1);
a missing key is an empty input. Every input key's type is checked before
the options are read, as Redis does. WEIGHTS multiply each input's scores
(a product that is NaN, ``inf * 0``, counts as 0) and AGGREGATE SUM|MIN|MAX
combines a member's weighted scores (a SUM that is NaN, ``inf + -inf``,
counts as 0). ZDIFF takes neither.

Cost: union O(N) over all inputs; intersection O(N * K) worst case, walking
the smallest input and looking members up in the others; difference O(N).
The reply is the result in set order, built O(M log M).

Effects: a STORE command is recorded as sent when it changed its
destination (stored a result, or deleted the old value for an empty one).
Keyspace events: ``zunionstore``, ``zinterstore`` or ``zdiffstore`` (class
``z``) on the destination, after its ``new``; ``del`` when an empty result
removed it.
"""

from __future__ import annotations

from engine import errors
from engine.commands.zset import numkeys_keys, parse_score, scored
from engine.commands.zset_range import store_result
from engine.errors import CommandError
from engine.registry import command
from engine.types import type_name
from engine.types.zset import ZSet
from engine.util import parse_int

UNION, INTER, DIFF = 1, 2, 3


def _source(c, key: bytes):
    """member -> score for one input (None for a missing key)."""
    v = c.db.get(key)
    if v is None:
        return None
    if type(v) is ZSet:
        return v.score_map()
    if type_name(v) == "set":
        return dict.fromkeys(v.members(), 1.0)
    raise CommandError(errors.WRONGTYPE)


def _parse(c, argv, numkeys_at: int, op: int, name: str, store: bool, card_only: bool = False):
    """(sources, weights, aggregate, withscores, limit) of a set-algebra command."""
    numkeys = parse_int(argv[numkeys_at])
    if numkeys < 1:
        raise CommandError(errors.ZSET_NEED_ONE_KEY.format(name))
    n = len(argv)
    if numkeys > n - numkeys_at - 1:
        raise CommandError(errors.SYNTAX)
    j = numkeys_at + 1
    sources = [_source(c, k) for k in argv[j:j + numkeys]]
    j += numkeys
    weights = [1.0] * numkeys
    aggregate = b"SUM"
    withscores = False
    limit = 0
    while j < n:
        opt = argv[j].upper()
        left = n - j
        if op != DIFF and not card_only and left >= numkeys + 1 and opt == b"WEIGHTS":
            weights = [parse_score(w, errors.ZSET_WEIGHT_NOT_FLOAT) for w in argv[j + 1:j + 1 + numkeys]]
            j += numkeys + 1
        elif op != DIFF and not card_only and left >= 2 and opt == b"AGGREGATE":
            aggregate = argv[j + 1].upper()
            if aggregate not in (b"SUM", b"MIN", b"MAX"):
                raise CommandError(errors.SYNTAX)
            j += 2
        elif not store and not card_only and opt == b"WITHSCORES":
            withscores = True
            j += 1
        elif card_only and left >= 2 and opt == b"LIMIT":
            limit = parse_int(argv[j + 1], errors.LIMIT_NEGATIVE)
            if limit < 0:
                raise CommandError(errors.LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return sources, weights, aggregate, withscores, limit


def _weighted(s: float, w: float) -> float:
    v = s * w
    return 0.0 if v != v else v


def _combine(a: float, b: float, aggregate: bytes) -> float:
    if aggregate == b"SUM":
        v = a + b
        return 0.0 if v != v else v
    if aggregate == b"MIN":
        return b if b < a else a
    return b if b > a else a


def compute(op: int, sources, weights, aggregate: bytes) -> dict:
    """member -> score of the result."""
    if op == DIFF:
        first = sources[0]
        if not first:
            return {}
        others = [s for s in sources[1:] if s]
        return {m: s for m, s in first.items() if not any(m in o for o in others)}
    order = sorted(range(len(sources)), key=lambda i: len(sources[i] or ()))
    if op == UNION:
        out: dict = {}
        for i in order:
            src, w = sources[i], weights[i]
            if not src:
                continue
            for m, s in src.items():
                v = _weighted(s, w)
                o = out.get(m)
                out[m] = v if o is None else _combine(o, v, aggregate)
        return out
    if not sources[order[0]]:
        return {}
    first, rest = order[0], order[1:]
    out = {}
    for m, s in sources[first].items():
        v = _weighted(s, weights[first])
        for i in rest:
            o = sources[i].get(m)
            if o is None:
                break
            v = _combine(v, _weighted(o, weights[i]), aggregate)
        else:
            out[m] = v
    return out


def _reply(c, argv, op: int, name: str):
    sources, weights, aggregate, withscores, _ = _parse(c, argv, 1, op, name, False)
    result = compute(op, sources, weights, aggregate)
    return scored(c, sorted((s, m) for m, s in result.items()), withscores)


def _store(c, argv, op: int, name: str):
    sources, weights, aggregate, _, _ = _parse(c, argv, 2, op, name, True)
    result = compute(op, sources, weights, aggregate)
    return store_result(c, argv, argv[1], [(s, m) for m, s in result.items()], name.encode())


@command("zunion", -3, "readonly movablekeys", (0, 0, 0), "@read @sortedset @slow", group="sorted-set",
         summary="The union of sorted sets", since="6.2.0",
         getkeys=numkeys_keys(1))
def zunion(c, argv):
    """ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] -- the members. O(N + M log M)."""
    return _reply(c, argv, UNION, "zunion")


@command("zunionstore", -4, "write denyoom movablekeys", (1, 1, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Store the union of sorted sets", since="2.0.0",
         getkeys=numkeys_keys(2, dst=True))
def zunionstore(c, argv):
    """ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] -- members stored. O(N + M log M)."""
    return _store(c, argv, UNION, "zunionstore")


@command("zinter", -3, "readonly movablekeys", (0, 0, 0), "@read @sortedset @slow", group="sorted-set",
         summary="The intersection of sorted sets", since="6.2.0",
         getkeys=numkeys_keys(1))
def zinter(c, argv):
    """ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] -- the members. O(N*K + M log M)."""
    return _reply(c, argv, INTER, "zinter")


@command("zinterstore", -4, "write denyoom movablekeys", (1, 1, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Store the intersection of sorted sets", since="2.0.0",
         getkeys=numkeys_keys(2, dst=True))
def zinterstore(c, argv):
    """ZINTERSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] -- members stored. O(N*K + M log M)."""
    return _store(c, argv, INTER, "zinterstore")


@command("zdiff", -3, "readonly movablekeys", (0, 0, 0), "@read @sortedset @slow", group="sorted-set",
         summary="The difference of sorted sets", since="6.2.0",
         getkeys=numkeys_keys(1))
def zdiff(c, argv):
    """ZDIFF numkeys key [key ...] [WITHSCORES] -- members of the first set in no other. O(N + M log M)."""
    return _reply(c, argv, DIFF, "zdiff")


@command("zdiffstore", -4, "write denyoom movablekeys", (1, 1, 1), "@write @sortedset @slow", group="sorted-set",
         summary="Store the difference of sorted sets", since="6.2.0",
         getkeys=numkeys_keys(2, dst=True))
def zdiffstore(c, argv):
    """ZDIFFSTORE dst numkeys key [key ...] -- members stored. O(N + M log M)."""
    return _store(c, argv, DIFF, "zdiffstore")


@command("zintercard", -3, "readonly movablekeys", (0, 0, 0), "@read @sortedset @slow", group="sorted-set",
         summary="The size of the intersection of sorted sets", since="7.0.0",
         getkeys=numkeys_keys(1))
def zintercard(c, argv):
    """ZINTERCARD numkeys key [key ...] [LIMIT limit] -- the intersection's size, at most limit (0: no limit). O(N*K)."""
    sources, _, _, _, limit = _parse(c, argv, 1, INTER, "zintercard", False, card_only=True)
    if not all(sources):
        return 0
    sources.sort(key=len)
    first, rest = sources[0], sources[1:]
    n = 0
    for m in first:
        if all(m in o for o in rest):
            n += 1
            if n == limit:
                break
    return n
