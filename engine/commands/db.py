"""Database-wide commands: SELECT, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB."""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK
from engine.util import parse_int


@command("select", 2, "loading stale fast", acl="@keyspace @fast", group="connection", since="1.0.0")
def select(c, argv):
    """SELECT index -- change the selected database. O(1)."""
    index = parse_int(argv[1])
    if not 0 <= index < len(c.ks.dbs):
        raise CommandError(errors.INVALID_DB)
    c.select(index)
    return OK


def _flush_mode(argv, name: str) -> None:
    if len(argv) > 2:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2 and argv[1].upper() not in (b"ASYNC", b"SYNC"):
        raise CommandError(errors.SYNTAX)


@command("flushdb", -1, "write", acl="@keyspace @write @slow @dangerous", group="server")
def flushdb(c, argv):
    """FLUSHDB [ASYNC|SYNC] -- delete every key of the selected database. O(N)."""
    _flush_mode(argv, "flushdb")
    c.db.clear()
    c.emit([b"FLUSHDB"])
    return OK


@command("flushall", -1, "write", acl="@keyspace @write @slow @dangerous", group="server")
def flushall(c, argv):
    """FLUSHALL [ASYNC|SYNC] -- delete every key of every database. O(N)."""
    _flush_mode(argv, "flushall")
    c.ks.flushall()
    c.emit([b"FLUSHALL"])
    return OK


@command("dbsize", 1, "readonly fast", acl="@keyspace @read @fast", group="server")
def dbsize(c, argv):
    """DBSIZE -- the number of keys in the selected database. O(1)."""
    return len(c.db.data)
