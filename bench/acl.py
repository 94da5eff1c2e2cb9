"""ACL cost: SET/GET from a restricted user against the default user, same Keel, same run.

The restricted user has 10 key patterns and 20 command rules (the issue's
shape); redis-benchmark logs in with ``--user``/``-a``. Keel is pinned to
core 1, the benchmark to core 0; rounds alternate the two users and the
median is printed with the ratio restricted/default (the bar: ≥ 0.95x with
``-c 50``, ≥ 0.85x with ``-P 16``). redis-server runs the same for reference.
Usage:

    python bench/acl.py [--reps 3] [-n 200000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Servers, pin_self, requests_per_second  # noqa: E402
from scale import code_state, redis_version  # noqa: E402

KEYS = [f"~k{i}*" for i in range(9)] + ["~key:*"]
RULES = ["-@all", "+set", "+get", "+ping", "+incr", "+del", "+exists", "+mget", "+mset", "+lpush", "+rpop",
         "+hset", "+hget", "+sadd", "+zadd", "+expire", "+ttl", "+type", "+config|get", "-flushall"]


def bench(port: int, user: str | None, pipeline: int, n: int) -> dict:
    cmd = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-c", "50", "-n", str(n), "-P", str(pipeline),
           "-q", "--csv"]
    if user:
        cmd += ["--user", user, "-a", "pw"]
    return requests_per_second(cmd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-n", type=int, default=200000)
    o = ap.parse_args()
    pin_self()
    print(f"keel: {code_state()}; redis: {redis_version()}; client on core 0, servers on core 1")
    with Servers() as srv:
        servers = {"keel": srv.keel("--appendonly", "no"), "redis": srv.redis()}
        for p in servers.values():
            c = p.client()
            assert c.call("ACL", "SETUSER", "app", "on", ">pw", *KEYS, *RULES) == b"OK"
            c.close()
        for pipeline in (1, 16):
            runs = {(s, u): [] for s in servers for u in ("default", "app")}
            for _ in range(o.reps):
                for s, p in servers.items():
                    for u in ("default", "app"):
                        runs[(s, u)].append(bench(p.port, None if u == "default" else u, pipeline, o.n))
            for test in ("SET", "GET"):
                line = [f"-P {pipeline:<2} {test}:"]
                for s in servers:
                    d = statistics.median(r[test] for r in runs[(s, "default")])
                    a = statistics.median(r[test] for r in runs[(s, "app")])
                    line.append(f"{s} default {d:,.0f} restricted {a:,.0f} ({a / d:.2f}x)")
                print("  ".join(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
