"""HyperLogLog throughput, side by side: Keel against a real redis-server, same run.

Both servers pinned to core 1, redis-benchmark (50 clients, no pipelining)
on core 0; each workload runs interleaved Keel, Redis, Keel, … (the rounds
and the report are bench/throughput.py's): the median requests/s of each
and the median of the per-round ratios Keel/Redis. Issue 12's bars: PFADD
of 10 elements >= 0.7x, PFCOUNT of one key >= 0.9x.

Each workload also gets a "per CPU second" row: requests divided by the CPU
time the server process used meanwhile (utime + stime of all its threads,
from /proc). On a machine others load, requests/s measures the share of
core 1 each server got as much as the server; requests per CPU second does not.

Workloads (``__rand_int__`` is redis-benchmark's, each occurrence its own
number below -r 100000):

    pfadd-dense    PFADD of 10 random elements to one key (dense after the first few hundred)
    pfadd-sparse   PFADD of 10 random elements to one of 100k keys (sparse values, each made and grown)
    pfadd-same     PFADD key a b c d e f g h i j (after the first, changes nothing)
    pfcount        PFCOUNT of the dense key (its cached cardinality)
    pfcount-multi  PFCOUNT of two keys (merged on the fly every time: no cache)
    set            SET of one key: the cheapest write in the same harness, the floor
                   the PFADD ratios sit on (what each request costs Keel apart from its work)

Measured 2026-12-01 on the shared 2-core machine (load average 4-8 from
others' work), 5 rounds, Keel/Redis requests/s and per CPU second:
pfadd-dense 0.83 / 0.72, pfcount 0.96 / 0.77, set 1.08 / 0.85 (one run);
pfadd-sparse 0.79 / 0.67, pfadd-same 0.94 / 0.69, pfcount-multi 0.92 / 0.93
(another). The PF* rows sit at SET's: what a request costs Keel apart from
its work, not the HLL code (a dense PFADD of 10 is ~1 us of handler in-process).

    python bench/hll.py                  # 5 rounds of each
    python bench/hll.py --only pfadd-dense --only pfcount --reps 3
    python bench/hll.py --durable        # appendfsync always on both
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers  # noqa: E402
from throughput import interleaved, load_compare, report  # noqa: E402

TEN = " ".join(["e:__rand_int__"] * 10)
# name: (redis-benchmark options, requests per run)
WORKLOADS = {
    "pfadd-dense": (f"-c 50 pfadd hll:dense {TEN}", 200_000),
    "pfadd-sparse": (f"-c 50 pfadd hll:__rand_int__ {TEN}", 200_000),
    "pfadd-same": ("-c 50 pfadd hll:same a b c d e f g h i j", 200_000),
    "pfcount": ("-c 50 pfcount hll:dense", 200_000),
    "pfcount-multi": ("-c 50 pfcount hll:dense hll:same", 50_000),
    "set": ("-c 50 set key value", 200_000),
}


def prepare(port: int) -> None:
    """The dense key the PFCOUNT workloads read, made before any round."""
    from tests.support import RespClient

    c = RespClient(port)
    try:
        c.call("DEL", "hll:dense", "hll:same")
        for i in range(0, 20_000, 500):
            c.call("PFADD", "hll:dense", *[b"p%d" % j for j in range(i, i + 500)])
        c.call("PFADD", "hll:same", *"abcdefghij")
        assert c.call("PFDEBUG", "ENCODING", "hll:dense") == b"dense"
    finally:
        c.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(run, pids: dict):
    """``run`` that also reports each test's requests per server CPU second."""
    def measured(port, n, args, cpu):
        before = cpu_seconds(pids[port])
        out = run(port, n, args, cpu)
        used = max(cpu_seconds(pids[port]) - before, 1e-3)
        return {**out, **{f"per CPU second, {test}": n / used for test in out}}
    return measured


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--durable", action="store_true", help="appendfsync always on both servers")
    ap.add_argument("--only", action="append", help="run only this workload (repeatable)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    o = ap.parse_args()
    if o.durable:
        keel_args = redis_args = ["--appendonly", "yes", "--appendfsync", "always"]
    else:
        keel_args, redis_args = ["--appendonly", "no"], []
    chosen = {k: v for k, v in WORKLOADS.items() if not o.only or k in o.only}
    if o.only and len(chosen) != len(set(o.only)):
        ap.error(f"unknown workload; known: {', '.join(WORKLOADS)}")
    compare = load_compare()
    with Servers() as srv:
        keel = srv.keel(*keel_args)
        ref = srv.redis(*redis_args)
        servers = [("keel", keel.port), ("redis", ref.port)]
        for _, port in servers:
            prepare(port)
        run = with_cpu(compare.run, {keel.port: keel.proc.pid, ref.port: ref.proc.pid})
        for name, (args, n) in chosen.items():
            print(f"== {name}: redis-benchmark {args}", flush=True)
            results = interleaved(run, servers, args, int(n * o.scale), o.reps, str(CLIENT_CPU))
            report(results, args, ["redis"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
