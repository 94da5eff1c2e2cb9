"""Pub/sub fan-out, side by side: messages delivered per second, Keel against redis-server.

Ten subscribers listen on one channel; ``redis-benchmark -c 50`` publishes to
it (50 publishers, each waiting for its reply unless ``--pipeline``). The
subscribers are raw sockets read by one thread of this process, which counts
bytes (every frame has the same length) until each subscriber has every
message. Delivered per second = subscribers x publishes / (time from the start
of the publishing to the last byte received). Both servers are pinned to
core 1 and this client (subscribers and redis-benchmark alike) to core 0;
rounds alternate Keel, Redis, Keel, … and the ratio reported is the median of
the per-round ratios Keel/Redis.

    python bench/pubsub.py                    # 5 rounds of 100k publishes
    python bench/pubsub.py --reps 3 --publishes 50000 --size 64
    python bench/pubsub.py --pipeline 16
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers, pin_self, settle  # noqa: E402
from tests.support import encode  # noqa: E402

CHANNEL = b"bench:fanout"


class Subscribers:
    """``n`` subscribers to CHANNEL; ``wait(count)`` returns when each has ``count`` messages."""

    def __init__(self, port: int, n: int, message: bytes):
        self.frame = len(b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(CHANNEL), CHANNEL, len(message), message))
        self.socks = []
        confirmation = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(encode(["SUBSCRIBE", CHANNEL]))
            got = b""
            while len(got) < len(confirmation):
                got += s.recv(len(confirmation) - len(got))
            assert got == confirmation, got
            s.setblocking(False)
            self.socks.append(s)
        self.received = [0] * n
        self.last = 0.0

    def count(self, messages: int, timeout: float) -> bool:
        """Read until every subscriber has ``messages`` messages; False on timeout."""
        want = messages * self.frame
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            sel.register(s, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        pending = len(self.socks)
        received = self.received
        try:
            while pending:
                if time.monotonic() > deadline:
                    return False
                for key, _ in sel.select(0.5):
                    i = key.data
                    data = key.fileobj.recv(1 << 20)
                    if not data:
                        raise ConnectionError(f"subscriber {i} was disconnected")
                    before = received[i]
                    received[i] += len(data)
                    if before < want <= received[i]:
                        pending -= 1
                        sel.unregister(key.fileobj)
            self.last = time.perf_counter()
            return True
        finally:
            sel.close()

    def close(self) -> None:
        for s in self.socks:
            s.close()


def one_round(port: int, o, message: bytes) -> dict:
    subs = Subscribers(port, o.subscribers, message)
    try:
        result = {}
        counter = threading.Thread(target=lambda: result.update(ok=subs.count(o.publishes, 120)))
        counter.start()
        cmd = ["taskset", "-c", str(CLIENT_CPU), "redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
               "-c", str(o.publishers), "-n", str(o.publishes), "-P", str(o.pipeline), "--csv",
               "PUBLISH", CHANNEL.decode(), message.decode()]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
        counter.join()
        if not result.get("ok"):
            raise RuntimeError("the subscribers did not get every message")
        rows = [line.split('","') for line in out.strip().splitlines()[1:]]
        publishes = float(rows[0][1]) if rows else 0.0
        return {"delivered": o.subscribers * o.publishes / (subs.last - t0), "publishes": publishes}
    finally:
        subs.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--publishes", type=int, default=100_000)
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--publishers", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--size", type=int, default=32, help="message bytes")
    o = ap.parse_args()
    message = b"m" * o.size
    pin_self()
    with Servers() as srv:
        servers = [("keel", srv.keel("--appendonly", "no").port), ("redis", srv.redis().port)]
        settle()
        print(f"== PUBLISH to 1 channel, {o.subscribers} subscribers, {o.publishers} publishers, "
              f"-P {o.pipeline}, {o.size}-byte messages, {o.publishes:,} publishes a round", flush=True)
        runs = {name: [] for name, _ in servers}
        for rep in range(o.reps):
            for name, port in servers:
                r = one_round(port, o, message)
                runs[name].append(r)
                print(f"round {rep + 1} {name}: {r['delivered']:,.0f} delivered/s "
                      f"({r['publishes']:,.0f} publishes/s by redis-benchmark)", flush=True)
        ratios = [k["delivered"] / r["delivered"] for k, r in zip(runs["keel"], runs["redis"])]
        for name in runs:
            print(f"{name}: median {statistics.median(x['delivered'] for x in runs[name]):,.0f} delivered/s",
                  flush=True)
        print(f"keel/redis delivered ratio {statistics.median(ratios):.2f} "
              f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
