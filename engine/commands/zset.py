"""Sorted set commands: members, scores, ranks, pops, random members, ZSCAN.

(ZRANGE and every range command are in ``engine.commands.zset_range``;
ZUNION/ZINTER/ZDIFF and their STORE forms in ``engine.commands.zset_setops``.)

Handlers see a ``engine.types.zset.ZSet`` only through its methods. Scores
are read as Redis's ``strtod`` reads them (``parse_score``: ``inf``,
``-inf``, hex floats; no spaces, no NaN, no overflow) and replied as Python
floats, which ``server.resp`` prints as Redis does (``%.17g``, ``inf``;
RESP3 doubles).

Pops for the blocking commands: ``pop_generic(c, key, where, count)`` pops up
to ``count`` members from the MIN (``where`` = ``MIN``) or MAX end of the set
under ``key`` and returns them as ``[(member, score), …]`` (None when the key
is missing; WRONGTYPE raised for another type). It records the effect
``ZPOPMIN|ZPOPMAX key n``, deletes an emptied key and marks the key touched,
so BZPOPMIN/BZPOPMAX/BZMPOP served later journal exactly what ZPOPMIN/ZPOPMAX
would. ``zpop_reply`` and ``zmpop_reply`` shape the replies as the
non-blocking commands give them.

Effects: ZADD without INCR as sent (its outcome follows from the state);
ZADD INCR and ZINCRBY as ``ZADD key <resulting score> member``, the score
printed with 17 significant digits so that replay gives the same double;
ZREM as sent; a command that changed nothing records nothing.

Keyspace events (class ``z``; ``del`` is ``g``): one ``zadd`` when ZADD
added or changed members, ``zincr`` for ZINCRBY and ZADD INCR that changed a
score; ``zrem``, then ``del`` if the set is gone; ``zpopmin``/``zpopmax``
for each pop (ZMPOP and the served blocking pops included: ``pop_generic``
announces them), then ``del``.
"""

from __future__ import annotations

import random

from engine import errors
from engine.commands.scan import parse_cursor, parse_scan_options
from engine.dictscan import below
from engine.errors import CommandError
from engine.notify import GENERIC, ZSET
from engine.reply import EMPTY_ARRAY, NULL_ARRAY, ONE, ZERO
from engine.registry import command
from engine.types import zset_rdb  # noqa: F401  (registers the RDB codec)
from engine.types.zset import ZSet, format_score, new_for, scan_score
from engine.util import parse_int, to_int_or_none

MIN, MAX = 0, 1
_INF_WORDS = (b"inf", b"infinity")
_INFS = (float("inf"), float("-inf"))
_INF_BOUNDS = {b"+inf": (_INFS[0], False), b"-inf": (_INFS[1], False), b"inf": (_INFS[0], False)}


def parse_score(b: bytes, error: str = errors.NOT_FLOAT) -> float:
    """A double as Redis's ``getDoubleFromObject`` reads it, or CommandError(``error``)."""
    if b.isdigit() and len(b) < 300:
        # Plain digits (most scores): float() reads them as strtod does, and
        # fewer than 300 digits can neither overflow nor underflow.
        return float(b)
    if not b or b[:1].isspace() or b[-1:].isspace() or b"_" in b:
        raise CommandError(error)
    try:
        v = float(b)
    except ValueError:
        v = _hex_float(b, error)
    if v != v:
        raise CommandError(error)
    if v in _INFS:
        if b.lstrip(b"+-").lower() not in _INF_WORDS:
            raise CommandError(error)  # overflow: strtod's ERANGE
    elif v == 0 and b.strip(b"+-0.") and any(48 < ch <= 57 for ch in b.lower().split(b"e")[0].split(b"p")[0]):
        raise CommandError(error)  # underflow to zero (a plain 0, 0.0, -0 is not)
    return v


def _hex_float(b: bytes, error: str) -> float:
    s = b.lstrip(b"+-")
    if s[:2].lower() != b"0x":
        raise CommandError(error)
    try:
        v = float.fromhex(b.decode("ascii"))
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise CommandError(error) from None
    return v


