"""Geo commands on sorted sets: GEOADD, GEOPOS, GEODIST, GEOHASH.

(GEOSEARCH, GEOSEARCHSTORE and the GEORADIUS family are in
``engine.commands.geo_search``.)

A geo key is an ordinary sorted set whose scores are 52-bit geohashes
(``engine.geohash``): ZRANGE and ZREM work on it, and the GEO commands work
on any sorted set, decoding whatever score a member has as Redis does.

GEOADD is ZADD: it turns each (longitude, latitude) into its score, checks
every pair before it changes anything, and runs ZADD's handler on
``ZADD key [NX|XX] [CH] score member ...`` — exactly what Redis does, so the
effect journaled is that ZADD (as Redis propagates it), the keyspace event
is ``zadd``, and a pair that gives a member the score it has changes nothing.

Replies: coordinates as Redis prints them (``%.17Lf`` trimmed: a bulk string
in RESP2, a double in RESP3, written pre-encoded here since Keel's doubles
print with ``%.17g``); distances with four decimals, a bulk string in both
protocols. Known gap: a script that called ``redis.setresp(3)`` gets the
coordinates as strings where Redis gives doubles (scripts run their calls
as RESP2, and no reply value is a double printed ``%.17Lf``).
"""

from __future__ import annotations

from engine import errors, geohash
from engine.commands.zset import get_zset, parse_score, zadd
from engine.errors import CommandError
from engine.keyspecs import spec
from engine.reply import EMPTY_ARRAY, NULL_ARRAY, Raw
from engine.registry import command

INVALID_PAIR = "ERR invalid longitude,latitude pair {:f},{:f}"
UNSUPPORTED_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
NEED_RADIUS = "ERR need numeric radius"
NEED_WIDTH = "ERR need numeric width"
NEED_HEIGHT = "ERR need numeric height"
NEGATIVE_RADIUS = "ERR radius cannot be negative"
NEGATIVE_BOX = "ERR height or width cannot be negative"
NO_MEMBER = "ERR could not decode requested zset member"


# --- arguments shared with geo_search -------------------------------------------

def _coord(b: bytes) -> float:
    """A coordinate as Redis reads a double (``parse_score``), plain decimals
    (a sign, digits, one dot; under 300 bytes, so nothing overflows or
    underflows) read by float() alone: GEOADD's common case."""
    t = b[1:] if b[:1] in _SIGNS else b
    if t.replace(b".", b"", 1).isdigit() and len(b) < 300:
        return float(b)
    return parse_score(b)


_SIGNS = (b"-", b"+")


def parse_lonlat(lon: bytes, lat: bytes):
    """A (longitude, latitude) argument pair, checked against Redis's limits."""
    x = _coord(lon)
    y = _coord(lat)
    if not geohash.valid(x, y):
        raise CommandError(INVALID_PAIR.format(x, y))
    return x, y


def parse_unit(b: bytes) -> float:
    """Metres per ``m``, ``km``, ``ft`` or ``mi`` (any case)."""
    f = geohash.UNITS.get(b.lower())
    if f is None:
        raise CommandError(UNSUPPORTED_UNIT)
    return f


def parse_radius(value: bytes, unit: bytes):
    """``radius unit``: (radius in the unit, metres per unit)."""
    r = parse_score(value, NEED_RADIUS)
    if r < 0:
        raise CommandError(NEGATIVE_RADIUS)
    return r, parse_unit(unit)


def parse_box(width: bytes, height: bytes, unit: bytes):
    """``width height unit``: (width, height, metres per unit)."""
    w = parse_score(width, NEED_WIDTH)
    h = parse_score(height, NEED_HEIGHT)
    if w < 0 or h < 0:
        raise CommandError(NEGATIVE_BOX)
    return w, h, parse_unit(unit)


def coord_pair(c, x: float, y: float):
    """``[longitude, latitude]`` as Redis replies them (doubles in RESP3)."""
    a, b = geohash.format_coord(x), geohash.format_coord(y)
    if c.protocol == 3:
        return Raw(b"*2\r\n,%s\r\n,%s\r\n" % (a, b))
    return [a, b]


# --- GEOADD -----------------------------------------------------------------------

_GEOADD_FLAGS = (b"NX", b"XX", b"CH")


@command("geoadd", -5, "write denyoom", (1, 1, 1), "@write @geo @slow", group="geo",
         summary="Add members with their longitude and latitude to a sorted set", since="3.2.0",
         key_specs=(spec("RW update"),))
def geoadd(c, argv):
    """GEOADD key [NX|XX] [CH] longitude latitude member [...] -- members added (changed with CH). O(log N) each."""
    n = len(argv)
    i = 2
    nx = xx = False
    while i < n and argv[i][:1].isalpha():  # (a longitude starts with a digit, sign or dot)
        a = argv[i].upper()
        if a not in _GEOADD_FLAGS:
            break
        nx = nx or a == b"NX"
        xx = xx or a == b"XX"
        i += 1
    if (n - i) % 3 or (nx and xx):
        raise CommandError(errors.SYNTAX)
    out = argv[:i]
    out[0] = b"ZADD"
    score_of = geohash.score_of
    for j in range(i, n, 3):
        x, y = parse_lonlat(argv[j], argv[j + 1])
        out.append(b"%d" % score_of(x, y))
        out.append(argv[j + 2])
    return zadd(c, out)


# --- GEOPOS / GEODIST / GEOHASH -------------------------------------------------------

@command("geopos", -2, "readonly", (1, 1, 1), "@read @geo @slow", group="geo",
         summary="The longitude and latitude of members", since="3.2.0")
def geopos(c, argv):
    """GEOPOS key [member ...] -- [longitude, latitude] or nil per member. O(M)."""
    z = get_zset(c, argv[1])
    if len(argv) == 2:
        return EMPTY_ARRAY
    if z is None:
        return [NULL_ARRAY] * (len(argv) - 2)
    out = []
    for s in z.scores(argv[2:]):
        out.append(NULL_ARRAY if s is None else coord_pair(c, *geohash.decode(s)))
    return out


@command("geodist", -4, "readonly", (1, 1, 1), "@read @geo @slow", group="geo",
         summary="The distance between two members", since="3.2.0")
def geodist(c, argv):
    """GEODIST key member1 member2 [M|KM|FT|MI] -- the distance, nil if a member is missing. O(1)."""
    n = len(argv)
    to_m = 1.0
    if n == 5:
        to_m = parse_unit(argv[4])
    elif n > 5:
        raise CommandError(errors.SYNTAX)
    z = get_zset(c, argv[1])
    if z is None:
        return None
    s1, s2 = z.scores(argv[2:4])
    if s1 is None or s2 is None:
        return None
    x1, y1 = geohash.decode(s1)
    x2, y2 = geohash.decode(s2)
    return geohash.format_distance(geohash.distance(x1, y1, x2, y2) / to_m)


@command("geohash", -2, "readonly", (1, 1, 1), "@read @geo @slow", group="geo",
         summary="Members' positions as standard geohash strings", since="3.2.0")
def geohash_(c, argv):
    """GEOHASH key [member ...] -- an 11-character geohash or nil per member. O(M)."""
    z = get_zset(c, argv[1])
    if len(argv) == 2:
        return EMPTY_ARRAY
    if z is None:
        return [None] * (len(argv) - 2)
    return [None if s is None else geohash.hash_string(s) for s in z.scores(argv[2:])]
