"""Side by side: the longest PING while a huge set is freed, DEL against UNLINK.

Builds a set of ``--members`` members (SADDs of 1000, one at a time) on Keel
(``--appendonly no``) and on redis-server, then removes it with DEL (freed at
once) and, rebuilt, with UNLINK (freed later: Keel's reaper, a slice per loop
turn; Redis's lazyfree thread), while another client sends PINGs back to back.
Prints, for each server and command, the command's own round trip and the
longest PING until the memory is freed (1.5 s after the command, or
``lazyfree_pending_objects`` back to 0 when INFO has it), and Keel/Redis
ratios. Servers pinned to core 1, the client to core 0.

    python bench/lazyfree.py [--members 2000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hiredis  # noqa: E402

from harness import Servers, pin_self  # noqa: E402


def fill(c, n: int) -> None:
    for i in range(0, n, 1000):
        c.send_raw(hiredis.pack_command(("SADD", "big", *[b"member:%d" % j for j in range(i, min(n, i + 1000))])))
        c.read()


def pending(c) -> int | None:
    for line in c.call("INFO", "memory").decode().splitlines():
        if line.startswith("lazyfree_pending_objects:"):
            return int(line.split(":")[1])
    return None


def measure(proc, n: int, command: str) -> tuple[float, float]:
    """(the command's round trip, the longest PING), in ms."""
    c = proc.client(timeout=120)
    fill(c, n)
    pinger = proc.client()
    worst = [0.0]
    stop = threading.Event()

    def ping():
        while not stop.is_set():
            t = time.perf_counter()
            pinger.call("PING")
            worst[0] = max(worst[0], time.perf_counter() - t)

    th = threading.Thread(target=ping)
    th.start()
    time.sleep(0.3)
    worst[0] = 0.0
    t = time.perf_counter()
    c.call(command, "big")
    took = time.perf_counter() - t
    deadline = time.monotonic() + 30
    time.sleep(1.5)
    while time.monotonic() < deadline and (pending(c) or 0) > 0:
        time.sleep(0.05)
    stop.set()
    th.join()
    pinger.close()
    c.close()
    return took * 1000, worst[0] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=2_000_000)
    args = ap.parse_args()
    sys.setswitchinterval(0.0002)  # the two client threads hand the GIL over at once
    pin_self()
    results = {}
    with Servers() as s:
        servers = {"keel": s.keel("--appendonly", "no"), "redis": s.redis()}
        for name, proc in servers.items():
            for command in ("DEL", "UNLINK"):
                results[name, command] = measure(proc, args.members, command)
                took, worst = results[name, command]
                print(f"{name:5} {command:6} {args.members} members: reply {took:7.1f} ms, "
                      f"longest PING {worst:7.1f} ms", flush=True)
    for command in ("DEL", "UNLINK"):
        k, r = results["keel", command], results["redis", command]
        print(f"{command:6} Keel/Redis: reply {k[0] / max(r[0], 1e-3):.2f}x, "
              f"longest PING {k[1] / max(r[1], 1e-3):.2f}x")


if __name__ == "__main__":
    main()
