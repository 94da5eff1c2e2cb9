"""Random HyperLogLog programs give byte-identical values on Keel and Redis.

A Hypothesis ``RuleBasedStateMachine`` sends each generated PFADD, PFMERGE,
PFCOUNT (one key, which writes the cached cardinality, or several, which
does not), PFDEBUG TODENSE, DEL or SET of a plain string to the shared Keel
server and to a real redis-server, requires identical replies (errors
included), and after every step compares GET of every key exactly: the
registers, the encoding and the cache bytes. Some PFADDs carry hundreds to
thousands of elements so that sparse values cross into dense, and
hll-sparse-max-bytes moves between 30, 200 and 3000 bytes on both servers so
the promotion happens at different sizes (and a value kept sparse under a
high limit meets a lower one). Every example starts from FLUSHALL.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.support import RespClient

KEYS = ["h1", "h2", "h3"]
keys = st.sampled_from(KEYS)
elements = st.lists(st.sampled_from(["a", "b", "c", "d", "", "0", "x" * 70]) | st.integers(0, 400).map(str),
                    max_size=8)


def make_machine(keel_port: int, ref_port: int):
    keel = RespClient(keel_port)
    ref = RespClient(ref_port)

    class HllMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            for side in (keel, ref):
                side.call("FLUSHALL")
                side.call("CONFIG", "SET", "hll-sparse-max-bytes", "3000")

        def check(self, *args):
            k, r = keel.call(*args), ref.call(*args)
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
            return k

        @invariant()
        def values_agree(self):
            for key in KEYS:
                self.check("GET", key)

        @rule(key=keys, items=elements)
        def pfadd(self, key, items):
            self.check("PFADD", key, *items)

        @rule(key=keys, first=st.integers(0, 5000), n=st.sampled_from([100, 400, 1200, 2500]))
        def pfadd_many(self, key, first, n):
            self.check("PFADD", key, *[f"m{i}" for i in range(first, first + n)])

        @rule(dest=keys, sources=st.lists(keys | st.just("missing"), max_size=3))
        def pfmerge(self, dest, sources):
            self.check("PFMERGE", dest, *sources)

        @rule(names=st.lists(keys | st.just("missing"), min_size=1, max_size=3))
        def pfcount(self, names):
            self.check("PFCOUNT", *names)

        @rule(key=keys)
        def todense(self, key):
            self.check("PFDEBUG", "TODENSE", key)

        @rule(key=keys)
        def delete(self, key):
            self.check("DEL", key)

        @rule(key=keys, value=st.sampled_from(["abc", "HYLL", "12345"]))
        def set_string(self, key, value):
            self.check("SET", key, value)

        @rule(limit=st.sampled_from(["30", "200", "3000"]))
        def sparse_limit(self, limit):
            self.check("CONFIG", "SET", "hll-sparse-max-bytes", limit)

    HllMachine.TestCase.settings = settings(
        max_examples=100, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return HllMachine, (keel, ref)


def test_random_hll_programs_give_the_same_bytes_as_redis(keel, redis_ref):
    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    finally:
        for client in clients:
            client.call("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
            client.close()
