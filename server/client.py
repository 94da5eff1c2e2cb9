"""Client bookkeeping: one ``Client`` per connection.

A ``Client`` is the ``Session`` that command handlers receive (selected
database, protocol version) plus what CLIENT LIST / INFO clients show: id,
name, address, age, idle time, flags, the last command. It holds a reference
to its connection only to close it or pause it; it never writes to the socket
itself — replies flow back through ``server.protocol``.

``gated`` is the one flag the hot path tests: it is True whenever a command
cannot take the fast path (not authenticated, a user with restricted
permissions whose every command dispatch checks, CLIENT REPLY OFF/SKIP, …),
and recomputed by ``regate()`` whenever one of those states changes (ACL
SETUSER regates the clients of the user it changed).
"""

from __future__ import annotations

import time

from engine.registry import resolve
from engine.session import Session
from server.acl import server_acl
from server.acl_fast import guarded_table
from server.resp import encode2, encode3


class Client(Session):
    __slots__ = (
        "server", "conn", "id", "name", "addr", "laddr", "fd", "created", "last_interaction",
        "active", "authenticated", "logged_in", "reply_mode", "gated", "gated_fast", "lib_name", "lib_ver",
        "last_cmd", "close_after_reply", "flags", "user", "encode", "blocked",
        "multi", "multi_error", "watching", "watch_dirty", "pubsub", "tracking", "paused_argv",
        "is_master", "is_replica", "conn_ip", "repl_port", "repl_capa",
    )

    def __init__(self, server, conn, client_id: int, addr: str, laddr: str, fd: int):
        super().__init__(server.ks, 0)
        self.server = server
        self.conn = conn
        self.id = client_id
        self.name = b""
        self.addr = addr
        self.laddr = laddr
        self.fd = fd
        self.created = time.time()
        self.last_interaction = self.created
        self.active = False
        acl = server_acl(server)
        # logged_in: AUTH succeeded, or the default user needed no password at
        # connection; authenticated: that, or the default user needs none now
        # (Redis decides the second at every command: Acl.refresh_auth keeps it).
        self.logged_in = self.authenticated = acl.starts_authenticated()
        self.user = acl.default  # a server.acl.User: ACL SETUSER changes it in place
        self.reply_mode = "on"  # on | off | skip (CLIENT REPLY)
        self.lib_name = b""
        self.lib_ver = b""
        self.last_cmd = "NULL"
        self.close_after_reply = False
        self.flags = "N"
        self.gated = False
        self.gated_fast = None
        self.encode = encode2
        self.blocked = None  # the server.blocking.Waiter while a blocking command waits
        self.paused_argv = None  # the command CLIENT PAUSE holds back (server.pause), run when it ends
        # MULTI (server.multi): the queued commands while in MULTI, else None;
        # multi_error: a command was refused at queue time (EXEC answers EXECABORT).
        self.multi = None
        self.multi_error = False
        # WATCH (server.multi): the watched keys, or None; watch_dirty: one changed.
        self.watching = None
        self.watch_dirty = False
        # Pub/sub (server.pubsub): the subscription state while subscribed to
        # at least one channel, pattern or shard channel, else None.
        self.pubsub = None
        # Client-side caching (server.tracking): the state while CLIENT
        # TRACKING is on, else None.
        self.tracking = None
        # Replication (replication/): the client standing for this server's
        # primary (is_master: applies the stream, read-only does not refuse
        # it), or a replica's connection here (is_replica, after PSYNC), with
        # what its REPLCONF said.
        self.is_master = False
        self.is_replica = False
        self.conn_ip = None
        self.repl_port = 0
        self.repl_capa = set()
        self.regate()

    def reads_every_key(self, argv: list) -> bool:
        """Whether this client's user may run ``argv``'s command reading any key
        (SORT's BY and GET patterns, which no key spec can list)."""
        user = self.user
        return not user.restricted or user.reads_every_key(resolve(argv))

    def set_protocol(self, version: int) -> None:
        self.protocol = version
        self.encode = encode3 if version == 3 else encode2

    def regate(self) -> None:
        other = ((not self.authenticated) or self.reply_mode != "on" or self.server.loading
                 or self.multi is not None or self.pubsub is not None or self.tracking is not None
                 or self.server.busy_run is not None or bool(getattr(self.server, "full_dispatch_reasons", None)))
        self.gated = other or self.user.restricted
        # Gated by ACL alone: the hot path may still run its commands, each
        # checked first (server.acl_fast); None: every command takes the full dispatch.
        self.gated_fast = guarded_table() if self.gated and not other else None

    def memory_usage(self) -> int:
        """What this client costs the process, in bytes, as CLIENT LIST's
        tot-mem reports it and ``maxmemory-clients`` counts it: its query
        buffer's allocation, its unsent output (the transport's buffer, replies
        held for the log, pushed messages), the argv a held command keeps, its
        MULTI queue and WATCHed keys, and ``CLIENT_OVERHEAD``. O(1) but for
        the held replies and the MULTI queue, which it walks."""
        conn = self.conn
        total = CLIENT_OVERHEAD
        if conn is not None:
            total += query_buffer(conn)[1] + output_bytes(conn)
        if self.paused_argv is not None:
            total += argv_bytes(self.paused_argv) + ARGV_OVERHEAD * len(self.paused_argv)
        if self.multi is not None or self.watching:
            total += multi_bytes(self)
        return total

    def info_line(self, argv: list | None = None) -> str:
        """One line of CLIENT LIST / CLIENT INFO, in Redis's field order
        (Redis 7.4's: 7.2's fields plus ``watch``). ``argv``: the command the
        client is running now (the caller's own CLIENT LIST), for argv-mem."""
        now = time.time()
        conn = self.conn
        if conn is not None:
            qbuf, qalloc = query_buffer(conn)
            omem = output_bytes(conn)
            oll = len(conn.held) + (len(conn.pushed) if conn.pushed else 0) + (conn.output_len() > 0)
            events = ("" if conn.paused or conn.yielding else "r") + ("w" if omem else "")
        else:
            qbuf = qalloc = omem = oll = 0
            events = ""
        # Flags in Redis's order: O/S/M (self.flags), P, x, b, t/R/B, d, c, e, T; N for none.
        flags = "" if self.flags == "N" else self.flags
        sub = psub = ssub = 0
        if self.pubsub is not None:
            flags += "P"
            sub, psub, ssub = map(len, self.pubsub.sets)
        if self.multi is not None:
            flags += "x"
        if self.blocked is not None:
            flags += "b"
        tracking = self.tracking
        if tracking is not None:
            flags += tracking.list_flags()
        if self.watch_dirty:
            flags += "d"
        if self.close_after_reply:
            flags += "c"
        # (CLIENT NO-EVICT's and NO-TOUCH's sets live with their owners.)
        limits = getattr(self.server, "client_limits", None)
        if limits is not None and self.id in limits.no_evict:
            flags += "e"
        eviction = getattr(self.server, "eviction", None)
        if eviction is not None and self.id in eviction.notouch:
            flags += "T"
        flags = flags or "N"
        multi = len(self.multi) if self.multi is not None else -1
        if argv is None:
            argv = self.paused_argv
        argv_mem = argv_bytes(argv) if argv is not None else 0
        multi_mem = multi_bytes(self) if self.multi is not None or self.watching else 0
        tot = self.memory_usage()
        if argv is not None and argv is not self.paused_argv:
            tot += argv_mem + ARGV_OVERHEAD * len(argv)
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd={self.fd} "
            f"name={self.name.decode('utf-8', 'replace')} age={int(now - self.created)} "
            f"idle={int(now - self.last_interaction)} flags={flags} db={self.db.index} "
            f"sub={sub} psub={psub} ssub={ssub} multi={multi} watch={len(self.watching) if self.watching else 0} "
            f"qbuf={qbuf} qbuf-free={qalloc - qbuf} argv-mem={argv_mem} multi-mem={multi_mem} "
            f"rbs={qalloc} rbp={qalloc} obl=0 oll={oll} omem={omem} tot-mem={tot} events={events} "
            f"cmd={self.last_cmd} user={self.user.name} redir={-1 if tracking is None else tracking.redirect} "
            f"resp={self.protocol} lib-name={self.lib_name.decode('utf-8', 'replace')} "
            f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}"
        )


