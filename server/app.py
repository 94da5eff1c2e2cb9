"""The server process: listeners, clients, the cron, and shutdown.

``Server`` owns the keyspace, the configuration and the set of connected
clients. ``run(config)`` installs uvloop, opens the listener, starts the cron
(active expiry, idle-client timeout, per-second bookkeeping at ``hz`` ticks a
second) and serves until SHUTDOWN, SIGTERM or SIGINT.

Shutdown is orderly: stop accepting, close clients, then the process exits
with status 0. Nothing is left half-written (the write-ahead log, when
present, is flushed before exit).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import gc
import logging
import os
import signal
import socket
import sys
import time

import engine.commands  # noqa: F401  (registers every engine command)
import server.commands  # noqa: F401  (registers connection and server commands)
from engine.keyspace import Keyspace
from engine.types.limits import DIRECTIVES as LIMIT_DIRECTIVES
from server.blocking import Blocking
from server.client import Client
from server.config import Config
from server.notify import Notifier
from server.multi import Watches
from server.eviction import Eviction
from server.lazyfree import LazyFree
from server.client_limits import ClientLimits
from server.persistence import Persistence
from replication import Replication
from server.protocol import Connection, sample_calls
from server.pubsub import PubSub
from server import latency, tls
from server.commands import introspect
from server.scripting.runner import Scripting
from server.tracking import Tracking

log = logging.getLogger("keel")

KEEL_VERSION = "0.1.0"
REDIS_VERSION = "7.2.0"


class ListenError(Exception):
    """The listening socket could not be opened (the port is taken, …)."""


class Stats:
    """Counters INFO stats reports."""

    def __init__(self):
        self.reset()
        self.total_connections = 0
        self.rejected_connections = 0

    def reset(self) -> None:
        self.protocol_errors = 0
        self.errors: collections.Counter = collections.Counter()
        self.net_input_bytes = 0
        self.net_output_bytes = 0

    @property
    def commands(self) -> int:
        """Commands executed (failed ones included, rejected ones not), as
        Redis's total_commands_processed counts them: the sum of the per-command
        counters, so the hot path keeps no second counter."""
        from engine.commands.introspection import all_commands

        return sum(cmd.calls for cmd in all_commands())

    def count_error(self, prefix: str) -> None:
        self.errors[prefix] += 1


class Server:
    def __init__(self, config: Config):
        self.config = config
        self.ks = Keyspace(config["databases"])
        self.clients: dict[int, Client] = {}
        self.next_client_id = 1
        self.stats = Stats()
        self.loading = False
        self.start_time = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listeners: list = []  # plain TCP (a busy script polls these itself)
        self.tls_listeners: list = []
        self.tls_context = None
        self.tls_port = config["tls-port"]
        self.shutdown_event: asyncio.Event | None = None
        self.active_expire_enabled = True
        self.disable_deny_scripts = False  # DEBUG SET-DISABLE-DENY-SCRIPTS
        self.expire_handle = None  # the next active expiry slice, when one is due soon
        self.exit_code = 0
        self.port = config["port"]
        self.run_id = os.urandom(20).hex()
        self.cron_handle = None
        self.persistence = Persistence(self)
        self.repl = Replication(self)  # role, ids, replicas and the link to a primary (replication/)
        self.blocking = Blocking(self)  # clients parked by BLPOP & co.
        self.tracking = Tracking(self)  # client-side caching (CLIENT TRACKING)
        self.pubsub = PubSub(self)  # channels, patterns and their subscribers
        self.watches = Watches(self)  # WATCHed keys (server.multi)
        self.lazyfree = LazyFree(self)  # big values freed a slice per loop turn (server.lazyfree)
        self.client_limits = ClientLimits(self)  # output buffers, maxmemory-clients (server.client_limits)
        # Commands that build strings (APPEND, SETRANGE, SETBIT, …) refuse to
        # grow one past proto-max-bulk-len, as Redis does.
        self.ks.proto_max_bulk_len = config["proto-max-bulk-len"]
        for name, attr in LIMIT_DIRECTIVES.items():
            setattr(self.ks.limits, attr, config[name])
        config.listeners.append(self._config_changed)
        self.notifier = Notifier(self)  # keyspace events, published through self.pubsub
        self.eviction = Eviction(self)  # maxmemory: the OOM check, eviction, access tracking
        self.ks.scripting = Scripting(self.ks, self)  # EVAL and FUNCTION (server.scripting)
        self.save_on_shutdown = True
        # Why every client's commands must take the full dispatch (MONITOR
        # attached, CLIENT PAUSE, SLOWLOG logging every call, …): empty on the
        # common path. Changed only through ``full_dispatch``.
        self.full_dispatch_reasons: set[str] = set()
        introspect.attach(self)  # MONITOR's clients, the slow log, latency thresholds (server.commands.introspect)

    def full_dispatch(self, reason: str, on: bool) -> None:
        """Route every client through ``server.dispatch.slow_call`` while
        ``reason`` holds (``on``), e.g. ``"monitor"`` while a MONITOR client is
        attached: the hot path (``server.protocol``) runs nothing itself for a
        gated client, so whatever the full dispatch does (feed monitors, time
        each call, hold a paused client) sees every command. Clients are
        regated at once; a client that connects later is gated from the start."""
        reasons = self.full_dispatch_reasons
        before = bool(reasons)
        if on:
            reasons.add(reason)
        else:
            reasons.discard(reason)
        if bool(reasons) != before:
            for c in self.clients.values():
                c.regate()

    def _config_changed(self, name: str, value) -> None:
        if name == "proto-max-bulk-len":
            self.ks.proto_max_bulk_len = value
        elif name.startswith("min-replicas-") and getattr(self, "repl", None) is not None:
            self.repl.waits.update_refusal()  # at once: not a write taken, then dropped at the next tick
        elif name in LIMIT_DIRECTIVES:
            setattr(self.ks.limits, LIMIT_DIRECTIVES[name], value)
        elif name.startswith("tls-") and self.tls_context is not None:
            # New connections take the new files; one that fails to load leaves the old context.
            try:
                ctx = tls.build_context(self.config)
            except tls.TLSConfigError as e:
                log.warning("%s", e)
                return
            live, cfg = self.tls_context, self.config
            live.load_cert_chain(cfg["tls-cert-file"], cfg["tls-key-file"], password=cfg["tls-key-file-pass"] or None)
            if cfg["tls-ca-cert-file"] or cfg["tls-ca-cert-dir"]:
                live.load_verify_locations(cafile=cfg["tls-ca-cert-file"] or None, capath=cfg["tls-ca-cert-dir"] or None)
            live.verify_mode = ctx.verify_mode

    # -- clients -------------------------------------------------------------
    def new_client(self, conn: Connection, transport) -> Client:
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        laddr = f"{local[0]}:{local[1]}" if isinstance(local, tuple) else str(local or "")
        fd = sock.fileno() if sock is not None else -1
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Client(self, conn, self.next_client_id, addr, laddr, fd)
        self.next_client_id += 1
        self.clients[c.id] = c
        self.stats.total_connections += 1
        return c

    def remove_client(self, c: Client) -> None:
        self.clients.pop(c.id, None)
        if c.is_replica:
            self.repl.primary.gone(c)
        if self.monitors:
            introspect.client_gone(self, c)
        if c.tracking is not None:
            self.tracking.disable(c)
        if c.pubsub is not None:
            self.pubsub.remove(c)
        if c.watching:
            self.watches.remove_all(c)
            c.watching = None

    # -- cron ------------------------------------------------------------------
    def cron(self) -> None:
        """Runs ``hz`` times a second: active expiry and client timeouts."""
        hz = self.config["hz"]
        try:
            sample_calls()
            self.ks.mem_settle()  # bounds the keys a deferred accounting notes (Keyspace.mem_defer)
            if self.expire_handle is None:
                self.expire_slice()
            if not self.loading:
                self.persistence.cron()
                self.repl.cron()
                self.eviction.cron()
            self.client_limits.cron()
            now = time.time()
            timeout = self.config["timeout"]
            for c in list(self.clients.values()):
                if c.active:
                    c.active = False
                    c.last_interaction = now
                elif (timeout and now - c.last_interaction > timeout and c.conn is not None and c.blocked is None
                      and c.pubsub is None and not c.is_replica):  # as in Redis, subscribers never time out
                    c.conn.close()
        finally:
            self.cron_handle = self.loop.call_later(1.0 / hz, self.cron)

    # Active expiry runs in slices of EXPIRE_SLICE_MS: one per tick, and while
    # due keys keep coming (a cycle ran out of time with a tenth or more of
    # its samples due), another after EXPIRE_PAUSE_MS, so expiry takes up to
    # a quarter of the CPU, as Redis's slow cycle does, but never holds
    # clients for more than a slice at a time.
    EXPIRE_SLICE_MS = 2.0
    EXPIRE_PAUSE_MS = 6.0

    def expire_slice(self) -> None:
        self.expire_handle = None
        if not self.active_expire_enabled or self.loading:
            return
        ks = self.ks
        t0 = time.perf_counter_ns()
        ks.active_expire(budget_ms=self.EXPIRE_SLICE_MS)
        latency.add("expire-cycle", (time.perf_counter_ns() - t0) // 1_000_000)
        if ks.effects:
            self.persistence.journal()
        if ks.expire_backlog:
            self.expire_handle = self.loop.call_later(self.EXPIRE_PAUSE_MS / 1000, self.expire_slice)

    # -- lifecycle ---------------------------------------------------------------
    async def _listen(self, hosts: list, port: int, ctx, into: list) -> None:
        """Listen on ``port`` at every ``bind`` address (``*`` every IPv4 one,
        ``::*`` every IPv6 one; a ``-`` prefix: skipped when unavailable)."""
        cfg = self.config
        extra = {} if ctx is None else {"ssl": ctx, "ssl_handshake_timeout": cfg["tls-handshake-timeout"] / 1000}
        for host in hosts:
            optional = host.startswith("-")
            host = host.lstrip("-")
            host = {"*": "0.0.0.0", "::*": "::"}.get(host, host)
            try:
                srv = await self.loop.create_server(
                    lambda: Connection(self), host, port, backlog=cfg["tcp-backlog"], reuse_address=True,
                    **extra)
            except OSError as e:
                if optional and e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                    continue
                for other in self.listeners + self.tls_listeners:
                    other.close()
                raise ListenError(
                    f"Could not create server {'TLS' if ctx else 'TCP'} listening socket {host}:{port}: "
                    f"bind: {os.strerror(e.errno) if e.errno else e}") from None
            into.append(srv)
        if not into:
            raise ListenError(f"Could not create server {'TLS' if ctx else 'TCP'} listening socket on port "
                              f"{port}: no bind address available")

    def default_user_nopass(self) -> bool:
        """Whether the default user needs no password (protected mode applies)."""
        acl = getattr(self, "acl", None)
        check = getattr(acl, "default_user_nopass", None)
        if check is not None:
            return check()
        return not self.config["requirepass"]

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.shutdown_event = asyncio.Event()
        cfg = self.config
        os.makedirs(cfg["dir"], exist_ok=True)
        hosts = cfg["bind"].split() or ["127.0.0.1"]
        self.tls_context = None
        if tls.enabled(cfg):
            try:
                self.tls_context = tls.build_context(cfg)
            except tls.TLSConfigError as e:
                raise ListenError(str(e)) from None
        if cfg["port"] or not self.tls_context:  # port 0 with a tls-port: TLS only, as in Redis
            await self._listen(hosts, cfg["port"], None, self.listeners)
            if self.port == 0:  # (Keel: port 0 without TLS picks a free port)
                self.port = self.listeners[0].sockets[0].getsockname()[1]
        if self.tls_context is not None:
            await self._listen(hosts, cfg["tls-port"], self.tls_context, self.tls_listeners)
            self.tls_port = self.tls_listeners[0].sockets[0].getsockname()[1]
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.request_shutdown)
        self.cron_handle = self.loop.call_later(1.0 / cfg["hz"], self.cron)
        if not await self.load():
            return
        from server.commands.replication import start_from_config

        start_from_config(self)  # replicaof in the configuration
        # Synchronous mode with no replica yet refuses from the first client
        # on (a write taken, then dropped at the first tick, would close it).
        self.repl.waits.update_refusal()
        # What exists now (modules, the command table, a loaded keyspace's
        # containers) lives as long as the process: keep the collector from
        # walking it again in every full collection, which took tens of ms.
        gc.collect()
        gc.freeze()
        log.info("Keel %s ready to accept connections on port %d (pid %d)", KEEL_VERSION, self.port, os.getpid())

    async def load(self) -> bool:
        """Recover the dataset; clients connected meanwhile get -LOADING.

        The loader runs in a worker thread that owns the keyspace until it is
        done: the loop thread only answers LOADING (and the few commands
        flagged ``loading``, which read counters), so no keyspace object is
        touched by two threads. False when the data on disk is damaged: the
        server then stops with status 1, naming the file, the offset and the
        repair command.
        """
        self.loading = True
        try:
            await self.loop.run_in_executor(None, self.persistence.load)
        except Exception as e:
            msg = f"cannot load the dataset: {e}"
            log.critical(msg)
            print(f"keel: {msg}", file=sys.stderr, flush=True)
            self.request_shutdown(exit_code=1, save=False)
            return False
        finally:
            self.loading = False
            for c in list(self.clients.values()):
                c.regate()
        return True

    def request_shutdown(self, exit_code: int = 0, save: bool = True) -> None:
        self.exit_code = exit_code
        self.save_on_shutdown = save
        if self.shutdown_event is not None:
            self.shutdown_event.set()

    async def serve(self) -> int:
        await self.start()
        await self.shutdown_event.wait()
        await self.stop()
        return self.exit_code

    async def stop(self) -> None:
        log.info("shutting down")
        self.repl.close()
        for handle in (self.cron_handle, self.expire_handle):
            if handle is not None:
                handle.cancel()
        for srv in self.listeners + self.tls_listeners:
            srv.close()
        for c in list(self.clients.values()):
            if c.conn is not None:
                c.conn.close()
        for srv in self.listeners + self.tls_listeners:
            try:
                await asyncio.wait_for(srv.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass
        await self.persistence.wait_bgsave()
        try:
            self.persistence.close(save=self.save_on_shutdown and self.exit_code == 0)
        except Exception as e:
            log.critical("could not save on shutdown: %s", e)
            self.exit_code = self.exit_code or 1
        log.info("Keel is now ready to exit, bye bye...")


def run(config: Config) -> int:
    target = {"filename": config["logfile"]} if config["logfile"] else {"stream": sys.stderr}
    logging.basicConfig(
        level={"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
               "warning": logging.WARNING, "nothing": logging.CRITICAL}[config["loglevel"]],
        format="%(process)d:M %(asctime)s %(levelname).1s %(message)s",
        **target,
    )
    import uvloop

    # A checkpoint writer thread holds the GIL in Python code; by default the
    # loop would wait up to 5 ms for it at every switch. Only matters while
    # such a thread runs: with one thread nothing ever waits for the GIL.
    sys.setswitchinterval(0.0005)
    from engine.registry import rename_command
    for old_name, new_name in config.renames:  # for the whole process, before anything runs
        try:
            rename_command(old_name, new_name)
        except KeyError:
            log.warning("Fatal error, can't rename command: no such command '%s'", old_name)
            return 1
        except ValueError:
            log.warning("Fatal error, can't rename command '%s' to '%s': that name is taken", old_name, new_name)
            return 1
    server = Server(config)
    from server import aclfile
    try:  # the config file's user lines or the aclfile: a bad one stops the start
        aclfile.load_at_start(server)
    except aclfile.AclFileError as e:
        text = str(e)[4:] if str(e).startswith("ERR ") else str(e)
        log.warning("Aborting Keel startup because of ACL errors: %s", text)
        if config["logfile"]:  # otherwise the log already went to stderr
            print(f"Aborting Keel startup because of ACL errors: {text}", file=sys.stderr, flush=True)
        return 1
    try:
        return uvloop.run(server.serve())
    except ListenError as e:
        # As redis-server: a clear line, no traceback, a failing exit status.
        log.warning("%s", e)
        log.warning("Failed listening on port %d (tcp), aborting.", config["port"])
        if config["logfile"]:  # otherwise the log already went to stderr
            print(f"Warning: {e}\nFailed listening on port {config['port']} (tcp), aborting.", file=sys.stderr,
                  flush=True)
        return 1
