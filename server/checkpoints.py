"""Checkpoint scheduling in the server: when checkpoints are taken, and how.

``wal.checkpoint.Checkpointer`` owns the LMDB format, the capture and the
writer; this module decides when they run, on which thread, and what the
server reports about them (INFO persistence, LASTSAVE).

- SAVE and SHUTDOWN write a checkpoint on the loop thread (clients wait,
  as in Redis).
- BGSAVE, BGREWRITEAOF and the automatic checkpoint every
  ``checkpoint-log-size`` bytes of log capture the changed keys on the loop
  thread, ``CAPTURE_CHUNK`` keys per loop turn, in rounds, and the last
  round at once (``wal.checkpoint.capture.Capture``), so the checkpoint is
  consistent at the log offset of that turn while clients wait for one
  chunk at a time; a worker thread at a lower CPU priority than the loop's
  writes it into LMDB.
- After a checkpoint covering offset O, log segments wholly before O are
  deleted.

``Checkpoints`` is a part of ``server.persistence.Persistence`` (which
inherits it): it uses its ``server``, ``ks``, ``log`` and ``checkpointer``,
and its ``_prepare_checkpoint``, which writes the log out to the offset a
checkpoint covers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("keel.persistence")


WRITER_NICENESS = 5


def _lower_priority() -> None:
    """Give this (checkpoint writer) thread a lower CPU priority than the loop's
    (``WRITER_NICENESS`` above the niceness it was started with).

    The writer is background work. With the server on one core, as the
    benchmarks pin it, clients waited 4-6 ms many times during each write
    when it ran at the loop's priority; at niceness 5 the loop preempts it
    sooner (longest PING about 5 ms, and seldom). Lower still costs too much
    under load: with the loop saturated by redis-benchmark, a 630k-key BGSAVE
    took 3.7 s at niceness 0, 8 s at 5, 16 s at 10, and 66 s as SCHED_IDLE.
    """
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WRITER_NICENESS))
    except (AttributeError, OSError):
        pass  # not Linux: the priority is the loop's


def _write(cp, snapshot, offset: int, db: int, hooks: list):
    """In the writer's thread: the snapshot hooks (each catches its own errors), then the checkpoint."""
    for hook in hooks:
        hook(snapshot, offset, db)
    return cp.write(snapshot, offset)


