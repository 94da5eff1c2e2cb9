"""Geo searches: GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUS_RO,
GEORADIUSBYMEMBER, GEORADIUSBYMEMBER_RO.

One generic function serves all six, as Redis's does, with Redis's order of
checks: the source key's type; the centre and radius of the GEORADIUS forms
(GEORADIUSBYMEMBER's member first, and not at all when the key is missing);
then the options left to right, each refused as soon as it is read (a bad
COUNT, a second FROM or BY of the other kind, FROMMEMBER of a missing
member); then the conflicts (STORE with WITH*, a missing FROM or BY, ANY
without COUNT). A missing source answers an empty array, or 0 after deleting
the destination of a STORE form.

The search reads only the score ranges of the 9 cells ``engine.geohash``
picks (``search_ranges``): O(log N) to find each range in the sorted set
(``ZSet.score_span``) plus the candidates in it, never the whole set. Points
come out cell by cell, in score order within a cell, then sorted by distance
when asked (or when COUNT is given without ANY: nearest first). The sort is
stable, as glibc's qsort (a merge sort) is for Redis; when COUNT keeps fewer
than were found Redis uses its own partial quicksort, whose order among
equal distances is unspecified.

Effects: a STORE form journals the result it wrote, not the search: ``DEL
dst`` when dst existed, then ``ZADD dst score member ...`` (scores with 17
digits, so replay gives the same doubles), in chunks of 1024 pairs; an empty
result that removed dst journals ``DEL dst``. Keyspace events:
``geosearchstore`` / ``georadiusstore`` (class ``z``) on dst, or ``del``.
"""

from __future__ import annotations

from math import sqrt
from operator import itemgetter

from engine import errors, geohash
from engine.commands.geo import NO_MEMBER, parse_box, parse_lonlat, parse_radius
from engine.commands.zset import get_zset
from engine.errors import CommandError
from engine.keyspecs import keyword_spec, spec
from engine.notify import GENERIC, ZSET
from engine.reply import EMPTY_ARRAY, ZERO, Raw
from engine.registry import command
from engine.types.zset import ZSet, format_score
from engine.util import parse_int

STORE_CONFLICT = "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
NEED_FROM = "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}"
NEED_BY = "ERR exactly one of BYRADIUS and BYBOX can be specified for {}"
ANY_NEEDS_COUNT = "ERR the ANY argument requires COUNT argument"
COUNT_POSITIVE = "ERR COUNT must be > 0"

# What a command is: where the centre comes from, whether it may store.
COORDS, MEMBER, SEARCH = 1, 2, 3
NONE, ASC, DESC = 0, 1, 2
_dist = itemgetter(0)
_CHUNK = 1024


class _Shape:
    """The search: centre, radius or box (in the unit), metres per unit."""

    __slots__ = ("x", "y", "box", "radius", "width", "height", "to_m")

    def __init__(self):
        self.x = self.y = 0.0
        self.box = False
        self.radius = self.width = self.height = 0.0
        self.to_m = 1.0


def _center_of(z, member: bytes, shape: _Shape) -> None:
    s = z.score(member)
    if s is None:
        raise CommandError(NO_MEMBER)
    shape.x, shape.y = geohash.decode(s)