def parse_bound(b: bytes):
    """A score range bound: (value, exclusive), or CommandError.

    Redis reads a bound with plain ``strtod``: leading spaces are skipped, an
    empty string is 0 and an overflow is an infinity (unlike a score).
    """
    if b.isdigit() and len(b) < 300:  # as in parse_score
        return float(b), False
    v = _INF_BOUNDS.get(b)
    if v is not None:
        return v
    ex = b[:1] == b"("
    s = b[1:] if ex else b
    if not s:
        return 0.0, ex
    t = s.lstrip(b" \t\n\v\f\r")
    if not t or t[-1:].isspace() or b"_" in t:
        raise CommandError(errors.ZSET_MINMAX_NOT_FLOAT)
    try:
        v = float(t)
    except ValueError:
        v = _hex_float(t, errors.ZSET_MINMAX_NOT_FLOAT)
    if v != v:
        raise CommandError(errors.ZSET_MINMAX_NOT_FLOAT)
    return v, ex


def parse_lex(b: bytes):
    """A lex bound: (member, exclusive), None for ``-``, True for ``+``."""
    if b == b"-":
        return None
    if b == b"+":
        return True
    if b[:1] == b"(":
        return b[1:], True
    if b[:1] == b"[":
        return b[1:], False
    raise CommandError(errors.ZSET_LEX_RANGE)


def numkeys_keys(at: int, dst: bool = False):
    """COMMAND GETKEYS for ``… numkeys key …`` with numkeys at ``at`` (and a destination at 1)."""

    def positions(argv: list) -> list[int]:
        n = to_int_or_none(argv[at]) if len(argv) > at else None
        if n is None or n < 1:
            return []
        return ([1] if dst else []) + list(range(at + 1, min(at + 1 + n, len(argv))))

    return positions


def get_zset(c, key: bytes):
    """The sorted set under ``key``, None when missing, WRONGTYPE otherwise."""
    v = c.db.get(key)
    if v is None or type(v) is ZSet:
        return v
    raise CommandError(errors.WRONGTYPE)


def scored(c, pairs, withscores: bool) -> list:
    """A range reply from (score, member) pairs: flat in RESP2, pairs in RESP3."""
    if not withscores:
        return [m for _, m in pairs]
    if c.protocol == 3:
        return [[m, s] for s, m in pairs]
    out = []
    for s, m in pairs:
        out.append(m)
        out.append(s)
    return out


# --- ZADD / ZINCRBY ------------------------------------------------------------

_NX, _XX, _CH, _INCR, _GT, _LT = 1, 2, 4, 8, 16, 32
_ZADD_FLAGS = {b"NX": _NX, b"XX": _XX, b"CH": _CH, b"INCR": _INCR, b"GT": _GT, b"LT": _LT}


def _add_generic(c, key: bytes, flags: int, pairs: list):
    """Apply ZADD's rules to ``pairs`` [(score, member)] in order: (added, updated, last score or None).

    Nothing is changed when the command must fail (NaN): every check runs
    before ``ZSet.update``.
    """
    z = get_zset(c, key)
    if z is None:
        if flags & _XX:
            return 0, 0, None
        z = new_for(c.ks.limits, len(pairs), max(len(m) for _, m in pairs))
        fresh = True
        current = {}
    else:
        fresh = False
        current = z.score_map() if len(pairs) > 1 or z.encoding == "listpack" else None
    pending = {}
    added = updated = 0
    last = None
    for s, m in pairs:
        if m in pending:
            cur = pending[m]
        elif current is not None:
            cur = current.get(m)
        else:
            cur = z.score(m)
        if cur is None:
            if flags & _XX:
                last = None
                continue
            pending[m] = s
            added += 1
            last = s
            continue
        if flags & _NX:
            last = None
            continue
        if flags & _INCR:
            s = cur + s
            if s != s:
                raise CommandError(errors.ZSET_NAN)
        if (flags & _GT and s <= cur) or (flags & _LT and s >= cur):
            last = None
            continue
        last = s
        if s != cur:
            pending[m] = s
            updated += 1
    if pending:
        z.update(pending, c.ks.limits)
        if fresh:
            c.db.set(key, z)
        else:
            c.db.touched(key)
    return added, updated, last


@command("zadd", -4, "write denyoom fast", (1, 1, 1), "@write @sortedset @fast", group="sorted-set",
         summary="Add members to a sorted set, or update their scores", since="1.2.0")
