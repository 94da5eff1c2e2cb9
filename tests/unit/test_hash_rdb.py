"""Hashes in RDB: DUMP payloads exchanged with redis-server both ways, damage refused, restarts.

Redis 7.0 writes a small hash as a listpack (RDB type 16, LZF-compressed
when that pays) and a big one as type 4 (count, then fields and values); it
still reads ziplists (13) and zipmaps (9). Keel's payloads (``version=10``,
what 7.0 accepts) must restore on Redis with the same contents and encoding,
Redis's on Keel, and a payload whose checksum is right but whose structure
is not must be refused with ``Bad data format``, storing nothing. A SAVE and
a restart (checkpoint) and a restart from the log alone keep every hash.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine import errors, listpack, rdb, ziplist, zipmap
from engine.types.hash import Hash
from engine.types.limits import Limits
from tests.support import Err, KeelProcess


def _payload(body: bytes, version: int = 10) -> bytes:
    """``body`` (type byte + value) with a valid footer."""
    data = body + version.to_bytes(2, "little")
    return data + rdb.crc64(data).to_bytes(8, "little")


def _pairs(n, value=lambda i: f"v{i}"):
    return [x for i in range(n) for x in (f"f{i}", value(i))]


CASES = {
    "small": _pairs(3),
    "integers": ["a", "1", "b", "-1", "c", "127", "d", "4095", "e", "-4096", "f", "70000", "g", str(2**40),
                 "h", str(-2**63), "i", str(2**63 - 1), "j", "007", "k", "-0", "l", "1.5"],
    "binary": ["", "", "\x00\xff", "x\r\ny", "key", "e" * 63, "k2", "e" * 64],
    "compressible": _pairs(40, lambda i: "same-value-same-value"),
    "long_value": ["a", "1", "b", "x" * 65],
    "big": _pairs(600),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_redis_dump_restores_in_keel(pair, case):
    pair.ref.call("HSET", "h", *CASES[case])
    payload = pair.ref.call("DUMP", "h")
    assert pair.keel.call("RESTORE", "h", "0", payload) == b"OK"
    ordered = case not in ("big", "long_value")
    assert pair.keel.call("HGETALL", "h") == pair.ref.call("HGETALL", "h") if ordered else \
        sorted(pair.keel.call("HGETALL", "h")) == sorted(pair.ref.call("HGETALL", "h"))
    pair.check("OBJECT", "ENCODING", "h")
    pair.check("HLEN", "h")


@pytest.mark.parametrize("case", sorted(CASES))
def test_keel_dump_restores_in_redis(pair, case):
    pair.keel.call("HSET", "h", *CASES[case])
    value = rdb.restore(pair.keel.call("DUMP", "h"))
    assert pair.ref.call("RESTORE", "h", "0", rdb.dump(value, version=10)) == b"OK"
    pair.check("HGETALL", "h", sort=case in ("big", "long_value"))
    pair.check("OBJECT", "ENCODING", "h")


def test_small_listpack_payload_is_byte_equal_to_redis(pair):
    # Under 20 bytes Redis does not compress, so the bodies compare exactly.
    pair.check("HSET", "h", "a", "1", "b", "xy")
    theirs = pair.ref.call("DUMP", "h")
    ours = rdb.dump(rdb.restore(pair.keel.call("DUMP", "h")), version=10)
    assert ours == theirs


def test_keel_dump_is_version_11(k):
    k.call("HSET", "h", "a", "1")
    assert rdb.check_footer(k.call("DUMP", "h")) == 11


def _ziplist_payload(entries):
    return _payload(bytes((13,)) + rdb.encode_string(ziplist.encode(entries)))


def _zipmap_payload(pairs):
    return _payload(bytes((9,)) + rdb.encode_string(zipmap.encode([x for p in pairs for x in p])))


@pytest.mark.parametrize("make", ["ziplist", "zipmap"])
def test_old_encodings_load_like_redis(pair, make):
    entries = [b"a", b"1", b"bb", b"hello", b"n", b"-300", b"long", b"z" * 80]
    if make == "ziplist":
        payload = _ziplist_payload(entries)
    else:
        payload = _zipmap_payload(list(zip(entries[::2], entries[1::2])))
    assert pair.check("RESTORE", "h", "0", payload) == b"OK"
    pair.check("HGETALL", "h", sort=True)
    # A value over 64 bytes: a zipmap becomes a table, a ziplist stays packed, as Redis loads them.
    assert pair.check("OBJECT", "ENCODING", "h") == (b"listpack" if make == "ziplist" else b"hashtable")
    pair.check("HGET", "h", "n")


def test_a_listpack_with_a_long_value_stays_packed_as_in_redis(pair):
    payload = _listpack_payload([b"a", b"x" * 100])
    pair.check("RESTORE", "h", "0", payload)
    assert pair.check("OBJECT", "ENCODING", "h") == b"listpack"
    pair.check("HSET", "h", "b", "1")
    pair.check("HGETALL", "h")


def test_old_small_encodings_become_listpack(pair):
    pair.check("RESTORE", "z", "0", _ziplist_payload([b"a", b"1", b"b", b"2"]))
    pair.check("RESTORE", "m", "0", _zipmap_payload([(b"a", b"1"), (b"b", b"2")]))
    for key in ("z", "m"):
        pair.check("HGETALL", key)
        assert pair.check("OBJECT", "ENCODING", key) == b"listpack"


def _listpack_payload(entries):
    return _payload(bytes((16,)) + rdb.encode_string(listpack.encode(entries)))


def _damaged_listpack():
    lp = bytearray(listpack.encode([b"a", b"1"]))
    lp[6] = 0xF7  # an unused encoding byte
    return _payload(bytes((16,)) + rdb.encode_string(bytes(lp)))


DAMAGED = {
    "listpack_bad_entry": _damaged_listpack(),
    "listpack_truncated": _payload(bytes((16,)) + rdb.encode_string(listpack.encode([b"a", b"1"])[:-3])),
    "listpack_odd_entries": _listpack_payload([b"a", b"1", b"b"]),
    "listpack_empty": _listpack_payload([]),
    "listpack_duplicate_field": _listpack_payload([b"a", b"1", b"a", b"2"]),
    "table_empty": _payload(b"\x04\x00"),
    "table_truncated": _payload(b"\x04\x02" + rdb.encode_string(b"a") + rdb.encode_string(b"1")),
    "table_duplicate_field": _payload(b"\x04\x02" + b"".join(rdb.encode_string(s) for s in (b"a", b"1", b"a", b"2"))),
    "ziplist_truncated": _payload(bytes((13,)) + rdb.encode_string(ziplist.encode([b"a", b"1"])[:-3])),
    "ziplist_odd": _ziplist_payload([b"a"]),
    "zipmap_truncated": _payload(bytes((9,)) + rdb.encode_string(zipmap.encode([(b"a", b"1")])[:-1])),
    "blob_not_a_string": _payload(bytes((16,)) + b"\xc5"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_payload_is_refused_and_stores_nothing(k, case):
    assert k.call("RESTORE", "h", "0", DAMAGED[case]) == Err(errors.DUMP_PAYLOAD_BAD_DATA)
    assert k.call("EXISTS", "h") == 0
    assert k.call("PING") == b"PONG"


# Redis 7.0 (sanitize-dump-payload no) also accepts some of the others: an
# unknown entry encoding it never reads, duplicate fields; Keel refuses them.
@pytest.mark.parametrize("case", ["listpack_truncated", "table_empty", "table_truncated", "ziplist_odd",
                                  "ziplist_truncated", "listpack_empty"])
def test_redis_refuses_the_same_damage(redis_ref, case):
    c = redis_ref.client()
    try:
        r = c.call("RESTORE", "h", "0", DAMAGED[case])
        assert isinstance(r, Err) and "Bad data format" in r
    finally:
        c.call("DEL", "h")
        c.close()


def test_wrong_checksum_is_a_version_error(k):
    payload = bytearray(_listpack_payload([b"a", b"1"]))
    payload[3] ^= 1
    assert k.call("RESTORE", "h", "0", bytes(payload)) == Err(errors.DUMP_PAYLOAD_VERSION)


def test_decoded_encoding_follows_the_default_thresholds():
    small = rdb.restore(_payload(b"\x04\x01" + rdb.encode_string(b"a") + rdb.encode_string(b"1")))
    assert small.encoding == "listpack" and small.to_dict() == {b"a": b"1"}
    entries = [x for i in range(Limits().hash_max_listpack_entries + 1) for x in (b"f%d" % i, b"v")]
    assert rdb.restore(_listpack_payload(entries)).encoding == "hashtable"
    assert rdb.restore(_listpack_payload(entries[:-2])).encoding == "listpack"


def test_encode_decode_round_trip_keeps_order_and_encoding():
    limits = Limits()
    h = Hash()
    h.set_pairs([b"HSET", b"k", b"z", b"1", b"a", b"2", b"m", b"3"], 2, limits)
    back = rdb.restore(rdb.dump(h))
    assert back.flat() == h.flat() and back.encoding == "listpack"
    h.set(b"long", b"x" * 100, limits)
    back = rdb.restore(rdb.dump(h))
    assert back.to_dict() == h.to_dict() and back.encoding == "hashtable"


# --- restarts ----------------------------------------------------------------------

def _fill(c):
    c.call("HSET", "small", "b", "2", "a", "1", "n", "12")
    c.call("HINCRBYFLOAT", "small", "f", "10.5")
    c.call("HINCRBYFLOAT", "small", "f", "0.1")
    c.call("HSET", "wide", *_pairs(600))
    c.call("HDEL", "wide", "f7")
    c.call("HSET", "long", "a", "x" * 100)
    c.call("HSET", "gone", "a", "1")
    c.call("HDEL", "gone", "a")


def _state(c):
    return {key: (c.call("OBJECT", "ENCODING", key), c.call("HGETALL", key))
            for key in ("small", "wide", "long", "gone")}


@pytest.mark.parametrize("how", ["save", "kill"])
def test_restart_keeps_every_hash(tmp_path, how):
    # "save": SAVE, then a clean stop (the checkpoint). "kill": kill -9 with
    # no checkpoint of these keys, so the restart replays the log's effects.
    server = KeelProcess(dir=str(tmp_path)).start()
    try:
        c = server.client()
        _fill(c)
        before = _state(c)
        if how == "save":
            assert c.call("SAVE") == b"OK"
        c.close()
        if how == "save":
            server.stop()
        else:
            server.kill()
        server.start()
        c = server.client()
        after = _state(c)
        c.close()
    finally:
        server.stop()
    assert after == before
    assert before["small"][1][-2:] == [b"f", b"10.6"] and before["gone"][1] == []
    assert [v[0] for v in before.values()][:3] == [b"listpack", b"hashtable", b"hashtable"]


def test_table_strings_are_encoded_as_rdb_encodes_them():
    # The table encoder's shortcut for strings that cannot be integers must
    # write exactly what rdb.encode_string writes, integers included.
    tricky = [b"", b"0", b"-", b"-0", b"01", b"+1", b"12345678901", b"123456789012", b"2147483647", b"2147483648",
              b"-2147483648", b"-2147483649", b"127", b"-129", b"x" * 63, b"x" * 64, b"-x", b"9" * 11, b"1 "]
    limits = Limits()
    h = Hash()
    h.set_pairs([b"HSET", b"k"] + [x for i, s in enumerate(tricky) for x in (s, b"%d" % i)] + [b"z" * 80, b"1"],
                2, limits)
    assert h.encoding == "hashtable"
    expected = b"\x04" + rdb.encode_length(len(tricky) + 1) + b"".join(
        rdb.encode_string(s) for f, v in h.to_dict().items() for s in (f, v))
    assert rdb.encode_value(h) == expected
    assert rdb.restore(rdb.dump(h)).to_dict() == h.to_dict()
