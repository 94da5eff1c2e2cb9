"""Stream basics side by side with redis-server: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, XINFO STREAM.

Each script is sent line by line to Keel and to a real redis-server, and
every reply (errors included, in Redis's words) must be the same. IDs are
explicit or ``ms-*`` so that replies do not depend on the clock; ``*`` is
checked for its shape and growth. Node boundaries (``radix-tree-keys``,
``radix-tree-nodes`` in XINFO STREAM) are compared after loads that cross
``stream-node-max-entries`` and ``stream-node-max-bytes``. Effects are
checked in-process: ``*`` journals the ID it chose, ``~`` the exact trim.
"""

from __future__ import annotations

import shlex

import pytest

import engine.commands  # noqa: F401
from engine.keyspace import Keyspace
from engine.session import Session
from engine.types.stream import Stream, pack_node, unpack_node
from tests.support import Err, run, take_effects

ADD_ERRORS = """
XADD s NOMKSTREAM 1-1 a 1
XADD s MAXLEN ~ 1 LIMIT 0 1-1 a 1
XADD s MINID 10 LIMIT 5 2-1 a 1
XADD s MAXLEN 1 MINID 1 3-1 a 1
XADD t MAXLEN 5 MAXLEN 3 1-1 a 1
XTRIM s LIMIT 5
XADD s MAXLEN
XADD s 0-0 a
XADD s 5-1 a 1 b
SET str x
XADD str 0-0 a 1
XADD str 1-1 a 1
XADD str NOMKSTREAM 1-1 a 1
XADD s MAXLEN ~ -1 4-1 a 1
XADD s LIMIT -1 5-1 a 1
XADD s LIMIT x 6-1 a 1
XADD s LIMIT 5 6-1 a 1
XADD s MAXLEN ~ 1 LIMIT 5 x a 1
XADD s MAXLEN x 7-1 a 1
XADD s MINID x 7-1 a 1
XADD s MINID 5-* 7-1 a 1
XADD s FOO 7-1 a 1
XADD s 0-* a 1
XADD s 5-* a 1
XADD s 5-* a 1
XADD s 4-* a 1
XADD s 5-5-5 a 1
XADD s 5- a 1
XADD s -5 a 1
XADD s 1-a a 1
XADD s +5 a 1
XADD s 6-+1 a 1
XADD s 07-01 a 1
XADD s ' 8' a 1
XADD s '9- -3' a 1
XADD s 9--3 a 1
XADD s 18446744073709551616 a 1
XADD s 9-18446744073709551616 a 1
XADD s 18446744073709551615-18446744073709551615 a 1
XADD s 18446744073709551615-* a 1
XINFO STREAM s
"""

RANGES = """
XADD s 1-1 a 1
XADD s 1-2 a 2 b 3
XADD s 5 c 4
XADD s 5-* a 5
XADD s 7-0 a 6 b 7
XRANGE s - +
XRANGE s 5 5
XRANGE s (5 +
XRANGE s - (5-1
XRANGE s (1-1 (7
XRANGE s + -
XREVRANGE s + -
XREVRANGE s 5 -
XREVRANGE s (7 (1
XRANGE s (+ +
XRANGE s - (-
XRANGE s 5-* +
XRANGE s (18446744073709551615-18446744073709551615 +
XRANGE s - (0-0
XRANGE s - + COUNT 0
XRANGE s - + COUNT -3
XRANGE nokey - + COUNT 0
XRANGE s - + COUNT 1 COUNT 2
XREVRANGE s + - COUNT 2
XRANGE s - + COUNT
XRANGE s - + FOO 1
XRANGE s x +
SET str x
XRANGE str - +
XREVRANGE str + -
XLEN s
XLEN str
XLEN nokey
"""

DELETE_TRIM_SETID = """
XADD s 1-1 a 1
XADD s 2-1 a 2
XADD s 3-1 a 3
XADD s 4-1 a 4
XDEL s 2-1 2-1 9-9
XDEL s x
XDEL s -
XDEL nokey 1
SET str x
XDEL str 1
XINFO STREAM s
XDEL s 1-1
XINFO STREAM s
XTRIM s MAXLEN 1
XINFO STREAM s
XTRIM s MAXLEN = 1 LIMIT 1
XTRIM s MINID ~ 5 LIMIT 1
XTRIM s MINID 5-*
XTRIM s MAXLEN x
XTRIM s MINID = x
XTRIM s FOO 1
XTRIM s MAXLEN 1 2
XTRIM s MAXLEN
XTRIM nokey MAXLEN 1
XTRIM str MAXLEN 1
XTRIM s MINID 5
XINFO STREAM s
XADD s MAXLEN = 0 9-1 a 1
EXISTS s
XINFO STREAM s
XSETID str 1
XSETID s 1-*
XSETID s +
XSETID nokey 9-9
XSETID s 99-9 foo
XSETID s 99-9 ENTRIESADDED
XSETID s 99-9 ENTRIESADDED -1
XSETID s 99-9 ENTRIESADDED 5 MAXDELETEDID 100-0
XSETID s 99-9 ENTRIESADDED 500 MAXDELETEDID 0-0
XSETID s 1-1
XINFO STREAM s
XADD s 100-1 a 1
XSETID s 100-0
XSETID s 100-1 ENTRIESADDED 0
XSETID s 200-1 ENTRIESADDED 10 MAXDELETEDID 150-0
XINFO STREAM s FULL
XINFO STREAM s FULL COUNT x
XINFO STREAM s FULL COUNT -1
XINFO STREAM s FOO
XINFO STREAM s COUNT 1
XINFO STREAM s FULL COUNT
XINFO STREAM nokey
XINFO STREAM str
XINFO FOO
XINFO
XINFO STREAM
TYPE s
OBJECT ENCODING s
"""


