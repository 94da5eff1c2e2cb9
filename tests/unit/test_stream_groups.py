"""Consumer groups side by side with redis-server: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS/CONSUMERS.

Scripts are sent line by line to both servers; replies must match, errors
in Redis's words. Fields that are times (XPENDING's idle, XINFO's idle and
delivery times) are masked, as a millisecond may pass between the two
servers. Redis 7.2 adds ``inactive`` to XINFO CONSUMERS and ``active-time``
to XINFO STREAM FULL's consumers, which the 7.0 reference lacks: they are
dropped from Keel's reply before comparing, and checked on their own.
Effects are checked in-process: replaying what XREADGROUP, XCLAIM and
XAUTOCLAIM journal rebuilds the same groups, PEL and consumers.
"""

from __future__ import annotations

import shlex

import pytest

import engine.commands  # noqa: F401
from engine.keyspace import Keyspace
from engine.session import Session
from engine.reply import NULL_ARRAY
from tests.support import run, take_effects

GROUPS = """
XGROUP CREATE s g $
XGROUP CREATE s g $ MKSTREAM
XGROUP CREATE s g $ MKSTREAM
XADD s 1-1 a 1
XADD s 2-1 a 2
XADD s 3-1 a 3
XGROUP CREATE s g2 $
XGROUP CREATE s g3 0
XGROUP CREATE s g4 2-1
XGROUP CREATE s g5 - ENTRIESREAD -2
XGROUP CREATE s g5 + ENTRIESREAD -1
XGROUP CREATE s g5 - ENTRIESREAD -1
XGROUP CREATE s g6 1 ENTRIESREAD 1 FOO
XGROUP CREATE s g7 $ ENTRIESREAD 2
XGROUP CREATE s g8 x
XGROUP CREATE nokey g8 x
SET str x
XGROUP CREATE str g $
XINFO GROUPS s
XINFO GROUPS nokey
XINFO GROUPS str
XGROUP SETID s nog 0
XGROUP SETID nokey g 0
XGROUP SETID s g +
XGROUP SETID s g -
XGROUP SETID s g x
XGROUP SETID s g 0 ENTRIESREAD x
XGROUP SETID s g 0 FOO
XGROUP SETID s g 1-1 ENTRIESREAD 1
XINFO GROUPS s
XGROUP DESTROY s nog
XGROUP DESTROY nokey g
XGROUP DESTROY s g7
XGROUP CREATECONSUMER s nog c
XGROUP CREATECONSUMER nokey g c
XGROUP CREATECONSUMER s g c
XGROUP CREATECONSUMER s g c
XGROUP DELCONSUMER s nog c
XGROUP DELCONSUMER s g c
XGROUP DELCONSUMER s g c
XGROUP FOO
XGROUP
XINFO GROUPS s
"""

READS = """
XADD s 1-1 a 1
XADD s 2-1 a 2 b 3
XADD s 3-1 a 3
XGROUP CREATE s g 0
XGROUP CREATE s g2 $
XREADGROUP GROUP nog c STREAMS s >
XREADGROUP GROUP g c STREAMS nokey >
XREADGROUP GROUP g c STREAMS s $
XREADGROUP GROUP g c STREAMS s
XREADGROUP COUNT 1 STREAMS s >
XREADGROUP GROUP g
XREADGROUP GROUP g c COUNT 1 BLOCK 1
XREADGROUP GROUP g c COUNT x STREAMS s >
XREADGROUP GROUP g c BLOCK -1 STREAMS s >
XREAD STREAMS s >
XREAD STREAMS s
XREAD COUNT 1 STREAMS s 0
XREAD COUNT -5 STREAMS s 0
XREAD FOO STREAMS s 0
XREAD BLOCK x STREAMS s 0
XREAD STREAMS s nokey 0 0
XREAD STREAMS s s 0 2-1
XREAD STREAMS s $
XREAD STREAMS s x
SET str x
XREAD STREAMS str 0
XREADGROUP GROUP g c STREAMS str >
XREADGROUP GROUP g c COUNT 2 STREAMS s >
XINFO GROUPS s
XREADGROUP GROUP g c STREAMS s s > >
XREADGROUP GROUP g c STREAMS s >
XREADGROUP GROUP g c STREAMS s 0
XREADGROUP GROUP g c COUNT 1 STREAMS s 1-1
XREADGROUP GROUP g d STREAMS s 0
XREADGROUP GROUP g2 c NOACK STREAMS s >
XADD s 4-1 a 4
XREADGROUP GROUP g2 c NOACK STREAMS s >
XPENDING s g2
XDEL s 2-1
XREADGROUP GROUP g c STREAMS s 0
XINFO GROUPS s
XACK s g 1-1 1-1 9-9
XACK s g x
XACK s nog 1-1
XACK nokey g 1-1
XACK str g 1-1
XPENDING s g
XINFO GROUPS s
"""

