"""Acknowledged writes survive ``kill -9`` under every ``appendfsync`` policy.

Real processes, real files. Writer threads, each driving several connections
in lock-step (a request on every connection, then every reply, so that one
event-loop turn of the server serves many clients at once), write unique
keys (SET) and bump shared counters (INCR) as fast as the server answers,
while the server is killed with SIGKILL at a random moment and restarted on
the same data directory, ten rounds in a row. After every restart:

* every SET acknowledged in any round so far is present with its value;
* every counter lies between the increments acknowledged and the increments
  attempted (an INCR in flight at the kill may or may not have been applied:
  it was never acknowledged).

This holds under ``always`` (replies wait for the fsync) and equally under
``everysec`` and ``no``: a process crash leaves the page cache intact, and
under those policies a reply leaves only once the record it depends on was
handed to the kernel. (What ``everysec`` and ``no`` may lose is what a power
loss or an OS crash takes from the page cache; that is not tested here.)

Small checkpoint and segment sizes make background checkpoints, segment
cuts and segment deletions happen during the rounds, so kills land in them
too.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import threading
import time

import pytest

from tests.support import KeelProcess, RespClient, encode

COUNTERS = [b"counter:%d" % i for i in range(4)]
POLICIES = ["always", "everysec", "no"]


class Writer(threading.Thread):
    """Writes on ``nconns`` connections until every one drops; records what was acknowledged."""

    def __init__(self, port: int, wid: int, rnd: int, nconns: int):
        super().__init__(daemon=True)
        self.port, self.wid, self.rnd, self.nconns = port, wid, rnd, nconns
        self.acked_sets: list[tuple[bytes, bytes]] = []
        self.attempted_incr = {c: 0 for c in COUNTERS}
        self.acked_incr = {c: 0 for c in COUNTERS}

    def run(self) -> None:
        conns = []
        try:
            for _ in range(self.nconns):
                conns.append(RespClient(self.port, timeout=5.0))
        except OSError:
            pass
        rng = random.Random(self.wid * 7919 + self.rnd)
        seq = 0
        try:
            while conns:
                sent = []
                for c in conns:
                    seq += 1
                    if rng.random() < 0.7:
                        key = b"w%d:r%d:%d" % (self.wid, self.rnd, seq)
                        op = (b"SET", key, b"v%d" % rng.getrandbits(40))
                    else:
                        op = (b"INCR", rng.choice(COUNTERS))
                    try:
                        c.send_raw(encode(op))
                    except OSError:
                        continue  # never sent: neither attempted nor acknowledged
                    if op[0] == b"INCR":
                        self.attempted_incr[op[1]] += 1
                    sent.append((c, op))
                alive = []
                for c, op in sent:
                    try:
                        r = c.read()
                    except (OSError, ConnectionError):
                        continue
                    if op[0] == b"SET" and r == b"OK":
                        self.acked_sets.append((op[1], op[2]))
                    elif op[0] == b"INCR" and isinstance(r, int):
                        self.acked_incr[op[1]] += 1
                    else:
                        continue  # an error reply: this connection stops
                    alive.append(c)
                for c in conns:
                    if c not in alive:
                        c.close()
                conns = alive
        finally:
            for c in conns:
                c.close()


def _round(keel: KeelProcess, rnd: int, nwriters: int, nconns: int, run_for: float,
           workers=None) -> list:
    """Start the writer threads (``workers``: one class per thread, built as
    ``Writer`` is; by default ``nwriters`` Writers), kill -9 the server after
    ``run_for`` seconds, and return the threads once they have stopped."""
    classes = workers if workers is not None else [Writer] * nwriters
    writers = [cls(keel.port, w, rnd, nconns) for w, cls in enumerate(classes)]
    for w in writers:
        w.start()
    time.sleep(run_for)
    keel.kill()
    for w in writers:
        w.join(10)
    return writers


def _missing(c: RespClient, sets: list[tuple[bytes, bytes]], chunk: int = 500) -> list[bytes]:
    """The keys of ``sets`` whose value is not the one acknowledged (MGET in chunks)."""
    missing = []
    for i in range(0, len(sets), chunk):
        part = sets[i:i + chunk]
        got = c.call(b"MGET", *[k for k, _ in part])
        missing.extend(k for (k, v), g in zip(part, got) if g != v)
    return missing


def kill9_rounds(policy: str, rounds: int, seed: int, nwriters: int = 3, nconns: int = 6) -> None:
    """``rounds`` kill -9 rounds under ``policy``; asserts nothing acknowledged was lost."""
    d = tempfile.mkdtemp(prefix="keel-crash-")
    try:
        keel = KeelProcess("--appendfsync", policy, "--checkpoint-log-size", "256kb",
                           "--wal-segment-size", "128kb", dir=d)
        keel.start()
        acked_total = {c: 0 for c in COUNTERS}
        attempted_total = {c: 0 for c in COUNTERS}
        all_sets: list[tuple[bytes, bytes]] = []
        rng = random.Random(seed)
        for rnd in range(rounds):
            writers = _round(keel, rnd, nwriters, nconns, run_for=rng.uniform(0.3, 1.2))
            for w in writers:
                all_sets.extend(w.acked_sets)
                for ctr in COUNTERS:
                    acked_total[ctr] += w.acked_incr[ctr]
                    attempted_total[ctr] += w.attempted_incr[ctr]
            keel.start()
            c = keel.client()
            try:
                missing = _missing(c, all_sets)
                assert not missing, (f"{policy}, kill {rnd + 1}: {len(missing)} acknowledged SETs lost, "
                                     f"e.g. {missing[:3]}")
                got = {ctr: int(v or 0) for ctr, v in zip(COUNTERS, c.call(b"MGET", *COUNTERS))}
                for ctr in COUNTERS:
                    assert acked_total[ctr] <= got[ctr] <= attempted_total[ctr], (
                        f"{policy}, kill {rnd + 1}: {ctr!r}={got[ctr]} outside "
                        f"[{acked_total[ctr]}, {attempted_total[ctr]}]")
                    # What survived of an unacknowledged INCR is now a fact.
                    acked_total[ctr] = attempted_total[ctr] = got[ctr]
            finally:
                c.close()
        assert len(all_sets) > 500 * rounds, "the writers wrote too little for the test to mean anything"
        print(f"\n{policy}: {rounds} kill -9 rounds, {len(all_sets)} acknowledged SETs and "
              f"{sum(acked_total.values())} counter increments verified")
        keel.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("policy", POLICIES)
def test_kill9_loses_no_acknowledged_write(policy):
    kill9_rounds(policy, rounds=10, seed=1234)


@pytest.mark.soak
@pytest.mark.parametrize("policy", POLICIES)
def test_kill9_soak_loses_no_acknowledged_write(policy):
    kill9_rounds(policy, rounds=60, seed=int(time.time()))


def test_sigterm_then_restart_keeps_everything():
    d = tempfile.mkdtemp(prefix="keel-crash-")
    try:
        keel = KeelProcess(dir=d).start()
        c = keel.client()
        c.pipeline([(b"SET", b"k%d" % i, b"v%d" % i) for i in range(2000)])
        c.call(b"SELECT", b"5")
        c.call(b"SET", b"in5", b"yes")
        c.close()
        assert keel.stop(signal.SIGTERM) == 0
        keel.start()
        c = keel.client()
        assert c.call(b"DBSIZE") == 2000
        assert c.call(b"GET", b"k1999") == b"v1999"
        c.call(b"SELECT", b"5")
        assert c.call(b"GET", b"in5") == b"yes"
        c.close()
        keel.stop()
        # Nothing was lost, so a restart after SHUTDOWN needs no log replay:
        assert os.path.isdir(os.path.join(d, "checkpoint.lmdb"))
    finally:
        shutil.rmtree(d, ignore_errors=True)
