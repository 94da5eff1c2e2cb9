"""Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC, SYNC, WAIT,
WAITAOF, FAILOVER. The machinery is in ``replication/``; these parse and
answer in Redis's words."""

from __future__ import annotations

import logging

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK, Raw
from engine.util import to_int_or_none
from server.dispatch import NO_REPLY

log = logging.getLogger("keel.replication")


def _port(b: bytes) -> int:
    v = to_int_or_none(b)
    if v is None or not 0 <= v <= 65535:
        raise CommandError("ERR Invalid master port")
    return v


def _replicaof(c, argv):
    server = c.server
    repl = server.repl
    host, port = argv[1], argv[2]
    if host.lower() == b"no" and port.lower() == b"one":
        if repl.role == "slave":
            repl.become_primary()
            log.info("MASTER MODE enabled (user request from '%s')", c.addr)
        return OK
    p = _port(port)
    h = host.decode("utf-8", "replace")
    if repl.role == "slave" and repl.master_host == h and repl.master_port == p:
        return Raw(b"+OK Already connected to specified master\r\n")
    if server.persistence.log is None:
        raise CommandError("ERR a Keel replica journals what it applies: set appendonly yes first")
    repl.become_replica(h, p)
    log.info("REPLICAOF %s:%d enabled (user request from '%s')", h, p, c.addr)
    return OK


@command("replicaof", 3, "admin noscript stale no_async_loading", acl="@admin @slow @dangerous",
         group="server", since="5.0.0", fast_path=False)
def replicaof(c, argv):
    """REPLICAOF host port | NO ONE -- replicate from a primary, or become one keeping the data."""
    return _replicaof(c, argv)


@command("slaveof", 3, "admin noscript stale no_async_loading", acl="@admin @slow @dangerous",
         group="server", since="1.0.0", fast_path=False)
def slaveof(c, argv):
    """SLAVEOF host port | NO ONE -- REPLICAOF's old name (Sentinel sends this one)."""
    return _replicaof(c, argv)


@command("role", 1, "noscript loading stale fast", acl="@admin @fast @dangerous", group="server",
         since="2.8.12", fast_path=False)
def role(c, argv):
    """ROLE -- master [offset, replicas] or slave [host, port, state, offset]."""
    return c.server.repl.role_reply()


@command("replconf", -1, "admin noscript loading stale allow_busy", acl="@admin @slow @dangerous",
         group="server", since="3.0.0", fast_path=False)
def replconf(c, argv):
    """REPLCONF option value ... -- what a replica tells its primary (internal)."""
    if len(argv) % 2 == 0:
        raise CommandError(errors.SYNTAX)
    repl = c.server.repl
    i = 1
    while i < len(argv):
        opt = argv[i].lower()
        val = argv[i + 1]
        if opt == b"listening-port":
            port = to_int_or_none(val)
            if port is None:
                raise CommandError(errors.NOT_INTEGER)
            c.repl_port = port
        elif opt == b"ip-address":
            c.conn_ip = val.decode("utf-8", "replace")
        elif opt == b"capa":
            c.repl_capa.add(val.decode("utf-8", "replace").lower())
        elif opt == b"ack":
            if not c.is_replica:
                return NO_REPLY
            off = to_int_or_none(val)
            fack = None
            if i + 3 < len(argv) and argv[i + 2].lower() == b"fack":
                fack = to_int_or_none(argv[i + 3])
            if off is not None:
                repl.primary.ack(c, off, fack)
            return NO_REPLY
        elif opt == b"getack":
            return NO_REPLY  # only a primary's stream asks this of a replica
        elif opt in (b"rdb-only", b"rdb-filter-only", b"rdb-channel"):
            pass
        else:
            raise CommandError(f"ERR Unrecognized REPLCONF option: {val and argv[i].decode('utf-8', 'replace')}")
        i += 2
    return OK


@command("psync", -3, "admin noscript no_async_loading no_multi", acl="@admin @slow @dangerous",
         group="server", since="2.8.0", fast_path=False)
