"""GEO commands: replies and errors side by side with redis-server, RESP3
bytes, effects and their replay, keyspace events, the geohash arithmetic, and
that a search reads only its 9 cells.

Where redis-server 7.0.15 and 7.2 could differ (7.2 prints distances with
``fixedpoint_d2string``, ``d * 10**4`` rounded, where 7.0 uses ``%.4f``; 7.2
measures a box's height and same-meridian distances as the arc ``R * dlat``
where 7.0 uses the haversine), Keel follows 7.2; the two agree except within
an ulp of a rounding boundary, which none of the values here is near.
"""

from __future__ import annotations

import random

import hiredis
import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import geohash
from engine.keyspace import Keyspace
from engine.reply import ZERO, Raw
from engine.session import Session
from tests.support import encode, run
from tests.support import take_effects as effects
from tests.unit.test_notify_events import check as check_events

SICILY = ["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]


def lines(pair, script: str) -> None:
    """Each line of ``script`` sent to both servers; replies must be equal."""
    for line in script.strip().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pair.check(*[a.replace("''", "") for a in line.split()])


# --- GEOADD ----------------------------------------------------------------------

def test_geoadd_replies_and_options(pair):
    pair.check(*SICILY)
    lines(pair, """
        GEOADD Sicily 13.361389 38.115556 Palermo
        GEOADD Sicily CH 13.361389 38.115556 Palermo
        GEOADD Sicily CH 13.4 38.2 Palermo 1 1 new
        GEOADD Sicily NX 1 2 Palermo 3 4 other
        GEOADD Sicily XX 5 6 Palermo 7 8 absent
        GEOADD Sicily XX CH 5 6.5 Palermo
        GEOADD Sicily ch nx xx 1 1 a
        GEOADD Sicily CH CH 1 1 twice
        GEOADD g 180 85.05112878 corner -180 -85.05112878 other 0 0 zero
        GEOADD g 179.99999999 85.05112877 near 0x10 -0x1p-3 hex
        ZRANGE Sicily 0 -1 WITHSCORES
        ZRANGE g 0 -1 WITHSCORES
        OBJECT ENCODING Sicily
        GEOPOS Sicily Palermo other new
        GEOPOS g corner other zero near hex
        """)


def test_geoadd_errors(pair):
    pair.check(*SICILY)
    pair.check("SET", "s", "x")
    lines(pair, """
        GEOADD Sicily NX XX 1 2 a
        GEOADD Sicily 181 2 a
        GEOADD Sicily -180.0000001 0 a
        GEOADD Sicily 1 85.05112879 a
        GEOADD Sicily 1 -85.06 a
        GEOADD Sicily 1 2 ok 1 91 bad
        GEOADD Sicily 1 x a
        GEOADD Sicily inf 0 a
        GEOADD Sicily 1 1e400 a
        GEOADD Sicily '' 1 a
        GEOADD Sicily 1 2
        GEOADD Sicily CH 1 2
        GEOADD Sicily FOO 1 2 a
        GEOADD Sicily 1 2 a 3
        GEOADD Sicily CH CH CH
        GEOADD Sicily GT 1 2 a
        GEOADD s 1 2 a
        GEOADD s 1 91 a
        ZRANGE Sicily 0 -1 WITHSCORES
        """)


# --- GEOPOS / GEODIST / GEOHASH -----------------------------------------------------

def test_geopos_geodist_geohash(pair):
    pair.check(*SICILY)
    pair.check("SET", "s", "x")
    lines(pair, """
        GEOPOS Sicily Palermo nope Catania
        GEOPOS Sicily
        GEOPOS nokey a b
        GEOPOS s a
        GEODIST Sicily Palermo Catania
        GEODIST Sicily Palermo Catania m
        GEODIST Sicily Palermo Catania km
        GEODIST Sicily Palermo Catania KM
        GEODIST Sicily Palermo Catania mi
        GEODIST Sicily Palermo Catania ft
        GEODIST Sicily Palermo Palermo
        GEODIST Sicily Palermo nope
        GEODIST Sicily Palermo Catania yd
        GEODIST Sicily Palermo Catania km x
        GEODIST nokey a b
        GEODIST nokey a b yd
        GEODIST s a b
        GEOHASH Sicily Palermo Catania nope
        GEOHASH Sicily
        GEOHASH nokey a
        GEOHASH s a
        """)


def test_geo_commands_read_any_sorted_set(pair):
    # Scores no GEOADD gives: beyond 52 bits, negative, huge, infinite,
    # fractional: decoded through Redis's double -> uint64 conversion.
    members = {"zero": "0", "max": "4503599627370495", "over": "4503599627370496", "neg": "-1",
               "big": "1e20", "n19": "-1e19", "ninf": "-inf", "pinf": "inf", "t63": "9223372036854775808",
               "t15": "1.5e19", "t64": "18446744073709551616", "m63": "-9223372036854775808",
               "half": "1234567.5"}
    pair.check("ZADD", "z", *[x for m, s in members.items() for x in (s, m)])
    pair.check("GEOPOS", "z", *members)
    pair.check("GEOHASH", "z", *members)
    pair.check("GEODIST", "z", "zero", "max", "km")
    pair.check("GEODIST", "z", "half", "neg")
    pair.check("GEOSEARCH", "z", "FROMMEMBER", "half", "BYRADIUS", "30000", "km", "WITHHASH", "WITHCOORD")


# --- searches -----------------------------------------------------------------------

SEARCHES = """
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km DESC
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC DESC
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 ANY
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 DESC
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 9223372036854775807
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD WITHDIST WITHHASH
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHHASH WITHDIST WITHDIST
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km WITHDIST
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km WITHDIST COUNT 1
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 0 0 km
    GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 0 0 km WITHDIST
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 0 m WITHDIST
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS -0 m
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 3e10 m WITHDIST
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS inf m
    GEOSEARCH Sicily FROMMEMBER Palermo BYBOX inf inf m
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 0x10 FT
    GEOSEARCH Sicily FROMMEMBER Palermo FROMMEMBER Catania BYBOX 1 1 km
    GEOSEARCH Sicily FROMLONLAT 1 2 FROMLONLAT 13.361389 38.115556 BYRADIUS 2 m
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 m BYRADIUS 200 MI
    GEOSEARCH Sicily BYRADIUS 200 km FROMMEMBER Catania WITHDIST
    GEOSEARCH Sicily COUNT 1 FROMLONLAT 15 37 BYRADIUS 200 km
    GEOSEARCH nokey FROMMEMBER nope BYRADIUS 1 km
    GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 1 km WITHDIST
    GEORADIUS Sicily 15 37 200 km
    GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD ASC
    GEORADIUS Sicily 15 37 200 km COUNT 1 ANY WITHHASH
    GEORADIUS_RO Sicily 15 37 200 km DESC WITHDIST
    GEORADIUSBYMEMBER Sicily Palermo 200 km WITHDIST
    GEORADIUSBYMEMBER_RO Sicily Catania 100 mi COUNT 5
    GEORADIUSBYMEMBER nokey nope x km
    GEORADIUS nokey 15 37 200 km
"""

SEARCH_ERRORS = """
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ANY
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 0
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT -1
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT x
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 m COUNT 9223372036854775808
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 1
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 0 foo
    GEOSEARCH Sicily FROMLONLAT 15 37
    GEOSEARCH Sicily BYRADIUS 200 km
    GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1
    GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 200 km
    GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 1 200 BYRADIUS 3 m
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 200 200 km BYRADIUS 3 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 3 km BYBOX 200 200 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS -1 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 yd
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 200 -1 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 200 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 1 yd
    GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 1 1
    GEOSEARCH Sicily FROMLONLAT 15 91 BYRADIUS 1 km
    GEOSEARCH Sicily FROMLONLAT 1 200 FROMLONLAT 15 37 BYRADIUS 2 m
    GEOSEARCH Sicily FROMLONLAT x 37 BYRADIUS 200 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS x km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS nan km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1e400 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS '' km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x 1 km
    GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 x km
    GEOSEARCH Sicily FROMMEMBER nope BYRADIUS 1 km
    GEOSEARCH Sicily FROMMEMBER nope BYRADIUS x m
    GEOSEARCH Sicily FROMMEMBER nope BYRADIUS 1 m foo
    GEOSEARCH Sicily BYRADIUS 1 yd FROMMEMBER nope
    GEOSEARCH Sicily BYRADIUS 1 m FROMMEMBER nope ANY
    GEOSEARCH Sicily FROMLONLAT 1 2 BYRADIUS 1 m FROMMEMBER nope
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST
    GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km foo
    GEOSEARCH s FROMLONLAT 15 37 BYRADIUS 200 km foo
    GEOSEARCH s FROMLONLAT 15 91 BYRADIUS 200 km
    GEOSEARCH s FROMMEMBER nope BYRADIUS 1 km
    GeoSearch Sicily FROMMEMBER Palermo WITHDIST ANY COUNT 1
    GeoSearch Sicily FROMMEMBER Palermo WITHDIST x y z
    GeoSearch Sicily BYRADIUS 1 m WITHDIST x y
    GEOSEARCH nokey FROMMEMBER Palermo BYRADIUS 1 m ANY
    GEOSEARCH nokey FROMMEMBER Palermo ANY x y z
    GEOSEARCH nokey FROMLONLAT 15 37 BYRADIUS 200 km foo
    GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD
    GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST
    GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 ANY WITHHASH
    GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x
    GEOSEARCHSTORE dst Sicily FROMMEMBER nope BYRADIUS 1 m WITHDIST
    GEOSEARCHSTORE d Sicily WITHDIST ANY x
    GEORADIUS Sicily 15 37 200
    GEORADIUS Sicily 15 37 200 km STORE
    GEORADIUS Sicily 15 37 200 km STOREDIST
    GEORADIUS Sicily 15 37 200 km WITHDIST STORE dst
    GEORADIUS Sicily 15 37 200 km WITHHASH STOREDIST dst
    GEORADIUS Sicily 15 37 200 km ANY
    GEORADIUS Sicily 15 37 200 km ANY STORE d
    GEORADIUS Sicily 15 37 200 km FROMMEMBER x
    GEORADIUS Sicily 15 37 200 km COUNT 0 ANY foo
    GEORADIUS Sicily 15 37 200 km ANY foo
    GEORADIUS Sicily 15 37 -1 km
    GEORADIUS Sicily 15 37 -1 yd
    GEORADIUS Sicily 15 37 x yd
    GEORADIUS Sicily 15 91 200 yd
    GEORADIUS Sicily x 37 1 km
    GEORADIUS s 15 91 200 km
    GEORADIUS_RO Sicily 15 37 200 km STORE dst
    GEORADIUS_RO Sicily 15 37 200 km STOREDIST dst
    GEORADIUSBYMEMBER Sicily nope 200 km
    GEORADIUSBYMEMBER Sicily nope x km
    GEORADIUSBYMEMBER Sicily nope 200 km foo
    GEORADIUSBYMEMBER Sicily Palermo 200 yd
    GEORADIUSBYMEMBER Sicily Palermo -2 km
    GEORADIUSBYMEMBER nokey nope 1 km foo
    GEORADIUSBYMEMBER nokey nope 1 km ANY
    GEORADIUSBYMEMBER nokey nope 1 km WITHDIST STORE x
    GEORADIUSBYMEMBER_RO Sicily Palermo 200 km STOREDIST x
    GEORADIUSBYMEMBER s Palermo 200 km
"""


def test_search_replies(pair):
    pair.check(*SICILY)
    lines(pair, SEARCHES)


def test_search_errors_in_redis_order(pair):
    pair.check(*SICILY)
    pair.check("SET", "s", "x")
    lines(pair, SEARCH_ERRORS)


def test_store_forms(pair):
    pair.check(*SICILY)
    pair.check("SET", "s", "x")
    lines(pair, """
        GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km
        ZRANGE dst 0 -1 WITHSCORES
        OBJECT ENCODING dst
        GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST
        ZRANGE dst 0 -1 WITHSCORES
        GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 100 km STOREDIST COUNT 1 DESC
        ZRANGE dst 0 -1 WITHSCORES
        GEORADIUS Sicily 15 37 200 km STORE d1
        ZRANGE d1 0 -1 WITHSCORES
        GEORADIUS Sicily 15 37 200 mi STOREDIST d2
        ZRANGE d2 0 -1 WITHSCORES
        GEORADIUS Sicily 15 37 200 km STORE d3 STOREDIST d4
        GEORADIUS Sicily 15 37 200 km STOREDIST d5 STORE d6
        EXISTS d3 d4 d5 d6
        ZRANGE d6 0 -1 WITHSCORES
        GEORADIUSBYMEMBER Sicily Palermo 200 km STOREDIST d7 COUNT 1
        ZRANGE d7 0 -1 WITHSCORES
        GEOSEARCHSTORE s Sicily FROMLONLAT 15 37 BYRADIUS 200 km
        TYPE s
        GEOSEARCHSTORE Sicily Sicily FROMMEMBER Palermo BYRADIUS 1 km
        ZRANGE Sicily 0 -1 WITHSCORES
        GEOSEARCHSTORE dst Sicily FROMLONLAT 100 2 BYRADIUS 1 km
        EXISTS dst
        GEORADIUS nokey 1 2 1 km STORE d1
        EXISTS d1
        GEOSEARCHSTORE d2 nokey FROMLONLAT 15 37 BYRADIUS 200 km
        EXISTS d2
        GEORADIUSBYMEMBER nokey nope 200 km STORE d6
        EXISTS d6
        """)


def test_a_store_keeps_listpack_or_skiplist_as_redis_does(pair):
    pair.both("CONFIG", "SET", "zset-max-listpack-entries", "4")
    try:
        pair.check("GEOADD", "g", *[x for i in range(6) for x in ("1.%d" % i, "2.%d" % i, "m%d" % i)])
        lines(pair, """
            OBJECT ENCODING g
            GEOSEARCHSTORE small g FROMMEMBER m0 BYRADIUS 1000 km COUNT 3
            OBJECT ENCODING small
            GEOSEARCHSTORE big g FROMMEMBER m0 BYRADIUS 1000 km
            OBJECT ENCODING big
            ZRANGE big 0 -1 WITHSCORES
            """)
    finally:
        pair.both("CONFIG", "SET", "zset-max-listpack-entries", "128")


def test_searches_at_the_poles_and_the_antimeridian(pair):
    points = [("180", "0", "east"), ("-180", "0", "west"), ("179.9", "0.1", "e2"), ("-179.9", "-0.1", "w2"),
              ("0", "85.05112878", "top"), ("0", "-85.05112878", "bottom"), ("90", "85", "n1"),
              ("-90", "84.9", "n2"), ("45", "-84.99", "s1"), ("180", "85.05112878", "corner")]
    pair.check("GEOADD", "g", *[x for p in points for x in p])
    for center in (("180", "0"), ("-180", "0"), ("0", "85.05112878"), ("0", "-85.05112878"), ("179.99", "85")):
        for radius in ("0", "1", "50", "500", "5000", "20000", "40000"):
            pair.check("GEOSEARCH", "g", "FROMLONLAT", *center, "BYRADIUS", radius, "km", "WITHDIST", "WITHCOORD")
            pair.check("GEOSEARCH", "g", "FROMLONLAT", *center, "BYBOX", radius, radius, "km", "WITHHASH")
            pair.check("GEORADIUS", "g", *center, radius, "km", "ASC", "COUNT", "3")


def test_random_points_and_searches_agree(pair):
    # Unsorted replies too: the order cells are read in is Redis's.
    rnd = random.Random(12)
    for rounds in range(4):
        pair.both("DEL", "g")
        args = []
        for i in range(300):
            args += [repr(rnd.uniform(-180, 180)), repr(rnd.uniform(-85.05112878, 85.05112878)), "m%d" % i]
        pair.check("GEOADD", "g", *args)
        for _ in range(40):
            x, y = repr(rnd.uniform(-180, 180)), repr(rnd.uniform(-85, 85))
            r = rnd.choice(["10", "300", "2000", "7000", repr(rnd.uniform(0, 5000))])
            pair.check("GEOSEARCH", "g", "FROMLONLAT", x, y, "BYRADIUS", r, "km", "WITHDIST", "WITHCOORD")
            pair.check("GEOSEARCH", "g", "FROMLONLAT", x, y, "BYBOX", r, repr(rnd.uniform(0, 5000)), "km", "WITHDIST")
            pair.check("GEOSEARCH", "g", "FROMMEMBER", "m%d" % rnd.randrange(300), "BYRADIUS", r, "mi", "ASC",
                       "WITHHASH")


# --- RESP3 -----------------------------------------------------------------------

def _raw(client, *args) -> bytes:
    """The reply's bytes as the server sent them."""
    client.sock.sendall(encode(args))
    reader = hiredis.Reader()
    buf = b""
    while True:
        data = client.sock.recv(65536)
        buf += data
        reader.feed(data)
        if reader.gets() is not False:
            return buf


def test_resp3_coordinates_are_doubles_and_distances_bulk(pair):
    pair.check(*SICILY)
    pair.check("ZADD", "z", "-1", "neg")
    for side in (pair.keel, pair.ref):
        _raw(side, "HELLO", "3")
    for args in (("GEOPOS", "Sicily", "Palermo", "nope"),
                 ("GEOPOS", "z", "neg"),
                 ("GEODIST", "Sicily", "Palermo", "Catania", "km"),
                 ("GEODIST", "Sicily", "Palermo", "nope"),
                 ("GEOHASH", "Sicily", "Palermo", "nope"),
                 ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHCOORD",
                  "WITHDIST", "WITHHASH", "ASC"),
                 ("GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD")):
        assert _raw(pair.keel, *args) == _raw(pair.ref, *args), args


