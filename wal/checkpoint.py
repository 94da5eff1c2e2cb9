"""Checkpoints: the whole keyspace as of one log offset, in an LMDB environment.

Recovery loads the newest checkpoint and replays the log after the offset it
covers; the log segments wholly before that offset can then be deleted.
Checkpoints are incremental: only keys changed since the previous one are
rewritten, keys deleted since are removed.

Interface (the server wires these; nothing here touches sockets or the loop)
---------------------------------------------------------------------------
::

    cp = Checkpointer(path)            # opens/creates the LMDB environment
    offset = cp.load(ks, progress)     # fill an empty Keyspace; None = no checkpoint
    cp.start_tracking(ks)              # BEFORE replaying the log after `offset`
    ... replay, serve ...
    snap = cp.capture(ks)              # on the event-loop thread, between commands,
                                       # when the log's end offset is `end`
    await asyncio.to_thread(cp.write, snap, end)   # anywhere; one write at a time
    cp.close()

* ``load`` fills ``db.data`` / ``db.expires`` (and the expiry heap) directly:
  no watchers fire, no effects are recorded. Keys are loaded as they were,
  TTLs in the past included: whether such a key is gone is decided by the log
  (the ``DEL`` its expiry journaled) or by the keyspace's own expiry after.
  ``progress(loaded, total)`` is called every 65536 keys and at the end.
* ``start_tracking`` gives each database a dirty set (``Database.dirty``):
  the keyspace's mutators add each changed key to it (one ``set.add``,
  inline, no callback).
* ``begin_capture`` returns a ``Capture`` that takes the same keys a chunk
  per event-loop turn, in rounds, and ``finish()`` takes the last round at
  once (see ``Capture``): the server's background checkpoints use it, so
  clients wait for one chunk (about 2 ms), not for the whole capture.
* ``capture`` swaps the dirty sets out and takes, for each dirty key, a
  reference to its current value and expiry time (None when deleted). It is a
  few C-level passes (``map(dict.get, keys)``), no per-key Python code. A
  database whose dict object is not the one seen at the previous capture
  (FLUSHDB/FLUSHALL replace it, SWAPDB exchanges it) is captured whole and its
  old content in LMDB dropped; so is everything on the first capture after
  ``start_tracking`` on a keyspace this checkpointer did not load, and after a
  ``write`` that failed. Values are captured by reference, which is a
  consistent snapshot because strings are immutable ``bytes``; a mutable type
  added later must be copied here or made copy-on-write, otherwise a change
  made after ``capture`` would leak into the checkpoint.
* ``write`` encodes the snapshot and applies it — puts, deletes, and the meta
  record — in ONE LMDB write transaction, so a checkpoint is all-or-nothing:
  a crash mid-write leaves the previous one intact. The commit fsyncs the
  data pages before the meta page (LMDB's default sync mode), which is what
  makes it both atomic and durable; no separate ``env.sync`` is needed. It
  touches no keyspace object and may run in a worker thread. It returns a
  ``WriteStats`` (puts, deletes, keys).

Layout (``FORMAT_VERSION`` 2)
-----------------------------
``path`` is an LMDB environment directory (``data.mdb``, ``lock.mdb``) with
three named databases. Every LMDB key starts with the LEB128 varint of the
database index (a prefix-free code, so each database is one contiguous
range; indexes < 128 take one byte).

``buckets``
    Plain strings without a TTL — most keys — are grouped by
    ``crc32c(key) % NBUCKETS`` so that a load decodes thousands of keys per
    LMDB record in C instead of one record per key in Python (LMDB cursor
    iteration alone costs about a microsecond per record). Key: db prefix +
    bucket number (u16 BE). Value::

        count (u32 LE)  marshal.dumps({key: value, ...}, 4)  crc32c (4 bytes LE)

    marshal builds only plain objects (it runs no code) and its format 4 has
    not changed since Python 3.4; the CRC is checked before it reads a byte.
    An incremental checkpoint rewrites only the buckets of changed keys.
``keys``
    Every other key, one record each: key = db prefix + the key's bytes,
    value::

        tag (1 byte) [expiry: int64 LE unix ms, when tag & 1] body  crc32c (4 bytes LE)

    tag 0xF0/0xF1: body is the raw string; tag 0xE0/0xE1: body is
    ``engine.rdb.encode_value`` (RDB type byte + encoding), for every other
    type.

In both, the CRC32C covers the LMDB key and the value before it, so a record
read under the wrong key fails too (CRC32C, hardware accelerated, rather than
the DUMP format's CRC64, because the check runs over everything at load).
``meta``
    ``offset`` (u64 LE, the log offset the checkpoint covers), ``format``
    (u32 LE), ``created_ms`` (u64 LE, wall clock of the write), ``keys`` (u64
    LE, number of keys).

Errors: a checkpoint that cannot be read — not an LMDB file, truncated, a
record failing its checksum or not decoding, an unknown format — raises
``CheckpointError`` naming the file (and the key, for a bad record).
"""

