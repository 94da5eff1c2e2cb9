"""DEBUG POPULATE, DIGEST and RELOAD on N keys: Keel against redis-server, same run.

    python bench/debug.py [N]        (default 1000000; about a minute at 1M)

Each server is pinned to one core (bench/harness.py), this client to the
other. Prints each command's wall time on both and Keel's time over
Redis's. Keel's POPULATE journals its keys (Redis's does not propagate
them), its RELOAD writes a full checkpoint into LMDB and reads it back, and
its DIGEST hashes the logical content (Redis's hashes its encodings): the
work differs, the ratios say what an operator waits for.
"""

from __future__ import annotations

import sys
import time

from harness import Servers, pin_self

STEPS = (("POPULATE", lambda n: ("DEBUG", "POPULATE", n)), ("DIGEST", lambda n: ("DEBUG", "DIGEST")),
         ("RELOAD", lambda n: ("DEBUG", "RELOAD")))


def run(proc, n: int) -> dict:
    c = proc.client(timeout=600)
    out = {}
    try:
        for name, argv in STEPS:
            t = time.perf_counter()
            r = c.call(*argv(n))
            out[name] = time.perf_counter() - t
            assert not str(r).startswith("ERR"), (name, r)
    finally:
        c.close()
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pin_self()
    with Servers() as s:
        keel = s.keel("--appendfsync", "everysec")
        mine = run(keel, n)
        s.stop(keel)
        redis = s.redis("--enable-debug-command", "yes")
        theirs = run(redis, n)
    print(f"{n} keys     keel      redis     keel/redis")
    for name, _ in STEPS:
        print(f"{name:10} {mine[name]:7.2f} s {theirs[name]:7.2f} s {mine[name] / theirs[name]:8.2f}x")


if __name__ == "__main__":
    main()
