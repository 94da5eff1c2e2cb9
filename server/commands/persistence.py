"""Persistence commands: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE.

In Keel a *checkpoint* (the keyspace written into LMDB as of one log offset)
plays the part of Redis's RDB snapshot, and it also plays the part of an AOF
rewrite: once it is written, the log segments before it are deleted. So
BGREWRITEAOF starts a background checkpoint, as BGSAVE does.
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK, Status


def _persistence(c):
    p = c.server.persistence
    if p.checkpointer is None:
        raise CommandError(errors.NO_CHECKPOINTER)
    return p


@command("save", 1, "admin noscript no_async_loading no_multi", acl="@admin @slow @dangerous",
         group="server", fast_path=False)
def save(c, argv):
    """SAVE -- write a checkpoint now, blocking every client until it is on disk."""
    p = _persistence(c)
    if p.bgsave_task is not None:
        raise CommandError(errors.BGSAVE_IN_PROGRESS)
    try:
        p.save()
    except Exception as e:
        raise CommandError(f"ERR checkpoint failed: {e}") from None
    return OK


@command("bgsave", -1, "admin noscript no_async_loading", acl="@admin @slow @dangerous",
         group="server", fast_path=False)
def bgsave(c, argv):
    """BGSAVE [SCHEDULE] -- capture the changes now, write them in the background."""
    if len(argv) > 2 or (len(argv) == 2 and argv[1].upper() != b"SCHEDULE"):
        raise CommandError(errors.SYNTAX)
    p = _persistence(c)
    if not p.bgsave():
        raise CommandError(errors.BGSAVE_IN_PROGRESS)
    return Status("Background saving started")


@command("bgrewriteaof", 1, "admin noscript no_async_loading", acl="@admin @slow @dangerous",
         group="server", fast_path=False)
def bgrewriteaof(c, argv):
    """BGREWRITEAOF -- in Keel, a background checkpoint (it truncates the log)."""
    p = _persistence(c)
    if p.bgsave_task is None:
        p.bgsave()
    return Status("Background append only file rewriting started")


@command("lastsave", 1, "loading stale fast", acl="@admin @fast @dangerous", group="server",
         tips="nondeterministic_output")
def lastsave(c, argv):
    """LASTSAVE -- unix time of the last successful checkpoint."""
    return c.server.persistence.last_save_time
