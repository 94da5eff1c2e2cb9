"""CONFIG and its subcommands: read and change directives at run time.

Directives are declared in ``server.config``; CONFIG SET goes through the same
parsers as the config file and applies several pairs atomically. Consumers
read ``server.config[...]`` when they need a value, so a change takes effect
at once (maxclients on the next connection, timeout on the next cron tick,
requirepass on the next AUTH or connection, proto-max-bulk-len on the next
request, appendfsync through ``Config.listeners``).
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import OK, help_lines
from server.config import ConfigError, SetError

_SUB = "admin noscript loading stale"
_ACL = "@admin @slow @dangerous"


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


@command("config", -2, "", acl="@slow", group="server", since="2.0.0", fast_path=False)
def config(c, argv):
    """CONFIG subcommand [arg ...] -- read and change the configuration."""
    return dispatch_subcommand(config.command, c, argv)


@subcommand("config", "get", -3, _SUB, acl=_ACL, since="2.0.0")
def config_get(c, argv):
    """CONFIG GET pattern [pattern ...] -- directives matching any pattern, with their values. O(N)."""
    cfg = c.server.config
    out = {}
    for pattern in argv[2:]:
        for name, value in cfg.get(_text(pattern)).items():
            out[name.encode()] = value.encode("utf-8", "surrogateescape")
    return out


@subcommand("config", "set", -4, _SUB, acl=_ACL, since="2.0.0",
            tips="request_policy:all_nodes response_policy:all_succeeded")
def config_set(c, argv):
    """CONFIG SET directive value [directive value ...] -- change directives, all or none. O(N)."""
    if len(argv) % 2:
        raise CommandError(errors.SYNTAX)
    pairs = [(_text(argv[i]), _text(argv[i + 1])) for i in range(2, len(argv), 2)]
    try:
        c.server.config.set_many(pairs, protected_ok=enabled_for(c, "enable-protected-configs"))
    except SetError as e:
        if e.reason is None:
            raise CommandError(errors.CONFIG_SET_UNKNOWN.format(e.name)) from None
        raise CommandError(errors.CONFIG_SET_FAILED.format(e.name, e.reason)) from None
    return OK


def enabled_for(c, directive: str) -> bool:
    """An ``enable-*-command``/``enable-protected-configs`` directive's verdict for
    client ``c``: ``yes``, or ``local`` and ``c`` on the loopback interface or a Unix socket."""
    mode = c.server.config[directive]
    if mode == "yes":
        return True
    if mode == "local":
        host = c.addr.rsplit(":", 1)[0]
        return host in ("127.0.0.1", "::1") or not c.addr or c.addr.startswith("/")
    return False


def reset_stats(server) -> None:
    """Zero what INFO stats, commandstats and errorstats report."""
    from engine.commands.introspection import all_commands

    server.stats.reset()
    server.stats.total_connections = 0
    server.stats.rejected_connections = 0
    server.ks.expired_keys = 0
    server.ks.evicted_keys = 0
    server.ks.hits = server.ks.misses = 0
    for cmd in all_commands():
        cmd.calls = cmd.usec = cmd.timed_calls = cmd.rejected_calls = cmd.failed_calls = 0
    from server import latency

    latency.reset_histograms()  # INFO latencystats and LATENCY HISTOGRAM start again, as in Redis


@subcommand("config", "resetstat", 2, _SUB, acl=_ACL, since="2.0.0")
def config_resetstat(c, argv):
    """CONFIG RESETSTAT -- zero the statistics INFO reports. O(N) in the number of commands."""
    reset_stats(c.server)
    return OK


@subcommand("config", "rewrite", 2, _SUB, acl=_ACL, since="2.8.0")
def config_rewrite(c, argv):
    """CONFIG REWRITE -- write the running configuration back to the config file. O(N)."""
    cfg = c.server.config
    if not cfg.source_file:
        raise CommandError(errors.CONFIG_NO_FILE)
    try:
        cfg.rewrite()
    except (OSError, ConfigError) as e:
        raise CommandError(errors.CONFIG_REWRITE_FAILED.format(getattr(e, "strerror", None) or e)) from None
    return OK


_HELP = (
    "GET <pattern> [<pattern> ...]",
    "    Every directive whose name matches one of the glob patterns, with its value.",
    "SET <directive> <value> [<directive> <value> ...]",
    "    Change directives while the server runs; if any value is refused, none changes.",
    "RESETSTAT",
    "    Set the counters that INFO reports back to zero.",
    "REWRITE",
    "    Write the running configuration into the file the server was started with.",
)


@subcommand("config", "help", 2, "loading stale", acl="@slow", since="5.0.0")
def config_help(c, argv):
    """CONFIG HELP -- the subcommands of CONFIG. O(1)."""
    return help_lines("CONFIG", _HELP)
