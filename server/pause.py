"""CLIENT PAUSE / UNPAUSE: hold clients' commands for a while, in arrival order.

While a pause is on, ``Server.full_dispatch("pause", True)`` routes every
command through ``server.dispatch.slow_call``, which asks ``Pause.holds``
just before MULTI queueing (where Redis checks: after arity, auth, ACL and
the other refusals, so a command with a wrong argument count is answered at
once). A held command is taken off its connection and kept; the client is
parked in ``server.blocking`` with no key and no deadline, which stops its
connection from running anything else (what it sends meanwhile waits in the
connection's buffer, as for BLPOP) and counts it in INFO blocked_clients with
flag ``b``, as Redis shows a postponed client.

Modes, as Redis 6.2+ has them: ``ALL`` holds every command; ``WRITE`` holds
the commands that may write or feed the replication stream: those flagged
``write`` or ``may_replicate`` (PFCOUNT), PUBLISH and SPUBLISH, EVAL/EVALSHA
unless the script's shebang says ``no-writes``, FCALL unless the function
does, and EXEC when a queued command would be held. Replicas are never held.
A second PAUSE keeps the stricter mode and the later end. The pausing client
is held too for its later commands (Redis does the same); a pause that
starts inside MULTI takes effect after the EXEC.

While paused, keys are not expired (``ks.expire_on_lookup`` off: a due key
reads as missing but stays, as on a replica, and active expiry stops), and
``writes_paused`` tells the eviction code to evict nothing, as in Redis.

When the pause ends (its timer, or UNPAUSE), the held clients run their held
command in the order they arrived, each then the rest of what it sent, one
client after the other, from a callback of their own (never inside another
client's command).
"""

from __future__ import annotations

import time

from engine.commands.blocking import WouldBlock

ALL = 2
WRITE = 1

# Commands that never carry the write flag but feed the replication stream.
_PUBLISHERS = frozenset(("publish", "spublish"))


def pause_of(server) -> "Pause":
    """The server's pause state (made on first use)."""
    p = server.__dict__.get("pause")
    if p is None:
        p = server.pause = Pause(server)
    return p


class Pause:
    __slots__ = ("server", "mode", "end", "timer", "held", "stopped_expiry")

    def __init__(self, server):
        self.server = server
        self.mode = 0  # 0 (none), WRITE or ALL
        self.end = 0.0  # time.monotonic() when it ends
        self.timer = None
        self.held: list = []  # clients held, oldest first
        self.stopped_expiry = False  # this pause turned ks.expire_on_lookup off

    # -- starting and ending -------------------------------------------------
    def pause(self, mode: int, timeout_ms: int) -> None:
        """Pause for ``timeout_ms`` in ``mode``: a pause already on keeps the
        stricter mode and the later end."""
        server = self.server
        end = time.monotonic() + timeout_ms / 1000.0
        if self.mode:
            mode = max(mode, self.mode)
            end = max(end, self.end)
        else:
            server.full_dispatch("pause", True)
            ks = server.ks
            if ks.expire_on_lookup:
                ks.expire_on_lookup = False
                self.stopped_expiry = True
        self.mode = mode
        if end != self.end or self.timer is None:
            self.end = end
            if self.timer is not None:
                self.timer.cancel()
            # (A timer far ahead is re-armed when it fires: see _timed_out.)
            self.timer = server.loop.call_later(min(end - time.monotonic(), 86400.0), self._timed_out)

    def _timed_out(self) -> None:
        self.timer = None
        left = self.end - time.monotonic()
        if left > 0.0005:
            self.timer = self.server.loop.call_later(min(left, 86400.0), self._timed_out)
            return
        self.unpause()

    def unpause(self) -> None:
        """End the pause (if any); the held clients run from the next turn of the loop."""
        if not self.mode:
            return
        server = self.server
        self.mode = 0
        self.end = 0.0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.stopped_expiry:
            server.ks.expire_on_lookup = True
            self.stopped_expiry = False
        server.full_dispatch("pause", False)
        held, self.held = self.held, []
        if held:
            server.loop.call_soon(self._resume, held)

    def writes_paused(self) -> bool:
        """Whether the dataset must not change by itself (expiry, eviction)."""
        return self.mode != 0

    # -- holding -------------------------------------------------------------
    def holds(self, client, cmd, stat, argv: list) -> bool:
        """Whether ``argv`` (its table entries ``cmd``/``stat``) must wait for the pause to end."""
        if not self.mode or "S" in client.flags:
            return False
        if self.mode == ALL:
            return True
        return self.may_write(client, cmd, stat, argv)

    def may_write(self, client, cmd, stat, argv: list) -> bool:
        """The WRITE pause's rule (see the module docstring)."""
        flags = stat.flags
        if "write" in flags or "may_replicate" in flags:
            return True
        name = cmd.name
        if name in _PUBLISHERS:
            return True
        if name == "exec":
            return client.multi is not None and any(
                self.may_write(client, c, s, a) for c, s, a in client.multi)
        if name in ("eval", "evalsha"):
            return not _script_no_writes(client, argv, name == "evalsha")
        if name == "fcall":
            fn = client.ks.scripting.functions.get(argv[1])
            return fn is None or not fn.no_writes
        return False

    def hold(self, client, stat, argv: list) -> None:
        """Park ``client`` with ``argv`` until the pause ends (no reply now)."""
        client.last_cmd = stat.fullname  # CLIENT LIST names the held command, as Redis does
        client.paused_argv = argv
        self.held.append(client)
        self.server.blocking.park(client, stat, WouldBlock((), "pause", 0, None, None))

    def _resume(self, held: list) -> None:
        from server import dispatch

        for client in held:
            argv = client.paused_argv
            if argv is None:
                continue
            client.paused_argv = None
            self.server.blocking.forget(client)
            conn = client.conn
            if conn is None or conn.closed:
                continue
            # The command goes through every check again (a new pause holds it anew).
            out = dispatch.call(client, argv)
            if out is not None and not conn.closed:
                conn._write([out])
            if client.blocked is None and not conn.closed and not client.close_after_reply:
                # The rest of what it sent, now, before the next held client.
                if conn.pending:
                    conn._drain_pending()
                elif client.authenticated:
                    conn.pending = None


def _script_no_writes(client, argv: list, by_sha: bool) -> bool:
    """Whether EVAL/EVALSHA ``argv`` runs a script whose shebang says no-writes."""
    from server.scripting.eval import parse_shebang

    if by_sha:
        script = client.ks.scripting.scripts.get(argv[1].lower())
        return script is not None and script.no_writes
    body = argv[1]
    if not body.startswith(b"#!"):
        return False
    try:
        flags = parse_shebang(body)[0]
    except Exception:  # noqa: BLE001 - a bad shebang: EVAL answers its error once it runs
        return False
    return b"no-writes" in flags