def zadd(c, argv):
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...] -- added (or changed) count. O(log N) each."""
    n = len(argv)
    if n == 4:
        b = argv[2]
        if b.isdigit() and len(b) < 300:  # ZADD key <digits> member, the common form (see parse_score)
            key = argv[1]
            db = c.db
            z = db.data.get(key)
            if type(z) is ZSet and not (db.expires and key in db.expires):
                added = z.put(argv[3], float(b), c.ks.limits)
                if added is None:
                    return ZERO  # that score already: nothing changes
                return _added(c, argv, key, added, 0)
            return _add_one(c, argv, float(b), 0)
    flags = 0
    i = 2
    while i < n:
        a = argv[i]
        if not a[:1].isalpha():  # a score: a digit, sign or dot first (an infinity reads on)
            break
        f = _ZADD_FLAGS.get(a.upper())
        if f is None:
            break
        flags |= f
        i += 1
    rest = n - i
    if rest == 2 and not flags & ~_CH:
        return _add_one(c, argv, parse_score(argv[i]), flags)
    if rest == 0 or rest % 2:
        raise CommandError(errors.SYNTAX)
    if flags & _NX and flags & _XX:
        raise CommandError(errors.ZADD_NX_XX)
    if (flags & _NX and flags & (_GT | _LT)) or (flags & _GT and flags & _LT):
        raise CommandError(errors.ZADD_GT_LT_NX)
    if flags & _INCR and rest > 2:
        raise CommandError(errors.ZADD_INCR_PAIR)
    pairs = [(parse_score(argv[j]), argv[j + 1]) for j in range(i, n, 2)]
    key = argv[1]
    added, updated, last = _add_generic(c, key, flags, pairs)
    if flags & _INCR:
        if added or updated:
            c.emit([b"ZADD", key, format_score(last), pairs[0][1]])
            if c.ks.notify_flags:
                c.notify(ZSET, b"zincr", key)
        return last
    if added or updated:
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(ZSET, b"zadd", key)
    return added + updated if flags & _CH else added


def _add_one(c, argv, s: float, flags: int):
    """ZADD [CH] of the one pair at the end of ``argv``, its score ``s``:
    ``_add_generic``'s outcome without its dicts. A member that already has
    that score changes nothing: no effect, no event, the key not marked."""
    m = argv[-1]
    key = argv[1]
    db = c.db
    z = db.data.get(key)
    if type(z) is not ZSet or (db.expires and key in db.expires):
        z = get_zset(c, key)  # missing, expired or another type
    if z is None:
        z = new_for(c.ks.limits, 1, len(m))
        z.put(m, s, c.ks.limits)
        db.set(key, z)
        c.emit(argv)
        if c.ks.notify_flags:
            c.notify(ZSET, b"zadd", key)
        return ONE
    added = z.put(m, s, c.ks.limits)
    if added is None:
        return ZERO
    return _added(c, argv, key, added, flags)


def _added(c, argv, key: bytes, added: bool, flags: int):
    """After ``ZSet.put`` changed an existing set: mark, record, announce, reply."""
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(ZSET, b"zadd", key)
    return ONE if added or flags else ZERO


@command("zincrby", 4, "write denyoom fast", (1, 1, 1), "@write @sortedset @fast", group="sorted-set",
         summary="Add to a member's score", since="1.2.0")
def zincrby(c, argv):
    """ZINCRBY key increment member -- the new score. O(log N)."""
    inc = parse_score(argv[2])
    key, member = argv[1], argv[3]
    added, updated, last = _add_generic(c, key, _INCR, [(inc, member)])
    if added or updated:
        c.emit([b"ZADD", key, format_score(last), member])
        if c.ks.notify_flags:
            c.notify(ZSET, b"zincr", key)
    return last


# --- ZREM / ZCARD / ZSCORE / ZMSCORE / ZRANK ----------------------------------

@command("zrem", -3, "write fast", (1, 1, 1), "@write @sortedset @fast", group="sorted-set",
         summary="Remove members from a sorted set", since="1.2.0")
def zrem(c, argv):
    """ZREM key member [member ...] -- how many were removed. O(M log N)."""
    key = argv[1]
    z = get_zset(c, key)
    if z is None:
        return 0
    n = z.remove(argv[2:])
    if n:
        notifying = c.ks.notify_flags
        if notifying:
            c.notify(ZSET, b"zrem", key)
        if len(z) == 0:
            c.db.delete(key)
            if notifying:
                c.notify(GENERIC, b"del", key)
        else:
            c.db.touched(key)
        c.emit(argv)
    return n


@command("zcard", 2, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="The number of members of a sorted set", since="1.2.0")
def zcard(c, argv):
    """ZCARD key -- the number of members, 0 for a missing key. O(1)."""
    z = get_zset(c, argv[1])
    return 0 if z is None else len(z)


@command("zscore", 3, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="The score of a member", since="1.2.0")
def zscore(c, argv):
    """ZSCORE key member -- the score, or nil. O(1)."""
    z = get_zset(c, argv[1])
    return None if z is None else z.score(argv[2])


@command("zmscore", -3, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="The scores of several members", since="6.2.0")
def zmscore(c, argv):
    """ZMSCORE key member [member ...] -- one score or nil per member. O(M)."""
    z = get_zset(c, argv[1])
    if z is None:
        return [None] * (len(argv) - 2)
    return z.scores(argv[2:])


def _rank_generic(c, argv, reverse: bool):
    n = len(argv)
    withscore = False
    if n > 4:
        raise CommandError(errors.WRONG_ARITY.format("zrevrank" if reverse else "zrank"))
    if n == 4:
        if argv[3].upper() != b"WITHSCORE":
            raise CommandError(errors.SYNTAX)
        withscore = True
    z = get_zset(c, argv[1])
    found = None if z is None else z.rank(argv[2])
    if found is None:
        return NULL_ARRAY if withscore else None
    rank, score = found
    if reverse:
        rank = len(z) - 1 - rank
    return [rank, score] if withscore else rank


@command("zrank", -3, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="The rank of a member, lowest score first", since="2.0.0")
def zrank(c, argv):
    """ZRANK key member [WITHSCORE] -- the 0-based rank (and score), or nil. O(log N)."""
    return _rank_generic(c, argv, False)


@command("zrevrank", -3, "readonly fast", (1, 1, 1), "@read @sortedset @fast", group="sorted-set",
         summary="The rank of a member, highest score first", since="2.0.0")
def zrevrank(c, argv):
    """ZREVRANK key member [WITHSCORE] -- the 0-based rank from the top (and score), or nil. O(log N)."""
    return _rank_generic(c, argv, True)


# --- pops -------------------------------------------------------------------------

def pop_generic(c, key: bytes, where: int, count: int):
    """Pop up to ``count`` (>= 1) members from the ``where`` (MIN/MAX) end: [(member, score)], or None.

    Records ``ZPOPMIN|ZPOPMAX key n`` for what it took, deletes an emptied key.
    """
    z = get_zset(c, key)
    if z is None:
        return None
    size = len(z)
    k = min(count, size)
    if where == MIN:
        taken = z.remove_span(0, k)
    else:
        taken = z.remove_span(size - k, size)
        taken.reverse()
    notifying = c.ks.notify_flags
    if notifying:
        c.notify(ZSET, b"zpopmin" if where == MIN else b"zpopmax", key)
    if k == size:
        c.db.delete(key)
        if notifying:
            c.notify(GENERIC, b"del", key)
    else:
        c.db.touched(key)
    c.emit([b"ZPOPMIN" if where == MIN else b"ZPOPMAX", key, b"%d" % k])
    return [(m, s) for s, m in taken]


def zpop_reply(c, popped, nested: bool) -> list:
    """ZPOPMIN/ZPOPMAX's reply: flat [m, s, …]; pairs in RESP3 when a count was given."""
    if nested and c.protocol == 3:
        return [[m, s] for m, s in popped]
    out = []
    for m, s in popped:
        out.append(m)
        out.append(s)
    return out


