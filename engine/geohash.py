"""Geohashes as Redis's GEO commands compute them: 52-bit scores, the boxes a
search looks at, distances on Redis's sphere, the 11-character GEOHASH text.

A point is stored as a sorted set score: its longitude and latitude, each
scaled to a 26-bit integer over its range (longitude -180..180, latitude
-85.05112878..85.05112878, the Web Mercator limits), interleaved bit by bit
with the latitude on the even bits and the longitude on the odd ones. The
score of a point is therefore an integer below 2**52 (a point exactly on the
upper latitude or longitude limit scales to 2**26 and carries one bit more,
as in Redis). Decoding takes the centre of the cell a score names, clamped to
the limits, so that GEOPOS returns the same digits as Redis. A score that is
not such an integer (a ZADD-built set) is converted to 64 bits as x86-64
converts a double to ``uint64_t`` (``u64``), then decoded the same way.

A search of radius r (or a box whose half-diagonal is r) around a point looks
at one cell, of the size ``estimate_steps`` picks for r, and its 8 neighbours
(``search_ranges``), skipping those Redis skips (outside the bounding box, or
the same as the previous one). Each cell is a contiguous range of scores
[min, max), so a search costs O(9 log N + M) for M candidates, and finds the
points Redis finds, in the order Redis finds them (cell by cell, score order
within a cell), including the points Redis misses near the poles and the
antimeridian.

Distances use the haversine formula on a sphere of radius 6372797.560856 m
with Redis 7.2's shortcut for points on the same meridian; the functions are
the C library's (``math``), so results agree to the last bit.

Everything here is pure arithmetic on Python ints and floats: no keyspace.
What a search runs per candidate or per call (``scan``, ``search_ranges``,
``items``, ``score_of``) is also written in C (``engine/_geo.c``) and used
when that module is built; the Python versions (``*_python``, ``encode``)
are the reference, and tests require both to give the same results.
"""

from __future__ import annotations

from math import asin, cos, nan, pi, sin, sqrt

LON_MIN, LON_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
STEP_MAX = 26  # bits per coordinate: 52 in all
EARTH_RADIUS = 6372797.560856  # metres, Redis's
MERCATOR_MAX = 20037726.37
D_R = pi / 180.0

_LAT_SCALE = LAT_MAX - LAT_MIN
_LON_SCALE = LON_MAX - LON_MIN
_M64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA
_TWO63 = 2.0**63
_INDEFINITE = 1 << 63  # what cvttsd2si answers for a value it cannot convert

UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


# --- bits --------------------------------------------------------------------

def _spread(v: int) -> int:
    """The 32 bits of ``v`` moved to the even bit positions of 64."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & _EVEN


def _squash(v: int) -> int:
    """The even bits of ``v`` (64 bits) packed into 32."""
    v &= _EVEN
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0xFFFFFFFF


def u64(score: float) -> int:
    """``(uint64_t)score`` as gcc's x86-64 code computes it (below 2**63 a
    signed conversion, above it one of score - 2**63; a value either cannot
    take becomes the 'integer indefinite' 2**63)."""
    if score < _TWO63:
        if score != score or score <= -_TWO63 - 1025.0:
            return _INDEFINITE
        return int(score) & _M64
    t = score - _TWO63
    if t >= _TWO63:
        return 0  # indefinite ^ 2**63
    return int(t) ^ _INDEFINITE


# --- encode / decode -----------------------------------------------------------

def valid(lon: float, lat: float) -> bool:
    return LON_MIN <= lon <= LON_MAX and LAT_MIN <= lat <= LAT_MAX


def encode(lon: float, lat: float, step: int = STEP_MAX, lat_min: float = LAT_MIN,
           lat_max: float = LAT_MAX) -> int:
    """The ``2 * step``-bit hash of a point (already checked with ``valid``)."""
    scale = float(1 << step)
    ilat = int((lat - lat_min) / (lat_max - lat_min) * scale)
    ilon = int((lon - LON_MIN) / _LON_SCALE * scale)
    return _spread(ilat) | (_spread(ilon) << 1)


def area(bits: int, step: int, lat_min: float = LAT_MIN, lat_max: float = LAT_MAX):
    """The cell a hash names: (lon_min, lon_max, lat_min, lat_max)."""
    ilat = _squash(bits)
    ilon = _squash(bits >> 1)
    scale = float(1 << step)
    lat_scale = lat_max - lat_min
    return (LON_MIN + (ilon / scale) * _LON_SCALE,
            LON_MIN + (((ilon + 1) & 0xFFFFFFFF) / scale) * _LON_SCALE,
            lat_min + (ilat / scale) * lat_scale,
            lat_min + (((ilat + 1) & 0xFFFFFFFF) / scale) * lat_scale)


def decode(score: float):
    """The (longitude, latitude) a sorted set score stands for."""
    bits = u64(score)
    ilat = _squash(bits)
    ilon = _squash(bits >> 1)
    x = ((LON_MIN + (ilon / 67108864.0) * _LON_SCALE)
         + (LON_MIN + (((ilon + 1) & 0xFFFFFFFF) / 67108864.0) * _LON_SCALE)) / 2
    if x > LON_MAX:
        x = LON_MAX
    elif x < LON_MIN:
        x = LON_MIN
    y = ((LAT_MIN + (ilat / 67108864.0) * _LAT_SCALE)
         + (LAT_MIN + (((ilat + 1) & 0xFFFFFFFF) / 67108864.0) * _LAT_SCALE)) / 2
    if y > LAT_MAX:
        y = LAT_MAX
    elif y < LAT_MIN:
        y = LAT_MIN
    return x, y


def hash_string(score: float) -> bytes:
    """GEOHASH's text: the decoded point re-encoded over latitude -90..90
    (the standard geohash), 10 base32 characters of its 52 bits and a '0'."""
    x, y = decode(score)
    bits = encode(x, y, STEP_MAX, -90.0, 90.0)
    out = bytearray(11)
    for i in range(10):
        out[i] = _ALPHABET[(bits >> (47 - 5 * i)) & 0x1F]
    out[10] = 48  # '0': 52 bits fill 10.4 characters; Redis pads with zero
    return bytes(out)


# --- distances ---------------------------------------------------------------

def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres between two points (haversine; same meridian: the arc)."""
    v = sin((lon2 * D_R - lon1 * D_R) / 2)
    if v == 0.0:
        return EARTH_RADIUS * abs(lat2 * D_R - lat1 * D_R)
    a1 = lat1 * D_R
    a2 = lat2 * D_R
    u = sin((a2 - a1) / 2)
    return 2.0 * EARTH_RADIUS * asin(sqrt(u * u + cos(a1) * cos(a2) * v * v))


