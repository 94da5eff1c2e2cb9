"""Sorted sets in RDB: DUMP payloads exchanged with redis-server both ways, old encodings,
damage refused with ``Bad data format``, and restarts (checkpoint, log) keeping every encoding."""

from __future__ import annotations

import struct

import pytest

import engine.commands  # noqa: F401  (registers every command)
from engine import listpack, rdb, ziplist
from engine.types.zset import ZSet
from tests.support import Err, KeelProcess

BAD_DATA = Err("ERR Bad data format")


def _payload(body: bytes, version: int = 10) -> bytes:
    data = body + version.to_bytes(2, "little")
    return data + rdb.crc64(data).to_bytes(8, "little")


def _as_v10(payload: bytes) -> bytes:
    """Keel's version-11 payload relabelled as version 10 (what 7.0 accepts), bytes unchanged."""
    assert rdb.check_footer(payload) == rdb.RDB_VERSION
    return _payload(payload[:-10])


def _fill(client, key, kind):
    if kind == "listpack":
        client.call("ZADD", key, "1", "a", "2.5", "b", "-inf", "lo", "inf", "hi", "-0", "z", "1e18", "big",
                    "0.1", "tenth", "-42", "neg", "1", "x" * 64)
    elif kind == "long-member-listpack":
        client.call("CONFIG", "SET", "zset-max-listpack-value", "200")
        client.call("ZADD", key, "1", "a", "2", "y" * 150)
        client.call("CONFIG", "SET", "zset-max-listpack-value", "64")
    elif kind == "skiplist":
        client.call("ZADD", key, *[x for i in range(300) for x in (str(i * 0.37 - 20), f"m{i}")])
        client.call("ZADD", key, "inf", "hi", "-inf", "lo", "-0", "negzero")
    else:  # a small set with a long member: skiplist by member length
        client.call("ZADD", key, "1", "a", "3", "x" * 65)


KINDS = ["listpack", "long-member-listpack", "skiplist", "small-skiplist"]


def _contents(client, key):
    return client.call("ZRANGE", key, "0", "-1", "WITHSCORES"), client.call("OBJECT", "ENCODING", key)


@pytest.mark.parametrize("kind", KINDS)
def test_redis_dump_restores_in_keel(pair, kind):
    _fill(pair.ref, "k", kind)
    payload = pair.ref.call("DUMP", "k")
    assert pair.keel.call("RESTORE", "k", "0", payload) == b"OK"
    assert _contents(pair.keel, "k") == _contents(pair.ref, "k")
    pair.check("ZSCORE", "k", "a")


@pytest.mark.parametrize("kind", KINDS)
def test_keel_dump_restores_in_redis(pair, kind):
    _fill(pair.keel, "k", kind)
    payload = pair.keel.call("DUMP", "k")
    assert rdb.check_footer(payload) == rdb.RDB_VERSION
    assert pair.ref.call("RESTORE", "k", "0", _as_v10(payload)) == b"OK"
    assert _contents(pair.ref, "k") == _contents(pair.keel, "k")


@pytest.mark.parametrize("args", [("1", "a"), ("-3", "b", "0.5", "c"), ("2", "x") * 2])
def test_a_small_dump_is_byte_equal_to_redis_apart_from_the_version(pair, args):
    # Small enough that Redis does not LZF-compress the listpack (Keel never does).
    pair.both("ZADD", "k", *args)
    assert _as_v10(pair.keel.call("DUMP", "k")) == pair.ref.call("DUMP", "k")


def test_a_skiplist_dump_is_byte_equal_to_redis_apart_from_the_version(pair):
    for side in (pair.keel, pair.ref):
        side.call("CONFIG", "SET", "zset-max-listpack-entries", "0")
        side.call("ZADD", "k", "1", "a", "-2.5", "b", "inf", "c", "3", "12345")
        side.call("CONFIG", "SET", "zset-max-listpack-entries", "128")
    assert _as_v10(pair.keel.call("DUMP", "k")) == pair.ref.call("DUMP", "k")


def _ziplist_payload(entries):
    return _payload(bytes((12,)) + rdb.encode_string(ziplist.encode(entries)))


def _zset_v1_payload(pairs):
    body = [bytes((3,)), rdb.encode_length(len(pairs))]
    for m, score in pairs:
        body.append(rdb.encode_string(m))
        special = {b"inf": 254, b"-inf": 255}.get(score)
        body.append(bytes((special,)) if special else bytes((len(score),)) + score)
    return _payload(b"".join(body))


def test_a_ziplist_payload_loads_like_redis(pair):
    payload = _ziplist_payload([b"c", b"-7", b"a", b"1", b"b", b"2.5", b"z" * 80, b"3"])
    assert pair.check("RESTORE", "k", "0", payload) == b"OK"
    pair.check("ZRANGE", "k", "0", "-1", "WITHSCORES")
    pair.check("OBJECT", "ENCODING", "k")


