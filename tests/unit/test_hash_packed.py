"""The packed hash encoding holds any bytes: a model check of engine.types.hash.Hash.

The packed form delimits entries with NUL and \\x01 and escapes those bytes
(and its escape byte \\x02) inside entries. Random programs of sets, bulk
sets, deletes and reads over fields and values made of exactly those bytes
(and of each other's pieces: a value equal to a field, a field that is a
prefix of another, empty strings) must behave as an insertion-ordered dict,
whatever the encoding, and the packed form must keep the model's order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import rdb
from engine.types.hash import Hash
from engine.types.limits import Limits

pieces = st.sampled_from([b"", b"\x00", b"\x01", b"\x02", b"\x02\x10", b"\x02\x11", b"\x02\x12", b"\x01\x00",
                          b"a", b"ab", b"b", b"\x10", b"\x12"])
strings = st.lists(pieces, max_size=4).map(b"".join)
ops = st.lists(st.one_of(
    st.tuples(st.just("set"), strings, strings),
    st.tuples(st.just("pairs"), st.lists(st.tuples(strings, strings), min_size=1, max_size=8)),
    st.tuples(st.just("del"), st.lists(strings, min_size=1, max_size=3)),
), max_size=40)


def _limits(entries: int) -> Limits:
    limits = Limits()
    limits.hash_max_listpack_entries = entries
    return limits


def _check(h: Hash, model: dict, probes) -> None:
    assert len(h) == len(model)
    assert h.to_dict() == model
    if h.encoding == "listpack":
        assert h.flat() == [x for kv in model.items() for x in kv]
        assert h.fields() == list(model) and h.values() == list(model.values())
    for f in probes:
        assert h.get(f) == model.get(f)
        assert (f in h) == (f in model)
    assert h.get_many(probes) == [model.get(f) for f in probes]
    if model:
        assert rdb.restore(rdb.dump(h)).to_dict() == model


@settings(max_examples=300, deadline=None)
@given(program=ops, probes=st.lists(strings, max_size=6), entries=st.sampled_from([3, 512]))
def test_packed_hash_behaves_as_an_ordered_dict(program, probes, entries):
    limits = _limits(entries)
    h, model = Hash(), {}
    for op in program:
        if op[0] == "set":
            _, f, v = op
            assert h.set(f, v, limits) == (f not in model)
            model[f] = v
        elif op[0] == "pairs":
            argv = [b"HSET", b"k"] + [x for p in op[1] for x in p]
            before = len(model)
            model.update(op[1])
            assert h.set_pairs(argv, 2, limits) == len(model) - before
        else:
            removed = 0
            for f in op[1]:
                if f in model:
                    del model[f]
                    removed += 1
            assert h.delete(op[1]) == removed
        if entries == 512:
            assert h.encoding == "listpack"
        _check(h, model, probes + list(model)[:3])


def test_escaped_bytes_round_trip_through_every_reader():
    limits = Limits()
    h = Hash()
    tricky = [b"\x00", b"\x01", b"\x02", b"\x02\x10", b"\x00\x01\x02", b"", b"x\x00y"]
    for i, f in enumerate(tricky):
        h.set(f, tricky[-1 - i], limits)
    assert h.encoding == "listpack"
    assert h.fields() == tricky and h.values() == tricky[::-1]
    assert [h.get(f) for f in tricky] == tricky[::-1]
    n, fields, values = h.scan(0, 10)
    assert n == 0 and fields == tricky and values == tricky[::-1]
    assert h.random_field()[0] in tricky
    h.delete([b"\x02\x10", b""])
    assert h.fields() == [b"\x00", b"\x01", b"\x02", b"\x00\x01\x02", b"x\x00y"]