def box_distance(width: float, height: float, x1: float, y1: float, x2: float, y2: float):
    """The distance from the box centre (x1, y1) to (x2, y2) if that point is
    within ``width`` x ``height`` metres of it (along its parallel and its
    meridian), else None."""
    if EARTH_RADIUS * abs(y1 * D_R - y2 * D_R) > height / 2:
        return None
    if distance(x2, y2, x1, y2) > width / 2:
        return None
    return distance(x1, y1, x2, y2)


def format_distance(d: float) -> bytes:
    """A distance as Redis 7.2 prints it: ``d * 10**4`` rounded to an integer
    (llrint: half to even), four decimals."""
    if d == 0:
        return b"0.0000"
    n = round(d * 10000.0)
    sign = b"-" if n < 0 else b""
    q, r = divmod(abs(n), 10000)
    return b"%s%d.%04d" % (sign, q, r)


def format_coord(v: float) -> bytes:
    """A coordinate as Redis prints it (``%.17Lf``, trailing zeros and dot trimmed)."""
    s = b"%.17f" % v
    s = s.rstrip(b"0")
    return s[:-1] if s[-1:] == b"." else s


# --- which cells a search reads -------------------------------------------------

def estimate_steps(radius_m: float, lat: float) -> int:
    """The cell size (bits per coordinate) for a search of ``radius_m`` at ``lat``."""
    if radius_m == 0:
        return STEP_MAX
    step = 1
    while radius_m < MERCATOR_MAX:
        radius_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return max(1, min(STEP_MAX, step))


def _cos(v: float) -> float:
    """C's cos: NaN for an infinity (math.cos raises)."""
    return cos(v) if v - v == 0 else nan


def bounding_box(lon: float, lat: float, half_width_m: float, half_height_m: float):
    """(min_lon, min_lat, max_lon, max_lat) around a point, as Redis bounds a
    search (an infinite radius gives NaN bounds, which exclude nothing)."""
    lat_delta = half_height_m / EARTH_RADIUS / D_R
    top = half_width_m / EARTH_RADIUS / _cos((lat + lat_delta) * D_R) / D_R
    bottom = half_width_m / EARTH_RADIUS / _cos((lat - lat_delta) * D_R) / D_R
    d = bottom if lat < 0 else top
    return lon - d, lat - lat_delta, lon + d, lat + lat_delta


def _move(bits: int, step: int, dx: int, dy: int) -> int:
    """The neighbour ``dx`` cells east and ``dy`` north (wrapping round, as Redis does)."""
    shift = 64 - step * 2
    if dx:
        x = bits & _ODD
        y = bits & _EVEN
        zz = _EVEN >> shift
        if dx > 0:
            x = (x + zz + 1) & _M64
        else:
            x = ((x | zz) - (zz + 1)) & _M64
        bits = (x & (_ODD >> shift)) | y
    if dy:
        x = bits & _ODD
        y = bits & _EVEN
        zz = _ODD >> shift
        if dy > 0:
            y = (y + zz + 1) & _M64
        else:
            y = ((y | zz) - (zz + 1)) & _M64
        bits = x | (y & (_EVEN >> shift))
    return bits


