"""Keyspace notifications, the engine side: event classes and the directive's syntax.

A handler that changes a key announces it as ``(class, event, db index, key)``:
``ks.notify(LIST, b"lpush", db.index, key)``, or ``c.notify(LIST, b"lpush",
key)`` for the session's database. Event names and classes are Redis's; so
is their order within a command, and a command that fails or changes
nothing announces nothing (each handler module's docstring lists its events;
``tests/unit/test_notify_events.py`` holds the sequences, compared live with
redis-server by ``tests/integration/test_notify_redis.py``).

The gate: ``Keyspace.notify_flags`` is the ``notify-keyspace-events`` classes
when they can deliver something (K or E, and a class Keel announces), else 0. A
handler tests it before building anything (``if c.ks.notify_flags:``), so a
write pays one attribute test while notifications are off, and GET none.
``Keyspace.notify`` filters by class and calls ``Keyspace.notify_hook``, the
callable the server installs (``server.notify`` publishes on
``__keyspace@<db>__:<key>`` and ``__keyevent@<db>__:<event>``); tests install
a recording one. Nothing is announced while the log is replayed
(``ks.loading``), and notifications are never effects: they are not journaled.

Where the events come from:
* handlers: the command's own event (``set``, ``lpush``, ``zincr``, …),
  ``del`` when a command empties a collection and removes it, or removes a
  key outright;
* ``Database.set``: ``new`` when it creates the key (as Redis's key creation
  does), and first ``expired`` when it replaces a key whose TTL ran out;
* ``Database._expire_now``: ``expired``, from a lookup (lazy expiry) and from
  the active expiry cycle alike;
* ``Database.evict``: ``evicted``, for the maxmemory eviction to come.

Classes ``d`` (modules) and ``m`` (key misses) are accepted and shown as
Redis shows them; Keel has no modules, and announces no key misses (a miss
costs GET nothing, and keeps it that way). Streams announce in class ``t``
(``engine.commands.stream`` and its siblings).
"""

from __future__ import annotations

KEYSPACE = 1 << 0  # K: publish on __keyspace@<db>__:<key>
KEYEVENT = 1 << 1  # E: publish on __keyevent@<db>__:<event>
GENERIC = 1 << 2  # g: DEL, EXPIRE, RENAME, … (commands of no one type)
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x: a key whose TTL ran out was removed
EVICTED = 1 << 9  # e: a key was evicted for maxmemory
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m: a read found no key (not announced by Keel)
MODULE = 1 << 12  # d
NEW = 1 << 13  # n: a key was created

ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE  # A
# The classes Keel has events in (no modules, no key misses).
ANNOUNCED = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | NEW

_LETTERS = {
    "A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET,
    "x": EXPIRED, "e": EVICTED, "K": KEYSPACE, "E": KEYEVENT, "t": STREAM,
    "m": KEY_MISS, "d": MODULE, "n": NEW,
}
# The order CONFIG GET prints the classes in (A standing for all of ALL).
_SHOWN = (("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET), ("h", HASH), ("z", ZSET),
          ("x", EXPIRED), ("e", EVICTED), ("t", STREAM), ("d", MODULE), ("n", NEW))

# CONFIG SET's reason for a character that names no class, in Redis's words.
INVALID_CLASS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse(text: str) -> int:
    """The flags a ``notify-keyspace-events`` value names; ValueError(INVALID_CLASS) otherwise."""
    flags = 0
    for ch in text:
        bit = _LETTERS.get(ch)
        if bit is None:
            raise ValueError(INVALID_CLASS)
        flags |= bit
    return flags


def show(flags: int) -> str:
    """The value as CONFIG GET shows it, Redis's normal form: the classes in a
    fixed order (``A`` when all of ALL are on: then Redis shows no ``n``
    either), then K, E and m."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(ch for ch, bit in _SHOWN if flags & bit)
    if flags & KEYSPACE:
        out += "K"
    if flags & KEYEVENT:
        out += "E"
    if flags & KEY_MISS:
        out += "m"
    return out


def gate(flags: int) -> int:
    """What ``Keyspace.notify_flags`` should hold for ``flags``: the flags
    themselves when they can deliver an event, 0 when nothing would be
    published (neither K nor E, or no class Keel announces): then writes
    keep their fast paths."""
    if flags & (KEYSPACE | KEYEVENT) and flags & ANNOUNCED:
        return flags
    return 0
