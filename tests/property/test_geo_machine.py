"""Random geo programs give the same replies on Keel and Redis.

A Hypothesis ``RuleBasedStateMachine`` sends each generated command to the
shared Keel server and to a real redis-server and requires identical replies
(errors included); after every step every key's members, scores, type and
encoding must match too. Points are drawn over the whole range and from the
places where the arithmetic has edges: the poles' limits (±85.05112878, and
66 and 80 degrees, where Redis widens its cells), the antimeridian (±180),
0, and out-of-range or malformed values. Members come from a small pool, so
points move and coincide (equal distances are common). Searches cover
FROMMEMBER/FROMLONLAT, BYRADIUS/BYBOX (radius 0, huge and infinite radii
included), every unit, ASC/DESC, COUNT with and without ANY, the WITH*
options and the STORE forms; keys also hold sets built by ZADD with scores
no GEOADD gives, and strings (WRONGTYPE).

Order: an unsorted reply is compared as is (Redis reads the cells in a fixed
order, score order within each), and so is a sorted one that returns every
point found (glibc's qsort is a stable merge sort, as Keel's sort is) or
that COUNT ANY cut before sorting. When COUNT cuts a sorted reply, Redis
selects with its own partial quicksort, whose order among equal distances
is unspecified: those replies are compared position by position on the
distance (from a full search on Redis), and each item must be the one Redis
gives for that member; a STORE cut inside a run of equal distances leaves
its destination unchecked and deleted on both.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.support import Err, RespClient

KEYS = ["g1", "g2", "z"]  # z also takes ZADD's raw scores and strings
LAT = 85.05112878

keys = st.sampled_from(["g1", "g1", "g2", "z"])
members = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"])
lons = (st.floats(-180, 180).map(repr)
        | st.sampled_from(["180", "-180", "0", "179.99999", "-179.99999", "180.0000001", "x", "0x10"]))
lats = (st.floats(-LAT, LAT).map(repr)
        | st.sampled_from([repr(LAT), repr(-LAT), "0", "66.5", "-66.5", "80.5", "-80.5", "85", "-85.06", "inf"]))
# Clusters, so that a search of a few km finds points in several cells:
# around Sicily, across the antimeridian, and next to the northern limit.
clusters = (st.tuples(st.floats(13, 13.3), st.floats(38, 38.3))
            | st.tuples(st.floats(179.9, 180) | st.floats(-180, -179.9), st.floats(-0.1, 0.1))
            | st.tuples(st.floats(-0.3, 0.3), st.floats(84.9, LAT)))
points = st.tuples(lons, lats) | clusters.map(lambda p: (repr(p[0]), repr(p[1])))
# Radii past about 5000 km read the 4 quadrants (cells of 1 bit a coordinate),
# where Redis's neighbours repeat and its duplicate guard matters.
radii = (st.floats(0, 5000).map(repr) | st.floats(0, 40).map(repr)
         | st.sampled_from(["0", "1", "10", "30", "100", "2000"])
         | st.sampled_from(["6000", "10000", "20000", "40000", "inf"]) | st.sampled_from(["-1", "x"]))
units = st.sampled_from(["km", "km", "km", "m", "mi", "ft", "KM", "yd"])
raw_scores = (st.integers(0, 2**52 - 1).map(str)
              | st.sampled_from(["-1", "4503599627370496", "1e20", "-inf", "inf", "2.5", str(3 << 52)]))
sorts = st.sampled_from([[], [], ["ASC"], ["DESC"]])
withs = st.lists(st.sampled_from(["WITHDIST", "WITHCOORD", "WITHHASH"]), max_size=3, unique=True)
counts = st.one_of(st.none(), st.none(), st.integers(1, 6), st.integers(1, 6), st.sampled_from([0, -1]))


def _start(seed: int, cluster) -> list:
    """GEOADD arguments for 12 members: 9 points of a cluster and 3 anywhere."""
    rnd = random.Random(seed)
    out = []
    for i, m in enumerate("abcdefghijkl"):
        if i < 9:
            (x0, x1), (y0, y1) = cluster
            x, y = rnd.uniform(x0, x1), rnd.uniform(y0, y1)
        else:
            x, y = rnd.uniform(-180, 180), rnd.uniform(-LAT, LAT)
        out += [repr(x), repr(y), m]
    return out


# Every example starts from these, so that searches find points in several cells.
START_G1 = _start(1, ((13, 13.3), (38, 38.3)))
START_G2 = _start(2, ((179.8, 180), (84.8, 85.05)))


def _member(item):
    return item if isinstance(item, bytes) else item[0]


def make_machine(keel_port: int, ref_port: int):
    keel = RespClient(keel_port)
    ref = RespClient(ref_port)

    class GeoMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            for side in (keel, ref):
                side.call("FLUSHALL")
                side.call("CONFIG", "SET", "zset-max-listpack-entries", "6")
                side.call("GEOADD", "g1", *START_G1)
                side.call("GEOADD", "g2", *START_G2)

        def check(self, *args):
            k, r = keel.call(*args), ref.call(*args)
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
            return k

        @invariant()
        def contents_agree(self):
            for key in KEYS + ["dst"]:
                self.check("TYPE", key)
                self.check("OBJECT", "ENCODING", key)
                self.check("ZRANGE", key, "0", "-1", "WITHSCORES")

        @rule(key=keys, flags=st.lists(st.sampled_from(["NX", "XX", "CH"]), max_size=2),
              pts=st.lists(st.tuples(points, members), min_size=1, max_size=6))
        def geoadd(self, key, flags, pts):
            # At most 6 pairs (the listpack limit here): a new key given more
            # pairs than the limit, some repeating a member, starts as a
            # skiplist in 7.2 (and Keel's ZADD) but as a listpack in 7.0.
            self.check("GEOADD", key, *flags, *[x for (lon, lat), m in pts for x in (lon, lat, m)])

        @rule(key=st.sampled_from(["g2", "z"]), score=raw_scores, member=members)
        def zadd(self, key, score, member):
            self.check("ZADD", key, score, member)

        @rule(key=keys, pts=st.lists(st.tuples(clusters, members), min_size=4, max_size=6))
        def geoadd_cluster(self, key, pts):
            # Several points close together: searches then find points in several cells.
            self.check("GEOADD", key, *[x for (lon, lat), m in pts for x in (repr(lon), repr(lat), m)])

        @rule(key=keys, ms=st.lists(members, min_size=1, max_size=3))
        def zrem(self, key, ms):
            self.check("ZREM", key, *ms)

        @rule()
        def make_string(self):
            self.check("SET", "z", "v")

        @rule(key=keys, a=members, b=members, unit=st.none() | units)
        def reads(self, key, a, b, unit):
            self.check("GEOPOS", key, a, b, "nope")
            self.check("GEOHASH", key, a, b)
            self.check("GEODIST", key, a, b, *([] if unit is None else [unit]))

        def search(self, head, tail, sort, count, any_, opts):
            """Send ``head + tail + options``; compare, minding the order
            Redis leaves unspecified (see the module docstring)."""
            limit = [] if count is None else ["COUNT", str(count)] + (["ANY"] if any_ else [])
            args = head + tail + sort + limit + opts
            k, r = keel.call(*args), ref.call(*args)
            if (isinstance(r, Err) or not isinstance(r, list) or not count or count <= 0 or any_
                    or len(r) < count):
                assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
                return k, r, False
            full = ref.call(*(head + tail + (sort or ["ASC"]) + ["WITHDIST"] + [o for o in opts if o != "WITHDIST"]))
            dist = {f[0]: f[1] for f in full}
            cut = len(full) > count and full[count - 1][1] == full[count][1]
            if not cut and all(full[i][1] != full[i + 1][1] for i in range(min(count, len(full)) - 1)):
                assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
                return k, r, False
            assert isinstance(k, list) and len(k) == len(r), f"{args!r}: keel {k!r} != redis {r!r}"
            assert [dist[_member(x)] for x in k] == [dist[_member(x)] for x in r], f"{args!r}: {k!r} vs {r!r}"
            assert len({_member(x) for x in k}) == len(k)
            withdist = "WITHDIST" in opts
            for item in k:
                f = next(f for f in full if f[0] == _member(item))
                want = [f[0]] + ([f[1]] if withdist else []) + f[2:]
                assert (item if isinstance(item, list) else [item]) == want, f"{args!r}: {item!r} vs {want!r}"
            return k, r, cut

        @rule(key=keys, center=st.one_of(members.map(lambda m: ["FROMMEMBER", m]),
                                         points.map(lambda p: ["FROMLONLAT", *p])),
              by=st.one_of(st.tuples(radii, units).map(lambda t: ["BYRADIUS", *t]),
                           st.tuples(radii, radii, units).map(lambda t: ["BYBOX", *t])),
              sort=sorts, count=counts, any_=st.booleans(), opts=withs)
        def geosearch(self, key, center, by, sort, count, any_, opts):
            self.search(["GEOSEARCH", key], center + by, sort, count, any_, opts)

        @rule(key=keys, member=members, p=points, radius=radii, unit=units, by_member=st.booleans(),
              ro=st.booleans(), sort=sorts, count=counts, any_=st.booleans(), opts=withs)
        def georadius(self, key, member, p, radius, unit, by_member, ro, sort, count, any_, opts):
            name = ("GEORADIUSBYMEMBER" if by_member else "GEORADIUS") + ("_RO" if ro else "")
            where = [member] if by_member else list(p)
            self.search([name, key], where + [radius, unit], sort, count, any_, opts)

        @rule(dst=st.sampled_from(["dst", "dst", "g1"]), src=keys,
              center=st.one_of(members.map(lambda m: ["FROMMEMBER", m]), points.map(lambda p: ["FROMLONLAT", *p])),
              radius=radii, unit=units, sort=sorts, count=counts, any_=st.booleans(), dist=st.booleans(),
              radius_form=st.booleans())
        def store(self, dst, src, center, radius, unit, sort, count, any_, dist, radius_form):
            if radius_form and center[0] == "FROMMEMBER":
                head, tail = ["GEORADIUSBYMEMBER", src], [center[1], radius, unit]
                opts = ["STOREDIST" if dist else "STORE", dst]
            elif radius_form:
                head, tail = ["GEORADIUS", src], center[1:] + [radius, unit]
                opts = ["STOREDIST" if dist else "STORE", dst]
            else:
                head, tail = ["GEOSEARCHSTORE", dst, src], center + ["BYRADIUS", radius, unit]
                opts = ["STOREDIST"] if dist else []
            limit = [] if count is None else ["COUNT", str(count)] + (["ANY"] if any_ else [])
            args = head + tail + sort + limit + opts
            self.check(*args)
            if count and count > 0 and not any_:
                search = ["GEOSEARCH", src] + center + ["BYRADIUS", radius, unit]
                full = ref.call(*(search + (sort or ["ASC"]) + ["WITHDIST"]))
                if isinstance(full, list) and len(full) > count and full[count - 1][1] == full[count][1]:
                    keel.call("DEL", dst)  # which of the equally distant members were kept is unspecified
                    ref.call("DEL", dst)

    GeoMachine.TestCase.settings = settings(
        max_examples=150, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return GeoMachine, (keel, ref)


def _run(keel, redis_ref, **overrides):
    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=settings(machine.TestCase.settings, **overrides))
    finally:
        for client in clients:
            client.call("CONFIG", "SET", "zset-max-listpack-entries", "128")
            client.close()


def test_random_geo_programs_agree_with_redis(keel, redis_ref):
    _run(keel, redis_ref)


@pytest.mark.soak
def test_many_random_geo_programs_agree_with_redis(keel, redis_ref):
    _run(keel, redis_ref, max_examples=2000, stateful_step_count=50)
