"""A stream work queue loses and repeats nothing acknowledged across ``kill -9``.

Producers XADD unique entries (``*`` IDs) and consumers of one group loop
``XREADGROUP GROUP g <consumer> COUNT 10 STREAMS s >`` then ``XACK`` of what it
delivered, each thread driving several connections in lock-step, while the
server runs under ``appendfsync always`` and is killed with SIGKILL at a
random moment and restarted on the same data directory, several rounds in a
row (``tests.crash.test_kill9``'s round). What "acknowledged" means here: a
reply reached the client. After every restart:

* every acknowledged XADD's ID is in the stream with its fields, and every
  entry in the stream is one a producer sent;
* every entry an acknowledged XREADGROUP delivered was in the stream with
  those fields, and no entry was delivered twice by ``>`` (within a round or
  across rounds): the group's last-delivered ID is at or past every entry
  ever delivered, so a read after the restart never hands one out again;
* no acknowledged XACK's entry is in the PEL; every delivered entry not
  acknowledged (and with no XACK in flight at the kill) is in the PEL of the
  consumer it was delivered to;
* every PEL entry was delivered to its consumer, but at most 10 per
  XREADGROUP of that consumer in flight at a kill (applied and logged, its
  reply lost with the process).

``--soak`` runs many more rounds.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections import Counter

import pytest

from tests.crash.lockstep import LockStep
from tests.crash.test_kill9 import _round
from tests.support import Err, KeelProcess, encode

KEY = b"s"
GROUP = b"g"


class Producer(LockStep):
    def __init__(self, *args):
        super().__init__(*args)
        self.sent: set[tuple] = set()  # the fields of every XADD sent
        self.acked: dict[bytes, tuple] = {}  # ID -> fields, for each acknowledged XADD

    def request(self, conn, seq):
        fields = (b"p", b"%d" % self.wid, b"c", b"%d" % conn, b"r", b"%d" % self.rnd, b"n", b"%d" % seq)
        self.sent.add(fields)
        return (b"XADD", KEY, b"*") + fields

    def acknowledged(self, op, reply):
        if isinstance(reply, bytes):
            self.acked[reply] = op[3:]
            return True
        return False


class Consumer(LockStep):
    """Each connection is one consumer: a read of up to 10 new entries, then the XACK of
    exactly those, then the next read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.unacked: dict[int, list] = {}  # connection -> IDs delivered, not yet acknowledged
        self.last_op: dict[int, tuple] = {}  # connection -> its request without a reply (yet)
        self.delivered: dict[bytes, tuple] = {}  # ID -> (consumer, fields), acknowledged deliveries
        self.twice: list[bytes] = []  # IDs one acknowledged read delivered again
        self.acks: set[bytes] = set()  # IDs of acknowledged XACKs
        self.short_acks: list = []  # XACKs that acknowledged fewer than they named

    def name(self, conn: int) -> bytes:
        return b"w%d-c%d" % (self.wid, conn)

    def request(self, conn, seq):
        ids = self.unacked.get(conn)
        if ids:
            op = (conn, (b"XACK", KEY, GROUP, *ids))
        else:
            op = (conn, (b"XREADGROUP", b"GROUP", GROUP, self.name(conn), b"COUNT", b"10", b"STREAMS", KEY, b">"))
        self.last_op[conn] = op
        return op

    def wire(self, op) -> bytes:
        return encode(op[1])

    def acknowledged(self, op, reply):
        conn, argv = op
        if isinstance(reply, Err):
            return False
        del self.last_op[conn]
        if argv[0] == b"XACK":
            ids = argv[3:]
            if reply != len(ids):
                self.short_acks.append((ids, reply))
            self.acks.update(ids)
            self.unacked[conn] = []
            return True
        if reply is None:
            return True  # nothing new
        entries = reply[0][1]
        ids = []
        for i, fv in entries:
            if i in self.delivered:
                self.twice.append(i)
            self.delivered[i] = (self.name(conn), tuple(fv))
            ids.append(i)
        self.unacked[conn] = ids
        return True

    def unanswered(self):
        """The (consumer, argv) of each request whose reply never came."""
        return [(self.name(conn), argv) for conn, argv in self.last_op.values()]


def _id(i: bytes) -> tuple:
    ms, _, seq = i.partition(b"-")
    return int(ms), int(seq)


