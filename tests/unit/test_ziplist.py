"""engine.ziplist: the old compact format read as Redis reads it, every damage refused.

Redis 7.0 writes no ziplists, so the cross-check goes the other way: payloads
built with ``ziplist.encode`` are RESTOREd on redis-server (with deep payload
sanitization on) and must give the same contents; each damaged one must be
refused by both.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import rdb, ziplist
from engine.ziplist import FormatError

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
LIST_ZIPLIST, ZSET_ZIPLIST, HASH_ZIPLIST, LIST_QUICKLIST = 10, 12, 13, 14


def zl(entries: list[bytes], count: int | None = None, tail: int | None = None) -> bytes:
    """A ziplist frame around hand-written entries (each with its prevlen)."""
    body = b"".join(entries)
    last = 10 + sum(len(e) for e in entries[:-1]) if entries else 10
    n = len(entries) if count is None else count
    return ((10 + len(body) + 1).to_bytes(4, "little") + (last if tail is None else tail)
            .to_bytes(4, "little") + n.to_bytes(2, "little") + body + b"\xff")


@pytest.mark.parametrize("value, encoding", [
    (0, b"\xf1"), (12, b"\xfd"), (13, b"\xfe\x0d"), (-1, b"\xfe\xff"), (-128, b"\xfe\x80"),
    (128, b"\xc0\x80\x00"), (-32768, b"\xc0\x00\x80"), (32768, b"\xf0\x00\x80\x00"),
    (8388608, b"\xd0\x00\x00\x80\x00"),
    (2147483648, b"\xe0" + (2147483648).to_bytes(8, "little")),
    (INT64_MIN, b"\xe0" + INT64_MIN.to_bytes(8, "little", signed=True)),
])
def test_integer_encodings(value, encoding):
    buf = zl([b"\x00" + encoding])
    assert ziplist.decode(buf) == [b"%d" % value]
    assert ziplist.encode([value]) == buf
    assert ziplist.encode([b"%d" % value]) == buf


@pytest.mark.parametrize("n, header", [
    (0, b"\x00"), (63, b"\x3f"), (64, b"\x40\x40"), (16383, b"\x7f\xff"),
    (16384, b"\x80\x00\x00\x40\x00"),
])
def test_string_encodings(n, header):
    s = b"s" * n
    buf = ziplist.encode([s])
    assert buf[11:11 + len(header)] == header
    assert ziplist.decode(buf) == [s]


def test_previous_lengths_of_254_and_more_take_five_bytes():
    entries = [b"a" * 300, b"b"]
    buf = ziplist.encode(entries)
    second = 10 + 1 + 2 + 300
    assert buf[second:second + 5] == b"\xfe" + (303).to_bytes(4, "little")
    assert ziplist.decode(buf) == entries


def test_a_five_byte_previous_length_for_a_small_entry_is_accepted():
    buf = zl([b"\x00\x01a", b"\xfe\x03\x00\x00\x00\x01b"])
    assert ziplist.decode(buf) == [b"a", b"b"]


def test_empty_ziplist():
    assert ziplist.encode([]) == zl([])
    assert ziplist.decode(zl([])) == []


def test_count_unknown_is_walked():
    assert ziplist.decode(zl([b"\x00\xf2", b"\x02\xf3"], count=0xFFFF)) == [b"1", b"2"]


entry = st.one_of(st.binary(max_size=300), st.integers(INT64_MIN, INT64_MAX),
                  st.integers(-200, 200).map(lambda v: b"%d" % v))


@settings(max_examples=300, deadline=None)
@given(st.lists(entry, max_size=20))
def test_round_trip(entries):
    buf = ziplist.encode(entries)
    assert ziplist.decode(buf) == [b"%d" % e if isinstance(e, int) else e for e in entries]
    assert ziplist.encode(ziplist.decode(buf)) == buf


@settings(max_examples=500, deadline=None)
@given(st.lists(entry, min_size=1, max_size=8), st.data())
def test_any_damage_is_a_format_error_or_the_same_number_of_entries(entries, data):
    buf = bytearray(ziplist.encode(entries))
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] = data.draw(st.integers(0, 255))
    try:
        out = ziplist.decode(bytes(buf))
    except FormatError:
        return
    assert len(out) == len(entries)


@settings(max_examples=200, deadline=None)
@given(st.lists(entry, min_size=1, max_size=8), st.data())
def test_every_truncation_is_refused(entries, data):
    buf = ziplist.encode(entries)
    with pytest.raises(FormatError):
        ziplist.decode(buf[:data.draw(st.integers(0, len(buf) - 1))])


GOOD = ziplist.encode([b"abc", 5, b"x" * 70, 1000])

DAMAGE = [
    (b"\x0b\x00\x00\x00\x0a\x00\x00\x00\x00", "shorter"),
    ((len(GOOD) + 1).to_bytes(4, "little") + GOOD[4:], "header says"),
    (GOOD + b"\x00", "header says"),
    ((len(GOOD) + 1).to_bytes(4, "little") + GOOD[4:] + b"\x00", "missing terminator"),
    (GOOD[:8] + b"\x03\x00" + GOOD[10:], "header says 3 entries"),
    (GOOD[:4] + b"\x0a\x00\x00\x00" + GOOD[8:], "last entry"),
    (zl([b"\x00\xf2", b"\x02\xf3"], tail=13), "last entry"),
    (zl([b"\x00\xc1\x00\x00"]), "unknown entry encoding 0xc1"),
    (zl([b"\x00\xf5", b"\xff\x00"]), "terminator inside"),
    (zl([b"\x00\xf5", b"\x02\xff"]), "unknown entry encoding 0xff"),
    (zl([b"\x00\xf2", b"\x03\xf3"]), "previous entry is 3"),
    (zl([b"\x01\xf2"]), "previous entry is 1"),
    (zl([b"\x00\x05abc"]), "runs past the end"),
    (zl([b"\x00\x80\x00\x00\x01\x00ab"]), "runs past the end"),
    (zl([b"\x00\xe0\x01\x02"]), "runs past the end"),
    (zl([b"\xfe\x00\x00"]), "runs past the end"),
]


@pytest.mark.parametrize("buf, what", DAMAGE)
def test_damage_is_refused(buf, what):
    with pytest.raises(FormatError, match=what):
        ziplist.validate(buf)


# --- redis-server reads what ``encode`` writes, and refuses the same damage ----------

@pytest.fixture
def ref(redis_ref):
    c = redis_ref.client()
    c.call("FLUSHALL")
    c.call("CONFIG", "SET", "sanitize-dump-payload", "yes")
    yield c
    c.call("CONFIG", "SET", "sanitize-dump-payload", "no")
    c.close()


def payload(type_byte: int, body: bytes) -> bytes:
    p = bytes((type_byte,)) + body + (10).to_bytes(2, "little")
    return p + rdb.crc64(p).to_bytes(8, "little")


LIST_ITEMS = [b"a", b"12", b"-1", b"", b"x" * 300, b"9223372036854775807", b"007"]


def test_redis_restores_a_ziplist_list_as_written(ref):
    assert ref.call("RESTORE", "l", 0,
                    payload(LIST_ZIPLIST, rdb.encode_string(ziplist.encode(LIST_ITEMS)))) == b"OK"
    assert ref.call("LRANGE", "l", 0, -1) == LIST_ITEMS


def test_redis_restores_a_quicklist_of_ziplists(ref):
    body = (rdb.encode_length(2) + rdb.encode_string(ziplist.encode(LIST_ITEMS[:3]))
            + rdb.encode_string(ziplist.encode(LIST_ITEMS[3:])))
    assert ref.call("RESTORE", "l", 0, payload(LIST_QUICKLIST, body)) == b"OK"
    assert ref.call("LRANGE", "l", 0, -1) == LIST_ITEMS


def test_redis_restores_a_ziplist_hash_and_zset(ref):
    pairs = [b"f", b"1", b"g", b"hello", b"h", b"-300"]
    ref.call("RESTORE", "h", 0, payload(HASH_ZIPLIST, rdb.encode_string(ziplist.encode(pairs))))
    got = ref.call("HGETALL", "h")
    assert dict(zip(got[0::2], got[1::2])) == dict(zip(pairs[0::2], pairs[1::2]))
    members = [b"a", b"1", b"b", b"2.5", b"c", b"300"]
    ref.call("RESTORE", "z", 0, payload(ZSET_ZIPLIST, rdb.encode_string(ziplist.encode(members))))
    assert ref.call("ZRANGE", "z", 0, -1, "WITHSCORES") == members
    assert ziplist.decode(ziplist.encode(members)) == members


@pytest.mark.parametrize("buf, what", [d for d in DAMAGE if d[1] not in ("shorter",)])
def test_redis_refuses_the_same_damage(ref, buf, what):
    reply = ref.call("RESTORE", "l", 0, payload(LIST_ZIPLIST, rdb.encode_string(buf)))
    assert isinstance(reply, str) and reply.startswith("ERR Bad data format"), reply
