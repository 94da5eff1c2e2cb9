"""Loading a checkpoint into an empty keyspace (recovery's first step).

Role: ``Loader`` is the part of ``Checkpointer`` that reads: ``info`` (the
meta record) and ``load``. It uses the environment the Checkpointer opened
(``_env``, ``_keys``, ``_buckets``, ``_meta``, ``file``) and records which
keyspace it filled (``_loaded``), so that tracking knows whether the LMDB
content already matches that keyspace.

Invariants: ``load`` fills ``db.data`` / ``db.expires`` directly (no
watchers, no effects, nothing marked dirty); every record's checksum is
checked before its value is used, and any damage raises ``CheckpointError``
naming the file (and the key).
"""

from __future__ import annotations

import marshal

import lmdb
from crc32c import crc32c

from engine import rdb
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

_PROGRESS_EVERY = 1 << 16


class Loader:
    """Reading the checkpoint; mixed into ``Checkpointer``."""

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
                functions = txn.get(b"functions", db=self._meta)
        except lmdb.Error as e:
            raise CheckpointError(f"{self.file}: unreadable checkpoint: {e}") from None
        if functions is not None and getattr(ks, "scripting", None) is not None:
            try:
                ks.scripting.load_codes(marshal.loads(functions))
            except Exception as e:  # a library that no longer loads: the checkpoint is not what was written
                raise CheckpointError(f"{self.file}: function libraries do not load: {e}") from None
        ks.account_all()  # the memory accounting the mutators were bypassed for (engine.memory)
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
            bucket = decode_bucket(self.file, k, v)
            dbs[index].data.update(bucket)
            n += len(bucket)
            if progress is not None and not i & 255:
                progress(n, total)
        return n

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
