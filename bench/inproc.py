"""In-process cost per command: pipelines fed straight to a Connection with a
recording transport, no sockets (so no redis-benchmark, no second process).

A quick, low-noise check of a command path before and after a change; the
side-by-side figures still come from bench/throughput.py. Usage:

    python bench/inproc.py                 # every workload, 16 commands per read
    python bench/inproc.py lpush --depth 1 # one workload, one command per read
    python bench/inproc.py zadd --profile  # and the cProfile top 15

A workload is one command, or a list of commands sent together as one unit
(``xreadgroup_xack``: a consumer loop's read and acknowledgement, the
group moved back first so that every unit delivers the same ten entries);
the cost printed is per unit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from engine.keyspace import now_ms  # noqa: E402,F401  (imports the engine first)
from server.app import Server  # noqa: E402
from server.config import Config  # noqa: E402
from server.protocol import Connection  # noqa: E402
from tests.support import encode  # noqa: E402


class _Loop:
    def call_soon(self, fn, *args):
        fn(*args)

    def call_later(self, delay, fn, *args):
        return None

    def time(self):
        return time.monotonic()


class _Transport:
    def __init__(self):
        self.last = b""

    def write(self, data):
        self.last = data

    def get_extra_info(self, name, default=None):
        return default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def get_write_buffer_size(self):
        return 0

    def close(self):
        pass


_SET_SCRIPT = "return redis.call('SET', KEYS[1], 'value')"
WORK = {
    "set": ("SET", "key:000000000000", "xxx"),
    "get": ("GET", "key:000000000000"),
    "incr": ("INCR", "counter:000000000000"),
    "lpush": ("LPUSH", "mylist", "xxx"),
    "rpush": ("RPUSH", "mylist", "xxx"),
    "lrange_100": ("LRANGE", "mylist", "0", "99"),
    "lpop": ("LPOP", "mylist"),
    "rpop": ("RPOP", "mylist"),
    "sadd": ("SADD", "myset", "element:000000000000"),
    "hset": ("HSET", "myhash", "element:000000000000", "xxx"),
    "spop": ("SPOP", "myset"),
    "zadd": ("ZADD", "myzset", "0", "element:000000000000"),
    "zpopmin": ("ZPOPMIN", "myzset"),
    "append": ("APPEND", "log", "x" * 40),
    "setrange": ("SETRANGE", "page", "1000", "x" * 16),
    "setbit": ("SETBIT", "bits", "8000", "1"),
    "bitfield": ("BITFIELD", "fields", "SET", "u8", "800", "7"),
    # one redis.call SET per script call (bench/scripting.py's script and function)
    "evalsha": ("EVALSHA", hashlib.sha1(_SET_SCRIPT.encode()).hexdigest(), "1", "key:000000000000"),
    "fcall": ("FCALL", "benchset", "1", "key:000000000000"),
    "xadd": ("XADD", "mystream", "*", "f", "v"),
    # bench/streams.py's consumer loop: ten new entries delivered, then acknowledged
    "xreadgroup_xack": [("XGROUP", "SETID", "queue", "g", "0"),
                        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "queue", ">"),
                        ("XACK", "queue", "g", *("%d-1" % i for i in range(1, 11)))],
}
# What a workload needs loaded before it runs.
SETUP = {
    "get": [("SET", "key:000000000000", "xxx")],  # a hit, as redis-benchmark's GET after its SET
    "evalsha": [("SCRIPT", "LOAD", _SET_SCRIPT)],
    "fcall": [("FUNCTION", "LOAD", "REPLACE", "#!lua name=benchlib\nredis.register_function('benchset', "
               "function(keys) return redis.call('SET', keys[1], 'value') end)")],
    "xreadgroup_xack": [("XADD", "queue", "%d-1" % i, "job", "%d" % i, "payload", "x" * 16) for i in range(1, 11)]
    + [("XGROUP", "CREATE", "queue", "g", "0")],
}


def _encode(work) -> bytes:
    return b"".join(map(encode, work)) if isinstance(work, list) else encode(work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="?")
    ap.add_argument("--depth", type=int, default=16, help="commands per read")
    ap.add_argument("--reads", type=int, default=20000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                    help="a directive set live before the run, e.g. maxmemory-policy=allkeys-lfu")
    args = ap.parse_args()
    cfg = Config()
    cfg.set("dir", tempfile.mkdtemp(prefix="keel-inproc-"))
    cfg.set("appendonly", "no")
    srv = Server(cfg)
    srv.loop = _Loop()
    srv.persistence.load()
    conn = Connection(srv)
    t = _Transport()
    conn.connection_made(t)
    for item in args.config:
        name, _, value = item.partition("=")
        conn.data_received(encode(["CONFIG", "SET", name, value]))
    for name, cmd in WORK.items():
        if args.only and name != args.only:
            continue
        for setup in SETUP.get(name, ()):
            conn.data_received(encode(setup))
        payload = _encode(cmd) * args.depth
        t0 = time.perf_counter()
        for _ in range(args.reads):
            conn.data_received(payload)
        dt = time.perf_counter() - t0
        print(f"{name:11s} {dt / args.reads / args.depth * 1e6:7.3f} us per command   last reply {t.last[:24]!r}")
    if args.profile and args.only:
        import cProfile
        import pstats
        payload = _encode(WORK[args.only]) * args.depth
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.reads):
            conn.data_received(payload)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
