"""The hot path's table for clients of restricted users: each command checked by ACL first.

A client whose user is restricted (``User.restricted``) is gated: the hot path
in ``server.protocol`` never runs its commands from ``engine.registry.FAST``.
When ACL is the *only* reason it is gated (``Client.regate`` works that out),
its pipelined commands run from ``GUARDED`` instead: the same rows as
``FAST``, each handler wrapped so that ``Acl.refusal`` (command, keys by their
read/write use, channels; selectors; the ACL LOG entry) decides first, exactly
as ``dispatch.slow_call`` would at that point of its sequence — nothing else
of that sequence applies to such a client (it is authenticated, not loading,
not in MULTI, not subscribed, no busy script, CLIENT REPLY on, no tracking).

A refused command answers ``-NOPERM`` through ``dispatch.refuse`` (counted as
a rejected call, as the full dispatch counts it) and runs nothing. Commands
with subcommands are left out (their rules name the subcommand; they take the
full dispatch). The wrappers do not depend on the user, so one table serves
every restricted user; it is built once, on first use.
"""

from __future__ import annotations

from engine.errors import CommandError
from engine.registry import FAST
from engine.reply import Raw

_GUARDED: list | None = None


def _guard(handler, cmd):
    def guarded(c, argv):
        denied = c.server.acl.refusal(c, cmd, argv, "toplevel")
        if denied is None:
            return handler(c, argv)
        from server import dispatch

        cmd.calls -= 1  # the hot path counts the call it ran; a refusal ran nothing
        return Raw(dispatch.refuse(c, cmd, CommandError(dispatch.noperm(c.user, cmd, argv, denied))))
    return guarded


def guarded_table() -> list:
    """``FAST``'s shape (``[argc][name] -> (handler, check, command)``), every handler ACL-checked."""
    global _GUARDED
    if _GUARDED is None:
        wrapped = {}
        table = []
        for row in FAST:
            out = {}
            for name, (handler, check, cmd) in row.items():
                if cmd.subcommands:
                    continue
                key = (id(handler), id(cmd))
                w = wrapped.get(key)
                if w is None:
                    w = wrapped[key] = _guard(handler, cmd)
                out[name] = (w, check, cmd)
            table.append(out)
        _GUARDED = table
    return _GUARDED
