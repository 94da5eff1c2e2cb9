"""The sorted set's fast paths give what the general ones give.

* ZADD of one pair (``_add_one``, and the inline form for a plain-digits
  score) against the general ``_add_generic`` path, reached by sending the
  same pair twice: same replies, resulting sets, encodings, keyspace events,
  marks on the key and whether an effect was recorded — across encodings,
  conversions, other types, TTLs and expired keys.
* ``ZSet.put`` against ``ZSet.update`` of one member.
* The listpack's member count read from its header against its decoding.
* The listpack's reads (bisecting its tuple) against the skiplist's.
* Plain-digit scores and bounds, and infinite bounds, against the parsers'
  general checks.
"""

from __future__ import annotations

import marshal

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.commands  # noqa: F401  (registers the handlers)
from engine.commands.zset import parse_bound, parse_score
from engine.errors import CommandError
from engine.keyspace import Keyspace, now_ms
from engine.reply import Raw
from engine.session import Session
from engine.types.limits import Limits
from engine.types.zset import ZSet, _count
from tests.support import run, take_effects
from tests.unit.test_notify import record

KEYS = st.sampled_from([b"z", b"y"])
MEMBERS = st.sampled_from([b"a", b"b", b"c", b"dd", b"e", b"long-member"])
DIGITS = st.integers(0, 4).map(lambda i: b"%d" % i) | st.just(b"007")
OTHER_SCORES = st.sampled_from([b"1.0", b"-1.5", b"-0", b"inf", b"-inf", b"2.5", b"+3", b"0x10"])
OPS = st.lists(st.one_of(
    st.tuples(st.just("zadd"), KEYS, DIGITS | OTHER_SCORES, MEMBERS, st.booleans()),
    st.tuples(st.just("zrem"), KEYS, MEMBERS),
    st.tuples(st.just("zpopmin"), KEYS),
    st.tuples(st.just("set"), KEYS),
    st.tuples(st.just("ttl"), KEYS),
    st.tuples(st.just("expired"), KEYS),
), max_size=40)


def _reply(fn):
    try:
        r = fn()
    except CommandError as e:
        return ("error", str(e))
    if type(r) is Raw and r[:1] == b":":
        return int(r[1:-2])
    return r


class Side:
    def __init__(self, entries: int):
        self.c = Session(Keyspace())
        self.c.ks.limits.zset_max_listpack_entries = entries
        self.c.ks.limits.zset_max_listpack_value = 4
        self.seen = record(self.c.ks)

    def do(self, argv):
        dirty = self.c.ks.dirty
        r = _reply(lambda: run(self.c, *argv))
        effects = take_effects(self.c)
        return r, len(effects), self.c.ks.dirty > dirty

    def state(self):
        out = {}
        for k in (b"z", b"y"):
            v = self.c.db.get(k)
            out[k] = v if type(v) is not ZSet else (v.encoding, v.items())
        return out


@settings(max_examples=400, deadline=None)
@given(entries=st.sampled_from([0, 2, 3, 128]), ops=OPS)
def test_zadd_of_one_pair_matches_the_general_path(entries, ops):
    fast, general = Side(entries), Side(entries)
    for op in ops:
        kind, key = op[0], op[1]
        if kind == "zadd":
            _, _, s, m, ch = op
            opt = [b"CH"] if ch else []
            got = fast.do([b"ZADD", key, *opt, s, m])
            want = general.do([b"ZADD", key, *opt, s, m, s, m])
        elif kind == "expired":
            for side in (fast, general):
                if key in side.c.db.data:
                    side.c.db.expires[key] = now_ms() - 1  # due, not yet removed
            continue
        else:
            argv = {"zrem": [b"ZREM", key, op[-1]], "zpopmin": [b"ZPOPMIN", key],
                    "set": [b"SET", key, b"x"], "ttl": [b"PEXPIRE", key, b"100000"]}[kind]
            got, want = fast.do(argv), general.do(argv)
        assert got == want, op
        assert fast.state() == general.state(), op
        assert fast.seen == general.seen, op


SCORES = st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, float("inf"), 2.0**31, -2.0**31, 1e-300])


@settings(max_examples=300, deadline=None)
@given(start=st.dictionaries(MEMBERS, SCORES, max_size=6), m=MEMBERS, s=SCORES,
       entries=st.sampled_from([0, 3, 6, 128]))
