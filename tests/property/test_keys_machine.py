"""A Hypothesis state machine over keys and expiry: every generated command runs
on Keel and on a real redis-server, and their replies must agree.

A small key pool makes commands collide (RENAME onto an existing key, COPY
over a key with a TTL, MOVE into a database that has the key, …). Times are
chosen so that both servers must reach the same decision even though they
read their clocks a few microseconds apart: relative TTLs (150 s, 350 s) and
absolute ones (example start + 100/200/300/400 s) never tie, GT/LT are only
used with absolute times, and past times delete at once. Remaining TTLs are
compared approximately (same sign, within 2 s).
"""

from __future__ import annotations

import time

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

KEYS = ["a", "b", "c", "d"]
VALUES = ["1", "abc", "x" * 50, "-5", "", "10000"]
DBS = ["0", "1", "2"]
PATTERNS = ["*", "?", "[ab]", "[^a]*", "*c*", "d", "[a-c]"]

key = st.sampled_from(KEYS)
keys = st.lists(key, min_size=1, max_size=4)
db = st.sampled_from(DBS)
ttl = st.sampled_from([None, 100, 200, 300, 400])  # seconds after the example's start


class KeysMachine(RuleBasedStateMachine):
    keel_proc = None
    ref_proc = None

    def __init__(self):
        super().__init__()
        self.keel = self.keel_proc.client()
        self.ref = self.ref_proc.client()
        self.keel.call("FLUSHALL")
        self.ref.call("FLUSHALL")
        self.base = int(time.time())

    def teardown(self):
        self.keel.close()
        self.ref.close()

    def both(self, *args):
        return self.keel.call(*args), self.ref.call(*args)

    def same(self, *args):
        k, r = self.both(*args)
        assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
        return k

    def near(self, *args, slack):
        k, r = self.both(*args)
        if isinstance(k, int) and isinstance(r, int) and k >= 0 and r >= 0:
            assert abs(k - r) <= slack, f"{args!r}: keel {k!r} vs redis {r!r}"
        else:
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"

    # -- values --------------------------------------------------------------------
    def put(self, k, v, ttl):
        self.same("SET", k, v)
        if ttl is not None:
            self.same("EXPIREAT", k, str(self.base + ttl))

    @initialize(present=st.lists(st.tuples(db, key, st.sampled_from(VALUES), ttl), min_size=2, max_size=10))
    def populate(self, present):
        # Start with keys (some with a TTL) in place, so that commands act on something.
        for index, k, v, t in present:
            self.same("SELECT", index)
            self.put(k, v, t)
        self.same("SELECT", "0")

    @rule(k=key, v=st.sampled_from(VALUES), t=ttl)
    def set(self, k, v, t):
        self.put(k, v, t)

    @rule(ks=keys, v=st.sampled_from(VALUES), t=ttl)
    def set_several(self, ks, v, t):
        for k in ks:
            self.put(k, v, t)

    @rule(k=key)
    def get(self, k):
        self.same("GET", k)

    @rule(cmd=st.sampled_from(["DEL", "UNLINK"]), ks=keys)
    def delete(self, cmd, ks):
        self.same(cmd, *ks)

    @rule(cmd=st.sampled_from(["EXISTS", "TOUCH"]), ks=keys)
    def exists(self, cmd, ks):
        self.same(cmd, *ks)

    @rule(k=key)
    def type(self, k):
        self.same("TYPE", k)

    @rule(k=key)
    def object_encoding(self, k):
        self.same("OBJECT", "ENCODING", k)

    # -- names and databases --------------------------------------------------------
    @rule(cmd=st.sampled_from(["RENAME", "RENAMENX"]), src=key, dst=key)
    def rename(self, cmd, src, dst):
        self.same(cmd, src, dst)

    @rule(src=key, dst=key, to_db=st.none() | db, replace=st.booleans())
    def copy(self, src, dst, to_db, replace):
        args = ["COPY", src, dst]
        if to_db is not None:
            args += ["DB", to_db]
        if replace:
            args.append("REPLACE")
        self.same(*args)

    @rule(k=key, to_db=db)
    def move(self, k, to_db):
        self.same("MOVE", k, to_db)

    @rule(index=db)
    def select(self, index):
        self.same("SELECT", index)

    @rule(a=db, b=db)
    def swapdb(self, a, b):
        self.same("SWAPDB", a, b)

    @rule(pattern=st.sampled_from(PATTERNS))
    def keys(self, pattern):
        k, r = self.both("KEYS", pattern)
        assert sorted(k) == sorted(r), f"KEYS {pattern}: keel {k!r} != redis {r!r}"

    @rule(count=st.sampled_from(["1", "3", "10"]), pattern=st.sampled_from(PATTERNS))
    def scan(self, count, pattern):
        found = []
        for client in (self.keel, self.ref):
            cursor, seen = b"0", set()
            while True:
                cursor, batch = client.call("SCAN", cursor, "COUNT", count, "MATCH", pattern)
                seen.update(batch)
                if cursor == b"0":
                    break
            found.append(seen)
        assert found[0] == found[1]

    @rule()
    def randomkey(self):
        k, r = self.both("RANDOMKEY")
        assert (k is None) == (r is None)

    # -- expiry -----------------------------------------------------------------------
    @rule(k=key, seconds=st.sampled_from([-5, 0, 150, 350]), option=st.sampled_from([None, "NX", "XX"]),
          millis=st.booleans())
    def expire_relative(self, k, seconds, option, millis):
        args = ["PEXPIRE", k, str(seconds * 1000)] if millis else ["EXPIRE", k, str(seconds)]
        self.same(*args, *([option] if option else []))

    @rule(k=key, offset=st.sampled_from([None, 100, 200, 300, 400]),
          option=st.sampled_from([None, "NX", "XX", "GT", "LT", "XX GT", "XX LT"]), millis=st.booleans())
    def expire_absolute(self, k, offset, option, millis):
        when = 1 if offset is None else self.base + offset  # None: long past
        args = ["PEXPIREAT", k, str(when * 1000 + 7)] if millis else ["EXPIREAT", k, str(when)]
        self.same(*args, *(option.split() if option else []))

    @rule(k=key, cmd=st.sampled_from(["TTL", "EXPIRETIME"]))
    def ttl_seconds(self, k, cmd):
        self.near(cmd, k, slack=2)

    @rule(k=key, cmd=st.sampled_from(["PTTL", "PEXPIRETIME"]))
    def ttl_millis(self, k, cmd):
        self.near(cmd, k, slack=2000)

    @rule(k=key)
    def persist(self, k):
        self.same("PERSIST", k)

    @invariant()
    def same_contents(self):
        # The whole selected database after every step: values, TTLs, size.
        probe = [("DBSIZE",)] + [(cmd, k) for k in KEYS for cmd in ("GET", "PTTL")]
        kr, rr = self.keel.pipeline(probe), self.ref.pipeline(probe)
        for args, k, r in zip(probe, kr, rr):
            if args[0] == "PTTL" and isinstance(k, int) and isinstance(r, int) and k >= 0 and r >= 0:
                assert abs(k - r) <= 2000, f"{args!r}: keel {k!r} vs redis {r!r}"
            else:
                assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"


def test_keys_and_expiry_behave_like_redis(keel, redis_ref):
    KeysMachine.keel_proc = keel
    KeysMachine.ref_proc = redis_ref
    run_state_machine_as_test(KeysMachine, settings=settings(max_examples=100, stateful_step_count=50,
                                                             deadline=None))
