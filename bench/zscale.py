"""Does a sorted set's cost grow with its size the way Redis's does? Keel vs redis-server, same run.

Both servers run side by side (Keel with ``--appendonly no``), pinned to core
1 while this client runs on core 0 (``harness.Servers``). For each size (1k
and 1M members by default; both are skiplists on both servers) one key is
loaded with members ``m:<i>`` at random integer scores, and per call we time,
in pipelines of 100 pre-encoded commands:

- ``ZADD key <score> <new member>``: a new member each call, and
- ``ZREM key <member>`` of those same members, in cycles of ``--chunk``
  (200) adds then their removal, so the set stays within 20% of its size
  (a 1k set is measured at 1k..1.2k members);
- ``ZRANK key <member>`` of random members of the set;
- ``ZRANGEBYSCORE key <score> +inf LIMIT 0 10`` from random scores.

Each figure is the median of ``--rounds`` rounds (each round measures every
size on Keel and on Redis in turn, so a change in the machine's load falls
on all of them alike), printed for Keel, Redis and Keel/Redis, then per server the
ratio of the largest size to the smallest: the bar is Keel's 1M/1k within 3x.
Timings include the client's send and reply parsing (the same for both
servers); on a shared machine they are noisy: compare ratios within one run.

    python bench/zscale.py                       # 1k and 1M, ~2 minutes
    python bench/zscale.py --sizes 1k,100k --rounds 3 --calls 5000
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Servers, pin_self  # noqa: E402
from scale import Table, check, encode_batches, parse_count, pipeline, ratio, us  # noqa: E402
from tests.support import Err  # noqa: E402

OPS = ("zadd", "zrank", "zrangebyscore", "zrem")
WHAT = {
    "zadd": "ZADD key score <new member>",
    "zrank": "ZRANK key <member>",
    "zrangebyscore": "ZRANGEBYSCORE key <score> +inf LIMIT 0 10",
    "zrem": "ZREM key <member added by ZADD>",
}
LOAD_CHUNK = 1000  # members per loading ZADD


def member(i: int) -> bytes:
    return b"m:%010d" % i


def load(client, key: bytes, n: int, rng: random.Random) -> None:
    """``key`` holds ``n`` members m:0.. at random scores in [0, 10n)."""
    pipeline(client, [("DEL", key)], "DEL")
    top = 10 * n
    cmds = []
    for start in range(0, n, LOAD_CHUNK):
        args = [b"ZADD", key]
        for i in range(start, min(n, start + LOAD_CHUNK)):
            args += [b"%d" % rng.randrange(top), member(i)]
        cmds.append(args)
    pipeline(client, cmds, "ZADD (load)", batch=20)
    got = client.call("ZCARD", key)
    if got != n:
        raise RuntimeError(f"ZCARD {got}, expected {n}")


def run(client, batches, what: str) -> float:
    """Seconds to send ``batches`` and read every reply (an error reply fails)."""
    read = client.read
    t0 = time.perf_counter()
    for data, n in batches:
        client.send_raw(data)
        for _ in range(n):
            r = read()
            if r.__class__ is Err:
                raise RuntimeError(f"{what}: error reply {r!r}")
    return time.perf_counter() - t0


def workload(key: bytes, n: int, calls: int, chunk: int, rnd: int, rng: random.Random) -> dict:
    """op -> list of (batches, calls) timed units; ZADD/ZREM units alternate."""
    top = 10 * n
    cycles = []
    for cyc in range(max(1, calls // chunk)):
        news = [b"new:%d:%d:%08d" % (rnd, cyc, j) for j in range(chunk)]
        adds = [(b"ZADD", key, b"%d" % rng.randrange(top), m) for m in news]
        rems = [(b"ZREM", key, m) for m in news]
        cycles.append((encode_batches(adds), encode_batches(rems)))
    ranks = [(b"ZRANK", key, member(rng.randrange(n))) for _ in range(calls)]
    ranges = [(b"ZRANGEBYSCORE", key, b"%d" % rng.randrange(top), b"+inf", b"LIMIT", b"0", b"10")
              for _ in range(calls)]
    return {"cycles": cycles, "zrank": encode_batches(ranks), "zrangebyscore": encode_batches(ranges)}


def measure(client, w: dict, chunk: int) -> dict:
    """op -> seconds per call for one round on one server."""
    gc.collect()
    gc.disable()  # a collection inside a timed loop is the client's cost, not the server's
    try:
        first_add, first_rem = w["cycles"][0]
        run(client, first_add, "ZADD (warm-up)")
        run(client, first_rem, "ZREM (warm-up)")
        t_add = t_rem = 0.0
        for adds, rems in w["cycles"]:
            t_add += run(client, adds, "ZADD")
            t_rem += run(client, rems, "ZREM")
        done = len(w["cycles"]) * chunk
        out = {"zadd": t_add / done, "zrem": t_rem / done}
        for op in ("zrank", "zrangebyscore"):
            batches = w[op]
            run(client, batches[:1], op)  # warm-up
            out[op] = run(client, batches[1:], op) / sum(n for _, n in batches[1:])
        return out
    finally:
        gc.enable()


def fmt_count(n: int) -> str:
    for unit, m in (("M", 1000_000), ("k", 1000)):
        if n >= m and n % m == 0:
            return f"{n // m}{unit}"
    return str(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1k,1m", help="members per set (default 1k,1m)")
    ap.add_argument("--calls", type=int, default=10000, help="calls per op per round (default 10000)")
    ap.add_argument("--chunk", type=int, default=200, help="ZADDs before their ZREMs (default 200)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, median reported (default 5)")
    o = ap.parse_args()
    sizes = sorted(parse_count(s) for s in o.sizes.split(",") if s)
    pin_self()
    with Servers() as srv:
        keel, ref = srv.keel("--appendonly", "no"), srv.redis()
        clients = (("keel", keel.client(timeout=300)), ("redis", ref.client(timeout=300)))
        keys = {n: b"zscale:%d" % n for n in sizes}
        for n in sizes:
            for name, c in clients:
                load(c, keys[n], n, random.Random(n))
        print(f"  (loaded {', '.join(fmt_count(n) for n in sizes)} members)", flush=True)
        # Every round measures every size on both servers, so that a change
        # in the machine's load falls on all of them alike.
        got = {(n, name, op): [] for n in sizes for name, _ in clients for op in OPS}
        for rnd in range(o.rounds):
            for n in sizes:
                w = workload(keys[n], n, o.calls, o.chunk, rnd, random.Random(n * 1000 + rnd))
                for name, c in clients:
                    for op, t in measure(c, w, o.chunk).items():
                        got[n, name, op].append(t)
        for n in sizes:
            for name, c in clients:
                check([c.call("ZCARD", keys[n])], "ZCARD")
    per = {n: {(name, op): statistics.median(got[n, name, op]) for name, _ in clients for op in OPS}
           for n in sizes}
    lo, hi = sizes[0], sizes[-1]
    for op in OPS:
        t = Table(f"{op}: {WHAT[op]}; per call, pipelines of 100, median of {o.rounds}")
        for n in sizes:
            k, r = per[n]["keel", op], per[n]["redis", op]
            t.row(f"{fmt_count(n)} members", us(k), us(r), ratio(k, r))
        if lo != hi:
            t.row(f"{fmt_count(hi)} / {fmt_count(lo)}", ratio(per[hi]["keel", op], per[lo]["keel", op]),
                  ratio(per[hi]["redis", op], per[lo]["redis", op]), "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
