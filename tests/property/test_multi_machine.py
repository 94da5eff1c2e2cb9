"""A Hypothesis state machine over transactions: one client runs MULTI / EXEC /
DISCARD / WATCH / UNWATCH and data commands (some refused at queue time,
some failing at run time), a second client writes between them. Both run on
Keel and on a real redis-server; every reply must agree.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

KEYS = ["a", "b", "c"]
key = st.sampled_from(KEYS)

DATA = st.one_of(
    st.tuples(st.just("SET"), key, st.sampled_from(["1", "x", "10"])),
    st.tuples(st.just("INCR"), key),
    st.tuples(st.just("GET"), key),
    st.tuples(st.just("LPUSH"), key, st.just("v")),
    st.tuples(st.just("DEL"), key),
    st.tuples(st.just("EXPIRE"), key, st.just("1000")),
    st.tuples(st.just("PERSIST"), key),
    st.tuples(st.just("BLPOP"), key, st.just("0.01")),  # blocks 10 ms outside MULTI
    st.tuples(st.just("SELECT"), st.sampled_from(["0", "1"])),
    st.just(("NOSUCH", "x")),  # refused at queue time
    st.just(("GET",)),  # arity: refused at queue time
    st.just(("PING",)),
)

OTHER = st.one_of(
    st.tuples(st.just("SET"), key, st.just("other")),
    st.tuples(st.just("DEL"), key),
    st.tuples(st.just("RPUSH"), key, st.just("o")),
    st.tuples(st.just("EXPIRE"), key, st.just("500")),
    st.just(("FLUSHDB",)),
    st.just(("SWAPDB", "0", "1")),
    st.tuples(st.just("GET"), key),  # a read breaks nothing
)


class MultiMachine(RuleBasedStateMachine):
    keel_proc = None
    ref_proc = None

    def __init__(self):
        super().__init__()
        self.a = (self.keel_proc.client(), self.ref_proc.client())
        self.b = (self.keel_proc.client(), self.ref_proc.client())
        for c in self.a:
            c.call("FLUSHALL")

    def teardown(self):
        for c in self.a + self.b:
            c.close()

    def same(self, clients, *args):
        k, r = clients[0].call(*args), clients[1].call(*args)
        assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"

    @rule()
    def multi(self):
        self.same(self.a, "MULTI")

    @rule()
    def exec_(self):
        self.same(self.a, "EXEC")

    @rule()
    def discard(self):
        self.same(self.a, "DISCARD")

    @rule(keys=st.lists(key, min_size=1, max_size=3))
    def watch(self, keys):
        self.same(self.a, "WATCH", *keys)

    @rule()
    def unwatch(self):
        self.same(self.a, "UNWATCH")

    @rule(cmd=DATA)
    def data(self, cmd):
        self.same(self.a, *cmd)

    @rule(cmd=OTHER)
    def other(self, cmd):
        self.same(self.b, *cmd)


def test_transactions_behave_like_redis(keel, redis_ref):
    MultiMachine.keel_proc = keel
    MultiMachine.ref_proc = redis_ref
    run_state_machine_as_test(MultiMachine, settings=settings(max_examples=60, stateful_step_count=40,
                                                              deadline=None))
