"""Active expiry at scale: Keel vs redis-server in the same run.

Loads N keys with a TTL into each server (a quarter of them due a few
seconds after the load ends, the rest in an hour), then, with nobody reading
them, measures how long the server takes to delete the due quarter by itself
(DBSIZE polled every 50 ms) and the longest PING round trip meanwhile (a
PING every 2 ms from a second connection): the active expiry cycle must
finish within a few seconds and never hold clients for more than a few ms.

    python bench/expiry.py            # 1,000,000 keys
    python bench/expiry.py -n 200000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import KeelProcess, RedisProcess  # noqa: E402


def load(client, n: int, due_at_ms: int, batch: int = 1000) -> None:
    for start in range(0, n, batch):
        cmds = []
        for i in range(start, min(n, start + batch)):
            if i % 4 == 0:
                cmds.append(("SET", b"key:%012d" % i, b"val:%012d" % i, "PXAT", due_at_ms))
            else:
                cmds.append(("SET", b"key:%012d" % i, b"val:%012d" % i, "EX", 3600))
        client.pipeline(cmds)


def measure(proc, n: int, delay_s: float) -> tuple[float, float, int]:
    """(seconds from the due time until the due keys were gone, longest PING ms, keys left)."""
    client = proc.client(timeout=60)
    pinger = proc.client(timeout=60)
    t_load = time.time()
    due_at = int((t_load + delay_s) * 1000) + 60_000  # pushed back below, once the load is done
    load(client, n, due_at)
    # Let every key fall due delay_s after the load: rewrite the due quarter's TTL now.
    due_at = int((time.time() + delay_s) * 1000)
    for start in range(0, n, 4000):
        client.pipeline([("PEXPIREAT", b"key:%012d" % i, due_at) for i in range(start, min(n, start + 4000), 4)])
    target = n - (n + 3) // 4
    worst = [0.0]
    stop = threading.Event()

    def ping():
        while not stop.is_set():
            t0 = time.perf_counter()
            pinger.call("PING")
            worst[0] = max(worst[0], (time.perf_counter() - t0) * 1000)
            time.sleep(0.002)

    while time.time() * 1000 < due_at:
        time.sleep(0.01)
    th = threading.Thread(target=ping, daemon=True)
    th.start()
    t_due = time.time()
    left = client.call("DBSIZE")
    while left > target and time.time() - t_due < 60:
        time.sleep(0.05)
        left = client.call("DBSIZE")
    took = time.time() - t_due
    stop.set()
    th.join()
    client.close()
    pinger.close()
    return took, worst[0], left - target


def pin(pid: int) -> None:
    subprocess.run(["taskset", "-pc", "1", str(pid)], check=False, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--delay", type=float, default=2.0, help="seconds from the load's end to the due time")
    o = ap.parse_args()
    os.sched_setaffinity(0, {0})
    rows = []
    for name, factory in (("keel", lambda: KeelProcess("--appendonly", "no", "--loglevel", "warning")),
                          ("redis", lambda: RedisProcess())):
        proc = factory().start()
        try:
            pin(proc.proc.pid)
            rows.append((name, *measure(proc, o.n, o.delay)))
        finally:
            proc.cleanup()
    print(f"{o.n:,} keys with a TTL, a quarter ({(o.n + 3) // 4:,}) due at once, nobody reading them")
    print(f"{'':8}{'gone after':>14}{'longest PING':>16}{'due keys left':>16}")
    for name, took, worst, left in rows:
        print(f"{name:8}{took:>12.2f} s{worst:>13.1f} ms{left:>16,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
