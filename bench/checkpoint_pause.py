"""The longest pause a background checkpoint imposes on clients.

Fills Keel with N SETs of random keys (redis-benchmark, pipelined; about
0.63 N distinct keys), takes a first BGSAVE (every key is new), then after
N/20 and N/2 random SETs a further one each (incremental: only the changed
keys); during each, a client sends PING after PING and the longest round trip
is printed. Usage: python bench/checkpoint_pause.py [N] [-v]  (-v lists every pause over 5 ms)
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__file__)))

from tests.support import KeelProcess  # noqa: E402


VERBOSE = "-v" in sys.argv
start = [0.0]


def longest_ping_during_bgsave(keel) -> tuple[float, float]:
    c = keel.client()
    admin = keel.client()
    stop = threading.Event()
    worst = [0.0]
    slow = []

    def probe():
        while not stop.is_set():
            t0 = time.perf_counter()
            c.call("PING")
            d = time.perf_counter() - t0
            worst[0] = max(worst[0], d)
            if d > 0.005 and VERBOSE:
                slow.append((round(t0 - start[0], 3), round(d * 1e3, 1)))

    th = threading.Thread(target=probe)
    th.start()
    time.sleep(0.2)
    worst[0] = 0.0
    t0 = start[0] = time.perf_counter()
    slow.clear()
    admin.call("BGSAVE")
    while b"rdb_bgsave_in_progress:1" in admin.call("INFO", "persistence"):
        time.sleep(0.01)
    took = time.perf_counter() - t0
    stop.set()
    th.join()
    if VERBOSE:
        print("  pauses over 5 ms (s after BGSAVE, ms):", slow)
    return worst[0], took


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "-v"]
    n = int(args[0]) if args else 1_000_000
    keel = KeelProcess("--appendonly", "yes", "--appendfsync", "everysec", "--checkpoint-log-size", "0",
                       "--loglevel", "warning").start()
    try:
        def fill(keyspace):
            subprocess.run(["redis-benchmark", "-p", str(keel.port), "-t", "set", "-n", str(n), "-r", str(keyspace),
                            "-P", "64", "-c", "4", "-d", "16", "-q"], stdout=subprocess.DEVNULL, check=True)
        fill(n)
        keys = int(keel.client().call("DBSIZE"))
        worst, took = longest_ping_during_bgsave(keel)
        print(f"first checkpoint of {keys:,} keys: took {took:.2f} s, longest PING {worst * 1e3:.1f} ms")
        for part in (20, 2):
            fill(n // part)
            worst, took = longest_ping_during_bgsave(keel)
            print(f"checkpoint after {n // part:,} random SETs: took {took:.2f} s, "
                  f"longest PING {worst * 1e3:.1f} ms")
    finally:
        keel.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