# --- effects ------------------------------------------------------------------------

@pytest.fixture
def c():
    return Session(Keyspace())


def replay(argvs) -> Session:
    s = Session(Keyspace())
    for argv in argvs:
        run(s, *argv)
    return s


def _contents(s: Session, key: bytes):
    z = s.db.data.get(key)
    return None if z is None else (z.encoding, z.items())


def test_geoadd_journals_the_zadd_redis_propagates(c):
    run(c, *SICILY)
    assert effects(c) == [[b"ZADD", b"Sicily", b"3479099956230698", b"Palermo", b"3479447370796909", b"Catania"]]
    run(c, "GEOADD", "Sicily", "CH", "XX", "13.361389", "38.115556", "Palermo", "1", "2", "absent")
    assert effects(c) == []  # the same score, an XX miss: nothing changed
    run(c, "GEOADD", "Sicily", "ch", "NX", "1", "2", "x")
    assert effects(c) == [[b"ZADD", b"Sicily", b"ch", b"NX", b"%d" % geohash.encode(1.0, 2.0), b"x"]]


def test_store_journals_its_result_and_replays_identically(c):
    run(c, *SICILY)
    run(c, "GEOADD", "Sicily", *[x for i in range(1500) for x in ("13.%04d" % i, "37.%04d" % i, "m%d" % i)])
    run(c, "SET", "dst", "old")
    setup = effects(c)
    stored = run(c, "GEOSEARCHSTORE", "dst", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "STOREDIST")
    assert stored == 1502
    got = effects(c)
    assert got[0] == [b"DEL", b"dst"] and [len(e) for e in got[1:]] == [2 + 2 * 1024, 2 + 2 * 478]  # in chunks
    assert all(e[:2] == [b"ZADD", b"dst"] for e in got[1:])
    assert _contents(replay(setup + got), b"dst") == _contents(c, b"dst")
    run(c, "GEORADIUS", "Sicily", "15", "37", "100", "mi", "STORE", "small", "COUNT", "3")
    got2 = effects(c)
    assert got2[0][:2] == [b"ZADD", b"small"] and len(got2) == 1  # no DEL: small did not exist
    assert _contents(replay(setup + got + got2), b"small") == _contents(c, b"small")


