"""Scripting side by side: Keel against a real redis-server, same run.

* ``redis-benchmark -c 50 evalsha <sha> 1 key`` of a script doing one
  ``redis.call('SET', …)``, without and with ``-P 16``;
* ``FCALL`` of the equivalent function, the same two ways;
* a 1M-iteration pure-Lua loop (``EVAL``), best of ``--reps`` wall times.

Servers are started and pinned as in ``throughput.py`` (``harness.Servers``),
rounds interleaved across the servers. Usage:

    python bench/scripting.py            # everything, 5 rounds
    python bench/scripting.py --reps 3 --scale 0.5
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CLIENT_CPU, Servers, pin_self  # noqa: E402
from throughput import interleaved, load_compare, report  # noqa: E402

SET_SCRIPT = "return redis.call('SET', KEYS[1], 'value')"
LIBRARY = ("#!lua name=benchlib\n"
           "redis.register_function('benchset', function(keys) return redis.call('SET', keys[1], 'value') end)")
LOOP = "local x = 0 for i = 1, 1000000 do x = x + i end return x"


def loop_time(client, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        client.call("EVAL", LOOP, "0")
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    o = ap.parse_args()
    compare = load_compare()
    with Servers() as srv:
        keel = srv.keel("--appendonly", "no")
        ref = srv.redis()
        shas = set()
        for proc in (keel, ref):
            c = proc.client()
            shas.add(c.call("SCRIPT", "LOAD", SET_SCRIPT).decode())
            c.call("FUNCTION", "LOAD", "REPLACE", LIBRARY)
            c.close()
        (sha,) = shas
        servers = [("keel", keel.port), ("redis", ref.port)]
        for label, cmd in (("evalsha", f"evalsha {sha} 1 key:__rand_int__"),
                           ("fcall", "fcall benchset 1 key:__rand_int__")):
            for extra, n in (("", 200_000), ("-P 16 ", 1_000_000)):
                args = f"-c 50 {extra}{cmd}"
                print(f"== {label}: redis-benchmark {args}", flush=True)
                results = interleaved(compare.run, servers, args, int(n * o.scale), o.reps, str(CLIENT_CPU))
                report(results, args, ["redis"])
        pin_self()
        times = {}
        for name, proc in (("keel", keel), ("redis", ref)):
            c = proc.client(timeout=60)
            times[name] = loop_time(c, o.reps)
            c.close()
        print(f"== 1M-iteration Lua loop: keel {times['keel'] * 1000:.0f} ms, redis {times['redis'] * 1000:.0f} ms; "
              f"keel/redis time {times['keel'] / times['redis']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
