"""engine.intset: Redis's intset byte for byte, and every kind of damage refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import intset, rdb
from engine.intset import FormatError

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
SET_INTSET = 11


def raw(width: int, members: list[int], count: int | None = None) -> bytes:
    n = len(members) if count is None else count
    return (width.to_bytes(4, "little") + n.to_bytes(4, "little")
            + b"".join(v.to_bytes(width, "little", signed=True) for v in members))


@pytest.mark.parametrize("members, width", [
    ([1, 2, 3], 2), ([-32768, 32767], 2), ([32768], 4), ([-32769, 0], 4),
    ([2147483647], 4), ([2147483648], 8), ([INT64_MIN, INT64_MAX], 8),
])
def test_encode_picks_the_smallest_width(members, width):
    buf = intset.encode(members)
    assert buf == raw(width, sorted(members))
    assert intset.decode(buf) == sorted(members)


def test_encode_sorts_and_drops_duplicates():
    assert intset.encode([3, 1, 2, 3, 1]) == raw(2, [1, 2, 3])


def test_encode_refuses_integers_beyond_64_bits():
    with pytest.raises(ValueError):
        intset.encode([1 << 63])


def test_a_wider_intset_than_needed_is_accepted():
    # Redis never narrows an intset after its large member is removed.
    assert intset.decode(raw(8, [1, 2])) == [1, 2]


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(INT64_MIN, INT64_MAX), min_size=1, max_size=40))
def test_round_trip(members):
    buf = intset.encode(members)
    assert intset.decode(buf) == sorted(members)
    assert intset.encode(intset.decode(buf)) == buf


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(-40000, 40000), min_size=1, max_size=20), st.data())
def test_any_damage_is_a_format_error_or_a_valid_intset(members, data):
    buf = bytearray(intset.encode(members))
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] = data.draw(st.integers(0, 255))
    try:
        out = intset.decode(bytes(buf))
    except FormatError:
        return
    assert out == sorted(set(out))


@pytest.mark.parametrize("buf, what", [
    (b"", "shorter"),
    (b"\x02\x00\x00\x00\x01\x00\x00", "shorter"),
    (raw(3, [1, 2]), "width 3"),
    (raw(0, [], 1), "width 0"),
    (raw(2, [1, 2], count=3), "cannot be"),
    (raw(2, [1, 2], count=1), "cannot be"),
    (raw(2, [1, 2]) + b"\x00", "cannot be"),
    (raw(2, []), "empty"),
    (raw(2, [2, 1]), "out of order"),
    (raw(4, [5, 5]), "repeated"),
    (raw(8, [INT64_MAX, INT64_MIN]), "out of order"),
])
def test_damage_is_refused(buf, what):
    with pytest.raises(FormatError, match=what):
        intset.validate(buf)


@pytest.fixture
def ref(redis_ref):
    c = redis_ref.client()
    c.call("FLUSHALL")
    yield c
    c.close()


@pytest.mark.parametrize("members", [
    [1, 2, 3], [-5, 100, 7], [40000, -1], [2 ** 40, 0, -2 ** 40], [INT64_MIN, INT64_MAX],
    list(range(0, 1000, 7)),
])
def test_matches_redis_byte_for_byte(ref, members):
    ref.call("SADD", "s", *members)
    assert ref.call("OBJECT", "ENCODING", "s") == b"intset"
    payload = ref.call("DUMP", "s")
    assert payload[0] == SET_INTSET
    buf, _ = rdb.read_string(payload, 1)
    assert intset.decode(buf) == sorted(members)
    assert intset.encode(members) == buf


def test_redis_keeps_the_width_after_removing_the_wide_member(ref):
    ref.call("SADD", "s", 1, 2, 2 ** 40)
    ref.call("SREM", "s", 2 ** 40)
    buf, _ = rdb.read_string(ref.call("DUMP", "s"), 1)
    assert buf == raw(8, [1, 2])
    assert intset.decode(buf) == [1, 2]