def zmpop_reply(key: bytes, popped) -> list:
    """ZMPOP's reply: [key, [[member, score], …]] in both protocols."""
    return [key, [[m, s] for m, s in popped]]


def _zpop_command(c, argv, where: int):
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    nested = len(argv) == 3
    count = 1
    if nested:
        count = parse_int(argv[2], errors.MUST_BE_POSITIVE)
        if count < 0:
            raise CommandError(errors.MUST_BE_POSITIVE)
    if count == 0:
        get_zset(c, argv[1])
        return EMPTY_ARRAY
    popped = pop_generic(c, argv[1], where, count)
    if popped is None:
        return EMPTY_ARRAY
    return zpop_reply(c, popped, nested)


@command("zpopmin", -2, "write fast", (1, 1, 1), "@write @sortedset @fast", group="sorted-set",
         summary="Remove and return the members with the lowest scores", since="5.0.0")
def zpopmin(c, argv):
    """ZPOPMIN key [count] -- the popped members and scores. O(log N * M)."""
    return _zpop_command(c, argv, MIN)


@command("zpopmax", -2, "write fast", (1, 1, 1), "@write @sortedset @fast", group="sorted-set",
         summary="Remove and return the members with the highest scores", since="5.0.0")
def zpopmax(c, argv):
    """ZPOPMAX key [count] -- the popped members and scores. O(log N * M)."""
    return _zpop_command(c, argv, MAX)


