"""Durability in the server: the log on the hot path, checkpoints, recovery.

This module wires ``wal.log.Log`` and ``wal.checkpoint.Checkpointer`` into the
running server; it owns none of their formats.

The write path (``appendonly yes``):

1. A batch of commands runs; their effects collect in ``ks.effects``.
2. ``journal()`` encodes them — the RESP arrays of the effects, with a
   SELECT whenever the database differs from the stream's — into the turn's
   batch. When every request of the read is its own effect (plain SETs), the
   read's bytes are its payload as they are. At the commit the whole turn's
   batch, from every client, is framed as ONE record.
3. The batch's replies are *held* on their connection (``hold``): any reply
   produced while the log holds records that are not yet safe depends on
   them, reads included. Safe is fsynced under ``appendfsync always``, and
   written (handed to the kernel, which a process crash cannot take back)
   under ``everysec`` and ``no``.
4. At the end of the event-loop iteration (``loop.call_soon`` runs after every
   ready socket was served) ``commit()`` writes everything buffered with one
   write — and under ``always`` one fsync, for every client of the iteration
   (group commit) — and releases the held replies, one ``transport.write``
   per connection. Under ``everysec`` the cron fsyncs once a second, in a
   worker thread; under ``no`` the kernel flushes when it likes.

So a reply never leaves before what it depends on is written, under every
policy, as in Redis (which writes the turn's log before the turn's replies):
``kill -9`` loses no acknowledged write; a power loss or OS crash may lose
what was not yet fsynced (under ``everysec`` about the last second).

The fsync runs on the loop thread, as Redis's does under ``always``: with
clients that wait for each reply nothing new arrives during the fsync, so
handing it to a thread only adds a hand-off per iteration. Measured here
(redis-benchmark SET, 50 clients, same run, fsync in a one-thread executor
with replies tagged by log offset and released as each fsync completed,
against this on-loop version): 0.88x without pipelining, 0.99x with -P 16.

A failed write or fsync (``WALWriteError``) stops the server with a non-zero
status and releases nothing: no reply acknowledges what is not on disk.

Checkpoints capture the changed keys on the loop thread and write them into
LMDB in a worker thread (BGSAVE, and automatically every
``checkpoint-log-size`` bytes of log), or on the loop (SAVE, SHUTDOWN). A
background capture takes 2048 keys per loop turn, in rounds, and its last
round at once (``wal.checkpoint.Capture``), so it is consistent at the log
offset of that turn while clients wait for one chunk at a time. After a
checkpoint covering offset O, log segments wholly before O are deleted.

Recovery (``load``): load the checkpoint, replay the log after its offset
through the engine's own handlers (``ks.loading`` set: nothing expires while
replaying), then serve. Clients that connect meanwhile get ``-LOADING``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import hiredis

from engine.errors import CommandError
from engine.registry import TABLE, dispatch_subcommand
from engine.session import Session

log = logging.getLogger("keel.persistence")

_pack = hiredis.pack_command


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


def _fsync_and_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


class Persistence:
    def __init__(self, server):
        self.server = server
        self.ks = server.ks
        cfg = server.config
        self.dir = cfg["dir"]
        self.log = None  # wal.log.Log when appendonly is on
        self.checkpointer = None
        self.stream_db = -1  # database of the last effect in the stream
        self.waiting: list = []  # connections holding replies until durable
        self.commit_scheduled = False
        self.batch: list = []  # payloads journaled this loop turn (see _append_batch)
        self.bg_fsync_running = False  # everysec's fsync, in a worker thread
        self.gathered = 0  # clients waiting at the previous turn of a deferred commit
        self.gather_turns = 0
        self.always = cfg["appendfsync"] == "always"
        self.holds_replies = False
        self.last_save_time = int(time.time())
        self.last_bgsave_ok = True
        self.bgsave_task = None
        self.writer = None  # the checkpoint writer's thread (low priority), made when first needed
        self.dirty_at_last_save = 0
        self.saves = 0  # checkpoints written since the start (rdb_saves)
        self.last_save_seconds = -1
        self.bgsave_started = 0.0
        self.checkpoint_offset = 0
        self.last_write_ok = True
        self.loading_started = 0.0
        self.last_progress_log = 0.0
        self.loaded_keys = 0
        self.load_total_bytes = 0
        self.load_done_bytes = 0
        server.config.listeners.append(self._config_changed)

    def _config_changed(self, name: str, value) -> None:
        if name == "appendfsync":
            self.set_fsync(value)

    # -- paths --------------------------------------------------------------
    @property
    def log_dir(self) -> str:
        return os.path.join(self.dir, self.server.config["appenddirname"])

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.dir, "checkpoint.lmdb")

    # -- startup --------------------------------------------------------------
    def load(self) -> None:
        """Load the checkpoint, replay the log after it, open the log for writing."""
        from wal.checkpoint import Checkpointer
        from wal.log import Log

        ks = self.ks
        cfg = self.server.config
        ks.loading = True
        self.loading_started = self.last_progress_log = time.time()
        try:
            self.checkpointer = Checkpointer(self.checkpoint_path)
            offset = self.checkpointer.load(ks, progress=self._checkpoint_progress) or 0
            self.checkpoint_offset = offset
            # Changes replayed from the log are changes since the checkpoint.
            self.checkpointer.start_tracking(ks)
            nkeys = sum(len(db.data) for db in ks.dbs)
            if nkeys:
                log.info("checkpoint loaded: %d keys at offset %d in %.2f s",
                         nkeys, offset, time.time() - self.loading_started)
            if cfg["appendonly"]:
                session = Session(ks)
                replay = Replayer(session)
                t0 = time.time()
                self.log = Log.open(self.log_dir, segment_size=cfg["wal-segment-size"],
                                    fsync=cfg["appendfsync"], start_offset=offset,
                                    progress=self._log_progress, on_record=replay,
                                    replay_from=offset)
                lg = self.log
                if lg.start_offset > offset:
                    lg.close()
                    self.log = None
                    raise RuntimeError(
                        f"the write-ahead log in {self.log_dir} starts at offset {lg.start_offset} but "
                        f"the checkpoint covers only up to {offset}: the records between are missing")
                if lg.end_offset < offset:
                    # The log ends before the checkpoint (cut short by a repair):
                    # everything in it is in the checkpoint already. Continuing it
                    # would reuse offsets, so it is set aside and a new one begins.
                    lg.close()
                    aside = f"{self.log_dir}.before-{int(time.time())}"
                    os.rename(self.log_dir, aside)
                    log.warning("write-ahead log ends at offset %d, before the checkpoint's %d: "
                                "moved to %s, starting a new log at %d", lg.end_offset, offset, aside, offset)
                    self.log = Log.open(self.log_dir, segment_size=cfg["wal-segment-size"],
                                        fsync=cfg["appendfsync"], start_offset=offset)
                self.log.defer_rotation = True  # the cron runs its background fsyncs
                rec = self.log.recovered
                if rec is not None and getattr(rec, "torn", None):
                    log.warning("write-ahead log: %s", rec.torn)
                if replay.records:
                    log.info("log replayed: %d records, %d commands after offset %d in %.2f s",
                             replay.records, replay.commands, offset, time.time() - t0)
                ks.effects.clear()
        finally:
            ks.loading = False
            self._update_holds()
        self.dirty_at_last_save = ks.dirty

    def _checkpoint_progress(self, done: int, total: int) -> None:
        self.loaded_keys = done
        self._report("loading checkpoint", done, total, "keys")

    def _log_progress(self, done: int, total: int) -> None:
        self.load_done_bytes, self.load_total_bytes = done, total
        self._report("replaying log", done, total, "bytes")

    def _report(self, what: str, done: int, total: int, unit: str) -> None:
        """Progress in the server log: at most once a second while loading."""
        now = time.time()
        if now - self.last_progress_log < 1.0 or not total:
            return
        self.last_progress_log = now
        elapsed = max(now - self.loading_started, 1e-6)
        log.info("%s: %d of %d %s (%.0f%%, %.0f %s/s)",
                 what, done, total, unit, 100.0 * done / total, done / elapsed, unit)

    # -- the write path ---------------------------------------------------------
    def journal(self, raw: bytes | None = None, requests: list | None = None) -> None:
        """Append the pending effects as one record (or drop them without a log).

        ``raw``/``requests``: the bytes of a read and the requests parsed from
        it, all of them run. When each request's effect is that very request
        (the same list object, in order, one database) — a batch of plain
        SETs, say — the read's bytes *are* the record's payload and nothing
        is encoded again.
        """
        effects = self.ks.effects
        lg = self.log
        if lg is None:
            effects.clear()
            return
        payload = None
        if raw is not None and len(effects) == len(requests):
            db = effects[0][0]
            for (index, argv), request in zip(effects, requests):
                if argv is not request or index != db:
                    break
            else:
                if db != self.stream_db:
                    raw = b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(str(db)), db) + raw
                    self.stream_db = db
                payload = raw
        if payload is None:
            payload, self.stream_db = encode_effects(effects, self.stream_db)
        effects.clear()
        self.batch.append(payload)
        if not self.commit_scheduled:
            self.commit_scheduled = True
            self.server.loop.call_soon(self.commit)

    # The effects journaled during one loop turn, from every client, become
    # ONE record at its commit (framing a record costs a CRC, a clock read and
    # a few copies: once per turn, not once per read). A torn record loses
    # the whole turn, none of which was acknowledged under `always`.
    # Everything that reads the log's end calls _append_batch() first.
    BATCH_RECORD_MAX = 1 << 30

    def _append_batch(self) -> None:
        batch = self.batch
        if batch:
            self.batch = []
            lg = self.log
            if len(batch) == 1:
                lg.append(batch[0])
            elif sum(map(len, batch)) <= self.BATCH_RECORD_MAX:
                lg.append(b"".join(batch))
            else:
                for payload in batch:
                    lg.append(payload)

    def _update_holds(self) -> None:
        # Whether replies may have to wait for the log (whenever there is
        # one): a plain attribute, read by the hot path once per batch.
        self.holds_replies = self.log is not None

    def must_hold(self) -> bool:
        """Whether replies produced now depend on records the log has not yet
        made safe: not yet fsynced under ``always``, not yet written (handed
        to the kernel) under ``everysec`` and ``no``."""
        lg = self.log
        if lg is None:
            return False
        if self.batch:
            return True
        return lg.end_offset > (lg.durable_offset if self.always else lg.written_offset)

    def hold(self, conn) -> None:
        if not conn.holding:
            self.waiting.append(conn)
        if not self.commit_scheduled:
            self.commit_scheduled = True
            self.server.loop.call_soon(self.commit)

    # Under `always`, the commit waits one more loop turn while the last turn
    # brought new clients to wait for it: requests that arrived while the batch
    # ran share its fsync instead of paying for the next one (at most
    # GATHER_TURNS turns; a lone client waits one turn, a few microseconds).
    GATHER_TURNS = 4

    def commit(self) -> None:
        """End of a loop iteration: group commit, then release held replies."""
        if self.always and len(self.waiting) > self.gathered and self.gather_turns < self.GATHER_TURNS:
            self.gathered = len(self.waiting)
            self.gather_turns += 1
            self.server.loop.call_soon(self.commit)
            return
        self.gathered = 0
        self.gather_turns = 0
        self.commit_scheduled = False
        if self.ks.effects:
            self.journal()
            self.commit_scheduled = False
        lg = self.log
        if lg is not None:
            try:
                self._append_batch()
                lg.commit()
            except Exception as e:  # WALWriteError: never acknowledge what is not on disk
                self.fatal(e)
                return
        waiting = self.waiting
        if waiting:
            self.waiting = []
            for conn in waiting:
                conn.release()

    def fatal(self, e: Exception) -> None:
        self.last_write_ok = False
        log.critical("write-ahead log failure, stopping without acknowledging: %s", e)
        for conn in self.waiting:
            conn.drop_held()
        self.waiting = []
        self.server.request_shutdown(exit_code=1, save=False)

    def set_fsync(self, policy: str) -> None:
        self.always = policy == "always"
        self._update_holds()
        if self.log is not None:
            self.log.set_fsync(policy)

    def cron(self) -> None:
        cp = self.checkpointer
        lg = self.log
        if cp is not None:
            cp.trim(self.ks)  # keeps the dirty sets from growing without bound
        if lg is None:
            return
        if not self.bg_fsync_running:
            try:
                job = lg.start_background_sync(time.time_ns() // 1_000_000)
            except Exception as e:
                self.fatal(e)
                return
            if job is not None:
                # everysec's fsync runs in a worker thread, as Redis's does:
                # on the loop it stalled every client for 10-20 ms a second.
                self.bg_fsync_running = True
                fd, offset = job
                fut = self.server.loop.run_in_executor(None, _fsync_and_close, fd)
                fut.add_done_callback(lambda f: self._background_synced(f, offset))
        limit = self.server.config["checkpoint-log-size"]
        if limit and self.bgsave_task is None and lg.end_offset - self.checkpoint_offset >= limit:
            self.bgsave()

    def _background_synced(self, fut, offset: int) -> None:
        self.bg_fsync_running = False
        exc = fut.exception()
        if exc is not None:
            self.fatal(exc)
        elif self.log is not None:
            try:
                self.log.background_synced(offset)  # may cut a full segment
            except Exception as e:
                self.fatal(e)

    # -- checkpoints ---------------------------------------------------------------
    def _prepare_checkpoint(self, sync: bool = True) -> int:
        """Write the log out (and make it durable: ``sync``); return the offset a
        checkpoint covers.

        A background checkpoint does not fsync the log on the loop: under
        ``always`` it is durable already, and under ``everysec``/``no`` the
        checkpoint itself makes the state at its offset durable (a log that
        a crash cut before that offset is set aside at the next start).
        """
        if self.ks.effects:
            self.journal()
        lg = self.log
        if lg is None:
            return self.checkpoint_offset
        self._append_batch()
        if sync:
            lg.sync()
        else:
            lg.flush()
        # The next record must say its database: a replay may start right here.
        self.stream_db = -1
        return lg.end_offset

    def _checkpoint_done(self, offset: int, dirty_then: int, started: float, delete: bool = True) -> None:
        self.checkpoint_offset = offset
        self.last_save_time = int(time.time())
        self.saves += 1
        self.last_save_seconds = int(time.time() - started)
        self.last_bgsave_ok = True
        self.dirty_at_last_save = dirty_then
        if delete:
            self._delete_segments(offset)

    def _delete_segments(self, offset: int) -> None:
        """Unlink the segments a checkpoint at ``offset`` covers (any thread: the
        loop only appends at the other end of the segment list)."""
        if self.log is not None:
            removed = self.log.delete_before(offset)
            if removed:
                log.info("checkpoint at offset %d: removed %d log segment(s)", offset, len(removed))

    def save(self) -> None:
        """SAVE: a checkpoint written on the loop thread (blocks clients, as in Redis)."""
        started = time.time()
        offset = self._prepare_checkpoint()
        dirty = self.ks.dirty
        snap = self.checkpointer.capture(self.ks)
        try:
            self.checkpointer.write(snap, offset)
        except Exception:
            self.last_bgsave_ok = False
            raise
        self._checkpoint_done(offset, dirty, started)

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
            offset = self._prepare_checkpoint(sync=False)
            dirty = self.ks.dirty
            if self.writer is None:
                self.writer = ThreadPoolExecutor(1, "keel-checkpoint", initializer=_lower_priority)
            fut = loop.run_in_executor(self.writer, cp.write, cap.finish(), offset)
            cap = None  # the worker alone holds the snapshot, and frees it there
            await fut
        except Exception as e:
            self.bgsave_task = None
            self.last_bgsave_ok = False
            cp.forget_captures()
            log.error("background checkpoint failed: %s", e)
            return
        self._checkpoint_done(offset, dirty, started, delete=False)
        log.info("background checkpoint done at offset %d", offset)
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

    def close(self, save: bool = True) -> None:
        """Shutdown: commit the log, optionally checkpoint, close files."""
        try:
            if self.ks.effects:
                self.journal()
            if self.log is not None and self.last_write_ok:
                self._append_batch()
                self.log.sync()
            if save and self.checkpointer is not None and self.last_write_ok:
                self.save()
        finally:
            if self.log is not None:
                try:
                    self.log.close()
                except Exception as e:
                    log.error("closing the log: %s", e)
            if self.checkpointer is not None:
                self.checkpointer.close()
            if self.writer is not None:
                self.writer.shutdown(wait=False)

    # -- INFO persistence --------------------------------------------------------
    def info(self) -> dict:
        lg = self.log
        return {
            "loading": int(self.ks.loading or self.server.loading),
            "async_loading": 0,
            "current_cow_peak": 0,
            "current_cow_size": 0,
            "current_cow_size_age": 0,
            "current_fork_perc": "0.00",
            "current_save_keys_processed": 0,
            "current_save_keys_total": 0,
            "rdb_changes_since_last_save": self.ks.dirty - self.dirty_at_last_save,
            "rdb_bgsave_in_progress": int(self.bgsave_task is not None),
            "rdb_last_save_time": self.last_save_time,
            "rdb_last_bgsave_status": "ok" if self.last_bgsave_ok else "err",
            "rdb_last_bgsave_time_sec": self.last_save_seconds,
            "rdb_current_bgsave_time_sec": (int(time.time() - self.bgsave_started)
                                            if self.bgsave_task is not None else -1),
            "rdb_saves": self.saves,
            "rdb_last_cow_size": 0,
            "rdb_last_load_keys_expired": 0,
            "rdb_last_load_keys_loaded": self.loaded_keys,
            "aof_enabled": int(lg is not None),
            "aof_rewrite_in_progress": 0,
            "aof_rewrite_scheduled": 0,
            "aof_last_rewrite_time_sec": -1,
            "aof_current_rewrite_time_sec": -1,
            "aof_last_bgrewrite_status": "ok",
            "aof_rewrites": 0,
            "aof_rewrites_consecutive_failures": 0,
            "aof_last_write_status": "ok" if self.last_write_ok else "err",
            "aof_last_cow_size": 0,
            "module_fork_in_progress": 0,
            "module_fork_last_cow_size": 0,
            "keel_checkpoint_offset": self.checkpoint_offset,
            "keel_log_end_offset": lg.end_offset if lg else 0,
            "keel_log_durable_offset": lg.durable_offset if lg else 0,
            "keel_log_segments": len(lg.segments()) if lg else 0,
        }


def encode_effects(effects: list, stream_db: int) -> tuple[bytes, int]:
    """One record's payload: the effects as RESP arrays, SELECT where the db changes.

    Returns the payload and the database the stream is in after it.
    """
    parts = []
    db = stream_db
    for index, argv in effects:
        if index != db:
            parts.append(b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(str(index)), index))
            db = index
        parts.append(_pack(tuple(argv)))
    return b"".join(parts), db


class Replayer:
    """Applies log records through the engine's handlers (no checks, no effects)."""

    def __init__(self, session: Session):
        self.session = session
        self.records = 0
        self.commands = 0

    def __call__(self, offset: int, timestamp_ms: int, payload: bytes) -> None:
        reader = hiredis.Reader()
        reader.feed(payload)
        session = self.session
        ks = session.ks
        self.records += 1
        while True:
            argv = reader.gets()
            if argv is False:
                break
            name = argv[0].lower()
            if name == b"select":
                session.select(int(argv[1]))
                continue
            cmd = TABLE.get(name)
            if cmd is None:
                raise RuntimeError(f"log record at offset {offset}: unknown command {argv[0]!r}")
            try:
                if cmd.subcommands:
                    dispatch_subcommand(cmd, session, argv)
                else:
                    cmd.handler(session, argv)
            except CommandError as e:
                # An effect that fails on replay is a bug in the command that
                # journaled it; the rest of the log is still worth having.
                log.error("log record at offset %d: %s failed on replay: %s", offset, argv[0], e)
            self.commands += 1
        ks.effects.clear()
