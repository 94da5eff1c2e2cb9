"""Server commands: INFO, TIME, DEBUG, SHUTDOWN.

DEBUG is one command (as in Redis, it declares no subcommands in the command
table); its subcommands live in ``DEBUG_SUBCOMMANDS`` so that other areas can
add theirs with ``debug_subcommand``. SLEEP, SET-ACTIVE-EXPIRE and HELP are
here; OBJECT, RELOAD, DIGEST, POPULATE, PROTOCOL and the rest are in
``server.commands.debug``.
"""

from __future__ import annotations

import time

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK, Verbatim, help_lines
from server import info as info_mod
from server.dispatch import NO_REPLY
from server.commands.config import enabled_for


@command("info", -1, "loading stale", acl="@slow @dangerous", group="server",
         tips="nondeterministic_output request_policy:all_shards response_policy:special")
def info(c, argv):
    """INFO [section ...] -- the server's state as text. O(N) in the number of databases and commands."""
    sections = [a.decode("utf-8", "replace") for a in argv[1:]]
    return Verbatim(info_mod.generate(c.server, sections).encode())


@command("time", 1, "loading stale fast", acl="@fast", group="server", since="2.6.0",
         tips="nondeterministic_output")
def time_(c, argv):
    """TIME -- the server's clock: [unix seconds, microseconds]. O(1)."""
    us = time.time_ns() // 1000
    return [b"%d" % (us // 1_000_000), b"%d" % (us % 1_000_000)]


# --- DEBUG ---------------------------------------------------------------------

# lower-case name -> (min argc incl. DEBUG and name, handler, usage lines, max argc or None)
DEBUG_SUBCOMMANDS: dict = {}


def debug_subcommand(name: str, min_argc: int, usage: tuple = (), max_argc: int | None = None):
    """Register ``DEBUG NAME``: ``handler(c, argv)``, argv starting with DEBUG.

    ``usage`` is what DEBUG HELP shows for it: the syntax, then a description
    indented four spaces. An argument count outside ``min_argc``..``max_argc``
    (None: no upper bound) is Redis's "unknown subcommand or wrong number of
    arguments" error, as Redis tests each subcommand's exact count.
    """

    def register(fn):
        DEBUG_SUBCOMMANDS[name.lower().encode()] = (min_argc, fn, usage, max_argc)
        return fn

    return register


def _loose_float(b: bytes) -> float:
    """A number the way C's atof reads one: a bad value reads as 0."""
    try:
        v = float(b)
    except ValueError:
        return 0.0
    return v if v == v else 0.0


def _loose_int(b: bytes) -> int:
    """A number the way C's atoi reads one: leading digits, else 0."""
    s = b.strip()
    end = 1 if s[:1] in (b"-", b"+") else 0
    while end < len(s) and 48 <= s[end] <= 57:
        end += 1
    try:
        return int(s[:end])
    except ValueError:
        return 0


def _debug_allowed(c) -> bool:
    return enabled_for(c, "enable-debug-command")


@command("debug", -2, "admin noscript loading stale", acl="@admin @slow @dangerous", group="server")
def debug(c, argv):
    """DEBUG subcommand [arg ...] -- testing hooks (DEBUG HELP lists them; most in server.commands.debug)."""
    if not _debug_allowed(c):
        raise CommandError(errors.DEBUG_NOT_ALLOWED)
    entry = DEBUG_SUBCOMMANDS.get(argv[1].lower())
    if entry is None or len(argv) < entry[0] or (entry[3] is not None and len(argv) > entry[3]):
        raise CommandError(errors.DEBUG_UNKNOWN.format(argv[1].decode("utf-8", "replace")))
    return entry[1](c, argv)


@debug_subcommand("sleep", 3, ("SLEEP <seconds>", "    Block the whole server for <seconds>, fractions allowed."),
                  max_argc=3)
def debug_sleep(c, argv):
    seconds = _loose_float(argv[2])
    if seconds > 0:
        time.sleep(seconds)  # blocking on purpose: that is what DEBUG SLEEP tests
    return OK


@debug_subcommand("set-active-expire", 3, ("SET-ACTIVE-EXPIRE 0|1",
                                            "    0 stops the background sweep that deletes expired keys nobody reads",
                                            "    (reads still expire them); 1 turns it back on."), max_argc=3)
def debug_set_active_expire(c, argv):
    c.server.active_expire_enabled = bool(_loose_int(argv[2]))
    return OK


@debug_subcommand("set-disable-deny-scripts", 3, max_argc=3)  # (Redis's DEBUG HELP does not list it either)
def debug_set_disable_deny_scripts(c, argv):
    """1: scripts may call commands flagged ``noscript`` (Redis's test suite uses it); 0: refused again."""
    c.server.disable_deny_scripts = bool(_loose_int(argv[2]))
    return OK


@debug_subcommand("help", 2, max_argc=2)
def debug_help(c, argv):
    return help_lines("DEBUG", [line for name in sorted(DEBUG_SUBCOMMANDS) for line in DEBUG_SUBCOMMANDS[name][2]])


# --- SHUTDOWN ------------------------------------------------------------------

@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", acl="@admin @slow @dangerous",
         group="server", fast_path=False)
def shutdown(c, argv):
    """SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] -- stop the server; the caller gets no reply."""
    opts = set()
    for a in argv[1:]:
        o = a.lower()
        if o not in (b"nosave", b"save", b"now", b"force", b"abort"):
            raise CommandError(errors.SYNTAX)
        opts.add(o)
    if (b"save" in opts and b"nosave" in opts) or (b"abort" in opts and len(argv) > 2):
        raise CommandError(errors.SYNTAX)
    if b"abort" in opts:
        # A shutdown starts at once here (no waiting for replicas), so none is ever pending.
        raise CommandError(errors.NO_SHUTDOWN_IN_PROGRESS)
    # A checkpoint is written on the way out (fast restart) unless NOSAVE;
    # the log is synced either way, so NOSAVE loses nothing under appendonly.
    c.server.request_shutdown(0, save=b"nosave" not in opts)
    c.close_after_reply = True
    return NO_REPLY
