"""Side-by-side transactions: MULTI / SET / INCR / EXEC from 50 clients.

redis-benchmark sends one command per request, so the load comes from
``bench/loadgen.c`` (compiled here with the system C compiler): each of 50
connections sends the whole transaction in one write and waits for its six
reply lines (+OK, +QUEUED, +QUEUED, and EXEC's array of two) before sending
the next. Keel and redis-server are pinned to core 1, the load generator to
core 0, runs interleaved Keel, Redis, Keel, Redis, …; prints each server's
median transactions per second and the median of the per-round ratios.

    python bench/transactions.py [--seconds 5] [--reps 3] [--clients 50] [--durable]

``--durable``: Keel with ``appendfsync always`` against Redis with
``appendonly yes``, ``appendfsync always``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers, settle  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build_loadgen(workdir: str) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("bench/transactions.py needs a C compiler (cc) for bench/loadgen.c")
    exe = os.path.join(workdir, "loadgen")
    subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "loadgen.c")], check=True)
    return exe


def encode(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


TRANSACTION = (encode(b"MULTI") + encode(b"SET", b"tx:key", b"value")
               + encode(b"INCR", b"tx:counter") + encode(b"EXEC"))
REPLY_LINES = 6


def run_load(exe: str, port: int, clients: int, seconds: float, lines: int, request: str, mode: str) -> int:
    out = subprocess.run(["taskset", "-c", str(CLIENT_CPU), exe, "127.0.0.1", str(port), str(clients),
                          str(seconds), str(lines), request, mode],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--durable", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="keel-bench-tx-")
    try:
        exe = build_loadgen(work)
        request = os.path.join(work, "tx.resp")
        with open(request, "wb") as f:
            f.write(TRANSACTION)
        with Servers() as s:
            if args.durable:
                keel = s.keel("--appendfsync", "always")
                redis = s.redis("--appendonly", "yes", "--appendfsync", "always")
            else:
                keel = s.keel("--appendonly", "no")
                redis = s.redis()
            rates = {"keel": [], "redis": []}
            ratios = []
            for _ in range(args.reps):
                for name, port in (("keel", keel.port), ("redis", redis.port)):
                    settle()
                    n = run_load(exe, port, args.clients, args.seconds, REPLY_LINES, request, "req")
                    rates[name].append(n / args.seconds)
                ratios.append(rates["keel"][-1] / rates["redis"][-1])
        mode = "durable (appendfsync always on both)" if args.durable else "in memory"
        print(f"MULTI/SET/INCR/EXEC, {args.clients} clients, {mode}, {args.reps} rounds of {args.seconds:g} s")
        for name in ("keel", "redis"):
            print(f"  {name:6s} {statistics.median(rates[name]):10.0f} transactions/s  "
                  f"(rounds: {', '.join(f'{r:.0f}' for r in rates[name])})")
        print(f"  keel/redis {statistics.median(ratios):.2f}  (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
