"""SCAN's guarantee under any interleaving: a Hypothesis state machine runs
scans step by step on one database while keys are inserted, overwritten,
deleted and expired in bursts big enough to make the dict rebuild its table
(grow, and pack its holes), and FLUSHDB empties it. Every key present from a
scan's first call to its last must be among what the scan returned, a key
never present during the scan must not be, and every scan must end within a
bound set by the table's size when it started."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import engine.commands  # noqa: F401
from engine.dictscan import layout
from engine.keyspace import Keyspace
from engine.registry import TABLE
from engine.session import Session

SCAN = TABLE[b"scan"].handler


class ScanMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.s = Session(Keyspace())
        self.db = self.s.db
        self.next_key = 0
        self.scans: list[dict] = []  # each: cursor, present-throughout, returned, ever-present, calls, bound

    def _new_keys(self, n: int) -> None:
        for _ in range(n):
            key = b"k%d" % self.next_key
            self.next_key += 1
            self.db.set(key, b"v")
            for sc in self.scans:
                sc["ever"].add(key)

    def _forget(self, key: bytes) -> None:
        for sc in self.scans:
            sc["stable"].discard(key)

    @rule(n=st.integers(1, 400))
    def insert(self, n):
        self._new_keys(n)

    @rule(n=st.integers(1, 50))
    def overwrite(self, n):
        for key in list(self.db.data)[:n]:
            self.db.set(key, b"w")

    @rule(fraction=st.sampled_from([0.1, 0.5, 0.9, 1.0]), data=st.data())
    def delete(self, fraction, data):
        keys = list(self.db.data)
        victims = data.draw(st.lists(st.sampled_from(keys), max_size=int(len(keys) * fraction), unique=True)
                            if keys else st.just([]))
        for key in victims:
            self.db.delete(key)
            self._forget(key)

    @rule(n=st.integers(1, 20))
    def expire(self, n):
        for key in list(self.db.data)[-n:]:
            self.db.set_expire(key, 1)  # due: a lookup or the scan itself removes it
            self._forget(key)

    @rule()
    def flush(self):
        for key in self.db.data:
            self._forget(key)
        self.db.clear()

    @precondition(lambda self: len(self.scans) < 3)
    @rule(count=st.sampled_from([1, 3, 10, 100]))
    def start_scan(self, count):
        keys = set(self.db.data)
        live = keys - self.db.expires.keys()  # every TTL this machine sets is already due
        self.scans.append({"cursor": b"0", "count": count, "stable": live, "got": set(), "ever": keys,
                           "calls": 0, "bound": None})

    @precondition(lambda self: self.scans)
    @rule(data=st.data())
    def step(self, data):
        sc = data.draw(st.sampled_from(self.scans))
        if sc["bound"] is None:  # the walk starts from the end of the table as the first call finds it
            sc["bound"] = layout(self.db.data)[0] + 1
        cursor, batch = SCAN(self.s, [b"SCAN", sc["cursor"], b"COUNT", b"%d" % sc["count"]])
        sc["calls"] += 1
        sc["got"].update(batch)
        assert set(batch) <= sc["ever"], "SCAN returned a key that was never there"
        # The walk passes at least one position per call, and the table it
        # started on had bound - 1 positions: it cannot take more calls.
        assert sc["calls"] <= sc["bound"], "SCAN did not end"
        if cursor == b"0":
            missing = sc["stable"] - sc["got"]
            assert not missing, f"keys present throughout were not returned: {sorted(missing)[:5]}"
            self.scans.remove(sc)
        else:
            sc["cursor"] = cursor

    @invariant()
    def dict_matches_expires(self):
        assert self.db.expires.keys() <= self.db.data.keys()


ScanMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
TestScanGuarantee = ScanMachine.TestCase
