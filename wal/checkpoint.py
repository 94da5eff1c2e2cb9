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
  inline, no callback). ``trim`` (server cron) keeps its memory in
  proportion: a big set becomes a ``KeyLog`` (a list of every change), and a
  KeyLog past several changes per key is dropped (None: take the database
  whole next time).
* ``begin_capture`` returns a ``Capture`` that takes the same keys a chunk
  per event-loop turn, in rounds, and ``finish()`` takes the last round at
  once (see ``Capture``): the server's background checkpoints use it, so
  clients wait for one chunk (under a millisecond), not for the whole capture.
* ``capture`` swaps the dirty sets out and takes, for each dirty key, a
  reference to its current value and expiry time (None when deleted). It is a
  few C-level passes (``map(dict.get, keys)``), no per-key Python code. A
  database whose dict object is not the one seen at the previous capture
  (FLUSHDB/FLUSHALL replace it and restart its dirty set) has its old
  content in LMDB dropped and its dirty keys written. A database no longer
  tracked key by key (SWAPDB exchanges the dicts; ``trim`` gave up) is
  captured whole, walking its dict (``_Walk``); so is everything on the first capture
  after ``start_tracking`` on a keyspace this checkpointer did not load, and
  after a ``write`` that failed. Values are captured by reference, which is a
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
from itertools import chain, islice, repeat

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

    __slots__ = ("full", "parts", "spent")

    def __init__(self, full: bool, parts: list, spent: list | None = None):
        self.full = full
        self.parts = parts
        # Key lists and sets the capture went through: big, and freed a piece
        # at a time by the writer rather than at once on the event loop.
        self.spent = spent if spent is not None else []

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


_ONLY_BYTES = {bytes}


def _per_database(parts: list):
    """Merge a snapshot's parts per database: ``(index, whole, changed)``.

    ``whole`` is the chunk list of the last part that took the database whole
    (what earlier parts took is dropped with the old content), or None.
    ``changed`` lists the ``(keys, values, expiries)`` of the changed-key
    parts that follow it, or None; they are written together, so each bucket
    is rewritten once per checkpoint, not once per chunk (a capture of 400k
    changed keys comes in about 50 chunks, and rewriting each bucket 50 times
    took 6 s instead of 1). Later entries for the same key win, as later
    parts did.
    """
    per: dict[int, list] = {}
    for part in parts:
        entry = per.get(part[0])
        if entry is None:
            entry = per[part[0]] = [None, []]
        if part[1]:
            entry[0] = part[2]
            entry[1] = []
        else:
            entry[1].append(part[2:])
    for i, (whole, changed) in per.items():
        yield i, whole, changed or None


def _free(container) -> None:
    """Empty a big list or dict a piece at a time: freeing a million references
    at once holds the GIL for milliseconds (this runs in the writer thread)."""
    if type(container) is dict:
        while container:
            container.popitem()
    elif type(container) is set:
        while container:
            container.pop()
    else:
        while container:
            del container[-8192:]


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


def encode_bucket(bkey: bytes, bucket: dict) -> bytes:
    body = len(bucket).to_bytes(4, "little") + marshal.dumps(bucket, 4)
    return body + crc32c(body, crc32c(bkey)).to_bytes(4, "little")


class KeyLog(list):
    """A dirty set that no longer deduplicates: every change appends its key.

    ``Checkpointer.trim`` puts one in place of a dirty set that grew past a
    share of its database, keeping the set itself, no longer written to, as
    ``earlier``. A change then costs one ``list.append`` and 8 bytes, where a
    set costs 30-60 bytes per key, and the next capture still takes only the
    keys that changed, a chunk per loop turn, from lists nothing writes to
    (a key changed twice in different chunks is taken twice, and the writer
    keeps the later value). Without it a bulk load of new keys made the next
    checkpoint take the database whole.
    """

    __slots__ = ("earlier",)
    add = list.append  # the mutators call ``db.dirty.add(key)`` on a set or a KeyLog alike

    def __init__(self, earlier):
        super().__init__()
        self.earlier = earlier


