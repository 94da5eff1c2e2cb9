"""Dispatch: the checks a command passes before it runs, in Redis's order.

unknown command -> arity -> authentication -> ACL (``server.acl``: for a
client whose user is restricted; a refusal is logged in ACL LOG) -> OOM (``server.eviction``) -> read-only replica ->
loading -> a busy script (-BUSY) -> pub/sub context (RESP2) -> CLIENT PAUSE -> MULTI queueing. A command refused on
the way inside MULTI makes EXEC answer EXECABORT (``refuse``). The fast path in ``server.protocol`` inlines the common case (known
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
from itertools import repeat

from engine import errors
from engine.commands.blocking import WouldBlock
from engine.errors import CommandError
from engine.registry import TABLE
from engine.reply import QUEUED, Raw
from server import acl, monitor, slowlog
from server.resp import encode_error

log = logging.getLogger("keel.dispatch")

NO_REPLY = Raw(b"")


def _unknown(argv: list) -> CommandError:
    name = argv[0]
    if not isinstance(name, bytes):
        return CommandError(errors.PROTO_EXPECTED_DOLLAR.format("?"))
    # Counted in bytes, each cut at a NUL (Redis formats them with %s) and
    # quoted raw (server.resp.encode_error turns the escaped bytes back).
    args = b""
    for a in argv[1:]:
        if len(args) >= 128:
            break
        s = a if isinstance(a, bytes) else str(a).encode()
        args += b"'" + s.partition(b"\0")[0][: 128 - len(args)] + b"' "
    return CommandError(errors.UNKNOWN_COMMAND.format(name.partition(b"\0")[0][:128].decode("utf-8", "surrogateescape"),
                                                      args.decode("utf-8", "surrogateescape")))


def noperm(user, cmd, argv: list, denied: tuple) -> str:
    """The NOPERM error of an ACL refusal ``(result, index)``, in Redis 7.2's words."""
    result, idx = denied
    return "NOPERM " + acl.message(result, user, cmd, argv[idx])


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


# What a RESP2 client subscribed to something may still send (Redis's list).
SUBSCRIBED_OK = frozenset((
    "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
    "ping", "quit", "reset",
))

# What runs at once inside MULTI instead of being queued.
MULTI_RUNS = frozenset(("exec", "discard", "multi", "watch", "quit", "reset"))


def refuse(client, cmd, e: CommandError):
    """A command refused before it ran; inside MULTI it also dooms EXEC.

    EXEC itself refused (wrong arity, NOAUTH, NOPERM, …) aborts the
    transaction, in MULTI or not (its WATCHes go too), and answers
    ``-EXECABORT Transaction discarded because of: <the refusal>``, as Redis does.
    """
    if cmd is not None and cmd.name == "exec":
        from server.multi import discard_transaction

        discard_transaction(client)
        text = e.text[4:] if e.text.startswith("ERR ") else e.text  # Redis quotes the message, not its ERR
        e = CommandError("EXECABORT Transaction discarded because of: " + text)
    elif client.multi is not None:
        client.multi_error = True
    if client.tracking is not None:
        client.tracking.caching = False  # CLIENT CACHING covers the next command, run or refused
    return deliver(client, rejected(cmd, e, client.server))


