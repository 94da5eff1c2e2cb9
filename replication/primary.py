"""The primary side: this server's replicas.

A connection becomes a replica when it sends ``PSYNC`` (or the old
``SYNC``). From then on the server writes to it only the stream, never a
reply, and reads from it only ``REPLCONF ACK``:

* ``+CONTINUE`` when the history it names is this server's (``replid``, or
  ``replid2`` up to ``second_repl_offset``) and the log still holds the byte
  it asks for: the log is the backlog, so the bytes come from the segments on
  disk (read in a worker thread) until the replica has caught up, then live;
* ``+FULLRESYNC replid offset`` otherwise: a checkpoint is taken (no fork; it
  captures keys between commands as BGSAVE does), its LMDB snapshot is turned
  into an RDB in a worker thread (``replication.snapshot``) that Redis 7.0
  reads, the RDB goes out as ``$<length>`` and its bytes, and the stream
  follows from the checkpoint's offset, first from the log, then live.

The live feed: everything the log appends (``Persistence._append_batch``)
is handed to ``feed`` in order, once the commit wrote it (before the fsync
under ``always``, which runs while the replicas receive it), and written to
each caught-up replica as is: a replica never holds bytes a crash of its
primary's process could take back, so a restarted primary keeps its
replication id and its replicas continue (a power loss before the fsync
could: the replicas may then be ahead, and sync in full).
A replica whose unsent output passes ``client-output-buffer-limit replica``
(hard, or soft for its seconds) is disconnected; it comes back and resumes
from the log.

Offsets here are Keel's (``wal``): the number of stream bytes before a
position; Redis's PSYNC asks for the next byte, one more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

log = logging.getLogger("keel.replication")

# Bytes read from the log per catch-up step, and the unsent output a sender
# lets pile up before it waits for the socket.
CATCHUP_CHUNK = 4 << 20
SEND_HIGH = 8 << 20


class Peer:
    """One replica of this server."""

    def __init__(self, primary, client):
        self.primary = primary
        self.client = client
        self.conn = client.conn
        peer = client.addr.rsplit(":", 1)
        self.ip = client.conn_ip or peer[0]
        self.port = client.repl_port or 0
        self.capa = client.repl_capa
        self.state = "wait_bgsave"
        self.sent = 0  # Keel offset of the next byte to send
        self.ack = 0  # Redis offset the replica acknowledged (applied)
        self.fack = 0  # … and has on disk (Redis 7.2's FACK)
        self.ack_time = time.time()
        self.live = False
        self.task = None
        self.soft_since = 0.0
        self.closed = False
        self.first_ack = asyncio.Event()  # set by its first REPLCONF ACK

    def write(self, data) -> None:
        if not self.closed and not self.conn.closed:
            self.conn.transport.write(data)

    def backlog(self) -> int:
        return self.conn.output_len() if not self.conn.closed else 0

    def close(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        if why:
            log.warning("dropping replica %s:%s: %s", self.ip, self.port, why)
        self.conn.close()

    async def drain(self) -> None:
        while not self.closed and not self.conn.closed and self.backlog() > SEND_HIGH:
            await asyncio.sleep(0.002)
        if self.closed or self.conn.closed:
            raise ConnectionError("replica went away")


class Primary:
    def __init__(self, repl):
        self.repl = repl
        self.server = repl.server
        self.peers: list[Peer] = []
        self.live: list[Peer] = []  # caught up: fed by ``feed``
        self.last_ping = time.time()
        self.ever = False  # a replica connected since the start: keep repl-backlog-size of log
        self.sync_full = 0  # INFO stats
        self.sync_partial_ok = 0
        self.sync_partial_err = 0

    # -- PSYNC ---------------------------------------------------------------------
    def psync(self, client, replid: str, want: int):
        """PSYNC replid offset (Redis's: the next byte wanted), or SYNC (replid None)."""
        server = self.server
        p = server.persistence
        conn = client.conn
        if p.log is None:
            return b"-NOMASTERLINK Can't SYNC: this primary has appendonly no (Keel replicates its log)\r\n"
        if self.repl.role == "slave" and (self.repl.link is None or not self.repl.link.up):
            return b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n"
        p._append_batch()  # the log's end is the stream's
        lg = p.log
        repl = self.repl
        if (replid is not None and replid == repl.replid2 and want > repl.second_offset > 0
                and "keel-rollback" in client.repl_capa and lg.start_offset <= repl.second_offset - 1):
            # A demoted primary that went on after this server took over: its
            # tail after the switch is nobody's history. A Keel replica cuts
            # it off and asks again from there (+CONTINUE) instead of a full sync.
            log.info("replica %s asks for %s offset %d, past the switch at %d: told to roll back",
                     client.addr, replid, want, repl.second_offset - 1)
            return b"+KEELROLLBACK %d\r\n" % (repl.second_offset - 1)
        if conn.holding:  # replies before PSYNC go first (REPLCONF's +OK)
            data = b"".join(conn.held)
            conn.held.clear()
            conn.holding = False
            if conn in p.waiting:
                p.waiting.remove(conn)
            conn.transport.write(data)
        peer = Peer(self, client)
        self.ever = True
        client.flags = "S"
        client.is_replica = True
        self.peers.append(peer)
        end = lg.end_offset
        start = want - 1  # Keel offset of the first byte wanted
        ok = replid is not None and lg.start_offset <= start <= end and (
            replid == repl.replid or (replid == repl.replid2 and want <= repl.second_offset))
        if ok:
            self.sync_partial_ok += 1
            if "psync2" in peer.capa:
                conn.transport.write(b"+CONTINUE %s\r\n" % repl.replid.encode())
            else:
                conn.transport.write(b"+CONTINUE\r\n")
            peer.sent = start
            peer.ack = start  # where it is: the log is kept from here (retain_from)
            peer.state = "online"
            self.repl.waits.acked()  # one more good replica: a refusal may end now, not at the next tick
            log.info("replica %s:%s continues from offset %d (%d bytes behind)",
                     peer.ip, peer.port, start, end - start)
            peer.task = asyncio.ensure_future(self._catch_up_task(peer))
        else:
            self.sync_full += 1
            if replid is not None and replid != "?":
                self.sync_partial_err += 1
                log.info("replica %s:%s asks for %s offset %d: full sync (%s)", peer.ip, peer.port,
                         replid, want, "unknown history" if replid not in (repl.replid, repl.replid2)
                         else "offset not in the log")
            peer.task = asyncio.ensure_future(self._full_sync(peer, replid is None))
        return None

    async def _catch_up_task(self, peer: Peer) -> None:
        try:
            await self._catch_up(peer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as e:
            log.exception("replica %s:%s: catching up failed", peer.ip, peer.port)
            peer.close(str(e))

    async def _catch_up(self, peer: Peer) -> None:
        """Send the log from ``peer.sent`` until it is caught up, then feed it live."""
        p = self.server.persistence
        loop = self.server.loop
        records = None
        while True:
            lg = p.log
            if lg is None or peer.closed:
                raise ConnectionError("gone")
            # (Nothing waiting to be fed: the feed starts at the log's end,
            # whatever fed_offset says, e.g. right after a restart.)
            if peer.sent >= (p.fed_offset if p.unfed else lg.end_offset):
                # Caught up with what the replicas were fed: from now on the
                # commits feed it (``feed`` skips what it already has).
                peer.live = True
                self.live.append(peer)
                return
            if peer.sent < lg.start_offset:
                raise ConnectionError("the log no longer holds its offset")
            if records is None:
                p._append_batch()
                records = lg.read_from(peer.sent)  # flushes on the loop; the reading is in the thread
            data = await loop.run_in_executor(None, _take, records, CATCHUP_CHUNK)
            if data:
                peer.write(data)
                peer.sent += len(data)
                await peer.drain()
            else:
                records = None  # read to where the log had been written: look again

    async def _full_sync(self, peer: Peer, old_sync: bool) -> None:
        """A checkpoint, its snapshot as an RDB file (worker thread), then
        ``+FULLRESYNC``, the file, and the stream from the checkpoint's offset.
        While the RDB is made the replica gets a newline a second (Redis's
        keepalive before the reply to PSYNC)."""
        from replication import snapshot

        server = self.server
        loop = server.loop
        path = os.path.join(server.config["dir"], "temp-sync-%d-%d.rdb" % (os.getpid(), peer.client.id))
        keepalive = None
        try:
            def ping():
                nonlocal keepalive
                if not peer.closed and peer.state == "wait_bgsave":
                    peer.write(b"\n")
                    keepalive = loop.call_later(1.0, ping)

            keepalive = loop.call_later(1.0, ping)
            repl = self.repl
            p = server.persistence

            def aux_for(offset: int, db: int | None = None) -> dict:
                """The RDB's AUX fields for a snapshot at ``offset``. ``db``: the
                stream's database there (a capture's; a replica's stream names
                its database only when it changes), else the last checkpoint's."""
                aux = snapshot.base_aux(server.ks.mem_used)
                if db is None:
                    db = repl.ckpt_db
                aux.update({"repl-stream-db": db if db >= 0 else 0, "repl-id": repl.replid,
                            "repl-offset": offset})
                return aux

            t0 = time.time()
            cfg = server.config
            if cfg["repl-diskless-sync"] and "eof" in peer.capa:
                await self._diskless(peer, aux_for, old_sync)
                return
            with open(path, "wb") as f:
                if self.reusable():
                    offset = await snapshot.snapshot_for_sync(server, f.write, aux_for, reuse_within=self.reuse())
                else:
                    offset = await snapshot.capture_for_sync(server, f.write, aux_for)
                size = f.tell()
            peer.sent = offset  # (keeps the log from here: retain_from)
            keepalive.cancel()
            if peer.closed:
                return
            log.info("full sync for replica %s:%s: %d bytes of RDB at offset %d in %.2f s",
                     peer.ip, peer.port, size, offset, time.time() - t0)
            if not old_sync:
                peer.write(b"+FULLRESYNC %s %d\r\n" % (repl.replid.encode(), offset))
            peer.state = "send_bulk"
            peer.write(b"$%d\r\n" % size)
            with open(path, "rb") as f:
                while True:
                    chunk = await loop.run_in_executor(None, f.read, 1 << 20)
                    if not chunk:
                        break
                    peer.write(chunk)
                    await peer.drain()
            peer.state = "online"
            peer.sent = offset
            peer.ack_time = time.time()
            self.repl.waits.acked()
            await self._catch_up(peer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as e:
            log.exception("full sync for replica %s:%s failed", peer.ip, peer.port)
            peer.close(f"full sync failed: {e}")
        finally:
            if keepalive is not None:
                keepalive.cancel()
            try:
                os.unlink(path)
            except OSError:
                pass

    async def _diskless(self, peer: Peer, aux_for, old_sync: bool) -> None:
        """repl-diskless-sync: the RDB goes to the socket as the worker thread
        makes it (``$EOF:<mark>`` … ``<mark>``), after repl-diskless-sync-delay
        seconds (Redis waits that long for more replicas to arrive), or as soon
        as repl-diskless-sync-max-replicas replicas wait (0: no such limit).
        (Each sync here makes its own snapshot: the wait shares nothing, it
        keeps Redis's timing.)"""
        from replication import snapshot

        server = self.server
        loop = server.loop
        cfg = server.config
        end = time.monotonic() + cfg["repl-diskless-sync-delay"]
        while time.monotonic() < end and not peer.closed:
            enough = cfg["repl-diskless-sync-max-replicas"]
            if enough and sum(1 for x in self.peers if x.state == "wait_bgsave" and not x.closed) >= enough:
                break
            await asyncio.sleep(min(0.1, max(0.0, end - time.monotonic())))
        if peer.closed:
            return
        repl = self.repl
        mark = os.urandom(20).hex().encode()
        at = []  # the offset, once known (the capture's hook learns it in the writer thread)

        def header(offset: int) -> None:
            peer.sent = offset  # (keeps the log from here: retain_from)
            if not old_sync:
                peer.write(b"+FULLRESYNC %s %d\r\n" % (repl.replid.encode(), offset))
            peer.state = "send_bulk"
            peer.write(b"$EOF:" + mark + b"\r\n")

        async def send(chunk):
            if peer.state == "wait_bgsave":
                header(at[0])
            peer.write(chunk)
            await peer.drain()

        def write(chunk):  # in a worker thread: one chunk at a time, as the socket takes them
            asyncio.run_coroutine_threadsafe(send(bytes(chunk)), loop).result()

        def aux_at(offset: int, db: int | None = None) -> dict:
            at.append(offset)
            return aux_for(offset, db)

        t0 = time.time()
        if self.reusable():
            offset = await snapshot.checkpoint_for_sync(server, reuse_within=self.reuse())
            await loop.run_in_executor(None, snapshot.rdb_from_checkpoint, server.persistence.checkpointer,
                                       write, aux_at(offset), offset)
        else:
            # Straight from a full capture, in the checkpoint writer's thread
            # before it writes LMDB: no wait for the checkpoint itself.
            offset = await snapshot.capture_for_sync(server, write, aux_at)
        if peer.state == "wait_bgsave":  # (an empty RDB is one chunk, already sent)
            header(offset)
        peer.write(mark)
        # A Redis replica finds the mark only at the end of a read: stream bytes
        # in the same read would be taken for RDB. So, as Redis's primary does,
        # the stream waits for the replica's first REPLCONF ACK (sent once loaded).
        try:
            await asyncio.wait_for(peer.first_ack.wait(), server.config["repl-timeout"])
        except asyncio.TimeoutError:
            peer.close("no REPLCONF ACK after the RDB within repl-timeout")
            return
        log.info("diskless full sync for replica %s:%s at offset %d in %.2f s",
                 peer.ip, peer.port, offset, time.time() - t0)
        peer.state = "online"
        peer.sent = offset
        peer.ack_time = time.time()
        # (Synchronous mode's refusal ended at that first ACK: good_replicas
        # counts a replica whose first ACK is in.)
        await self._catch_up(peer)

    def reusable(self) -> bool:
        """Whether the last checkpoint may serve a full sync as it is (see ``reuse``)."""
        p = self.server.persistence
        return (p.log is not None and p.checkpointer is not None and p.bgsave_task is None
                and p.log.end_offset - p.checkpoint_offset <= self.reuse() and p.checkpointer.info() is not None)

    def reuse(self) -> int:
        """How much log after the last checkpoint a full sync may send instead
        of taking a new checkpoint: at most 4 MB. A replica applies a stream
        of SETs at about 12 MB/s (300k commands/s) and loads an RDB several
        times faster: 1M keys' worth of log (45 MB) took 4 s to apply where a
        new checkpoint, its snapshot and the load took 2.8 s."""
        return min(self.server.config["checkpoint-log-size"] // 64, 4 << 20)

    # -- the live stream ---------------------------------------------------------------
    def feed(self, data: bytes, start: int) -> None:
        """The log's bytes from offset ``start``, just made safe: to every caught-up replica
        (from where it is: one that caught up from the disk may have some already)."""
        hard, soft, secs = self.server.config["client-output-buffer-limit"]["slave"]
        now = 0.0
        end = start + len(data)
        for peer in self.live:
            if peer.closed or peer.conn.closed or peer.sent >= end:
                continue
            if peer.sent > start:
                peer.conn.transport.write(data[peer.sent - start:])
            elif peer.sent == start:
                peer.conn.transport.write(data)
            else:  # cannot happen: a gap would corrupt its stream
                peer.close(f"stream gap at offset {peer.sent} (fed from {start})")
                continue
            peer.sent = end
            if hard or soft:
                n = peer.conn.output_len()
                if hard and n > hard:
                    peer.close(f"output buffer {n} bytes over the hard limit {hard}")
                elif soft and n > soft:
                    now = now or time.time()
                    if not peer.soft_since:
                        peer.soft_since = now
                    elif now - peer.soft_since > secs:
                        peer.close(f"output buffer over the soft limit {soft} for {secs} s")
                else:
                    peer.soft_since = 0.0

    def gone(self, client) -> None:
        """The replica's connection closed."""
        for peer in self.peers:
            if peer.client is client:
                peer.closed = True
                self.peers.remove(peer)
                if peer in self.live:
                    self.live.remove(peer)
                if peer.task is not None and not peer.task.done():
                    peer.task.cancel()
                log.info("replica %s:%s disconnected", peer.ip, peer.port)
                self.repl.waits.acked()
                return

    def drop_all(self) -> None:
        for peer in list(self.peers):
            peer.close("")
        self.peers.clear()
        self.live.clear()

    # -- acks -------------------------------------------------------------------------
    def ack(self, client, offset: int, fack: int | None) -> None:
        for peer in self.peers:
            if peer.client is client:
                if offset > peer.ack:
                    peer.ack = offset
                if fack is not None and fack > peer.fack:
                    peer.fack = fack
                peer.ack_time = time.time()
                peer.first_ack.set()
                self.repl.waits.acked()
                return

    def good_replicas(self) -> int:
        """Replicas online whose last ack is at most min-replicas-max-lag old,
        counted as Redis counts it: in whole seconds of the clock (so a lag of
        1 tolerates the once-a-second ack of an idle replica, up to just under
        2 s of silence)."""
        lag = self.server.config["min-replicas-max-lag"]
        now = int(time.time())
        # (A replica whose first ACK is in has loaded the RDB: good, though its
        # sync task marks it online only on its next turn.)
        return sum(1 for p in self.peers if (p.state == "online" or p.first_ack.is_set())
                   and not p.closed and now - int(p.ack_time) <= lag)

    def retain_from(self, offset: int) -> int:
        """Where segment deletion after a checkpoint at ``offset`` must stop:
        before what a connected replica still needs, and ``repl-backlog-size``
        bytes of history (bounded by ``repl-log-retain-max`` behind the end)."""
        p = self.server.persistence
        lg = p.log
        if lg is None or not self.ever:  # (as Redis keeps no backlog before its first replica)
            return offset
        end = lg.end_offset
        keep = min(offset, end - self.server.config["repl-backlog-size"])
        floor = end - self.server.config["repl-log-retain-max"]
        for peer in self.peers:
            if not peer.closed and (peer.state != "wait_bgsave" or peer.sent):
                # What it acknowledged: bytes sent but not yet acknowledged may
                # be lost with its link, and it then asks for them again.
                keep = min(keep, peer.ack if peer.ack else peer.sent)
        return max(keep, floor, 0)

    # -- the cron ------------------------------------------------------------------
    def cron(self) -> None:
        now = time.time()
        cfg = self.server.config
        timeout = cfg["repl-timeout"]
        for peer in list(self.peers):
            if peer.state == "online" and now - peer.ack_time > timeout:
                peer.close(f"no REPLCONF ACK for {timeout} s")
        if self.live and self.repl.role == "master" and now - self.last_ping >= cfg["repl-ping-replica-period"]:
            self.last_ping = now
            self.server.persistence.journal_raw(b"*1\r\n$4\r\nPING\r\n")

    # -- INFO, ROLE ---------------------------------------------------------------------
    def info_lines(self) -> list:
        now = time.time()
        out = []
        for i, peer in enumerate(p for p in self.peers if not p.closed):
            out.append((f"slave{i}", f"ip={peer.ip},port={peer.port},state={peer.state},"
                                      f"offset={peer.ack},lag={int(now) - int(peer.ack_time)}"))
        return out

    def role_entries(self) -> list:
        return [[peer.ip.encode(), b"%d" % peer.port, b"%d" % peer.ack]
                for peer in self.peers if not peer.closed and peer.state == "online"]


def _take(records, limit: int) -> bytes:
    """In a worker thread: payload bytes from the log reader, up to about ``limit``."""
    parts = []
    n = 0
    for _off, _ts, payload in records:
        parts.append(payload)
        n += len(payload)
        if n >= limit:
            break
    return b"".join(parts)