def test_store_of_nothing_deletes_the_destination(c):
    run(c, *SICILY)
    run(c, "ZADD", "dst", "1", "a")
    effects(c)
    assert run(c, "GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m") == ZERO
    assert effects(c) == [[b"DEL", b"dst"]]
    assert run(c, "GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m") == ZERO
    assert effects(c) == []  # nothing there to delete
    run(c, "ZADD", "dst", "1", "a")
    effects(c)
    assert run(c, "GEORADIUS", "missing", "0", "0", "1", "m", "STORE", "dst") == ZERO
    assert effects(c) == [[b"DEL", b"dst"]]
    assert run(c, "GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km") == [b"Palermo", b"Catania"]
    assert effects(c) == []  # a read journals nothing


def test_keyspace_events():
    check_events("""
        GEOADD g 1 2 a 3 4 b                                        -> new:g zadd:g
        GEOADD g 1 2 a                                              ->
        GEOADD g XX 5 5 a                                           -> zadd:g
        GEOADD g 1 91 a                                             -> !
        GEOSEARCHSTORE d g FROMLONLAT 1 2 BYRADIUS 1000 km          -> new:d geosearchstore:d
        GEORADIUS g 1 2 1000 km STORE d2                            -> new:d2 georadiusstore:d2
        GEORADIUS g 1 2 1000 km STOREDIST d2                        -> georadiusstore:d2
        GEORADIUSBYMEMBER g a 1000 km STORE d2                      -> georadiusstore:d2
        GEOSEARCHSTORE d g FROMLONLAT 100 2 BYRADIUS 1 km           -> del:d
        GEOSEARCHSTORE d nokey FROMLONLAT 100 2 BYRADIUS 1 km       ->
        GEORADIUS nokey 1 2 1 km STORE d2                           -> del:d2
        GEOSEARCH g FROMLONLAT 1 2 BYRADIUS 1000 km                 ->
    """)


