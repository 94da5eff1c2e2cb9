"""Side by side: reads while CLIENT PAUSE WRITE holds writes, and CLIENT LIST of many clients.

A WRITE pause routes every command through the full dispatch (the hot path
runs nothing itself while a pause is on), so reads keep going but each pays
the dispatch's checks. This measures GET throughput (redis-benchmark -c 50,
pinned to core 0; servers pinned to core 1) with no pause and under
``CLIENT PAUSE <long> WRITE``, on Keel and redis-server, interleaved, and
prints each median and the Keel/Redis ratios; then the time of one CLIENT LIST
with ``--idle`` idle connections open (each line computes the client's memory).

    python bench/client_pause.py [--requests 100000] [--reps 3] [--idle 1000]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers, settle  # noqa: E402


def get_rps(port: int, requests: int) -> float:
    out = subprocess.run(["taskset", "-c", str(CLIENT_CPU), "redis-benchmark", "-p", str(port), "-t", "get",
                          "-n", str(requests), "-c", "50", "-q"], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"([\d.]+) requests per second", out).group(1))


def client_list_ms(proc, idle: int) -> float:
    socks = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(idle)]
    try:
        c = proc.client()
        c.call("PING")
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            lines = c.call("CLIENT", "LIST").count(b"\n")
            best = min(best, time.perf_counter() - t0)
        assert lines >= idle, lines
        c.close()
        return best * 1000
    finally:
        for s in socks:
            s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle", type=int, default=1000)
    args = ap.parse_args()
    with Servers() as s:
        servers = {"keel": s.keel(), "redis": s.redis()}
        settle()
        rps = {(name, mode): [] for name in servers for mode in ("free", "paused")}
        for _ in range(args.reps):
            for name, proc in servers.items():
                admin = proc.client()
                rps[name, "free"].append(get_rps(proc.port, args.requests))
                admin.call("CLIENT", "PAUSE", "600000", "WRITE")
                rps[name, "paused"].append(get_rps(proc.port, args.requests))
                admin.call("CLIENT", "UNPAUSE")
                admin.close()
        for mode in ("free", "paused"):
            k, r = statistics.median(rps["keel", mode]), statistics.median(rps["redis", mode])
            label = "no pause" if mode == "free" else "CLIENT PAUSE WRITE"
            print(f"GET -c 50, {label:18}: keel {k:9.0f}/s  redis {r:9.0f}/s  ratio {k / r:.2f}")
        kf, kp = statistics.median(rps["keel", "free"]), statistics.median(rps["keel", "paused"])
        print(f"keel under the pause: {kp / kf:.2f}x its unpaused GET throughput")
        times = {name: client_list_ms(proc, args.idle) for name, proc in servers.items()}
        print(f"CLIENT LIST with {args.idle} idle clients: keel {times['keel']:.1f} ms  "
              f"redis {times['redis']:.1f} ms  ratio {times['keel'] / times['redis']:.1f}")


if __name__ == "__main__":
    main()
