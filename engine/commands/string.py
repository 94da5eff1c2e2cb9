"""String commands (GET, SET, … ; the rest of the group lands here)."""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK


@command("get", 2, "readonly fast", (1, 1, 1), "@read @string @fast", group="string")
def get(c, argv):
    """GET key -- the value of key, or nil. O(1)."""
    v = c.db.get(argv[1])
    if v is None or type(v) is bytes:
        return v
    raise CommandError(errors.WRONGTYPE)


@command("set", -3, "write denyoom", (1, 1, 1), "@write @string @slow", group="string")
def set_(c, argv):
    """SET key value -- store a string value. O(1)."""
    if len(argv) == 3:
        c.db.set(argv[1], argv[2])
        c.ks.effects.append((c.db.index, argv))
        return OK
    raise CommandError(errors.SYNTAX)
