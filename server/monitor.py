"""MONITOR: every command the server runs, as a line to each monitoring client.

A line is ``+<unix seconds>.<microseconds> [<db> <addr>] "arg" "arg" …``, each
argument quoted the way Redis quotes one (``quote``: backslash escapes for
``\\``, ``"``, ``\\n``, ``\\r``, ``\\t``, ``\\a``, ``\\b``, ``\\xNN`` for any other
byte outside printable ASCII). ``<addr>`` is the client's address, or ``lua``
for a command a script ran through ``redis.call`` (with the script's current
database).

What is shown, and when, as Redis 7.0 shows it (checked side by side in
tests/integration/test_monitor.py):

- a command is fed after it ran (so ``SELECT 3`` already shows ``[3 …]``),
  failed ones included (``-WRONGTYPE``); a command refused before it ran
  (unknown, arity, NOAUTH, NOPERM, …) is not shown;
- commands flagged ``admin`` (CONFIG, DEBUG, SLOWLOG, LATENCY, CLIENT LIST,
  ACL SETUSER, SAVE, SHUTDOWN, MONITOR, …) are never shown;
- EVAL/FCALL and their variants (flagged ``skip_monitor``) are fed *before*
  they run, so the commands their script runs follow them;
- inside MULTI nothing is shown at queue time: MULTI when it runs, then each
  queued command as EXEC runs it, then EXEC;
- passwords are redacted: ``AUTH``'s arguments, ``HELLO … AUTH user pass``,
  ``MIGRATE … AUTH pass`` / ``AUTH2 user pass`` show ``(redacted)`` (the same
  argv goes to the slow log, ``redacted``).

While a client monitors, ``Server.full_dispatch("monitor", True)`` gates every
client, so every command reaches ``dispatch.slow_call``, where it is fed; the
hooks (dispatch, EXEC's loop, ``redis.call``) test ``server.monitors`` once and
cost nothing otherwise. A monitoring client may still run commands that touch
no key and replicate nothing (PING, INFO, CLIENT, SUBSCRIBE, QUIT, RESET…);
the others are refused as Redis refuses a replica's. RESET ends monitoring.
"""

from __future__ import annotations

import time

MONITOR_FLAG = "O"  # in CLIENT LIST's flags
KEYSPACE_REFUSED = "ERR Replica can't interact with the keyspace"
IN_TRANSACTION = "ERR MONITOR isn't allowed for DENY BLOCKING client"
_REDACTED = b"(redacted)"

# Commands Redis flags may_replicate that Keel's table does not (a monitor may
# not run them either).
_MAY_REPLICATE = frozenset(("eval", "evalsha", "fcall", "publish", "spublish"))

# byte -> its quoted form (printable ASCII stands for itself).
_QUOTE = [bytes([b]) if 32 <= b < 127 else b"\\x%02x" % b for b in range(256)]
for _b, _q in ((92, b"\\\\"), (34, b'\\"'), (10, b"\\n"), (13, b"\\r"), (9, b"\\t"), (7, b"\\a"), (8, b"\\b")):
    _QUOTE[_b] = _q
_PLAIN = frozenset(b for b in range(32, 127) if b not in (92, 34))


def quote(arg: bytes) -> bytes:
    """``arg`` in double quotes, escaped as Redis's MONITOR and CLIENT LIST show it."""
    if all(map(_PLAIN.__contains__, arg)):
        return b'"' + arg + b'"'
    return b'"' + b"".join(map(_QUOTE.__getitem__, arg)) + b'"'


def redacted(argv: list) -> list:
    """``argv`` with its passwords replaced (AUTH, HELLO … AUTH, MIGRATE … AUTH/AUTH2)."""
    name = argv[0].lower()
    if name == b"auth":
        return [argv[0]] + [_REDACTED] * (len(argv) - 1)
    if name == b"hello":
        out = list(argv)
        for i in range(2, len(out) - 2):
            if out[i].lower() == b"auth":
                out[i + 1] = out[i + 2] = _REDACTED
                break
        return out
    if name == b"migrate":
        out = list(argv)
        for i in range(6, len(out)):
            opt = out[i].lower()
            if opt == b"keys":
                break
            if opt == b"auth" and i + 1 < len(out):
                out[i + 1] = _REDACTED
                break
            if opt == b"auth2" and i + 2 < len(out):
                out[i + 1] = out[i + 2] = _REDACTED
                break
        return out
    return argv


_SECRET = frozenset((b"auth", b"AUTH", b"hello", b"HELLO", b"migrate", b"MIGRATE"))


def line(db: int, addr: str, argv: list) -> bytes:
    us = time.time_ns() // 1000
    if argv[0] in _SECRET or argv[0].lower() in _SECRET:
        argv = redacted(argv)
    return b"+%d.%06d [%d %s] %s\r\n" % (us // 1_000_000, us % 1_000_000, db, addr.encode(),
                                         b" ".join(map(quote, argv)))


def shown(stat) -> bool:
    flags = stat.flags
    return "admin" not in flags and "skip_monitor" not in flags and (
        stat.parent is None or "admin" not in stat.parent.flags)


def feed(server, client, stat, argv: list, addr: str | None = None) -> None:
    """Send ``argv`` (``stat`` ran it, or is about to) to every monitor."""
    out = line(client.db.index, client.addr if addr is None else addr, argv)
    for m in list(server.monitors):
        conn = m.conn
        if conn is None or conn.closed:
            detach(server, m)
        elif m.reply_mode == "on":
            if m is client:  # its own command: after its reply, as Redis writes it
                server.loop.call_soon(conn.push, out)
            else:
                conn.push(out)


def after_call(server, client, stat, argv: list) -> None:
    """The dispatch's hook once ``stat`` ran (or failed while running)."""
    if shown(stat):
        feed(server, client, stat, argv)


def before_call(server, client, stat, argv: list) -> None:
    """The dispatch's hook before ``stat`` runs: scripts are shown before the
    commands they run (they are flagged ``skip_monitor`` for the hook after)."""
    if "skip_monitor" in stat.flags and "admin" not in stat.flags:
        feed(server, client, stat, argv)


def script_call(server, client, stat, argv: list) -> None:
    """``redis.call`` ran ``argv`` for ``client``'s script."""
    if shown(stat):
        feed(server, client, stat, argv, "lua")


def refuses(client, stat) -> bool:
    """A monitoring client may not run a command that reads, writes or may replicate."""
    return client.flags == MONITOR_FLAG and (
        stat.is_write or "readonly" in stat.flags or "may_replicate" in stat.flags
        or (stat.parent or stat).name in _MAY_REPLICATE)


def attach(server, client) -> None:
    client.flags = MONITOR_FLAG
    if client not in server.monitors:
        server.monitors.append(client)
    server.full_dispatch("monitor", True)


def detach(server, client) -> None:
    if client in server.monitors:
        server.monitors.remove(client)
    if client.flags == MONITOR_FLAG:
        client.flags = "N"
    if not server.monitors:
        server.full_dispatch("monitor", False)
