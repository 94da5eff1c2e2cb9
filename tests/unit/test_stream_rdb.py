"""Streams in RDB: DUMP payloads exchanged with redis-server, damage refused with ``Bad data format``,
and restarts (checkpoint, log) keeping entries, groups, PEL and consumers (a
consumer's seen and active times are not journaled: after replaying the log
they are the replay's, as after Redis loads its AOF).

redis-server 7.0 writes ``STREAM_LISTPACKS_2`` (19) in RDB 10; Keel writes
7.2's ``STREAM_LISTPACKS_3`` (21) in RDB 11, which a 7.0 refuses by its
version. The two bodies differ only in each consumer's active time, so a
Keel payload of a stream whose groups have no consumers, relabelled 19 and
version 10, is what a 7.0 reads: that checks Keel's node listpacks and
metadata against the real reader.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine import rdb
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import Err, KeelProcess, run

BAD_DATA = Err("ERR Bad data format")


def _payload(body: bytes, version: int = 10) -> bytes:
    data = body + version.to_bytes(2, "little")
    return data + rdb.crc64(data).to_bytes(8, "little")


def _fill(c, shape: str) -> None:
    if shape == "empty-with-group":
        c.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        return
    n = {"small": 5, "nodes": 450, "big-values": 30}[shape]
    for i in range(1, n + 1):
        if shape == "big-values":
            fields = ["a", "v" * (i * 200), "n", str(-(2 ** (i + 20)))]
        elif i % 4 == 0:
            fields = ["other", str(i), "x", "", "y", "-12"]
        else:
            fields = ["a", str(i), "b", "w" * (i % 70)]
        c.call("XADD", "s", f"{i * 3}-{i % 2}", *fields)
    c.call("XDEL", "s", "6-0", f"{(n // 2) * 3}-{(n // 2) % 2}")
    c.call("XGROUP", "CREATE", "s", "g", "0")
    c.call("XGROUP", "CREATE", "s", "unknown-read", "9-0")
    c.call("XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">")
    c.call("XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">")
    c.call("XGROUP", "CREATECONSUMER", "s", "g", "idle")
    c.call("XACK", "s", "g", "3-1")


SHAPES = ["empty-with-group", "small", "nodes", "big-values"]


def _full(c, key="s"):
    """XINFO STREAM FULL without 7.2's active-time (the reference lacks it)."""
    full = c.call("XINFO", "STREAM", key, "FULL", "COUNT", "0")
    out = dict(zip(full[::2], full[1::2]))
    for g in out[b"groups"]:
        for cons in g[-1]:
            if b"active-time" in cons:
                j = cons.index(b"active-time")
                del cons[j:j + 2]
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_a_redis_payload_restores_identically(pair, shape):
    _fill(pair.ref, shape)
    payload = pair.ref.call("DUMP", "s")
    assert pair.keel.call("RESTORE", "s", "0", payload) == b"OK"
    assert _full(pair.keel) == _full(pair.ref)
    assert pair.keel.call("OBJECT", "ENCODING", "s") == b"stream"
    # and it goes on as Redis's does: appends, node boundaries, reads
    for side in (pair.keel, pair.ref):
        side.call("XADD", "s", "99999-1", "a", "1", "b", "2")
        side.call("XREADGROUP", "GROUP", "g", "carol", "COUNT", "2", "STREAMS", "s", ">")
    assert _full(pair.keel)[b"radix-tree-keys"] == _full(pair.ref)[b"radix-tree-keys"]
    pair.check("XRANGE", "s", "-", "+")