def _search_generic(c, argv, kind: int, store_ok: bool = False, search_store: bool = False):
    n = len(argv)
    src = argv[2] if search_store else argv[1]
    z = get_zset(c, src)
    shape = _Shape()
    storekey = argv[1] if search_store else None
    if kind == COORDS:
        shape.x, shape.y = parse_lonlat(argv[2], argv[3])
        shape.radius, shape.to_m = parse_radius(argv[4], argv[5])
        base = 6
    elif kind == MEMBER:
        base = 5
        if z is not None:  # (a missing key: nothing to read, the options are still checked)
            _center_of(z, argv[2], shape)
            shape.radius, shape.to_m = parse_radius(argv[3], argv[4])
    else:
        base = 3 if search_store else 2
    withdist = withhash = withcoord = anyflag = storedist = False
    frommember = fromloc = byradius = bybox = False
    sort = NONE
    count = 0
    i = base
    while i < n:
        a = argv[i].lower()
        left = n - i - 1  # arguments after this one
        if a == b"withdist":
            withdist = True
        elif a == b"withhash":
            withhash = True
        elif a == b"withcoord":
            withcoord = True
        elif a == b"any":
            anyflag = True
        elif a == b"asc":
            sort = ASC
        elif a == b"desc":
            sort = DESC
        elif a == b"count" and left >= 1:
            count = parse_int(argv[i + 1])
            if count <= 0:
                raise CommandError(COUNT_POSITIVE)
            i += 1
        elif store_ok and (a == b"store" or a == b"storedist") and left >= 1:
            storekey = argv[i + 1]
            storedist = a == b"storedist"
            i += 1
        elif search_store and a == b"storedist":
            storedist = True
        elif kind == SEARCH and a == b"frommember" and left >= 1:
            if fromloc:
                raise CommandError(errors.SYNTAX)
            if z is not None:
                _center_of(z, argv[i + 1], shape)
            frommember = True
            i += 1
        elif kind == SEARCH and a == b"fromlonlat" and left >= 2:
            if frommember:
                raise CommandError(errors.SYNTAX)
            shape.x, shape.y = parse_lonlat(argv[i + 1], argv[i + 2])
            fromloc = True
            i += 2
        elif kind == SEARCH and a == b"byradius" and left >= 2:
            if bybox:
                raise CommandError(errors.SYNTAX)
            shape.radius, shape.to_m = parse_radius(argv[i + 1], argv[i + 2])
            shape.box = False
            byradius = True
            i += 2
        elif kind == SEARCH and a == b"bybox" and left >= 3:
            if byradius:
                raise CommandError(errors.SYNTAX)
            shape.width, shape.height, shape.to_m = parse_box(argv[i + 1], argv[i + 2], argv[i + 3])
            shape.box = True
            bybox = True
            i += 3
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if storekey is not None and (withdist or withhash or withcoord):
        raise CommandError(STORE_CONFLICT.format("GEOSEARCHSTORE" if search_store else "STORE option in GEORADIUS"))
    if kind == SEARCH:
        name = argv[0].decode("utf-8", "replace")
        if not (frommember or fromloc):
            raise CommandError(NEED_FROM.format(name))
        if not (byradius or bybox):
            raise CommandError(NEED_BY.format(name))
    if anyflag and not count:
        raise CommandError(ANY_NEEDS_COUNT)
    if z is None:
        if storekey is not None:
            _delete_dst(c, storekey)
            return ZERO
        return EMPTY_ARRAY
    if count and sort == NONE and not anyflag:
        sort = ASC
    found = _find(z, shape, count if anyflag else 0)
    if sort == ASC:
        found.sort(key=_dist)
    elif sort == DESC:
        found.sort(key=_dist, reverse=True)
    if count and count < len(found):
        del found[count:]
    if storekey is not None:
        return _store(c, storekey, found, storedist, shape.to_m, kind == SEARCH)
    if not found:
        return EMPTY_ARRAY
    if not (withdist or withhash or withcoord):
        return [p[1] for p in found]
    return geohash.items(found, shape.to_m, withdist, withhash, withcoord, Raw if c.protocol == 3 else None)


def _find(z, shape: _Shape, limit: int) -> list:
    """The points of ``z`` within ``shape``, as Redis finds them: [(metres, member, score, lon, lat)]."""
    to_m = shape.to_m
    if shape.box:
        hw = shape.width / 2 * to_m
        hh = shape.height / 2 * to_m
        radius_m = sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2)) * to_m
        ranges = geohash.search_ranges(shape.x, shape.y, radius_m, hw, hh)
        p1, p2 = shape.width * to_m, shape.height * to_m
    else:
        p1 = p2 = shape.radius * to_m
        ranges = geohash.search_ranges(shape.x, shape.y, p1, p1, p1)
    found: list = []
    scan = geohash.scan
    box, x, y = shape.box, shape.x, shape.y
    for lo, hi in ranges:
        if limit and len(found) >= limit:
            break
        a, b = z.score_span(float(lo), False, float(hi), True)
        if a < b:
            scan(z.slice(a, b), box, x, y, p1, p2, found, limit)
    return found


def _delete_dst(c, dst: bytes) -> None:
    if c.db.delete(dst):
        c.emit([b"DEL", dst])
        if c.ks.notify_flags:
            c.notify(GENERIC, b"del", dst)