from __future__ import annotations

import marshal
import os
import time
from itertools import islice

import lmdb
from crc32c import crc32c

from engine import rdb

FORMAT_VERSION = 2
NBUCKETS = 4096  # plain-string buckets per database

_TAG_STRING = 0xF0
_TAG_RDB = 0xE0
_HAS_EXPIRE = 1
_STRING = bytes((_TAG_STRING,))
_STRING_EXP = bytes((_TAG_STRING | _HAS_EXPIRE,))
_RDB = bytes((_TAG_RDB,))
_RDB_EXP = bytes((_TAG_RDB | _HAS_EXPIRE,))
# CRC32C over a message followed by its own CRC (little endian) is constant:
# checking a record is one crc32c call over all of it.
_CRC_RESIDUE = 0x48674BC7

_PROGRESS_EVERY = 1 << 16
_DEFAULT_MAP_SIZE = 1 << 36  # address space, not disk: the file grows as used


class CheckpointError(Exception):
    """The checkpoint on disk is damaged or unreadable; the message names the file."""


class WriteStats:
    """What one ``write`` did: records put, records deleted, records after it."""

    __slots__ = ("puts", "deletes", "keys")

    def __init__(self, puts: int, deletes: int, keys: int):
        self.puts = puts
        self.deletes = deletes
        self.keys = keys

    def __repr__(self) -> str:
        return f"WriteStats(puts={self.puts}, deletes={self.deletes}, keys={self.keys})"


class Snapshot:
    """The keys to write, captured at one consistent point.

    ``full``: replace the whole checkpoint. ``parts``, applied in order: either
    ``(index, True, chunks)`` — the database captured whole, ``chunks`` a list
    of ``(keys, values, expiries)`` — or ``(index, False, keys, values,
    expiries)``, changed keys. A value of None means the key was deleted;
    ``expiries`` is None when the database had no TTLs.
    """

    __slots__ = ("full", "parts")

    def __init__(self, full: bool, parts: list):
        self.full = full
        self.parts = parts

    def __len__(self) -> int:
        return sum(sum(len(c[0]) for c in p[2]) if p[1] else len(p[2]) for p in self.parts)


def _whole_entries(chunks: list):
    """(key, value, expiry) of a whole database's chunks."""
    for keys, values, expiries in chunks:
        if expiries is None:
            for key, value in zip(keys, values):
                yield key, value, None
        else:
            yield from zip(keys, values, expiries)


def db_prefix(index: int) -> bytes:
    """LEB128 varint of a database index: the prefix of its keys in LMDB."""
    out = bytearray()
    while True:
        low = index & 0x7F
        index >>= 7
        if index:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_prefix(k: bytes) -> tuple[int, int]:
    """``(db index, prefix length)`` of an LMDB key."""
    index = shift = 0
    for i, b in enumerate(k):
        index |= (b & 0x7F) << shift
        if not b & 0x80:
            return index, i + 1
        shift += 7
    raise ValueError("key without a complete database prefix")


def encode_record(lkey: bytes, value, expire: int | None) -> bytes:
    """The LMDB value for ``value`` stored under ``lkey``."""
    if type(value) is bytes:
        body = _STRING + value if expire is None else _STRING_EXP + expire.to_bytes(8, "little", signed=True) + value
    else:
        enc = rdb.encode_value(value)
        body = _RDB + enc if expire is None else _RDB_EXP + expire.to_bytes(8, "little", signed=True) + enc
    return body + crc32c(body, crc32c(lkey)).to_bytes(4, "little")


