"""engine.zipmap: Redis 2.x's small-hash format, read as Redis 7 reads it.

As with ziplists, Redis 7.0 writes none: payloads built with ``zipmap.encode``
are RESTOREd on redis-server (deep sanitization on) and must give the same
hash, and each damaged one must be refused by both.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import rdb, zipmap
from engine.zipmap import FormatError

HASH_ZIPMAP = 9


def test_layout_of_a_small_map():
    assert zipmap.encode([b"a", b"bc"]) == b"\x01\x01a\x02\x00bc\xff"
    assert zipmap.decode(b"\x01\x01a\x02\x00bc\xff") == [b"a", b"bc"]


def test_long_lengths_take_five_bytes():
    k = b"k" * 300
    buf = zipmap.encode([k, b"v"])
    assert buf[1:6] == b"\xfe" + (300).to_bytes(4, "little")
    assert zipmap.decode(buf) == [k, b"v"]


def test_free_bytes_after_a_value_are_skipped():
    assert zipmap.decode(b"\x02\x01a\x01\x03xZZZ\x01b\x00\x00\xff") == [b"a", b"x", b"b", b""]


def test_count_254_means_walk():
    pairs = []
    for i in range(300):
        pairs += [b"f%d" % i, b"%d" % i]
    buf = zipmap.encode(pairs)
    assert buf[0] == 254
    assert zipmap.decode(buf) == pairs


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=300)), min_size=1,
                max_size=10))
def test_round_trip(pairs):
    flat = [x for p in pairs for x in p]
    assert zipmap.decode(zipmap.encode(flat)) == flat


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=20)), min_size=1,
                max_size=6), st.data())
def test_any_damage_is_a_format_error_or_pairs(pairs, data):
    buf = bytearray(zipmap.encode([x for p in pairs for x in p]))
    i = data.draw(st.integers(0, len(buf) - 1))
    buf[i] = data.draw(st.integers(0, 255))
    try:
        out = zipmap.decode(bytes(buf))
    except FormatError:
        return
    assert len(out) % 2 == 0 and out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=20)), min_size=1,
                max_size=6), st.data())
def test_every_truncation_is_refused(pairs, data):
    buf = zipmap.encode([x for p in pairs for x in p])
    with pytest.raises(FormatError):
        zipmap.decode(buf[:data.draw(st.integers(0, len(buf) - 1))])


DAMAGE = [
    (b"\x00\xff", "empty"),
    (b"\x02\x01a\x01\x00b\xff", "count says 2"),
    (b"\x01\x01a\x01\x00b\xff\x00", "after the terminator"),
    (b"\x01\x01a\x01\x00b", "missing terminator"),
    (b"\x01\x05a\x01\x00b\xff", "runs past the end"),
    (b"\x01\x01a\x05\x00b\xff", "runs past the end"),
    (b"\x01\x01a\x01\x09b\xff", "runs past the end"),
    (b"\x01\xfe\x01\x00", "runs past the end"),
]


@pytest.mark.parametrize("buf, what", DAMAGE + [(b"\x00", "shorter")])
def test_damage_is_refused(buf, what):
    with pytest.raises(FormatError, match=what):
        zipmap.validate(buf)


@pytest.fixture
def ref(redis_ref):
    c = redis_ref.client()
    c.call("FLUSHALL")
    c.call("CONFIG", "SET", "sanitize-dump-payload", "yes")
    yield c
    c.call("CONFIG", "SET", "sanitize-dump-payload", "no")
    c.close()


def payload(body: bytes) -> bytes:
    p = bytes((HASH_ZIPMAP,)) + rdb.encode_string(body) + (10).to_bytes(2, "little")
    return p + rdb.crc64(p).to_bytes(8, "little")


def test_redis_restores_a_zipmap_as_written(ref):
    pairs = [b"f", b"1", b"g", b"x" * 300, b"", b"empty-key"]
    assert ref.call("RESTORE", "h", 0, payload(zipmap.encode(pairs))) == b"OK"
    got = ref.call("HGETALL", "h")
    assert dict(zip(got[0::2], got[1::2])) == dict(zip(pairs[0::2], pairs[1::2]))


@pytest.mark.parametrize("buf, what", DAMAGE)
def test_redis_refuses_the_same_damage(ref, buf, what):
    reply = ref.call("RESTORE", "h", 0, payload(buf))
    assert isinstance(reply, str) and reply.startswith("ERR Bad data format"), reply
