"""Random stream programs give the same replies on Keel and Redis.

A Hypothesis ``RuleBasedStateMachine`` sends each generated command to the
shared Keel server and to a real redis-server and requires identical replies
(errors included); after every step each key's type and XINFO STREAM FULL
must match. IDs are explicit (``ms-seq``, ``ms``, ``ms-*``) over a small
range so that programs collide, grow, trim and are refused often; ``*`` is
left out (its IDs follow each server's clock). Nodes are limited to 4
entries (and, in half the examples, 60 bytes) so programs cross node
boundaries, which ``radix-tree-keys`` and ``-nodes`` must show alike.
Groups, consumers, the PEL and claims are exercised with min-idle 0 and
absolute TIMEs, so nothing depends on the clock but the fields that are
times (idle, seen, active, delivery times), which are masked; 7.2's
``inactive`` / ``active-time`` (absent from the 7.0 reference) are dropped.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.support import RespClient
from tests.unit.test_stream_groups import _mask, _mask_info

KEYS = ["s1", "s2", "str"]
keys = st.sampled_from(KEYS)
ms = st.integers(0, 12)
ids = (st.tuples(ms, st.integers(0, 3)).map(lambda t: f"{t[0]}-{t[1]}")
       | ms.map(str) | ms.map(lambda m: f"{m}-*")
       | st.sampled_from(["0-0", "x", "-", "+", "18446744073709551615-18446744073709551615"]))
bounds = (st.tuples(ms, st.integers(0, 3)).map(lambda t: f"{t[0]}-{t[1]}") | ms.map(str)
          | ms.map(lambda m: f"({m}") | st.sampled_from(["-", "+", "(-", "x"]))
fields = st.lists(st.sampled_from(["a", "b", "c", "n", "12", ""]), min_size=1, max_size=3).map(
    lambda names: [x for i, name in enumerate(names) for x in (name, f"v{i}")])
counts = st.integers(-1, 6).map(str) | st.just("x")
groups = st.sampled_from(["g1", "g2", "nog"])
consumers = st.sampled_from(["alice", "bob", "carol"])
trims = st.one_of(
    st.just([]),
    st.tuples(st.sampled_from(["MAXLEN", "MINID"]), st.sampled_from([[], ["="], ["~"]]),
              st.integers(0, 12).map(str),
              st.sampled_from([[], ["LIMIT", "0"], ["LIMIT", "2"], ["LIMIT", "-1"]])).map(
        lambda t: [t[0], *t[1], t[2], *t[3]]),
)


def make_machine(keel_port: int, ref_port: int):
    keel = RespClient(keel_port)
    ref = RespClient(ref_port)

    class StreamMachine(RuleBasedStateMachine):
        @initialize(small_bytes=st.booleans())
        def start(self, small_bytes):
            for side in (keel, ref):
                side.call("FLUSHALL")
                side.call("CONFIG", "SET", "stream-node-max-entries", "4")
                side.call("CONFIG", "SET", "stream-node-max-bytes", "60" if small_bytes else "4096")
                side.call("SET", "str", "x")

        def check(self, *args):
            k, r = keel.call(*args), ref.call(*args)
            k, r = _mask(args, k), _mask(args, r)
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"

        @invariant()
        def contents_agree(self):
            for key in KEYS:
                self.check("TYPE", key)
                k = keel.call("XINFO", "STREAM", key, "FULL", "COUNT", "0")
                r = ref.call("XINFO", "STREAM", key, "FULL", "COUNT", "0")
                assert _mask_info(k) == _mask_info(r), f"{key}: keel {k!r} != redis {r!r}"

        @rule(key=keys, nomk=st.booleans(), trim=trims, i=ids, fv=fields)
        def xadd(self, key, nomk, trim, i, fv):
            self.check("XADD", key, *(["NOMKSTREAM"] if nomk else []), *trim, i, *fv)

        @rule(key=keys, victims=st.lists(ids, min_size=1, max_size=3))
        def xdel(self, key, victims):
            self.check("XDEL", key, *victims)

        @rule(key=keys, trim=trims)
        def xtrim(self, key, trim):
            self.check("XTRIM", key, *(trim or ["MAXLEN", "3"]))

        @rule(key=keys, lo=bounds, hi=bounds, count=st.none() | counts, rev=st.booleans())
        def xrange(self, key, lo, hi, count, rev):
            extra = [] if count is None else ["COUNT", count]
            if rev:
                self.check("XREVRANGE", key, hi, lo, *extra)
            else:
                self.check("XRANGE", key, lo, hi, *extra)

        @rule(key=keys, i=ids, added=st.none() | st.integers(-1, 20), maxdel=st.none() | ids)
        def xsetid(self, key, i, added, maxdel):
            extra = ([] if added is None else ["ENTRIESADDED", str(added)]) + \
                    ([] if maxdel is None else ["MAXDELETEDID", maxdel])
            self.check("XSETID", key, i, *extra)

        @rule(key=keys, group=groups, i=st.sampled_from(["$", "0", "3-1", "x"]), mk=st.booleans(),
              er=st.none() | st.integers(-1, 5))
        def xgroup_create(self, key, group, i, mk, er):
            extra = (["MKSTREAM"] if mk else []) + ([] if er is None else ["ENTRIESREAD", str(er)])
            self.check("XGROUP", "CREATE", key, group, i, *extra)

        @rule(key=keys, group=groups, i=st.sampled_from(["$", "0", "2-0", "5", "-", "+"]), er=st.none() | st.integers(-1, 5))
        def xgroup_setid(self, key, group, i, er):
            self.check("XGROUP", "SETID", key, group, i, *([] if er is None else ["ENTRIESREAD", str(er)]))

        @rule(key=keys, group=groups, cname=consumers, op=st.sampled_from(["CREATECONSUMER", "DELCONSUMER"]))
        def xgroup_consumer(self, key, group, cname, op):
            self.check("XGROUP", op, key, group, cname)

        @rule(key=keys, group=groups)
        def xgroup_destroy(self, key, group):
            self.check("XGROUP", "DESTROY", key, group)

        @rule(key=keys, group=groups, cname=consumers, count=st.none() | counts, noack=st.booleans(),
              start=st.sampled_from([">", ">", "0", "3-0", "$"]))
        def xreadgroup(self, key, group, cname, count, noack, start):
            extra = ([] if count is None else ["COUNT", count]) + (["NOACK"] if noack else [])
            self.check("XREADGROUP", "GROUP", group, cname, *extra, "STREAMS", key, start)

        @rule(key=keys, start=bounds.filter(lambda b: b[:1] != "(" and b != "+") | st.just("$"), count=st.none() | counts)
        def xread(self, key, start, count):
            self.check("XREAD", *([] if count is None else ["COUNT", count]), "STREAMS", key, start)

        @rule(key=keys, group=groups, acked=st.lists(ids, min_size=1, max_size=3))
        def xack(self, key, group, acked):
            self.check("XACK", key, group, *acked)

        @rule(key=keys, group=groups, extended=st.booleans(), lo=bounds, hi=bounds, count=counts,
              cname=st.none() | consumers)
        def xpending(self, key, group, extended, lo, hi, count, cname):
            if not extended:
                self.check("XPENDING", key, group)
            else:
                self.check("XPENDING", key, group, lo, hi, count, *([] if cname is None else [cname]))

        @rule(key=keys, group=groups, cname=consumers, claimed=st.lists(ids, min_size=1, max_size=3),
              opts=st.lists(st.sampled_from([["JUSTID"], ["FORCE"], ["RETRYCOUNT", "5"], ["TIME", "1000"],
                                             ["LASTID", "6-0"], ["RETRYCOUNT", "-1"]]), max_size=3))
        def xclaim(self, key, group, cname, claimed, opts):
            self.check("XCLAIM", key, group, cname, "0", *claimed, *[x for o in opts for x in o])

        @rule(key=keys, group=groups, cname=consumers, start=bounds, count=st.none() | st.integers(0, 4),
              justid=st.booleans())
        def xautoclaim(self, key, group, cname, start, count, justid):
            extra = ([] if count is None else ["COUNT", str(count)]) + (["JUSTID"] if justid else [])
            self.check("XAUTOCLAIM", key, group, cname, "0", start, *extra)

        @rule(key=keys, group=groups)
        def xinfo(self, key, group):
            self.check("XINFO", "STREAM", key)
            self.check("XINFO", "GROUPS", key)
            self.check("XINFO", "CONSUMERS", key, group)
            self.check("XLEN", key)

    StreamMachine.TestCase.settings = settings(
        max_examples=30, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return StreamMachine, (keel, ref)


def test_random_stream_programs_agree_with_redis(keel, redis_ref):
    from hypothesis.stateful import run_state_machine_as_test

    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    finally:
        for client in clients:
            client.call("CONFIG", "SET", "stream-node-max-entries", "100")
            client.call("CONFIG", "SET", "stream-node-max-bytes", "4096")
            client.close()