def slow_call(client, cmd, argv: list):
    server = client.server
    if cmd is None and type(argv[0]) is bytes:
        cmd = TABLE.get(argv[0].lower())
    if cmd is None:
        return refuse(client, None, _unknown(argv))
    if not all(map(isinstance, argv, repeat(bytes))):  # in C
        client.close_after_reply = True
        return rejected(cmd, CommandError(errors.PROTO_EXPECTED_DOLLAR.format("?")), server)
    if not cmd.arity_ok(len(argv)):
        return refuse(client, cmd, CommandError(errors.WRONG_ARITY.format(cmd.name)))
    stat = cmd  # what INFO commandstats counts: the subcommand, as Redis does
    if cmd.subcommands and len(argv) > 1:
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is None:
            return refuse(client, cmd, CommandError(errors.UNKNOWN_SUBCOMMAND.format(
                argv[1].partition(b"\0")[0][:128].decode("utf-8", "surrogateescape"), cmd.name.upper())))
        if not sub.arity_ok(len(argv)):
            return refuse(client, sub, CommandError(errors.WRONG_ARITY.format(sub.fullname)))
        stat = sub
    if not client.authenticated and "no-auth" not in stat.flags:
        return refuse(client, stat, CommandError(errors.NOAUTH))
    if client.user.restricted:
        denied = server.acl.refusal(client, stat, argv, "toplevel" if client.multi is None else "multi")
        if denied is not None:
            return refuse(client, stat, CommandError(noperm(client.user, stat, argv, denied)))
    if client.multi is not None and "no_multi" in stat.flags:  # SAVE, SHUTDOWN, … (Redis's place for it)
        return refuse(client, stat, CommandError(errors.NOT_IN_MULTI))
    if server.eviction.limit and server.eviction.refuses(client, cmd, stat, argv):  # server.eviction
        return refuse(client, stat, CommandError(errors.OOM))
    if server.full_dispatch_reasons:  # replication's gates (replication/)
        repl = server.repl
        if repl.waits.refusing is not None:
            why = repl.waits.refusal(client, stat)
            if why is not None:
                return refuse(client, stat, CommandError(why))
        if repl.role == "slave":
            if repl.refuses_write(client, stat):
                return refuse(client, stat, CommandError(errors.READONLY))
            if repl.stale() and "stale" not in stat.flags and not client.is_master:
                return refuse(client, stat, CommandError(errors.MASTERDOWN))
    if server.loading and "loading" not in stat.flags:
        return refuse(client, stat, CommandError(errors.LOADING))
    if server.busy_run is not None and (  # a script past busy-reply-threshold (server.scripting.busy)
            "allow_busy" not in stat.flags or (cmd.name == "shutdown" and b"nosave" not in map(bytes.lower, argv))):
        return refuse(client, stat, CommandError(
            errors.BUSY_SCRIPT if server.busy_run.kind == "script" else errors.BUSY_FUNCTION))
    if server.monitors and monitor.refuses(client, stat):  # a monitoring client touches no key
        return refuse(client, stat, CommandError(monitor.KEYSPACE_REFUSED))
    if client.pubsub is not None and client.protocol == 2 and cmd.name not in SUBSCRIBED_OK:
        return refuse(client, stat, CommandError(errors.SUBSCRIBED_CONTEXT.format(stat.fullname)))
    if server.full_dispatch_reasons and "pause" in server.full_dispatch_reasons and server.pause.holds(
            client, cmd, stat, argv):  # CLIENT PAUSE (server.pause): no reply until it ends
        return server.pause.hold(client, stat, argv)
    if client.multi is not None and cmd.name not in MULTI_RUNS:
        client.multi.append((cmd, stat, argv))  # run by EXEC (server.multi)
        return deliver(client, QUEUED)
    # CLIENT LIST's cmd= field: kept by the full dispatch only, so it names
    # the last command that took it (the hot path keeps no per-call state).
    client.last_cmd = stat.fullname
    if server.monitors:  # scripts are shown before the commands they run (server.monitor)
        monitor.before_call(server, client, stat, argv)
    out = run(client, cmd, stat, argv)
    if server.eviction.access.mode:  # an LRU/LFU policy: the command touched its keys
        server.eviction.touch_after(client, stat, argv)
    if server.monitors:
        monitor.after_call(server, client, stat, argv)
    if type(out) is WouldBlock:  # nothing to take yet: the reply comes when it is served
        return server.blocking.park(client, stat, out, argv)
    if server.blocking.ready:  # this command changed keys blocked clients wait on
        server.blocking.serve()
    if client.tracking is not None:
        out = server.tracking.after_command(client, stat, argv, out)
    out = deliver(client, out)
    if server.pubsub.later:  # messages the command sent this client: after its reply
        out = server.pubsub.after_command(client, out)
    return out


def run(client, cmd, stat, argv: list):
    """Run one command that passed every check: its encoded reply (a
    ``WouldBlock`` when it must wait), counted and timed in INFO commandstats,
    and handed to ``slowlog.timed`` (slow log, latency events and histograms).
    (EXEC runs its queued handlers in a loop of its own: ``server.multi``.)
    """
    server = client.server
    t0 = time.perf_counter_ns()
    try:
        r = cmd.handler(client, argv)
        if type(r) is WouldBlock:
            return r
        out = r if type(r) is Raw else client.encode(r)
        stat.calls += 1
        stat.timed_calls += 1
        ns = time.perf_counter_ns() - t0
        stat.usec += ns
        if ns >= server.timed_ns:
            slowlog.timed(client, stat, argv, ns)
    except CommandError as e:
        out = failed(server, stat, e)
        ns = time.perf_counter_ns() - t0
        if ns >= server.timed_ns:  # a failed call is logged too, as Redis logs it
            slowlog.timed(client, stat, argv, ns)
    except Exception as e:  # a bug: answer, log, keep serving
        out = crashed(server, stat, argv, e)
    return out


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
