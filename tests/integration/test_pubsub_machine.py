"""Random subscribe / unsubscribe / publish programs give the same frames on Keel and Redis.

A Hypothesis ``RuleBasedStateMachine`` drives three subscriber connections
(two RESP2, one RESP3) and a publisher on each server, over a few channels,
overlapping patterns and shard channels, so that channel and pattern
matches, duplicates and counts collide. After every step each subscriber's
bytes up to a PING barrier are compared: exactly where Redis's order is
fixed (confirmations of named arguments), as (names as a set, counts in
order) for UNSUBSCRIBE without arguments, and sorted after a publish (Redis
walks its patterns in dictionary order). PUBSUB's view is compared too.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from tests.integration.test_pubsub import exchange, parse
from tests.support import RespClient

CHANNELS = ["a", "b", "ab", "x.1", ""]
PATTERNS = ["a*", "?b", "x.*", "*", "[ab]", "a"]
SHARDS = ["s1", "s2", "a"]
PROTOCOLS = (2, 2, 3)

subscriber = st.integers(0, len(PROTOCOLS) - 1)
messages = st.sampled_from(["m", "", "hello world", "\r\n*1"])


def _names(pool, min_size=1):
    return st.lists(st.sampled_from(pool), min_size=min_size, max_size=4)


def make_machine(keel_port: int, ref_port: int):
    subs = [(RespClient(keel_port), RespClient(ref_port)) for _ in PROTOCOLS]
    pub = (RespClient(keel_port), RespClient(ref_port))

    class PubSubMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            for pair, proto in zip(subs, PROTOCOLS):
                for c in pair:
                    exchange(c, ["RESET"], *([["HELLO", "3"]] if proto == 3 else []))

        def frames(self, i: int, *commands):
            k, r = (exchange(c, *commands) for c in subs[i])
            return k, r

        def exact(self, i: int, *commands):
            k, r = self.frames(i, *commands)
            assert k == r, f"{commands!r}: keel {k!r} != redis {r!r}"

        @rule(i=subscriber, names=_names(CHANNELS))
        def subscribe(self, i, names):
            self.exact(i, ["SUBSCRIBE", *names])

        @rule(i=subscriber, names=_names(PATTERNS))
        def psubscribe(self, i, names):
            self.exact(i, ["PSUBSCRIBE", *names])

        @rule(i=subscriber, names=_names(SHARDS))
        def ssubscribe(self, i, names):
            self.exact(i, ["SSUBSCRIBE", *names])

        @rule(i=subscriber, command=st.sampled_from(["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]),
              names=_names(CHANNELS + PATTERNS + SHARDS))
        def unsubscribe_named(self, i, command, names):
            self.exact(i, [command, *names])

        @rule(i=subscriber, command=st.sampled_from(["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]))
        def unsubscribe_everything(self, i, command):
            k, r = (parse(raw) for raw in self.frames(i, [command]))
            assert len(k) == len(r) and k[-1] == r[-1]  # the PING barrier's reply
            k, r = k[:-1], r[:-1]
            assert sorted(f[1] or b"" for f in k) == sorted(f[1] or b"" for f in r), (k, r)
            assert [f[0::2] for f in k] == [f[0::2] for f in r], (k, r)

        @rule(channel=st.sampled_from(CHANNELS + ["x.2", "zz"]), message=messages,
              command=st.sampled_from(["PUBLISH", "PUBLISH", "SPUBLISH"]))
        def publish(self, channel, message, command):
            k, r = (c.call(command, channel, message) for c in pub)
            assert k == r, (command, channel, k, r)
            for i in range(len(subs)):
                k, r = (sorted(parse(raw), key=repr) for raw in self.frames(i))
                assert k == r, f"subscriber {i}: keel {k!r} != redis {r!r}"

        @rule()
        def introspection(self):
            for args in (["NUMSUB", *CHANNELS], ["NUMPAT"], ["SHARDNUMSUB", *SHARDS]):
                k, r = (c.call("PUBSUB", *args) for c in pub)
                assert k == r, (args, k, r)
            for args in (["CHANNELS"], ["CHANNELS", "a*"], ["SHARDCHANNELS"]):
                k, r = (sorted(c.call("PUBSUB", *args)) for c in pub)
                assert k == r, (args, k, r)

    PubSubMachine.TestCase.settings = settings(
        max_examples=150, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return PubSubMachine, [c for pair in subs + [pub] for c in pair]


def test_random_pubsub_programs_agree_with_redis(keel, redis_ref):
    from hypothesis.stateful import run_state_machine_as_test

    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    finally:
        for c in clients:
            c.close()
