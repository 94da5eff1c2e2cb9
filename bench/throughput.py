"""Side-by-side throughput: Keel against a real redis-server, same run.

Starts both servers on free ports, pins each to core 1 (the benchmark runs on
core 0), and runs ``../shared/bench/compare.py`` for each workload, which
interleaves the two servers (A B A B …) and prints medians and the ratio
Keel/Redis. Usage:

    python bench/throughput.py                 # the memory-only workloads
    python bench/throughput.py --durable       # appendfsync always on both
    python bench/throughput.py --only pipelining --reps 3

Workloads are those of ../shared/bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import KeelProcess, RedisProcess  # noqa: E402

COMPARE = os.path.join(ROOT, "..", "shared", "bench", "compare.py")

WORKLOADS = {
    "no-pipelining": ("-t set,get -c 50", 200_000),
    "pipelining": ("-t set,get -c 50 -P 16", 1_000_000),
    "mixed-types": ("-t incr,lpush,lpop,sadd,hset,zadd -c 50 -P 16", 1_000_000),
    "one-client": ("-t get -c 1", 50_000),
}
DURABLE = {
    "durable-set": ("-t set -c 50", 100_000),
    "durable-set-pipelined": ("-t set -c 50 -P 16", 500_000),
}


def pin(pid: int, cpu: str = "1") -> None:
    if shutil.which("taskset"):
        subprocess.run(["taskset", "-pc", cpu, str(pid)], stdout=subprocess.DEVNULL, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--durable", action="store_true", help="appendfsync always on both servers")
    ap.add_argument("--only", action="append", help="run only this workload (repeatable)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    o = ap.parse_args()

    if o.durable:
        keel_args = ["--appendonly", "yes", "--appendfsync", "always"]
        redis_args = ["--appendonly", "yes", "--appendfsync", "always"]
        workloads = DURABLE
    else:
        keel_args = ["--appendonly", "no"]
        redis_args = []
        workloads = WORKLOADS
    keel = KeelProcess(*keel_args, "--loglevel", "warning").start()
    ref = RedisProcess(*redis_args).start()
    try:
        pin(keel.proc.pid)
        pin(ref.proc.pid)
        for name, (args, n) in workloads.items():
            if o.only and name not in o.only:
                continue
            print(f"== {name}: redis-benchmark {args}", flush=True)
            subprocess.run([sys.executable, COMPARE, str(keel.port), str(ref.port), "--args", args,
                            "-n", str(int(n * o.scale)), "--reps", str(o.reps), "--label", "keel/redis"],
                           check=False)
    finally:
        keel.cleanup()
        ref.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