def _store(c, dst: bytes, found: list, storedist: bool, to_m: float, search: bool):
    if not found:
        _delete_dst(c, dst)
        return ZERO
    scores = {}
    for d, m, s, _, _ in found:
        scores[m] = d / to_m if storedist else s
    existed = c.db.get(dst) is not None
    c.db.set(dst, ZSet([(s, m) for m, s in scores.items()], c.ks.limits))
    if existed:
        c.emit([b"DEL", dst])
    items = list(scores.items())
    for j in range(0, len(items), _CHUNK):
        effect = [b"ZADD", dst]
        for m, s in items[j:j + _CHUNK]:
            effect.append(format_score(s))
            effect.append(m)
        c.emit(effect)
    if c.ks.notify_flags:
        c.notify(ZSET, b"geosearchstore" if search else b"georadiusstore", dst)
    return len(scores)


# --- the commands ----------------------------------------------------------------

_STORE_SPECS = (spec("RO access"), keyword_spec("OW update", "STORE", 6), keyword_spec("OW update", "STOREDIST", 6))
_STORE_SPECS_MEMBER = (spec("RO access"), keyword_spec("OW update", "STORE", 5),
                       keyword_spec("OW update", "STOREDIST", 5))


@command("geosearch", -7, "readonly", (1, 1, 1), "@read @geo @slow", group="geo",
         summary="Members within a radius or a box around a point or a member", since="6.2.0")
def geosearch(c, argv):
    """GEOSEARCH key FROMMEMBER m|FROMLONLAT lon lat BYRADIUS r unit|BYBOX w h unit [ASC|DESC]
    [COUNT n [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH] -- the members found. O(log N + M)."""
    return _search_generic(c, argv, SEARCH)


@command("geosearchstore", -8, "write denyoom", (1, 2, 1), "@write @geo @slow", group="geo",
         summary="Store the members within a radius or a box in a sorted set", since="6.2.0",
         key_specs=(spec("OW update"), spec("RO access", 2)))
def geosearchstore(c, argv):
    """GEOSEARCHSTORE dst src FROMMEMBER|FROMLONLAT … BYRADIUS|BYBOX … [ASC|DESC] [COUNT n [ANY]]
    [STOREDIST] -- how many were stored. O(log N + M)."""
    return _search_generic(c, argv, SEARCH, search_store=True)


@command("georadius", -6, "write denyoom movablekeys", (1, 1, 1), "@write @geo @slow", group="geo",
         summary="Members within a radius of a point (deprecated: GEOSEARCH)", since="3.2.0",
         key_specs=_STORE_SPECS)
def georadius(c, argv):
    """GEORADIUS key lon lat radius unit [WITH*] [COUNT n [ANY]] [ASC|DESC] [STORE k|STOREDIST k]
    -- the members found, or how many were stored. O(log N + M)."""
    return _search_generic(c, argv, COORDS, store_ok=True)


@command("georadius_ro", -6, "readonly", (1, 1, 1), "@read @geo @slow", group="geo",
         summary="Members within a radius of a point, read-only (deprecated: GEOSEARCH)", since="3.2.10")
def georadius_ro(c, argv):
    """GEORADIUS_RO key lon lat radius unit [WITH*] [COUNT n [ANY]] [ASC|DESC] -- the members. O(log N + M)."""
    return _search_generic(c, argv, COORDS)


@command("georadiusbymember", -5, "write denyoom movablekeys", (1, 1, 1), "@write @geo @slow", group="geo",
         summary="Members within a radius of a member (deprecated: GEOSEARCH)", since="3.2.0",
         key_specs=_STORE_SPECS_MEMBER)
def georadiusbymember(c, argv):
    """GEORADIUSBYMEMBER key member radius unit [WITH*] [COUNT n [ANY]] [ASC|DESC] [STORE k|STOREDIST k]
    -- the members found, or how many were stored. O(log N + M)."""
    return _search_generic(c, argv, MEMBER, store_ok=True)


@command("georadiusbymember_ro", -5, "readonly", (1, 1, 1), "@read @geo @slow", group="geo",
         summary="Members within a radius of a member, read-only (deprecated: GEOSEARCH)", since="3.2.10")
def georadiusbymember_ro(c, argv):
    """GEORADIUSBYMEMBER_RO key member radius unit [WITH*] [COUNT n [ANY]] [ASC|DESC] -- the members. O(log N + M)."""
    return _search_generic(c, argv, MEMBER)
