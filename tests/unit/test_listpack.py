"""engine.listpack: Redis's listpack byte for byte, and every kind of damage refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import listpack, rdb
from engine.listpack import FormatError

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def lp(body: bytes, count: int) -> bytes:
    """A listpack frame around hand-written entry bytes."""
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"


# --- the encodings, one by one ------------------------------------------------

@pytest.mark.parametrize("value, entry", [
    (0, b"\x00\x01"),
    (127, b"\x7f\x01"),
    (128, b"\xc0\x80\x02"),
    (-1, b"\xdf\xff\x02"),
    (4095, b"\xcf\xff\x02"),
    (-4096, b"\xd0\x00\x02"),
    (4096, b"\xf1\x00\x10\x03"),
    (-32768, b"\xf1\x00\x80\x03"),
    (32768, b"\xf2\x00\x80\x00\x04"),
    (-8388608, b"\xf2\x00\x00\x80\x04"),
    (8388608, b"\xf3\x00\x00\x80\x00\x05"),
    (INT64_MAX, b"\xf4" + INT64_MAX.to_bytes(8, "little", signed=True) + b"\x09"),
    (INT64_MIN, b"\xf4" + INT64_MIN.to_bytes(8, "little", signed=True) + b"\x09"),
])
def test_integers_take_the_smallest_integer_encoding(value, entry):
    assert listpack.encode([value]) == lp(entry, 1)
    assert listpack.encode([b"%d" % value]) == lp(entry, 1)
    assert listpack.decode(lp(entry, 1)) == [b"%d" % value]


@pytest.mark.parametrize("s", [b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808",
                               b"-9223372036854775809", b"1.0", b"", b"-", b"0x10"])
def test_strings_that_only_look_like_integers_stay_strings(s):
    buf = listpack.encode([s])
    assert buf[6] == 0x80 | len(s)
    assert listpack.decode(buf) == [s]


@pytest.mark.parametrize("n, header", [
    (0, b"\x80"), (63, b"\xbf"), (64, b"\xe0\x40"), (4095, b"\xef\xff"),
    (4096, b"\xf0\x00\x10\x00\x00"),
])
def test_strings_take_the_smallest_string_encoding(n, header):
    s = b"x" * n
    buf = listpack.encode([s])
    assert buf[6:6 + len(header)] == header
    assert listpack.decode(buf) == [s]


@pytest.mark.parametrize("size, backlen", [
    (1, b"\x01"), (127, b"\x7f"), (128, b"\x01\x80"), (16382, b"\x7f\xfe"),
    (16383, b"\x00\xff\xff"), (2097150, b"\x7f\xff\xfe"),
])
def test_back_lengths_are_written_most_significant_first(size, backlen):
    assert listpack._backlen(size) == backlen


def test_back_length_of_a_long_string_entry():
    s = b"y" * 200
    buf = listpack.encode([s])
    # 2-byte header + 200 bytes = 202 = 1 * 128 + 74
    assert buf[-3:] == b"\x01\xca\xff"
    assert listpack.decode(buf) == [s]


def test_empty_listpack_is_header_and_terminator():
    assert listpack.encode([]) == b"\x07\x00\x00\x00\x00\x00\xff"
    assert listpack.decode(listpack.encode([])) == []


def test_count_saturates_at_65535_and_is_then_walked():
    entries = [b"a"] * 70000
    buf = listpack.encode(entries)
    assert buf[4:6] == b"\xff\xff"
    assert listpack.decode(buf) == entries


def test_encode_accepts_bytearray_and_generators():
    assert listpack.encode(x for x in [bytearray(b"ab"), b"5"]) == listpack.encode([b"ab", 5])


# --- round trips ---------------------------------------------------------------

entry = st.one_of(
    st.binary(max_size=80),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(INT64_MIN, INT64_MAX).map(lambda v: b"%d" % v),
    st.sampled_from([b"-0", b"007", b"x" * 5000, b"0", b"-4097"]),
)


def as_bytes(e) -> bytes:
    return b"%d" % e if isinstance(e, int) else e


@settings(max_examples=300, deadline=None)
@given(st.lists(entry, max_size=30))
def test_decode_inverts_encode(entries):
    buf = listpack.encode(entries)
    assert listpack.decode(buf) == [as_bytes(e) for e in entries]
    assert len(buf) == int.from_bytes(buf[:4], "little")
    listpack.validate(buf)


@settings(max_examples=300, deadline=None)
@given(st.lists(entry, max_size=30))
def test_encode_inverts_decode(entries):
    buf = listpack.encode(entries)
    assert listpack.encode(listpack.decode(buf)) == buf


@settings(max_examples=500, deadline=None)
@given(st.lists(entry, min_size=1, max_size=10), st.data())
def test_any_damage_is_a_format_error_or_a_valid_listpack(entries, data):
    buf = bytearray(listpack.encode(entries))
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] = data.draw(st.integers(0, 255))
    try:
        out = listpack.decode(bytes(buf))
    except FormatError:
        return
    # Accepted damage can only be a change inside an entry's data.
    assert len(out) == len(entries)


@settings(max_examples=200, deadline=None)
@given(st.lists(entry, min_size=1, max_size=10), st.data())
def test_every_truncation_is_refused(entries, data):
    buf = listpack.encode(entries)
    cut = data.draw(st.integers(0, len(buf) - 1))
    with pytest.raises(FormatError):
        listpack.decode(buf[:cut])


# --- each damage refused --------------------------------------------------------

GOOD = listpack.encode([b"abc", 5, b"x" * 70, 1000])


def test_a_good_listpack_validates():
    listpack.validate(GOOD)


@pytest.mark.parametrize("buf, what", [
    (b"", "shorter"),
    (b"\x06\x00\x00\x00\x00\x00", "shorter"),
    ((len(GOOD) + 1).to_bytes(4, "little") + GOOD[4:], "header says"),
    ((len(GOOD) - 1).to_bytes(4, "little") + GOOD[4:], "header says"),
    (GOOD + b"\x00", "header says"),
    ((len(GOOD) + 1).to_bytes(4, "little") + GOOD[4:] + b"\x00", "missing terminator"),
    (GOOD[:4] + b"\x05\x00" + GOOD[6:], "header says 5 entries"),
    (GOOD[:4] + b"\x03\x00" + GOOD[6:], "header says 3 entries"),
    (lp(b"\xf5\x01", 1), "unknown entry encoding 0xf5"),
    (lp(b"\xfe\x01", 1), "unknown entry encoding 0xfe"),
    (lp(b"\x05\x02", 1), "back length"),
    (lp(b"\x83ab\x04", 1), "back length"),
    (lp(b"\x83abc", 1), "back length"),
    (lp(b"\x85abc\x06", 1), "runs past the end"),
    (lp(b"\xf0\xff\xff\x00\x00", 1), "runs past the end"),
    (lp(b"\xe1\x00" + b"a" * 10 + b"\x02", 1), "runs past the end"),
    (lp(b"\xf3\x01\x02", 1), "runs past the end"),
    (lp(b"\xc1", 1), "runs past the end"),
    (lp(b"\x05\x01\xff\x05\x01", 2), "terminator inside"),
])
def test_damage_is_refused(buf, what):
    with pytest.raises(FormatError, match=what):
        listpack.validate(buf)
    with pytest.raises(FormatError):
        listpack.decode(buf)


def test_a_non_minimal_encoding_is_read_as_redis_reads_it():
    # A 12-bit string header on a short string: Redis never writes it but reads it.
    assert listpack.decode(lp(b"\xe0\x02ab\x04", 1)) == [b"ab"]


def test_count_unknown_accepts_any_number_of_entries():
    assert listpack.decode(lp(b"\x05\x01\x06\x01", 0xFFFF)) == [b"5", b"6"]


# --- byte for byte with redis-server -----------------------------------------------

@pytest.fixture
def ref(redis_ref):
    c = redis_ref.client()
    c.call("FLUSHALL")
    yield c
    c.close()


def body_string(payload: bytes, type_byte: int) -> bytes:
    assert payload[0] == type_byte
    buf, _ = rdb.read_string(payload, 1)
    return buf


HASH_LISTPACK, ZSET_LISTPACK, LIST_QUICKLIST_2 = 16, 17, 18

HASH_CASES = [
    [b"f1", b"v1", b"f2", b"v2"],
    [b"a", b"1", b"b", b"-1", b"c", b"4096", b"d", b"-9223372036854775808", b"e", b"007",
     b"130", b"x" * 63, b"g", b"y" * 64, b"-0", b"1.5"],
    [b"n%d" % i for i in range(20)],
    [b"k", b"z" * 60, b"k2", b"q" * 20],
]


@pytest.mark.parametrize("pairs", HASH_CASES)
def test_hash_listpack_matches_redis(ref, pairs):
    ref.call("HSET", "h", *pairs)
    assert ref.call("OBJECT", "ENCODING", "h") == b"listpack"
    buf = body_string(ref.call("DUMP", "h"), HASH_LISTPACK)
    assert listpack.decode(buf) == pairs
    assert listpack.encode(pairs) == buf


ZSET_CASES = [
    [(b"a", b"1"), (b"b", b"2.5"), (b"c", b"-3")],
    [(b"m%d" % i, b"%d" % (i * 1000)) for i in range(12)],
    [(b"big", b"9007199254740992"), (b"neg", b"-100000"), (b"f", b"0.1")],
]


@pytest.mark.parametrize("members", ZSET_CASES)
def test_zset_listpack_matches_redis(ref, members):
    args = []
    for m, s in members:
        args += [s, m]
    ref.call("ZADD", "z", *args)
    assert ref.call("OBJECT", "ENCODING", "z") == b"listpack"
    buf = body_string(ref.call("DUMP", "z"), ZSET_LISTPACK)
    decoded = listpack.decode(buf)
    members_in_order = decoded[0::2]
    assert sorted(members_in_order) == sorted(m for m, _ in members)
    # Redis writes scores with its shortest round-trip formatting; an integer score
    # is an integer entry, the others are strings.
    by_member = dict(zip(decoded[0::2], decoded[1::2]))
    for m, s in members:
        assert float(by_member[m]) == float(s)
    assert listpack.encode(decoded) == buf


def test_list_node_matches_redis(ref):
    items = [b"a", b"1", b"-77", b"", b"x" * 100, b"12345678901", b"hello"]
    ref.call("RPUSH", "l", *items)
    payload = ref.call("DUMP", "l")
    assert payload[0] == LIST_QUICKLIST_2
    nodes, pos, _ = rdb.read_length(payload, 1)
    assert nodes == 1
    container, pos, _ = rdb.read_length(payload, pos)
    assert container == 2  # a packed (listpack) node
    buf, _ = rdb.read_string(payload, pos)
    assert listpack.decode(buf) == items
    assert listpack.encode(items) == buf
