"""Lists in RDB: DUMP payloads exchanged with redis-server both ways, damage refused, restarts.

Redis 7.0 and 7.2 write a list as quicklist 2 (RDB type 18): a node count,
then per node a container (2 packed: a listpack, LZF-compressed when that
pays; 1 plain: one element) and its string. Older payloads are a quicklist
of ziplists (14), one ziplist (10) or a plain list of strings (1). Keel's
payloads (``version=10``, what 7.0 accepts) must restore on Redis with the
same contents, Redis's on Keel, and a payload whose checksum is right but
whose structure is not must be refused with ``Bad data format``, storing
nothing. A SAVE and a restart (checkpoint), and a restart from the log
alone, keep every list and its encoding.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine import errors, listpack, rdb, ziplist
from engine.types.list import List
from tests.support import Err, KeelProcess


def _payload(body: bytes, version: int = 10) -> bytes:
    data = body + version.to_bytes(2, "little")
    return data + rdb.crc64(data).to_bytes(8, "little")


CASES = {
    "small": ["a", "b", "c"],
    "integers": ["0", "1", "127", "128", "-1", "4095", "-4096", "70000", str(2**40), str(-2**63),
                 str(2**63 - 1), "007", "-0", "1.5", ""],
    "binary": ["", "\x00\xff", "x\r\ny", "e" * 63, "e" * 64, "e" * 5000],
    "compressible": ["same-value-same-value"] * 50,
    "many_nodes": [f"element:{i}" for i in range(5000)],
    "big_element": ["a", "x" * 20000, "b"],
}


def _fill_redis(client, key, values):
    for i in range(0, len(values), 500):
        client.call("RPUSH", key, *values[i:i + 500])


@pytest.mark.parametrize("case", sorted(CASES))
def test_redis_dump_restores_in_keel(pair, case):
    _fill_redis(pair.ref, "l", CASES[case])
    payload = pair.ref.call("DUMP", "l")
    assert payload[0] == 18
    assert pair.keel.call("RESTORE", "l", "0", payload) == b"OK"
    assert pair.keel.call("LRANGE", "l", 0, -1) == pair.ref.call("LRANGE", "l", 0, -1)
    pair.check("LLEN", "l")
    pair.check("LINDEX", "l", -2)


@pytest.mark.parametrize("case", sorted(CASES))
def test_keel_dump_restores_in_redis(pair, case):
    _fill_redis(pair.keel, "l", CASES[case])
    value = rdb.restore(pair.keel.call("DUMP", "l"))
    assert pair.ref.call("RESTORE", "l", "0", rdb.dump(value, version=10)) == b"OK"
    assert pair.ref.call("LRANGE", "l", 0, -1) == pair.keel.call("LRANGE", "l", 0, -1)


def test_small_list_dump_is_byte_equal_to_redis_apart_from_the_version(pair):
    pair.check("RPUSH", "l", "a", "12", "bc")
    ours, theirs = pair.keel.call("DUMP", "l"), pair.ref.call("DUMP", "l")
    assert ours[:-10] == theirs[:-10]


def test_old_encodings_restore():
    items = [b"a", b"12", b"-7", b"x" * 70]
    old = {
        1: bytes([1]) + rdb.encode_length(4) + b"".join(rdb.encode_string(x) for x in items),
        10: bytes([10]) + rdb.encode_string(ziplist.encode(items)),
        14: bytes([14]) + rdb.encode_length(2) + rdb.encode_string(ziplist.encode(items[:2]))
        + rdb.encode_string(ziplist.encode(items[2:])),
    }
    for type_byte, body in old.items():
        value = rdb.restore(_payload(body))
        assert value.elements() == items, type_byte
    assert rdb.restore(_payload(old[14])).encoding == "quicklist"  # two nodes stay two nodes
    assert rdb.restore(_payload(old[10])).encoding == "listpack"


def test_old_encodings_restore_on_redis_alike(pair):
    items = [b"a", b"12", b"-7", b"x" * 70]
    body = bytes([14]) + rdb.encode_length(1) + rdb.encode_string(ziplist.encode(items))
    assert pair.ref.call("RESTORE", "l", "0", _payload(body)) == b"OK"
    assert pair.keel.call("RESTORE", "l", "0", _payload(body)) == b"OK"
    pair.check("LRANGE", "l", 0, -1)


def test_a_restored_single_node_is_a_listpack_and_many_nodes_a_quicklist(pair):
    _fill_redis(pair.ref, "l", CASES["small"])
    _fill_redis(pair.ref, "m", CASES["many_nodes"])
    pair.keel.call("RESTORE", "l", "0", pair.ref.call("DUMP", "l"))
    pair.keel.call("RESTORE", "m", "0", pair.ref.call("DUMP", "m"))
    assert pair.keel.call("OBJECT", "ENCODING", "l") == b"listpack"
    assert pair.keel.call("OBJECT", "ENCODING", "m") == b"quicklist"


_LP = listpack.encode([b"a", b"b"])
DAMAGED = {
    "unknown_container": bytes([18, 1, 3]) + rdb.encode_string(_LP),
    "no_nodes": bytes([18, 0]),
    "empty_listpack_only": bytes([18, 1, 2]) + rdb.encode_string(listpack.encode([])),
    "listpack_total_wrong": bytes([18, 1, 2]) + rdb.encode_string(b"\x20" + _LP[1:]),
    "listpack_count_wrong": bytes([18, 1, 2]) + rdb.encode_string(_LP[:4] + b"\x05\x00" + _LP[6:]),
    "listpack_no_terminator": bytes([18, 1, 2]) + rdb.encode_string(_LP[:-1] + b"\x00"),
    "node_missing": bytes([18, 2, 2]) + rdb.encode_string(_LP),
    "plain_list_empty": bytes([1, 0]),
    "ziplist_damaged": bytes([10]) + rdb.encode_string(b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"),
    "quicklist_ziplist_damaged": bytes([14, 1]) + rdb.encode_string(b"\xff" * 12),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_payload_is_refused_and_stores_nothing(keel, case):
    k = keel.client()
    k.call("FLUSHALL")
    assert k.call("RESTORE", "l", "0", _payload(DAMAGED[case])) == Err(errors.DUMP_PAYLOAD_BAD_DATA)
    assert k.call("EXISTS", "l") == 0
    assert k.call("PING") == b"PONG"
    k.close()


@pytest.mark.parametrize("case", ["unknown_container", "listpack_total_wrong", "listpack_no_terminator",
                                  "plain_list_empty"])
def test_redis_refuses_the_same_damage(pair, case):
    pair.check("RESTORE", "l", "0", _payload(DAMAGED[case]))


def _fill(c):
    c.call("RPUSH", "small", "a", "1", "b")
    c.call("LSET", "small", 1, "one")
    for i in range(0, 6000, 500):
        c.call("RPUSH", "big", *[f"element:{j}" for j in range(i, i + 500)])
    c.call("LPOP", "big", 10)
    c.call("LINSERT", "big", "BEFORE", "element:3000", "ins")
    c.call("RPUSH", "plain", "a", "x" * 20000, "b")
    c.call("RPUSH", "gone", "a")
    c.call("LPOP", "gone")


def _state(c):
    return {key: (c.call("OBJECT", "ENCODING", key), c.call("LRANGE", key, 0, -1))
            for key in ("small", "big", "plain", "gone")}


@pytest.mark.parametrize("save", [True, False])
def test_restart_keeps_every_list(tmp_path, save):
    server = KeelProcess(dir=str(tmp_path)).start()
    try:
        c = server.client()
        _fill(c)
        before = _state(c)
        if save:
            assert c.call("SAVE") == b"OK"
        c.close()
        server.stop()
        server.start()
        c = server.client()
        after = _state(c)
        c.close()
    finally:
        server.stop()
    assert after == before
    assert [v[0] for v in before.values()][:3] == [b"listpack", b"quicklist", b"quicklist"]
    assert before["gone"][1] == [] and len(before["big"][1]) == 5991


def test_encode_keeps_node_boundaries():
    lst = List([], -2)
    lst.push([b"element:%d" % i for i in range(3000)], False, -2)
    value = rdb.restore(rdb.dump(lst))
    assert [len(items) for _, items in value.nodes()] == [len(items) for _, items in lst.nodes()]
    assert value.elements() == lst.elements()
