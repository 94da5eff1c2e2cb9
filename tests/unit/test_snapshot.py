"""replication.snapshot and replication.rdbload in one process: a checkpoint
turned into an RDB file (every type, several databases, TTLs, function
libraries) parses back into a keyspace with the same DEBUG DIGEST; writes
committed after the snapshot's read transaction began never reach it; the
offset is checked; a damaged checkpoint or RDB is refused and leaves the
target keyspace empty."""

from __future__ import annotations

import asyncio
import threading

import pytest

import engine.commands  # noqa: F401
import server.scripting.function  # noqa: F401  (FUNCTION's commands)
from engine import digest
from engine.keyspace import Keyspace, now_ms
from engine.rdbfile import RdbError, RdbWriter, parse
from engine.session import Session
from replication import snapshot
from replication.rdbload import KeyspaceSink, load_rdb_bytes, load_rdb_file
from replication.snapshot import OffsetMoved, SnapshotError, rdb_from_checkpoint
from server.scripting.runner import Scripting
from tests.support import run
from wal.checkpoint import Checkpointer

LIBRARY = b"#!lua name=lib1\nredis.register_function('f1', function(keys, args) return 1 end)"


def keyspace() -> Keyspace:
    ks = Keyspace()
    ks.scripting = Scripting(ks)
    return ks


def fill(ks: Keyspace) -> None:
    """Every type in its small and large encodings, TTLs, three databases."""
    s = Session(ks)
    for i in range(300):
        run(s, "SET", f"str:{i}", f"value-{i}")
    run(s, "SET", "int", "12345")
    run(s, "SET", "neg", "-7")
    run(s, "SET", "big", "x" * 70000)
    run(s, "SET", "empty", "")
    run(s, "SET", "inplace", "abc")
    run(s, "APPEND", "inplace", "def")  # a bytearray
    run(s, "SET", "ttl", "v", "PX", "100000")
    run(s, "RPUSH", "list", "a", "b", "1", "2")
    run(s, "RPUSH", "biglist", *[f"e{i}" * 10 for i in range(2000)])
    run(s, "SADD", "intset", "1", "2", "300000")
    run(s, "SADD", "smallset", "a", "b", "c")
    run(s, "SADD", "bigset", *[f"m{i}" for i in range(600)])
    run(s, "ZADD", "zset", "1", "a", "2.5", "b", "-inf", "c")
    run(s, "ZADD", "bigzset", *[x for i in range(300) for x in (str(i / 3), f"m{i}")])
    run(s, "HSET", "hash", "f", "v", "g", "1")
    run(s, "HSET", "bighash", *[x for i in range(600) for x in (f"f{i}", f"v{i}")])
    run(s, "PEXPIRE", "bighash", "500000")
    for i in range(5):
        run(s, "XADD", "stream", f"{i + 1}-0", "field", f"v{i}")
    run(s, "XGROUP", "CREATE", "stream", "g1", "0")
    s.select(3)
    run(s, "SET", "db3key", "x")
    run(s, "HSET", "db3hash", "a", "b")
    s.select(15)
    run(s, "SET", "db15key", "y", "PX", "900000")
    run(s, "FUNCTION", "LOAD", LIBRARY)
    ks.effects.clear()


def checkpoint(tmp_path, ks, offset=7) -> Checkpointer:
    cp = Checkpointer(str(tmp_path / "cp"))
    cp.start_tracking(ks)
    cp.write(cp.capture(ks), offset)
    return cp


def rdb_of(cp, offset=7, aux=None) -> bytes:
    chunks = []
    assert rdb_from_checkpoint(cp, chunks.append, aux or {"redis-ver": "7.2.0"}, offset) == offset
    return b"".join(chunks)


