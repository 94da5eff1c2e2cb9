"""Random list programs give the same replies on Keel and Redis.

A Hypothesis ``RuleBasedStateMachine`` sends each generated list command to
the shared Keel server and to a real redis-server and requires identical
replies (errors included); after every step the whole key pool must hold
the same lists. Keys come from a pool of three, one of which may hold a
string, so WRONGTYPE paths run; counts and indexes include negative, zero
and absurd values. Both servers run with ``list-max-listpack-size 4`` part
of the time, so lists cross node boundaries (and Keel's listpack/quicklist
conversions) within a few steps; OBJECT ENCODING is not compared, since the
7.0 reference always says quicklist (tests/unit/test_list_engine.py checks
7.2's conversions).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tests.support import RespClient

KEYS = ["l1", "l2", "s"]
LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)

keys = st.sampled_from(KEYS)
values = st.sampled_from(["a", "b", "c", "1", "-5", "", "x" * 70]) | st.binary(max_size=4)
indexes = st.integers(-8, 8) | st.sampled_from([LLONG_MIN, LLONG_MAX, "x"])
counts = st.integers(-3, 8) | st.sampled_from([LLONG_MIN, LLONG_MAX, "x"])
ends = st.sampled_from(["LEFT", "RIGHT", "left", "UP"])


def make_machine(keel_port: int, ref_port: int):
    keel = RespClient(keel_port)
    ref = RespClient(ref_port)

    class ListMachine(RuleBasedStateMachine):
        def check(self, *args):
            k, r = keel.call(*args), ref.call(*args)
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
            return k

        @initialize(fill=st.sampled_from(["-2", "4", "1"]))
        def start(self, fill):
            for client in (keel, ref):
                client.call("FLUSHALL")
                assert client.call("CONFIG", "SET", "list-max-listpack-size", fill) == b"OK"
                client.call("SET", "s", "string")

        @invariant()
        def contents_agree(self):
            for key in KEYS[:2]:
                self.check("LRANGE", key, 0, -1)

        @rule(key=keys, vals=st.lists(values, min_size=1, max_size=6),
              which=st.sampled_from(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]))
        def push(self, key, vals, which):
            self.check(which, key, *vals)

        @rule(key=keys, which=st.sampled_from(["LPOP", "RPOP"]), count=st.none() | counts)
        def pop(self, key, which, count):
            self.check(which, key, *([] if count is None else [count]))

        @rule(src=keys, dst=keys, a=ends, b=ends)
        def lmove(self, src, dst, a, b):
            self.check("LMOVE", src, dst, a, b)

        @rule(src=keys, dst=keys)
        def rpoplpush(self, src, dst):
            self.check("RPOPLPUSH", src, dst)

        @rule(ks=st.lists(keys, min_size=1, max_size=3), where=ends, count=st.none() | counts)
        def lmpop(self, ks, where, count):
            self.check("LMPOP", len(ks), *ks, where, *([] if count is None else ["COUNT", count]))

        @rule(key=keys, start=indexes, stop=indexes)
        def lrange(self, key, start, stop):
            self.check("LRANGE", key, start, stop)

        @rule(key=keys, index=indexes)
        def lindex(self, key, index):
            self.check("LINDEX", key, index)

        @rule(key=keys, index=indexes, value=values)
        def lset(self, key, index, value):
            self.check("LSET", key, index, value)

        @rule(key=keys, where=st.sampled_from(["BEFORE", "AFTER", "after", "MIDDLE"]), pivot=values, value=values)
        def linsert(self, key, where, pivot, value):
            self.check("LINSERT", key, where, pivot, value)

        @rule(key=keys, count=counts, value=values)
        def lrem(self, key, count, value):
            self.check("LREM", key, count, value)

        @rule(key=keys, start=indexes, stop=indexes)
        def ltrim(self, key, start, stop):
            self.check("LTRIM", key, start, stop)

        @rule(key=keys, value=values, opts=st.lists(st.sampled_from(
            [["RANK", "1"], ["RANK", "-1"], ["RANK", "2"], ["RANK", "-2"], ["RANK", "0"], ["COUNT", "0"],
             ["COUNT", "2"], ["COUNT", "-1"], ["MAXLEN", "3"], ["MAXLEN", "0"], ["MAXLEN", "-1"], ["RANK"]]),
            max_size=3))
        def lpos(self, key, value, opts):
            self.check("LPOS", key, value, *[x for o in opts for x in o])

        @rule(key=keys)
        def llen(self, key):
            self.check("LLEN", key)

    ListMachine.TestCase.settings = settings(
        max_examples=200, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return ListMachine, (keel, ref)


def test_random_list_programs_agree_with_redis(keel, redis_ref):
    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    finally:
        for client in clients:
            client.call("CONFIG", "SET", "list-max-listpack-size", "-2")
            client.close()
