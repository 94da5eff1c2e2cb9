"""Transactions under ``kill -9``: every acknowledged EXEC is wholly there after
a restart, and no transaction is half there.

Writer threads each drive several connections in lock-step; every request is
one whole transaction sent in one write (MULTI, two SETs of the transaction's
own keys, an INCR of a shared counter, an RPUSH of its id to a shared list,
EXEC), so one event-loop turn of the server runs many transactions from
different clients. The server is killed with SIGKILL at a random moment,
restarted on the same directory, several rounds in a row. After each restart:

* both keys of every acknowledged transaction hold its values;
* of every transaction whose id is in the list, both keys are there, and
  every transaction with a key there is in the list (none is half applied);
* the counter equals the length of the list (the two moved together).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time

import pytest

from tests.crash.lockstep import LockStep
from tests.support import KeelProcess, RespClient, encode


class TxWriter(LockStep):
    """Each request is a whole transaction in one write; its id is acknowledged
    when EXEC (the sixth reply) answers its four replies."""

    replies = 6

    def __init__(self, *args):
        super().__init__(*args)
        self.acked: list[bytes] = []

    def request(self, conn, seq):
        return b"%d.%d.%d.%d" % (self.rnd, self.wid, conn, seq)

    def wire(self, tid):
        return (encode((b"MULTI",)) + encode((b"SET", b"tx:" + tid + b":a", tid))
                + encode((b"SET", b"tx:" + tid + b":b", tid)) + encode((b"INCR", b"txcount"))
                + encode((b"RPUSH", b"txlog", tid)) + encode((b"EXEC",)))

    def acknowledged(self, tid, reply):
        if isinstance(reply, list) and len(reply) == 4:
            self.acked.append(tid)
            return True
        return False


def _check(c: RespClient, acked: list[bytes], label: str) -> int:
    log = c.call(b"LRANGE", b"txlog", b"0", b"-1")
    assert int(c.call(b"GET", b"txcount") or 0) == len(log), f"{label}: counter and list disagree"
    in_log = set(log)
    missing = [t for t in acked if t not in in_log]
    assert not missing, f"{label}: {len(missing)} acknowledged transactions lost, e.g. {missing[:3]}"
    keys = c.call(b"KEYS", b"tx:*")
    ids = {k[3:-2] for k in keys}
    assert ids == in_log, f"{label}: transactions half applied: {sorted(ids ^ in_log)[:5]}"
    for i in range(0, len(log), 500):
        part = log[i:i + 500]
        got = c.call(b"MGET", *[b"tx:" + t + s for t in part for s in (b":a", b":b")])
        assert got == [t for t in part for _ in (0, 1)], f"{label}: a transaction's values are wrong"
    return len(log)


def kill9_transactions(rounds: int, seed: int, nwriters: int = 3, nconns: int = 5) -> None:
    d = tempfile.mkdtemp(prefix="keel-crash-tx-")
    try:
        keel = KeelProcess("--appendfsync", "always", "--checkpoint-log-size", "256kb",
                           "--wal-segment-size", "128kb", dir=d)
        keel.start()
        acked: list[bytes] = []
        rng = random.Random(seed)
        total = 0
        for rnd in range(rounds):
            writers = [TxWriter(keel.port, w, rnd, nconns) for w in range(nwriters)]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.3, 1.0))
            keel.kill()
            for w in writers:
                w.join(10)
                acked.extend(w.acked)
            keel.start()
            c = keel.client()
            try:
                total = _check(c, acked, f"kill {rnd + 1}")
            finally:
                c.close()
        assert len(acked) > 200 * rounds, "too few transactions for the test to mean anything"
        print(f"\n{rounds} kill -9 rounds: {len(acked)} acknowledged transactions verified, {total} applied")
        keel.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_kill9_keeps_every_acknowledged_transaction_whole():
    kill9_transactions(rounds=5, seed=4321)


@pytest.mark.soak
def test_kill9_transactions_soak():
    kill9_transactions(rounds=40, seed=int(time.time()))