PENDING_CLAIMS = """
XADD s 1-1 a 1
XADD s 2-1 a 2
XADD s 3-1 a 3
XADD s 4-1 a 4
XGROUP CREATE s g 0
XREADGROUP GROUP g c COUNT 3 STREAMS s >
XPENDING s nog
XPENDING nokey g
XPENDING s g
XPENDING s g - + x
XPENDING s g - + -1
XPENDING s g - +
XPENDING s g -
XPENDING s g IDLE x - + 10
XPENDING s g IDLE 0 - + 10 nosuch
XPENDING s g IDLE 5 - + 10 c extra
XPENDING s g (1-1 + 10 c
XPENDING s g - (3-1 1
XCLAIM s nog c 0 1-1
XCLAIM s nog c x 1-1
XCLAIM s g d x 1-1
XCLAIM s g d 0 1-1 IDLE x
XCLAIM s g d 0 1-1 TIME x
XCLAIM s g d 0 1-1 RETRYCOUNT x
XCLAIM s g d 0 1-1 FOO
XCLAIM s g d 0 1-1 LASTID x
XCLAIM s g d -5 1-1 JUSTID
XCLAIM s g e 100000 2-1
XCLAIM s g d 0 2-1 RETRYCOUNT 7 JUSTID
XCLAIM s g d 0 2-1 RETRYCOUNT -3
XCLAIM s g d 0 4-1 FORCE
XCLAIM s g d 0 9-1 FORCE
XCLAIM s g d 0 3-1 LASTID 8-0 JUSTID
XCLAIM s g d 0 9-9 LASTID 9-0
XINFO GROUPS s
XPENDING s g
XAUTOCLAIM s nog c 0 0
XAUTOCLAIM s nog c x 0
XAUTOCLAIM s nog c 0 x
XAUTOCLAIM s g c 0 0 COUNT 0
XAUTOCLAIM s g c 0 0 COUNT x
XAUTOCLAIM s g c 0 0 FOO
XAUTOCLAIM s g c 99999999 0
XAUTOCLAIM s g c 0 0 COUNT 2 JUSTID
XAUTOCLAIM s g c 0 (2-1 COUNT 1
XDEL s 3-1
XAUTOCLAIM s g c 0 - COUNT 1
XAUTOCLAIM s g f 0 - JUSTID
XPENDING s g
XGROUP DELCONSUMER s g f
XPENDING s g
XINFO STREAM s
"""

_TIMES = {b"idle", b"seen-time", b"active-time", b"inactive"}


def _mask(args, reply):
    """Take the clock out of a reply (see the module docstring)."""
    if isinstance(reply, Exception) or reply is None:
        return reply
    words = [a.upper() for a in args]
    if words[0] == "XPENDING" and len(args) > 3 and isinstance(reply, list):
        return [[e[0], e[1], None, e[3]] for e in reply]
    if words[0] == "XINFO":
        return _mask_info(reply)
    return reply


def _mask_info(v):
    """XINFO's reply without times: idle and seen times, and each pending entry's delivery time."""
    if isinstance(v, dict):
        return _mask_info([x for kv in v.items() for x in kv])
    if isinstance(v, list):
        out = []
        skip = False
        for j, x in enumerate(v):
            if skip:
                skip = False
                continue
            if isinstance(x, bytes) and j % 2 == 0 and j + 1 < len(v):
                if x in (b"inactive", b"active-time"):
                    skip = True  # 7.2's fields, not in the reference
                    continue
                if x in _TIMES:
                    out.extend([x, None])
                    skip = True
                    continue
                if x == b"pending" and isinstance(v[j + 1], list):
                    out.extend([x, [[*e[:-2], None, e[-1]] for e in v[j + 1]]])
                    skip = True
                    continue
            out.append(_mask_info(x))
        return out
    return v


def _script(pair, text: str) -> None:
    for line in text.strip().splitlines():
        args = shlex.split(line)
        k, r = pair.both(*args)
        assert _mask(args, k) == _mask(args, r), f"{args!r}: keel {k!r} != redis {r!r}"


@pytest.mark.parametrize("script", [GROUPS, READS, PENDING_CLAIMS], ids=["xgroup", "reads", "pending-claims"])
def test_scripts_agree_with_redis(pair, script):
    _script(pair, script)


def test_full_info_with_groups_agrees_with_redis(pair):
    _script(pair, PENDING_CLAIMS)
    for count in ("0", "1", "2"):
        args = ("XINFO", "STREAM", "s", "FULL", "COUNT", count)
        k, r = pair.both(*args)
        assert _mask(args, k) == _mask(args, r)


