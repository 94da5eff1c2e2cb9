"""wal.checkpoint and strings written in place: a string is bytes or bytearray.

APPEND, SETRANGE, SETBIT and BITFIELD change a bytearray value in place and
mark the key changed (``Database.touched``). A checkpoint must still be the
keyspace as of one loop turn: the capture copies a bytearray it takes, and
the writer stores either kind as a plain string, loaded back as bytes.
"""

from __future__ import annotations

import pytest

from engine.keyspace import Keyspace
from wal.checkpoint import Checkpointer, Snapshot, db_prefix, encode_record

FAR = 4_000_000_000_000  # an expiry time far in the future (ms)
CHUNK = 500


@pytest.fixture
def cp(tmp_path):
    c = Checkpointer(str(tmp_path / "cp"))
    yield c
    c.close()


def append(ks: Keyspace, key: bytes, more: bytes, db: int = 0) -> None:
    """What APPEND does to a bytearray value: grow it in place, mark the key."""
    d = ks.dbs[db]
    d.data[key].extend(more)
    d.touched(key)


def as_bytes(ks: Keyspace) -> list:
    """The keyspace as a checkpoint holds it: every string as bytes."""
    return [({k: bytes(v) for k, v in db.data.items()}, dict(db.expires)) for db in ks.dbs]


def reloaded(cp: Checkpointer) -> Keyspace:
    ks = Keyspace()
    cp.load(ks)
    return ks


def capture_while_appending(cp: Checkpointer, ks: Keyspace, keys: list[bytes]) -> tuple[Snapshot, list]:
    """A chunked capture with ``keys`` appended to before, between and after
    its chunks; the snapshot and the keyspace as of ``finish()``."""
    cap = cp.begin_capture(ks)
    n = 0
    while True:
        for key in keys:
            append(ks, key, b"+%d" % n)
        n += 1
        if cap.step(CHUNK):
            break
    snap = cap.finish()
    at_finish = as_bytes(ks)
    for key in keys:
        append(ks, key, b"after finish")
    return snap, at_finish


def test_a_whole_capture_takes_a_bytearray_as_of_finish_while_it_is_appended_to(cp):
    ks = Keyspace()
    d0 = ks.dbs[0]
    # First in the dict: the walk takes them in its first chunk, then they grow.
    d0.set(b"log", bytearray(b"start"))
    d0.set(b"ttl-log", bytearray(b"t"))
    d0.set_expire(b"ttl-log", FAR)
    for i in range(3 * CHUNK):
        d0.set(b"key:%d" % i, b"v%d" % i)
    cp.start_tracking(ks)  # a keyspace not loaded here: the first capture is whole
    snap, at_finish = capture_while_appending(cp, ks, [b"log", b"ttl-log"])
    cp.write(snap, 1)
    back = reloaded(cp)
    assert as_bytes(back) == at_finish
    assert back.dbs[0].data[b"log"].startswith(b"start+0+1")
    assert not back.dbs[0].data[b"log"].endswith(b"after finish")


def test_an_incremental_capture_takes_a_bytearray_as_of_finish_while_it_is_appended_to(cp):
    ks = Keyspace()
    d0 = ks.dbs[0]
    for i in range(3 * CHUNK):
        d0.set(b"key:%d" % i, b"v%d" % i)
    cp.start_tracking(ks)
    cp.write(cp.capture(ks), 1)
    d0.set(b"log", bytearray(b"start"))
    d0.set(b"ttl-log", bytearray(b"t"))
    d0.set_expire(b"ttl-log", FAR)
    for i in range(0, 3 * CHUNK, 2):  # enough changed keys for several chunks
        d0.set(b"key:%d" % i, b"new")
    snap, at_finish = capture_while_appending(cp, ks, [b"log", b"ttl-log"])
    cp.write(snap, 2)
    assert as_bytes(reloaded(cp)) == at_finish
    # The changes after finish() are the next checkpoint's.
    cp.write(cp.capture(ks), 3)
    assert as_bytes(reloaded(cp)) == as_bytes(ks)


def test_the_writer_stores_a_bytearray_as_a_plain_string(cp):
    lkey = db_prefix(0) + b"k"
    assert encode_record(lkey, bytearray(b"abc"), None) == encode_record(lkey, b"abc", None)
    assert encode_record(lkey, bytearray(b"abc"), FAR) == encode_record(lkey, b"abc", FAR)
    # Handed to the writer directly, as a snapshot that did not copy them:
    # bucketed (no TTL), one record each (with a TTL), in whole and changed parts.
    cp.write(Snapshot(True, [(0, True, [([b"a", b"b"], [bytearray(b"1"), bytearray(b"2")], [None, FAR])])]), 1)
    cp.write(Snapshot(False, [(1, False, [b"c", b"d"], [bytearray(b"3"), bytearray(b"4")], [None, FAR]),
                              (2, False, [b"e"], [bytearray(b"5")], None)]), 2)
    back = reloaded(cp)
    got = [(db.data, db.expires) for db in back.dbs[:3]]
    assert got == [({b"a": b"1", b"b": b"2"}, {b"b": FAR}),
                   ({b"c": b"3", b"d": b"4"}, {b"d": FAR}),
                   ({b"e": b"5"}, {})]
    assert all(type(v) is bytes for db in back.dbs for v in db.data.values())
