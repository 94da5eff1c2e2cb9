"""Database-wide commands: SELECT, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB.

Database numbers are parsed as Redis parses them (a C ``int``): a
non-canonical number is "not an integer", a canonical one outside 32 bits is
"out of range, value must between …", and a 32-bit one outside
``0..databases-1`` is "DB index is out of range". ``parse_db_index`` is the
one place that does this (MOVE and COPY use it too).

Effects: FLUSHDB / FLUSHALL / SWAPDB are journaled as they are; SWAPDB of a
database with itself changes nothing and records nothing.
"""

from __future__ import annotations

from engine import errors, lazyfree
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK
from engine.util import parse_int, to_int_or_none

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def parse_db_index(c, arg: bytes) -> int:
    """A database number for SELECT / MOVE / COPY DB, checked as Redis does."""
    index = parse_int(arg)
    if not INT32_MIN <= index <= INT32_MAX:
        raise CommandError(errors.NOT_INT32)
    if not 0 <= index < len(c.ks.dbs):
        raise CommandError(errors.INVALID_DB)
    return index


@command("select", 2, "loading stale fast", acl="@fast @connection", group="connection", since="1.0.0")
def select(c, argv):
    """SELECT index -- change the selected database. O(1)."""
    c.select(parse_db_index(c, argv[1]))
    return OK


def _flush_lazily(c, argv) -> bool:
    """Whether a FLUSHDB/FLUSHALL frees the old contents later (ASYNC, or no
    mode under lazyfree-lazy-user-flush, engine.lazyfree); SYNC frees them now."""
    if len(argv) > 2:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        mode = argv[1].upper()
        if mode not in (b"ASYNC", b"SYNC"):
            raise CommandError(errors.SYNTAX)
        return mode == b"ASYNC"
    return lazyfree.user_flush(c.ks)


@command("flushdb", -1, "write", acl="@keyspace @write @slow @dangerous", group="server",
         tips="request_policy:all_shards response_policy:all_succeeded")
def flushdb(c, argv):
    """FLUSHDB [ASYNC|SYNC] -- delete every key of the selected database. O(N)."""
    if _flush_lazily(c, argv):
        lazyfree.flush_database(c.ks, c.db)
    else:
        c.db.clear()
    c.emit([b"FLUSHDB"])
    return OK


@command("flushall", -1, "write", acl="@keyspace @write @slow @dangerous", group="server",
         tips="request_policy:all_shards response_policy:all_succeeded")
def flushall(c, argv):
    """FLUSHALL [ASYNC|SYNC] -- delete every key of every database. O(N)."""
    if _flush_lazily(c, argv):
        lazyfree.flush_all(c.ks)
    else:
        c.ks.flushall()
    c.emit([b"FLUSHALL"])
    return OK


@command("dbsize", 1, "readonly fast", acl="@keyspace @read @fast", group="server",
         tips="request_policy:all_shards response_policy:agg_sum")
def dbsize(c, argv):
    """DBSIZE -- the number of keys in the selected database. O(1).

    Like Redis, this counts keys whose TTL ran out but that neither a lookup
    nor the active expiry cycle has removed yet.
    """
    return len(c.db.data)


def _swap_index(c, arg: bytes, invalid: str) -> int:
    index = to_int_or_none(arg)
    if index is None or not INT32_MIN <= index <= INT32_MAX:
        raise CommandError(invalid)
    if not 0 <= index < len(c.ks.dbs):
        raise CommandError(errors.INVALID_DB)
    return index


@command("swapdb", 3, "write fast", acl="@keyspace @write @fast @dangerous", group="server", since="4.0.0")
def swapdb(c, argv):
    """SWAPDB index1 index2 -- exchange the contents of two databases. O(N) watch bookkeeping.

    Clients stay on their database number and see the other contents.
    """
    a = _swap_index(c, argv[1], errors.INVALID_FIRST_DB)
    b = _swap_index(c, argv[2], errors.INVALID_SECOND_DB)
    if a != b:
        c.ks.swap(a, b)
        c.emit([b"SWAPDB", argv[1], argv[2]])
    return OK
