"""GEO side by side: Keel against a real redis-server, same run.

* ``ZADD`` of one member (the baseline: the same write without the geo
  layer) and ``GEOADD`` of one random point and member to one key, 50 clients
  (``redis-benchmark -c 50``): the coordinates are ``13.<rand>`` and
  ``38.<rand>``, the member ``m:<rand>`` (redis-benchmark's ``-r 100000``
  gives 12-digit zero-padded integers below 100000);
* ``GEOSEARCH … FROMMEMBER m:<rand> BYRADIUS 2.8 km`` over 100k points spread
  uniformly over longitude and latitude -1..1 (about 50 found a search),
  50 clients, without and with ``WITHDIST ASC``.

The 100k points (the same on both servers) are loaded with a pipelined
client before the searches; the servers are started and pinned to core 1
by ``harness.Servers``, redis-benchmark runs on core 0, rounds interleaved
across the servers. Keel runs with ``--appendonly no``, as Redis's default.
Also printed: how many points a search found on average (both servers must
agree) and how many candidates its 9 cells held. Usage:

    python bench/geo.py                  # 5 rounds
    python bench/geo.py --reps 3 --scale 0.5
"""

from __future__ import annotations

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers  # noqa: E402
from throughput import interleaved, load_compare, report  # noqa: E402

POINTS = 100_000
RADIUS_KM = "2.8"


def load(client, seed: int = 1) -> None:
    rnd = random.Random(seed)
    batch = []
    for i in range(POINTS):
        batch += [repr(rnd.uniform(-1, 1)), repr(rnd.uniform(-1, 1)), "m:%012d" % i]
        if len(batch) >= 3000:
            client.call("GEOADD", "points", *batch)
            batch = []
    if batch:
        client.call("GEOADD", "points", *batch)


def found_per_search(clients, n: int = 200) -> float:
    """Average results of ``n`` searches; every server must give the same replies."""
    rnd = random.Random(2)
    total = 0
    for _ in range(n):
        member = "m:%012d" % rnd.randrange(POINTS)
        replies = [c.call("GEOSEARCH", "points", "FROMMEMBER", member, "BYRADIUS", RADIUS_KM, "km", "WITHDIST")
                   for c in clients]
        if any(r != replies[0] for r in replies):
            raise SystemExit(f"the servers disagree on the search around {member}")
        total += len(replies[0])
    return total / n


def candidates_per_search(n: int = 200) -> float:
    """Points in the 9 cells a search reads, averaged (computed here, in process)."""
    from engine import geohash

    rnd = random.Random(1)
    scores = sorted(geohash.encode(rnd.uniform(-1, 1), rnd.uniform(-1, 1)) for _ in range(POINTS))
    from bisect import bisect_left

    total = 0
    r = float(RADIUS_KM) * 1000
    for _ in range(n):
        s = scores[rnd.randrange(POINTS)]
        x, y = geohash.decode(s)
        for lo, hi in geohash.search_ranges(x, y, r, r, r):
            total += bisect_left(scores, hi) - bisect_left(scores, lo)
    return total / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    o = ap.parse_args()
    compare = load_compare()
    with Servers() as srv:
        keel = srv.keel("--appendonly", "no")
        ref = srv.redis()
        servers = [("keel", keel.port), ("redis", ref.port)]
        # ZADD of one member first: the same write without the geo layer, so
        # that GEOADD's ratio can be read against what ZADD's is in this run.
        for name, args in (("zadd", "-c 50 zadd zadded __rand_int__ m:__rand_int__"),
                           ("geoadd", "-c 50 geoadd added 13.__rand_int__ 38.__rand_int__ m:__rand_int__")):
            print(f"== {name}: redis-benchmark {args}", flush=True)
            report(interleaved(compare.run, servers, args, int(200_000 * o.scale), o.reps, str(CLIENT_CPU)), args,
                   ["redis"])
        clients = [p.client(timeout=120) for p in (keel, ref)]
        for c in clients:
            load(c)
        print(f"loaded {POINTS} points; a search finds {found_per_search(clients):.1f} on average, "
              f"its 9 cells hold {candidates_per_search():.0f} candidates", flush=True)
        for c in clients:
            c.close()
        for extra in ("", " WITHDIST ASC"):
            args = f"-c 50 geosearch points frommember m:__rand_int__ byradius {RADIUS_KM} km{extra}"
            print(f"== geosearch: redis-benchmark {args}", flush=True)
            report(interleaved(compare.run, servers, args, int(50_000 * o.scale), o.reps, str(CLIENT_CPU)),
                   args, ["redis"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