# What one idle connection costs beyond its buffers: the Client, its
# Connection, the uvloop transport and socket objects, the hiredis reader.
# Measured: resident memory grew by 2.6-2.7 KB per idle connection over 2000.
CLIENT_OVERHEAD = 2700
# Per argument of a kept argv (a list slot and a bytes object's header), per
# queued MULTI command (its tuple and list), per WATCHed key (the client's
# entry and its place in the server's watch table).
ARGV_OVERHEAD = 41
QUEUED_OVERHEAD = 120
WATCH_OVERHEAD = 160


def argv_bytes(argv: list) -> int:
    """The payload bytes of ``argv`` (Redis's argv-mem: the arguments' sizes)."""
    return sum(map(len, argv))


def query_buffer(conn) -> tuple[int, int]:
    """(bytes received and not yet run, bytes allocated for them) of a
    connection: the slow path's ``pending`` buffer (a request cut across
    reads, what a blocked or paused client sent meanwhile), plus the hiredis
    reader's buffer in the allocation (the fast path runs every read whole,
    so what the reader keeps between reads was already run)."""
    pending = conn.pending
    used = 0
    alloc = conn.reader.len()
    if pending is not None:
        used += len(pending)
        alloc += pending.__alloc__()
    return used, alloc


def output_bytes(conn) -> int:
    """Bytes produced for a connection and not yet taken by its socket: the
    transport's buffer, replies held until the log has what they depend on,
    messages pushed and not yet written."""
    n = conn.output_len()
    if conn.held:
        n += sum(map(len, conn.held))
    if conn.pushed:
        n += sum(map(len, conn.pushed))
    return n


def multi_bytes(client) -> int:
    """Redis's multi-mem: the MULTI queue's commands and the WATCHed keys."""
    n = 0
    if client.multi is not None:
        for _cmd, _stat, argv in client.multi:
            n += QUEUED_OVERHEAD + argv_bytes(argv) + ARGV_OVERHEAD * len(argv)
    if client.watching:
        n += sum(WATCH_OVERHEAD + len(key) for _index, key in client.watching)
    return n