def _changes(d) -> int:
    """Keys a capture of the dirty set or KeyLog ``d`` would take (repeats included)."""
    return len(d) + len(d.earlier) if type(d) is KeyLog else len(d)


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

    def trim(self, ks, floor: int = 65536, ratio: int = 8, log_ratio: int = 1,
             copy_below: int = 131072) -> int:
        """Keep the memory of dirty tracking in proportion to the database.

        A dirty set holding more than ``floor`` keys and more than 1/``ratio``
        of its database becomes a ``KeyLog`` (8 bytes per change instead of
        30-60 per key; a set of at most ``copy_below`` keys is copied into
        it, a bigger one kept beside it). A KeyLog holding more than
        ``log_ratio`` changes per key of its database (plus ``floor``) is
        dropped (``db.dirty = None``): the next capture takes that database
        whole (``_Walk``), which costs less than taking each change (a
        checkpoint of a KeyLog of 4 changes per key under a write load ran
        the server at 225k req/s, a whole one at 300k) and bounds memory.
        Returns how many databases changed form. Called from the server cron.
        """
        if ks is not self._ks:
            return 0
        n = 0
        for db in ks.dbs:
            d = db.dirty
            if d is None:
                continue
            size = len(db.data)
            if type(d) is set:
                if len(d) > floor and len(d) * ratio > size:
                    if len(d) <= copy_below:
                        # A set's table takes 16-32 bytes per key, a list 8:
                        # a small one is copied over (a millisecond or two).
                        log = db.dirty = KeyLog(())
                        log.extend(d)
                    else:
                        db.dirty = KeyLog(d)
                    n += 1
            elif len(d) > log_ratio * size + floor:
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
            spent = snapshot.spent
            while spent:
                source = spent.pop()
                if type(source) is KeyLog:
                    _free(source.earlier)
                if source is not None:
                    _free(source)

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
            for i, whole, changed in _per_database(snapshot.parts):
                prefix = db_prefix(i)
                if whole is not None:
                    if not snapshot.full:
                        dropped = self._drop_range(kcur, prefix) + self._drop_buckets(bcur, prefix)
                        deletes += dropped
                        nkeys -= dropped
                    n = self._write_whole(bcur, kcur, prefix, whole)
                    puts += n
                    nkeys += n
                if changed is not None:
                    p, d, k = self._write_changed(txn, kcur, prefix, changed)
                    puts += p
                    deletes += d
                    nkeys += k
            txn.put(b"offset", offset.to_bytes(8, "little"), db=self._meta)
            txn.put(b"format", FORMAT_VERSION.to_bytes(4, "little"), db=self._meta)
            txn.put(b"created_ms", (time.time_ns() // 1_000_000).to_bytes(8, "little"), db=self._meta)
            txn.put(b"keys", nkeys.to_bytes(8, "little"), db=self._meta)
        return WriteStats(puts, deletes, nkeys)

    @staticmethod
    def _write_whole(bcur, kcur, prefix: bytes, chunks: list) -> int:
        """Write a database taken whole (its old content already dropped); keys written.

        A key may come twice (a walk that had to list the dict again): the
        later entry wins, a value or a deletion (None).
        """
        buckets: dict[int, dict] = {}
        records: dict[bytes, bytes] = {}
        mask = NBUCKETS - 1
        for key, value, e in _whole_entries(chunks):
            b = crc32c(key) & mask
            d = buckets.get(b)
            if d is None:
                d = buckets[b] = {}
            if value is None:  # deleted after it was taken
                d.pop(key, None)
                if records:
                    records.pop(prefix + key, None)
            elif e is None and type(value) is bytes:
                d[key] = value
                if records:
                    records.pop(prefix + key, None)
            else:
                d.pop(key, None)
                lkey = prefix + key
                records[lkey] = encode_record(lkey, value, e)
        n = len(records)
        puts = []
        for b, d in buckets.items():
            if d:
                n += len(d)
                bk = prefix + b.to_bytes(2, "big")
                puts.append((bk, encode_bucket(bk, d)))
        bcur.putmulti(puts)
        if records:
            kcur.putmulti(sorted(records.items()))
        while buckets:  # a bucket at a time: freed at once they hold the GIL for ms
            buckets.popitem()
        _free(records)
        return n

    def _write_changed(self, txn, kcur, prefix: bytes, changed: list) -> tuple[int, int, int]:
        """Apply the changed keys of ``changed``, a list of ``(keys, values,
        expiries)`` (later entries win); (puts, deletes, change in key count).

        LMDB is read and written in a few batched calls (``getmulti``,
        ``putmulti``), not one call per bucket or key: each call hands the GIL
        over and takes it back at once, and a writer doing that thousands of
        times a second kept the event loop from getting the GIL for up to
        150 ms (CPython's GIL is not fair to a thread that waits for it).
        """
        buckets_db = self._buckets
        puts = deletes = nkeys = 0
        mask = NBUCKETS - 1
        groups: dict[int, list] = {}  # bucket number -> [keys, values, expiries]
        for keys, values, expiries in changed:
            for key, value, e in zip(keys, values, expiries or repeat(None)):
                b = crc32c(key) & mask
                g = groups.get(b)
                if g is None:
                    groups[b] = [[key], [value], [e]]
                else:
                    g[0].append(key)
                    g[1].append(value)
                    g[2].append(e)
        order = sorted(groups)
        names = [prefix + b.to_bytes(2, "big") for b in order]
        bcur = txn.cursor(buckets_db)
        raws = dict(bcur.getmulti(names))
        # One-record keys (a TTL, or not a plain string) now in LMDB among
        # these; most databases have none, which one cursor seek tells.
        if kcur.set_range(prefix) and kcur.key().startswith(prefix):
            present = {k for k, _ in kcur.getmulti([prefix + key for c in changed for key in c[0]])}
        else:
            present = set()
        records: dict[bytes, bytes | None] = {}  # lkey -> new record, None: delete
        new_buckets = []
        emptied = []
        for b, bk in zip(order, names):
            raw = raws.pop(bk, None)
            bucket = self._decode_bucket(bk, raw) if raw is not None else {}
            ks_, vs_, es_ = groups[b]
            if (not present and es_.count(None) == len(es_) and None not in vs_
                    and set(map(type, vs_)) == _ONLY_BYTES):
                # Plain strings set, nothing else (most buckets): in C.
                n = len(bucket)
                bucket.update(zip(ks_, vs_))
                puts += len(ks_)
                nkeys += len(bucket) - n
                new_buckets.append((bk, encode_bucket(bk, bucket)))
                continue
            for key, value, e in zip(ks_, vs_, es_):
                lkey = prefix + key
                existed = bucket.pop(key, None) is not None
                if lkey in present:
                    present.discard(lkey)
                    records[lkey] = None
                    existed = True
                if value is None:
                    if existed:
                        deletes += 1
                        nkeys -= 1
                    continue
                puts += 1
                if not existed:
                    nkeys += 1
                if e is None and type(value) is bytes:
                    bucket[key] = value
                else:
                    records[lkey] = encode_record(lkey, value, e)
                    present.add(lkey)
            if bucket:
                new_buckets.append((bk, encode_bucket(bk, bucket)))
            elif raw is not None:
                emptied.append(bk)
        bcur.putmulti(new_buckets)
        kcur.putmulti(sorted((k, r) for k, r in records.items() if r is not None))
        gone = [(bk, buckets_db) for bk in emptied]
        gone += [(k, self._keys) for k, r in records.items() if r is None]
        for n, (k, where) in enumerate(gone, 1):
            txn.delete(k, db=where)
            if not n % 128:
                time.sleep(0.0001)  # let the loop take the GIL (see above)
        _free(groups)
        _free(records)
        _free(new_buckets)
        return puts, deletes, nkeys

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


class _Walk:
    """The keys of a database taken whole, a chunk per loop turn, from the dict itself.

    A dict iterator is only valid while the dict keeps its keys: an added or
    removed key can move the others (or end the iterator with an error). So
    before each chunk the walk checks that the database has the same dict,
    as many keys, and no key removed since the last chunk (``removed``,
    counted by the Database's two removing mutators): then no key was added
    either, and the iterator goes on where it was. Values changing in place
    (SET of an existing key, most writes) keep it valid. Otherwise the walk
    lists the whole dict at once, as every whole capture used to (about
    27 ms per million keys), and goes on from that list; keys already taken
    are taken again (the writer keeps the later value).
    """

    __slots__ = ("db", "data", "size", "removed", "it", "listed")

    def __init__(self, db):
        self.db = db
        self.data = db.data
        self.size = len(db.data)
        self.removed = db.removed
        self.it = iter(db.data)
        self.listed = None

    def take(self, n: int | None) -> list:
        if self.listed is None:
            db = self.db
            if db.data is self.data and len(self.data) == self.size and db.removed == self.removed:
                return list(self.it) if n is None else list(islice(self.it, n))
            self.listed = list(db.data)  # the dict changed shape: the one-go listing
            self.it = iter(self.listed)
        return list(self.it) if n is None else list(islice(self.it, n))


class Capture:
    """A capture spread over many event-loop turns, so clients never wait long.

    Each *round* swaps the dirty sets (or KeyLogs) out (keys changed since
    the previous round) and queues their keys; a database flushed since
    queues them behind a part that drops its old content. A database captured
    whole (first capture of a keyspace not loaded here, SWAPDB, a dropped
    KeyLog) queues a ``_Walk`` of its dict behind such a part: a chunk per
    turn too, unless keys are added or removed meanwhile (then the dict is
    listed at once, about 27 ms per million keys, the one step here that can
    grow with the database).
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
        self.queue: list = []  # [db index, iterator of keys, chunks of a whole database or None, its source]
        self.spent: list = []  # sources gone through (see Snapshot.spent)
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
            if overflowed or keys or type(keys) is KeyLog:
                db.dirty = set()
                # The swapped-out set or KeyLog is changed no more: iterate it as it is.
                source = chain(keys.earlier, keys) if type(keys) is KeyLog else keys
            else:
                # Nothing changed: the empty set stays in place, and is not
                # the capture's to free.
                source = keys = ()
            data = db.data
            replaced = data is not tables[i]
            tables[i] = data
            if (self.full and first) or overflowed:
                # Every key, walked a chunk per turn (see _Walk).
                if data or not (self.full and first):  # a later round must drop what it took
                    chunks: list = []
                    self.parts.append((i, True, chunks))
                    self.queue.append([i, _Walk(db), chunks, None])
            elif replaced:
                # FLUSHDB/FLUSHALL since the last round: the old content goes,
                # and every key the new dict holds was added since the clear,
                # which started a fresh dirty set (Database.clear).
                chunks = []
                self.parts.append((i, True, chunks))
                self.queue.append([i, iter(source), chunks, keys])
            elif source:
                self.queue.append([i, iter(source), None, keys])

    def dirty_keys(self) -> int:
        """Keys a next round would queue (a database to take whole: all its keys)."""
        n = 0
        for db in self.ks.dbs:
            d = db.dirty
            if d is None:
                n += len(db.data)
            else:
                n += _changes(d)
        return n

    def step(self, budget: int | None) -> bool:
        """Take up to ``budget`` queued keys (None: all); True when none are left."""
        queue = self.queue
        while queue and (budget is None or budget > 0):
            i, keys, chunks, source = queue[0]
            if type(keys) is _Walk:
                chunk = keys.take(budget)
                if budget is not None:
                    budget -= len(chunk)
            elif budget is None:
                chunk = list(keys)
            else:
                chunk = list(islice(keys, budget))
                budget -= len(chunk)
            exhausted = budget is None or budget > 0  # fewer keys than asked for
            if type(source) is KeyLog:
                # A key changed twice in a chunk is taken once. (Across
                # chunks it may be taken twice, the writer keeping the later
                # value: checking every key against those taken before cost
                # the loop as much as taking it again.)
                chunk = list(set(chunk))
            if exhausted:
                queue.pop(0)
                self.spent.append(keys.listed if type(keys) is _Walk else source)
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
        return Snapshot(self.full, self.parts, self.spent)