def test_a_snapshot_of_every_type_loads_back_into_an_equal_keyspace(tmp_path):
    ks = keyspace()
    fill(ks)
    cp = checkpoint(tmp_path, ks)
    try:
        data = rdb_of(cp, aux={"redis-ver": "7.2.0", "repl-offset": 7})
    finally:
        cp.close()
    back = keyspace()
    stats = load_rdb_bytes(data, back, drop_expired=True)
    assert digest.dataset_digest(back) == digest.dataset_digest(ks) != digest.ZERO
    assert stats["keys"] == sum(len(db.data) for db in ks.dbs)
    assert stats["aux"][b"repl-offset"] == b"7"
    assert stats["functions"] == 1 and set(back.scripting.libraries) == {b"lib1"}
    assert back.mem_used > 0 and abs(back.mem_used - ks.mem_used) < ks.mem_used // 10


def test_resizedb_gives_each_database_its_exact_counts(tmp_path):
    ks = keyspace()
    fill(ks)
    cp = checkpoint(tmp_path, ks)
    try:
        data = rdb_of(cp)
    finally:
        cp.close()
    seen = {}

    class Sink(KeyspaceSink):
        def resize(self, db, nkeys, nexpires):
            seen[db] = (nkeys, nexpires)

    parse(data, Sink(keyspace(), drop_expired=False))
    assert seen == {db.index: (len(db.data), len(db.expires)) for db in ks.dbs if db.data}


def test_writes_committed_after_the_snapshot_began_do_not_reach_it(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "CHUNK", 1)  # write() is called with the header, before any key
    ks = keyspace()
    fill(ks)
    expected = digest.dataset_digest(ks)
    cp = checkpoint(tmp_path, ks)
    s = Session(ks)
    chunks = []

    def write(chunk):
        if not chunks:
            # Another checkpoint commits (in another thread, as the server's
            # writer does) while the snapshot's read transaction is open.
            run(s, "SET", "str:1", "changed")
            run(s, "DEL", "hash", "bigset")
            run(s, "SET", "new", "key")
            snap = cp.capture(ks)
            t = threading.Thread(target=cp.write, args=(snap, 99))
            t.start()
            t.join()
        chunks.append(chunk)

    try:
        assert rdb_from_checkpoint(cp, write, {}, 7) == 7
        assert cp.info()["offset"] == 99
    finally:
        cp.close()
    back = keyspace()
    load_rdb_bytes(b"".join(chunks), back, drop_expired=False)
    assert digest.dataset_digest(back) == expected != digest.dataset_digest(ks)


def test_chunks_are_bounded_and_cover_the_file(tmp_path):
    ks = Keyspace()
    s = Session(ks)
    for i in range(20000):
        run(s, "SET", f"k{i}", f"{i:020d}")
    cp = checkpoint(tmp_path, ks)
    chunks = []
    try:
        rdb_from_checkpoint(cp, chunks.append, {}, 7)
    finally:
        cp.close()
    assert len(chunks) > 1
    assert all(len(c) < 2 * snapshot.CHUNK for c in chunks)
    back = Keyspace()
    assert load_rdb_bytes(b"".join(chunks), back, drop_expired=False)["keys"] == 20000


def test_a_checkpoint_at_another_offset_is_refused_before_any_byte(tmp_path):
    ks = keyspace()
    fill(ks)
    cp = checkpoint(tmp_path, ks, offset=50)
    chunks = []
    try:
        with pytest.raises(OffsetMoved, match="covers offset 50, not 49"):
            rdb_from_checkpoint(cp, chunks.append, {}, 49)
    finally:
        cp.close()
    assert chunks == []


def test_no_checkpoint_yet_is_refused(tmp_path):
    cp = Checkpointer(str(tmp_path / "cp"))
    try:
        with pytest.raises(SnapshotError, match="no checkpoint has been written"):
            rdb_from_checkpoint(cp, lambda c: None, {}, 0)
    finally:
        cp.close()