# --- the arithmetic -----------------------------------------------------------------

def test_geohash_scores_and_decoding_match_redis_values():
    assert geohash.encode(13.361389, 38.115556) == 3479099956230698
    assert geohash.decode(3479099956230698.0) == (13.361389338970184, 38.1155563954963)
    assert geohash.format_coord(13.361389338970184) == b"13.36138933897018433"
    assert geohash.format_coord(180.0) == b"180"
    assert geohash.hash_string(3479099956230698.0) == b"sqc8b49rny0"
    assert geohash.encode(180.0, 85.05112878) == 3 << 52  # the upper limits scale to 2**26: one bit more
    assert geohash.u64(-1.0) == 2**64 - 1 and geohash.u64(1e20) == 0 and geohash.u64(float("-inf")) == 1 << 63


def test_distances_print_as_redis_72_rounds_them():
    assert geohash.format_distance(166274.15156960033) == b"166274.1516"
    assert geohash.format_distance(0.0) == b"0.0000"
    assert geohash.format_distance(6.0642951598391699e-05) == b"0.0001"
    # Scaled to exactly 0.5 and 2.5: llrint rounds half to even (7.0's %.4f,
    # reading the exact binary value a hair above, prints 0.0001 and 0.0003).
    assert geohash.format_distance(0.00005) == b"0.0000"
    assert geohash.format_distance(0.00025) == b"0.0002"
    rnd = random.Random(3)
    for _ in range(2000):  # away from a rounding boundary, 7.0's %.4f gives the same digits
        d = rnd.uniform(0, 2e7)
        if abs(d * 10000 - round(d * 10000)) < 0.499:
            assert geohash.format_distance(d) == b"%.4f" % d


