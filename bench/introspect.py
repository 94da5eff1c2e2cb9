"""What MONITOR and the slow log cost: SET/GET with neither, with slowlog-log-slower-than 0,
and with a MONITOR client attached, on Keel and on redis-server in the same run.

Keel routes every client through the full dispatch while a monitor is attached
or the slow log takes every call (``Server.full_dispatch``): this shows what
that costs against the default (hot path), next to what the same costs Redis.
A thread on the client's core reads the monitor's stream and throws it away.
Keel is pinned to core 1 with redis-server, the benchmark to core 0. Usage:

    python bench/introspect.py [--reps 1] [-n 20000]   (-n for -P 1; -P 16 runs 5x as many)
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Servers, pin_self  # noqa: E402
from scale import code_state, redis_version  # noqa: E402

MODES = ("plain", "slowlog-0", "monitor")


def bench(port: int, pipeline: int, n: int) -> dict:
    cmd = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-c", "50", "-n", str(n), "-P", str(pipeline),
           "-q", "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    got = {}
    for line in out.splitlines():
        m = re.match(r'"(\w+)","([\d.]+)"', line)
        if m:
            got[m.group(1)] = float(m.group(2))
    return got


class Monitor:
    """A MONITOR connection whose stream a thread reads and drops."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        self.bytes = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def run_mode(p, mode: str, pipeline: int, n: int) -> dict:
    c = p.client()
    c.call("CONFIG", "SET", "slowlog-log-slower-than", "0" if mode == "slowlog-0" else "10000")
    mon = Monitor(p.port) if mode == "monitor" else None
    try:
        return bench(p.port, pipeline, n)
    finally:
        if mon is not None:
            mon.close()
        c.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        c.call("SLOWLOG", "RESET")
        c.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("-n", type=int, default=20000)
    o = ap.parse_args()
    pin_self()
    print(f"keel: {code_state()}; redis: {redis_version()}; client on core 0, servers on core 1")
    with Servers() as srv:
        servers = {"keel": srv.keel("--appendonly", "no"), "redis": srv.redis()}
        for pipeline, n in ((1, o.n), (16, 5 * o.n)):
            runs = {(s, m): [] for s in servers for m in MODES}
            for _ in range(o.reps):
                for mode in MODES:
                    for s, p in servers.items():
                        runs[(s, mode)].append(run_mode(p, mode, pipeline, n))
            for test in ("SET", "GET"):
                med = {k: statistics.median(r.get(test, 0.0) for r in v) for k, v in runs.items()}
                for mode in MODES:
                    k, r = med[("keel", mode)], med[("redis", mode)]
                    kp, rp = med[("keel", "plain")] or 1, med[("redis", "plain")] or 1
                    print(f"-P {pipeline:<2} {test} {mode:9s}: keel {k:>9,.0f} ({k / kp:.2f}x plain)  "
                          f"redis {r:>9,.0f} ({r / rp:.2f}x plain)  keel/redis {k / r if r else 0:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