def test_a_damaged_checkpoint_record_is_refused(tmp_path):
    ks = keyspace()
    fill(ks)
    cp = checkpoint(tmp_path, ks)
    try:
        with cp._env.begin(write=True) as txn:
            k, v = next(iter(txn.cursor(cp._keys)))
            txn.put(k, v[:-5] + bytes([v[-5] ^ 1]) + v[-4:], db=cp._keys)
        with pytest.raises(SnapshotError, match="checksum mismatch in the record of key"):
            rdb_of(cp)
        with cp._env.begin(write=True) as txn:
            k, v = next(iter(txn.cursor(cp._buckets)))
            txn.put(k, v[:6] + bytes([v[6] ^ 1]) + v[7:], db=cp._buckets)
            txn.put(*next(iter(txn.cursor(cp._keys))), db=cp._keys)
        with pytest.raises(SnapshotError, match="checksum mismatch in bucket"):
            rdb_of(cp)
    finally:
        cp.close()


def test_an_empty_checkpoint_is_a_valid_empty_rdb(tmp_path):
    ks = keyspace()
    cp = checkpoint(tmp_path, ks, offset=0)
    try:
        data = rdb_of(cp, offset=0)
    finally:
        cp.close()
    back = keyspace()
    assert load_rdb_bytes(data, back, drop_expired=True)["keys"] == 0


# --- rdbload ---------------------------------------------------------------------

def rdb_with_expiries() -> bytes:
    w = RdbWriter()
    past, future = now_ms() - 1000, now_ms() + 100000
    return b"".join([w.header({}), w.select(0, 3, 2), w.string_entry(b"gone", b"v", past),
                     w.string_entry(b"kept", b"v", future), w.string_entry(b"plain", b"v"), w.end()])


def test_drop_expired_leaves_out_keys_already_past_due():
    ks = Keyspace()
    stats = load_rdb_bytes(rdb_with_expiries(), ks, drop_expired=True)
    assert (stats["keys"], stats["expired"]) == (2, 1)
    assert set(ks.dbs[0].data) == {b"kept", b"plain"} and set(ks.dbs[0].expires) == {b"kept"}


def test_a_replica_keeps_keys_past_due_for_its_primary_to_delete():
    ks = Keyspace()
    stats = load_rdb_bytes(rdb_with_expiries(), ks, drop_expired=False)
    assert (stats["keys"], stats["expired"]) == (3, 0)
    assert set(ks.dbs[0].expires) == {b"gone", b"kept"}


@pytest.mark.parametrize("cut", [10, 40, -9, -1])
def test_a_truncated_rdb_leaves_the_keyspace_empty(cut):
    ks = Keyspace()
    data = rdb_with_expiries()
    with pytest.raises(RdbError, match="^payload: RDB byte"):
        load_rdb_bytes(data[:cut], ks, drop_expired=False, name="payload")
    assert not any(db.data or db.expires for db in ks.dbs) and ks.mem_used == 0


def test_a_bad_checksum_is_refused_and_names_the_file(tmp_path):
    data = bytearray(rdb_with_expiries())
    data[-3] ^= 0xFF
    path = tmp_path / "dump.rdb"
    path.write_bytes(bytes(data))
    ks = Keyspace()
    with pytest.raises(RdbError, match=f"^{path}: RDB byte"):
        load_rdb_file(str(path), ks, drop_expired=True)
    assert not any(db.data for db in ks.dbs)


def test_a_database_the_server_lacks_is_refused():
    w = RdbWriter()
    data = b"".join([w.header({}), w.select(20, 1, 0), w.string_entry(b"k", b"v"), w.end()])
    ks = Keyspace()
    with pytest.raises(RdbError, match="holds database 20 but the server has 16"):
        load_rdb_bytes(data, ks, drop_expired=True)
    assert not any(db.data for db in ks.dbs)


def test_function_libraries_without_scripting_are_refused():
    w = RdbWriter()
    data = b"".join([w.header({}), w.function(LIBRARY), w.select(0, 1, 0), w.string_entry(b"k", b"v"), w.end()])
    ks = Keyspace()
    with pytest.raises(RdbError, match="function libraries"):
        load_rdb_bytes(data, ks, drop_expired=True)
    assert not any(db.data for db in ks.dbs)


