"""Keel as a cache: maxmemory with allkeys-lru, then allkeys-lfu, side by side with redis-server.

Both servers run ``maxmemory 64mb`` (``--maxmemory``) and the policy. One
client (pinned to the other core) writes three times that much data, new keys
of ``--value-size`` bytes, and between writes reads: 90% of the reads go to a
hot set (every tenth key written so far), the rest to any key written so far.
Both servers get the same sequence. Reported per server and policy:

* ``used_memory`` / ``maxmemory`` at the end (the issue's bar: within 5%);
* resident memory after 1x, 2x and 3x maxmemory of data written (it must stop
  growing once the limit is reached);
* the read hit rate once the data written passed 1.5x maxmemory (the bar:
  within 5 points of Redis's), hot and cold reads apart;
* ``redis-benchmark -t set,get -c 50 -d <value size>`` on random keys while
  the server sits at the limit, so that every SET of a new key evicts one
  (interleaved, ``--reps`` rounds, medians; the bar: Keel >= 0.8x Redis).

Measured on the loaded 2-core test box (64mb, 500-byte values, default run):
allkeys-lru: used_memory 1.000x maxmemory, RSS flat from 2x to 3x, hit rate
75.0% vs Redis 78.7% (-3.7 points), SET -c 50 during eviction 0.36-0.6x
Redis, GET 1.07x; allkeys-lfu: 1.000x, flat, 89.4% vs 79.3% (+10.1), SET
0.51x, GET 1.07x. (Without maxmemory SET -c 50 was 0.7-1.0x Redis on the
same box: the eviction itself costs Keel about 10 us of CPU per evicted key.)

Usage:
    python bench/eviction.py                     # both policies, about 2 minutes
    python bench/eviction.py --policy allkeys-lru --maxmemory 32mb --reps 1
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers, pin_self, requests_per_second, rss  # noqa: E402

from server.config import parse_memory  # noqa: E402

BATCH = 200  # commands per pipelined round trip


def info(c, section: str) -> dict:
    text = c.call("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def workload(c, pid: int, maxmemory: int, value_size: int, seed: int) -> dict:
    """Write 3x maxmemory of new keys, reading between writes; the figures."""
    rng = random.Random(seed)
    value = b"x" * value_size
    writes = 3 * maxmemory // value_size
    steady_from = writes // 2  # 1.5x maxmemory written
    marks = {writes // 3: "1x", 2 * writes // 3: "2x"}
    out = {"rss": {}, "hot": [0, 0], "cold": [0, 0]}
    t0 = time.perf_counter()
    i = 0
    while i < writes:
        cmds, kinds = [], []
        for _ in range(BATCH // 2):
            cmds.append((b"SET", b"key:%09d" % i, value))
            kinds.append(None)
            i += 1
            if rng.random() < 0.9:
                j = rng.randrange(0, i, 10)  # the hot set: every tenth key
                kinds.append("hot")
            else:
                j = rng.randrange(i)
                kinds.append("cold")
            cmds.append((b"GET", b"key:%09d" % j))
        replies = c.pipeline(cmds)
        if i >= steady_from:
            for kind, r in zip(kinds, replies):
                if kind is not None:
                    out[kind][0] += r is not None
                    out[kind][1] += 1
        for mark, name in marks.items():
            if i - BATCH // 2 < mark <= i:
                out["rss"][name] = rss(pid)
    out["rss"]["3x"] = rss(pid)
    out["seconds"] = time.perf_counter() - t0
    mem = info(c, "memory")
    out["used_memory"] = int(mem["used_memory"])
    out["estimate"] = mem.get("used_memory_estimate", "")
    out["evicted"] = int(info(c, "stats")["evicted_keys"])
    out["keys"] = c.call("DBSIZE")
    return out


def benchmark(port: int, n: int, value_size: int) -> dict:
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-r", "100000000",
           "-c", "50", "-d", str(value_size), "-t", "set,get", "--csv"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(CLIENT_CPU)] + cmd
    return requests_per_second(cmd)


def ratios(servers, o, when: str) -> None:
    """SET/GET -c 50 on random keys, ``o.reps`` interleaved rounds: medians and Keel/Redis."""
    runs = {name: [] for name, _ in servers}
    for _ in range(o.reps):
        for name, p in servers:
            runs[name].append(benchmark(p.port, o.requests, o.value_size))
    for test in ("SET", "GET"):
        k = statistics.median(r.get(test, 0.0) for r in runs["keel"])
        r = statistics.median(x.get(test, 0.0) for x in runs["redis"])
        ratio = statistics.median(a.get(test, 0.0) / max(b.get(test, 0.0), 1e-9)
                                  for a, b in zip(runs["keel"], runs["redis"]))
        print(f"{test} -c 50 {when}: keel {k:,.0f} vs redis {r:,.0f} req/s; keel/redis {ratio:.2f}", flush=True)


def mb(n: int) -> str:
    return f"{n / 1048576:.1f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maxmemory", default="64mb")
    ap.add_argument("--policy", action="append", help="allkeys-lru and allkeys-lfu unless given")
    ap.add_argument("--value-size", type=int, default=500)
    ap.add_argument("--requests", type=int, default=40_000, help="per redis-benchmark run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline", action="store_true", help="the same SET/GET run first without maxmemory")
    o = ap.parse_args()
    maxmemory = parse_memory(o.maxmemory)
    pin_self()
    started = time.perf_counter()
    for policy in o.policy or ["allkeys-lru", "allkeys-lfu"]:
        args = ("--maxmemory-policy", policy)
        with Servers() as srv:
            servers = [("keel", srv.keel("--appendonly", "no", *args)), ("redis", srv.redis(*args))]
            print(f"== {policy}, maxmemory {mb(maxmemory)}, {o.value_size}-byte values, "
                  f"3x that much written", flush=True)
            if o.baseline:
                ratios(servers, o, "without maxmemory")
            for _, p in servers:
                c = p.client()
                c.call("FLUSHALL")
                c.call("CONFIG", "SET", "maxmemory", str(maxmemory))
                c.close()
            figures = {}
            for name, p in servers:
                c = p.client(timeout=120)
                f = figures[name] = workload(c, p.proc.pid, maxmemory, o.value_size, seed=13)
                hits = f["hot"][0] + f["cold"][0]
                reads = f["hot"][1] + f["cold"][1]
                f["hit"] = 100.0 * hits / max(reads, 1)
                print(f"{name}: {f['seconds']:.1f} s; used_memory {mb(f['used_memory'])} = "
                      f"{f['used_memory'] / maxmemory:.3f}x maxmemory{' (' + f['estimate'] + ')' if f['estimate'] else ''}; "
                      f"rss at 1x/2x/3x {' / '.join(mb(f['rss'][k]) for k in ('1x', '2x', '3x'))}; "
                      f"{f['keys']} keys, {f['evicted']} evicted; hit rate {f['hit']:.1f}% "
                      f"(hot {100.0 * f['hot'][0] / max(f['hot'][1], 1):.1f}%, "
                      f"cold {100.0 * f['cold'][0] / max(f['cold'][1], 1):.1f}%)", flush=True)
                c.close()
            print(f"hit rate keel - redis: {figures['keel']['hit'] - figures['redis']['hit']:+.1f} points; "
                  f"rss growth 2x->3x keel {mb(figures['keel']['rss']['3x'] - figures['keel']['rss']['2x'])}, "
                  f"redis {mb(figures['redis']['rss']['3x'] - figures['redis']['rss']['2x'])}", flush=True)
            ratios(servers, o, "during eviction")
            for name, p in servers:
                c = p.client()
                print(f"{name} after the benchmark: used_memory {int(info(c, 'memory')['used_memory']) / maxmemory:.3f}x "
                      f"maxmemory, {int(info(c, 'stats')['evicted_keys'])} evicted", flush=True)
                c.close()
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
