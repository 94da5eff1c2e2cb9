"""Dispatch: the checks a command passes before it runs, in Redis's order.

unknown command -> arity -> authentication -> OOM -> read-only replica ->
loading. The fast path in ``server.protocol`` inlines the common case (known
command, right arity, client not gated) and calls ``slow_call`` for anything
else; ``slow_call`` runs the full sequence. Both count INFO commandstats and
errorstats the same way.

A blocking command that must wait returns a ``WouldBlock``: the client is
parked (``server.blocking``) and answered later. After each command that
made keys ready for blocked clients, they are served (``Blocking.serve``).

A handler may return ``NO_REPLY`` (QUIT's close, CLIENT REPLY OFF): nothing
is written for it. CLIENT REPLY modes are applied here, after the handler
ran, so that every command is subject to them alike.
"""

from __future__ import annotations

import logging
import time

from engine import errors
from engine.commands.blocking import WouldBlock
from engine.errors import CommandError
from engine.registry import TABLE
from engine.reply import Raw
from server.resp import encode_error

log = logging.getLogger("keel.dispatch")

NO_REPLY = Raw(b"")


def _unknown(argv: list) -> CommandError:
    name = argv[0]
    if not isinstance(name, bytes):
        return CommandError(errors.PROTO_EXPECTED_DOLLAR.format("?"))
    args = ""
    for a in argv[1:]:
        if len(args) >= 128:
            break
        s = a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)
        args += "'" + s[: 128 - len(args)] + "' "
    return CommandError(errors.UNKNOWN_COMMAND.format(name.decode("utf-8", "replace")[:128], args))


def rejected(cmd, e: CommandError, server) -> bytes:
    if cmd is not None:
        cmd.rejected_calls += 1
    server.stats.count_error(e.prefix)
    return encode_error(e)


def failed(server, cmd, e: CommandError) -> bytes:
    cmd.failed_calls += 1
    cmd.calls += 1
    server.stats.count_error(e.prefix)
    return encode_error(e)


def crashed(server, cmd, argv: list, exc: Exception) -> bytes:
    log.exception("command %s crashed", cmd.fullname if cmd else argv[:1])
    return failed(server, cmd, CommandError(f"ERR internal error while running '{cmd.fullname}': {type(exc).__name__}"))


def call(client, argv: list):
    """Look up and run ``argv`` with every check; the encoded reply or None."""
    name = argv[0]
    cmd = TABLE.get(name) if type(name) is bytes else None
    if cmd is None and type(name) is bytes:
        cmd = TABLE.get(name.lower())
    return slow_call(client, cmd, argv)


def slow_call(client, cmd, argv: list):
    server = client.server
    if cmd is None and type(argv[0]) is bytes:
        cmd = TABLE.get(argv[0].lower())
    if cmd is None:
        return deliver(client, rejected(None, _unknown(argv), server))
    for a in argv:
        if type(a) is not bytes:
            client.close_after_reply = True
            return rejected(cmd, CommandError(errors.PROTO_EXPECTED_DOLLAR.format("?")), server)
    if not cmd.arity_ok(len(argv)):
        return deliver(client, rejected(cmd, CommandError(errors.WRONG_ARITY.format(cmd.name)), server))
    stat = cmd  # what INFO commandstats counts: the subcommand, as Redis does
    if cmd.subcommands and len(argv) > 1:
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is None:
            return deliver(client, rejected(cmd, CommandError(errors.UNKNOWN_SUBCOMMAND.format(
                argv[1].decode("utf-8", "replace"), cmd.name.upper())), server))
        if not sub.arity_ok(len(argv)):
            return deliver(client, rejected(sub, CommandError(errors.WRONG_ARITY.format(sub.fullname)), server))
        stat = sub
    if not client.authenticated and "no-auth" not in stat.flags:
        return deliver(client, rejected(stat, CommandError(errors.NOAUTH), server))
    if server.loading and "loading" not in stat.flags:
        return deliver(client, rejected(stat, CommandError(errors.LOADING), server))
    # CLIENT LIST's cmd= field: kept by the full dispatch only, so it names
    # the last command that took it (the hot path keeps no per-call state).
    client.last_cmd = stat.fullname
    t0 = time.perf_counter_ns()
    try:
        r = cmd.handler(client, argv)
        if type(r) is WouldBlock:  # nothing to take yet: the reply comes when it is served
            return server.blocking.park(client, stat, r)
        out = r if type(r) is Raw else client.encode(r)
        stat.calls += 1
        stat.timed_calls += 1
        stat.usec += time.perf_counter_ns() - t0
    except CommandError as e:
        out = failed(server, stat, e)
    except Exception as e:  # a bug: answer, log, keep serving
        out = crashed(server, stat, argv, e)
    if server.blocking.ready:  # this command changed keys blocked clients wait on
        server.blocking.serve()
    return deliver(client, out)


def deliver(client, out: bytes):
    """Apply CLIENT REPLY: ``on`` sends, ``off`` drops, ``skip`` drops one."""
    mode = client.reply_mode
    if mode == "on":
        return out or None
    if mode == "skip_next":
        client.reply_mode = "skip"
        return None
    if mode == "skip":
        client.reply_mode = "on"
        client.regate()
        return None
    return None
