"""Throughput with a replica attached, and the replica's lag, Keel and redis-server side by side.

    python bench/replication.py [--requests 300000] [--reps 2]

For each server: redis-benchmark SET ``-c 50 -P 16`` against the primary
alone, then with one replica attached (REPLICAOF, link up, sync done),
printing attached/alone; for Keel also synchronous mode
(``min-replicas-to-ack 1``) against ``appendfsync always`` alone. While
the benchmark runs, a thread samples both offsets every 50 ms: the lag is
how long ago the primary was at the offset the replica has now (worst
sample). Primary pinned to core 1; the replica and the client share core 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import Servers, pin, pin_self, requests_per_second  # noqa: E402


def offset(client, field: str) -> int:
    text = client.call("INFO", "replication").decode()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    return -1


class LagSampler(threading.Thread):
    def __init__(self, primary, replica):
        super().__init__(daemon=True)
        self.p = primary.client()
        self.r = replica.client()
        self.stop = False
        self.worst = 0.0
        self.history: list = []  # (time, primary offset)

    def run(self) -> None:
        while not self.stop:
            now = time.time()
            po = offset(self.p, "master_repl_offset")
            ro = offset(self.r, "slave_repl_offset")
            self.history.append((now, po))
            # When was the primary first at (or past) the replica's offset?
            for t, o in self.history:
                if o >= ro:
                    self.worst = max(self.worst, now - t)
                    break
            else:
                self.worst = max(self.worst, now - self.history[0][0])
            if len(self.history) > 400:
                del self.history[:200]
            time.sleep(0.05)


def wait_up(replica, timeout: float = 60.0) -> None:
    c = replica.client()
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = c.call("INFO", "replication").decode()
        if "master_link_status:up" in text and "master_sync_in_progress:0" in text:
            return
        time.sleep(0.05)
    raise RuntimeError("the replica never came up")


def bench(port: int, n: int) -> float:
    cmd = ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(n), "-c", "50", "-P", "16",
           "-r", "100000", "--csv"]
    got = requests_per_second(cmd)
    if "SET" not in got:
        import subprocess

        out = subprocess.run(cmd[:-1] + ["-n", "1000"], capture_output=True, text=True, timeout=60)
        raise RuntimeError(f"redis-benchmark gave no figure: {out.stdout[-300:]} {out.stderr[-300:]}")
    return got["SET"]


def run_pair(make, n: int, primary_args=(), with_replica: bool = True):
    with Servers() as s:
        primary = make(s, *primary_args)
        replica = sampler = None
        if with_replica:
            replica = make(s)
            pin(replica.proc.pid, "0")
            replica.client().call("REPLICAOF", "127.0.0.1", str(primary.port))
            wait_up(replica)
            sampler = LagSampler(primary, replica)
            sampler.start()
        rps = bench(primary.port, n)
        lag = None
        if sampler is not None:
            time.sleep(0.3)
            sampler.stop = True
            sampler.join()
            lag = sampler.worst
        return rps, lag


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300000)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    pin_self()
    keel = lambda s, *args: s.keel(*args)  # noqa: E731
    redis = lambda s, *args: s.redis(*args)  # noqa: E731
    rows = []
    for name, make, extra in (("redis", redis, ()), ("keel", keel, ())):
        alone = max(run_pair(make, a.requests, extra, False)[0] for _ in range(a.reps))
        best = (0.0, None)
        for _ in range(a.reps):
            r = run_pair(make, a.requests, extra, True)
            if r[0] > best[0]:
                best = r
        rows.append((name, "SET -c50 -P16, 1 replica / alone", alone, best[0], best[1]))
    alone = max(run_pair(keel, a.requests, (), False)[0] for _ in range(a.reps))
    best = (0.0, None)
    for _ in range(a.reps):
        r = run_pair(keel, a.requests, ("--min-replicas-to-ack", "1"), True)
        if r[0] > best[0]:
            best = r
    rows.append(("keel", "min-replicas-to-ack 1 / always alone", alone, best[0], best[1]))
    print(f"{'server':6} {'case':40} {'alone':>10} {'attached':>10} {'ratio':>6} {'max lag s':>9}")
    for name, case, alone, att, lag in rows:
        print(f"{name:6} {case:40} {alone:10.0f} {att:10.0f} {att / alone:6.2f} {lag:9.2f}")


if __name__ == "__main__":
    main()