def test_the_c_scan_computes_what_the_python_scan_computes():
    if geohash.scan is geohash.scan_python:
        pytest.skip("engine._geo is not built")
    rnd = random.Random(5)
    pairs = [(float(geohash.encode(rnd.uniform(-180, 180), rnd.uniform(-85, 85))), b"m%d" % i) for i in range(3000)]
    pairs += [(s, b"z%d" % i) for i, s in enumerate([0.0, -1.0, 1e20, float(2**52), float(3 << 52), 2.5, -1e19])]
    for _ in range(60):
        box = rnd.random() < 0.5
        cx, cy = rnd.uniform(-180, 180), rnd.uniform(-85, 85)
        p1, p2 = rnd.choice([0.0, 1e3, 1e6, 5e6, 2e7, float("inf")]), rnd.uniform(0, 1e7)
        limit = rnd.choice([0, 0, 1, 7])
        a, b = [], []
        geohash.scan(pairs, box, cx, cy, p1, p2, a, limit)
        geohash.scan_python(pairs, box, cx, cy, p1, p2, b, limit)
        assert a == b


def test_the_c_reply_items_are_the_python_ones():
    if geohash.items is geohash.items_python:
        pytest.skip("engine._geo is not built")
    rnd = random.Random(7)
    found = [(rnd.choice([0.0, 0.00005, 0.00025, rnd.uniform(0, 2e7), rnd.uniform(0, 10)]), b"m%d" % i,
              float(rnd.randrange(2**52)), rnd.choice([180.0, -180.0, 0.0, -0.0, rnd.uniform(-180, 180)]),
              rnd.choice([geohash.LAT_MAX, geohash.LAT_MIN, 1e-20, rnd.uniform(-85, 85)])) for i in range(500)]
    for to_m in geohash.UNITS.values():
        for flags in ((True, False, False), (False, True, False), (False, False, True), (True, True, True)):
            for raw in (None, Raw):
                got, want = geohash.items(found, to_m, *flags, raw), geohash.items_python(found, to_m, *flags, raw)
                assert got == want
                assert [list(map(type, x)) for x in got] == [list(map(type, x)) for x in want]


