"""Clients blocked on keys: parked per database and key, served first come first served.

A blocking command (``engine.commands.blocking``) that finds nothing to take
returns a ``WouldBlock``; dispatch hands it to ``Blocking.park``, which
queues the client on each of its keys (a key named twice counts once), arms
its timer (``loop.call_later``, never a poll) and stops the connection from
running anything else: the requests it sends meanwhile are read and kept
(``server.protocol`` buffers them) and run once it is served.

Waking: while at least one client is parked, ``_changed`` is in
``ks.watchers`` (the keyspace calls it with (db, key) on every change;
with nobody blocked it is not there, so writes pay nothing). A change to a
key somebody waits on appends it to ``ready`` once.

Serving happens after the current command: the hot path and dispatch call
``serve`` after each command that left ``ready`` non-empty. (EXEC and
scripts run their commands' handlers directly, so the hook runs once after
the whole of them; a blocking command inside them answers
``engine.commands.blocking.without_blocking``'s reply instead of parking.)
``serve`` takes the ready keys in the order they became ready and, for each,
the clients queued on it at that moment, oldest first: while the key holds
the type a client waits for, the client's non-blocking attempt runs again
(BLPOP's LPOP, BLMOVE's LMOVE, …) through the engine's own handlers, which
journal that effect into ``ks.effects`` after the effects of the command
that woke it. Keys the served commands change in turn (BLMOVE pushing to a
key others wait on) become ready and are served in the same pass, as in
Redis. A key deleted, or given another type, while clients wait wakes
nobody: they go on waiting, as in Redis; but XREADGROUP (kind
``stream-group``) runs again on any change to its key, so that a stream
deleted or replaced, or a group destroyed, ends its wait with Redis's
error for that (``engine.commands.stream_read``).

Replies of served (and timed-out, or CLIENT UNBLOCKed) clients leave through
their connection's ``_write``, which journals the pending effects and holds
the reply until the log holds them (fsynced under ``always``), like every
other reply.

Forgetting: a client that disconnects while blocked is taken off its queues
and its timer cancelled (``forget``), so it is never served.

Permissions: a waiter is checked against its user's ACL again when a key
could serve it (``_refused``), as Redis 7.2 checks a command it reprocesses
after a wait: a user that lost the command or the key since (ACL SETUSER)
gets the NOPERM error, logged and counted, and takes nothing, and the
clients after it are served (Redis 7.0 served it unchecked). A deleted
user's clients are disconnected (``server.acl``), blocked or not.
"""

from __future__ import annotations

import logging
from collections import deque

from engine.commands.blocking import WAIT
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.reply import NULL_ARRAY, Raw
from engine.types import type_name
from server import dispatch

log = logging.getLogger("keel.blocking")

# A timer is armed at most this far ahead and re-armed when it fires early:
# the loop's timers need not represent deadlines years away.
MAX_TIMER_S = 86400.0


class Waiter:
    """One blocked client: what it waits for and how to serve it."""

    __slots__ = ("client", "cmd", "block", "index", "keys", "timer", "done", "argv")

    def __init__(self, client, cmd, block, keys, argv=None):
        self.client = client
        self.argv = argv  # the command as sent: checked against the user's ACL again when served
        # The table entry: INFO commandstats counts the call when the wait
        # ends (served, timed out, unblocked), as Redis 7.2 does (7.0
        # counted it when it blocked).
        self.cmd = cmd
        self.block = block  # the engine's WouldBlock
        self.index = client.db.index  # the database it waits in
        self.keys = keys  # distinct keys, in the command's order
        self.timer = None
        self.done = False  # served, timed out, unblocked or gone: a stale queue entry


class _Queue:
    """The waiters on one key, oldest first.

    A waiter that leaves other than by being served from this queue (served
    through another key, timed out, disconnected) stays in the deque as a
    stale entry, so leaving costs O(1) whatever the queue's length; stale
    entries are dropped as serving reaches them, and the deque is rebuilt
    when they outnumber the live ones (``park``).
    """

    __slots__ = ("waiters", "live")

    def __init__(self):
        self.waiters: deque = deque()
        self.live = 0


