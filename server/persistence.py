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

Checkpoints (SAVE, BGSAVE, the automatic one every ``checkpoint-log-size``
bytes of log) are scheduled by ``server.checkpoints.Checkpoints``, which
this class extends; the write path's part is ``_prepare_checkpoint``.

Recovery (``load``): load the checkpoint, replay the log after its offset
through the engine's own handlers (``ks.loading`` set: nothing expires while
replaying), then serve. Clients that connect meanwhile get ``-LOADING``.
"""

from __future__ import annotations

import logging
import os
import time

import hiredis

from engine.errors import CommandError
from engine.registry import TABLE, dispatch_subcommand
from engine.session import Session
from server import latency
from server.checkpoints import Checkpoints

log = logging.getLogger("keel.persistence")

_pack = hiredis.pack_command


def _fsync_and_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


class Persistence(Checkpoints):
    def __init__(self, server):
        self.server = server
        self.ks = server.ks
        cfg = server.config
        self.dir = cfg["dir"]
        self.log = None  # wal.log.Log when appendonly is on
        self.checkpointer = None
        self.stream_db = -1  # database of the last effect in the stream
        self.prepared_db = -1  # the stream's database at the last prepared checkpoint
        self.waiting: list = []  # connections holding replies until durable
        self.commit_scheduled = False
        self.batch: list = []  # payloads journaled this loop turn (see _append_batch)
        # Replication (replication.primary): the log's bytes go to caught-up
        # replicas once written (during the fsync under always), so a replica
        # never holds what a crash of this process could take back (a power
        # loss could: the log's fsync may not have finished).
        self.unfed: list = []  # appended, not yet handed to the replicas
        self.fed_offset = 0  # where ``unfed`` starts
        self.bg_fsync_running = False  # everysec's fsync, in a worker thread
        self.gathered = 0  # clients waiting at the previous turn of a deferred commit
        self.gather_turns = 0
        self.always = cfg["appendfsync"] == "always"
        self.holds_replies = False  # there is a log: replies may have to wait for it
        self.must_hold = False  # replies produced now wait for the commit (see _update_holds)
        self._init_checkpoints()
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
        if self.server.repl.syncing:
            from replication import new_replid
            from replication.replica import discard

            log.warning("a full sync from a primary was not finished when this server stopped: "
                        "starting empty (it syncs again)")
            discard(self.log_dir, self.checkpoint_path)
            self.server.repl.syncing = False
            self.server.repl.replid = new_replid()
            self.server.repl.save_state()
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
                if self.server.repl.stream_db > 0:  # a replica's stream at its checkpoint (replication.state)
                    session.select(self.server.repl.stream_db)
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
                    self.server.repl.stream_db = session.db.index
                    log.info("log replayed: %d records, %d commands after offset %d in %.2f s",
                             replay.records, replay.commands, offset, time.time() - t0)
                self.prepared_db = session.db.index  # the stream's database at the log's end
                self.stream_db = -1  # (a rollback reloads too: nothing journaled since)
                ks.effects.clear()
            if os.path.isfile(os.path.join(self.dir, cfg["dbfilename"])):
                from replication.rdbload import import_dump
                import_dump(self)  # a first start on a dump.rdb Redis wrote: the migration path
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
        if lg is None or self.server.repl.role == "slave":
            # (A writable replica's own writes stay local, as in Redis: its log
            # holds its primary's stream, byte for byte.)
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
        self.must_hold = True
        if not self.commit_scheduled:
            self.commit_scheduled = True
            self.server.loop.call_soon(self.commit)

    def journal_raw(self, payload: bytes, db: int | None = None) -> None:
        """Append stream bytes as they are (a replica's share of its primary's
        stream, a PING or GETACK for the replicas); ``db``: the stream's
        database after them."""
        if self.log is None:
            return
        self.batch.append(payload)
        if db is not None:
            self.stream_db = db
        self.must_hold = True
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
            unfed = self.unfed if self.server.repl.primary.live else None
            if unfed is not None and not unfed:  # everything before here was fed
                self.fed_offset = lg.end_offset
            if len(batch) == 1:
                lg.append(batch[0])
                if unfed is not None:
                    unfed.append(batch[0])
            elif sum(map(len, batch)) <= self.BATCH_RECORD_MAX:
                data = b"".join(batch)
                lg.append(data)
                if unfed is not None:
                    unfed.append(data)
            else:
                for payload in batch:
                    lg.append(payload)
                    if unfed is not None:
                        unfed.append(payload)
            if unfed is None:  # nobody listens: nothing waits to be fed
                self.fed_offset = lg.end_offset
                if self.unfed:
                    self.unfed.clear()

    # Two plain attributes, read by the hot path once per batch:
    # ``holds_replies``: there is a log, so a reply may have to wait for it;
    # ``must_hold``: replies produced now depend on records the log has not
    # yet made safe — fsynced under ``always``, written (handed to the
    # kernel) under ``everysec`` and ``no`` — reads included. ``journal``
    # sets it, ``commit`` clears it once the log is safe to its end. It may
    # be True when nothing is left unsafe (after a policy change, say): the
    # replies then wait for the next commit, which ``hold`` schedules.
    def _update_holds(self) -> None:
        self.holds_replies = self.log is not None

    def _update_must_hold(self) -> None:
        lg = self.log
        self.must_hold = bool(self.batch) or lg.end_offset > (
            lg.durable_offset if self.always else lg.written_offset) or bool(self.server.repl.waits.pending)

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
                if self.unfed and self.always:
                    # Written (a process crash keeps it), the replicas get it
                    # while the fsync runs: synchronous mode waits for the
                    # slower of the two, not for both one after the other.
                    lg.flush()
                    self.feed_replicas()
                t0 = time.perf_counter_ns() if latency.THRESHOLD_MS else 0  # LATENCY events (server.latency)
                lg.commit()
                if t0:
                    latency.add("aof-fsync-always" if self.always else "aof-write",
                                (time.perf_counter_ns() - t0) // 1_000_000)
            except Exception as e:  # WALWriteError: never acknowledge what is not on disk
                self.fatal(e)
                return
            if self.unfed:
                self.feed_replicas()
            self._update_must_hold()
        waiting = self.waiting
        if waiting:
            self.waiting = []
            waits = self.server.repl.waits
            if waits.sync_n and lg is not None:
                waits.hold(waiting, lg.end_offset)  # min-replicas-to-ack: they leave on the acks
                return
            for conn in waiting:
                conn.release()

    def feed_replicas(self) -> None:
        """The bytes appended since the last feed, now safe: to the live replicas."""
        unfed = self.unfed
        data = unfed[0] if len(unfed) == 1 else b"".join(unfed)
        unfed.clear()
        start = self.fed_offset
        self.fed_offset = start + len(data)
        self.server.repl.primary.feed(data, start)

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
        self.checkpoint_if_due()

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

    # -- the write path's part of a checkpoint -----------------------------------
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
        # The stream's database at this offset, for a replay or a full sync
        # that starts here (a replica's stream names its database only when it
        # changes); -1: nothing was journaled since the last checkpoint, whose
        # database it still is.
        if self.stream_db >= 0:
            self.prepared_db = self.stream_db
        # The next record must say its database: a replay may start right here.
        self.stream_db = -1
        return lg.end_offset

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
            if name == b"multi" or name == b"exec" or name == b"ping" or name == b"replconf":
                # (PING and REPLCONF GETACK: the replication stream's own, in the log.)
                # A transaction's bounds: a record holds all of it, so replay
                # applies it whole whatever they say.
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