def test_the_c_score_is_the_python_score():
    rnd = random.Random(8)
    for _ in range(5000):
        x = rnd.choice([180.0, -180.0, 0.0, rnd.uniform(-180, 180)])
        y = rnd.choice([geohash.LAT_MAX, geohash.LAT_MIN, 0.0, rnd.uniform(geohash.LAT_MIN, geohash.LAT_MAX)])
        assert geohash.score_of(x, y) == geohash.encode(x, y)


def test_the_c_cells_are_the_python_cells():
    if geohash.search_ranges is geohash.search_ranges_python:
        pytest.skip("engine._geo is not built")
    rnd = random.Random(6)
    lons = [180.0, -180.0, 0.0, 179.9999, -179.9999]
    lats = [geohash.LAT_MAX, geohash.LAT_MIN, 0.0, 66.0, 66.5, -80.5, 85.0]
    sizes = [0.0, 1.0, 100.0, 5e3, 1e5, 2.5e6, 5e6, 6e6, 1e7, 3e7, float("inf"), 1e-300]
    for _ in range(3000):
        x = rnd.choice(lons) if rnd.random() < 0.2 else rnd.uniform(-180, 180)
        y = rnd.choice(lats) if rnd.random() < 0.2 else rnd.uniform(geohash.LAT_MIN, geohash.LAT_MAX)
        r, w, h = (rnd.choice(sizes) if rnd.random() < 0.5 else rnd.uniform(0, 2e6) for _ in range(3))
        for args in ((x, y, r, r, r), (x, y, (w * w + h * h) ** 0.5, w, h)):
            assert geohash.search_ranges(*args) == geohash.search_ranges_python(*args), args


