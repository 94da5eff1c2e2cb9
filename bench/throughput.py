"""Side-by-side throughput: Keel against a real redis-server (and the Python ceiling), same run.

Starts the servers on free ports, pins each to core 1 (the benchmark runs on
core 0) and runs each workload with redis-benchmark interleaved across the
servers (Keel, Redis[, ceiling], Keel, Redis, …), as
``../shared/bench/compare.py`` does (its ``run`` is imported, not copied):
each test's median requests/s and the median of the per-round ratios
Keel/Redis — and, for the pipelined workloads, Keel/ceiling against
``../shared/bench/ceiling.py`` (the bare uvloop + hiredis loop: how much of
Keel's cost is its own). Usage:

    python bench/throughput.py                 # the memory-only workloads
    python bench/throughput.py --durable       # appendfsync always on both
    python bench/throughput.py --only pipelining --reps 3
    python bench/throughput.py --no-ceiling    # Keel and Redis only

Workloads are those of ../shared/bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, COMPARE, Servers  # noqa: E402

# name: (redis-benchmark options, requests per run, also against ceiling.py)
WORKLOADS = {
    "no-pipelining": ("-t set,get -c 50", 200_000, False),
    "pipelining": ("-t set,get -c 50 -P 16", 1_000_000, True),
    "mixed-types": ("-t incr,lpush,lpop,sadd,hset,zadd -c 50 -P 16", 1_000_000, True),
    "one-client": ("-t get -c 1", 50_000, False),
    # The collections issue's bar: >= 0.9x Redis with 50 clients.
    "collections": ("-t lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100 -c 50", 100_000, False),
}
DURABLE = {
    "durable-set": ("-t set -c 50", 100_000, False),
    "durable-set-pipelined": ("-t set -c 50 -P 16", 500_000, False),
}


def load_compare():
    """../shared/bench/compare.py as a module (its ``run`` drives redis-benchmark)."""
    spec = importlib.util.spec_from_file_location("shared_bench_compare", COMPARE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def interleaved(run, servers, args: str, n: int, reps: int, cpu: str):
    """``reps`` rounds, each running every server once in turn: {name: [results per round]}."""
    out = {name: [] for name, _ in servers}
    for _ in range(reps):
        for name, port in servers:
            out[name].append(run(port, n, args, cpu))
    return out


def report(results, args: str, others) -> None:
    """Per test: medians and Keel/<other> ratios (median of per-round ratios); then geometric means.

    A test that a server gave no figure for (redis-benchmark stops at an error
    reply, e.g. a command Keel lacks) is shown as missing and left out of the means.
    """
    keel = results["keel"]
    tests = list(results[others[0]][0])
    logs = {o: [] for o in others}
    missing = []
    for test in tests:
        if any(test not in r for name in results for r in results[name]):
            gone = [name for name in results if any(test not in r for r in results[name])]
            missing.append(test)
            print(f"{test}: no figure from {', '.join(gone)} (redis-benchmark stopped: an error reply?)", flush=True)
            continue
        cells = [f"keel {statistics.median(r[test] for r in keel):,.0f}"]
        for o in others:
            cells.append(f"{o} {statistics.median(r[test] for r in results[o]):,.0f}")
        rs = []
        for o in others:
            r = statistics.median(k[test] / max(x[test], 1e-9) for k, x in zip(keel, results[o]))
            logs[o].append(math.log(max(r, 1e-9)))
            rs.append(f"keel/{o} {r:.2f}")
        print(f"{test}: {' vs '.join(cells)} req/s; {', '.join(rs)}", flush=True)
    for o in others:
        if logs[o]:
            g = math.exp(sum(logs[o]) / len(logs[o]))
            left = f" (without {', '.join(missing)})" if missing else ""
            print(f"keel/{o} [{args}] ratio {g:.2f}{left}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--durable", action="store_true", help="appendfsync always on both servers")
    ap.add_argument("--only", action="append", help="run only this workload (repeatable)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--no-ceiling", action="store_true", help="do not run ceiling.py")
    o = ap.parse_args()

    if o.durable:
        keel_args = ["--appendonly", "yes", "--appendfsync", "always"]
        redis_args = ["--appendonly", "yes", "--appendfsync", "always"]
        workloads = DURABLE
    else:
        keel_args = ["--appendonly", "no"]
        redis_args = []
        workloads = WORKLOADS
    chosen = {k: v for k, v in workloads.items() if not o.only or k in o.only}
    if o.only and len(chosen) != len(set(o.only)):
        ap.error(f"unknown workload; known: {', '.join(workloads)}")
    compare = load_compare()
    with Servers() as srv:
        keel = srv.keel(*keel_args)
        ref = srv.redis(*redis_args)
        ceiling = None
        if not o.no_ceiling and any(c for _, _, c in chosen.values()):
            ceiling = srv.ceiling()
        for name, (args, n, with_ceiling) in chosen.items():
            servers = [("keel", keel.port), ("redis", ref.port)]
            if with_ceiling and ceiling is not None:
                servers.append(("ceiling", ceiling.port))
            print(f"== {name}: redis-benchmark {args} ({', '.join(s for s, _ in servers)})", flush=True)
            results = interleaved(compare.run, servers, args, int(n * o.scale), o.reps, str(CLIENT_CPU))
            report(results, args, [s for s, _ in servers[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
