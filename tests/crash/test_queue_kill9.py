"""A list used as a queue loses and duplicates nothing acknowledged across ``kill -9``.

Producers RPUSH unique items, consumers LPOP them, each thread driving
several connections in lock-step, while the server runs under ``appendfsync
always`` and is killed with SIGKILL at a random moment and restarted on the
same data directory, several rounds in a row (``tests.crash.test_kill9``'s
round: start the threads, kill, join). After every restart, with what is in
the queue now:

* no item is both in the queue and popped by an acknowledged LPOP, no item
  was popped twice, and nothing is in the queue that no producer sent;
* every acknowledged push is in the queue or was popped by an acknowledged
  pop, except at most as many as there were LPOPs in flight at the kill
  (applied and logged, their reply lost with the process);
* each producer connection's items are still in the order it pushed them.
"""

from __future__ import annotations

import random
import shutil
import tempfile

from tests.crash.lockstep import LockStep as _LockStep
from tests.crash.test_kill9 import _round
from tests.support import KeelProcess

QUEUE = b"queue"


class Producer(_LockStep):
    def __init__(self, *args):
        super().__init__(*args)
        self.sent: list[bytes] = []
        self.acked: list[bytes] = []

    def request(self, conn, seq):
        item = b"p%d:r%d:c%d:%08d" % (self.wid, self.rnd, conn, seq)
        self.sent.append(item)
        return (b"RPUSH", QUEUE, item)

    def acknowledged(self, op, reply):
        if isinstance(reply, int):
            self.acked.append(op[2])
            return True
        return False


class Consumer(_LockStep):
    def __init__(self, *args):
        super().__init__(*args)
        self.popped: list[bytes] = []
        self.empty = 0

    def request(self, conn, seq):
        return (b"LPOP", QUEUE)

    def acknowledged(self, op, reply):
        if reply is None:
            self.empty += 1
            return True
        if isinstance(reply, bytes):
            self.popped.append(reply)
            return True
        return False


def _producer_order_kept(queue: list[bytes]) -> bool:
    last: dict[bytes, bytes] = {}
    for item in queue:
        origin, _, seq = item.rpartition(b":")
        if origin in last and last[origin] >= seq:
            return False
        last[origin] = seq
    return True


def queue_rounds(rounds: int, seed: int, producers: int = 3, consumers: int = 2, nconns: int = 4) -> None:
    d = tempfile.mkdtemp(prefix="keel-queue-")
    try:
        keel = KeelProcess("--appendfsync", "always", "--checkpoint-log-size", "256kb",
                           "--wal-segment-size", "128kb", dir=d)
        keel.start()
        rng = random.Random(seed)
        sent: set[bytes] = set()
        pushed: set[bytes] = set()  # acknowledged pushes, cumulative
        popped: set[bytes] = set()  # acknowledged pops, cumulative
        gone: set[bytes] = set()  # taken by a pop whose reply died with the server
        total_pops = 0
        for rnd in range(rounds):
            workers = [Producer] * producers + [Consumer] * consumers
            threads = _round(keel, rnd, 0, nconns, rng.uniform(0.4, 1.2), workers=workers)
            in_flight_pops = 0
            for t in threads:
                if isinstance(t, Producer):
                    sent.update(t.sent)
                    pushed.update(t.acked)
                else:
                    in_flight_pops += t.in_flight
                    total_pops += len(t.popped)
                    again = popped.intersection(t.popped)
                    assert not again, f"kill {rnd + 1}: popped twice: {sorted(again)[:3]}"
                    assert len(set(t.popped)) == len(t.popped), f"kill {rnd + 1}: one consumer popped an item twice"
                    popped.update(t.popped)
            keel.start()
            c = keel.client()
            try:
                queue = c.call(b"LRANGE", QUEUE, 0, -1)
            finally:
                c.close()
            present = set(queue)
            assert len(present) == len(queue), f"kill {rnd + 1}: an item is in the queue twice"
            assert not present & popped, f"kill {rnd + 1}: acknowledged pops came back: {sorted(present & popped)[:3]}"
            assert present <= sent, f"kill {rnd + 1}: items nobody pushed: {sorted(present - sent)[:3]}"
            lost = pushed - present - popped - gone
            assert len(lost) <= in_flight_pops, (
                f"kill {rnd + 1}: {len(lost)} acknowledged pushes neither queued nor popped "
                f"({in_flight_pops} pops were in flight), e.g. {sorted(lost)[:3]}")
            gone |= lost
            assert _producer_order_kept(queue), f"kill {rnd + 1}: a producer's items are out of order"
        assert len(pushed) > 300 * rounds and total_pops > 100 * rounds, \
            "the producers and consumers did too little for the test to mean anything"
        print(f"\nqueue: {rounds} kill -9 rounds, {len(pushed)} acknowledged pushes, {total_pops} "
              f"acknowledged pops, {len(gone)} taken by pops in flight")
        keel.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_queue_survives_kill9_under_always():
    queue_rounds(rounds=6, seed=4321)
