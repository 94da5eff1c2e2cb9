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
        "multi", "multi_error", "watching", "watch_dirty", "pubsub", "tracking",
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

    def info_line(self) -> str:
        """One line of CLIENT LIST / CLIENT INFO, in Redis's field order."""
        now = time.time()
        conn = self.conn
        qbuf = conn.pending_len() if conn is not None else 0
        obl = conn.output_len() if conn is not None else 0
        flags = self.flags
        sub = psub = ssub = 0
        if self.pubsub is not None:
            flags = ("" if flags == "N" else flags) + "P"
            sub, psub, ssub = map(len, self.pubsub.sets)
        if self.blocked is not None:
            flags = ("" if flags == "N" else flags) + "b"
        if self.multi is not None:
            flags = ("" if flags == "N" else flags) + "x"
        tracking = self.tracking
        if tracking is not None:
            flags = ("" if flags == "N" else flags) + tracking.list_flags()
        multi = len(self.multi) if self.multi is not None else -1
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd={self.fd} "
            f"name={self.name.decode('utf-8', 'replace')} age={int(now - self.created)} "
            f"idle={int(now - self.last_interaction)} flags={flags} db={self.db.index} "
            f"sub={sub} psub={psub} ssub={ssub} multi={multi} qbuf={qbuf} qbuf-free=0 argv-mem=0 multi-mem=0 "
            f"rbs=1024 rbp=0 obl=0 oll=0 omem={obl} tot-mem={1024 + qbuf + obl} events=r "
            f"cmd={self.last_cmd} user={self.user.name} redir={-1 if tracking is None else tracking.redirect} resp={self.protocol} "
            f"lib-name={self.lib_name.decode('utf-8', 'replace')} lib-ver={self.lib_ver.decode('utf-8', 'replace')}"
        )