class Blocking:
    def __init__(self, server):
        self.server = server
        self.ks = server.ks
        # queues[db index][key]: the waiters on that key; only keys with a live one.
        self.queues: list[dict[bytes, _Queue]] = [{} for _ in self.ks.dbs]
        # Keys changed while somebody waits on them, in that order; the list
        # object is never replaced (the hot path keeps a reference to it).
        self.ready: list = []
        self._ready_set: set = set()
        self.blocked = 0  # INFO blocked_clients
        self.timed = 0  # INFO clients_in_timeout_table: those with a deadline
        self._serving = False
        self._serve_scheduled = False

    # -- parking ------------------------------------------------------------------
    def park(self, client, cmd, block, argv=None) -> None:
        """Block ``client`` on ``block.keys``; its reply comes later (None now)."""
        keys = list(dict.fromkeys(block.keys))
        waiter = Waiter(client, cmd, block, keys, argv)
        queues = self.queues[waiter.index]
        for key in keys:
            q = queues.get(key)
            if q is None:
                q = queues[key] = _Queue()
            elif len(q.waiters) > 2 * q.live + 16:
                q.waiters = deque(w for w in q.waiters if not w.done)
            q.waiters.append(waiter)
            q.live += 1
        if not self.blocked:
            self.ks.watchers.append(self._changed)
        self.blocked += 1
        client.blocked = waiter
        if block.deadline:
            self.timed += 1
            self._arm(waiter)
        return None

    def _arm(self, waiter) -> None:
        delay = (waiter.block.deadline - now_ms()) / 1000.0
        waiter.timer = self.server.loop.call_later(min(max(delay, 0.0), MAX_TIMER_S), self._timed_out, waiter)

    def _release(self, waiter) -> None:
        """End ``waiter``'s wait: off every queue (lazily, see ``_Queue``), timer cancelled."""
        waiter.done = True
        queues = self.queues[waiter.index]
        for key in waiter.keys:
            q = queues.get(key)
            if q is not None:
                q.live -= 1
                if not q.live:
                    del queues[key]
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        if waiter.block.deadline:
            self.timed -= 1
        waiter.client.blocked = None
        self.blocked -= 1
        if not self.blocked:
            self.ks.watchers.remove(self._changed)

    def forget(self, client) -> None:
        """The client disconnected while blocked: it is never served."""
        waiter = client.blocked
        if waiter is not None:
            self._release(waiter)

    # -- waking -------------------------------------------------------------------
    def _changed(self, db, key) -> None:
        """ks.watchers hook: a change to a key some client may wait on."""
        if key in self.queues[db.index]:
            k = (db.index, key)
            if k not in self._ready_set:
                self._ready_set.add(k)
                self.ready.append(k)
                if not self._serve_scheduled:
                    # Changes made outside any command (the cron, a replica's
                    # stream) are served at the end of the loop turn; after a
                    # command, ``serve`` runs before that and finds this done.
                    self._serve_scheduled = True
                    self.server.loop.call_soon(self._serve_later)

    def _serve_later(self) -> None:
        self._serve_scheduled = False
        if self.ready:
            self.serve()

    def serve(self) -> None:
        """Serve the clients waiting on the ready keys (see the module docstring)."""
        if self._serving:
            return
        self._serving = True
        ready = self.ready
        try:
            i = 0
            while i < len(ready):  # keys served clients change are appended meanwhile
                k = ready[i]
                i += 1
                self._ready_set.discard(k)
                index, key = k
                q = self.queues[index].get(key)
                if q is not None:
                    self._serve_key(self.ks.dbs[index], key, q)
        finally:
            del ready[:]
            self._ready_set.clear()
            self._serving = False

    def _serve_key(self, db, key: bytes, q: _Queue) -> None:
        """Serve, oldest first, the waiters queued on ``key`` when this began.

        Each is taken from the front; the ones that stay blocked (waiting
        for the other type, or whose attempt found nothing) are put back in
        front in their order, so a push that serves one client costs O(1)
        however many wait.
        """
        waiters = q.waiters
        kept = []
        for _ in range(len(waiters)):
            if not waiters:
                break
            waiter = waiters.popleft()
            if waiter.done:
                continue  # left already: drop the stale entry
            value = db.get(key)
            kind = waiter.block.kind
            if kind == "stream-group":
                pass  # XREADGROUP reruns on any change: a deleted stream or group ends it with an error
            elif value is None:
                kept.append(waiter)
                break  # nothing (left) to take: the others keep waiting
            elif type_name(value) != kind:
                kept.append(waiter)  # a list waiter on a key that holds a sorted set, say
                continue
            if waiter.argv is not None and waiter.client.user.restricted:
                refused = self._refused(waiter)
                if refused is not None:
                    self._release(waiter)
                    self._reply(waiter, refused)
                    continue
            try:
                r = waiter.block.attempt(waiter.client)
            except CommandError as e:
                self._release(waiter)
                self._reply(waiter, self._failed(waiter, e))
                continue
            except Exception as e:  # a bug: answer, log, keep serving
                log.exception("serving a blocked %s crashed", waiter.cmd.fullname)
                self._release(waiter)
                self._reply(waiter, self._failed(waiter, CommandError(
                    f"ERR internal error while running '{waiter.cmd.fullname}': {type(e).__name__}")))
                continue
            if r is WAIT:
                kept.append(waiter)
                continue
            self._release(waiter)
            waiter.cmd.calls += 1
            self._reply(waiter, r)
        if kept:
            waiters.extendleft(reversed(kept))

    def _refused(self, waiter) -> Raw | None:
        """The NOPERM reply for a waiter its user may no longer run (logged,
        counted as a rejected call), or None."""
        c = waiter.client
        denied = self.server.acl.refusal(c, waiter.cmd, waiter.argv, "toplevel", sent=False)
        if denied is None:
            return None
        e = CommandError(dispatch.noperm(c.user, waiter.cmd, waiter.argv, denied))
        return Raw(dispatch.rejected(waiter.cmd, e, self.server))

    def _failed(self, waiter, e: CommandError) -> Raw:
        return Raw(dispatch.failed(self.server, waiter.cmd, e))  # counts the call and its failure

    # -- ending a wait without a key --------------------------------------------------
    def _timed_out(self, waiter) -> None:
        waiter.timer = None
        if waiter.client.blocked is not waiter:
            return
        if now_ms() <= waiter.block.deadline:  # capped at MAX_TIMER_S, or early
            self._arm(waiter)
            return
        self.end(waiter.client)

    def end(self, client, error: str | None = None) -> bool:
        """End ``client``'s wait as a timeout, or with ``error`` (CLIENT UNBLOCK);
        False when it was not blocked."""
        waiter = client.blocked
        if waiter is None:
            return False
        self._release(waiter)
        if error is None:
            waiter.cmd.calls += 1
            self._reply(waiter, NULL_ARRAY)
        else:
            self._reply(waiter, self._failed(waiter, CommandError(error)))
        return True

    def _reply(self, waiter, r) -> None:
        client = waiter.client
        conn = client.conn
        if conn is None or conn.closed:
            return
        out = dispatch.deliver(client, r if type(r) is Raw else client.encode(r))
        if out:
            conn._write([out])
        conn.unblocked()
