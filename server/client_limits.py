"""Client limits: normal clients' output buffers, and maxmemory-clients.

``client-output-buffer-limit normal <hard> <soft> <soft-seconds>`` (default
``0 0 0``: unlimited). Checked where the output grows and nowhere else, so
commands pay nothing: each connection's transport has its high-water mark at
the lowest limit set (``water``; ``server.protocol.OUTPUT_HIGH`` when none
is), and past it the transport calls ``Connection.pause_writing``, which
calls ``over`` before it stops reading the client. At or past the hard limit
the connection is aborted (what it has not read is dropped, as Redis frees
it); at or past the soft limit a timer looks again just after the soft
seconds, and aborts it if its output is still at or past the soft limit
(Redis's "for longer than"). A subscriber's output is the pubsub class's
(``server.pubsub`` checks it as messages are pushed); replicas come with
replication. Where Keel parts from Redis: a client whose output passes the
high-water mark stops being read until it drains, so with no limit, or a
limit above ``OUTPUT_HIGH`` (64 MB), its output stays near 64 MB and such a
limit is never reached, where Redis would let it grow to the limit.

``client-query-buffer-limit`` is checked by the slow path where a client's
unparsed requests accumulate (``server.protocol_slow``): past it the client
is closed without a reply, with Redis's log line.

``maxmemory-clients`` (0: off; bytes, or a percentage of ``maxmemory``):
each cron tick, and whenever a client's output passes its transport's
high-water mark, the memory of every client (``Client.memory_usage``) is
summed; while the total is at or past the limit the biggest client not
flagged ``CLIENT NO-EVICT on`` is closed, counted in ``evicted_clients``
(INFO stats, ``server.stats.evicted_clients``). The scan costs a pass over
the clients, and only while the directive is set.
"""

from __future__ import annotations

import logging
import time

from engine.errors import CommandError
from engine import errors
from engine.registry import subcommand
from engine.reply import OK
from server.protocol import OUTPUT_HIGH, OUTPUT_LOW

log = logging.getLogger("keel.clients")


def _memory(client) -> int:
    """What ``client`` costs (``Client.memory_usage``; its buffers without it)."""
    usage = getattr(client, "memory_usage", None)
    if usage is not None:
        return usage()
    conn = client.conn
    if conn is None:
        return 0
    return 1024 + conn.pending_len() + conn.output_len() + sum(map(len, conn.held))


