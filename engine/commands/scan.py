"""SCAN and RANDOMKEY: walking the keyspace without a copy of its keys.

Both read ``Database.data`` by entry position (``engine.dictscan``):

* SCAN's cursor is a position in the dict, walked from the end towards the
  front, so a call costs its COUNT whatever the database's size, the server
  keeps nothing per scan, and a cursor survives the client reconnecting.
  Every key present for the whole scan is returned at least once, while keys
  come and go and the table is rebuilt; a key added or deleted during the
  scan may or may not be. Keys that are due are expired as they are met, and
  MATCH and TYPE filter what was taken, as in Redis (so a call may return
  fewer than COUNT keys, or none, before the end). A cursor beyond the end
  of the table (from another database, or made up) walks it from the end.
* RANDOMKEY picks the first live key at or after a random position. A key
  after a long run of holes is picked more often than one after none;
  Redis's pick (a random bucket, then a random key of its chain) is not
  uniform either.

``parse_cursor`` and ``parse_scan_options`` are the argument grammar the
whole SCAN family shares.
"""

from __future__ import annotations

import random
from itertools import islice

from engine import errors, glob
from engine.dictscan import below, layout, pick
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.registry import command
from engine.types import type_name
from engine.util import parse_int

_U64 = 2**64


def parse_cursor(arg: bytes) -> int:
    """A SCAN cursor as Redis reads it (C ``strtoul``: sign allowed, wraps; empty is 0)."""
    s = arg
    if s[:1] in (b"+", b"-"):
        negative = s[:1] == b"-"
        s = s[1:]
        if not s:
            raise CommandError(errors.INVALID_CURSOR)
    else:
        negative = False
    if s and not s.isdigit():
        raise CommandError(errors.INVALID_CURSOR)
    v = int(s) if s else 0
    if v >= _U64:
        raise CommandError(errors.INVALID_CURSOR)
    return (_U64 - v) % _U64 if negative else v


def parse_scan_options(argv, start: int, allow_type: bool):
    """COUNT / MATCH / TYPE options of the SCAN family: (count, matcher or None, type or None)."""
    count = 10
    matcher = None
    type_filter = None
    i, n = start, len(argv)
    while i < n:
        opt = argv[i].upper()
        if i + 1 >= n:
            raise CommandError(errors.SYNTAX)
        arg = argv[i + 1]
        if opt == b"COUNT":
            count = _parse_count(arg)
        elif opt == b"MATCH":
            matcher = None if arg == b"*" else glob.compile(arg)
        elif opt == b"TYPE" and allow_type:
            type_filter = arg.decode("utf-8", "replace").lower()
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return count, matcher, type_filter


def _parse_count(arg: bytes) -> int:
    count = parse_int(arg)
    if count < 1:
        raise CommandError(errors.SYNTAX)
    return count


@command("scan", -2, "readonly", acl="@keyspace @read @slow", since="2.8.0",
         tips="nondeterministic_output request_policy:special")
def scan(c, argv):
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] -- [next cursor, keys]. O(COUNT) per call."""
    cursor = parse_cursor(argv[1])
    count, matcher, type_filter = parse_scan_options(argv, 2, allow_type=True)
    db = c.db
    nxt, taken = below(db.data, cursor if cursor < 2**62 else 0, count)
    out = []
    get = db.get
    for key in taken:
        if matcher is not None and not matcher(key):
            continue
        v = get(key)
        if v is None or (type_filter is not None and type_name(v) != type_filter):
            continue
        out.append(key)
    return [b"%d" % nxt, out]


_RANDOM_TRIES = 16


@command("randomkey", 1, "readonly", acl="@keyspace @read @slow",
         tips="request_policy:all_shards nondeterministic_output")
def randomkey(c, argv):
    """RANDOMKEY -- a random live key, or nil. O(1) but for runs of holes.

    Up to ``_RANDOM_TRIES`` picks at random positions; a due key picked is
    expired (as Redis expires those it meets). When none of them is live,
    it walks the dict from a random position to the first live key,
    expiring the due ones met on the way: nil only when no key is live.
    """
    db = c.db
    data = db.data
    for _ in range(_RANDOM_TRIES):
        if not data:
            return None
        key = pick(data, random.randrange(layout(data)[0]))
        if not db.expires or db.get(key) is not None:
            return key
    return _random_walk(db, data)


def _random_walk(db, data):
    """The first live key from a random position (wrapping), or None. O(N)."""
    n = len(data)
    if not n:
        return None
    start = random.randrange(n)
    expires = db.expires
    if not expires:
        return next(islice(data, start, None))
    # Due keys met on the way are expired afterwards (not while iterating the dict).
    now = now_ms()
    due = []
    found = None
    for key in islice(data, start, None):
        if expires.get(key, now + 1) > now:
            found = key
            break
        due.append(key)
    if found is None:
        for key in islice(data, 0, start):
            if expires.get(key, now + 1) > now:
                found = key
                break
            due.append(key)
    for key in due:
        db.get(key)
    return found