@pytest.mark.parametrize("shape", SHAPES)
def test_keels_nodes_and_metadata_read_on_redis(pair, shape):
    _fill(pair.keel, shape)
    for g in pair.keel.call("XINFO", "GROUPS", "s"):
        for cons in pair.keel.call("XINFO", "CONSUMERS", "s", g[1]):
            pair.keel.call("XGROUP", "DELCONSUMER", "s", g[1], cons[1])
    payload = pair.keel.call("DUMP", "s")
    assert pair.ref.call("RESTORE", "s", "0", payload) == Err("ERR DUMP payload version or checksum are wrong")
    assert payload[0] == 21
    relabelled = _payload(bytes((19,)) + payload[1:-10])
    assert pair.ref.call("RESTORE", "s", "0", relabelled) == b"OK"
    assert _full(pair.ref) == _full(pair.keel)


@pytest.mark.parametrize("shape", SHAPES)
def test_keels_own_payload_round_trips(k, shape):
    _fill(k, shape)
    payload = k.call("DUMP", "s")
    assert k.call("RESTORE", "t", "0", payload) == b"OK"
    a, b = k.call("XINFO", "STREAM", "s", "FULL", "COUNT", "0"), k.call("XINFO", "STREAM", "t", "FULL", "COUNT", "0")
    assert a == b


def test_engine_payload_is_stable():
    c = Session(Keyspace())
    for i in range(1, 300):
        run(c, "XADD", "s", f"{i}-1", "f", str(i))
    run(c, "XGROUP", "CREATE", "s", "g", "0")
    run(c, "XREADGROUP", "GROUP", "g", "c", "COUNT", "4", "STREAMS", "s", ">")
    s = c.db.get(b"s")
    body = rdb.encode_value(s)
    again, end = rdb.decode_value(body)
    assert end == len(body) and rdb.encode_value(again) == body


def _good_body(k) -> bytes:
    k.call("XADD", "s", "1-1", "a", "1")
    k.call("XADD", "s", "2-1", "a", "2")
    k.call("XGROUP", "CREATE", "s", "g", "0")
    k.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    return k.call("DUMP", "s")[:-10]


DAMAGE = {
    "truncated": lambda b: b[:-5],
    "node-key-short": lambda b: b[:2] + b"\x0f" + b[3:18],
    "listpack-garbage": lambda b: b[:19] + b"\x10" + b"\xff" * 16 + b[36:],
    "length-wrong": None,  # built below
    "empty": lambda b: b[:1],
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_a_damaged_payload_is_refused_and_stores_nothing(k, name):
    body = _good_body(k)
    if name == "length-wrong":
        s = rdb.decode_value(body)[0]
        s.length += 1
        bad = rdb.encode_value(s)
    else:
        bad = DAMAGE[name](body)
    assert k.call("RESTORE", "x", "0", _payload(bad, 11)) == BAD_DATA
    assert k.call("EXISTS", "x") == 0


@pytest.mark.parametrize("appendonly", ["yes", "no"])
def test_a_restart_brings_back_streams_and_groups(tmp_path, appendonly):
    proc = KeelProcess("--appendonly", appendonly, dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        _fill(cl, "nodes")
        cl.call("SAVE")
        if appendonly == "yes":
            cl.call("XADD", "s", "999999-1", "a", "late")  # replayed from the log after the checkpoint
            cl.call("XREADGROUP", "GROUP", "g", "dave", "COUNT", "4", "STREAMS", "s", ">")
            cl.call("XCLAIM", "s", "g", "erin", "0", "9-1", "12-0")
        before = cl.call("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
        cl.close()
    finally:
        proc.kill()
    proc = KeelProcess("--appendonly", appendonly, dir=str(tmp_path)).start()
    try:
        after = proc.client().call("XINFO", "STREAM", "s", "FULL", "COUNT", "0")
        if appendonly == "yes":
            # A consumer's seen and active times are not journaled (Redis's
            # AOF does not carry them either): replayed, they are the replay's.
            before, after = _without_consumer_times(before), _without_consumer_times(after)
        assert after == before
    finally:
        proc.cleanup()


def _without_consumer_times(full):
    for g in dict(zip(full[::2], full[1::2]))[b"groups"]:
        for cons in g[-1]:
            for field in (b"seen-time", b"active-time"):
                cons[cons.index(field) + 1] = None
    return full
