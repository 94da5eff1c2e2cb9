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

``--ceiling`` adds a second workload that bounds what a server on Keel's
stack can reach: the four commands MULTI..EXEC would wrap sent as a plain
pipeline of SET, INCR, SET, INCR (four reply lines) to Keel, Redis and
``../shared/bench/ceiling.py`` (the bare uvloop + hiredis loop, which has no
MULTI). A transaction costs a server at least this much per read.
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
PLAIN = (encode(b"SET", b"tx:key", b"value") + encode(b"INCR", b"tx:counter")
         + encode(b"SET", b"tx:key", b"value") + encode(b"INCR", b"tx:counter"))
PLAIN_LINES = 4


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
    ap.add_argument("--ceiling", action="store_true", help="also the plain 4-command pipeline, with ceiling.py")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="keel-bench-tx-")
    try:
        exe = build_loadgen(work)
        request = os.path.join(work, "tx.resp")
        with open(request, "wb") as f:
            f.write(TRANSACTION)
        plain = os.path.join(work, "plain.resp")
        with open(plain, "wb") as f:
            f.write(PLAIN)
        with Servers() as s:
            if args.durable:
                keel = s.keel("--appendfsync", "always")
                redis = s.redis("--appendonly", "yes", "--appendfsync", "always")
            else:
                keel = s.keel("--appendonly", "no")
                redis = s.redis()
            targets = [("keel", keel.port), ("redis", redis.port)]
            workloads = [("MULTI/SET/INCR/EXEC", request, REPLY_LINES, targets)]
            if args.ceiling:
                ceiling = s.ceiling()
                workloads.append(("SET/INCR/SET/INCR pipelined, no MULTI", plain, PLAIN_LINES,
                                  targets + [("ceiling", ceiling.port)]))
            results = []
            for title, req, lines, servers in workloads:
                rates = {name: [] for name, _ in servers}
                for _ in range(args.reps):
                    for name, port in servers:
                        settle()
                        n = run_load(exe, port, args.clients, args.seconds, lines, req, "req")
                        rates[name].append(n / args.seconds)
                results.append((title, rates))
        mode = "durable (appendfsync always on both)" if args.durable else "in memory"
        for title, rates in results:
            print(f"{title}, {args.clients} clients, {mode}, {args.reps} rounds of {args.seconds:g} s")
            for name, got in rates.items():
                print(f"  {name:8s} {statistics.median(got):10.0f} per s  (rounds: {', '.join(f'{r:.0f}' for r in got)})")
            for name in rates:
                if name != "keel":
                    ratios = [k / o for k, o in zip(rates["keel"], rates[name])]
                    print(f"  keel/{name} {statistics.median(ratios):.2f}  "
                          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
