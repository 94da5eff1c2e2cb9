"""Streams, Keel vs redis-server in the same run (servers pinned to core 1, this client on core 0).

Sections (``--only`` picks some):

xadd      ``redis-benchmark -c 50 XADD s * f v``, Keel (``--appendonly no``)
          and Redis interleaved ``--reps`` times (``../shared/bench/
          compare.py``'s ``run``): median requests/s and median ratio.
consumer  a work queue: the stream is filled with ``--queue`` entries, then
          50 connections each loop ``XREADGROUP GROUP g c<i> COUNT 10
          STREAMS s >`` and ``XACK s g <the 10 IDs>`` for ``--seconds``; one
          loop (read + ack) counts as one. The client is Python (asyncio on
          one core, hiredis parsing): where it, not the server, limits the
          rate, Redis's figure is the client's and the ratio flatters Keel.
          A second row divides the loops by the server's CPU time meanwhile
          (utime + stime, bench/hll.py's ``cpu_seconds``): on a machine
          others load, loops/s measures the share of core 1 each server got
          as much as the server; loops per CPU second does not (and where the
          client limits Redis, Redis's CPU per loop is still its own).
scale     per-call cost on a 1k-entry and a 1M-entry stream (2-field
          entries): XADD of a new entry, XRANGE key <random ID> + COUNT 10,
          XACK of one pending ID, XPENDING key g <random ID> + 10 (a group
          whose PEL holds every entry); pipelines of 100; the bar is Keel's
          1M/1k within 3x.
memory    resident growth per entry of one stream of ``--entries`` (1M)
          2-field entries (``XADD s * name user:<i> n <i>``, pipelined),
          fresh servers, as bench/memory.py measures.

    python bench/streams.py                    # everything, ~3 minutes
    python bench/streams.py --only memory --entries 200000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import COMPARE, Servers, pin_self, rss, settle  # noqa: E402
from hll import cpu_seconds  # noqa: E402
from scale import Table, encode_batches, pipeline, ratio, timed, us  # noqa: E402

import hiredis  # noqa: E402

SECTIONS = ("xadd", "consumer", "scale", "memory")


def _compare_run():
    spec = importlib.util.spec_from_file_location("compare", COMPARE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run


# --- xadd -------------------------------------------------------------------------

def run_xadd(o) -> None:
    run = _compare_run()
    with Servers() as srv:
        keel, ref = srv.keel("--appendonly", "no"), srv.redis()
        k_runs, r_runs, ratios = [], [], []
        for _ in range(o.reps):
            for c in (keel.client(), ref.client()):
                c.call("DEL", "s")
            k = run(keel.port, o.requests, "-c 50 XADD s * f v", "0")
            r = run(ref.port, o.requests, "-c 50 XADD s * f v", "0")
            kv, rv = next(iter(k.values())), next(iter(r.values()))
            k_runs.append(kv)
            r_runs.append(rv)
            ratios.append(kv / rv)
        t = Table("XADD s * f v, 50 clients, requests/s")
        t.row("XADD *", f"{statistics.median(k_runs):,.0f}", f"{statistics.median(r_runs):,.0f}",
              f"{statistics.median(ratios):.2f}")


# --- consumer loop ---------------------------------------------------------------------

def _cmd(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


async def _consumer(port: int, name: bytes, deadline: float, counts: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    parser = hiredis.Reader()
    read_cmd = _cmd(b"XREADGROUP", b"GROUP", b"g", name, b"COUNT", b"10", b"STREAMS", b"s", b">")

    async def reply():
        while True:
            r = parser.gets()
            if r is not False:
                return r
            parser.feed(await reader.read(65536))

    n = 0
    while time.perf_counter() < deadline:
        writer.write(read_cmd)
        r = await reply()
        if not r:
            break  # the queue ran dry
        ids = [e[0] for e in r[0][1]]
        writer.write(_cmd(b"XACK", b"s", b"g", *ids))
        await reply()
        n += 1
    counts.append(n)
    writer.close()


def _fill_queue(client, n: int) -> None:
    pipeline(client, [("DEL", "s")], "DEL")
    pipeline(client, [(b"XADD", b"s", b"%d-1" % (i + 1), b"job", b"%d" % i, b"payload", b"x" * 16)
                      for i in range(n)], "XADD (fill)", batch=1000)
    pipeline(client, [("XGROUP", "CREATE", "s", "g", "0")], "XGROUP CREATE")


def _loops(proc, seconds: float, conns: int) -> tuple:
    """(loops/s, loops per second of the server's CPU time) of ``conns`` consumers."""
    counts: list = []
    deadline = time.perf_counter() + seconds

    async def main():
        await asyncio.gather(*(_consumer(proc.port, b"c%d" % i, deadline, counts) for i in range(conns)))

    cpu0 = cpu_seconds(proc.proc.pid)
    t0 = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - t0
    used = max(cpu_seconds(proc.proc.pid) - cpu0, 1e-3)
    return sum(counts) / elapsed, sum(counts) / used


def run_consumer(o) -> None:
    with Servers() as srv:
        keel, ref = srv.keel("--appendonly", "no"), srv.redis()
        ks, rs, ratios, kc, rc, cpu_ratios = [], [], [], [], [], []
        for _ in range(o.reps):
            for proc in (keel, ref):
                _fill_queue(proc.client(timeout=120), o.queue)
            k, kcpu = _loops(keel, o.seconds, 50)
            r, rcpu = _loops(ref, o.seconds, 50)
            ks.append(k)
            rs.append(r)
            ratios.append(k / r)
            kc.append(kcpu)
            rc.append(rcpu)
            cpu_ratios.append(kcpu / rcpu)
        t = Table("XREADGROUP COUNT 10 + XACK, 50 clients, loops/s (Python asyncio client)")
        t.row("read+ack", f"{statistics.median(ks):,.0f}", f"{statistics.median(rs):,.0f}",
              f"{statistics.median(ratios):.2f}")
        t.row("per server CPU second", f"{statistics.median(kc):,.0f}", f"{statistics.median(rc):,.0f}",
              f"{statistics.median(cpu_ratios):.2f}")


# --- 1k vs 1M ----------------------------------------------------------------------------

def _load(client, key: bytes, n: int) -> None:
    pipeline(client, [("DEL", key)], "DEL")
    pipeline(client, [(b"XADD", key, b"%d-1" % (i + 1), b"name", b"user:%d" % i, b"n", b"%d" % i)
                      for i in range(n)], "XADD (load)", batch=1000)
    pipeline(client, [(b"XGROUP", b"CREATE", key, b"g", b"0")], "XGROUP")
    # every entry pending, in reads of 10k
    for _ in range(0, n, 10000):
        pipeline(client, [(b"XREADGROUP", b"GROUP", b"g", b"c", b"COUNT", b"10000", b"STREAMS", key, b">")],
                 "XREADGROUP (load)")


def _workload(key: bytes, n: int, calls: int, rng: random.Random) -> dict:
    top = n + 1
    return {
        "xadd": encode_batches([(b"XADD", key, b"%d-1" % (top + i), b"name", b"new", b"n", b"1")
                                for i in range(calls)]),
        "xrange": encode_batches([(b"XRANGE", key, b"%d" % rng.randrange(1, n), b"+", b"COUNT", b"10")
                                  for _ in range(calls)]),
        "xpending": encode_batches([(b"XPENDING", key, b"g", b"%d" % rng.randrange(1, n), b"+", b"10")
                                    for _ in range(calls)]),
        # distinct pending IDs: at most n of them (a 1k stream gives 1k acks)
        "xack": encode_batches([(b"XACK", key, b"g", b"%d-1" % i)
                                for i in rng.sample(range(1, n + 1), min(calls, n))]),
    }


def run_scale(o) -> None:
    sizes = [1000, o.big]
    rng = random.Random(7)
    with Servers() as srv:
        keel, ref = srv.keel("--appendonly", "no"), srv.redis()
        clients = {"keel": keel.client(timeout=300), "redis": ref.client(timeout=300)}
        results = {}
        for n in sizes:
            key = b"s%d" % n
            for name, c in clients.items():
                _load(c, key, n)
            w = _workload(key, n, o.calls, rng)
            for op in ("xrange", "xpending", "xadd", "xack"):
                for name, c in clients.items():
                    results[(name, n, op)] = timed(c, w[op], 10.0, op)[0]
        t = Table(f"per call, 1k vs {o.big:,} entries (us)", head=("", "keel 1k", "keel big", "big/1k",
                                                                      "redis 1k", "redis big", "big/1k"))
        for op in ("xadd", "xrange", "xpending", "xack"):
            k1, kb = results[("keel", 1000, op)], results[("keel", o.big, op)]
            r1, rb = results[("redis", 1000, op)], results[("redis", o.big, op)]
            t.row(op, us(k1), us(kb), ratio(kb, k1), us(r1), us(rb), ratio(rb, r1))


# --- memory ----------------------------------------------------------------------------------

def _growth(proc, client, n: int) -> int:
    settle()
    before = rss(proc.proc.pid)
    batch = []
    for i in range(n):
        batch.append((b"XADD", b"s", b"*", b"name", b"user:%d" % i, b"n", b"%d" % i))
        if len(batch) == 1000:
            client.pipeline(batch)
            batch = []
    if batch:
        client.pipeline(batch)
    settle()
    return rss(proc.proc.pid) - before


def run_memory(o) -> None:
    with Servers() as srv:
        keel, ref = srv.keel("--appendonly", "no"), srv.redis()
        kg = _growth(keel, keel.client(timeout=300), o.entries)
        rg = _growth(ref, ref.client(timeout=300), o.entries)
        t = Table(f"resident growth per entry, one stream of {o.entries:,} 2-field entries (bytes)")
        t.row("entry", f"{kg / o.entries:.1f}", f"{rg / o.entries:.1f}", f"{kg / rg:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200_000, help="XADD requests per redis-benchmark run")
    ap.add_argument("--queue", type=int, default=300_000, help="entries queued for the consumer loop")
    ap.add_argument("--seconds", type=float, default=5.0, help="consumer loop duration per run")
    ap.add_argument("--big", type=int, default=1_000_000, help="the large stream's size")
    ap.add_argument("--calls", type=int, default=20_000, help="calls per operation and size")
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in the memory section")
    o = ap.parse_args()
    pin_self()
    for section in o.only.split(","):
        {"xadd": run_xadd, "consumer": run_consumer, "scale": run_scale, "memory": run_memory}[section](o)
    return 0


if __name__ == "__main__":
    sys.exit(main())