@pytest.mark.parametrize("n", [3, 200])
def test_a_version_1_zset_payload_loads_like_redis(pair, n):
    pairs = [(b"m%d" % i, b"%g" % (i / 3)) for i in range(n)] + [(b"hi", b"inf"), (b"lo", b"-inf")]
    payload = _zset_v1_payload(pairs)
    assert pair.check("RESTORE", "k", "0", payload) == b"OK"
    pair.check("ZRANGE", "k", "0", "-1", "WITHSCORES")
    pair.check("OBJECT", "ENCODING", "k")


def _listpack_payload(entries):
    return _payload(bytes((17,)) + rdb.encode_string(listpack.encode(entries)))


def _zset2_payload(pairs, count=None):
    body = [bytes((5,)), rdb.encode_length(len(pairs) if count is None else count)]
    for m, s in pairs:
        body.append(rdb.encode_string(m))
        body.append(struct.pack("<d", s))
    return _payload(b"".join(body))


DAMAGED = {
    "odd-listpack": _listpack_payload([b"a", b"1", b"b"]),
    "score-not-a-number": _listpack_payload([b"a", b"x1"]),
    "duplicate-member-listpack": _listpack_payload([b"a", b"1", b"a", b"2"]),
    "empty-listpack": _listpack_payload([]),
    "listpack-bad-structure": _payload(bytes((17,)) + rdb.encode_string(listpack.encode([b"a", b"1"])[:-1] + b"\x00")),
    "nan-score-zset2": _zset2_payload([(b"a", float("nan"))]),
    "duplicate-member-zset2": _zset2_payload([(b"a", 1.0), (b"a", 2.0)]),
    "duplicate-member-big-zset2": _zset2_payload([(b"m%d" % i, float(i)) for i in range(200)] + [(b"m7", 0.5)]),
    "string-past-the-end-zset2": _payload(bytes((5, 1, 9)) + b"abc"),
    "count-beyond-zset2": _zset2_payload([(b"a", 1.0)], count=2),
    "empty-zset2": _zset2_payload([]),
    "ziplist-bad-structure": _payload(bytes((12,)) + rdb.encode_string(b"\x0b\x00\x00\x00" + b"\x00" * 7)),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_payload_is_refused_and_stores_nothing(k, name):
    assert k.call("RESTORE", "k", "0", DAMAGED[name]) == BAD_DATA
    assert k.call("EXISTS", "k") == 0
    k.call("ZADD", "k", "1", "keep")
    assert k.call("RESTORE", "k", "0", DAMAGED[name], "REPLACE") == BAD_DATA
    assert k.call("ZRANGE", "k", "0", "-1") == [b"keep"]


@pytest.mark.parametrize("name", ["odd-listpack", "duplicate-member-listpack", "nan-score-zset2",
                                  "listpack-bad-structure", "duplicate-member-zset2", "count-beyond-zset2"])
def test_redis_refuses_the_same_damage(redis_ref, name):
    cl = redis_ref.client()
    try:
        cl.call("CONFIG", "SET", "sanitize-dump-payload", "yes")  # 7.0's default checks only the outline
        reply = cl.call("RESTORE", "damaged-" + name, "0", DAMAGED[name])
        assert isinstance(reply, Err) and "Bad data format" in reply, reply
    finally:
        cl.call("CONFIG", "SET", "sanitize-dump-payload", "no")
        cl.close()


def test_engine_round_trip_keeps_members_and_encoding():
    for pairs in ([(1.0, b"a"), (-0.5, b"b")], [(float(i), b"m%d" % i) for i in range(500)]):
        from engine.types.limits import Limits
        z = ZSet(pairs, Limits())
        back = rdb.restore(rdb.dump(z))
        assert back.items() == z.items() and back.encoding == z.encoding


# --- checkpoints: SAVE, restart, same contents ---------------------------------------

@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_a_restart_brings_back_every_encoding(tmp_path, appendonly):
    keys = ["small", "big", "long"]
    proc = KeelProcess("--appendonly", appendonly, dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        _fill(cl, "small", "listpack")
        _fill(cl, "big", "skiplist")
        _fill(cl, "long", "small-skiplist")
        cl.call("ZINCRBY", "small", "0.1", "a")
        cl.call("ZPOPMIN", "big", "5")
        cl.call("SAVE")
        cl.call("ZADD", "after", "1", "x")
        if appendonly == "yes":
            cl.call("ZADD", "big", "INCR", "0.3", "m200")  # replayed from the log after the checkpoint
            cl.call("ZREMRANGEBYSCORE", "small", "(0", "2")
        before = {key: _contents(cl, key) for key in keys + ["after"]}
        cl.close()
    finally:
        proc.kill()
    proc = KeelProcess("--appendonly", appendonly, dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        after = {key: _contents(cl, key) for key in keys + ["after"]}
        if appendonly == "no":
            assert after.pop("after") == ([], None)
            del before["after"]
        assert after == before
        assert [before[k][1] for k in keys] == [b"listpack", b"skiplist", b"skiplist"]
        cl.close()
    finally:
        proc.cleanup()
