"""Restart time with N keys after SAVE: Keel (checkpoint) vs redis-server (RDB).

Loads the same N keys (16-byte keys, 16-byte values) into both, SAVEs, stops
both, then times each from process start until it answers GET of the last
key (Keel answers -LOADING until its checkpoint is loaded). Repeats and
prints medians and the ratio.

    python bench/restart.py              # 1,000,000 keys, 3 restarts each
    python bench/restart.py -n 200000 --reps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import Err, KeelProcess, RedisProcess, RespClient  # noqa: E402


def fill(client: RespClient, n: int, batch: int = 2000) -> None:
    for start in range(0, n, batch):
        client.pipeline([(b"SET", b"key:%012d" % i, b"val:%012d" % i) for i in range(start, min(n, start + batch))])


def time_until_served(port: int, key: bytes, expect: bytes, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while time.perf_counter() < deadline:
        try:
            c = RespClient(port, timeout=timeout)
        except OSError:
            time.sleep(0.002)
            continue
        try:
            while True:
                r = c.call(b"GET", key)
                if isinstance(r, Err) and r.startswith("LOADING"):
                    time.sleep(0.002)
                    continue
                if r != expect:
                    raise RuntimeError(f"after restart GET {key!r} = {r!r}")
                return time.perf_counter() - t0
        except (OSError, ConnectionError):
            time.sleep(0.002)
        finally:
            c.close()
    raise RuntimeError("server not serving in time")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    o = ap.parse_args()
    last_key, last_val = b"key:%012d" % (o.n - 1), b"val:%012d" % (o.n - 1)

    keel = KeelProcess("--loglevel", "warning").start()
    ref = RedisProcess("--save", "3600 1").start()  # RDB on; nothing saves by itself in the test
    try:
        for proc in (keel, ref):
            c = proc.client()
            fill(c, o.n)
            assert c.call(b"SAVE") == b"OK"
            c.close()
        keel_times, redis_times = [], []
        for _ in range(o.reps):
            keel.stop()
            keel.start(wait=False)
            keel_times.append(time_until_served(keel.port, last_key, last_val))
            ref.proc.terminate()
            ref.proc.wait(30)
            ref.proc = subprocess.Popen(
                ["redis-server", "--port", str(ref.port), "--bind", "127.0.0.1", "--dir", ref.dir,
                 "--save", "3600 1", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            redis_times.append(time_until_served(ref.port, last_key, last_val))
        k, r = statistics.median(keel_times), statistics.median(redis_times)
        print(f"restart with {o.n:,} keys: keel {k:.2f} s, redis {r:.2f} s, ratio {k / r:.2f}")
        print("  keel runs:", ", ".join(f"{t:.2f}" for t in keel_times))
        print("  redis runs:", ", ".join(f"{t:.2f}" for t in redis_times))
    finally:
        keel.cleanup()
        ref.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
