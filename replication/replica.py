"""The replica side: this server's link to its primary.

``Link.run`` loops until ``stop()``: connect, handshake, synchronise, apply
the stream; on any failure (refused, wrong password, a primary that is not
one, a damaged RDB or stream, a timeout) it logs one line, marks the link
down and tries again a second later. The handshake is Redis's:

    PING                                  -> +PONG (or -NOAUTH: AUTH comes next)
    AUTH [masteruser] masterauth          -> +OK
    REPLCONF listening-port <port>        -> +OK   (replica-announce-port if set)
    REPLCONF ip-address <ip>              -> +OK   (only with replica-announce-ip)
    REPLCONF capa eof capa psync2         -> +OK
    PSYNC <replid> <offset + 1>           -> +CONTINUE [<replid>] | +FULLRESYNC <replid> <offset>

A full sync reads the RDB (``$<length>``, or ``$EOF:<mark>`` … ``<mark>``
from a diskless primary) into a temporary file, loads it while clients get
``-LOADING`` (``replication.rdbload``), and makes it durable before anything
else: the old log and checkpoint are set aside, a checkpoint of the new data
is written at the primary's offset and a new log starts there
(``reset_persistence``), so the replica's offsets are its primary's.

The stream: commands are applied through the engine's handlers by a
client that stands for the primary (``is_master``: read-only does not refuse
it), whole transactions at once (a MULTI is held until its EXEC arrives), and
their bytes, exactly as received, are journaled into this server's log. The
replica answers ``REPLCONF GETACK`` and acknowledges its offset after each
batch it journaled (``REPLCONF ACK <applied> FACK <on disk>``; Redis's
replicas do it once a second, which Keel does too when idle) — synchronous
mode and WAIT need the acks promptly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from itertools import repeat

import hiredis

from engine.errors import CommandError
from engine.registry import TABLE, dispatch_subcommand

log = logging.getLogger("keel.replication")

_pack = hiredis.pack_command
_BYTES = repeat(bytes)



class SyncError(Exception):
    """The primary refused, or sent something this replica cannot take."""


def command_end(buf, pos: int) -> int:
    """Where the multibulk request starting at ``pos`` ends; -1 if incomplete."""
    n = len(buf)
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return -1
    if buf[pos] != 42:  # '*'
        raise SyncError(f"the stream holds something other than a request at byte {pos}")
    count = int(buf[pos + 1:nl])
    p = nl + 2
    for _ in range(count):
        nl = buf.find(b"\r\n", p)
        if nl < 0:
            return -1
        if buf[p] != 36:  # '$'
            raise SyncError(f"the stream holds a non-bulk argument at byte {p}")
        p = nl + 2 + int(buf[p + 1:nl]) + 2
        if p > n:
            return -1
    return p


class Link:
    def __init__(self, repl, host: str, port: int):
        self.repl = repl
        self.server = repl.server
        self.host = host
        self.port = port
        self.state = "connect"  # connect | connecting | sync | connected (ROLE's words)
        self.up = False
        self.syncing = False
        self.sync_total = -1
        self.sync_read = 0
        self.last_io = 0.0
        self.down_since = time.time()
        self.task = None
        self.writer = None
        self.stopped = False
        self.ack_scheduled = False
        self.client = None  # the client standing for the primary
        # name -> handler of every command without subcommands (SELECT, PING and
        # REPLCONF are the stream's own, handled apart).
        self.handlers = {name: cmd.handler for name, cmd in TABLE.items()
                         if not cmd.subcommands and name not in (b"select", b"ping", b"replconf")}
        self.failover = False

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        self.stopped = True
        self._down()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.task is not None:
            self.task.cancel()

    def _down(self) -> None:
        if self.up:
            self.down_since = time.time()
        self.up = False
        self.syncing = False
        self.state = "connect"

    async def run(self) -> None:
        while not self.stopped:
            try:
                await self.session()
            except asyncio.CancelledError:
                return
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError, SyncError,
                    ValueError, hiredis.ProtocolError, RuntimeError) as e:
                if not self.stopped:
                    log.warning("replication link to %s:%d: %s", self.host, self.port,
                                str(e) or type(e).__name__)
            except Exception:
                log.exception("replication link to %s:%d failed", self.host, self.port)
            finally:
                if self.writer is not None:
                    self.writer.close()
                    self.writer = None
                self._down()
                if self.server.loading and self.syncing:
                    self.server.loading = False
            if not self.stopped:
                await asyncio.sleep(1.0)

    # -- the handshake --------------------------------------------------------------
    async def _line(self, reader, timeout: float) -> bytes:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise EOFError("the primary closed the connection")
        self.last_io = time.time()
        return line.rstrip(b"\r\n")

    async def _call(self, reader, writer, *args) -> bytes:
        writer.write(hiredis.pack_command(args))
        return await self._line(reader, self.server.config["repl-timeout"])

    async def session(self) -> None:
        cfg = self.server.config
        timeout = cfg["repl-timeout"]
        self.state = "connecting"
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), timeout)
        self.writer = writer
        sock = writer.get_extra_info("socket")
        if sock is not None and not cfg["repl-disable-tcp-nodelay"]:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        r = await self._call(reader, writer, "PING")
        if not r.startswith(b"+") and not r.startswith((b"-NOAUTH", b"-NOPERM", b"-ERR operation not permitted")):
            raise SyncError(f"error reply to PING from the primary: {r[:128].decode(errors='replace')!r}")
        if cfg["masterauth"]:
            args = ["AUTH", cfg["masteruser"], cfg["masterauth"]] if cfg["masteruser"] else \
                ["AUTH", cfg["masterauth"]]
            r = await self._call(reader, writer, *args)
            if r != b"+OK":
                raise SyncError(f"AUTH refused by the primary: {r.decode(errors='replace')}")
        elif r.startswith(b"-NOAUTH"):
            raise SyncError("the primary needs a password: set masterauth")
        port = cfg["replica-announce-port"] or self.server.port
        r = await self._call(reader, writer, "REPLCONF", "listening-port", str(port))
        if r.startswith(b"-"):
            raise SyncError(f"REPLCONF listening-port: {r.decode(errors='replace')}")
        if cfg["replica-announce-ip"]:
            await self._call(reader, writer, "REPLCONF", "ip-address", cfg["replica-announce-ip"])
        # (keel-rollback: a Keel primary may answer +KEELROLLBACK; Redis ignores a capa it does not know.)
        await self._call(reader, writer, "REPLCONF", "capa", "eof", "capa", "psync2", "capa", "keel-rollback")
        repl = self.repl
        p = self.server.persistence
        if p.log is None:
            raise SyncError("appendonly is off: a Keel replica journals what it applies (set appendonly yes)")
        have_id = repl.replid
        offset = repl.offset
        if have_id and self.failover:
            self.failover = False  # asked once: a retry is an ordinary PSYNC
            r = await self._call(reader, writer, "PSYNC", have_id, str(offset + 1), "FAILOVER")
        elif have_id:
            r = await self._call(reader, writer, "PSYNC", have_id, str(offset + 1))
        else:
            r = await self._call(reader, writer, "PSYNC", "?", "-1")
        while r == b"":  # keepalive newlines while the primary prepares
            r = await self._line(reader, timeout)
        if r.startswith(b"+KEELROLLBACK"):
            at = int(r.split()[1])
            if self.rollback(at):
                offset = repl.offset
                r = await self._call(reader, writer, "PSYNC", repl.replid, str(offset + 1))
            else:
                r = await self._call(reader, writer, "PSYNC", "?", "-1")
            while r == b"":
                r = await self._line(reader, timeout)
        if r.startswith(b"+FULLRESYNC"):
            parts = r.split()
            if len(parts) < 3:
                raise SyncError(f"malformed reply to PSYNC: {r.decode(errors='replace')}")
            new_id, new_offset = parts[1].decode(), int(parts[2])
            leftover = await self._full_sync(reader, new_id, new_offset)
        elif r.startswith(b"+CONTINUE"):
            parts = r.split()
            if len(parts) > 1 and parts[1].decode() != repl.replid:
                # The primary's history goes on under a new id (it was promoted).
                repl.replid2 = repl.replid
                repl.second_offset = offset + 1
                repl.replid = parts[1].decode()
                repl.save_state()
            log.info("partial resynchronisation with %s:%d from offset %d", self.host, self.port, offset)
            leftover = b""
        else:
            raise SyncError(f"the primary refused PSYNC: {r.decode(errors='replace')}")
        self._master_client()
        self.up = True
        self.state = "connected"
        if repl.failover is not None and repl.failover_state == "failover-in-progress":
            repl.failover.end()  # FAILOVER's handover is done the moment the link is up
        self.last_io = time.time()
        self._ack()
        await self.stream(reader, leftover)

    def rollback(self, at: int) -> bool:
        """Cut this server's history back to offset ``at`` (a demoted primary's
        writes after its successor took over: never acknowledged under
        min-replicas-to-ack), reloading the dataset from the checkpoint and the
        log up to there. False when it cannot (a checkpoint after ``at``, the
        log no longer reaching back to it): then it syncs in full."""
        from wal.truncate import truncate

        server = self.server
        p = server.persistence
        lg = p.log
        if (lg is None or p.checkpointer is None or p.bgsave_task is not None
                or not (p.checkpoint_offset <= at <= lg.end_offset and lg.start_offset <= at)):
            log.info("cannot roll back to offset %d (checkpoint at %d, log %d..%d): full sync",
                     at, p.checkpoint_offset, lg.start_offset if lg else -1, lg.end_offset if lg else -1)
            return False
        p._append_batch()
        gone = lg.end_offset - at
        t0 = time.time()
        server.loading = True
        for c in list(server.clients.values()):
            c.regate()
        try:
            p.unfed.clear()
            p.log.close()
            p.log = None
            truncate(p.log_dir, at)
            p.checkpointer.close()
            p.checkpointer = None
            server.ks.flushall()
            server.ks.effects.clear()
            p.load()  # the checkpoint, then the log up to ``at``
            server.ks.expire_on_lookup = False  # (load leaves it as it found it: a replica's)
        finally:
            server.loading = False
            for c in list(server.clients.values()):
                c.regate()
        log.warning("rolled back %d bytes of history after offset %d (written after the promotion of %s:%d, "
                    "never part of its history) in %.2f s", gone, at, self.host, self.port, time.time() - t0)
        return True

    def _master_client(self) -> None:
        from server.client import Client  # (the client type is the server's; only built here)

        server = self.server
        c = Client(server, None, 0, f"{self.host}:{self.port}", "", -1)
        c.is_master = True
        c.flags = "M"
        c.select(max(self.repl.stream_db, 0))
        self.client = c

    # -- full sync ---------------------------------------------------------------------
    async def _full_sync(self, reader, replid: str, offset: int) -> bytes:
        from replication import new_replid, rdbload

        server = self.server
        cfg = server.config
        timeout = cfg["repl-timeout"]
        self.state = "sync"
        self.syncing = True
        self.sync_read = 0
        self.sync_total = -1
        line = b""
        while not line:
            line = await self._line(reader, timeout)
        if not line.startswith(b"$"):
            raise SyncError(f"expected the RDB's length, got {line[:64].decode(errors='replace')}")
        path = os.path.join(cfg["dir"], "temp-%d.rdb" % os.getpid())
        leftover = b""
        in_memory = cfg["repl-diskless-load"] != "disabled"  # (swapdb, on-empty-db: load from memory)
        with (_Memory() if in_memory else open(path, "wb")) as f:
            if line.startswith(b"$EOF:"):
                mark = line[5:]
                if len(mark) != 40:
                    raise SyncError("malformed EOF mark from the primary")
                tail = b""
                while True:
                    chunk = await asyncio.wait_for(reader.read(1 << 20), timeout)
                    if not chunk:
                        raise EOFError("the primary closed the connection during the RDB")
                    self.last_io = time.time()
                    window = tail + chunk
                    at = window.find(mark)
                    if at >= 0:
                        f.write(window[:at])
                        leftover = window[at + 40:]
                        self.sync_read += at
                        break
                    keep = len(window) - 40 if len(window) > 40 else 0
                    f.write(window[:keep])
                    self.sync_read += keep
                    tail = window[keep:]
            else:
                total = int(line[1:])
                self.sync_total = total
                left = total
                while left:
                    chunk = await asyncio.wait_for(reader.read(min(left, 1 << 20)), timeout)
                    if not chunk:
                        raise EOFError("the primary closed the connection during the RDB")
                    self.last_io = time.time()
                    f.write(chunk)
                    left -= len(chunk)
                    self.sync_read += len(chunk)
        log.info("full sync from %s:%d: %d bytes of RDB at offset %d, loading", self.host, self.port,
                 self.sync_read, offset)
        t0 = time.time()
        server.loading = True
        for c in list(server.clients.values()):
            c.regate()
        try:
            repl = self.repl
            repl.replid = new_replid()  # nobody's history until the sync is done
            repl.syncing = True
            repl.save_state()  # a crash from here on: restart empty, sync in full again
            server.ks.flushall()
            try:
                if in_memory:
                    aux = rdbload.load_rdb_bytes(bytes(f.buf), server.ks, drop_expired=False)
                    f.buf = None
                else:
                    aux = rdbload.load_rdb_file(path, server.ks, drop_expired=False)
            except Exception as e:
                server.ks.flushall()
                raise SyncError(f"the RDB from the primary does not load: {e}") from None
            fields = (aux or {}).get("aux") or {}
            db = int(fields.get(b"repl-stream-db", 0) or 0)  # where the stream after the RDB starts
            repl.replid = replid
            repl.replid2 = "0" * 40
            repl.second_offset = -1
            repl.stream_db = db
            repl.ckpt_db = db

            def durable() -> None:  # the new data's checkpoint is written
                repl.syncing = False
                repl.save_state()
                log.info("full sync from %s:%d is durable (checkpoint at offset %d)", self.host, self.port, offset)

            reset_persistence(server.persistence, offset, db, durable)
        finally:
            server.loading = False
            self.syncing = False
            for c in list(server.clients.values()):
                c.regate()
            try:
                os.unlink(path)
            except OSError:
                pass
        log.info("full sync from %s:%d loaded in %.2f s", self.host, self.port, time.time() - t0)
        return leftover

    # -- the stream -----------------------------------------------------------------------
    async def stream(self, reader, leftover: bytes) -> None:
        cfg = self.server.config
        self.buf = bytearray()
        self.parsed = 0  # bytes of buf hiredis has returned as whole commands
        self.tx = None  # the commands of a MULTI whose EXEC has not arrived
        self.reader = hiredis.Reader()
        chunk = leftover
        while not self.stopped:
            if chunk:
                self.apply(chunk)
            # (repl-timeout read each time: CONFIG SET reaches a running link.)
            chunk = await asyncio.wait_for(reader.read(1 << 18), cfg["repl-timeout"])
            if not chunk:
                raise EOFError("the primary closed the connection")
            self.last_io = time.time()

    def apply(self, chunk: bytes) -> None:
        """Apply every whole command (and whole transaction) received; journal their bytes."""
        server = self.server
        c = self.client
        buf = self.buf
        buf += chunk
        reader = self.reader
        reader.feed(chunk)
        cmds = []
        while True:
            args = reader.gets()
            if args is False:
                break
            if type(args) is not list or not args or not all(map(isinstance, args, _BYTES)):
                raise SyncError(f"the primary's stream holds something other than a command: {args!r:.64}")
            cmds.append(args)
        if not cmds:
            return
        pos = self.parsed
        # Where each command ends: the stream is in the canonical encoding
        # (Redis's, and hiredis.pack_command's) almost always, which is
        # checked in C by rebuilding it and comparing; else it is walked.
        packed = [_pack(tuple(a)) for a in cmds]
        whole = b"".join(packed)
        ends = []
        if buf[pos:pos + len(whole)] == whole:
            for p in packed:
                pos += len(p)
                ends.append(pos)
        else:
            for _ in cmds:
                pos = command_end(buf, pos)
                if pos < 0:
                    raise SyncError("the stream and its parse disagree")
                ends.append(pos)
        applied = 0 if self.tx is not None else self.parsed
        run = self._run
        handlers = self.handlers
        for args, pos in zip(cmds, ends):
            name = args[0].lower()
            tx = self.tx
            if tx is not None:
                if name == b"exec":
                    self.tx = None
                    for a in tx:
                        run(c, a)
                    applied = pos
                else:
                    tx.append(args)
                continue
            if name == b"multi":
                self.tx = []
                continue
            handler = handlers.get(name)
            if handler is not None:  # the common case, inline: no subcommands
                try:
                    handler(c, args)
                except CommandError as e:
                    log.warning("command from the primary failed: %s: %s", args[0][:64], e)
                except Exception:
                    log.exception("command from the primary crashed: %r", args[:2])
            elif name == b"select":
                c.select(int(args[1]))
            elif name == b"replconf" or name == b"ping":
                pass  # (GETACK: every batch is acknowledged anyway)
            else:
                run(c, args)
            applied = pos
        if applied:
            server.ks.effects.clear()
            self.repl.stream_db = c.db.index
            server.persistence.journal_raw(bytes(buf[:applied]), c.db.index)
            del buf[:applied]
            pos -= applied
            if server.blocking.ready:
                server.blocking.serve()
            # Acknowledged at once, not after this server's own fsync: the
            # bytes are applied and in the log's buffer, which is what a
            # synchronous primary needs (its own failure loses nothing then).
            self._ack()
        self.parsed = pos

    def _run(self, c, argv: list) -> None:
        cmd = TABLE.get(argv[0]) or TABLE.get(argv[0].lower())
        if cmd is None:
            log.error("the primary's stream holds an unknown command %r: skipped", argv[0][:64])
            return
        try:
            if cmd.subcommands:
                dispatch_subcommand(cmd, c, argv)
            else:
                cmd.handler(c, argv)
        except CommandError as e:
            log.warning("command from the primary failed: %s: %s", argv[0][:64], e)
        except Exception:
            log.exception("command from the primary crashed: %r", argv[:2])

    def _ack(self, again: bool = True) -> None:
        w = self.writer
        if w is None or not self.up:
            return
        p = self.server.persistence
        lg = p.log
        fack = lg.durable_offset if lg is not None else 0
        off = self.repl.offset
        w.write(_pack(("REPLCONF", "ACK", str(off), "FACK", str(fack))))
        if again and fack < off and not self.ack_scheduled:
            # Once more after this turn's commit (scheduled before this), for
            # the fsynced offset WAITAOF waits on.
            self.ack_scheduled = True
            self.server.loop.call_soon(self._ack_again)

    def _ack_again(self) -> None:
        self.ack_scheduled = False
        self._ack(again=False)

    def cron(self) -> None:
        self._ack()


class _Memory:
    """A file-like buffer for repl-diskless-load: the RDB is kept in memory."""

    def __init__(self):
        self.buf = bytearray()

    def write(self, data) -> None:
        self.buf += data

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def reset_persistence(p, offset: int, stream_db: int, done) -> None:
    """The dataset was replaced wholesale (a full sync at ``offset``): start
    a new log at that offset and a new checkpoint, written in the background
    (a full one, as BGSAVE writes it), so the replica serves at once.

    Until that checkpoint is written the state file says ``syncing`` (set by
    the caller before the load): a crash meanwhile restarts empty (the
    half-made files are discarded, ``discard_unfinished``) and syncs in full
    again. ``done()`` runs when the checkpoint is written; the caller then
    records the new replication id."""
    from wal.checkpoint import Checkpointer
    from wal.log import Log

    cfg = p.server.config
    if p.bgsave_task is not None:
        p.bgsave_task.cancel()
        p.bgsave_task = None
    if p.log is not None:
        p.batch.clear()
        p.log.close()
        p.log = None
    if p.checkpointer is not None:
        p.checkpointer.close()
        p.checkpointer = None
    discard(p.log_dir, p.checkpoint_path)
    cp = Checkpointer(p.checkpoint_path)
    cp.start_tracking(p.ks)
    cp._need_full = True  # the next capture takes every key
    p.checkpointer = cp
    p.checkpoint_offset = offset
    p.log = Log.open(p.log_dir, segment_size=cfg["wal-segment-size"], fsync=cfg["appendfsync"],
                     start_offset=offset)
    p.log.defer_rotation = True
    p.stream_db = p.prepared_db = stream_db
    p.dirty_at_last_save = p.ks.dirty

    def written(at: int) -> None:
        if at >= offset:
            p.checkpoint_listeners.remove(written)
            done()

    p.checkpoint_listeners.append(written)
    p.bgsave()


def discard(*paths) -> None:
    """Remove a log directory and a checkpoint (moved aside first: a rename is atomic)."""
    stamp = "%d" % time.time_ns()
    asides = []
    for path in paths:
        if os.path.exists(path):
            aside = f"{path}.old-{stamp}"
            os.rename(path, aside)
            asides.append(aside)
    for aside in asides:
        shutil.rmtree(aside, ignore_errors=True)
