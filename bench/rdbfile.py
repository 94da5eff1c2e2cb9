"""RDB file write and load: engine.rdbfile vs redis-server 7.0, N string keys.

The dataset is DEBUG POPULATE's (``key:N`` -> 10-byte values), built in
Redis by DEBUG POPULATE and in this process as the same bytes. Timed:

* write: Keel's ``RdbWriter.string_entry`` per key, then the file written
  and fsynced; Redis's SAVE (its round trip: serialize, write, fsync).
* load: Keel's ``parse_file`` of Redis's own dump.rdb into a dict (the
  parser alone) and into an engine Keyspace (``Database.set`` and its
  memory accounting, as a replica's load does); Redis's DEBUG RELOAD
  NOSAVE of the file Keel wrote (flush, then load).
* crc64 of 100 MB (C).

Redis runs pinned to one core and this process to the other (bench/harness).

    python bench/rdbfile.py            # 1,000,000 keys
    python bench/rdbfile.py -n 200000
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


def populate_values(n: int) -> list[tuple[bytes, bytes]]:
    """DEBUG POPULATE n key 10's keys and values."""
    return [(b"key:%d" % i, (b"value:%d" % i)[:10].ljust(10, b"\0")) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.n
    import engine.commands  # noqa: F401
    from engine import rdb, rdbfile

    pin_self()
    tmp = tempfile.mkdtemp(prefix="bench-rdbfile-")
    redis = RedisProcess("--enable-debug-command", "yes").start()
    try:
        pin(redis.proc.pid)
        c = redis.client(timeout=300)
        assert c.call("DEBUG", "POPULATE", n, "key", 10) == b"OK"
        t = time.perf_counter()
        assert c.call("SAVE") == b"OK"
        redis_save = time.perf_counter() - t
        redis_file = os.path.join(redis.dir, "dump.rdb")

        pairs = populate_values(n)
        t = time.perf_counter()
        w = rdbfile.RdbWriter()
        out = [w.header({"redis-ver": "7.0.15"}), w.select(0, n, 0)]
        entry = w.string_entry
        for k, v in pairs:
            out.append(entry(k, v))
        out.append(w.end())
        t_entries = time.perf_counter() - t
        keel_file = os.path.join(tmp, "keel.rdb")
        with open(keel_file, "wb") as f:
            f.write(b"".join(out))
            f.flush()
            os.fsync(f.fileno())
        keel_write = time.perf_counter() - t
        keel_size = os.path.getsize(keel_file)
        del out

        t = time.perf_counter()
        sink = DictSink()
        rdbfile.parse_file(redis_file, sink)
        keel_parse = time.perf_counter() - t
        assert len(sink.data) == n and sink.data[b"key:7"] == dict(pairs[:8])[b"key:7"]
        del sink
        t = time.perf_counter()
        ksink = KeyspaceSink()
        rdbfile.parse_file(redis_file, ksink)
        keel_load = time.perf_counter() - t
        assert len(ksink.ks.dbs[0].data) == n
        del ksink

        shutil.copy(keel_file, redis_file)
        t = time.perf_counter()
        assert c.call("DEBUG", "RELOAD", "NOSAVE") == b"OK"
        redis_load = time.perf_counter() - t
        assert c.call("DBSIZE") == n and c.call("GET", "key:7") == dict(pairs[:8])[b"key:7"]

        blob = os.urandom(100 << 20)
        t = time.perf_counter()
        rdb.crc64(blob)
        crc = time.perf_counter() - t
    finally:
        redis.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    us = 1e6 / n
    print(f"{n} keys, Keel's file {keel_size} bytes")
    print(f"write  keel string_entry {t_entries * us:.3f} us/key, to file+fsync {keel_write * us:.3f} us/key;"
          f" redis SAVE {redis_save * us:.3f} us/key; ratio {keel_write / redis_save:.2f}x")
    print(f"load   keel parse_file->dict {keel_parse * us:.3f} us/key, ->Keyspace {keel_load * us:.3f} us/key;"
          f" redis DEBUG RELOAD {redis_load * us:.3f} us/key; ratio {keel_parse / redis_load:.2f}x (parser),"
          f" {keel_load / redis_load:.2f}x (into a Keyspace)")
    print(f"crc64  100 MB in {crc * 1000:.1f} ms")


if __name__ == "__main__":
    main()
