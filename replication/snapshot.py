"""The full-sync snapshot: an RDB file made from a checkpoint, without fork.

Role: a primary that must send a replica the whole dataset takes a
checkpoint (the BGSAVE path: clients wait for one capture chunk at a time,
never for the whole dataset), then turns that checkpoint's LMDB state into
the bytes of an RDB file in a worker thread while clients go on. The replica
receives ``+FULLRESYNC <replid> O``, this RDB and then the stream from O,
where O is the log offset the checkpoint covers.

Interface
---------
``await checkpoint_for_sync(server, reuse_within=0) -> int``
    [event loop] Asks for a background checkpoint (or joins the one being
    written) and returns the offset it covers once it is committed; returns
    the last checkpoint's offset at once when at most ``reuse_within`` bytes
    of log came after it. ``SnapshotError`` when it failed.
``rdb_from_checkpoint(checkpointer, write, aux, expect_offset) -> int``
    [worker thread] Reads the checkpoint through ONE LMDB read transaction
    (a snapshot that checkpoints committed meanwhile do not disturb) and
    calls ``write(chunk)`` with the RDB's bytes, ``CHUNK`` (256 KB) or so at
    a time; ``write`` may block. Returns the offset the checkpoint covers.
    ``SnapshotError`` before the first byte when that offset is not
    ``expect_offset`` (another checkpoint landed in between: ask again), or
    when the checkpoint is unreadable or damaged (every record's CRC32C is
    checked before it is used).
``await snapshot_for_sync(server, write, aux_for, executor=None, reuse_within=0) -> int``
    Both of the above, retried when another checkpoint got in between;
    ``aux_for(offset, db=None) -> dict`` gives the header's AUX fields (``db``: the stream's database at ``offset`` when known).
``base_aux(used_mem, redis_ver=None) -> dict``
    The AUX fields every RDB of Keel's carries (redis-ver, redis-bits,
    ctime, used-mem, aof-base); a full sync adds repl-stream-db, repl-id and
    repl-offset.

What the file holds, in Redis's order: the header with the AUX fields given,
the function libraries (meta ``functions``), then per database in index
order SELECTDB + RESIZEDB (exact counts, from a first pass that reads each
bucket's 4-byte count and each record's tag byte) and every key with its
expiry time, then EOF and the CRC64 (``engine.rdbfile.RdbWriter`` keeps it).
Plain strings come from the checkpoint's buckets (one ``marshal.loads`` per
bucket of a few hundred keys); every other key from its record, whose
``engine.rdb.encode_value`` bytes the writer passes through or transcodes for
the RDB version it writes (10: what Redis 7.0 reads).

Invariant: this module touches no keyspace object, only LMDB pages, so the
thread that runs ``rdb_from_checkpoint`` shares nothing with the loop. While
its read transaction is open LMDB cannot reuse the pages later checkpoints
free, so the file may grow by what they rewrite during a sync.
"""

from __future__ import annotations

import asyncio
import marshal
import time
from itertools import repeat

import lmdb
from crc32c import crc32c

from engine import rdb
from engine.rdbfile import RdbError, RdbWriter
from wal.checkpoint.layout import (
    _CRC_RESIDUE,
    _HAS_EXPIRE,
    _TAG_RDB,
    _TAG_STRING,
    FORMAT_VERSION,
    CheckpointError,
    _read_prefix,
    decode_bucket,
)

CHUNK = 1 << 18  # bytes handed to ``write`` at a time (a bucket may take it a little past)
ATTEMPTS = 3  # checkpoints asked for by snapshot_for_sync before it gives up


class SnapshotError(Exception):
    """The checkpoint cannot be turned into an RDB (or is not the one expected)."""


class OffsetMoved(SnapshotError):
    """The checkpoint on disk covers another offset than the one expected."""


