"""Failover loss: how many acknowledged writes a failover loses, and how soon
writes resume, Keel next to a real redis-server group.

One primary and two replicas, each behind an in-process proxy
(tests/replication/support.py), three real redis-sentinels
(``down-after-milliseconds 2000``), ten writers through redis-py's
``Sentinel(...).master_for('mymaster')`` adding unique elements to one set
(jepsen/workload.py; the odd writers dial servers directly, so under a cut
they stay on the old primary's side). The fault lasts ``--fault-seconds``:

- ``kill``: kill -9 the primary, restart it afterwards (same port and data dir);
- ``stop``: SIGSTOP, then SIGCONT;
- ``cut``: the primary's proxy drops every connection and refuses new ones
  (replicas, sentinels and the proxied writers lose it), then heals.

After the fault, writes go on until the old primary has been turned into a
replica of the one the sentinels agree on (or ``--settle-max`` seconds), then
stop; once every replica has the final primary's offset the set is read from
it. ``lost`` = acknowledged elements missing from it. ``resume`` = seconds from
the fault to the first write acknowledged by another server.

    python bench/failover.py                         # kill, stop and cut; redis and keel
    python bench/failover.py --fault cut --target redis --wait
    python bench/failover.py --fault kill --target keel --sync

``--wait`` pipelines ``WAIT 1 500`` after each SADD to redis-server (below
the clients' 1 s timeout, so that a primary with no replica answers 0 rather
than nothing; the ``racked``/``rlost`` columns count writes WAIT said a
replica had). ``--sync`` starts every Keel server with ``min-replicas-to-ack
1`` and ``min-replicas-max-lag 1`` (below down-after, so that a cut-off
primary refuses before a replica is promoted).
Redis runs without persistence (a killed Redis restarts empty and is resynced
by its new primary); Keel with its defaults (its own log).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from jepsen.workload import KEY, SetAdd  # noqa: E402
from tests.replication.support import (Group, Sentinels, wait_for, wait_link_up,  # noqa: E402
                                       wait_offsets_match)

FAULTS = ("kill", "stop", "cut")


def inject(node, fault: str) -> None:
    if fault == "kill":
        node.kill()
    elif fault == "stop":
        node.stop()
    else:
        node.proxy.cut()


def heal(node, fault: str) -> None:
    if fault == "kill":
        node.start()
    elif fault == "stop":
        node.cont()
    else:
        node.proxy.heal()


def demoted(group, sentinels, old):
    """The agreed primary, once ``old`` replicates from it with its link up."""
    new = sentinels.agreed_primary()
    if new is None or new is old:
        return None
    i = old.info()
    return new if i.get("master_port") == str(new.port) and i.get("master_link_status") == "up" else None


def run_one(target: str, fault: str, args) -> dict:
    server_args = []
    if target == "keel" and args.sync:
        server_args += ["--min-replicas-to-ack", "1", "--min-replicas-max-lag", "1"]
    group = Group(target, 2, args=server_args)
    sentinels = None
    work = None
    try:
        group.start()
        sentinels = Sentinels(group, 3, down_after_ms=args.down_after,
                              failover_timeout_ms=args.failover_timeout).start()
        sentinels.wait_discovered()
        direct = {n.port: n.direct for n in group.nodes}
        work = SetAdd(sentinels.addresses(), writers=args.writers, timeout=args.timeout,
                      wait_ms=500 if args.wait and target == "redis" else None, translate_odd=direct).start()
        time.sleep(args.before)
        old = group.primary
        fault_at = time.monotonic()
        inject(old, fault)
        time.sleep(args.fault_seconds)
        heal(old, fault)
        try:
            wait_for(lambda: demoted(group, sentinels, old), args.settle_max, 0.2,
                     what="the old primary to replicate from the new one")
            settled = True
        except TimeoutError:
            settled = False
        time.sleep(1.0)
        work.stop()
        final = sentinels.wait_primary(timeout=10)
        others = [n for n in group.nodes if n is not final]
        for n in others:
            try:
                wait_link_up(n, 10)
            except TimeoutError:
                pass
        try:
            wait_offsets_match(final, [n for n in others if n.role() == "slave"], 10)
        except TimeoutError:
            pass
        members = final.redis(direct=True).smembers(KEY)
        out = work.check(members, fault_at, {old.port, old.direct})
        out.update(target=target, fault=fault, settled=settled,
                   promoted=final.name, elapsed=time.monotonic() - fault_at + args.before)
        return out
    except Exception as e:
        e.logs = "\n".join(f"--- {n.name} port {n.port} direct {n.direct}\n{n.log()[-4000:]}" for n in group.nodes)
        if sentinels is not None:
            e.logs += "\n" + sentinels.logs()[-6000:]
        raise
    finally:
        if work is not None:
            work.stop()
        if sentinels is not None:
            sentinels.cleanup()
        group.cleanup()


def mode(target: str, args) -> str:
    if target == "keel":
        return "sync" if args.sync else "async"
    return "wait" if args.wait else "async"


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="redis,keel", help="redis, keel or both (comma-separated)")
    ap.add_argument("--fault", default=",".join(FAULTS), help="kill, stop, cut (comma-separated)")
    ap.add_argument("--wait", action="store_true", help="redis: WAIT 1 500 after each SADD")
    ap.add_argument("--sync", action="store_true", help="Keel: min-replicas-to-ack 1")
    ap.add_argument("--writers", type=int, default=10)
    ap.add_argument("--fault-seconds", type=float, default=12.0)
    ap.add_argument("--before", type=float, default=3.0, help="seconds of writes before the fault")
    ap.add_argument("--settle-max", type=float, default=25.0)
    ap.add_argument("--down-after", type=int, default=2000)
    ap.add_argument("--failover-timeout", type=int, default=10000)
    ap.add_argument("--logs", action="store_true", help="print the servers' logs when a run fails")
    ap.add_argument("--timeout", type=float, default=1.0, help="client socket timeout, s")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    faults = [f.strip() for f in args.fault.split(",") if f.strip()]
    for f in faults:
        if f not in FAULTS:
            sys.exit(f"unknown fault {f!r}: kill, stop or cut")
    rows = []
    head = (f"{'fault':5} {'target':6} {'mode':5} {'acked':>7} {'lost':>6} {'racked':>7} {'rlost':>6} "
            f"{'errors':>6} {'resume_s':>8} {'settled':>7} {'run_s':>5}")
    print(head, flush=True)
    for fault in faults:
        for target in targets:
            try:
                r = run_one(target, fault, args)
            except Exception as e:  # one broken run must not hide the others
                print(f"{fault:5} {target:6} {mode(target, args):5} failed: {e!r}", flush=True)
                if args.logs:
                    print(getattr(e, "logs", ""), flush=True)
                continue
            rows.append(r)
            resume = "-" if r["resume_s"] is None else f"{r['resume_s']:.2f}"
            print(f"{fault:5} {target:6} {mode(target, args):5} {r['acked']:7d} {r['lost']:6d} "
                  f"{r['replica_acked']:7d} {r['replica_acked_lost']:6d} {r['errors']:6d} {resume:>8} "
                  f"{str(r['settled']):>7} {r['elapsed']:5.0f}", flush=True)
    for fault in faults:
        got = {r["target"]: r for r in rows if r["fault"] == fault}
        if "keel" in got and "redis" in got and got["keel"]["resume_s"] and got["redis"]["resume_s"]:
            print(f"{fault}: keel/redis resume time {got['keel']['resume_s'] / got['redis']['resume_s']:.2f}x, "
                  f"lost keel {got['keel']['lost']} redis {got['redis']['lost']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