def bucket_key(prefix: bytes, key: bytes) -> bytes:
    """The LMDB key of the bucket that holds the plain string ``key``."""
    return prefix + (crc32c(key) & (NBUCKETS - 1)).to_bytes(2, "big")


def encode_bucket(bkey: bytes, bucket: dict) -> bytes:
    body = len(bucket).to_bytes(4, "little") + marshal.dumps(bucket, 4)
    return body + crc32c(body, crc32c(bkey)).to_bytes(4, "little")


class Checkpointer:
    """One checkpoint directory; see the module docstring for the protocol."""

    def __init__(self, path: str, map_size: int = _DEFAULT_MAP_SIZE):
        self.path = path
        self.file = os.path.join(path, "data.mdb")
        os.makedirs(path, exist_ok=True)
        try:
            self._env = lmdb.open(path, map_size=map_size, max_dbs=3, subdir=True, metasync=True, sync=True)
            self._check_size()
            self._keys = self._env.open_db(b"keys")
            self._buckets = self._env.open_db(b"buckets")
            self._meta = self._env.open_db(b"meta")
        except lmdb.Error as e:
            raise CheckpointError(f"{self.file}: cannot open checkpoint: {e}") from None
        self._ks = None
        self._loaded = None  # the keyspace load() filled, if any
        self._tables: list[dict] = []
        self._need_full = True

    def _check_size(self) -> None:
        # LMDB maps the file; touching a page past a truncated end is SIGBUS,
        # so refuse a file shorter than the pages its meta page claims.
        info = self._env.info()
        need = (info["last_pgno"] + 1) * self._env.stat()["psize"]
        size = os.path.getsize(self.file)
        if size < need:
            raise CheckpointError(f"{self.file}: truncated checkpoint ({size} bytes, needs {need})")

    def close(self) -> None:
        self.stop_tracking()
        self._env.close()

    # -- reading ------------------------------------------------------------
    def info(self) -> dict | None:
        """The meta record: offset, format, created_ms, keys; None when empty."""
        with self._env.begin(db=self._meta) as txn:
            raw = {k: txn.get(k) for k in (b"offset", b"format", b"created_ms", b"keys")}
        if raw[b"offset"] is None:
            return None
        return {k.decode(): int.from_bytes(v, "little") if v is not None else None for k, v in raw.items()}

    def load(self, ks, progress=None) -> int | None:
        """Fill the empty keyspace ``ks``; the offset it now reflects (None: no checkpoint)."""
        if any(db.data for db in ks.dbs):
            raise ValueError("load() needs an empty keyspace")
        meta = self.info()
        if meta is None:
            self._loaded = ks
            return None
        if meta["format"] != FORMAT_VERSION:
            raise CheckpointError(f"{self.file}: unknown checkpoint format {meta['format']}")
        total = meta["keys"] or 0
        try:
            with self._env.begin() as txn:
                done = self._load_buckets(txn.cursor(self._buckets), ks, total, progress)
                self._load_records(txn.cursor(self._keys), ks, total, progress, done)
        except lmdb.Error as e:
            raise CheckpointError(f"{self.file}: unreadable checkpoint: {e}") from None
        for db in ks.dbs:
            if db.expires:
                db._rebuild_heap()
        self._loaded = ks
        return meta["offset"]

    def _load_buckets(self, cursor, ks, total: int, progress) -> int:
        """Load every bucket of plain strings; the number of keys loaded."""
        dbs = ks.dbs
        n = 0
        for i, (k, v) in enumerate(cursor):
            index, plen = self._prefix_of(k)
            if index >= len(dbs):
                raise CheckpointError(f"{self.file}: holds database {index} but the server has {len(dbs)}")
            bucket = self._decode_bucket(k, v)
            dbs[index].data.update(bucket)
            n += len(bucket)
            if progress is not None and not i & 255:
                progress(n, total)
        return n

    def _decode_bucket(self, bkey: bytes, v: bytes) -> dict:
        if len(v) < 8 or crc32c(v, crc32c(bkey)) != _CRC_RESIDUE:
            raise CheckpointError(f"{self.file}: checksum mismatch in bucket {bkey.hex()}")
        try:
            bucket = marshal.loads(memoryview(v)[4:-4])
        except (ValueError, EOFError, TypeError):
            raise CheckpointError(f"{self.file}: undecodable bucket {bkey.hex()}") from None
        if type(bucket) is not dict or len(bucket) != int.from_bytes(v[:4], "little"):
            raise CheckpointError(f"{self.file}: malformed bucket {bkey.hex()}")
        return bucket

    def _load_records(self, cursor, ks, total: int, progress, n: int = 0) -> None:
        # The hot loop of recovery: per plain string, one crc32c pair, one
        # first-byte test, one tag test, two slices and a dict store.
        dbs = ks.dbs
        first = -1  # first byte of the current database's prefix
        prefix = b""
        plen = 1
        data = expires = None
        residue = _CRC_RESIDUE
        tag_string = _TAG_STRING
        crc = crc32c
        every = _PROGRESS_EVERY - 1 if progress is not None else -1
        for k, v in cursor:
            if k[0] != first or (plen > 1 and not k.startswith(prefix)):
                index, plen = self._prefix_of(k)
                if index >= len(dbs):
                    raise CheckpointError(f"{self.file}: holds database {index} but the server has {len(dbs)}")
                prefix = k[:plen]
                first = k[0]
                data = dbs[index].data
                expires = dbs[index].expires
            if crc(v, crc(k)) != residue:
                raise CheckpointError(f"{self.file}: checksum mismatch in the record of key {k[plen:]!r}")
            if v[0] == tag_string:
                data[k[plen:]] = v[1:-4]
            else:
                self._load_other(k[plen:], v, data, expires)
            n += 1
            if not n & every:
                progress(n, total)
        if progress is not None:
            progress(n, total)

    def _prefix_of(self, k: bytes) -> tuple[int, int]:
        try:
            return _read_prefix(k)
        except ValueError:
            raise CheckpointError(f"{self.file}: malformed key {k!r}") from None

    def _load_other(self, key: bytes, v: bytes, data: dict, expires: dict) -> None:
        tag = v[0]
        pos = 1
        if tag & _HAS_EXPIRE:
            expires[key] = int.from_bytes(v[1:9], "little", signed=True)
            pos = 9
        if tag & ~_HAS_EXPIRE == _TAG_STRING:
            data[key] = v[pos:-4]
            return
        if tag & ~_HAS_EXPIRE != _TAG_RDB:
            raise CheckpointError(f"{self.file}: unknown record tag {tag:#x} for key {key!r}")
        body = v[pos:-4]
        try:
            value, end = rdb.decode_value(body, 0)
        except rdb.PayloadError as e:
            raise CheckpointError(f"{self.file}: undecodable value of key {key!r}: {e}") from None
        if end != len(body):
            raise CheckpointError(f"{self.file}: trailing bytes in the value of key {key!r}")
        data[key] = value

    # -- tracking and capture (event-loop thread) ---------------------------
    def start_tracking(self, ks) -> None:
        """Record every key changed in ``ks`` from now on (call before log replay)."""
        self.stop_tracking()
        for db in ks.dbs:
            db.dirty = set()
        self._ks = ks
        self._tables = [db.data for db in ks.dbs]
        self._need_full = ks is not self._loaded

    def stop_tracking(self) -> None:
        if self._ks is not None:
            for db in self._ks.dbs:
                db.dirty = None
            self._ks = None

    def capture(self, ks) -> Snapshot:
        """The changes since the previous capture, as of now (see module docstring)."""
        cap = self.begin_capture(ks)
        cap.step(None)
        return cap.snapshot()

    def forget_captures(self) -> None:
        """A capture was abandoned (its keys left the dirty sets): write all next time."""
        self._need_full = True

    def begin_capture(self, ks) -> "Capture":
        """A capture taken a chunk at a time between commands (see ``Capture``)."""
        if ks is not self._ks:
            raise ValueError("capture() of a keyspace that is not being tracked")
        full = self._need_full
        self._need_full = False
        return Capture(self, ks, full)

    def trim(self, ks, floor: int = 65536, ratio: int = 8) -> int:
        """Stop tracking a database key by key once that costs more than it saves.

        A dirty set holding more than ``floor`` keys and more than 1/``ratio``
        of its database is dropped (``db.dirty = None``); the next capture
        then takes that database whole, which costs about the same as the
        incremental one would and keeps memory flat between checkpoints.
        Returns how many databases were trimmed. Called from the server cron.
        """
        if ks is not self._ks:
            return 0
        n = 0
        for db in ks.dbs:
            d = db.dirty
            if d is not None and len(d) > floor and len(d) * ratio > len(db.data):
                db.dirty = None
                n += 1
        return n

    # -- writing (any thread) -----------------------------------------------
    def write(self, snapshot: Snapshot, offset: int) -> WriteStats:
        """Apply ``snapshot`` and record ``offset``, atomically and durably.

        The snapshot is emptied afterwards, a chunk at a time: freed at once,
        a million keys' lists would hold the GIL for milliseconds.
        """
        try:
            return self._write_once(snapshot, offset)
        finally:
            parts = snapshot.parts
            while parts:
                part = parts.pop()
                if part[1]:
                    chunks = part[2]
                    while chunks:
                        chunks.pop()

    def _write_once(self, snapshot: Snapshot, offset: int) -> WriteStats:
        try:
            return self._write(snapshot, offset)
        except lmdb.MapFullError:
            self._env.set_mapsize(self._env.info()["map_size"] * 2)
            return self._write_once(snapshot, offset)
        except BaseException:
            self._need_full = True  # the snapshot's changes are lost: rewrite all next time
            raise

    def _write(self, snapshot: Snapshot, offset: int) -> WriteStats:
        puts = deletes = 0
        meta, keys_db, buckets_db = self._meta, self._keys, self._buckets
        with self._env.begin(write=True) as txn:
            current = txn.get(b"offset", db=meta)
            if current is not None and offset < int.from_bytes(current, "little"):
                raise ValueError(f"checkpoint offset {offset} is behind the existing one")
            if snapshot.full:
                txn.drop(keys_db, delete=False)
                txn.drop(buckets_db, delete=False)
                nkeys = 0
            else:
                nkeys = int.from_bytes(txn.get(b"keys", db=meta) or b"", "little")
            kcur = txn.cursor(keys_db)
            bcur = txn.cursor(buckets_db)
            seen = set()
            for part in snapshot.parts:
                prefix = db_prefix(part[0])
                whole_again = part[0] in seen  # taken whole twice (FLUSHDB mid-capture)
                seen.add(part[0])
                if part[1]:  # the database whole
                    if not snapshot.full or whole_again:
                        dropped = self._drop_range(kcur, prefix) + self._drop_buckets(bcur, prefix)
                        deletes += dropped
                        nkeys -= dropped
                    buckets: dict[int, dict] = {}
                    records = []
                    n = 0
                    for key, value, e in _whole_entries(part[2]):
                        if value is None:
                            continue  # deleted after its chunk was taken
                        n += 1
                        if e is None and type(value) is bytes:
                            b = crc32c(key) & (NBUCKETS - 1)
                            d = buckets.get(b)
                            if d is None:
                                d = buckets[b] = {}
                            d[key] = value
                        else:
                            lkey = prefix + key
                            records.append((lkey, encode_record(lkey, value, e)))
                    bcur.putmulti([(bk, encode_bucket(bk, d)) for bk, d in
                                   ((prefix + b.to_bytes(2, "big"), d) for b, d in buckets.items())])
                    if records:
                        kcur.putmulti(records)
                    while buckets:  # a bucket at a time: freed at once they hold the GIL for ms
                        buckets.popitem()
                    puts += n
                    nkeys += n
                    continue
                _, _, keys, values, expiries = part
                groups: dict[bytes, list] = {}
                for j, key in enumerate(keys):
                    bk = bucket_key(prefix, key)
                    g = groups.get(bk)
                    if g is None:
                        groups[bk] = [j]
                    else:
                        g.append(j)
                for bk, idxs in groups.items():
                    raw = txn.get(bk, db=buckets_db)
                    bucket = self._decode_bucket(bk, raw) if raw is not None else {}
                    for j in idxs:
                        key = keys[j]
                        value = values[j]
                        lkey = prefix + key
                        existed = bucket.pop(key, None) is not None
                        if txn.delete(lkey, db=keys_db):
                            existed = True
                        if value is None:
                            if existed:
                                deletes += 1
                                nkeys -= 1
                            continue
                        puts += 1
                        if not existed:
                            nkeys += 1
                        e = expiries[j] if expiries else None
                        if e is None and type(value) is bytes:
                            bucket[key] = value
                        else:
                            txn.put(lkey, encode_record(lkey, value, e), db=keys_db)
                    if bucket:
                        txn.put(bk, encode_bucket(bk, bucket), db=buckets_db)
                    elif raw is not None:
                        txn.delete(bk, db=buckets_db)
            txn.put(b"offset", offset.to_bytes(8, "little"), db=self._meta)
            txn.put(b"format", FORMAT_VERSION.to_bytes(4, "little"), db=self._meta)
            txn.put(b"created_ms", (time.time_ns() // 1_000_000).to_bytes(8, "little"), db=self._meta)
            txn.put(b"keys", nkeys.to_bytes(8, "little"), db=self._meta)
        return WriteStats(puts, deletes, nkeys)

    def _drop_buckets(self, cursor, prefix: bytes) -> int:
        """Delete a database's buckets; the number of keys they held."""
        n = 0
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                n += int.from_bytes(cursor.value()[:4], "little")
                if not cursor.delete():
                    break
        return n

    @staticmethod
    def _drop_range(cursor, prefix: bytes) -> int:
        n = 0
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break
                n += 1
        return n


class Capture:
    """A capture spread over many event-loop turns, so clients never wait long.

    Each *round* swaps the dirty sets out (keys changed since the previous
    round) and queues their keys; a database captured whole (first capture,
    FLUSHDB/SWAPDB, a trimmed dirty set) queues all its keys (``list(data)``,
    about 13 ms per million keys) behind a part that drops its old content.
    ``step(n)`` takes the current value and expiry of up to ``n`` queued keys.
    A key changed after its chunk was taken is in the next round's dirty set,
    so it is taken again, later parts overriding earlier ones when written.
    ``finish()`` runs one last round at once: every key changed since the
    previous round is taken in the same loop turn, so the snapshot is the
    keyspace exactly as of that moment (the log offset of that turn). The
    caller runs more chunked rounds first while the dirty sets are large.
    """

    def __init__(self, cp: Checkpointer, ks, full: bool):
        self.cp = cp
        self.ks = ks
        self.full = full
        self.parts: list = []
        self.queue: list = []  # [db index, iterator of keys, chunks of a whole database or None]
        self.rounds = 0
        self.next_round()

    def next_round(self) -> None:
        """Swap the dirty sets out and queue their keys."""
        first = self.rounds == 0
        self.rounds += 1
        tables = self.cp._tables
        for i, db in enumerate(self.ks.dbs):
            keys = db.dirty
            overflowed = keys is None  # trim() gave up tracking it key by key
            if keys or overflowed:
                db.dirty = set()
            data = db.data
            if (self.full and first) or overflowed or data is not tables[i]:
                tables[i] = data
                if data or not (self.full and first):  # a later round must drop what it took
                    chunks: list = []
                    self.parts.append((i, True, chunks))
                    self.queue.append([i, iter(list(data)), chunks])
            elif keys:
                # The swapped-out set is changed no more: iterate it as it is.
                self.queue.append([i, iter(keys), None])

    def dirty_keys(self) -> int:
        """Keys a next round would queue (a database to take whole: all its keys)."""
        n = 0
        tables = self.cp._tables
        for i, db in enumerate(self.ks.dbs):
            if db.dirty is None or db.data is not tables[i]:
                n += len(db.data)
            else:
                n += len(db.dirty)
        return n

    def step(self, budget: int | None) -> bool:
        """Take up to ``budget`` queued keys (None: all); True when none are left."""
        queue = self.queue
        while queue and (budget is None or budget > 0):
            i, keys, chunks = queue[0]
            if budget is None:
                chunk = list(keys)
            else:
                chunk = list(islice(keys, budget))
                budget -= len(chunk)
            if budget is None or budget > 0:
                queue.pop(0)  # fewer keys than asked for: this iterator is exhausted
            if not chunk:
                continue
            db = self.ks.dbs[i]
            data = db.data
            expires = db.expires
            values = list(map(data.get, chunk))  # None: deleted since
            expiries = list(map(expires.get, chunk)) if expires else None
            if chunks is None:
                self.parts.append((i, False, chunk, values, expiries))
            else:
                chunks.append((chunk, values, expiries))
        return not queue

    def finish(self) -> Snapshot:
        """The last round, taken at once: consistent as of this moment."""
        self.next_round()
        self.step(None)
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        return Snapshot(self.full, self.parts)
