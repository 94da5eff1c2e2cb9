"""Waiting for replicas: WAIT, WAITAOF, and synchronous mode.

WAIT numreplicas timeout
    Blocks the client until ``numreplicas`` replicas acknowledged the
    primary's offset at the time of the call (or the timeout, in ms, passes;
    0 waits for ever) and answers how many did. Keel's replicas acknowledge
    after every batch they journal; for Redis's, which do it once a second,
    the primary also puts one ``REPLCONF GETACK *`` in the stream.
WAITAOF numlocal numreplicas timeout
    The same for durability: ``[1 if the local log is fsynced to that
    offset, replicas whose FACK reached it]``.
min-replicas-to-ack N (Keel's own; 0 off)
    Every reply that depends on the log (reads included, as ``appendfsync
    always`` holds them) leaves only once N replicas acknowledged the
    offset the log had when it was produced: ``Persistence.commit`` hands
    the replies it would release to ``hold`` with that offset, and
    ``acked`` releases them in order. While fewer than N replicas acked in
    the last ``min-replicas-max-lag`` seconds, data commands are refused
    with ``-NOREPLICAS`` (``refusing``): a primary cut off from its replicas
    stops answering before Sentinel promotes one of them, so the promoted
    replica holds every acknowledged write. ``min-replicas-to-write`` (Redis's)
    refuses only writes, under the same count.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from engine.commands.blocking import WouldBlock

log = logging.getLogger("keel.replication")

_GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"

NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
NOREPLICAS_ACK = ("NOREPLICAS Not enough good replicas to acknowledge: this primary answers "
                  "nothing until min-replicas-to-ack replicas are back")


class Waits:
    def __init__(self, repl):
        self.repl = repl
        self.server = repl.server
        self.waiters: list = []  # [client, target offset, n, kind ("wait"|"aof"), numlocal, deadline s]
        self.pending: deque = deque()  # (target offset, conn, data): replies waiting for acks
        self.refusing = None  # None, "write" (min-replicas-to-write) or "all" (min-replicas-to-ack)
        self.getack_due = False

    @property
    def sync_n(self) -> int:
        return self.server.config["min-replicas-to-ack"] if self.repl.role == "master" else 0

    # -- WAIT / WAITAOF --------------------------------------------------------------
    def acked_count(self, target: int, fsynced: bool = False) -> int:
        return sum(1 for p in self.repl.primary.peers
                   if not p.closed and p.state == "online" and (p.fack if fsynced else p.ack) >= target)

    def wait(self, client, n: int, timeout_ms: int, in_multi: bool):
        target = self.repl.offset
        count = self.acked_count(target)
        if count >= n or in_multi:
            return count
        self._getack()
        deadline = time.time() + timeout_ms / 1000.0 if timeout_ms else 0.0
        self.waiters.append([client, target, n, "wait", 0, deadline])
        if deadline:
            self.server.loop.call_later(timeout_ms / 1000.0 + 0.001, self.check)
        return WouldBlock([], "wait", 0, None, count)

    def waitaof(self, client, numlocal: int, n: int, timeout_ms: int, in_multi: bool):
        target = self.repl.offset
        local, count = self._aof_state(target)
        if (local >= numlocal and count >= n) or in_multi:
            return [local, count]
        self._getack()
        deadline = time.time() + timeout_ms / 1000.0 if timeout_ms else 0.0
        self.waiters.append([client, target, n, "aof", numlocal, deadline])
        if deadline:
            self.server.loop.call_later(timeout_ms / 1000.0 + 0.001, self.check)
        return WouldBlock([], "wait", 0, None, [local, count])

    def _aof_state(self, target: int) -> tuple[int, int]:
        lg = self.server.persistence.log
        local = int(lg is not None and lg.durable_offset >= target)
        return local, self.acked_count(target, fsynced=True)

    def _getack(self) -> None:
        if not self.getack_due and self.repl.primary.peers:
            self.getack_due = True
            self.server.loop.call_soon(self._send_getack)

    def _send_getack(self) -> None:
        self.getack_due = False
        if self.repl.role == "master" and self.repl.primary.peers:
            self.server.persistence.journal_raw(_GETACK)

    def check(self) -> None:
        """Answer the waiters whose replicas caught up or whose time is up."""
        if not self.waiters:
            return
        now = time.time()
        keep = []
        blocking = self.server.blocking
        for w in self.waiters:
            client, target, n, kind, numlocal, deadline = w
            waiter = client.blocked
            if waiter is None or waiter.block.kind != "wait" or client.conn is None or client.conn.closed:
                continue  # gone, or unblocked
            if kind == "wait":
                count = self.acked_count(target)
                done = count >= n
                reply = count
            else:
                local, count = self._aof_state(target)
                done = local >= numlocal and count >= n
                reply = [local, count]
            if done or (deadline and now >= deadline):
                blocking._release(waiter)
                waiter.cmd.calls += 1
                blocking._reply(waiter, reply)
            else:
                keep.append(w)
        self.waiters = keep

    # -- synchronous mode -----------------------------------------------------------------
    def hold(self, conns: list, target: int) -> None:
        """``Persistence.commit``: these replies leave once ``sync_n`` replicas have ``target``."""
        pending = self.pending
        for conn in conns:
            held = conn.held
            if not held:
                conn.holding = False
                continue
            data = b"".join(held) if len(held) > 1 else held[0]
            held.clear()
            conn.holding = False
            conn.acks_pending += 1
            pending.append((target, conn, data))
        # Every reply produced from now on waits behind these (in order on
        # their connections; reads must not see what no replica has yet).
        self.server.persistence._update_must_hold()
        self.release()

    def quorum_offset(self) -> int:
        n = self.sync_n
        acks = sorted((p.ack for p in self.repl.primary.peers if not p.closed and p.state == "online"),
                      reverse=True)
        return acks[n - 1] if n and len(acks) >= n else -1

    def release(self) -> None:
        pending = self.pending
        if not pending:
            return
        upto = self.quorum_offset() if self.sync_n else 1 << 62
        while pending and pending[0][0] <= upto:
            _, conn, data = pending.popleft()
            conn.acks_pending -= 1
            if conn.closed:
                continue
            if conn.pushed is not None:
                data = conn._take_pushed() + data
            conn.transport.write(data)
            if conn.client is not None and conn.client.close_after_reply:
                conn.close()
        if not pending:
            self.server.persistence._update_must_hold()

    def acked(self) -> None:
        """A replica acknowledged (or went away)."""
        if self.refusing is not None:
            self.update_refusal()  # a replica is back: serve at once, not at the next tick
        if self.pending:
            self.release()
        if self.waiters:
            self.check()

    # -- refusing when the replicas are gone ------------------------------------------------
    def cron(self) -> None:
        self.update_refusal()
        if self.pending and not self.sync_n:
            self.release()  # synchronous mode switched off: nothing waits any more
        self.check()

    def update_refusal(self) -> None:
        cfg = self.server.config
        want = None
        if self.repl.role == "master":
            good = None
            if self.sync_n:
                good = self.repl.primary.good_replicas()
                if good < self.sync_n:
                    want = "all"
            if want is None and cfg["min-replicas-to-write"] and cfg["min-replicas-max-lag"]:
                good = self.repl.primary.good_replicas() if good is None else good
                if good < cfg["min-replicas-to-write"]:
                    want = "write"
        if want != self.refusing:
            self.refusing = want
            self.server.full_dispatch("noreplicas", want is not None)
            if want == "all" and self.pending:
                self.drop_pending()

    def drop_pending(self) -> None:
        """Replies that can no longer be acknowledged (the replicas are gone for
        min-replicas-max-lag): their connections are closed, unanswered — the
        writes may or may not survive a failover, and a client must not be told
        either — so that the replies behind them (PING, INFO: what Sentinel
        reads to reconfigure this server) are no longer held."""
        dropped = set()
        while self.pending:
            _, conn, _ = self.pending.popleft()
            conn.acks_pending -= 1
            if conn not in dropped:
                dropped.add(conn)
                conn.abort()
        self.server.persistence._update_must_hold()
        if dropped:
            log.warning(
                "no replica acknowledged for min-replicas-max-lag: closed %d client(s) whose writes "
                "it never acknowledged", len(dropped))

    def refusal(self, client, stat) -> str | None:
        """The -NOREPLICAS a data command gets while too few replicas are good."""
        if client.is_master or client.is_replica:
            return None
        flags = stat.flags
        if self.refusing == "all" and ("write" in flags or "readonly" in flags):
            return NOREPLICAS_ACK
        if "write" in flags:
            return NOREPLICAS
        return None

    def role_changed(self) -> None:
        self.release()
        self.cron()