class ClientLimits:
    """The server's client limits (``server.client_limits``)."""

    def __init__(self, server):
        self.server = server
        self.hard = self.soft = self.soft_seconds = 0
        self.water = (OUTPUT_HIGH, OUTPUT_LOW)  # the transports' (high, low) marks
        self.no_evict: set[int] = set()  # ids of the clients that said CLIENT NO-EVICT on
        self.soft_since: dict[int, float] = {}  # client id -> when its output passed the soft limit
        self.max_memory = 0  # maxmemory-clients in bytes (a percentage resolved), 0 off
        server.stats.evicted_clients = 0
        self._set_limits(server.config["client-output-buffer-limit"])
        self._set_max_memory()
        server.config.listeners.append(self._config_changed)

    # -- configuration -------------------------------------------------------------
    def _config_changed(self, name: str, value) -> None:
        if name == "client-output-buffer-limit":
            before = self.water
            self._set_limits(value)
            if self.water != before:
                for c in self.server.clients.values():
                    conn = c.conn
                    if conn is not None and conn.transport is not None and not conn.closed:
                        conn.transport.set_write_buffer_limits(*self.water)
        elif name in ("maxmemory-clients", "maxmemory"):
            self._set_max_memory()

    def _set_limits(self, limits: dict) -> None:
        self.hard, self.soft, self.soft_seconds = limits["normal"]
        set_ = [v for v in (self.hard, self.soft) if v]
        high = min([OUTPUT_HIGH] + set_)
        self.water = (high, min(OUTPUT_LOW, high // 4))

    def _set_max_memory(self) -> None:
        cfg = self.server.config
        v = cfg["maxmemory-clients"]
        self.max_memory = v if v >= 0 else cfg["maxmemory"] * -v // 100

    # -- output buffers ------------------------------------------------------------
    def over(self, conn) -> bool:
        """From ``Connection.pause_writing``: the client's output passed its
        transport's high-water mark. True when it was disconnected for it."""
        client = conn.client
        if client is None or conn.closed:
            return False
        if self.max_memory:
            self.evict()
            if conn.closed:
                return True
        if client.pubsub is not None or not (self.hard or self.soft):
            return False  # (the pubsub class is server.pubsub's)
        return self._check(conn, client)

    def _check(self, conn, client) -> bool:
        pending = conn.output_len() + sum(map(len, conn.held))
        if self.hard and pending >= self.hard:
            self._cut(conn, client, pending)
            return True
        if self.soft and pending >= self.soft:
            since = self.soft_since.get(client.id)
            now = time.monotonic()
            if since is None:
                self.soft_since[client.id] = now
                # Just past the soft seconds: the limit is "stays above for longer than".
                self.server.loop.call_later(self.soft_seconds + 0.01, self._recheck, conn)
            elif now - since > self.soft_seconds:
                self._cut(conn, client, pending)
                return True
        else:
            self.soft_since.pop(client.id, None)
        return False

    def _recheck(self, conn) -> None:
        client = conn.client
        if client is None or conn.closed:
            if client is not None:
                self.soft_since.pop(client.id, None)
            return
        since = self.soft_since.get(client.id)
        if since is None or client.pubsub is not None:
            return
        if not self._check(conn, client) and client.id in self.soft_since:
            # Still over, but the limit changed or the timer came early: look again.
            left = self.soft_seconds - (time.monotonic() - self.soft_since[client.id])
            self.server.loop.call_later(max(0.0, left) + 0.01, self._recheck, conn)

    def _cut(self, conn, client, pending: int) -> None:
        self.soft_since.pop(client.id, None)
        log.warning("Client id=%d addr=%s omem=%d scheduled to be closed ASAP for overcoming of output "
                    "buffer limits.", client.id, client.addr, pending)
        conn.abort()

    # -- maxmemory-clients ---------------------------------------------------------
    def cron(self) -> None:
        if self.max_memory:
            self.evict()
        elif len(self.no_evict) > 2 * len(self.server.clients) + 64:
            self.no_evict.intersection_update(self.server.clients)  # the ids of clients gone since

    def evict(self) -> int:
        """Close the biggest evictable clients while all clients' memory is
        at or past maxmemory-clients; the number closed."""
        limit = self.max_memory
        clients = self.server.clients
        no_evict = self.no_evict
        if no_evict:
            no_evict.intersection_update(clients)  # ids of clients gone since
        sized = []
        total = 0
        for c in clients.values():
            if c.conn is None or c.conn.closed:
                continue
            m = _memory(c)
            total += m
            if c.id not in no_evict:
                sized.append((m, c.id, c))
        if total < limit:
            return 0
        sized.sort(key=lambda t: (t[0], t[1]), reverse=True)
        n = 0
        for m, _, c in sized:
            if total < limit:
                break
            log.warning("Evicting client: id=%d addr=%s tot-mem=%d (maxmemory-clients %d reached)",
                        c.id, c.addr, m, limit)
            c.conn.abort()
            total -= m
            n += 1
        if total >= limit and n:  # (once per pass that closed some, not at every tick)
            log.warning("Over client maxmemory after evicting all evictable clients")
        self.server.stats.evicted_clients += n
        return n


# --- CLIENT NO-EVICT ------------------------------------------------------------------

@subcommand("client", "no-evict", 3, "admin noscript loading stale", acl="@admin @slow @dangerous @connection",
            since="7.0.0")
def client_no_evict(c, argv):
    """CLIENT NO-EVICT ON|OFF -- exempt this client from maxmemory-clients eviction. O(1)."""
    mode = argv[2].lower()
    ids = c.server.client_limits.no_evict
    if mode == b"on":
        ids.add(c.id)
    elif mode == b"off":
        ids.discard(c.id)
    else:
        raise CommandError(errors.SYNTAX)
    return OK
