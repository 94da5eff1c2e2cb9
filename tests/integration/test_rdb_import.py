"""RDB files between Keel and a real redis-server 7.0, both ways.

* Import (the migration path): a dump.rdb that redis-server SAVEd with every
  type in its small and large encodings, TTLs, three databases and a
  function library, put in an empty data directory, is loaded on Keel's
  first start (keys already expired left out), checkpointed at once and
  renamed ``dump.rdb.imported``; every key reads back as on Redis, and still
  does after a restart without the RDB. A damaged dump.rdb (a
  flipped byte) stops the server with a non-zero status and a message naming
  the file and the byte; it never starts empty.
* Full-sync snapshot: the RDB ``replication.snapshot`` makes from Keel's
  checkpoint of the same data loads on a redis-server 7.0, which then answers
  every read as the Keel server did.

Keys are compared by type-specific reads (``dataset``), not DEBUG DIGEST:
Keel's digest is its own (engine/digest.py), not Redis's bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from tests.support import KeelProcess, RespClient
from wal.checkpoint import Checkpointer

LIBRARY = "#!lua name=mylib\nredis.register_function('echo1', function(keys, args) return args[1] end)"
LATER = int(time.time() * 1000) + 3_600_000


def fill_commands() -> list:
    cmds = [("SET", "s:int", "12345"), ("SET", "s:neg", "-42"), ("SET", "s:embstr", "hello"),
            ("SET", "s:raw", "r" * 100), ("SET", "s:lzf", "abc" * 2000), ("SET", "s:empty", ""),
            ("SET", "s:ttl", "v", "PXAT", LATER), ("APPEND", "s:appended", "grown"),
            ("RPUSH", "l:small", "a", "b", "7"), ("RPUSH", "l:big", *[f"element-{i}" * 4 for i in range(1500)]),
            ("SADD", "set:int", "1", "2", "99999"), ("SADD", "set:small", "x", "y", "z"),
            ("SADD", "set:big", *[f"member{i}" for i in range(700)]),
            ("SADD", "set:bigint", *[str(i) for i in range(600)]),
            ("ZADD", "z:small", "1", "a", "2.5", "b", "-inf", "c"),
            ("ZADD", "z:big", *[x for i in range(200) for x in (str(i * 1.5), f"m{i}")]),
            ("HSET", "h:small", "f1", "v1", "f2", "2"),
            ("HSET", "h:big", *[x for i in range(600) for x in (f"field{i}", f"value{i}")]),
            ("PEXPIREAT", "h:big", LATER + 1),
            ("XADD", "x:s", "1-1", "a", "1"), ("XADD", "x:s", "2-1", "b", "2"), ("XADD", "x:s", "3-1", "c", "3"),
            ("XADD", "x:s", "4-1", "d", "4"), ("XGROUP", "CREATE", "x:s", "g1", "0"),
            ("XGROUP", "CREATE", "x:s", "g2", "$"),
            ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "x:s", ">"),
            ("XACK", "x:s", "g1", "1-1"), ("XDEL", "x:s", "4-1"),
            ("FUNCTION", "LOAD", LIBRARY),
            ("SELECT", "3"), ("SET", "db3:k", "three"), ("LPUSH", "db3:l", "q"),
            ("SELECT", "15"), ("HSET", "db15:h", "k", "v"), ("SET", "db15:ttl", "t", "PXAT", LATER + 2),
            ("SELECT", "0")]
    cmds += [("XADD", "x:big", f"{10 + i}-0", "n", str(i)) for i in range(300)]
    cmds.append(("XADD", "x:big", "MAXLEN", "=", "250", "1000-0", "f", "v"))
    return cmds


def fill(client: RespClient) -> None:
    replies = client.pipeline(fill_commands())
    errors = [(c, r) for c, r in zip(fill_commands(), replies) if type(r).__name__ == "Err"]
    assert not errors


def _pairs(flat) -> dict:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def dataset(c: RespClient) -> dict:
    """Every key of every database, read by type, with its absolute expiry; the libraries."""
    out = {}
    for db in range(16):
        c.call("SELECT", db)
        for key in c.call("KEYS", "*"):
            t = c.call("TYPE", key).decode()
            if t == "string":
                v = c.call("GET", key)
            elif t == "list":
                v = c.call("LRANGE", key, 0, -1)
            elif t == "set":
                v = sorted(c.call("SMEMBERS", key))
            elif t == "zset":
                v = c.call("ZRANGE", key, 0, -1, "WITHSCORES")
            elif t == "hash":
                v = sorted(_pairs(c.call("HGETALL", key)).items())
            elif t == "stream":
                info = _pairs(c.call("XINFO", "STREAM", key))
                groups = []
                for g in c.call("XINFO", "GROUPS", key):
                    g = _pairs(g)
                    pel = [(e[0], e[1], e[3]) for e in c.call("XPENDING", key, g[b"name"], "-", "+", 100)]
                    groups.append((g[b"name"], g[b"consumers"], g[b"pending"], g[b"last-delivered-id"],
                                   g[b"entries-read"], pel))
                v = (c.call("XRANGE", key, "-", "+"), info[b"last-generated-id"], info[b"entries-added"],
                     info[b"max-deleted-entry-id"], groups)
            else:
                raise AssertionError(f"unexpected type {t!r} of {key!r}")
            out[(db, key)] = (t, v, c.call("PEXPIRETIME", key))
    c.call("SELECT", 0)
    libs = c.call("FUNCTION", "LIST")
    out["functions"] = [(_pairs(lib)[b"library_name"], [_pairs(f)[b"name"] for f in _pairs(lib)[b"functions"]])
                        for lib in libs]
    return out


@pytest.fixture(scope="module")
def redis_dump():
    """(path of a dump.rdb redis-server SAVEd, its dataset as Redis reads it)."""
    from tests.conftest import reference

    ref = reference("--enable-debug-command", "yes")
    try:
        c = ref.client()
        c.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        fill(c)
        c.call("SET", "s:gone", "v", "PX", "20")  # past due when Keel loads the file
        time.sleep(0.05)
        assert c.call("SAVE") == b"OK"
        expected = dataset(c)  # KEYS leaves out (and deletes) s:gone
        assert len(expected) == 25 and (0, b"s:gone") not in expected
        c.close()
        keep = tempfile.mkdtemp(prefix="redis-dump-")
        path = shutil.copy(os.path.join(ref.dir, "dump.rdb"), keep)
    finally:
        ref.cleanup()
    yield path, expected
    shutil.rmtree(keep, ignore_errors=True)


def fresh_dir_with(path: str, data: bytes | None = None) -> str:
    d = tempfile.mkdtemp(prefix="keel-import-")
    if data is None:
        shutil.copy(path, os.path.join(d, "dump.rdb"))
    else:
        with open(os.path.join(d, "dump.rdb"), "wb") as f:
            f.write(data)
    return d


def test_a_dump_rdb_redis_wrote_is_imported_on_the_first_start_and_kept_after(redis_dump):
    path, expected = redis_dump
    d = fresh_dir_with(path)
    keel = KeelProcess(dir=d)
    try:
        keel.start()
        c = keel.client()
        assert dataset(c) == expected
        assert c.call("FCALL", "echo1", 0, "hi") == b"hi"
        c.close()
        assert not os.path.exists(os.path.join(d, "dump.rdb"))
        assert os.path.exists(os.path.join(d, "dump.rdb.imported"))
        log = keel.log()
        assert "1 expired ones left out" in log and "dump.rdb" in log
        keel.kill()  # no shutdown checkpoint: the import's own one must hold it all
        keel.start()
        c = keel.client()
        assert dataset(c) == expected
        c.close()
        assert keel.log().count(" I imported ") == 1  # not loaded a second time
    finally:
        keel.stop()
        shutil.rmtree(d, ignore_errors=True)


def refused_start(d: str) -> tuple[int, str]:
    keel = KeelProcess(dir=d).start(wait=False)
    try:
        code = keel.proc.wait(30)
        err = keel.proc.stderr.read().decode()
    finally:
        keel.stop()
    return code, err


def test_a_damaged_dump_rdb_stops_the_server_naming_the_file_and_byte(redis_dump):
    # (Each kind of damage has its own test in tests/unit/test_rdbfile.py and
    # test_snapshot.py; this one proves the server refuses to start on it.)
    path, _ = redis_dump
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x55  # inside a value: only the checksum tells
    d = fresh_dir_with(path, bytes(data))
    try:
        code, err = refused_start(d)
        assert code != 0
        assert f"{os.path.join(d, 'dump.rdb')}: RDB byte " in err
        assert os.path.exists(os.path.join(d, "dump.rdb"))
        assert not os.path.exists(os.path.join(d, "checkpoint.lmdb", "data.mdb")) or \
            Checkpointer(os.path.join(d, "checkpoint.lmdb")).info() is None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_the_snapshot_of_a_keel_checkpoint_loads_on_redis_7_0():
    from replication.snapshot import base_aux, rdb_from_checkpoint
    from tests.conftest import reference

    keel = KeelProcess().start()
    ref = out = None
    try:
        c = keel.client()
        fill(c)
        expected = dataset(c)
        assert c.call("SAVE") == b"OK"
        offset = int(c.call("INFO", "persistence").split(b"keel_checkpoint_offset:")[1].split(b"\r\n")[0])
        c.close()
        keel.stop()
        out = tempfile.mkdtemp(prefix="keel-snapshot-")
        cp = Checkpointer(os.path.join(keel.dir, "checkpoint.lmdb"))
        try:
            with open(os.path.join(out, "keel.rdb"), "wb") as f:
                assert rdb_from_checkpoint(cp, f.write, base_aux(0), offset) == offset
        finally:
            cp.close()
        ref = reference("--dir", out, "--dbfilename", "keel.rdb")  # a later --dir wins
        rc = ref.client()
        assert dataset(rc) == expected
        rc.close()
    finally:
        keel.cleanup()
        if ref is not None:
            ref.cleanup()
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
