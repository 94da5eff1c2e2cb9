"""Lazy freeing in the server: the reaper's slices run from the event loop.

``engine.lazyfree.Reaper`` takes apart the big values UNLINK, FLUSHALL /
FLUSHDB ASYNC and the ``lazyfree-lazy-*`` directives hand it; this module
gives it its time. When work arrives (``Reaper.wake``) a step is scheduled
with ``call_soon``; each step frees for ``STEP_NS`` and, while work is left,
schedules the next, so the loop polls its sockets between two steps and a
client waits at most about one step (a busy loop gives the reaper one step a
turn; an idle one gives it the CPU).

INFO memory reads ``server.lazyfree_pending`` and ``server.lazyfreed_objects``
(Redis's ``lazyfree_pending_objects`` and ``lazyfreed_objects``), kept equal to
the reaper's counters after every step and every hand-over.

Directives (all ``no`` by default, as in Redis 7, settable with CONFIG SET):
``lazyfree-lazy-user-del`` (DEL frees as UNLINK), ``lazyfree-lazy-user-flush``
(FLUSHALL/FLUSHDB without a mode are ASYNC), ``lazyfree-lazy-expire``,
``lazyfree-lazy-eviction``, ``lazyfree-lazy-server-del`` (read by the
keyspace's expiry, eviction and overwrite paths through the reaper's flags),
``replica-lazy-flush`` (a replica's flush before a full sync).
"""

from __future__ import annotations

from engine.lazyfree import Reaper

STEP_NS = 1_000_000  # a step's budget: what a client may wait for the reaper

# directive -> the Reaper flag it sets
DIRECTIVES = {
    "lazyfree-lazy-user-del": "user_del",
    "lazyfree-lazy-user-flush": "user_flush",
    "lazyfree-lazy-server-del": "server_del",
    "lazyfree-lazy-expire": "expire",
    "lazyfree-lazy-eviction": "eviction",
}


class LazyFree:
    """The server's reaper (``server.lazyfree``) and its scheduling."""

    def __init__(self, server):
        self.server = server
        r = self.reaper = Reaper()
        r.wake = self._wake
        server.ks.reaper = r
        self.scheduled = False
        server.lazyfree_pending = 0
        server.lazyfreed_objects = 0
        for name, attr in DIRECTIVES.items():
            setattr(r, attr, server.config[name])
        server.config.listeners.append(self._config_changed)

    def _config_changed(self, name: str, value) -> None:
        attr = DIRECTIVES.get(name)
        if attr is not None:
            setattr(self.reaper, attr, value)

    def _publish(self) -> None:
        s = self.server
        s.lazyfree_pending = self.reaper.pending
        s.lazyfreed_objects = self.reaper.freed

    def _wake(self) -> None:
        self._publish()
        loop = self.server.loop
        if not self.scheduled and loop is not None:
            self.scheduled = True
            loop.call_soon(self._run)

    def _run(self) -> None:
        more = self.reaper.step(STEP_NS)
        self._publish()
        if more:
            self.server.loop.call_soon(self._run)
        else:
            self.scheduled = False