def stream_rounds(rounds: int, seed: int, producers: int = 2, consumers: int = 2, nconns: int = 4) -> None:
    d = tempfile.mkdtemp(prefix="keel-stream-")
    try:
        keel = KeelProcess("--appendfsync", "always", "--checkpoint-log-size", "256kb",
                           "--wal-segment-size", "128kb", dir=d)
        keel.start()
        c = keel.client()
        assert c.call(b"XGROUP", b"CREATE", KEY, GROUP, b"$", b"MKSTREAM") == b"OK"
        c.close()
        rng = random.Random(seed)
        sent: set[tuple] = set()
        added: dict[bytes, tuple] = {}  # acknowledged XADDs, cumulative
        delivered: dict[bytes, tuple] = {}  # acknowledged deliveries: ID -> (consumer, fields)
        acks: set[bytes] = set()  # acknowledged XACKs
        maybe_acked: set[bytes] = set()  # named by an XACK in flight at a kill
        reading: Counter = Counter()  # consumer -> entries its XREADGROUPs in flight at kills may have taken
        for rnd in range(rounds):
            workers = [Producer] * producers + [Consumer] * consumers
            threads = _round(keel, rnd, 0, nconns, rng.uniform(0.4, 1.0), workers=workers)
            for t in threads:
                if isinstance(t, Producer):
                    sent |= t.sent
                    added.update(t.acked)
                    continue
                assert not t.twice, f"kill {rnd + 1}: delivered twice within the round: {t.twice[:3]}"
                again = delivered.keys() & t.delivered.keys()
                assert not again, f"kill {rnd + 1}: delivered again after a restart: {sorted(again)[:3]}"
                assert not t.short_acks, f"kill {rnd + 1}: XACK of delivered entries missed some: {t.short_acks[:2]}"
                delivered.update(t.delivered)
                acks |= t.acks
                for cname, argv in t.unanswered():
                    if argv[0] == b"XACK":
                        maybe_acked.update(argv[3:])
                    else:
                        reading[cname] += 10
            keel.start()
            c = keel.client()
            try:
                entries = {i: tuple(fv) for i, fv in c.call(b"XRANGE", KEY, b"-", b"+")}
                pel = {i: cname for i, cname, _, _ in c.call(b"XPENDING", KEY, GROUP, b"-", b"+", b"1000000")}
                info = dict(zip(*[iter(c.call(b"XINFO", b"GROUPS", KEY)[0])] * 2))
            finally:
                c.close()
            lost = [i for i, fv in added.items() if entries.get(i) != fv]
            assert not lost, f"kill {rnd + 1}: {len(lost)} acknowledged XADDs lost or changed, e.g. {lost[:3]}"
            assert set(entries.values()) <= sent, f"kill {rnd + 1}: entries no producer sent"
            wrong = [i for i, (_, fv) in delivered.items() if entries.get(i) != fv]
            assert not wrong, f"kill {rnd + 1}: delivered entries not in the stream as delivered: {wrong[:3]}"
            last = _id(info[b"last-delivered-id"])
            behind = [i for i in delivered if _id(i) > last]
            assert not behind, (f"kill {rnd + 1}: the group's last-delivered-id {info[b'last-delivered-id']!r} "
                                f"is before delivered entries {behind[:3]}: '>' would deliver them again")
            back = acks & pel.keys()
            assert not back, f"kill {rnd + 1}: acknowledged XACKs back in the PEL: {sorted(back)[:3]}"
            missing = [i for i, (cname, _) in delivered.items()
                       if i not in acks and i not in maybe_acked and pel.get(i) != cname]
            assert not missing, (f"kill {rnd + 1}: {len(missing)} delivered, unacknowledged entries not in "
                                 f"their consumer's PEL, e.g. {missing[:3]}")
            strays = Counter(cname for i, cname in pel.items() if (delivered[i][0] if i in delivered else None) != cname)
            over = {cname: n for cname, n in strays.items() if n > reading[cname]}
            assert not over, (f"kill {rnd + 1}: PEL entries never delivered to their consumer, more than its "
                              f"reads in flight could take: {over}")
            assert info[b"pending"] == len(pel), f"kill {rnd + 1}: XINFO GROUPS pending != XPENDING's entries"
        assert len(added) > 200 * rounds and len(acks) > 100 * rounds, \
            "the producers and consumers did too little for the test to mean anything"
        print(f"\nstream: {rounds} kill -9 rounds, {len(added)} acknowledged XADDs, {len(delivered)} "
              f"acknowledged deliveries, {len(acks)} acknowledged XACKs")
        keel.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_stream_work_queue_survives_kill9_under_always():
    stream_rounds(rounds=4, seed=9876)


@pytest.mark.soak
def test_stream_work_queue_soak_survives_kill9_under_always():
    stream_rounds(rounds=40, seed=int(time.time()))
