"""Resident memory per key, Keel vs redis-server, for strings and every collection type.

Each row loads the same data into a fresh Keel and a fresh redis-server over
pipelined RESP and reports the growth of each process's VmRSS (from /proc)
per key, and the ratio. It also checks each server's accounting: the growth
of INFO's ``used_memory`` over the growth of resident memory (``keel acc``,
``redis acc``: 1.00 is exact; Keel's bar is 0.75..1.25 on every row), and
what ``used_memory`` falls back to after FLUSHALL, as a share of its
growth (``keel left``: 0% is all of it freed). Rows:

=========  ===================================================================
strings    N keys (16-byte keys, 16-byte values)
hash10     K keys, each a hash of 10 short fields and values
set10      K keys, each a set of 10 short (non-integer) members
zset10     K keys, each a sorted set of 10 short members
list10     K keys, each a list of 10 short values
hash1m     one hash of M fields (figure per element)
set1m      one set of M members
zset1m     one sorted set of M members
list1m     one list of M values
=========  ===================================================================

A fresh pair of servers per row: memory freed by FLUSHALL is kept by both
allocators, so a second load into the same process would look cheaper.
Redis 7.0 keeps a small non-integer set as a hashtable (7.2 as a listpack),
so its set10 figure is higher than a 7.2's would be.

    python bench/memory.py                          # every row: N=1M, K=100k, M=1M
    python bench/memory.py --rows hash10,list1m -k 20000 -m 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import KeelProcess, RedisProcess  # noqa: E402

BATCH = 1000  # commands per pipeline
CHUNK = 1000  # elements per command when filling one big key


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _small_value(kind: str, i: int) -> list:
    """The arguments after the key for one small collection (10 elements)."""
    if kind == "hash10":
        return [x for j in range(10) for x in (b"field:%d" % j, b"v:%06d" % (i * 10 + j))]
    if kind == "set10":
        return [b"m:%06d" % (i * 10 + j) for j in range(10)]
    if kind == "zset10":
        return [x for j in range(10) for x in (b"%d" % j, b"m:%06d" % (i * 10 + j))]
    return [b"v:%06d" % (i * 10 + j) for j in range(10)]  # list10


COMMAND = {"hash10": b"HSET", "set10": b"SADD", "zset10": b"ZADD", "list10": b"RPUSH",
           "hash1m": b"HSET", "set1m": b"SADD", "zset1m": b"ZADD", "list1m": b"RPUSH"}


def commands(row: str, n: int):
    """The commands that load ``row`` with ``n`` keys (or elements), in pipeline batches."""
    if row == "strings":
        for start in range(0, n, BATCH):
            yield [(b"SET", b"key:%012d" % i, b"val:%012d" % i) for i in range(start, min(n, start + BATCH))]
        return
    cmd = COMMAND[row]
    if row.endswith("10"):
        for start in range(0, n, BATCH):
            yield [(cmd, b"key:%012d" % i, *_small_value(row, i)) for i in range(start, min(n, start + BATCH))]
        return
    batch = []
    for start in range(0, n, CHUNK):
        idx = range(start, min(n, start + CHUNK))
        if row == "hash1m":
            args = [x for i in idx for x in (b"field:%08d" % i, b"v:%06d" % i)]
        elif row == "zset1m":
            args = [x for i in idx for x in (b"%d" % i, b"m:%08d" % i)]
        else:
            args = [b"m:%08d" % i for i in idx]
        batch.append((cmd, b"big", *args))
        if len(batch) == 10:
            yield batch
            batch = []
    if batch:
        yield batch


def used_memory(client) -> int:
    info = client.call("INFO", "memory").decode()
    return int(info.split("used_memory:", 1)[1].split("\r\n", 1)[0])


def measure(proc, client, row: str, n: int) -> tuple[int, int, int]:
    """(RSS growth, used_memory growth, used_memory left after FLUSHALL) for loading ``row``."""
    time.sleep(0.5)
    before, used0 = rss(proc.pid), used_memory(client)
    for batch in commands(row, n):
        client.pipeline(batch)
    time.sleep(0.5)
    grown, used = rss(proc.pid) - before, used_memory(client) - used0
    client.call("FLUSHALL")
    return grown, used, used_memory(client) - used0


ROWS = ["strings", "hash10", "set10", "zset10", "list10", "hash1m", "set1m", "zset1m", "list1m"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000, help="keys in the strings row")
    ap.add_argument("-k", type=int, default=100_000, help="keys in the 10-element rows")
    ap.add_argument("-m", type=int, default=1_000_000, help="elements in the one-key rows")
    ap.add_argument("--rows", default=",".join(ROWS))
    o = ap.parse_args()
    rows = [r for r in o.rows.split(",") if r]
    for r in rows:
        if r not in ROWS:
            ap.error(f"unknown row {r!r}; rows: {', '.join(ROWS)}")
    print(f"{'row':8} {'count':>9} {'keel B':>10} {'redis B':>10} {'ratio':>6}   {'keel acc':>8} {'redis acc':>9}"
          f" {'keel left':>9}   (B per key; per element for *1m)")
    for row in rows:
        n = o.n if row == "strings" else o.k if row.endswith("10") else o.m
        keel = KeelProcess("--appendonly", "no", "--loglevel", "warning").start()
        ref = RedisProcess().start()
        try:
            kc, rc = keel.client(timeout=120), ref.client(timeout=120)
            kg, ku, kleft = measure(keel.proc, kc, row, n)
            rg, ru, _ = measure(ref.proc, rc, row, n)
            kc.close()
            rc.close()
        finally:
            keel.cleanup()
            ref.cleanup()
        ratio = f"{kg / rg:6.2f}" if rg > 0 else "     -"
        kacc = f"{ku / kg:8.2f}" if kg > 0 else "       -"
        racc = f"{ru / rg:9.2f}" if rg > 0 else "        -"
        left = f"{kleft * 100 / ku:8.1f}%" if ku > 0 else "        -"
        print(f"{row:8} {n:9d} {kg / n:10.1f} {rg / n:10.1f} {ratio}   {kacc} {racc} {left}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
