"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

MULTI puts the client in ``client.multi`` (a list), which gates it onto the
full dispatch; ``dispatch.slow_call`` checks each command as it would run it
(unknown, arity, authentication, loading, the RESP2 pub/sub context) and
then, instead of running it, appends it to ``client.multi`` (``+QUEUED``).
A command refused on the way sets ``client.multi_error`` and EXEC then
answers ``-EXECABORT`` and runs nothing. EXEC, DISCARD, MULTI, WATCH, QUIT and RESET
are never queued (``dispatch.MULTI_RUNS``).

EXEC runs the queued commands' handlers back to back, nothing else in
between: the event loop runs one command at a time, so the whole
transaction is atomic. A command that fails while running answers its
error in its place in the array, and the others run. A blocking command answers what it answers when it may not wait
(``without_blocking``: BLPOP's nil array). Clients blocked on keys the
transaction changed are served once, after EXEC (dispatch serves ready keys
after each top-level command, and the queued ones are not top-level).

What EXEC journals: every effect of its commands, wrapped in ``MULTI`` …
``EXEC`` when there are more than one (as Redis propagates a transaction),
all in the loop turn's single log record (``server.persistence``), so a
replay or a replica never applies part of a transaction, and the replies
leave together once the record is safe. A script run by EXEC journals its
effects without markers of its own (``Scripting.in_exec``): one MULTI …
EXEC around everything, as Redis propagates it.

WATCH: ``Watches`` keeps, per database, the clients watching each key, and
while any key is watched it is in ``ks.watchers``, which the keyspace calls
on every change to a key (a command, an expiry, FLUSHDB/FLUSHALL, SWAPDB, a
RESTORE, a replicated write: everything goes through its mutators). A change
to a watched key marks its watchers ``watch_dirty`` and EXEC then answers a
nil array. A key that was already expired (but not yet deleted) when it was
watched is treated as Redis 7 treats it: its deletion by expiry is no change,
anything else is; a key that was live when watched and is expired by the time
EXEC runs counts as changed even if nothing has deleted it yet.
"""

from __future__ import annotations

from time import perf_counter_ns

from engine import errors
from engine.commands.blocking import WouldBlock
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.registry import command
from engine.reply import NULL_ARRAY, OK, Raw
from server import dispatch, monitor, slowlog
from server.acl import exec_refusal
from server.commands.connection import RESET_HOOKS

_MULTI = [b"MULTI"]
_EXEC = [b"EXEC"]


def _leave(client) -> None:
    client.multi = None
    client.multi_error = False
    unwatch(client)
    client.regate()


def discard_transaction(client) -> None:
    """End ``client``'s transaction, if any, and drop its WATCHes (a refused EXEC: ``dispatch.refuse``)."""
    _leave(client)


# --- the commands ---------------------------------------------------------------

@command("multi", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction",
         group="transactions", since="1.2.0", fast_path=False)
def multi(c, argv):
    """MULTI -- start a transaction. O(1)."""
    if c.multi is not None:
        raise CommandError(errors.MULTI_NESTED)
    c.multi = []
    c.multi_error = False
    c.regate()
    return OK


@command("discard", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction",
         group="transactions", since="2.0.0", fast_path=False)
def discard(c, argv):
    """DISCARD -- drop the queued commands and every WATCH. O(N) in the queued commands."""
    if c.multi is None:
        raise CommandError(errors.DISCARD_WITHOUT_MULTI)
    _leave(c)
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", acl="@slow @transaction",
         group="transactions", since="1.2.0", fast_path=False)
def exec_(c, argv):
    """EXEC -- run the queued commands; nil when a WATCHed key changed."""
    queued = c.multi
    if queued is None:
        raise CommandError(errors.EXEC_WITHOUT_MULTI)
    if c.multi_error:
        _leave(c)
        raise CommandError(errors.EXECABORT)
    if c.watch_dirty or (c.watching and _expired_since_watch(c)):
        _leave(c)
        return NULL_ARRAY
    _leave(c)  # unwatch before running: the transaction's own writes break nothing
    server = c.server
    ks = c.ks
    effects = ks.effects
    first = len(effects)
    tracking = c.tracking
    encode = c.encode
    parts = [b"*%d\r\n" % len(queued)]
    append = parts.append
    scripting = ks.scripting
    scripting.in_exec = True  # a script among them journals its effects plainly: the markers below wrap them all
    try:
        for cmd, stat, argv_ in queued:
            refused = exec_refusal(c, stat, argv_)  # the user may have changed since it was queued
            if refused is not None:
                append(dispatch.rejected(stat, CommandError(refused), server))
                continue
            # dispatch.run, its clock for the slow log only: INFO commandstats
            # and the latency histograms time a sample of calls, not these.
            if server.monitors:  # shown as they run, then EXEC (server.monitor)
                monitor.before_call(server, c, stat, argv_)
            t0 = perf_counter_ns()
            try:
                r = cmd.handler(c, argv_)
                if type(r) is WouldBlock:
                    r = r.no_wait
                append(r if type(r) is Raw else encode(r))
                stat.calls += 1
            except CommandError as e:
                append(dispatch.failed(server, stat, e))
            except Exception as e:  # a bug: answer, log, keep serving
                append(dispatch.crashed(server, stat, argv_, e))
            ns = perf_counter_ns() - t0
            if ns >= server.slow_ns:  # each queued command is logged, EXEC itself is not (skip_slowlog)
                slowlog.exec_call(c, stat, argv_, ns)
            if server.monitors:
                monitor.after_call(server, c, stat, argv_)
            if tracking is not None:
                server.tracking.remember(c, stat, argv_)
            if server.eviction.access.mode:  # an LRU/LFU policy: it touched its keys (server.eviction)
                server.eviction.touch_after(c, stat, argv_)
            encode = c.encode  # HELLO inside MULTI changes the protocol of what follows
    finally:
        scripting.in_exec = False
    if len(effects) - first > 1:
        db = effects[first][0]
        effects.insert(first, (db, _MULTI))
        effects.append((effects[-1][0], _EXEC))
    return Raw(b"".join(parts))