def test_a_search_reads_only_its_cells(c, monkeypatch):
    rnd = random.Random(9)
    for chunk in range(50):
        run(c, "GEOADD", "g", *[x for i in range(1000)
                                 for x in (repr(rnd.uniform(-1, 1)), repr(rnd.uniform(-1, 1)), "m%d-%d" % (chunk, i))])
    read = []
    real = geohash.scan

    def counting(pairs, *args):
        read.append(len(pairs))
        return real(pairs, *args)

    monkeypatch.setattr(geohash, "scan", counting)
    found = run(c, "GEOSEARCH", "g", "FROMLONLAT", "0.1", "0.2", "BYRADIUS", "4", "km")
    assert 20 < len(found) < 200
    assert 1 <= len(read) <= 9 and sum(read) < 20 * len(found)  # candidates, not the 50000 members


@pytest.mark.parametrize("args", [
    ("GEORADIUS", "k", "1", "2", "3", "km", "STORE", "dst"),
    ("GEORADIUS", "k", "1", "2", "3", "km", "STOREDIST", "d2", "STORE", "d3"),
    ("GEORADIUS", "k", "1", "2", "3", "km"),
    ("GEORADIUSBYMEMBER", "k", "m", "3", "km", "STORE", "dst"),
    ("GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"),
    ("GEOADD", "k", "1", "2", "m"),
])
def test_command_getkeys_finds_the_destinations(pair, args):
    pair.check("COMMAND", "GETKEYS", *args)
    pair.check("COMMAND", "GETKEYSANDFLAGS", *args)


