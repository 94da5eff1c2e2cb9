"""What MONITOR and the slow log cost: SET/GET with neither, with slowlog-log-slower-than 0,
and with a MONITOR client attached, on Keel and on redis-server in the same run.

Keel routes every client through the full dispatch while a monitor is attached
or the slow log takes every call (``Server.full_dispatch``): this shows what
that costs against the default (hot path), next to what the same costs Redis.
A thread on the client's core reads the monitor's stream and throws it away.
Keel is pinned to core 1 with redis-server, the benchmark to core 0. Usage:

    python bench/introspect.py [--reps 1] [-n 20000]   (-n for -P 1; -P 16 runs 5x as many)
    python bench/introspect.py --hot-path              (in process, no sockets: see below)

``--hot-path`` measures the slow log's cost on Keel's hot path, in process
(bench/inproc.py's connection, 16 commands a read): each command's hot-path
entry as it is (timed by ``server.slowlog``'s wrapper when not flagged fast),
its bare handler, and the full dispatch instead (what routing it there would
cost); the best of 9 rounds each, alternated.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Servers, pin_self, requests_per_second  # noqa: E402
from scale import code_state, redis_version  # noqa: E402

MODES = ("plain", "slowlog-0", "monitor")


def bench(port: int, pipeline: int, n: int) -> dict:
    cmd = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-c", "50", "-n", str(n), "-P", str(pipeline),
           "-q", "--csv"]
    return requests_per_second(cmd)


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


def hot_path() -> int:
    import tempfile
    import time

    from inproc import Config, Connection, Server, _Loop, _Transport, encode
    from engine.registry import FAST

    cfg = Config()
    cfg.set("dir", tempfile.mkdtemp(prefix="keel-introspect-"))
    cfg.set("appendonly", "no")
    srv = Server(cfg)
    srv.loop = _Loop()
    srv.persistence.load()
    conn = Connection(srv)
    conn.connection_made(_Transport())
    conn.data_received(encode(["RPUSH", "mylist"] + ["x%d" % i for i in range(100)]))
    conn.data_received(encode(["SADD", "myset"] + ["m%d" % i for i in range(20)]))
    for work in (["LRANGE", "mylist", "0", "99"], ["LRANGE", "mylist", "0", "9"], ["SMEMBERS", "myset"],
                 ["DEL", "nokey"], ["SET", "s", "v"], ["GET", "s"]):
        row = FAST[len(work)]
        names = [work[0].encode(), work[0].lower().encode()]
        as_is = {n: row[n] for n in names}
        cmd = as_is[names[0]][2]
        bare = {n: (cmd.handler, as_is[n][1], cmd) for n in names}
        payload = encode(work) * 16
        best = {"bare": 1e9, "as is": 1e9, "full": 1e9}
        for _ in range(9):
            for label in best:
                for n in names:
                    row.pop(n, None)
                row.update(bare if label == "bare" else as_is if label == "as is" else {})
                t0 = time.perf_counter()
                for _ in range(1500):
                    conn.data_received(payload)
                best[label] = min(best[label], (time.perf_counter() - t0) / 1500 / 16 * 1e6)
        row.update(as_is)
        how = "untimed" if as_is[names[0]][0] is cmd.handler else "timed"
        print(f"{' '.join(work):22s} hot path as is ({how:7s}) {best['as is']:6.3f} us, bare handler "
              f"{best['bare']:6.3f} us, through the full dispatch {best['full']:6.3f} us", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--hot-path", action="store_true", help="the in-process cost of the slow log's timing")
    o = ap.parse_args()
    if o.hot_path:
        return hot_path()
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