class Checkpoints:
    """Checkpoint state and scheduling (see the module docstring)."""

    def _init_checkpoints(self) -> None:
        self.last_save_time = int(time.time())
        self.last_bgsave_ok = True
        self.bgsave_task = None
        self.writer = None  # the checkpoint writer's thread (low priority), made when first needed
        self.dirty_at_last_save = 0
        self.saves = 0  # checkpoints written since the start (rdb_saves)
        self.last_save_seconds = -1
        self.bgsave_started = 0.0
        self.checkpoint_offset = 0
        # Called with the offset of each checkpoint once committed (a full sync
        # waits on it: replication.snapshot.checkpoint_for_sync).
        self.checkpoint_listeners: list = []
        # Called in the writer's thread with (snapshot, offset, db) before the next
        # background checkpoint is written, then forgotten (a full sync's RDB
        # straight from the capture: replication.snapshot.capture_for_sync).
        self.snapshot_hooks: list = []

    def checkpoint_if_due(self) -> None:
        """From the cron: a background checkpoint every ``checkpoint-log-size`` bytes of log."""
        limit = self.server.config["checkpoint-log-size"]
        if limit and self.bgsave_task is None and self.log.end_offset - self.checkpoint_offset >= limit:
            self.bgsave()

    def _checkpoint_done(self, offset: int, db: int, dirty_then: int, started: float,
                         delete: bool = True) -> None:
        self.checkpoint_offset = offset
        self.last_save_time = int(time.time())
        self.saves += 1
        self.last_save_seconds = int(time.time() - started)
        self.last_bgsave_ok = True
        self.dirty_at_last_save = dirty_then
        self.server.repl.checkpoint_done(offset, db)
        if delete:
            self._delete_segments(offset)
        for listener in list(self.checkpoint_listeners):
            listener(offset)

    def _delete_segments(self, offset: int) -> None:
        """Unlink the segments a checkpoint at ``offset`` covers (any thread: the
        loop only appends at the other end of the segment list)."""
        if self.log is not None:
            offset = self.server.repl.primary.retain_from(offset)  # what replicas still need
            removed = self.log.delete_before(offset)
            if removed:
                log.info("checkpoint at offset %d: removed %d log segment(s)", offset, len(removed))

    def save(self) -> None:
        """SAVE: a checkpoint written on the loop thread (blocks clients, as in Redis)."""
        started = time.time()
        offset = self._prepare_checkpoint()
        db = self.prepared_db
        dirty = self.ks.dirty
        snap = self.checkpointer.capture(self.ks)
        try:
            self.checkpointer.write(snap, offset)
        except Exception:
            self.last_bgsave_ok = False
            raise
        self._checkpoint_done(offset, db, dirty, started)

    # A background checkpoint takes its keys CAPTURE_CHUNK at a time, one chunk
    # per loop turn (under a millisecond; the longest PING during a 630k-key
    # BGSAVE was 6-9 ms with 8192, 3-7 ms with 2048), in rounds while the
    # dirty sets hold more than CAPTURE_FINAL keys (at most CAPTURE_ROUNDS rounds, so a write rate
    # above the capture rate still ends), then takes the last round at once.
    CAPTURE_CHUNK = 2048
    CAPTURE_FINAL = 8192
    CAPTURE_ROUNDS = 8

    def bgsave(self) -> bool:
        """BGSAVE: capture between commands, write in a worker thread. False if one is running."""
        if self.bgsave_task is not None:
            return False
        self.bgsave_started = time.time()
        self.bgsave_task = asyncio.ensure_future(self._background_checkpoint())
        return True

    async def _background_checkpoint(self) -> None:
        # The capture's key lists and the writer's buckets are millions of
        # young references: a collection walking them paused the loop 30-50 ms.
        # Keel makes few cycles; collect when the checkpoint is done instead.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            await self._background_checkpoint_body()
        finally:
            if gc_was_enabled:
                gc.enable()

    async def _background_checkpoint_body(self) -> None:
        started = self.bgsave_started
        cp = self.checkpointer
        loop = self.server.loop
        try:
            cap = cp.begin_capture(self.ks)
            await asyncio.sleep(0)
            while True:
                while not cap.step(self.CAPTURE_CHUNK):
                    await asyncio.sleep(0)
                if cap.rounds >= self.CAPTURE_ROUNDS or cap.dirty_keys() <= self.CAPTURE_FINAL:
                    break
                cap.next_round()
                await asyncio.sleep(0)
            # The last round and the offset in the same loop turn: consistent.
            captured = time.time()
            offset = self._prepare_checkpoint(sync=False)
            db = self.prepared_db  # the stream's database at that offset
            dirty = self.ks.dirty
            if self.writer is None:
                self.writer = ThreadPoolExecutor(1, "keel-checkpoint", initializer=_lower_priority)
            hooks, self.snapshot_hooks = self.snapshot_hooks, []
            fut = loop.run_in_executor(self.writer, _write, cp, cap.finish(), offset, db, hooks)
            cap = None  # the worker alone holds the snapshot, and frees it there
            await fut
        except Exception as e:
            self.bgsave_task = None
            self.last_bgsave_ok = False
            cp.forget_captures()
            log.error("background checkpoint failed: %s", e)
            return
        self._checkpoint_done(offset, db, dirty, started, delete=False)
        log.info("background checkpoint done at offset %d (capture %.2f s, write %.2f s)",
                 offset, captured - started, time.time() - captured)
        try:
            # Unlinking 64 MB segments and fsyncing the directory take ms: not on the loop.
            await loop.run_in_executor(None, self._delete_segments, offset)
        except Exception as e:
            log.warning("could not delete log segments before offset %d: %s", offset, e)
        finally:
            self.bgsave_task = None

    async def wait_bgsave(self) -> None:
        if self.bgsave_task is not None:
            try:
                await self.bgsave_task
            except Exception:
                pass
