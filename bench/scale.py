"""Does cost grow with the data the way Redis's does? Keel vs redis-server, same run.

Both servers run side by side (Keel with ``--appendonly no``), each pinned to
core 1 while this client runs on core 0; every figure is printed for Keel, for
Redis and as the ratio Keel/Redis. Sections:

- ``append``, ``setbit``, ``setrange``, ``bitfield``: per-call time of 40-byte
  APPENDs, SETBIT at random bit offsets, SETRANGE of 16 bytes at random offsets
  and ``BITFIELD key SET u8 <random offset> <v>`` on a value of 1 KB, 1 MB and
  8 MB, sent in pipelines of 100 (pre-encoded, so the client costs little) and
  timed until ``--calls`` calls or ``--seconds`` seconds, whichever comes first,
  after one untimed pipeline. The median of ``--rounds`` rounds (Keel and Redis
  interleaved) is reported, and per server the ratio 8 MB / 1 KB (the bar:
  Keel's 8 MB time within 2x of its 1 KB time and of Redis's). APPEND values
  are built by appending (64 KB at a time) and the appends are spread over
  enough keys of that size that each grows by at most ~20% while measured, so
  the figure is the amortized cost at that size, as Redis's sds grows.
- ``set``: the same harness with plain ``SET key <16 bytes>``, the cheapest
  write: the floor under the four above (the fixed per-command cost of a
  Python server, with nothing of the value in it).
- ``scan``: at each ``--keys`` count (loaded with pipelined MSET; Keel has no
  DEBUG POPULATE): latency of ``SCAN 0`` repeated and of every call of a whole
  scan, with the default COUNT and with COUNT 1000 (median and max), the time
  of the whole scan, and a check that it returned every key (distinct count).
  A whole scan stops at its time cap (``--scan-seconds`` for COUNT 10,
  ``--scan1000-seconds`` for COUNT 1000); the share it covered is printed.
- ``memory``: resident growth (VmRSS) per key for ``--mem-keys`` keys with
  16-byte values, without TTL and with ``EX 3600`` on each, each on a fresh
  server (the bars: <= 1.4x Redis without TTL, <= 1.5x with).

    python bench/scale.py                       # everything, ~5-10 minutes today
    python bench/scale.py --quick               # small sizes, a smoke run (~1 min)
    python bench/scale.py --only scan --keys 2000000
    python bench/scale.py --only append,setbit --sizes 1k,8m --seconds 5

Timings include the client's send and reply parsing (the same for both
servers); on a shared machine they are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Servers, pin_self, rss, settle  # noqa: E402
from tests.support import Err, encode  # noqa: E402

SECTIONS = ("set", "append", "setbit", "setrange", "bitfield", "scan", "memory")
PIPELINE = 100


# --- helpers ------------------------------------------------------------------

def parse_size(s: str) -> int:
    s = s.strip().lower().rstrip("b")
    mult = 1
    if s and s[-1] in "kmg":
        mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[s[-1]]
        s = s[:-1]
    return int(float(s) * mult)


def parse_count(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = {"k": 1000, "m": 1000_000}.get(s[-1:], 1)
    return int(float(s.rstrip("km")) * mult)


def fmt_size(n: int) -> str:
    for unit, m in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= m and n % m == 0:
            return f"{n // m} {unit}"
    return f"{n} B"


def ratio(a, b) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def check(replies, what: str) -> None:
    for r in replies:
        if isinstance(r, Err):
            raise RuntimeError(f"{what}: error reply {r!r}")


def pipeline(client, cmds, what: str, batch: int = 1000):
    """Send ``cmds`` in pipelines of ``batch``; fail on any error reply."""
    for i in range(0, len(cmds), batch):
        check(client.pipeline(cmds[i:i + batch]), what)


def encode_batches(cmds, per: int = PIPELINE):
    return [(b"".join(encode(c) for c in cmds[i:i + per]), len(cmds[i:i + per]))
            for i in range(0, len(cmds), per)]


def timed(client, batches, seconds: float, what: str):
    """Per-call seconds over the pre-encoded ``batches``: (per_call, calls).

    The first batch is a warm-up (untimed); then batches are sent until all
    are done or ``seconds`` have passed.
    """
    data, n = batches[0]
    client.send_raw(data)
    check([client.read() for _ in range(n)], what)
    read = client.read
    gc.collect()
    gc.disable()  # a collection inside a timed loop is the client's cost, not the server's
    try:
        return _timed(client, batches, seconds, what, read)
    finally:
        gc.enable()


def _timed(client, batches, seconds, what, read):
    calls = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    for data, n in batches[1:]:
        client.send_raw(data)
        for _ in range(n):
            r = read()
            if r.__class__ is Err:
                raise RuntimeError(f"{what}: error reply {r!r}")
        calls += n
        if time.perf_counter() >= deadline:
            break
    return (time.perf_counter() - t0) / calls, calls


class Table:
    def __init__(self, title: str, head=("", "keel", "redis", "keel/redis")):
        self.title = title
        self.rows = [head]

    def row(self, *cells) -> None:
        self.rows.append(tuple(cells))
        # print as we go: a long section shows progress
        if len(self.rows) == 2:
            print(f"\n== {self.title}", flush=True)
            self._print(self.rows[0])
        self._print(cells)

    def _print(self, cells) -> None:
        first, *rest = cells
        print(f"  {first:<46}" + "".join(f" {c:>15}" for c in rest), flush=True)


def us(x):
    return "-" if x is None else f"{x * 1e6:.2f} us"


def ms(x):
    return "-" if x is None else f"{x * 1e3:.3f} ms"


# --- string sections ------------------------------------------------------------

def build_append(client, keys, size: int) -> None:
    """Each key grows to ``size`` bytes by appending (64 KB or size/8 at a time)."""
    pipeline(client, [("DEL", k) for k in keys], "DEL")
    chunk = max(1, min(65536, size // 8))
    blob = b"a" * chunk
    cmds = []
    for k in keys:
        left = size
        while left > 0:
            cmds.append(("APPEND", k, blob[:min(chunk, left)]))
            left -= chunk
    per = max(1, min(1000, (8 << 20) // max(chunk, 1) // 8))
    pipeline(client, cmds, "APPEND (build)", batch=per)


def string_workload(section: str, size: int, calls: int, rng: random.Random):
    """(keys, setup(client), batches) for one section at one value size."""
    if section == "append":
        # Each key grows by at most ~20% of its size while measured.
        nkeys = max(1, min(20000, -(-calls * 40 // max(1, size // 5))))
        keys = [b"append:%d" % i for i in range(nkeys)]
        piece = b"x" * 40
        cmds = [("APPEND", keys[i % nkeys], piece) for i in range(calls + PIPELINE)]

        def setup(client):
            build_append(client, keys, size)
        return keys, setup, encode_batches(cmds)

    key = b"%s:value" % section.encode()
    if section == "setbit":
        cmds = [("SETBIT", key, rng.randrange(size * 8), rng.randrange(2)) for _ in range(calls + PIPELINE)]
    elif section == "setrange":
        cmds = [("SETRANGE", key, rng.randrange(size - 15), rng.randbytes(16)) for _ in range(calls + PIPELINE)]
    elif section == "set":
        # The floor: the cheapest write, in the same harness (value size unused).
        cmds = [("SET", key, rng.randbytes(16)) for _ in range(calls + PIPELINE)]
    elif section == "bitfield":
        cmds = [("BITFIELD", key, "SET", "u8", rng.randrange(size * 8 - 7), rng.randrange(256))
                for _ in range(calls + PIPELINE)]
    else:
        raise ValueError(section)
    value = rng.randbytes(size)

    def setup(client):
        check([client.call("SET", key, value)], "SET")
    return [key], setup, encode_batches(cmds)


def run_string(section: str, servers, o) -> None:
    keel, ref = servers
    kc, rc = keel.client(timeout=120), ref.client(timeout=120)
    what = {
        "set": "SET of 16 bytes (the baseline: the cheapest write)",
        "append": "APPEND 40 bytes (amortized, value built by APPEND)",
        "setbit": "SETBIT at random offsets",
        "setrange": "SETRANGE 16 bytes at random offsets",
        "bitfield": "BITFIELD SET u8 at random offsets",
    }[section]
    t = Table(f"{section}: {what}; per call, pipelines of {PIPELINE}, median of {o.rounds}")
    per = {}
    for size in o.sizes:
        rng = random.Random(size)
        keys, setup, batches = string_workload(section, size, o.calls, rng)
        got = {"keel": [], "redis": []}
        ncalls = {"keel": [], "redis": []}
        for rnd in range(o.rounds):
            for name, c in (("keel", kc), ("redis", rc)):
                if section == "append" or rnd == 0:
                    setup(c)
                pc, n = timed(c, batches, o.seconds, f"{section} {fmt_size(size)} on {name}")
                got[name].append(pc)
                ncalls[name].append(n)
        k, r = statistics.median(got["keel"]), statistics.median(got["redis"])
        per[size] = (k, r)
        note = "" if min(ncalls["keel"]) >= o.calls else f"  (keel: {min(ncalls['keel'])} calls in {o.seconds:g} s cap)"
        t.row(fmt_size(size), us(k), us(r), ratio(k, r))
        if note:
            print(note, flush=True)
        for c in (kc, rc):
            pipeline(c, [("DEL", key) for key in keys], "DEL")
    lo, hi = min(o.sizes), max(o.sizes)
    if lo != hi:
        t.row(f"{fmt_size(hi)} / {fmt_size(lo)}", ratio(per[hi][0], per[lo][0]), ratio(per[hi][1], per[lo][1]), "")
    kc.close()
    rc.close()


# --- scan -----------------------------------------------------------------------

def key_name(i: int) -> bytes:
    return b"key:%012d" % i


def load_keys(client, n: int, what: str) -> float:
    t0 = time.perf_counter()
    per_mset = 100
    cmds = []
    for start in range(0, n, per_mset):
        args = ["MSET"]
        for i in range(start, min(n, start + per_mset)):
            args += [key_name(i), b"v"]
        cmds.append(args)
        if len(cmds) == 20:
            pipeline(client, cmds, what)
            cmds = []
    if cmds:
        pipeline(client, cmds, what)
    size = client.call("DBSIZE")
    if size != n:
        raise RuntimeError(f"{what}: DBSIZE {size}, expected {n}")
    return time.perf_counter() - t0


def scan_zero(client, count, times: int, seconds: float):
    args = ("SCAN", "0") if count is None else ("SCAN", "0", "COUNT", count)
    lat = []
    gc.collect()
    deadline = time.perf_counter() + seconds
    for _ in range(times):
        t0 = time.perf_counter()
        r = client.call(*args)
        lat.append(time.perf_counter() - t0)
        if isinstance(r, Err):
            raise RuntimeError(f"SCAN 0: {r!r}")
        if time.perf_counter() >= deadline:
            break
    return lat


def whole_scan(client, count, seconds: float):
    """(latencies, total seconds, replies' key lists, finished)."""
    gc.collect()
    gc.disable()  # millions of kept keys: collections would dominate the client's time
    try:
        return _whole_scan(client, count, seconds)
    finally:
        gc.enable()


def _whole_scan(client, count, seconds: float):
    tail = () if count is None else ("COUNT", count)
    lat = []
    batches = []
    cursor = b"0"
    call = client.call
    perf = time.perf_counter
    start = perf()
    deadline = start + seconds
    while True:
        t0 = perf()
        r = call("SCAN", cursor, *tail)
        t1 = perf()
        lat.append(t1 - t0)
        if isinstance(r, Err):
            raise RuntimeError(f"SCAN {cursor!r}: {r!r}")
        cursor, keys = r
        batches.append(keys)
        if cursor == b"0":
            return lat, t1 - start, batches, True
        if t1 >= deadline:
            return lat, t1 - start, batches, False


def coverage(batches, n: int):
    """(distinct keys among the first n, total returned)."""
    seen = bytearray(n)
    total = 0
    for keys in batches:
        total += len(keys)
        for k in keys:
            i = int(k[4:])
            if 0 <= i < n:
                seen[i] = 1
    return n - seen.count(0), total


def run_scan(servers, o) -> None:
    keel, ref = servers
    clients = {"keel": keel.client(timeout=300), "redis": ref.client(timeout=300)}
    for n in o.keys:
        for name, c in clients.items():
            c.call("FLUSHALL")
        loads = {name: load_keys(c, n, f"load {name}") for name, c in clients.items()}
        t = Table(f"scan at {n:,} keys (loaded by pipelined MSET: keel {loads['keel']:.1f} s, "
                  f"redis {loads['redis']:.1f} s)")
        for count in (None, 1000):
            label = "COUNT 10 (default)" if count is None else f"COUNT {count}"
            z = {name: scan_zero(c, count, o.scan_zero_times, o.seconds) for name, c in clients.items()}
            zk, zr = z["keel"], z["redis"]
            t.row(f"SCAN 0 {label}: median", ms(statistics.median(zk)), ms(statistics.median(zr)),
                  ratio(statistics.median(zk), statistics.median(zr)))
            t.row(f"SCAN 0 {label}: max ({len(zk)}/{len(zr)} calls)", ms(max(zk)), ms(max(zr)), ratio(max(zk), max(zr)))
            cap = o.scan_seconds if count is None else o.scan1000_seconds
            res = {name: whole_scan(c, count, cap) for name, c in clients.items()}
            (lk, tk, bk, fk), (lr, tr, br, fr) = res["keel"], res["redis"]
            t.row(f"whole scan {label}: median call", ms(statistics.median(lk)), ms(statistics.median(lr)),
                  ratio(statistics.median(lk), statistics.median(lr)))
            t.row(f"whole scan {label}: max call", ms(max(lk)), ms(max(lr)), ratio(max(lk), max(lr)))
            ck, totk = coverage(bk, n)
            cr, totr = coverage(br, n)

            def total(tm, fin, cov):
                shown = f"{tm:.2f} s" if tm >= 1 else f"{tm * 1e3:.1f} ms"
                return shown if fin else f">{shown} ({100 * cov / n:.0f}%)"
            t.row(f"whole scan {label}: total ({len(lk)}/{len(lr)} calls)", total(tk, fk, ck), total(tr, fr, cr),
                  ratio(tk, tr) if fk and fr else "-")
            t.row(f"whole scan {label}: distinct/returned", f"{ck}/{totk}", f"{cr}/{totr}", "")
            for name, fin, cov in (("keel", fk, ck), ("redis", fr, cr)):
                if fin and cov != n:
                    print(f"  !! {name}: a finished scan returned {cov} of {n} keys", flush=True)
            if not fk:
                print(f"  (keel's whole scan {label} stopped at its {cap:g} s cap)", flush=True)
    for c in clients.values():
        c.call("FLUSHALL")
        c.close()


# --- memory ---------------------------------------------------------------------

def mem_load(client, n: int, ttl: bool) -> None:
    tail = ("EX", "3600") if ttl else ()
    batch = 1000
    for start in range(0, n, batch):
        cmds = [("SET", b"key:%012d" % i, b"val:%012d" % i) + tail for i in range(start, min(n, start + batch))]
        check(client.pipeline(cmds), "SET")
    size = client.call("DBSIZE")
    if size != n:
        raise RuntimeError(f"DBSIZE {size}, expected {n}")


def mem_growth(srv, start, n: int, ttl: bool) -> int:
    p = start()
    try:
        c = p.client(timeout=120)
        settle()
        before = rss(p.proc.pid)
        mem_load(c, n, ttl)
        settle()
        after = rss(p.proc.pid)
        c.close()
        return after - before
    finally:
        srv.stop(p)


def run_memory(srv, o) -> None:
    n = o.mem_keys
    t = Table(f"memory: resident growth for {n:,} keys (16-byte keys and values), fresh servers",
              ("", "keel", "redis", "keel/redis"))
    for ttl, bar in ((False, 1.4), (True, 1.5)):
        k = mem_growth(srv, lambda: srv.keel("--appendonly", "no"), n, ttl)
        r = mem_growth(srv, lambda: srv.redis(), n, ttl)
        label = "with EX 3600" if ttl else "no TTL"
        t.row(f"{label}: bytes per key (bar {bar}x)", f"{k / n:.1f} B", f"{r / n:.1f} B", ratio(k, r))
        t.row(f"{label}: total", f"{k / 2**20:.1f} MiB", f"{r / 2**20:.1f} MiB", "")


def code_state() -> str:
    """The commit measured, and whether Keel's code differs from it (a shared tree moves)."""
    from harness import ROOT
    try:
        head = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %ad", "--date=format:%Y-%m-%d %H:%M"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "engine", "wal", "server",
                                "replication"], capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [ln for ln in dirty if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        return ROOT
    return f"{ROOT} at {head or '?'}" + (f" + {len(dirty)} uncommitted file(s) in engine/wal/server" if dirty else "")


def redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split()[2].removeprefix("v=")
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


# --- main -----------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true", help="small sizes and short caps: a smoke run")
    ap.add_argument("--sizes", help="value sizes for the string sections (default 1k,1m,8m)")
    ap.add_argument("--keys", help="key counts for scan (default 200000,2000000)")
    ap.add_argument("--mem-keys", type=int, help="keys for memory (default 1000000)")
    ap.add_argument("--calls", type=int, help="calls per string measurement (default 100000)")
    ap.add_argument("--seconds", type=float, help="time cap per string measurement and SCAN 0 series (default 3)")
    ap.add_argument("--rounds", type=int, help="rounds per string measurement, median reported (default 3)")
    ap.add_argument("--scan-seconds", type=float, help="cap of a whole scan with COUNT 10 (default 40)")
    ap.add_argument("--scan1000-seconds", type=float, help="cap of a whole scan with COUNT 1000 (default 120)")
    ap.add_argument("--scan-zero-times", type=int, help="SCAN 0 calls per series (default 200)")
    o = ap.parse_args()

    q = o.quick
    o.sizes = [parse_size(s) for s in (o.sizes or ("1k,64k" if q else "1k,1m,8m")).split(",")]
    o.keys = [parse_count(s) for s in (o.keys or ("20000" if q else "200000,2000000")).split(",")]
    o.mem_keys = o.mem_keys or (100_000 if q else 1_000_000)
    o.calls = o.calls or (2000 if q else 100_000)
    o.seconds = o.seconds or (0.5 if q else 3.0)
    o.rounds = o.rounds or (1 if q else 3)
    o.scan_seconds = o.scan_seconds or (2.0 if q else 40.0)
    o.scan1000_seconds = o.scan1000_seconds or (5.0 if q else 120.0)
    o.scan_zero_times = o.scan_zero_times or (20 if q else 200)
    only = SECTIONS if not o.only else [s.strip() for s in o.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section(s) {', '.join(bad)}; known: {', '.join(SECTIONS)}")
    if any(s < 64 for s in o.sizes):
        ap.error("sizes must be at least 64 bytes")

    pin_self()
    print(f"keel: {code_state()}; redis: {redis_version()}; client on core 0, servers on core 1", flush=True)
    t0 = time.time()
    with Servers() as srv:
        pair = None
        for section in SECTIONS:
            if section not in only:
                continue
            if section == "memory":
                if pair is not None:  # fresh servers only for the memory figures
                    srv.stop_all()
                    pair = None
                run_memory(srv, o)
                continue
            if pair is None:
                pair = (srv.keel("--appendonly", "no"), srv.redis())
            if section == "scan":
                run_scan(pair, o)
            else:
                run_string(section, pair, o)
    print(f"\n(done in {time.time() - t0:.0f} s; times include the client's send and parse, "
          f"alike for both servers)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
