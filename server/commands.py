"""Connection and server commands: those that need the server, not only the keyspace."""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK, PONG
from server.dispatch import NO_REPLY


@command("ping", -1, "fast", acl="@fast @connection", group="connection")
def ping(c, argv):
    """PING [message] -- PONG, or the message. O(1)."""
    if len(argv) == 1:
        return PONG
    if len(argv) == 2:
        return argv[1]
    raise CommandError(errors.WRONG_ARITY.format("ping"))


@command("echo", 2, "fast", acl="@fast @connection", group="connection")
def echo(c, argv):
    """ECHO message -- the message. O(1)."""
    return argv[1]


@command("quit", -1, "allow_busy noscript loading stale fast no-auth", acl="@fast @connection", group="connection",
         fast_path=False)
def quit_(c, argv):
    """QUIT -- reply OK and close the connection."""
    c.close_after_reply = True
    return OK
