"""Resident memory for N keys (16-byte keys, 16-byte values): Keel vs redis-server.

Loads the same keys into both servers over pipelined RESP and reports the
growth of each process's VmRSS (from /proc) per key and the ratio.

    python bench/memory.py            # 1,000,000 keys
    python bench/memory.py -n 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import KeelProcess, RedisProcess  # noqa: E402


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def load(client, n: int, batch: int = 1000) -> None:
    for start in range(0, n, batch):
        cmds = [("SET", b"key:%012d" % i, b"val:%012d" % i) for i in range(start, min(n, start + batch))]
        client.pipeline(cmds)


def measure(proc, client, n: int) -> int:
    time.sleep(0.5)
    before = rss(proc.pid)
    load(client, n)
    time.sleep(0.5)
    return rss(proc.pid) - before


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    o = ap.parse_args()
    keel = KeelProcess("--appendonly", "no", "--loglevel", "warning").start()
    ref = RedisProcess().start()
    try:
        kg = measure(keel.proc, keel.client(), o.n)
        rg = measure(ref.proc, ref.client(), o.n)
        print(f"keel:  {kg / 2**20:8.1f} MiB  {kg / o.n:6.1f} B/key")
        print(f"redis: {rg / 2**20:8.1f} MiB  {rg / o.n:6.1f} B/key")
        print(f"ratio keel/redis: {kg / rg:.2f}")
    finally:
        keel.cleanup()
        ref.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