def base_aux(used_mem: int, redis_ver: str | None = None) -> dict:
    """The AUX fields of any RDB Keel writes (a full sync adds its replication
    ones); ``redis_ver`` defaults to the version the server reports."""
    if redis_ver is None:
        from server.app import REDIS_VERSION as redis_ver  # (only the constant: no server object)
    return {"redis-ver": redis_ver, "redis-bits": 64, "ctime": int(time.time()),
            "used-mem": used_mem, "aof-base": 0}


# --- the event-loop side -----------------------------------------------------

async def checkpoint_for_sync(server, reuse_within: int = 0) -> int:
    """The offset of a checkpoint to send (see the module docstring).

    Any checkpoint will do, as long as the log after it is still there
    (segments are deleted only when wholly before the newest checkpoint):
    the replica then gets the stream from that offset. So the last one is
    reused when at most ``reuse_within`` bytes of log were written since
    (0: only when nothing was; a quiet primary takes no checkpoint for
    nothing), and otherwise a background checkpoint already running is
    joined rather than followed by another.
    """
    p = server.persistence
    if p.checkpointer is None:
        raise SnapshotError("no checkpoint to make a snapshot from")
    if (p.log is not None and p.log.end_offset - p.checkpoint_offset <= reuse_within
            and p.checkpointer.info() is not None):
        # (One committing meanwhile makes the snapshot's offset check fail: asked again.)
        return p.checkpoint_offset
    done = asyncio.get_running_loop().create_future()

    def completed(offset: int) -> None:
        if not done.done():
            done.set_result(offset)

    p.checkpoint_listeners.append(completed)
    try:
        for _ in range(2):
            if p.bgsave_task is None:
                p.bgsave()
            await asyncio.wait((done, p.bgsave_task), return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                return done.result()
            if not p.last_bgsave_ok:
                raise SnapshotError("the checkpoint for the full sync failed (see the server log)")
            # The task joined had committed its checkpoint before this call
            # (it was deleting log segments): the next one is ours.
        raise SnapshotError("no checkpoint completed for the full sync")
    finally:
        p.checkpoint_listeners.remove(completed)


async def snapshot_for_sync(server, write, aux_for, executor=None, reuse_within: int = 0) -> int:
    """A checkpoint, then its RDB written through ``write`` in ``executor``; the offset."""
    loop = asyncio.get_running_loop()
    for attempt in range(ATTEMPTS):
        offset = await checkpoint_for_sync(server, reuse_within)
        cp = server.persistence.checkpointer  # (a replica's full sync replaces it)
        try:
            return await loop.run_in_executor(executor, rdb_from_checkpoint, cp, write, aux_for(offset), offset)
        except OffsetMoved:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# --- the worker-thread side --------------------------------------------------

def rdb_from_checkpoint(checkpointer, write, aux: dict, expect_offset: int) -> int:
    """Write the checkpoint as an RDB through ``write``; the offset it covers."""
    env = checkpointer._env
    file = checkpointer.file
    try:
        with env.begin() as txn:
            raw = txn.get(b"offset", db=checkpointer._meta)
            if raw is None:
                raise SnapshotError(f"{file}: no checkpoint has been written")
            offset = int.from_bytes(raw, "little")
            if offset != expect_offset:
                raise OffsetMoved(f"{file}: the checkpoint covers offset {offset}, not {expect_offset}")
            fmt = int.from_bytes(txn.get(b"format", db=checkpointer._meta) or b"", "little")
            if fmt != FORMAT_VERSION:
                raise SnapshotError(f"{file}: unknown checkpoint format {fmt}")
            functions = txn.get(b"functions", db=checkpointer._meta)
            _Walk(file, txn, checkpointer._buckets, checkpointer._keys, write).run(aux, functions)
    except lmdb.Error as e:
        raise SnapshotError(f"{file}: unreadable checkpoint: {e}") from None
    except CheckpointError as e:  # a bucket failing its checksum
        raise SnapshotError(str(e)) from None
    return offset


def _next_prefix(prefix: bytes) -> bytes:
    # A db prefix's last byte is < 0x80 (LEB128), so this is the first key past its range.
    return prefix[:-1] + bytes((prefix[-1] + 1,))


class _Out:
    """RDB pieces gathered into chunks of about CHUNK bytes for ``write``."""

    def __init__(self, write):
        self.write = write
        self.parts: list = []
        self.size = 0

    def __call__(self, b: bytes) -> None:
        self.parts.append(b)
        self.size += len(b)
        if self.size >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            chunk = b"".join(self.parts)
            self.parts = []
            self.size = 0
            self.write(chunk)


class _Walk:
    """One pass over a checkpoint's read transaction, writing RDB bytes."""

    def __init__(self, file: str, txn, buckets, keys, write):
        self.file = file
        self.txn = txn
        self.buckets = buckets
        self.keys = keys
        self.out = _Out(write)
        self.flush = self.out.flush

    def run(self, aux: dict, functions: bytes | None) -> None:
        w = RdbWriter()
        self.out(w.header(aux))
        if functions is not None:
            try:
                codes = marshal.loads(functions)
            except (ValueError, EOFError, TypeError):
                raise SnapshotError(f"{self.file}: undecodable function libraries") from None
            for code in codes:
                self.out(w.function(code))
        for index, prefix in self.databases():
            nkeys = nexpires = 0
            with self.txn.cursor(self.buckets) as cur:
                for _k, v in self.span(cur, prefix):
                    nkeys += int.from_bytes(v[:4], "little")
            with self.txn.cursor(self.keys) as cur:
                for _k, v in self.span(cur, prefix):
                    nkeys += 1
                    nexpires += v[0] & _HAS_EXPIRE
            self.out(w.select(index, nkeys, nexpires))
            self.strings(w, prefix)
            self.records(w, prefix)
        self.out(w.end())
        self.flush()

    def databases(self) -> list:
        """``(index, prefix)`` of every database holding a key, in index order."""
        found = {}
        for dbi in (self.buckets, self.keys):
            with self.txn.cursor(dbi) as cur:
                ok = cur.first()
                while ok:
                    try:
                        index, plen = _read_prefix(cur.key())
                    except ValueError:
                        raise SnapshotError(f"{self.file}: malformed key {cur.key()!r}") from None
                    prefix = cur.key()[:plen]
                    found[index] = prefix
                    ok = cur.set_range(_next_prefix(prefix))
        return sorted(found.items())

    @staticmethod
    def span(cur, prefix: bytes):
        """The ``(key, value)`` pairs of one database's range."""
        if not cur.set_range(prefix):
            return
        for k, v in cur:
            if not k.startswith(prefix):
                return
            yield k, v

    def strings(self, w, prefix: bytes) -> None:
        entry = w.string_entry
        with self.txn.cursor(self.buckets) as cur:
            for k, v in self.span(cur, prefix):
                bucket = decode_bucket(self.file, k, v)
                self.out(b"".join(map(entry, bucket.keys(), bucket.values())))

    def records(self, w, prefix: bytes) -> None:
        plen = len(prefix)
        file = self.file
        with self.txn.cursor(self.keys) as cur:
            for k, v in self.span(cur, prefix):
                key = k[plen:]
                if crc32c(v, crc32c(k)) != _CRC_RESIDUE:
                    raise SnapshotError(f"{file}: checksum mismatch in the record of key {key!r}")
                tag = v[0]
                expire = None
                pos = 1
                if tag & _HAS_EXPIRE:
                    expire = int.from_bytes(v[1:9], "little", signed=True)
                    pos = 9
                kind = tag & ~_HAS_EXPIRE
                if kind == _TAG_STRING:
                    self.out(w.string_entry(key, v[pos:-4], expire))
                elif kind == _TAG_RDB:
                    body = v[pos:-4]
                    try:
                        self.out(w.entry(key, body, expire))
                    except (rdb.PayloadError, RdbError) as e:
                        raise SnapshotError(f"{file}: value of key {key!r} cannot be written: {e}") from None
                else:
                    raise SnapshotError(f"{file}: unknown record tag {tag:#x} for key {key!r}")


# --- straight from a full capture (no LMDB round trip) ------------------------

def rdb_from_capture(snapshot, write, aux: dict) -> None:
    """In the checkpoint writer's thread, before it writes LMDB: a full
    capture (``Snapshot.full``) as an RDB through ``write``.

    The capture is the keyspace at the checkpoint's offset (its parts in
    order: each database taken whole, then keys taken again or deleted
    while the walk went on), so the RDB needs neither the LMDB write nor a
    read transaction after it; a full sync gets its RDB in about the time
    the capture takes to encode, and the checkpoint is written after it."""
    if not snapshot.full:
        raise SnapshotError("an RDB is made from a full capture only")
    dbs: dict = {}
    for part in snapshot.parts:
        index = part[0]
        d = dbs.get(index)
        if d is None:
            d = dbs[index] = {}
        if part[1]:
            for keys, values, expiries in part[2]:  # (dict.update over zips: C loops)
                d.update(zip(keys, zip(values, repeat(None) if expiries is None else expiries)))
        else:
            keys, values, expiries = part[2], part[3], part[4]
            if expiries is None:
                expiries = [None] * len(keys)
            for k, v, e in zip(keys, values, expiries):
                if v is None:
                    d.pop(k, None)
                else:
                    d[k] = (v, e)
    out = _Out(write)
    w = RdbWriter()
    out(w.header(aux))
    for code in snapshot.functions or ():
        out(w.function(code))
    string_entry = w.string_entry
    entry = w.entry
    encode = rdb.encode_value
    for index in sorted(dbs):
        d = dbs[index]
        if not d:
            continue
        nexp = len(d) - [e for _v, e in d.values()].count(None)
        out(w.select(index, len(d), nexp))
        for k, (v, e) in d.items():
            if type(v) is bytes:
                out(string_entry(k, v, e))
            else:
                out(entry(k, encode(v), e))
    out(w.end())
    out.flush()
    # Freed a slice at a time: dropping a million-entry dict at once is one
    # C call that holds the GIL, and the event loop, for 50-100 ms.
    for d in dbs.values():
        keys = list(d)
        for i in range(0, len(keys), 4096):
            for k in keys[i:i + 4096]:
                del d[k]


async def capture_for_sync(server, write, aux_for) -> int:
    """A full sync's RDB straight from a full background capture: waits for a
    running checkpoint, asks the next one to capture every key, and writes
    the RDB through ``write`` in the writer's thread before the checkpoint
    itself is written; the offset it is consistent at."""
    p = server.persistence
    loop = asyncio.get_running_loop()
    while p.bgsave_task is not None:
        try:
            await asyncio.shield(p.bgsave_task)
        except Exception:
            pass
    done = loop.create_future()

    def hook(snap, offset: int, db: int) -> None:  # in the writer thread
        try:
            rdb_from_capture(snap, write, aux_for(offset, db))
        except BaseException as e:  # noqa: BLE001 - handed to the loop's side
            loop.call_soon_threadsafe(lambda: done.done() or done.set_exception(e))
            return
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(offset))

    p.checkpointer._need_full = True  # this capture takes every key
    p.snapshot_hooks.append(hook)
    if not p.bgsave():
        p.snapshot_hooks.remove(hook)
        raise SnapshotError("a checkpoint is already running")
    task = p.bgsave_task
    await asyncio.wait((done, task), return_when=asyncio.FIRST_COMPLETED)
    if not done.done():
        if hook in p.snapshot_hooks:
            p.snapshot_hooks.remove(hook)
        raise SnapshotError("the checkpoint for the full sync failed (see the server log)")
    return done.result()