def psync(c, argv):
    """PSYNC replid offset -- a replica asks for the stream (internal)."""
    if c.is_replica:
        return NO_REPLY
    want = to_int_or_none(argv[2])
    if want is None:
        raise CommandError(errors.NOT_INTEGER)
    repl = c.server.repl
    replid = argv[1].decode("utf-8", "replace")
    if len(argv) > 3:
        if len(argv) > 4 or argv[3].lower() != b"failover":
            raise CommandError(errors.SYNTAX)
        # FAILOVER: our primary hands its role to us (replication.failover).
        if repl.role != "slave":
            raise CommandError("ERR PSYNC FAILOVER can't be sent to a master.")
        if replid != repl.replid:
            raise CommandError("ERR PSYNC FAILOVER replid must match my replid.")
        log.info("FAILOVER requested by %s: promoting", c.addr)
        repl.become_primary()
    r = repl.primary.psync(c, replid, want)
    return Raw(r) if r else NO_REPLY


@command("sync", 1, "admin noscript no_async_loading no_multi", acl="@admin @slow @dangerous",
         group="server", since="1.0.0", fast_path=False)
def sync(c, argv):
    """SYNC -- the old full synchronisation (internal)."""
    if c.is_replica:
        return NO_REPLY
    r = c.server.repl.primary.psync(c, None, 0)
    return Raw(r) if r else NO_REPLY


def _timeout(b: bytes) -> int:
    v = to_int_or_none(b)
    if v is None:
        raise CommandError("ERR timeout is not an integer or out of range")
    if v < 0:
        raise CommandError("ERR timeout is negative")
    return v


@command("wait", 3, "noscript", acl="@slow @connection", group="generic", since="3.0.0",
         fast_path=False, tips="request_policy:all_shards response_policy:agg_min")
def wait(c, argv):
    """WAIT numreplicas timeout -- block until that many replicas have this client's writes."""
    repl = c.server.repl
    n = to_int_or_none(argv[1])
    if n is None:
        raise CommandError(errors.NOT_INTEGER)
    t = _timeout(argv[2])
    if repl.role == "slave":
        raise CommandError("ERR WAIT cannot be used with replica instances. Please also note that since "
                           "Redis 4.0 if a replica is configured to be writable (which is not the default) "
                           "writes to replicas are just local and are not propagated.")
    return repl.waits.wait(c, n, t, c.multi is not None or c.server.persistence.log is None)


@command("waitaof", 4, "noscript", acl="@slow @connection", group="generic", since="7.2.0",
         fast_path=False, tips="request_policy:all_shards response_policy:agg_min")
def waitaof(c, argv):
    """WAITAOF numlocal numreplicas timeout -- block until the writes are fsynced here and on replicas."""
    repl = c.server.repl
    local = to_int_or_none(argv[1])
    n = to_int_or_none(argv[2])
    if local is None or n is None:
        raise CommandError(errors.NOT_INTEGER)
    t = _timeout(argv[3])
    if repl.role == "slave":
        raise CommandError("ERR WAITAOF cannot be used with replica instances. Please also note that "
                           "writes to replicas are just local and are not propagated.")
    if local and c.server.persistence.log is None:
        raise CommandError("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
    return repl.waits.waitaof(c, local, n, t, c.multi is not None)


@command("failover", -1, "admin noscript stale", acl="@admin @slow @dangerous", group="server",
         since="6.2.0", fast_path=False)
def failover(c, argv):
    """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] -- hand the primary role to a replica."""
    from replication.failover import parse_and_start
    from server.pause import WRITE, pause_of

    return parse_and_start(c, argv, WRITE, pause_of(c.server))


def start_from_config(server) -> None:
    """``replicaof host port`` in the configuration: replicate from the start."""
    text = server.config["replicaof"].split()
    if len(text) == 2:
        try:
            port = int(text[1])
        except ValueError:
            log.error("replicaof %r: the port is not a number", server.config["replicaof"])
            return
        server.repl.become_replica(text[0], port)

