"""Checkpoints: the whole keyspace as of one log offset, in an LMDB environment.

Recovery loads the newest checkpoint and replays the log after the offset it
covers; the log segments wholly before that offset can then be deleted.
Checkpoints are incremental: only keys changed since the previous one are
rewritten, keys deleted since are removed.

Modules, one per seam (the thread each runs on in brackets):

- ``layout``: the LMDB layout, record and bucket codecs, ``CheckpointError``;
- ``tracker``: dirty sets, ``KeyLog``, ``trim`` [event loop];
- ``capture``: ``Capture``, ``_Walk``, ``Snapshot``: taking the keys, a
  chunk per turn [event loop];
- ``writer``: ``Writer.write``: a snapshot into one LMDB transaction
  [writer thread];
- ``loader``: ``Loader.load`` and ``info`` [startup];
- this package: ``Checkpointer``, which opens the environment and is made
  of the ``Loader``, ``Tracker`` and ``Writer`` parts.

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

* ``load`` fills ``db.data`` / ``db.expires`` directly:
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
  after a ``write`` that failed. Values are captured by reference, except a
  string written in place (a ``bytearray``: APPEND, SETRANGE, SETBIT,
  BITFIELD), which is copied to ``bytes``: the loop goes on changing it while
  the writer reads the snapshot. Any other mutable type added later must be
  copied there too or made copy-on-write, otherwise a change made after
  ``capture`` would leak into the checkpoint.
* ``write`` encodes the snapshot and applies it — puts, deletes, and the meta
  record — in ONE LMDB write transaction, so a checkpoint is all-or-nothing:
  a crash mid-write leaves the previous one intact. The commit fsyncs the
  data pages before the meta page (LMDB's default sync mode), which is what
  makes it both atomic and durable; no separate ``env.sync`` is needed. It
  touches no keyspace object and may run in a worker thread. It returns a
  ``WriteStats`` (puts, deletes, keys).
"""

from __future__ import annotations

import os

import lmdb

from wal.checkpoint.capture import Capture, Snapshot
from wal.checkpoint.layout import (
    FORMAT_VERSION,
    NBUCKETS,
    CheckpointError,
    db_prefix,
    encode_bucket,
    encode_record,
)
from wal.checkpoint.loader import Loader
from wal.checkpoint.tracker import KeyLog, Tracker
from wal.checkpoint.writer import Writer, WriteStats

_DEFAULT_MAP_SIZE = 1 << 36  # address space, not disk: the file grows as used

__all__ = [
    "FORMAT_VERSION",
    "NBUCKETS",
    "Capture",
    "CheckpointError",
    "Checkpointer",
    "KeyLog",
    "Snapshot",
    "WriteStats",
    "db_prefix",
    "encode_bucket",
    "encode_record",
]


class Checkpointer(Loader, Tracker, Writer):
    """One checkpoint directory; see the package docstring for the protocol."""

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

    def capture(self, ks) -> Snapshot:
        """The changes since the previous capture, as of now (see module docstring)."""
        cap = self.begin_capture(ks)
        cap.step(None)
        return cap.snapshot()

    def begin_capture(self, ks) -> "Capture":
        """A capture taken a chunk at a time between commands (see ``Capture``)."""
        if ks is not self._ks:
            raise ValueError("capture() of a keyspace that is not being tracked")
        full = self._need_full
        self._need_full = False
        return Capture(self, ks, full)