# Redis's order: the centre, N, S, E, W, NE, NW, SE, SW.
_AROUND = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _cells(lon: float, lat: float, step: int):
    bits = encode(lon, lat, step)
    return bits, [_move(bits, step, dx, dy) for dx, dy in _AROUND]


def search_ranges_python(lon: float, lat: float, radius_m: float, half_width_m: float, half_height_m: float):
    """The score ranges [min, max) a search around (lon, lat) reads, in order.

    ``radius_m`` is the search radius (a box's half-diagonal) and the half
    sizes bound it; all in metres. A cell equal to the one read just before
    it is left out (Redis's guard against duplicates with huge radii).
    ``search_ranges`` is the same in C (``engine._geo.ranges``) when built.
    """
    min_lon, min_lat, max_lon, max_lat = bounding_box(lon, lat, half_width_m, half_height_m)
    step = estimate_steps(radius_m, lat)
    bits, around = _cells(lon, lat, step)
    n, s, e, w = (area(b, step) for b in around[:4])
    if step > 1 and (n[3] < max_lat or s[2] > min_lat or e[1] < max_lon or w[0] > min_lon):
        step -= 1
        bits, around = _cells(lon, lat, step)
    keep = [True] * 8
    if step >= 2:
        c = area(bits, step)
        if c[2] < min_lat:
            keep[1] = keep[6] = keep[7] = False  # S, SE, SW
        if c[3] > max_lat:
            keep[0] = keep[4] = keep[5] = False  # N, NE, NW
        if c[0] < min_lon:
            keep[3] = keep[5] = keep[7] = False  # W, NW, SW
        if c[1] > max_lon:
            keep[2] = keep[4] = keep[6] = False  # E, NE, SE
    shift = 52 - step * 2
    ranges = [(bits << shift, (bits + 1) << shift)]
    last = None  # the last neighbour read (the centre does not count: Redis's test)
    for b, k in zip(around, keep):
        if not k or b == last:
            continue
        ranges.append((b << shift, (b + 1) << shift))
        last = b
    return ranges


# --- testing candidates -------------------------------------------------------------

def _scan_radius(pairs, cx: float, cy: float, radius_m: float, found: list, limit: int) -> None:
    append = found.append
    for s, m in pairs:
        x, y = decode(s)
        d = distance(cx, cy, x, y)
        if d <= radius_m:
            append((d, m, s, x, y))
            if limit and len(found) >= limit:
                return


def _scan_box(pairs, cx: float, cy: float, width_m: float, height_m: float, found: list, limit: int) -> None:
    append = found.append
    for s, m in pairs:
        x, y = decode(s)
        d = box_distance(width_m, height_m, cx, cy, x, y)
        if d is not None:
            append((d, m, s, x, y))
            if limit and len(found) >= limit:
                return


def scan_python(pairs, box: bool, cx: float, cy: float, p1: float, p2: float, found: list, limit: int) -> None:
    """Append (metres, member, score, lon, lat) to ``found`` for each (score,
    member) of ``pairs`` within a radius ``p1`` of (cx, cy), or a box ``p1``
    wide and ``p2`` high centred there, until ``found`` holds ``limit`` (0: no
    limit). ``scan`` is the same in C (``engine._geo``) when it is built."""
    if box:
        _scan_box(pairs, cx, cy, p1, p2, found, limit)
    else:
        _scan_radius(pairs, cx, cy, p1, found, limit)


def items_python(found: list, to_m: float, withdist: bool, withhash: bool, withcoord: bool, raw) -> list:
    """The reply items ``[member, distance?, hash?, [lon, lat]?]`` of the
    (metres, member, score, lon, lat) points ``found``, distances in the unit
    of ``to_m`` metres. ``raw`` is the reply type coordinates are pre-encoded
    in for RESP3 (a pair of doubles), None for RESP2 (a pair of bulk strings)."""
    out = []
    for d, m, s, x, y in found:
        item = [m]
        if withdist:
            item.append(format_distance(d / to_m))
        if withhash:
            item.append(int(s))
        if withcoord:
            a, b = format_coord(x), format_coord(y)
            item.append([a, b] if raw is None else raw(b"*2\r\n,%s\r\n,%s\r\n" % (a, b)))
        out.append(item)
    return out


try:
    from engine._geo import items, scan  # built at install (setup.py)
    from engine._geo import encode as score_of
    from engine._geo import ranges as search_ranges
except ImportError:  # a checkout run without building: the same results, slower
    def score_of(lon: float, lat: float) -> int:
        """A point's 52-bit score (GEOADD's): ``encode`` at 26 bits a coordinate."""
        return encode(lon, lat)

    items = items_python
    search_ranges = search_ranges_python
    scan = scan_python