def parse_mpop(argv, numkeys_at: int):
    """ZMPOP's (and BZMPOP's) arguments from ``numkeys``: (keys, where, count)."""
    numkeys = parse_int(argv[numkeys_at], errors.NUMKEYS_NOT_POSITIVE)
    if numkeys < 1:
        raise CommandError(errors.NUMKEYS_NOT_POSITIVE)
    where_at = numkeys_at + numkeys + 1
    if where_at >= len(argv):
        raise CommandError(errors.SYNTAX)
    w = argv[where_at].upper()
    if w == b"MIN":
        where = MIN
    elif w == b"MAX":
        where = MAX
    else:
        raise CommandError(errors.SYNTAX)
    count = None
    j = where_at + 1
    while j < len(argv):
        if count is None and argv[j].upper() == b"COUNT" and j + 1 < len(argv):
            count = parse_int(argv[j + 1], errors.ZMPOP_COUNT_NOT_POSITIVE)
            if count < 1:
                raise CommandError(errors.ZMPOP_COUNT_NOT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return argv[numkeys_at + 1:where_at], where, count or 1


@command("zmpop", -4, "write movablekeys", (0, 0, 0), "@write @sortedset @slow", group="sorted-set",
         summary="Pop members from the first non-empty sorted set of several", since="7.0.0",
         getkeys=numkeys_keys(1))
def zmpop(c, argv):
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count] -- [key, [[member, score], …]] or nil. O(K + M log N)."""
    keys, where, count = parse_mpop(argv, 1)
    for key in keys:
        popped = pop_generic(c, key, where, count)
        if popped is not None:
            return zmpop_reply(key, popped)
    return NULL_ARRAY


# --- ZRANDMEMBER ---------------------------------------------------------------

_LONG_MAX = 2**63 - 1


@command("zrandmember", -2, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Random members of a sorted set", since="6.2.0")
def zrandmember(c, argv):
    """ZRANDMEMBER key [count [WITHSCORES]] -- a member, or count of them (repeats when negative). O(N) at most."""
    n = len(argv)
    if n == 2:
        z = get_zset(c, argv[1])
        if z is None:
            return None
        i = random.randrange(len(z))
        return z.slice(i, i + 1)[0][1]
    if n > 4 or (n == 4 and argv[3].upper() != b"WITHSCORES"):
        raise CommandError(errors.SYNTAX)
    withscores = n == 4
    count = parse_int(argv[2])
    if count < -_LONG_MAX:
        raise CommandError(errors.COUNT_OUT_OF_RANGE)
    if withscores and (count < -(_LONG_MAX // 2) or count > _LONG_MAX // 2):
        raise CommandError(errors.VALUE_OUT_OF_RANGE)
    z = get_zset(c, argv[1])
    if z is None or count == 0:
        return EMPTY_ARRAY
    size = len(z)
    if count < 0:
        pairs = z.pairs()
        picked = [pairs[random.randrange(size)] for _ in range(-count)]
    elif count >= size:
        picked = list(z.pairs())
        random.shuffle(picked)
    else:
        idx = random.sample(range(size), count)
        pairs = z.pairs()
        picked = [pairs[i] for i in idx]
    return scored(c, picked, withscores)


# --- ZSCAN ---------------------------------------------------------------------------

@command("zscan", -3, "readonly", (1, 1, 1), "@read @sortedset @slow", group="sorted-set",
         summary="Walk the members of a sorted set", since="2.8.0")
def zscan(c, argv):
    """ZSCAN key cursor [MATCH pattern] [COUNT count] -- [next cursor, [member, score, …]]. O(COUNT) a call."""
    cursor = parse_cursor(argv[2])
    count, matcher, _ = parse_scan_options(argv, 3, allow_type=False)
    z = get_zset(c, argv[1])
    if z is None:
        return [b"0", []]
    # A listpack holds its scores as text, integral ones as integers
    # (``scan_score``); the hash table's doubles are printed with %.17g.
    if z.encoding == "listpack":
        nxt = 0
        items = z.items()
        fmt = scan_score
    else:
        d = z.score_map()
        nxt, keys = below(d, cursor if cursor < 2**62 else 0, count)
        items = [(m, d[m]) for m in keys]
        fmt = format_score
    out = []
    for m, s in items:
        if matcher is not None and not matcher(m):
            continue
        out.append(m)
        out.append(fmt(s))
    return [b"%d" % nxt, out]

