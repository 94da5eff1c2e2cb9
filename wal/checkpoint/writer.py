"""The checkpoint writer: a captured snapshot into LMDB, in one transaction.

Role: ``Writer`` is the part of ``Checkpointer`` that writes; ``write`` runs
in the server's low-priority writer thread (or on the loop for SAVE). It
touches no keyspace object: only the snapshot's lists, which nothing else
writes to once the capture is finished.

Invariants: a snapshot is applied — puts, deletes and the meta record — in
ONE LMDB write transaction, so a checkpoint is all-or-nothing and a crash
mid-write leaves the previous one intact; the commit fsyncs the data pages
before the meta page (LMDB's default), so no separate ``env.sync`` is
needed. Plain strings without a TTL go to buckets (``wal.checkpoint.layout``),
each bucket rewritten at most once per checkpoint. A write that fails sets
``_need_full`` (its changes left the dirty sets: the next capture takes
everything). Big containers are freed a piece at a time: freed at once they
hold the GIL, and so the event loop, for milliseconds.
"""

from __future__ import annotations

import marshal
import time
from itertools import repeat

import lmdb
from crc32c import crc32c

from wal.checkpoint.capture import Snapshot
from wal.checkpoint.layout import (
    FORMAT_VERSION,
    NBUCKETS,
    STRING_TYPES,
    db_prefix,
    decode_bucket,
    encode_bucket,
    encode_record,
)
from wal.checkpoint.tracker import KeyLog


class WriteStats:
    """What one ``write`` did: records put, records deleted, records after it."""

    __slots__ = ("puts", "deletes", "keys")

    def __init__(self, puts: int, deletes: int, keys: int):
        self.puts = puts
        self.deletes = deletes
        self.keys = keys

    def __repr__(self) -> str:
        return f"WriteStats(puts={self.puts}, deletes={self.deletes}, keys={self.keys})"


def _whole_entries(chunks: list):
    """(key, value, expiry) of a whole database's chunks."""
    for keys, values, expiries in chunks:
        if expiries is None:
            for key, value in zip(keys, values):
                yield key, value, None
        else:
            yield from zip(keys, values, expiries)


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


class Writer:
    """Writing a snapshot; mixed into ``Checkpointer``."""

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
            if snapshot.functions:
                txn.put(b"functions", marshal.dumps(snapshot.functions), db=self._meta)
            elif snapshot.functions is not None:
                txn.delete(b"functions", db=self._meta)
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
            elif e is None and type(value) in STRING_TYPES:
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
            bucket = decode_bucket(self.file, bk, raw) if raw is not None else {}
            ks_, vs_, es_ = groups[b]
            if (not present and es_.count(None) == len(es_) and None not in vs_
                    and set(map(type, vs_)) <= STRING_TYPES):
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
                if e is None and type(value) in STRING_TYPES:
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
