"""Sets in RDB: DUMP/RESTORE exchanged with redis-server, damage refused, and
checkpoints (SAVE, restart) carrying every encoding.

Redis 7.0 writes a set as an intset (type 11) or a hash table (type 2); Keel
reads both and writes them back so that 7.0 restores them. Keel writes a
listpack set as 7.2 does (type 20), which 7.0 cannot read: that refusal is
tested too, so a change on either side shows.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors, intset, listpack, rdb
from engine.keyspace import Keyspace
from engine.session import Session
from engine.types.set import Set
from tests.support import Err, KeelProcess, run

BIG = [f"member:{i}" for i in range(300)]
BAD = Err(errors.DUMP_PAYLOAD_BAD_DATA)


def v10(payload: bytes) -> bytes:
    """A Keel payload relabelled as RDB version 10, which Redis 7.0 accepts."""
    return rdb.dump(rdb.restore(payload), version=10)


def payload(body: bytes) -> bytes:
    """A version-10 DUMP payload around ``body`` (type byte + value), checksum right."""
    p = body + b"\x0a\x00"
    return p + rdb.crc64(p).to_bytes(8, "little")


def rdb_string(b: bytes) -> bytes:
    return rdb.encode_length(len(b)) + b


SETS = {
    "small ints": ["1", "2", "3"],
    "wide ints": ["-9223372036854775808", "9223372036854775807", "0", "70000"],
    "many ints": [str(i * 7) for i in range(400)],
    "too many ints": [str(i) for i in range(600)],
    "strings": ["a", "b", "hello", "1"],
    "many strings": BIG,
    "long string": ["x" * 100, "y"],
}


@pytest.mark.parametrize("name", list(SETS))
def test_redis_dump_restores_in_keel_with_the_same_members(pair, name):
    pair.ref.call("SADD", "s", *SETS[name])
    dumped = pair.ref.call("DUMP", "s")
    assert pair.keel.call("RESTORE", "s", 0, dumped) == b"OK"
    assert sorted(pair.keel.call("SMEMBERS", "s")) == sorted(pair.ref.call("SMEMBERS", "s"))
    assert pair.keel.call("SCARD", "s") == len(SETS[name])


def test_redis_payloads_load_into_7_2s_encodings(pair):
    expect = {"small ints": b"intset", "wide ints": b"intset", "many ints": b"intset",
              "too many ints": b"hashtable", "strings": b"listpack", "many strings": b"hashtable",
              "long string": b"hashtable"}
    for name, members in SETS.items():
        pair.ref.call("DEL", "s")
        pair.ref.call("SADD", "s", *members)
        pair.keel.call("RESTORE", name, 0, pair.ref.call("DUMP", "s"))
        assert pair.keel.call("OBJECT", "ENCODING", name) == expect[name], name


@pytest.mark.parametrize("name", ["small ints", "wide ints", "many ints", "too many ints", "many strings",
                                  "long string"])
def test_keel_dump_of_intsets_and_hashtables_restores_in_redis(pair, name):
    pair.keel.call("SADD", "s", *SETS[name])
    assert pair.keel.call("OBJECT", "ENCODING", "s") in (b"intset", b"hashtable")
    assert pair.ref.call("RESTORE", "s", 0, v10(pair.keel.call("DUMP", "s"))) == b"OK"
    assert sorted(pair.ref.call("SMEMBERS", "s")) == sorted(pair.keel.call("SMEMBERS", "s"))


def test_a_small_intset_dumps_byte_for_byte_as_redis(pair):
    for members in (["1", "2", "3"], ["-70000", "5"], ["9223372036854775807"]):
        pair.both("DEL", "s")
        pair.both("SADD", "s", *members)
        keel, ref = pair.both("DUMP", "s")
        assert v10(keel) == ref


def test_keel_writes_a_listpack_set_as_7_2_does_and_7_0_cannot_restore_it(pair):
    pair.keel.call("SADD", "s", "a", "b", "7")
    dumped = pair.keel.call("DUMP", "s")
    assert dumped[0] == 20 and listpack.decode(rdb.read_string(dumped, 1)[0]) == [b"a", b"b", b"7"]
    assert pair.ref.call("RESTORE", "s", 0, v10(dumped)) == BAD
    assert pair.keel.call("RESTORE", "t", 0, dumped) == b"OK"
    assert pair.keel.call("SMEMBERS", "t") == [b"a", b"b", b"7"]
    assert pair.keel.call("OBJECT", "ENCODING", "t") == b"listpack"


# --- damage: checksum right, structure wrong ----------------------------------------------

def _intset(width: int, count: int, values: list[int]) -> bytes:
    return width.to_bytes(4, "little") + count.to_bytes(4, "little") + \
        b"".join(v.to_bytes(width, "little", signed=True) for v in values)


DAMAGED = {
    "intset width 3": b"\x0b" + rdb_string(_intset(3, 1, [1])),
    "intset count says 3, holds 2": b"\x0b" + rdb_string(_intset(2, 3, [1, 2])),
    "intset out of order": b"\x0b" + rdb_string(_intset(2, 2, [2, 1])),
    "intset repeats": b"\x0b" + rdb_string(_intset(2, 2, [1, 1])),
    "intset empty": b"\x0b" + rdb_string(_intset(2, 0, [])),
    "intset shorter than its header": b"\x0b" + rdb_string(b"\x02\x00"),
    "intset string runs past the end": b"\x0b\x3f" + _intset(2, 1, [1]),
    "listpack truncated": b"\x14" + rdb_string(listpack.encode([b"a", b"b"])[:-3]),
    "listpack without terminator": b"\x14" + rdb_string(listpack.encode([b"a"])[:-1] + b"\x00"),
    "listpack empty": b"\x14" + rdb_string(listpack.encode([])),
    "listpack repeats a member": b"\x14" + rdb_string(listpack.encode([b"a", b"a"])),
    "listpack repeats an integer": b"\x14" + rdb_string(listpack.encode([b"7", 7])),
    "table of no members": b"\x02\x00",
    "table repeats a member": b"\x02\x02" + rdb.encode_string(b"a") + rdb.encode_string(b"a"),
    "table repeats an integer": b"\x02\x02" + rdb.encode_string(b"5") + b"\x01\x35",
    "table shorter than its count": b"\x02\x05" + rdb.encode_string(b"a"),
    "table member runs past the end": b"\x02\x01\x30ab",
    "table length special": b"\x02\xc0\x01",
}


def _listpack_count_wrong() -> bytes:
    buf = bytearray(listpack.encode([b"a", b"b"]))
    buf[4] = 5
    return b"\x14" + rdb_string(bytes(buf))


DAMAGED["listpack count wrong"] = _listpack_count_wrong()


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_damaged_set_payload_is_refused_and_stores_nothing(k, name):
    assert k.call("RESTORE", "s", 0, payload(DAMAGED[name])) == BAD
    assert k.call("EXISTS", "s") == 0
    assert k.call("PING") == b"PONG"


@pytest.mark.parametrize("name", [n for n in DAMAGED if n.startswith(("intset width", "intset count", "intset empty",
                                                                        "table"))])
def test_redis_refuses_the_same_damage(redis_ref, name):
    r = redis_ref.client()
    try:
        assert r.call("RESTORE", "s", 0, payload(DAMAGED[name]), "REPLACE") == BAD
    finally:
        r.close()


def test_restore_of_a_damaged_payload_over_an_existing_set_keeps_it(k):
    k.call("SADD", "s", "a")
    assert k.call("RESTORE", "s", 0, payload(DAMAGED["table repeats a member"]), "REPLACE") == BAD
    assert k.call("SMEMBERS", "s") == [b"a"]


# --- engine: codec round trips --------------------------------------------------------------

@pytest.mark.parametrize("members", [["1", "2", "3"], ["a", "1"], BIG, [str(i) for i in range(600)]])
def test_dump_restore_round_trip_keeps_members_and_encoding(members):
    c = Session(Keyspace())
    run(c, "SADD", "s", *members)
    v = c.db.get(b"s")
    back = rdb.restore(rdb.dump(v))
    assert type(back) is Set and back.encoding() == v.encoding()
    assert back.members() == v.members()


def test_an_intset_payload_longer_than_the_intset_limit_loads_as_a_table():
    ints = list(range(1000))
    body = b"\x0b" + rdb_string(intset.encode(ints))
    back = rdb.restore(payload(body))
    assert back.encoding() == "hashtable" and sorted(back.members()) == sorted(b"%d" % i for i in ints)


def test_a_listpack_payload_longer_than_the_listpack_limit_loads_as_a_table():
    members = [b"m%d" % i for i in range(200)]
    back = rdb.restore(payload(b"\x14" + rdb_string(listpack.encode(members))))
    assert back.encoding() == "hashtable" and back.members() == members


# --- checkpoints: SAVE, restart, same contents ----------------------------------------------

def _contents(client, keys):
    return {key: (sorted(client.call("SMEMBERS", key)), client.call("OBJECT", "ENCODING", key)) for key in keys}


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_a_restart_brings_back_every_encoding(tmp_path, appendonly):
    proc = KeelProcess("--appendonly", appendonly, dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        cl.call("SADD", "i", "1", "2", "-3")
        cl.call("SADD", "l", "a", "b", "3")
        cl.call("SADD", "h", *BIG)
        cl.call("SADD", "n", *[str(i) for i in range(600)])
        cl.call("SPOP", "h", "20")
        cl.call("SREM", "l", "b")
        cl.call("SAVE")
        cl.call("SADD", "after", "x")
        if appendonly == "yes":
            cl.call("SPOP", "h")  # replayed from the log after the checkpoint
        before = _contents(cl, ["i", "l", "h", "n", "after"])
        cl.close()
    finally:
        proc.kill()
    proc = KeelProcess("--appendonly", appendonly, dir=str(tmp_path)).start()
    try:
        cl = proc.client()
        after = _contents(cl, ["i", "l", "h", "n", "after"])
        if appendonly == "no":  # no log: what came after SAVE is gone
            assert after.pop("after") == ([], None)
            del before["after"]
        assert after == before
        assert [before[k][1] for k in ("i", "l", "h", "n")] == [b"intset", b"listpack", b"hashtable", b"hashtable"]
        cl.close()
    finally:
        proc.cleanup()


def test_a_table_is_written_member_by_member_as_rdb_strings():
    odd = [b"", b"-", b"-x", b"0", b"007", b"-12", b"12345678901", b"123456789012", b"x" * 63, b"y" * 64,
           b"z" * 20000, b"2147483648", b"-2147483648", b"9" * 11]
    s = Set.build(odd + [b"m%d" % i for i in range(200)], Keyspace().limits)
    assert s.encoding() == "hashtable"
    expect = b"\x02" + rdb.encode_length(len(s)) + b"".join(rdb.encode_string(m) for m in s.members())
    assert rdb.encode_value(s) == expect
    assert sorted(rdb.restore(rdb.dump(s)).members()) == sorted(s.members())
