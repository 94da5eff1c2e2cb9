"""Lists in the engine: Redis 7.2's encodings and conversion points, effects, costs.

OBJECT ENCODING of a list differs between the 7.0 run side by side (always
``quicklist``) and 7.2 (``listpack`` while one node holds it), so the
conversions are checked here against 7.2's documented rules: a listpack
becomes a quicklist when its listpack bytes plus the new elements' lengths
pass ``list-max-listpack-size`` (-2: 8 KB; a positive n: n entries), and a
quicklist shrinks back to a listpack when one packed node of at most half
that is left.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

import engine.commands  # noqa: F401
from engine import errors
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.session import Session
from engine.reply import Raw
from engine.types.list import List
from engine.types.list_quicklist import entry_size
from tests.support import run, take_effects


@pytest.fixture
def c():
    return Session(Keyspace())


def num(reply) -> int:
    """An integer reply as an int (small ones come pre-encoded)."""
    return int(reply[1:-2]) if isinstance(reply, Raw) else reply


def enc(c, key="l"):
    return run(c, "OBJECT", "ENCODING", key)


def lrange(c, key="l"):
    return run(c, "LRANGE", key, 0, -1)


def test_entry_sizes_are_listpack_sizes():
    assert [entry_size(v) for v in (b"0", b"127", b"128", b"-4096", b"4095", b"32767", b"8388607",
                                    b"2147483647", b"9223372036854775807", b"007", b"-0", b"")] == \
        [2, 2, 3, 3, 3, 4, 5, 6, 10, 5, 4, 2]
    assert entry_size(b"x" * 63) == 65 and entry_size(b"x" * 64) == 67 and entry_size(b"x" * 200) == 204


def test_listpack_becomes_quicklist_past_8kb_and_back_under_4kb(c):
    v = "v" * 100  # 103 bytes as an entry
    for _ in range(79):
        run(c, "RPUSH", "l", v)
    assert enc(c) == b"listpack"  # 7 + 79 * 103 = 8144, + 100 > 8192 for the next
    run(c, "RPUSH", "l", v)
    assert enc(c) == b"quicklist"
    run(c, "RPOP", "l")  # the second node goes; one node of 79 entries, 8144 bytes
    assert enc(c) == b"quicklist"
    run(c, "LPOP", "l", 39)  # 40 left: 4127 bytes > 4096
    assert enc(c) == b"quicklist"
    run(c, "LPOP", "l")  # 39 left: 4024 bytes
    assert enc(c) == b"listpack"
    assert num(run(c, "LLEN", "l")) == 39


def test_one_push_of_many_converts_before_it_adds(c):
    run(c, "RPUSH", "l", *["x" * 100] * 82)
    assert enc(c) == b"quicklist"
    run(c, "RPUSH", "m", *["x" * 100] * 79)
    assert enc(c, "m") == b"listpack"


def test_positive_fill_counts_entries(c):
    c.ks.limits.list_max_listpack_size = 4
    run(c, "RPUSH", "l", "a", "b", "c", "d")
    assert enc(c) == b"listpack"
    run(c, "RPUSH", "l", "e")
    assert enc(c) == b"quicklist"
    run(c, "LPOP", "l")  # nodes [b c d] [e]: two nodes, stays
    assert enc(c) == b"quicklist"
    run(c, "LPOP", "l", 3)  # one node of one entry <= 4 / 2
    assert enc(c) == b"listpack"
    assert lrange(c) == [b"e"]


def test_a_large_element_gets_its_own_plain_node(c):
    run(c, "RPUSH", "l", "a", "x" * 20000)
    assert enc(c) == b"quicklist"
    lst = c.db.data[b"l"]
    assert [plain for plain, _ in lst.nodes()] == [False, True]
    run(c, "LPOP", "l")
    assert enc(c) == b"quicklist"  # a plain node never becomes a listpack
    run(c, "RPUSH", "l", "b")
    assert lrange(c) == [b"x" * 20000, b"b"]


def test_lset_and_linsert_grow_check_happens_even_when_nothing_is_changed(c):
    run(c, "RPUSH", "l", "a")
    with pytest.raises(CommandError) as e:
        run(c, "LSET", "l", 5, "x" * 9000)
    assert e.value.text == errors.INDEX_OUT_OF_RANGE
    assert enc(c) == b"quicklist"  # as 7.2: converted before the index is tried
    run(c, "RPUSH", "m", "a")
    assert run(c, "LINSERT", "m", "BEFORE", "zz", "x" * 9000) == -1
    assert enc(c, "m") == b"quicklist"
    assert lrange(c, "m") == [b"a"]


def test_lrem_ltrim_lset_shrink_back(c):
    for cmd in (("LREM", "l", 0, "x" * 100), ("LTRIM", "l", 0, 2), ("LSET", "l", 0, "s")):
        run(c, "DEL", "l")
        run(c, "RPUSH", "l", *["x" * 100] * 100)
        run(c, "RPUSH", "l", "keep")
        run(c, "LTRIM", "l", 60, -1)  # the tail node's few elements and 40 of the head's
        before = enc(c)
        run(c, *cmd)
        assert before == b"quicklist" or cmd[0] != "LTRIM"
    assert enc(c) in (b"listpack", b"quicklist")
    run(c, "DEL", "l")
    run(c, "RPUSH", "l", *["x" * 100] * 100)
    run(c, "LREM", "l", 0, "x" * 100)
    assert num(run(c, "EXISTS", "l")) == 0


def test_middle_edits_keep_nodes_within_their_limit(c):
    run(c, "RPUSH", "l", *[f"e{i}" for i in range(5000)])
    for i in range(0, 5000, 37):
        run(c, "LINSERT", "l", "AFTER", f"e{i}", "y" * 50)
        run(c, "LSET", "l", i, "z" * 60)
    lst = c.db.data[b"l"]
    q = lst._v
    assert all(node.sz <= 8192 + 200 for node in q.nodes)
    assert sum(node.count for node in q.nodes) == q.count == num(run(c, "LLEN", "l"))
    assert all(type(node.data) is bytes for node in list(q.nodes)[1:-1])
    assert len(lst.elements()) == q.count


def test_effects_are_as_sent_and_only_for_changes(c):
    run(c, "RPUSH", "l", "a", "b", "c", "d")
    run(c, "LPUSHX", "missing", "x")
    run(c, "LPOP", "missing")
    run(c, "LPOP", "l", 0)
    run(c, "LREM", "l", 0, "zz")
    run(c, "LTRIM", "l", 0, -1)
    run(c, "LINSERT", "l", "BEFORE", "zz", "x")
    run(c, "LMOVE", "missing", "l", "LEFT", "LEFT")
    assert take_effects(c) == [[b"RPUSH", b"l", b"a", b"b", b"c", b"d"]]
    run(c, "LPOP", "l")
    run(c, "RPOP", "l", 1)
    run(c, "LMOVE", "l", "m", "LEFT", "RIGHT")
    run(c, "RPOPLPUSH", "m", "m")
    run(c, "LSET", "m", 0, "z")
    run(c, "LTRIM", "m", 1, -1)
    assert take_effects(c) == [[b"LPOP", b"l"], [b"RPOP", b"l", b"1"], [b"LMOVE", b"l", b"m", b"LEFT", b"RIGHT"],
                               [b"RPOPLPUSH", b"m", b"m"], [b"LSET", b"m", b"0", b"z"], [b"LTRIM", b"m", b"1", b"-1"]]
    assert lrange(c) == [b"c"] and num(run(c, "EXISTS", "m")) == 0  # LTRIM emptied m: deleted


def test_lmpop_journals_the_concrete_pop(c):
    run(c, "RPUSH", "b", "1", "2", "3")
    take_effects(c)
    assert run(c, "LMPOP", 2, "a", "b", "RIGHT", "COUNT", 10) == [b"b", [b"3", b"2", b"1"]]
    assert take_effects(c) == [[b"RPOP", b"b", b"3"]]
    assert num(run(c, "EXISTS", "b")) == 0


def test_replaying_the_effects_rebuilds_the_same_lists(c):
    import random
    rnd = random.Random(7)
    for _ in range(3000):
        key = rnd.choice(["a", "b"])
        op = rnd.randrange(8)
        val = rnd.choice(["x", "y", "1", "z" * 300])
        try:
            if op == 0:
                run(c, "RPUSH", key, *[val] * rnd.randrange(1, 40))
            elif op == 1:
                run(c, "LPUSH", key, val)
            elif op == 2:
                run(c, "LMPOP", 2, "a", "b", rnd.choice(["LEFT", "RIGHT"]), "COUNT", rnd.randrange(1, 30))
            elif op == 3:
                run(c, "LMOVE", key, rnd.choice(["a", "b"]), "LEFT", "RIGHT")
            elif op == 4:
                run(c, "LREM", key, rnd.randrange(-3, 3), val)
            elif op == 5:
                run(c, "LINSERT", key, "AFTER", val, "ins")
            elif op == 6:
                run(c, "LSET", key, rnd.randrange(-50, 50), val)
            else:
                run(c, "LTRIM", key, rnd.randrange(0, 5), -rnd.randrange(1, 5))
        except CommandError:
            pass
    effects = take_effects(c)
    replica = Session(Keyspace())
    for argv in effects:
        run(replica, *argv)
    for key in (b"a", b"b"):
        mine, theirs = c.db.data.get(key), replica.db.data.get(key)
        assert (mine is None) == (theirs is None)
        if mine is not None:
            assert mine.elements() == theirs.elements()
            assert not mine.empty()


def test_every_change_marks_the_key(c):
    seen = []
    c.ks.watchers.append(lambda db, key: seen.append(key))
    run(c, "RPUSH", "l", "a", "b", "c")
    for cmd in (("LPUSH", "l", "x"), ("LPOP", "l"), ("LSET", "l", 0, "q"), ("LINSERT", "l", "AFTER", "q", "w"),
                ("LREM", "l", 1, "w"), ("LTRIM", "l", 0, 0), ("LMOVE", "l", "m", "LEFT", "LEFT")):
        seen.clear()
        run(c, *cmd)
        assert b"l" in seen, cmd
    assert num(run(c, "EXISTS", "l")) == 0


def test_copy_is_independent(c):
    for n in (3, 3000):
        lst = List([b"e%d" % i for i in range(n)], -2)
        dup = lst.copy()
        dup.push([b"new"], True, -2)
        dup.set(n // 2, b"changed", -2)
        assert lst.elements() == [b"e%d" % i for i in range(n)]
        assert dup.index(0) == b"new"


def _per_call(c, argv, n=20000):
    t = time.perf_counter()
    for _ in range(n):
        run(c, *argv)
    return (time.perf_counter() - t) / n


def test_push_and_pop_cost_the_same_on_a_million_elements():
    small, big = Session(Keyspace()), Session(Keyspace())
    run(small, "RPUSH", "l", *[f"v{i}" for i in range(10)])
    for i in range(0, 1_000_000, 10_000):
        run(big, "RPUSH", "l", *[f"v{j}" for j in range(i, i + 10_000)])
    times = {}
    for name, s in (("small", small), ("big", big)):
        best = float("inf")
        for _ in range(3):
            t = _per_call(s, ("LPUSH", "l", "x"), 5000) + _per_call(s, ("RPOP", "l"), 5000)
            best = min(best, t)
        times[name] = best
    assert times["big"] < 2 * times["small"], times


def test_a_ten_element_list_costs_under_720_bytes_a_key():
    ks = Keyspace()
    c = Session(ks)
    values = [f"value:{i}" for i in range(10)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(20000):
        run(c, "RPUSH", f"key:{i:08d}", *values)
    ks.effects.clear()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert (after - before) / 20000 < 720


def _check_structure(lst: List) -> None:
    v = lst._v
    if type(v) is bytes:
        assert lst._sz == 7 + sum(map(entry_size, lst.elements()))
        return
    nodes = list(v.nodes)
    assert nodes and all(node.count for node in nodes)
    assert sum(node.count for node in nodes) == v.count
    for i, node in enumerate(nodes):
        items = node.peek()
        assert len(items) == node.count
        if node.plain:
            assert node.count == 1 and node.sz == len(items[0])
        else:
            assert node.sz == 7 + sum(map(entry_size, items))
        if 0 < i < len(nodes) - 1:
            assert type(node.data) is bytes, "an inner node left unpacked"


@pytest.mark.parametrize("fill", [-2, -1, 3])
def test_random_edits_keep_the_structure_and_match_a_model(c, fill):
    import random
    rnd = random.Random(fill)
    c.ks.limits.list_max_listpack_size = fill
    model = []
    for step in range(4000):
        op = rnd.randrange(9)
        val = rnd.choice([b"x", b"17", b"-300", b"y" * 80, b"z" * rnd.choice([5, 700, 5000])])
        if op < 2:
            vals = [val] * rnd.randrange(1, 30)
            run(c, "RPUSH" if op else "LPUSH", "l", *vals)
            model = model + vals if op else vals[::-1] + model
        elif op == 2 and model:
            n = rnd.randrange(1, 20)
            run(c, "LPOP", "l", n)
            model = model[n:]
        elif op == 3 and model:
            n = rnd.randrange(1, 20)
            run(c, "RPOP", "l", n)
            model = model[:-n]
        elif op == 4 and model:
            i = rnd.randrange(len(model))
            run(c, "LSET", "l", i, val)
            model[i] = val
        elif op == 5 and model:
            pivot = rnd.choice(model)
            after = rnd.random() < 0.5
            run(c, "LINSERT", "l", "AFTER" if after else "BEFORE", pivot, val)
            i = model.index(pivot)
            model.insert(i + 1 if after else i, val)
        elif op == 6 and model:
            n = rnd.randrange(-2, 3)
            run(c, "LREM", "l", n, val)
            if n >= 0:
                left = n or len(model)
                out = []
                for x in model:
                    if x == val and left:
                        left -= 1
                    else:
                        out.append(x)
            else:
                left, out = -n, []
                for x in reversed(model):
                    if x == val and left:
                        left -= 1
                    else:
                        out.append(x)
                out.reverse()
            model = out
        elif op == 7 and model:
            a, b = rnd.randrange(0, 4), rnd.randrange(1, 4)
            run(c, "LTRIM", "l", a, -b)
            model = model[a:len(model) - b + 1]
        elif op == 8 and model:
            i = rnd.randrange(-len(model), len(model))
            assert run(c, "LINDEX", "l", i) == model[i]
        lst = c.db.data.get(b"l")
        if not model:
            assert lst is None
            continue
        assert lst.elements() == model, step
        _check_structure(lst)
        if rnd.random() < 0.05:
            a = rnd.randrange(len(model))
            assert run(c, "LRANGE", "l", a, a + 50) == model[a:a + 51]


def test_lpos_over_many_nodes_matches_a_plain_scan(c):
    import random
    rnd = random.Random(3)
    model = [rnd.choice([b"a", b"b", b"c" * 30]) for _ in range(3000)]
    run(c, "RPUSH", "l", *model)
    assert enc(c) == b"quicklist"
    for _ in range(300):
        rank = rnd.choice([1, 2, 5, 40, -1, -2, -7, -40])
        count = rnd.choice([0, 1, 3, 100])
        maxlen = rnd.choice([0, 1, 10, 500, 2999, 5000])
        v = rnd.choice([b"a", b"c" * 30, b"zz"])
        order = range(len(model)) if rank > 0 else range(len(model) - 1, -1, -1)
        if maxlen:
            order = list(order)[:maxlen]
        hits = [i for i in order if model[i] == v][abs(rank) - 1:]
        expect = hits if count == 0 else hits[:count]
        assert run(c, "LPOS", "l", v, "RANK", rank, "COUNT", count, "MAXLEN", maxlen) == expect
