"""Random sorted set programs give the same replies on Keel and Redis.

A Hypothesis ``RuleBasedStateMachine`` sends each generated command to the
shared Keel server and to a real redis-server and requires identical replies
(errors included); after every step every key's members, scores, type and
OBJECT ENCODING must match too. The listpack limit is lowered to 8 entries so
programs cross the listpack -> skiplist conversion often, and the member pool
has a 65-byte member (past zset-max-listpack-value). Keys k1..k3 hold sorted
sets or a string (so WRONGTYPE paths run); the key ``lex`` only ever holds
members of score 0, since Redis leaves lex ranges over mixed scores
unspecified. Every example starts from FLUSHALL on both servers. A ZADD
that converts a listpack and carries a -0 score is left out: Redis 7.2 and
Keel convert first and keep the sign, 7.0 (the reference) loses it on the way.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.support import RespClient

KEYS = ["k1", "k2", "k3"]
LLONG_MIN = -(2**63)

keys = st.sampled_from(KEYS)
LONG = "x" * 65
members = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "i", "", "10", LONG])
scores = (st.integers(-5, 5).map(str)
          | st.sampled_from(["inf", "-inf", "+inf", "0.5", "-0", "1e-3", "2.5", "0x10", "abc", "nan", "1e400"])
          | st.floats(-100, 100, allow_nan=False).map(repr))
bounds = (st.integers(-6, 6).map(str) | st.integers(-6, 6).map(lambda i: f"({i}")
          | st.sampled_from(["-inf", "+inf", "(inf", "(-inf", "x", "((1", "2.5", "(0.5"]))
lex_bounds = st.sampled_from(["-", "+", "[a", "(a", "[c", "(c", "[e", "(zz", "[", "(", "a", "[10"])
ranks = st.integers(-12, 12) | st.sampled_from([LLONG_MIN, 2**63 - 1, "x"])
counts = st.integers(-2, 12) | st.sampled_from(["x", LLONG_MIN])
limits = st.sampled_from([[], ["LIMIT", "0", "3"], ["LIMIT", "1", "-1"], ["LIMIT", "2", "2"], ["LIMIT", "-1", "2"],
                          ["LIMIT", "x", "1"]])
zadd_flags = st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=3, unique=True)


def _minus_zero(score: str) -> bool:
    try:
        return str(float(score)) == "-0.0"
    except ValueError:
        return False


def _card(client, key: str) -> int:
    n = client.call("ZCARD", key)
    return n if isinstance(n, int) else 0


def make_machine(keel_port: int, ref_port: int):
    keel = RespClient(keel_port)
    ref = RespClient(ref_port)

    class ZSetMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            for side in (keel, ref):
                side.call("FLUSHALL")
                side.call("CONFIG", "SET", "zset-max-listpack-entries", "8")

        def check(self, *args, sort=False):
            k, r = keel.call(*args), ref.call(*args)
            if sort:
                k, r = sorted(k, key=repr), sorted(r, key=repr)
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
            return k

        @invariant()
        def contents_agree(self):
            for key in KEYS + ["lex"]:
                self.check("TYPE", key)
                self.check("OBJECT", "ENCODING", key)
                self.check("ZRANGE", key, "0", "-1", "WITHSCORES")

        @rule(key=keys, flags=zadd_flags, pairs=st.lists(st.tuples(scores, members), min_size=1, max_size=4))
        def zadd(self, key, flags, pairs):
            # A ZADD that turns a listpack (or a new key) into a skiplist:
            # Redis 7.2, as Keel, converts before it adds, so a -0 score
            # stays -0; 7.0 (the reference) adds pair by pair and converts
            # on the way, after the listpack has kept -0 as 0.
            assume(not (any(_minus_zero(sc) for sc, _ in pairs)
                        and ref.call("OBJECT", "ENCODING", key) != b"skiplist"
                        and (LONG in [m for _, m in pairs] or len(pairs) + _card(ref, key) > 8)))
            self.check("ZADD", key, *flags, *[x for p in pairs for x in p])

        @rule(key=keys, inc=scores, member=members)
        def zincrby(self, key, inc, member):
            self.check("ZINCRBY", key, inc, member)

        @rule(key=keys, ms=st.lists(members, min_size=1, max_size=3))
        def zrem(self, key, ms):
            self.check("ZREM", key, *ms)

        @rule(key=keys)
        def make_string(self, key):
            self.check("SET", key, "v")

        @rule(key=keys, member=members, rev=st.booleans(), withscore=st.booleans())
        def reads(self, key, member, rev, withscore):
            self.check("ZSCORE", key, member)
            self.check("ZMSCORE", key, member, "a")
            self.check("ZCARD", key)
            self.check("ZREVRANK" if rev else "ZRANK", key, member)

        @rule(key=keys, a=ranks, b=ranks, rev=st.booleans(), ws=st.booleans())
        def range_by_rank(self, key, a, b, rev, ws):
            self.check("ZRANGE", key, a, b, *(["REV"] if rev else []), *(["WITHSCORES"] if ws else []))
            self.check("ZREVRANGE", key, a, b)

        @rule(key=keys, lo=bounds, hi=bounds, rev=st.booleans(), lim=limits, ws=st.booleans())
        def range_by_score(self, key, lo, hi, rev, lim, ws):
            w = ["WITHSCORES"] if ws else []
            self.check("ZRANGE", key, lo, hi, "BYSCORE", *(["REV"] if rev else []), *lim, *w)
            self.check("ZREVRANGEBYSCORE" if rev else "ZRANGEBYSCORE", key, lo, hi, *w, *lim)
            self.check("ZCOUNT", key, lo, hi)

        @rule(member=members)
        def lex_add(self, member):
            self.check("ZADD", "lex", "0", member)

        @rule(lo=lex_bounds, hi=lex_bounds, rev=st.booleans(), lim=limits)
        def range_by_lex(self, lo, hi, rev, lim):
            self.check("ZRANGE", "lex", lo, hi, "BYLEX", *(["REV"] if rev else []), *lim)
            self.check("ZREVRANGEBYLEX" if rev else "ZRANGEBYLEX", "lex", lo, hi, *lim)
            self.check("ZLEXCOUNT", "lex", lo, hi)

        @rule(lo=lex_bounds, hi=lex_bounds)
        def remove_by_lex(self, lo, hi):
            self.check("ZREMRANGEBYLEX", "lex", lo, hi)

        @rule(key=keys, a=ranks, b=ranks)
        def remove_by_rank(self, key, a, b):
            self.check("ZREMRANGEBYRANK", key, a, b)

        @rule(key=keys, lo=bounds, hi=bounds)
        def remove_by_score(self, key, lo, hi):
            self.check("ZREMRANGEBYSCORE", key, lo, hi)

        @rule(key=keys, count=st.none() | counts, top=st.booleans())
        def pop(self, key, count, top):
            self.check("ZPOPMAX" if top else "ZPOPMIN", key, *([] if count is None else [count]))

        @rule(ks=st.lists(keys, min_size=1, max_size=3), top=st.booleans(), count=st.none() | counts)
        def zmpop(self, ks, top, count):
            self.check("ZMPOP", len(ks), *ks, "MAX" if top else "MIN", *([] if count is None else ["COUNT", count]))

        @rule(key=keys, extra=st.integers(0, 25))
        def zrandmember_all(self, key, extra):
            # A count of at least the size answers every member once, the
            # one ZRANDMEMBER reply two servers can agree on.
            card = ref.call("ZCARD", key)  # an error (WRONGTYPE) reply: both refuse alike
            count = card + extra if isinstance(card, int) else extra
            self.check("ZRANDMEMBER", key, count, "WITHSCORES", sort=True)

        @rule(op=st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), dst=keys,
              srcs=st.lists(keys, min_size=1, max_size=3), weights=st.booleans(),
              agg=st.sampled_from([[], ["AGGREGATE", "MIN"], ["AGGREGATE", "MAX"], ["AGGREGATE", "SUM"]]))
        def store(self, op, dst, srcs, weights, agg):
            opts = [] if op == "ZDIFFSTORE" else (["WEIGHTS", *["2"] * len(srcs)] if weights else []) + agg
            self.check(op, dst, len(srcs), *srcs, *opts)

        @rule(op=st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"]), srcs=st.lists(keys, min_size=1, max_size=3))
        def algebra(self, op, srcs):
            self.check(op, len(srcs), *srcs, "WITHSCORES")
            self.check("ZINTERCARD", len(srcs), *srcs, "LIMIT", "2")

        @rule(dst=keys, src=keys, lo=bounds, hi=bounds, lim=limits)
        def rangestore(self, dst, src, lo, hi, lim):
            self.check("ZRANGESTORE", dst, src, lo, hi, "BYSCORE", *lim)

    ZSetMachine.TestCase.settings = settings(
        max_examples=150, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return ZSetMachine, (keel, ref)


def test_random_sorted_set_programs_agree_with_redis(keel, redis_ref):
    machine, clients = make_machine(keel.port, redis_ref.port)
    try:
        run_state_machine_as_test(machine, settings=machine.TestCase.settings)
    finally:
        for client in clients:
            client.call("CONFIG", "SET", "zset-max-listpack-entries", "128")
            client.close()