def test_put_matches_update_of_one_member(start, m, s, entries):
    limits = Limits()
    limits.zset_max_listpack_entries = entries
    limits.zset_max_listpack_value = 4
    a = ZSet([(v, k) for k, v in start.items()], limits)
    b = a.copy()
    before = a.score(m)
    got = a.put(m, s, limits)
    assert got == (None if before == s else before is None)
    if got is not None:
        b.update({m: s}, limits)
    assert (a.encoding, a.items()) == (b.encoding, b.items())
    assert all(type(x) is float for x, _ in a.pairs())
    assert a.score(m) == s and type(a.score(m)) is float


def test_the_listpack_count_is_read_from_its_header():
    for n in (0, 1, 2, 127, 128, 129, 200, 300):
        z = ZSet([(float(i), b"m%d" % i) for i in range(n)])
        assert z.encoding == "listpack"
        assert len(z) == n == len(marshal.loads(z._lp)) // 2 == _count(z._lp)


def test_integral_scores_are_packed_small_and_read_back_as_floats():
    z = ZSet([(float(i), b"m%d" % i) for i in range(10)] + [(-0.0, b"neg0"), (2.0**31, b"big"), (0.5, b"half")])
    t = marshal.loads(z._lp)
    assert sum(type(x) is int for x in t) == 11  # 0..9 and -0; 2**31 is past int32
    assert [type(s) for s, _ in z.pairs()] == [float] * 13
    assert z.score(b"m3") == 3.0 and type(z.score(b"m3")) is float
    assert z.rank(b"neg0") == (1, 0.0) and str(z.score(b"neg0")) == "0.0"
    assert all(type(s) is float for s in z.score_map().values())
    assert all(type(s) is float for s, _ in z.slice(0, 13) + z.remove_span(0, 2))


BOUNDS = st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, float("inf"), float("-inf"), 2.0**31, 0.5])
LEX = st.none() | st.just(True) | st.tuples(st.sampled_from([b"", b"a", b"b", b"c", b"dd", b"zz"]), st.booleans())


@settings(max_examples=300, deadline=None)
@given(start=st.dictionaries(MEMBERS, SCORES, min_size=1, max_size=6), lo=BOUNDS, hi=BOUNDS,
       lo_ex=st.booleans(), hi_ex=st.booleans(), lex_lo=LEX, lex_hi=LEX, m=MEMBERS)
def test_listpack_and_skiplist_answer_alike(start, lo, hi, lo_ex, hi_ex, lex_lo, lex_hi, m):
    """The listpack's reads bisect its tuple directly; the skiplist's go through Runs."""
    small = ZSet([(v, k) for k, v in start.items()])
    never = Limits()
    never.zset_max_listpack_entries = 0
    big = ZSet([(v, k) for k, v in start.items()], never)
    assert (small.encoding, big.encoding) == ("listpack", "skiplist")
    assert small.score_span(lo, lo_ex, hi, hi_ex) == big.score_span(lo, lo_ex, hi, hi_ex)
    if [x for _, x in big.pairs()] == sorted(start):  # lex ranges assume members in lex order
        for rev in (False, True):
            assert small.slice(*small.lex_span(lex_lo, lex_hi, rev)) == big.slice(*big.lex_span(lex_lo, lex_hi, rev))
    assert small.rank(m) == big.rank(m) and small.score(m) == big.score(m)
    assert small.scores([m, b"a"]) == big.scores([m, b"a"])
    n = len(big)
    for a in range(n + 1):
        assert small.slice(a, n) == big.slice(a, n) == list(big.pairs())[a:]
    # (-0 aside: a listpack keeps it as 0, as Redis's does)
    assert [(s + 0.0, x) for s, x in small.pairs()] == [(s + 0.0, x) for s, x in big.pairs()]


def _parsed(fn, b):
    try:
        return fn(b)
    except CommandError as e:
        return str(e)


@settings(max_examples=300, deadline=None)
@given(b=st.from_regex(rb"[0-9]{1,320}", fullmatch=True))
def test_plain_digits_read_as_the_general_parsers_read_them(b):
    """A score or bound of plain digits skips the checks: "+" in front takes them."""
    assert _parsed(parse_score, b) == _parsed(parse_score, b"+" + b)
    assert _parsed(parse_bound, b) == _parsed(parse_bound, b"+" + b)


def test_infinite_bounds_read_as_the_general_parser_reads_them():
    for b in (b"+inf", b"-inf", b"inf"):
        assert parse_bound(b) == parse_bound(b.upper()) == parse_bound(b" " + b)