@command("watch", -2, "noscript loading stale fast allow_busy", keys=(1, -1, 1), acl="@fast @transaction",
         group="transactions", since="2.2.0", fast_path=False,
         key_specs=(spec("RO", 1, -1),))
def watch(c, argv):
    """WATCH key [key ...] -- make the next EXEC fail if any of the keys changes. O(1) per key."""
    if c.multi is not None:
        raise CommandError(errors.WATCH_IN_MULTI)
    watches = c.server.watches
    db = c.db
    now = now_ms()
    for key in argv[1:]:
        watches.add(c, db, key, now)
    return OK


@command("unwatch", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction",
         group="transactions", since="2.2.0", fast_path=False)
def unwatch_(c, argv):
    """UNWATCH -- forget every WATCHed key. O(N) in the watched keys."""
    unwatch(c)
    return OK


def unwatch(client) -> None:
    if client.watching:
        client.server.watches.remove_all(client)
    client.watching = None
    client.watch_dirty = False


def _expired_since_watch(client) -> bool:
    """A key that was live when WATCHed and is past its expiry time now."""
    dbs = client.ks.dbs
    now = now_ms()
    for (index, key), was_expired in client.watching.items():
        if not was_expired:
            db = dbs[index]
            when = db.expires.get(key)
            if when is not None and when <= now and key in db.data:
                return True
    return False


def _reset(client) -> None:
    if client.multi is not None or client.watching:
        _leave(client)


RESET_HOOKS.append(_reset)


# --- WATCH bookkeeping --------------------------------------------------------------

class Watches:
    """Who watches which key: per database, key -> the watching clients."""

    def __init__(self, server):
        self.server = server
        self.ks = server.ks
        self.by_db = [{} for _ in server.ks.dbs]
        self.keys = 0  # watched (db, key) pairs, all clients (INFO)
        self.hooked = False

    def add(self, client, db, key: bytes, now: int) -> None:
        watching = client.watching
        if watching is None:
            watching = client.watching = {}
        k = (db.index, key)
        if k in watching:
            return
        when = db.expires.get(key)
        watching[k] = when is not None and when <= now and key in db.data
        self.by_db[db.index].setdefault(key, []).append(client)
        self.keys += 1
        if not self.hooked:
            self.hooked = True
            self.ks.watchers.append(self._changed)

    def remove_all(self, client) -> None:
        by_db = self.by_db
        for index, key in client.watching:
            clients = by_db[index].get(key)
            if clients is None:
                continue
            try:
                clients.remove(client)
                self.keys -= 1
            except ValueError:
                pass
            if not clients:
                del by_db[index][key]
        if self.hooked and not self.keys:
            self.hooked = False
            self.ks.watchers.remove(self._changed)

    def clients_watching(self) -> int:
        return sum(1 for c in self.server.clients.values() if c.watching)

    def _changed(self, db, key: bytes) -> None:
        """ks.watchers hook: ``key`` in ``db`` just changed."""
        clients = self.by_db[db.index].get(key)
        if not clients:
            return
        k = (db.index, key)
        for client in list(clients):
            watching = client.watching
            if watching.get(k) and key not in db.data:
                # Expired before WATCH, deleted now: logically no change
                # (from here on it is watched as a missing key).
                watching[k] = False
                continue
            # Its EXEC fails whatever else changes: stop watching the rest.
            self.remove_all(client)
            client.watching = {}
            client.watch_dirty = True


def info(server) -> dict:
    w = server.watches
    return {"watching_clients": w.clients_watching(), "total_watched_keys": w.keys}
