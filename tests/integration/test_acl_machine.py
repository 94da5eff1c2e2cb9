"""Random ACL rules give the same permissions on Keel and on redis-server.

A Hypothesis ``RuleBasedStateMachine`` applies random ACL SETUSER rule lists
(commands, categories, subcommands, first-args, key patterns with R/W
permissions, channel patterns, selectors, resets; refused ones included) to
one user on both servers and requires the same SETUSER reply; then asks
both, with ACL DRYRUN, whether the user may run random command lines (keys
and channels that match or miss, reads and writes, movable keys), and
requires the same answer. Invariant: GETUSER agrees on flags, passwords,
keys, channels and the selectors' keys and channels (the ``commands``
fields are described as given by Redis 7.2 and from the bitmap by 7.0, the
reference: tests/integration/test_acl.py compares them where they agree).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.integration.test_acl import _as72_getuser, _clean
from tests.support import Err, RespClient

USER_RULES = ["on", "off", ">pw", "nopass", "resetpass", "reset", "clearselectors"]
COMMAND_RULES = [
    "+get", "-get", "+set", "-set", "+@read", "-@read", "+@write", "-@write", "+@string", "-@string",
    "+@hash", "-@dangerous", "+@dangerous", "+@all", "-@all", "allcommands", "nocommands", "+@pubsub",
    "+client|id", "-client|id", "+client", "-client", "+select|0", "+config|get", "+@keyspace", "-del",
    "+publish", "+subscribe", "+psubscribe", "+eval", "+sort", "+copy", "+mset", "+mget", "+zunionstore",
]
KEY_RULES = ["~k*", "~k1", "%R~r*", "%W~w*", "%RW~b*", "%R~k*", "%W~k1", "~*", "allkeys", "resetkeys", "~[kr]?",
             "%R~*", "%W~*"]
CHANNEL_RULES = ["&c*", "&c1", "&*", "allchannels", "resetchannels", "&news.?"]
SELECTORS = ["(+set ~s*)", "(+@read %R~k*)", "(+publish &c*)", "(+get ~r*)", "(+@all %W~w*)"]
BAD_RULES = ["+nosuch", "%X~x", "(on)"]
# Keys and channels decide most checks: their rules come up most.
rule_ = st.one_of(st.sampled_from(KEY_RULES), st.sampled_from(KEY_RULES), st.sampled_from(CHANNEL_RULES),
                  st.sampled_from(COMMAND_RULES), st.sampled_from(USER_RULES + SELECTORS),
                  st.sampled_from(BAD_RULES) | st.sampled_from(KEY_RULES))
KEY_NAMES = ["k1", "k2", "r1", "w1", "b1", "s1", "x"]
CHANNELS = ["c1", "c2", "news.a", "x"]

keys = st.sampled_from(KEY_NAMES)
channels = st.sampled_from(CHANNELS)
COMMANDS = st.one_of(
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("set"), keys, st.just("v")),
    st.tuples(st.just("set"), keys, st.just("v"), st.just("GET")),
    st.tuples(st.just("del"), keys, keys),
    st.tuples(st.just("exists"), keys),
    st.tuples(st.just("append"), keys, st.just("v")),
    st.tuples(st.just("incr"), keys),
    st.tuples(st.just("mget"), keys, keys),
    st.tuples(st.just("mset"), keys, st.just("1"), keys, st.just("2")),
    st.tuples(st.just("copy"), keys, keys),
    st.tuples(st.just("hset"), keys, st.just("f"), st.just("v")),
    st.tuples(st.just("sort"), keys, st.just("STORE"), keys),
    st.tuples(st.just("zunionstore"), keys, st.just("2"), keys, keys),
    st.tuples(st.just("eval"), st.just("return 1"), st.just("1"), keys),
    st.tuples(st.just("publish"), channels, st.just("m")),
    st.tuples(st.just("subscribe"), channels, channels),
    st.tuples(st.just("psubscribe"), st.sampled_from(["c*", "c1", "news.?", "*"])),
    st.tuples(st.just("client"), st.sampled_from(["id", "info", "list"])),
    st.tuples(st.just("select"), st.sampled_from(["0", "1"])),
    st.tuples(st.just("config"), st.just("get"), st.just("port")),
    st.tuples(st.just("ping")),
    st.tuples(st.just("flushall")),
    st.tuples(st.just("auth"), st.just("pw")),
)


def _fields(reply) -> dict:
    d = dict(zip(reply[::2], reply[1::2]))
    d.pop(b"commands")
    d[b"selectors"] = [{k: v for k, v in zip(s[::2], s[1::2]) if k != b"commands"} for s in d[b"selectors"]]
    return d


def make_machine(keel_port: int, ref_port: int):
    keel = RespClient(keel_port)
    ref = RespClient(ref_port)

    class AclMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            for c in (keel, ref):
                _clean(c)
                # every command to start with, so that keys and channels decide most checks
                assert c.call("ACL", "SETUSER", "m", "reset", "+@all") == b"OK"

        @rule(rules=st.lists(rule_, min_size=1, max_size=5))
        def setuser(self, rules):
            k, r = keel.call("ACL", "SETUSER", "m", *rules), ref.call("ACL", "SETUSER", "m", *rules)
            assert k == r, f"SETUSER {rules}: keel {k!r} != redis {r!r}"

        @rule(cmd=COMMANDS)
        def dryrun(self, cmd):
            k, r = keel.call("ACL", "DRYRUN", "m", *cmd), ref.call("ACL", "DRYRUN", "m", *cmd)
            if isinstance(k, Err) or isinstance(r, Err):
                assert k == r, f"DRYRUN {cmd}: keel {k!r} != redis {r!r}"
            else:
                assert (k == b"OK") == (r == b"OK"), f"DRYRUN {cmd}: keel {k!r}, redis {r!r}"
                if k != b"OK":  # the same kind of refusal
                    assert k.split(b" ")[-1] == r.split(b" ")[-1], (cmd, k, r)

        @invariant()
        def same_user(self):
            k = _fields(keel.call("ACL", "GETUSER", "m"))
            r = _fields(_as72_getuser(ref.call("ACL", "GETUSER", "m")))
            assert k == r

    AclMachine.TestCase.settings = settings(
        max_examples=100, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return AclMachine, (keel, ref)


def test_random_acl_rules_agree_with_redis(keel, redis_ref):
    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    finally:
        for client in clients:
            _clean(client)
            client.close()