def test_a_library_that_does_not_load_is_refused_and_loads_nothing():
    w = RdbWriter()
    data = b"".join([w.header({}), w.function(b"#!lua name=bad\nthis is not lua"),
                     w.select(0, 1, 0), w.string_entry(b"k", b"v"), w.end()])
    ks = keyspace()
    with pytest.raises(RdbError, match="function libraries do not load"):
        load_rdb_bytes(data, ks, drop_expired=True)
    assert not any(db.data for db in ks.dbs)


def test_only_an_empty_keyspace_is_loaded_into():
    ks = Keyspace()
    run(Session(ks), "SET", "k", "v")
    with pytest.raises(ValueError):
        load_rdb_bytes(rdb_with_expiries(), ks, drop_expired=True)
    assert ks.dbs[0].data == {b"k": b"v"}


# --- the event-loop side: a checkpoint for a full sync ---------------------------

def _server(tmp_path):
    from server.app import Server
    from server.config import Config

    cfg = Config()
    cfg.set("dir", str(tmp_path))
    srv = Server(cfg)
    srv.loop = asyncio.get_running_loop()
    srv.persistence.load()
    return srv


def _write_some(srv, n: int) -> None:
    s = Session(srv.ks)
    for i in range(n):
        run(s, "SET", f"k{i}", f"v{i}")
        srv.persistence.journal()


def test_snapshot_for_sync_checkpoints_and_writes_the_rdb_at_the_log_offset(tmp_path):
    async def main():
        srv = _server(tmp_path)
        try:
            _write_some(srv, 100)
            await asyncio.sleep(0)  # the turn's commit
            chunks = []
            offset = await snapshot.snapshot_for_sync(srv, chunks.append, lambda o: {"repl-offset": o})
            assert offset == srv.persistence.log.end_offset > 0
            assert srv.persistence.saves == 1
            back = Keyspace()
            stats = load_rdb_bytes(b"".join(chunks), back, drop_expired=True)
            assert stats["aux"][b"repl-offset"] == str(offset).encode()
            assert digest.dataset_digest(back) == digest.dataset_digest(srv.ks)
        finally:
            srv.persistence.close(save=False)

    asyncio.run(main())


def test_a_checkpoint_already_running_is_joined_not_doubled(tmp_path):
    async def main():
        srv = _server(tmp_path)
        p = srv.persistence
        try:
            _write_some(srv, 10)
            await asyncio.sleep(0)
            assert p.bgsave()
            offset = await snapshot.checkpoint_for_sync(srv)
            assert p.saves == 1 and offset == p.checkpoint_offset == p.log.end_offset
            # Right after, the task is usually still deleting log segments: its
            # checkpoint is done, so after a write the next one is needed.
            _write_some(srv, 1)
            await asyncio.sleep(0)
            assert await snapshot.checkpoint_for_sync(srv) == p.log.end_offset > offset and p.saves == 2
            assert p.checkpoint_listeners == []
        finally:
            p.close(save=False)

    asyncio.run(main())


def test_a_failed_checkpoint_is_a_snapshot_error(tmp_path, monkeypatch):
    async def main():
        srv = _server(tmp_path)
        p = srv.persistence
        try:
            _write_some(srv, 10)

            def fail(*args):
                raise OSError("disk full")

            monkeypatch.setattr(p.checkpointer, "write", fail)
            with pytest.raises(SnapshotError, match="checkpoint for the full sync failed"):
                await snapshot.checkpoint_for_sync(srv)
            assert p.checkpoint_listeners == []
        finally:
            monkeypatch.undo()
            p.close(save=False)

    asyncio.run(main())


def test_the_libraries_are_the_files_a_file_without_any_leaves_none():
    # As a Redis replica after a full sync: its own libraries are gone (checked on 7.0.15).
    ks = keyspace()
    run(Session(ks), "FUNCTION", "LOAD", LIBRARY)
    load_rdb_bytes(rdb_with_expiries(), ks, drop_expired=True)
    assert ks.scripting.libraries == {}


# --- dump.rdb import at startup (in process; tests/integration/test_rdb_import.py has Redis's) ---

