"""The operator's views of what the server runs: MONITOR, SLOWLOG, LATENCY.

The state lives in ``server.monitor`` (the monitoring clients and their lines),
``server.slowlog`` (the slow log, and ``timed``: where every timed call ends)
and ``server.latency`` (events and per-command histograms); ``attach`` wires
them to a ``Server`` when it is made (one hook in ``Server.__init__``). INFO
latencystats is registered here.
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, lookup, subcommand
from engine.reply import OK, Raw, Verbatim, help_lines
from engine.util import to_int_or_none
from server import info, latency, monitor, slowlog
from server.commands.connection import RESET_HOOKS
from server.dispatch import NO_REPLY

_DIRECTIVES = frozenset(("slowlog-log-slower-than", "latency-monitor-threshold", "latency-tracking"))


def attach(server) -> None:
    """Give ``server`` its monitors, slow log and thresholds, kept up to date with CONFIG SET."""
    server.monitors = []
    server.slowlog = slowlog.SlowLog(server)
    slowlog.configure(server)
    slowlog.time_slow_commands()

    def changed(name: str, value) -> None:
        if name in _DIRECTIVES:
            slowlog.configure(server)

    server.config.listeners.append(changed)


def _reset(client) -> None:
    if client.flags == monitor.MONITOR_FLAG:
        monitor.detach(client.server, client)


RESET_HOOKS.append(_reset)


# INFO latencystats: in ``all`` and ``everything``, not in the default INFO;
# placed after errorstats as Redis prints it (cluster and keyspace move after it).
info.register_section("latencystats", "Latencystats", latency.info_section, default=False)
for _name in ("cluster", "keyspace"):
    if _name in info.SECTIONS:
        info.SECTIONS[_name] = info.SECTIONS.pop(_name)


# --- MONITOR -----------------------------------------------------------------------

@command("monitor", 1, "admin noscript loading stale", acl="@admin @slow @dangerous", group="server",
         since="1.0.0", fast_path=False)
def monitor_(c, argv):
    """MONITOR -- stream every command the server runs to this connection. O(1)."""
    if c.ks.scripting.in_exec:  # run by EXEC: Redis refuses it to a client that expects one reply a command
        raise CommandError(monitor.IN_TRANSACTION)
    if c.flags == monitor.MONITOR_FLAG:
        return NO_REPLY  # already monitoring: Redis answers nothing
    monitor.attach(c.server, c)
    return OK


# --- SLOWLOG -----------------------------------------------------------------------

@command("slowlog", -2, "", acl="@slow", group="server", since="2.2.12", fast_path=False)
def slowlog_(c, argv):
    """SLOWLOG subcommand [arg ...] -- the commands that took longer than slowlog-log-slower-than."""
    return dispatch_subcommand(slowlog_.command, c, argv)


_ADMIN = "admin loading stale"
_ADMIN_ACL = "@admin @slow @dangerous"


@subcommand("slowlog", "get", -2, _ADMIN, acl=_ADMIN_ACL, since="2.2.12",
            tips="request_policy:all_nodes nondeterministic_output")
def slowlog_get(c, argv):
    """SLOWLOG GET [count] -- the newest ``count`` entries (10; -1: all). O(N) in the entries returned."""
    if len(argv) > 3:
        raise CommandError(errors.SUBCOMMAND_SYNTAX.format("GET", "SLOWLOG"))
    count = 10
    if len(argv) == 3:
        count = to_int_or_none(argv[2])  # Redis's integers: no sign, space or leading zero beyond "-"
        if count is None or count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    return c.server.slowlog.get(count)


@subcommand("slowlog", "len", 2, _ADMIN, acl=_ADMIN_ACL, since="2.2.12",
            tips="request_policy:all_nodes response_policy:agg_sum nondeterministic_output")
def slowlog_len(c, argv):
    """SLOWLOG LEN -- the number of entries. O(1)."""
    return len(c.server.slowlog.entries)


@subcommand("slowlog", "reset", 2, _ADMIN, acl=_ADMIN_ACL, since="2.2.12",
            tips="request_policy:all_nodes response_policy:all_succeeded")
def slowlog_reset(c, argv):
    """SLOWLOG RESET -- drop every entry. O(N)."""
    c.server.slowlog.reset()
    return OK


@subcommand("slowlog", "help", 2, "loading stale", acl="@slow", since="6.2.0")
def slowlog_help(c, argv):
    """SLOWLOG HELP -- the subcommands of SLOWLOG. O(1)."""
    return help_lines("SLOWLOG", (
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
    ))


# --- LATENCY -----------------------------------------------------------------------

@command("latency", -2, "", acl="@slow", group="server", since="2.8.13", fast_path=False)
def latency_(c, argv):
    """LATENCY subcommand [arg ...] -- latency events and per-command latency histograms."""
    return dispatch_subcommand(latency_.command, c, argv)


_LAT = "admin noscript loading stale"
_SPECIAL = "nondeterministic_output request_policy:all_nodes response_policy:special"


@subcommand("latency", "latest", 2, _LAT, acl=_ADMIN_ACL, since="2.8.13", tips=_SPECIAL)
def latency_latest(c, argv):
    """LATENCY LATEST -- each event's latest sample: [event, unix time, ms, all-time max ms]. O(events)."""
    return [[name.encode(), e.samples[-1][0], e.samples[-1][1], e.max]
            for name, e in latency.EVENTS.items() if e.samples]