def test_geo_writes_survive_kill_9(tmp_path):
    # Replayed from the log (no checkpoint): GEOADD's ZADD, the stores' DEL +
    # ZADD, a store that emptied its destination, STOREDIST's doubles.
    from tests.support import KeelProcess

    def contents(cl):
        return {k: (cl.call("ZRANGE", k, "0", "-1", "WITHSCORES"), cl.call("OBJECT", "ENCODING", k))
                for k in ("g", "near", "dists", "gone", "big")}

    proc = KeelProcess(dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        cl.call("GEOADD", "g", *SICILY[2:])
        cl.call("GEOADD", "g", *[x for i in range(300) for x in ("13.%03d" % i, "38.%03d" % i, "m%d" % i)])
        cl.call("GEOADD", "g", "XX", "CH", "15.1", "37.6", "Catania")
        cl.call("SET", "near", "old")
        cl.call("GEOSEARCHSTORE", "near", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "30", "km", "COUNT", "10")
        cl.call("GEORADIUS", "g", "13.5", "38.2", "100", "km", "STOREDIST", "dists")
        cl.call("ZADD", "gone", "1", "x")
        cl.call("GEOSEARCHSTORE", "gone", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km")
        cl.call("GEOSEARCHSTORE", "big", "g", "FROMMEMBER", "m0", "BYRADIUS", "200", "km", "STOREDIST")
        before = contents(cl)
        cl.close()
    finally:
        proc.kill()
    assert before["dists"][0] and before["gone"] == ([], None)
    assert (before["near"][1], before["big"][1]) == (b"listpack", b"skiplist")
    proc = KeelProcess(dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        assert contents(cl) == before
        cl.close()
    finally:
        proc.cleanup()


def test_coordinates_read_as_redis_reads_a_double():
    from engine.commands.geo import _coord
    from engine.commands.zset import parse_score
    from engine.errors import CommandError

    def read(fn, b):
        try:
            return repr(fn(b))
        except CommandError as e:
            return e.text

    for b in [b"13.5", b"-13.5", b"+1.5", b"1.", b".5", b".", b"-", b"", b"1..2", b"1e5", b"0x10", b" 1", b"1 ",
              b"1_0", b"-0", b"0." + b"0" * 290 + b"1", b"1" * 299, b"1" * 300, b"\xd9\xa1", b"-.5", b"+.", b"--1",
              b"inf", b"-nan", b"1e400", b"1e-400"]:
        assert read(_coord, b) == read(parse_score, b), b