def _start(tmp_path):
    from server.app import Server
    from server.config import Config

    cfg = Config()
    cfg.set("dir", str(tmp_path))
    srv = Server(cfg)
    srv.persistence.load()
    return srv


def test_a_dump_rdb_is_imported_only_on_a_first_start(tmp_path):
    dump = tmp_path / "dump.rdb"
    dump.write_bytes(rdb_with_expiries())
    srv = _start(tmp_path)
    assert set(srv.ks.dbs[0].data) == {b"kept", b"plain"}
    assert srv.persistence.checkpointer.info()["keys"] == 2  # durable without the RDB
    srv.persistence.close(save=False)
    assert not dump.exists() and (tmp_path / "dump.rdb.imported").exists()
    w = RdbWriter()
    dump.write_bytes(w.header({}) + w.select(0, 1, 0) + w.string_entry(b"other", b"v") + w.end())
    srv = _start(tmp_path)  # a checkpoint now: the new dump.rdb is left alone
    try:
        assert set(srv.ks.dbs[0].data) == {b"kept", b"plain"} and dump.exists()
    finally:
        srv.persistence.close(save=False)


def test_a_dump_rdb_beside_a_log_with_records_is_left_alone(tmp_path):
    async def main():
        srv = _server(tmp_path)  # no checkpoint yet, a log whose keys are all deleted again
        _write_some(srv, 3)
        run(Session(srv.ks), "DEL", "k0", "k1", "k2")
        srv.persistence.journal()
        await asyncio.sleep(0)
        srv.persistence.close(save=False)

    asyncio.run(main())
    (tmp_path / "dump.rdb").write_bytes(rdb_with_expiries())
    srv = _start(tmp_path)
    try:
        assert srv.persistence.log.end_offset > 0
        assert not srv.ks.dbs[0].data and (tmp_path / "dump.rdb").exists()
    finally:
        srv.persistence.close(save=False)


def test_databases_past_127_two_byte_prefixes_come_out_in_index_order(tmp_path):
    ks = Keyspace(300)
    for index in (150, 5, 128, 127, 0, 299):
        s = Session(ks, index)
        run(s, "SET", f"k{index}", "v")
        run(s, "HSET", f"h{index}", "f", "v")
    cp = checkpoint(tmp_path, ks)
    try:
        data = rdb_of(cp)
    finally:
        cp.close()
    order = []

    class Sink(KeyspaceSink):
        def resize(self, db, nkeys, nexpires):
            order.append((db, nkeys))

    back = Keyspace(300)
    parse(data, Sink(back, drop_expired=False))
    assert order == [(i, 2) for i in (0, 5, 127, 128, 150, 299)]


def test_a_key_twice_in_the_file_is_refused():
    w = RdbWriter()
    data = b"".join([w.header({}), w.select(0, 2, 0), w.string_entry(b"k", b"1"), w.string_entry(b"k", b"2"), w.end()])
    ks = Keyspace()
    with pytest.raises(RdbError, match="a key appears twice"):
        load_rdb_bytes(data, ks, drop_expired=True)
    assert not ks.dbs[0].data


def test_the_last_checkpoint_is_reused_while_little_log_came_after_it(tmp_path):
    async def main():
        srv = _server(tmp_path)
        p = srv.persistence
        try:
            _write_some(srv, 10)
            await asyncio.sleep(0)
            first = await snapshot.checkpoint_for_sync(srv)
            assert await snapshot.checkpoint_for_sync(srv) == first and p.saves == 1  # nothing since
            _write_some(srv, 10)
            await asyncio.sleep(0)
            chunks = []
            offset = await snapshot.snapshot_for_sync(srv, chunks.append, lambda o: {}, reuse_within=1 << 20)
            assert offset == first < p.log.end_offset and p.saves == 1
            back = Keyspace()
            load_rdb_bytes(b"".join(chunks), back, drop_expired=True)
            assert set(back.dbs[0].data) == {b"k%d" % i for i in range(10)}
            assert await snapshot.checkpoint_for_sync(srv) == p.log.end_offset and p.saves == 2
        finally:
            p.close(save=False)

    asyncio.run(main())