@subcommand("latency", "history", 3, _LAT, acl=_ADMIN_ACL, since="2.8.13", tips=_SPECIAL)
def latency_history(c, argv):
    """LATENCY HISTORY event -- the event's samples, oldest first: [unix time, ms] (empty when unknown). O(160)."""
    e = latency.EVENTS.get(argv[2].decode("utf-8", "surrogateescape"))
    return [] if e is None else [[t, ms] for t, ms in e.samples]


@subcommand("latency", "reset", -2, _LAT, acl=_ADMIN_ACL, since="2.8.13",
            tips="request_policy:all_nodes response_policy:all_succeeded")
def latency_reset(c, argv):
    """LATENCY RESET [event ...] -- forget the events (all of them by default): how many were forgotten."""
    names = [a.decode("utf-8", "surrogateescape") for a in argv[2:]]
    return latency.reset(names or None)


@subcommand("latency", "graph", 3, _LAT, acl=_ADMIN_ACL, since="2.8.13", tips=_SPECIAL)
def latency_graph(c, argv):
    """LATENCY GRAPH event -- an ASCII graph of the event's samples. O(160)."""
    name = argv[2].decode("utf-8", "surrogateescape")
    text = latency.graph(name)
    if text is None:
        raise CommandError(f"ERR No samples available for event '{name}'")
    return Verbatim(text.encode("utf-8", "surrogateescape"))


@subcommand("latency", "doctor", 2, _LAT, acl=_ADMIN_ACL, since="2.8.13", tips=_SPECIAL)
def latency_doctor(c, argv):
    """LATENCY DOCTOR -- a report on the events, in words. O(events)."""
    return Verbatim(latency.doctor().encode())


@subcommand("latency", "histogram", -2, _LAT, acl=_ADMIN_ACL, since="7.0.0", tips=_SPECIAL)
def latency_histogram(c, argv):
    """LATENCY HISTOGRAM [command ...] -- per command: {calls, histogram_usec: {bucket µs: cumulative calls}}.

    Without names, every command with calls; a name of a command with
    subcommands stands for each of them; unknown names are left out."""
    hists = latency.HISTOGRAMS
    if len(argv) == 2:
        chosen = [cmd for cmd, h in hists.items() if h.total]
    else:
        chosen = []
        for name in argv[2:]:
            cmd = lookup(name.split(b"|")[0])
            if cmd is None:
                continue
            if b"|" in name:
                cmd = cmd.subcommands.get(name.split(b"|", 1)[1].lower())
                if cmd is None:
                    continue
                chosen.append(cmd)
            elif cmd.subcommands:
                chosen.extend(cmd.subcommands.values())
            else:
                chosen.append(cmd)
    pairs = []
    for cmd in chosen:
        h = hists.get(cmd)
        if h is None or not h.total:
            continue
        pairs.append((cmd.fullname.encode(), {b"calls": h.total, b"histogram_usec": h.buckets()}))
    if len({name for name, _ in pairs}) == len(pairs):
        return dict(pairs)
    # The same command asked twice: Redis repeats it (a map with a repeated key).
    enc = c.encode
    body = b"".join(enc(k) + enc(v) for k, v in pairs)
    head = b"%%%d\r\n" % len(pairs) if c.protocol == 3 else b"*%d\r\n" % (2 * len(pairs))
    return Raw(head + body)


@subcommand("latency", "help", 2, "loading stale", acl="@slow", since="2.8.13")
def latency_help(c, argv):
    """LATENCY HELP -- the subcommands of LATENCY. O(1)."""
    return help_lines("LATENCY", (
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
    ))


def client_gone(server, client) -> None:
    """A connection closed (``Server.remove_client``): a monitor stops."""
    if client.flags == monitor.MONITOR_FLAG:
        monitor.detach(server, client)