def _script(pair, text: str) -> None:
    for line in text.strip().splitlines():
        pair.check(*shlex.split(line))


@pytest.mark.parametrize("script", [ADD_ERRORS, RANGES, DELETE_TRIM_SETID], ids=["add", "ranges", "del-trim-setid"])
def test_scripts_agree_with_redis(pair, script):
    _script(pair, script)


def test_xadd_star_ids_grow_and_follow_the_clock(k):
    ids = [k.call("XADD", "s", "*", "f", "v") for _ in range(50)]
    parsed = [tuple(map(int, i.split(b"-"))) for i in ids]
    assert parsed == sorted(set(parsed))
    assert all(ms > 1_600_000_000_000 for ms, _ in parsed)
    assert k.call("XADD", "s", "18446744073709551615-18446744073709551614", "f", "v")
    assert k.call("XADD", "s", "*", "f", "v") == b"18446744073709551615-18446744073709551615"
    assert k.call("XADD", "s", "*", "f", "v") == Err(
        "ERR The stream has exhausted the last possible ID, unable to add more items")
    k.call("XADD", "t", "5-18446744073709551615", "f", "v")
    k.call("XSETID", "t", "99999999999999-18446744073709551615")
    assert k.call("XADD", "t", "*", "f", "v") == b"100000000000000-0"


