"""RDB file write and load: engine.rdbfile vs redis-server 7.0, N string keys.

The dataset is DEBUG POPULATE's (``key:N`` -> values of SIZE bytes), built
in Redis by DEBUG POPULATE and in this process as the same bytes; with
SIZE over 20 Redis writes the values LZF-compressed. Timed, per key:

* write: Keel's ``RdbWriter.string_entry`` for every key, then the file
  written and fsynced; Redis's SAVE (serialize, write, fsync);
* load: Keel's ``parse_file`` of Redis's own dump.rdb into a dict (the
  parser alone) and into an engine Keyspace (``Database.set`` with its
  memory accounting, as a replica's load does); Redis's DEBUG RELOAD
  NOSAVE of the file Keel wrote (a flush, then the load);
* crc64 of 100 MB (C).

Each figure is given as CPU time (this process's; Redis's from INFO cpu),
steady on a loaded machine, and wall time. Redis runs pinned to one core
and this process to the other (bench/harness).

    python bench/rdbfile.py                 # 1,000,000 keys, values of 10 and 100 bytes
    python bench/rdbfile.py -n 200000 --sizes 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.harness import pin, pin_self  # noqa: E402
from tests.support import RedisProcess  # noqa: E402


class DictSink:
    def __init__(self):
        self.data = {}

    def aux(self, name, value):
        pass

    def key(self, db, key, value, expire_ms):
        self.data[key] = value

    def function(self, code):
        pass


class KeyspaceSink(DictSink):
    def __init__(self):
        from engine.keyspace import Keyspace
        self.ks = Keyspace()

    def key(self, db, key, value, expire_ms):
        d = self.ks.dbs[db]
        d.set(key, value)
        if expire_ms is not None:
            d.set_expire(key, expire_ms)


class Clock:
    """Wall and CPU seconds of a block: this process's CPU, or a Redis's from INFO."""

    def __init__(self, redis_client=None):
        self.redis = redis_client

    def _cpu(self) -> float:
        if self.redis is None:
            return time.process_time()
        info = self.redis.call("INFO", "cpu").decode()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])

    def __enter__(self):
        self.cpu0, self.wall0 = self._cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = self._cpu() - self.cpu0


def populate_values(n: int, size: int) -> list[tuple[bytes, bytes]]:
    """DEBUG POPULATE n key SIZE's keys and values."""
    return [(b"key:%d" % i, (b"value:%d" % i)[:size].ljust(size, b"\0")) for i in range(n)]


def one_size(c, redis_dir: str, tmp: str, n: int, size: int) -> None:
    from engine import rdbfile

    c.call("FLUSHALL")
    assert c.call("DEBUG", "POPULATE", n, "key", size) == b"OK"
    with Clock(c) as redis_save:
        assert c.call("SAVE") == b"OK"
    redis_file = os.path.join(redis_dir, "dump.rdb")

    pairs = populate_values(n, size)
    keel_file = os.path.join(tmp, "keel.rdb")
    with Clock() as entries:
        w = rdbfile.RdbWriter()
        out = [w.header({"redis-ver": "7.0.15"}), w.select(0, n, 0)]
        entry = w.string_entry
        for k, v in pairs:
            out.append(entry(k, v))
        out.append(w.end())
    with Clock() as keel_write:
        with open(keel_file, "wb") as f:
            f.write(b"".join(out))
            f.flush()
            os.fsync(f.fileno())
    del out
    sizes = os.path.getsize(keel_file), os.path.getsize(redis_file)

    with Clock() as keel_parse:
        sink = DictSink()
        rdbfile.parse_file(redis_file, sink)
    assert len(sink.data) == n and sink.data[pairs[7][0]] == pairs[7][1]
    del sink
    with Clock() as keel_load:
        ksink = KeyspaceSink()
        rdbfile.parse_file(redis_file, ksink)
    assert len(ksink.ks.dbs[0].data) == n
    del ksink

    shutil.copy(keel_file, redis_file)
    with Clock(c) as redis_load:
        assert c.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert c.call("DBSIZE") == n and c.call("GET", pairs[7][0]) == pairs[7][1]

    us = 1e6 / n
    print(f"{n} keys of {size}-byte values; files: Keel's {sizes[0]} bytes, Redis's {sizes[1]}")
    for label, keel, redis in (("write (string_entry + file + fsync)", (entries, keel_write), (redis_save,)),
                               ("load: parser into a dict", (keel_parse,), (redis_load,)),
                               ("load: into a Keel Keyspace", (keel_load,), (redis_load,))):
        kc, kw = sum(x.cpu for x in keel) * us, sum(x.wall for x in keel) * us
        rc, rw = sum(x.cpu for x in redis) * us, sum(x.wall for x in redis) * us
        print(f"  {label:38} keel {kc:6.3f} us/key CPU ({kw:6.3f} wall)   redis {rc:6.3f} CPU ({rw:6.3f} wall)"
              f"   ratio {kc / rc:5.2f}x CPU, {kw / rw:5.2f}x wall")
    print(f"  {'(string_entry alone)':38} keel {entries.cpu * us:6.3f} us/key CPU ({entries.wall * us:6.3f} wall)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    args = ap.parse_args()
    import engine.commands  # noqa: F401
    from engine import rdb

    pin_self()
    tmp = tempfile.mkdtemp(prefix="bench-rdbfile-")
    redis = RedisProcess("--enable-debug-command", "yes").start()
    try:
        pin(redis.proc.pid)
        c = redis.client(timeout=300)
        for size in args.sizes:
            one_size(c, redis.dir, tmp, args.n, size)
    finally:
        redis.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    blob = os.urandom(100 << 20)
    with Clock() as crc:
        rdb.crc64(blob)
    print(f"crc64 of 100 MB: {crc.cpu * 1000:.1f} ms CPU ({crc.wall * 1000:.1f} wall)")


if __name__ == "__main__":
    main()
