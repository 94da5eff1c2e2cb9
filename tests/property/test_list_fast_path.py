"""One-element pushes and pops written out agree with the general path.

``List.push_one``/``List.pop_one`` (and the LPUSH/RPUSH/LPOP/RPOP handlers
that call them) are the general ``push``/``pop`` written out for one element
on an open end node. Random programs of pushes and pops, around node
boundaries and the listpack/quicklist conversions both ways, run on a list
driven by the written-out path and on one driven by the general path: the
elements, the encoding, every node's boundaries, size and plain flag, and
each reply and the RDB payload must be the same; the structure invariants must hold after every
step, among them the reversed head's (only ``nodes[0]`` may be a ``Rev``).
Reads and edits (LRANGE with its clamping, LINDEX, LSET, LINSERT, LREM, LTRIM, copies) are
mixed in, so the reversed head meets every reader.

At the handler level, the same commands on two keyspaces -- one through the
handlers, one through the general ``_push``/``_pop`` -- give the same
replies, effects, keyspace events and changed-key calls.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.commands  # noqa: F401
from engine.commands import list as list_cmds
from engine.keyspace import Keyspace
from engine.session import Session
from engine import rdb
from engine.types.list import List
from engine.types.list_quicklist import Rev, entry_size
from tests.support import run, take_effects

values = st.sampled_from([b"xxx", b"a" * 63, b"b" * 64, b"c" * 100, b"17", b"-3", b"9x", b":", b"",
                          b"\x00z", b"y" * 5000, b"z" * 9000])
fills = st.sampled_from([-2, -1, 1, 2, 3, 5])

pushes = st.tuples(st.just("push"), st.booleans(), values)
pops = st.tuples(st.just("pop"), st.booleans())
ops = st.one_of(  # pushes and pops weighted up: long runs cross node boundaries
    pushes, pushes, pushes, pushes, pops, pops, pops,
    st.tuples(st.just("many"), st.booleans(), st.lists(values, min_size=1, max_size=40)),
    st.tuples(st.just("range"), st.integers(0, 300), st.integers(0, 300)),
    st.tuples(st.just("window"), st.integers(-300, 300), st.integers(-300, 300)),
    st.tuples(st.just("index"), st.integers(-300, 300)),
    st.tuples(st.just("set"), st.integers(-300, 300), values),
    st.tuples(st.just("insert"), st.integers(-300, 300), st.booleans(), values),
    st.tuples(st.just("remove"), st.integers(-2, 2), values),
    st.tuples(st.just("trim"), st.integers(0, 30), st.integers(0, 30)),
    st.tuples(st.just("copy"),),
)


def check_structure(lst: List) -> None:
    v = lst._v
    if type(v) is bytes:
        assert lst._sz == 7 + sum(map(entry_size, lst.elements()))
        assert lst._n == len(lst.elements())
        return
    nodes = list(v.nodes)
    assert nodes and all(node.count for node in nodes)
    assert sum(node.count for node in nodes) == v.count
    for i, node in enumerate(nodes):
        items = node.peek()
        assert len(items) == node.count
        assert type(node.data) is not Rev or i == 0, "a reversed node that is not the head"
        if node.plain:
            assert node.count == 1 and node.sz == len(items[0])
        else:
            assert node.sz == 7 + sum(map(entry_size, items))
        if 0 < i < len(nodes) - 1:
            assert type(node.data) is bytes, "an inner node left unpacked"


def shape(lst: List):
    """What must agree between the two paths: encoding, nodes, sizes."""
    v = lst._v
    if type(v) is bytes:
        return "listpack", lst.elements(), lst._sz
    return "quicklist", [(n.plain, n.sz, n.peek()) for n in v.nodes]


def apply_edit(lst: List, op, fill: int, model: list):
    """A read or edit applied alike to both lists (and the model); its result."""
    kind = op[0]
    n = len(model)
    if kind == "range":
        start = min(op[1], n - 1)
        stop = min(max(start, op[2]), n - 1)
        out = lst.range(start, stop)
        assert out == model[start:stop + 1]
        return out
    if kind == "window":  # LRANGE's clamping, against Redis's rule written plainly
        start, stop = op[1], op[2]
        start, stop = max(0, start + n if start < 0 else start), stop + n if stop < 0 else stop
        out = lst.window(op[1], op[2])
        assert out == (model[start:stop + 1] if start <= stop else [])
        return out
    if kind == "index":
        out = lst.index(op[1])
        assert out == (model[op[1]] if -n <= op[1] < n else None)
        return out
    if kind == "set":
        ok = lst.set(op[1], op[2], fill)
        if -n <= op[1] < n:
            model[op[1]] = op[2]
        return ok
    if kind == "insert":
        pivot = model[op[1] % n]
        ok = lst.insert(pivot, op[3], op[2], fill)
        i = model.index(pivot)
        model.insert(i + 1 if op[2] else i, op[3])
        return ok
    if kind == "remove":
        count, value = op[1], op[2]
        removed = lst.remove(value, count, fill)
        left = abs(count) or n
        keep, seq = [], model if count >= 0 else model[::-1]
        for x in seq:
            if x == value and left:
                left -= 1
            else:
                keep.append(x)
        model[:] = keep if count >= 0 else keep[::-1]
        return removed
    if kind == "trim":
        left, right = min(op[1], n - 1), op[2]
        right = min(right, n - 1 - left)
        lst.trim(left, right, fill)
        model[:] = model[left:n - right]
        return None
    raise AssertionError(kind)


@settings(max_examples=300, deadline=None)
@given(fill=fills, program=st.lists(ops, min_size=20, max_size=400))
def test_written_out_push_and_pop_match_the_general_path(fill, program):
    fast, slow = List(fill=fill), List(fill=fill)
    model: list = []
    for op in program:
        kind = op[0]
        if kind == "push":
            _, head, x = op
            if not model:  # a stored list is never empty: a new one takes the general path
                fast.push((x,), head, fill)
                slow.push((x,), head, fill)
            else:
                assert fast.push_one(x, head, fill) == slow.push((x,), head, fill)
            model.insert(0, x) if head else model.append(x)
        elif kind == "many":
            _, head, xs = op
            fast.push(xs, head, fill)
            slow.push(xs, head, fill)
            model[:] = xs[::-1] + model if head else model + xs
        elif kind == "pop":
            if not model:
                continue
            head = op[1]
            got = fast.pop_one(head, fill)
            if len(model) == 1:
                assert got is None  # left to the general path, which deletes the key
                got = fast.pop(head, 1, fill)[0]
            assert got == slow.pop(head, 1, fill)[0] == model.pop(0 if head else -1)
        elif kind == "copy":
            fast, slow = fast.copy(), slow.copy()
        elif model:
            assert apply_edit(fast, op, fill, model[:]) == apply_edit(slow, op, fill, model)
        if not model:
            fast, slow = List(fill=fill), List(fill=fill)
            continue
        assert fast.elements() == slow.elements() == model
        assert shape(fast) == shape(slow)
        payload = rdb.encode_value(fast)  # DUMP, checkpoints, full sync
        assert payload == rdb.encode_value(slow)
        assert rdb.decode_value(payload)[0].elements() == model
        check_structure(fast)
        check_structure(slow)


# --- the handlers --------------------------------------------------------------

command_pushes = st.tuples(st.sampled_from(["LPUSH", "RPUSH"]), st.sampled_from(["a", "b"]), values)
command_pops = st.tuples(st.sampled_from(["LPOP", "RPOP"]), st.sampled_from(["a", "b"]))
commands = st.one_of(
    command_pushes, command_pushes, command_pushes, command_pops, command_pops,
    st.tuples(st.just("SET"), st.just("b"), st.just(b"string")),
)


def _general(c, argv):
    """The same command through the general path the fast one skips."""
    name = argv[0]
    if name in (b"LPUSH", b"RPUSH"):
        return list_cmds._push(c, argv, name == b"LPUSH", False)
    if name in (b"LPOP", b"RPOP"):
        return list_cmds._pop(c, argv, name == b"LPOP")
    return run(c, *argv)


def _session(events: list, changed: list) -> Session:
    c = Session(Keyspace())
    c.ks.notify_flags = -1
    c.ks.notify_hook = lambda cls, event, db, key: events.append((cls, event, db, key))
    c.ks.watchers.append(lambda db, key: changed.append(key))
    return c


@settings(max_examples=150, deadline=None)
@given(fill=fills, program=st.lists(commands, min_size=10, max_size=300))
def test_list_handlers_match_the_general_path(fill, program):
    seen = {name: ([], []) for name in ("fast", "slow")}
    fast, slow = _session(*seen["fast"]), _session(*seen["slow"])
    for c in (fast, slow):
        c.ks.limits.list_max_listpack_size = fill
    for cmd in program:
        argv = [a if isinstance(a, bytes) else a.encode() for a in cmd]
        replies = []
        for c, call in ((fast, lambda c, a: run(c, *a)), (slow, _general)):
            try:
                replies.append(call(c, list(argv)))
            except Exception as e:  # WRONGTYPE: the same error on both
                replies.append(type(e).__name__ + str(e))
        assert replies[0] == replies[1], argv
        assert take_effects(fast) == take_effects(slow)
        assert seen["fast"] == seen["slow"]
        for key in (b"a", b"b"):
            a, b = fast.db.data.get(key), slow.db.data.get(key)
            assert type(a) is type(b)
            if type(a) is List:
                assert shape(a) == shape(b)


def test_a_reversed_head_left_alone_turns_round_when_it_becomes_the_tail():
    # Fill -2 with 100-byte elements: 79 to a node. Push at the head until
    # there are three nodes (the head reversed), pop the tail until the
    # head is the one node left (over half full: still a quicklist), serve
    # the tail from it, then fill it up and push a new head in front of it.
    x = b"v" * 100
    lst = List(fill=-2)
    model = []
    for i in range(200):
        v = b"%03d" % i + x
        lst.push_one(v, True, -2) if model else lst.push((v,), True, -2)
        model.insert(0, v)
    assert type(lst._v.nodes[0].data) is Rev
    while len(lst._v.nodes) > 1:
        assert lst.pop_one(False, -2) == model.pop()
    assert type(lst._v.nodes[0].data) is Rev and lst.encoding == "quicklist"
    assert lst.push_one(b"t1", False, -2) == len(model) + 1
    model.append(b"t1")
    assert lst.pop_one(False, -2) == model.pop()
    while len(lst._v.nodes) == 1:
        lst.push_one(b"h" + x, True, -2)
        model.insert(0, b"h" + x)
    check_structure(lst)
    assert lst.elements() == model
    assert lst.range(0, len(model) - 1) == model
    assert [lst.index(i) for i in range(-len(model), len(model))] == model + model