@pytest.mark.parametrize("config", [("100", "4096"), ("7", "4096"), ("0", "200"), ("3", "0")])
def test_node_boundaries_agree_with_redis(pair, config):
    entries, size = config
    for side in (pair.keel, pair.ref):
        side.call("CONFIG", "SET", "stream-node-max-entries", entries)
        side.call("CONFIG", "SET", "stream-node-max-bytes", size)
    try:
        for i in range(1, 400):
            fields = ["a", str(i), "b", "x" * (i % 37)] if i % 5 else ["other", "y" * (i % 90), "n", str(-i * 1000)]
            pair.check("XADD", "s", f"{i}-{i % 3}", *fields)
            if i % 50 == 0:
                pair.check("XDEL", "s", f"{i - 10}-{(i - 10) % 3}", f"{i - 1}-{(i - 1) % 3}")
                pair.check("XINFO", "STREAM", "s")
        pair.check("XTRIM", "s", "MAXLEN", "~", "150")
        pair.check("XINFO", "STREAM", "s")
        pair.check("XTRIM", "s", "MINID", "~", "300")
        pair.check("XINFO", "STREAM", "s")
        pair.check("XTRIM", "s", "MAXLEN", "~", "20", "LIMIT", "30")
        pair.check("XINFO", "STREAM", "s")
        pair.check("XTRIM", "s", "MAXLEN", "55")
        pair.check("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
        pair.check("XRANGE", "s", "-", "+")
        pair.check("XREVRANGE", "s", "+", "-", "COUNT", "7")
    finally:
        for side in (pair.keel, pair.ref):
            side.call("CONFIG", "SET", "stream-node-max-entries", "100")
            side.call("CONFIG", "SET", "stream-node-max-bytes", "4096")


def test_config_directives_have_redis_defaults(pair):
    k, r = pair.both("CONFIG", "GET", "stream-node-max-*")  # a map: Redis's order is its dict's
    assert dict(zip(k[::2], k[1::2])) == dict(zip(r[::2], r[1::2])) == {
        b"stream-node-max-bytes": b"4096", b"stream-node-max-entries": b"100"}
    pair.check("CONFIG", "SET", "stream-node-max-bytes", "1k")
    pair.check("CONFIG", "GET", "stream-node-max-bytes")
    pair.check("CONFIG", "SET", "stream-node-max-bytes", "4096")


# --- in-process: effects and the packed representation -------------------------------

@pytest.fixture
def c():
    return Session(Keyspace())


def test_xadd_star_journals_the_id_it_chose(c):
    i = run(c, "XADD", "s", "*", "f", "v")
    assert take_effects(c) == [[b"XADD", b"s", i, b"f", b"v"]]
    j = run(c, "XADD", "s", f"{int(i.split(b'-')[0]) + 5}-*", "f", "v")
    assert j.endswith(b"-0")
    assert take_effects(c) == [[b"XADD", b"s", j, b"f", b"v"]]


def test_nomkstream_on_a_missing_key_changes_and_journals_nothing(c):
    assert run(c, "XADD", "s", "NOMKSTREAM", "*", "f", "v") is None
    assert take_effects(c) == [] and c.db.get(b"s") is None


def test_approximate_trim_journals_the_exact_trim(c):
    for i in range(1, 251):
        run(c, "XADD", "s", f"{i}-1", "f", "v")
    take_effects(c)
    run(c, "XADD", "s", "MAXLEN", "~", "120", "300-1", "f", "v")
    assert take_effects(c) == [[b"XADD", b"s", b"MAXLEN", b"=", b"151", b"300-1", b"f", b"v"]]
    assert run(c, "XLEN", "s") == 151
    assert run(c, "XTRIM", "s", "MINID", "~", "240") == 100
    assert take_effects(c) == [[b"XTRIM", b"s", b"MINID", b"=", b"201-1"]]
    assert run(c, "XTRIM", "s", "MINID", "~", "240") == 0
    assert take_effects(c) == []
    assert run(c, "XTRIM", "s", "MAXLEN", "=", "3") == 48
    assert take_effects(c) == [[b"XTRIM", b"s", b"MAXLEN", b"=", b"3"]]
    assert run(c, "XTRIM", "s", "MINID", "~", "999") == 3
    assert take_effects(c) == [[b"XTRIM", b"s", b"MAXLEN", b"=", b"0"]]


def test_replaying_the_effects_rebuilds_the_same_stream(c):
    for i in range(300):
        run(c, "XADD", "s", "MAXLEN", "~", "150", "*", "f", str(i), *(["g", "x"] if i % 7 == 0 else []))
        if i % 11 == 0:
            run(c, "XDEL", "s", run(c, "XRANGE", "s", "-", "+", "COUNT", "1")[0][0])
    run(c, "XTRIM", "s", "MINID", "~", run(c, "XRANGE", "s", "-", "+")[80][0])
    effects = take_effects(c)
    other = Session(Keyspace())
    for argv in effects:
        run(other, *argv)
    for cmd in (("XRANGE", "s", "-", "+"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "0")):
        assert run(other, *cmd) == run(c, *cmd)


def test_failed_commands_change_nothing(c):
    run(c, "XADD", "s", "5-1", "f", "v")
    take_effects(c)
    for bad in (("XADD", "s", "5-1", "f", "v"), ("XADD", "s", "MAXLEN", "x", "*", "f", "v"),
                ("XDEL", "s", "5-1", "x"), ("XSETID", "s", "1-1"), ("XTRIM", "s", "MAXLEN", "=", "0", "LIMIT", "1")):
        with pytest.raises(Exception):
            run(c, *bad)
    assert take_effects(c) == []
    assert run(c, "XRANGE", "s", "-", "+") == [[b"5-1", [b"f", b"v"]]]


def test_packed_nodes_round_trip_mixed_layouts():
    mf = (b"a", b"b")
    ids = [(1000, 0), (1000, 1), (1002, 0), (70000 + 2**40, 2**64 - 1), (2**64 - 1, 0)]
    vals = [(b"1", b"2"), [b"x", b"y"], None, (b"", b"z" * 300), [b"a", b"1", b"b", b"2", b"c", b"3"]]
    got = unpack_node(pack_node(mf, ids, vals))
    assert got == (mf, [i for i, v in zip(ids, vals) if v is not None], [v for v in vals if v is not None])
    same = [(b"%d" % n, b"v") for n in range(100)]
    assert unpack_node(pack_node(mf, [(5, n) for n in range(100)], same))[2] == same


def test_a_packed_node_stays_small():
    s = Stream()
    for n in range(100):
        s.append((1_700_000_000_000 + n, 0), [b"name", b"user%06d" % n, b"n", b"%d" % n], 4096, 100)
    s.append((1_700_000_001_000, 0), [b"name", b"x", b"n", b"1"], 4096, 100)
    packed = s._nodes[0]
    assert type(packed) is bytes and len(packed) < 100 * 30


GENERIC = """
XADD s 1-1 a 1
XADD s 2-1 a 2 b 3
XGROUP CREATE s g 0
XREADGROUP GROUP g c COUNT 1 STREAMS s >
TYPE s
OBJECT ENCODING s
COPY s t
XRANGE t - +
XINFO GROUPS t
XADD t 3-1 a 4
XLEN s
XLEN t
RENAME t u
XRANGE u - +
EXISTS s t u
DEL s u
EXISTS s u
"""


def test_generic_key_commands_on_streams_agree_with_redis(pair):
    _script(pair, GENERIC.split("EXISTS s t u")[0])
    k, r = pair.both("SCAN", "0", "TYPE", "stream")
    assert (k[0], sorted(k[1])) == (r[0], sorted(r[1])) == (b"0", [b"s", b"u"])
    _script(pair, "EXISTS s t u" + GENERIC.split("EXISTS s t u")[1])


def test_resp3_replies_are_maps_where_redis_gives_maps(pair):
    for side in (pair.keel, pair.ref):
        side.call("HELLO", "3")
    _script(pair, """
XADD s 1-1 a 1
XADD t 1-1 b 2
XREAD STREAMS s t 0 0
XREAD STREAMS nokey 0
XINFO STREAM s
XGROUP CREATE s g 0
XREADGROUP GROUP g c STREAMS s >
XINFO GROUPS s
""")
