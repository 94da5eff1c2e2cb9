"""Full sync of N keys: a fresh replica brought to its primary's state.

Redis: a redis-server primary holding N keys (DEBUG POPULATE: ``key:I`` ->
``value:I``), diskless sync without its 5 s wait (``repl-diskless-sync-delay
0``, the rest default); a fresh redis-server replica, already running, is
sent REPLICAOF and timed from then until ``master_link_status:up`` with
DBSIZE = N.

Keel, end to end, the same way (a Keel replica of a Keel primary), when the
server's replication answers within ``--timeout``; and Keel's pieces, timed
in this process on the same N keys: the primary's checkpoint (the whole
keyspace, as the first one after a start writes it; a running primary's is
incremental), ``replication.snapshot.rdb_from_checkpoint`` (checkpoint ->
RDB bytes, the worker thread's part) and ``replication.rdbload`` (RDB ->
the replica's keyspace).

It also reports the longest PING a client of the primary waited during
each sync (Redis forks; Keel captures in chunks and snapshots in a thread).

    python bench/fullsync.py              # 1,000,000 keys
    python bench/fullsync.py -n 200000

Both servers of each pair run pinned to one core (bench/harness.py), as the
other benchmarks do; the pieces run in this process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.harness import Servers, pin  # noqa: E402
from tests.support import RespClient  # noqa: E402


def _info_field(c: RespClient, field: bytes) -> bytes | None:
    for line in c.call("INFO", "replication").split(b"\r\n"):
        if line.startswith(field + b":"):
            return line.split(b":", 1)[1]
    return None


def time_until_synced(port: int, n: int, started: float, timeout: float) -> float | None:
    """Seconds from ``started`` until the replica on ``port`` is up with ``n`` keys (None: timeout)."""
    deadline = started + timeout
    c = None
    while time.perf_counter() < deadline:
        try:
            if c is None:
                c = RespClient(port, timeout=timeout)
            if _info_field(c, b"master_link_status") == b"up" and c.call("DBSIZE") == n:
                return time.perf_counter() - started
        except (OSError, ConnectionError):
            c = None
        time.sleep(0.005)
    return None


class Pinger(threading.Thread):
    """PINGs the primary back to back while the sync runs: the longest wait
    is how long its clients were held up (Redis: the fork; Keel: capture
    chunks and the GIL share of the snapshot thread)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.client = RespClient(port, timeout=60)
        self.longest = 0.0
        self.count = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            self.client.call("PING")
            self.longest = max(self.longest, time.perf_counter() - t)
            self.count += 1
        self.client.close()


def fullsync(servers: Servers, kind: str, n: int, timeout: float,
             split: bool = False) -> tuple[float | None, float]:
    if kind == "redis":
        primary = servers.redis("--repl-diskless-sync-delay", "0", "--enable-debug-command", "yes")
    else:
        primary = servers.keel("--repl-diskless-sync-delay", "0")
    c = primary.client(timeout=120)
    assert c.call("DEBUG", "POPULATE", n) == b"OK"
    c.close()
    # The replica is started first and timed from REPLICAOF: a Python
    # process's start (about a second of imports) is not the sync.
    try:
        replica = servers.redis() if kind == "redis" else servers.keel()
        if split:  # the replica on the other core, as on its own machine
            pin(replica.proc.pid, "0")
    except RuntimeError as e:  # a replica that does not start: no end-to-end figure
        print(f"  {kind} replica did not start: {e}")
        servers.stop_all()
        return None, 0.0
    pinger = Pinger(primary.port)
    pinger.start()
    t0 = time.perf_counter()
    rc = replica.client(timeout=30)
    rc.call("REPLICAOF", "127.0.0.1", str(primary.port))
    rc.close()
    took = time_until_synced(replica.port, n, t0, timeout)
    pinger.stop.set()
    pinger.join()
    servers.stop_all()
    return took, pinger.longest


def keel_pieces(n: int) -> dict:
    """Checkpoint, snapshot and load of ``n`` keys in this process, in seconds."""
    import engine.commands  # noqa: F401
    from engine.keyspace import Keyspace
    from replication.rdbload import load_rdb_bytes
    from replication.snapshot import base_aux, rdb_from_checkpoint
    from wal.checkpoint import Checkpointer

    ks = Keyspace()
    data = ks.dbs[0].data
    for i in range(n):
        data[b"key:%d" % i] = b"value:%d" % i
    ks.account_all()
    d = tempfile.mkdtemp(prefix="keel-fullsync-")
    cp = Checkpointer(os.path.join(d, "cp"))
    try:
        cp.start_tracking(ks)
        t0 = time.perf_counter()
        cp.write(cp.capture(ks), 1)
        t1 = time.perf_counter()
        chunks = []
        rdb_from_checkpoint(cp, chunks.append, base_aux(ks.mem_used), 1)
        t2 = time.perf_counter()
        payload = b"".join(chunks)
        back = Keyspace()
        t3 = time.perf_counter()
        stats = load_rdb_bytes(payload, back, drop_expired=False)
        t4 = time.perf_counter()
        assert stats["keys"] == n
    finally:
        cp.close()
        shutil.rmtree(d, ignore_errors=True)
    return {"checkpoint": t1 - t0, "snapshot": t2 - t1, "load": t4 - t3, "bytes": len(payload)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a replica")
    ap.add_argument("--split", action="store_true",
                    help="replica on core 0 (with this client), primary on core 1, instead of both on core 1")
    args = ap.parse_args()
    n = args.n
    with Servers() as servers:
        redis_s, redis_ping = fullsync(servers, "redis", n, args.timeout, args.split)
        keel_s, keel_ping = fullsync(servers, "keel", n, args.timeout, args.split)
    if redis_s is None:
        print("redis-server replica did not sync in time")
        return 1
    pieces = keel_pieces(n)
    pieces_s = pieces["checkpoint"] + pieces["snapshot"] + pieces["load"]
    print(f"full sync of {n} keys")
    print(f"  redis-server -> redis-server replica: {redis_s:.2f} s")
    if keel_s is not None:
        print(f"  keel -> keel replica:                 {keel_s:.2f} s  ({keel_s / redis_s:.2f}x redis)")
    else:
        print("  keel -> keel replica:                 n/a (no sync within the timeout)")
    print(f"  longest PING to the primary during the sync: redis-server {redis_ping * 1e3:.1f} ms, "
          f"keel {keel_ping * 1e3:.1f} ms")
    print(f"  keel pieces: checkpoint {pieces['checkpoint']:.2f} s, snapshot {pieces['snapshot']:.2f} s "
          f"({pieces['bytes'] / 1e6:.1f} MB RDB, {pieces['snapshot'] / n * 1e6:.2f} us/key), "
          f"load {pieces['load']:.2f} s: {pieces_s:.2f} s  ({pieces_s / redis_s:.2f}x redis)")
    print(f"  snapshot (checkpoint -> RDB bytes, the worker thread): "
          f"{'within' if pieces['snapshot'] <= 1.5 else 'OVER'} the 1.5 s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