def test_xinfo_consumers_gives_72s_inactive(k):
    k.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    k.call("XGROUP", "CREATECONSUMER", "s", "g", "idle")
    k.call("XADD", "s", "1-1", "f", "v")
    k.call("XREADGROUP", "GROUP", "g", "busy", "STREAMS", "s", ">")
    got = {c[1]: dict(zip(c[::2], c[1::2])) for c in k.call("XINFO", "CONSUMERS", "s", "g")}
    assert got[b"idle"][b"inactive"] == -1
    assert 0 <= got[b"busy"][b"inactive"] < 1000 and got[b"busy"][b"pending"] == 1
    full = k.call("XINFO", "STREAM", "s", "FULL")
    consumers = dict(zip(full[::2], full[1::2]))[b"groups"][0][-1]
    active = {c[1]: dict(zip(c[::2], c[1::2]))[b"active-time"] for c in consumers}
    assert active[b"idle"] == -1 and active[b"busy"] > 1_600_000_000_000


# --- in-process: effects -------------------------------------------------------------

@pytest.fixture
def c():
    return Session(Keyspace())


def _state(c):
    full = run(c, "XINFO", "STREAM", "s", "FULL", "COUNT", "0")
    return _mask_info(full)


def test_group_effects_replay_to_the_same_groups_and_pel(c):
    run(c, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    run(c, "XGROUP", "CREATE", "s", "h", "$")
    for i in range(1, 40):
        run(c, "XADD", "s", f"{i}-1", "f", str(i))
    run(c, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "10", "STREAMS", "s", ">")
    run(c, "XREADGROUP", "GROUP", "g", "bob", "COUNT", "5", "STREAMS", "s", ">")
    run(c, "XREADGROUP", "GROUP", "h", "carol", "NOACK", "COUNT", "7", "STREAMS", "s", ">")
    run(c, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", "0")
    run(c, "XACK", "s", "g", "2-1", "3-1")
    run(c, "XDEL", "s", "5-1", "12-1")
    run(c, "XCLAIM", "s", "g", "bob", "0", "1-1", "4-1", "5-1", "RETRYCOUNT", "9")
    run(c, "XCLAIM", "s", "g", "dave", "0", "30-1", "FORCE", "LASTID", "35-1")
    run(c, "XAUTOCLAIM", "s", "g", "erin", "0", "-", "COUNT", "4")
    run(c, "XGROUP", "CREATECONSUMER", "s", "h", "frank")
    run(c, "XGROUP", "SETID", "s", "h", "20-1", "ENTRIESREAD", "20")
    effects = take_effects(c)
    other = Session(Keyspace())
    for argv in effects:
        run(other, *argv)
    assert _state(other) == _state(c)
    for cmd in (("XPENDING", "s", "g", "-", "+", "100"), ("XINFO", "GROUPS", "s")):
        assert _mask(cmd, run(other, *cmd)) == _mask(cmd, run(c, *cmd))


def test_xreadgroup_journals_a_claim_per_entry_and_the_last_id(c):
    run(c, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    run(c, "XADD", "s", "1-1", "f", "v")
    run(c, "XADD", "s", "2-1", "f", "v")
    take_effects(c)
    run(c, "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    eff = take_effects(c)
    assert eff[0] == [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c"]
    assert [e[:6] for e in eff[1:3]] == [[b"XCLAIM", b"s", b"g", b"c", b"0", b"1-1"],
                                         [b"XCLAIM", b"s", b"g", b"c", b"0", b"2-1"]]
    assert eff[3] == [b"XGROUP", b"SETID", b"s", b"g", b"2-1", b"ENTRIESREAD", b"2"]
    assert run(c, "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">") is NULL_ARRAY
    assert take_effects(c) == []  # nothing delivered, nothing journaled


# --- the PEL's index ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_id_index_behaves_as_a_sorted_dict(seed):
    """Random inserts (at the end and in the middle), removals at the front and anywhere:
    IdIndex agrees with a dict kept sorted, and never holds more than about twice its
    live IDs in slots."""
    import random

    from engine.types.stream_group import IdIndex

    rng = random.Random(seed)
    ix, ref = IdIndex(), {}
    for _ in range(3000):
        op = rng.random()
        i = (rng.randrange(0, 80), rng.randrange(0, 3))
        if op < 0.5:
            v = rng.random()
            ix[i] = v
            ref[i] = v
        elif op < 0.7 and ref:
            first = min(ref)
            assert ix.pop(first) == ref.pop(first)
        else:
            assert ix.pop(i) == ref.pop(i, None)
        keys = sorted(ref)
        assert list(ix.items()) == [(k, ref[k]) for k in keys] and len(ix) == len(ref)
        lo, hi = sorted([(rng.randrange(0, 80), 0), (rng.randrange(0, 80), 2)])
        assert list(ix.irange(lo, hi)) == [k for k in keys if lo <= k <= hi]
        assert ix.first() == (keys[0] if keys else None) and ix.last() == (keys[-1] if keys else None)
        assert len(ix.order) - ix.head <= 2 * len(ix) + 40
