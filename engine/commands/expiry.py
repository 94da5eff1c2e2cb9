"""Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL,
EXPIRETIME, PEXPIRETIME, PERSIST.

All four setters go through ``_expire_generic``: options first (NX, XX, GT, LT,
any case, repeatable), then the time, then the key, exactly in Redis's order,
so the same bad command fails with the same error. A time is kept as absolute
milliseconds (``Database.expires``); a time that overflows a signed 64-bit
millisecond count is "invalid expire time".

Effects: a TTL that is set is journaled as ``PEXPIREAT key <abs ms>`` (no
options: the primary already decided); a time at or before now deletes the
key and is journaled as ``DEL key``; a command that changes nothing (missing
key, NX on a key with a TTL, GT/LT that does not hold, PERSIST of a key
without a TTL) journals nothing. A replica (``expire_on_lookup`` off) keeps a
key whose new time is already past and waits for the primary's DEL.

Keyspace events (class ``g``): ``expire`` for a TTL set, ``del`` for a key
a past time removed, ``persist`` for a TTL removed.
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.notify import GENERIC
from engine.registry import command
from engine.reply import ONE, ZERO
from engine.util import INT64_MAX, parse_int

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_OPTIONS = {b"NX": _NX, b"XX": _XX, b"GT": _GT, b"LT": _LT}
# C division truncates toward zero: the bounds a seconds value must stay in.
_MAX_SECONDS = INT64_MAX // 1000
_MIN_SECONDS = -_MAX_SECONDS


def _parse_options(argv) -> int:
    flags = 0
    for arg in argv[3:]:
        f = _OPTIONS.get(arg.upper())
        if f is None:
            raise CommandError(errors.UNSUPPORTED_OPTION.format(arg.decode("utf-8", "replace")))
        flags |= f
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError(errors.EXPIRE_NX_AND_OTHERS)
    if flags & _GT and flags & _LT:
        raise CommandError(errors.EXPIRE_GT_AND_LT)
    return flags


def _expire_generic(c, argv, name: str, seconds: bool, relative: bool):
    flags = _parse_options(argv) if len(argv) > 3 else 0
    when = parse_int(argv[2])
    if seconds:
        if not _MIN_SECONDS <= when <= _MAX_SECONDS:
            raise CommandError(errors.INVALID_EXPIRE.format(name))
        when *= 1000
    now = now_ms()
    if relative:
        if when > INT64_MAX - now:
            raise CommandError(errors.INVALID_EXPIRE.format(name))
        when += now
    db = c.db
    key = argv[1]
    if db.get(key) is None:
        return ZERO
    if flags:
        current = db.expires.get(key)
        if flags & _NX and current is not None:
            return ZERO
        if flags & _XX and current is None:
            return ZERO
        # No TTL counts as an infinite one: never less than, never exceeded.
        if flags & _GT and (current is None or when <= current):
            return ZERO
        if flags & _LT and current is not None and when >= current:
            return ZERO
    if when <= now and c.ks.expire_on_lookup:
        db.delete(key)
        c.emit([b"DEL", key])
        if c.ks.notify_flags:
            c.notify(GENERIC, b"del", key)
        return ONE
    db.set_expire(key, when)
    c.emit([b"PEXPIREAT", key, b"%d" % when])
    if c.ks.notify_flags:
        c.notify(GENERIC, b"expire", key)
    return ONE


@command("expire", -3, "write fast", (1, 1, 1), "@keyspace @write @fast",
         key_specs=(spec("RW update"),))
def expire(c, argv):
    """EXPIRE key seconds [NX|XX|GT|LT] -- 1 if the TTL was set, else 0. O(1)."""
    return _expire_generic(c, argv, "expire", seconds=True, relative=True)


@command("pexpire", -3, "write fast", (1, 1, 1), "@keyspace @write @fast", since="2.6.0",
         key_specs=(spec("RW update"),))
def pexpire(c, argv):
    """PEXPIRE key milliseconds [NX|XX|GT|LT] -- 1 if the TTL was set, else 0. O(1)."""
    return _expire_generic(c, argv, "pexpire", seconds=False, relative=True)


@command("expireat", -3, "write fast", (1, 1, 1), "@keyspace @write @fast", since="1.2.0",
         key_specs=(spec("RW update"),))
def expireat(c, argv):
    """EXPIREAT key unix-time-seconds [NX|XX|GT|LT] -- 1 if the TTL was set, else 0. O(1)."""
    return _expire_generic(c, argv, "expireat", seconds=True, relative=False)


@command("pexpireat", -3, "write fast", (1, 1, 1), "@keyspace @write @fast", since="2.6.0",
         key_specs=(spec("RW update"),))
def pexpireat(c, argv):
    """PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT] -- 1 if the TTL was set, else 0. O(1)."""
    return _expire_generic(c, argv, "pexpireat", seconds=False, relative=False)


def _ttl_generic(c, key: bytes, ms: bool, absolute: bool) -> int:
    db = c.db
    if db.data.get(key) is None:
        return -2
    when = db.expires.get(key)
    if when is None:
        return -1
    now = now_ms()
    if when <= now:
        db.get(key)  # due: let the lookup expire it (and journal the DEL)
        return -2
    t = when if absolute else when - now
    return t if ms else (t + 500) // 1000


@command("ttl", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast",
         tips="nondeterministic_output")
def ttl(c, argv):
    """TTL key -- seconds to live (rounded), -1 without a TTL, -2 if missing. O(1)."""
    return _ttl_generic(c, argv[1], ms=False, absolute=False)


@command("pttl", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast", since="2.6.0",
         tips="nondeterministic_output")
def pttl(c, argv):
    """PTTL key -- milliseconds to live, -1 without a TTL, -2 if missing. O(1)."""
    return _ttl_generic(c, argv[1], ms=True, absolute=False)


@command("expiretime", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast", since="7.0.0")
def expiretime(c, argv):
    """EXPIRETIME key -- the absolute expiry in Unix seconds, -1 / -2 as TTL. O(1)."""
    return _ttl_generic(c, argv[1], ms=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast", since="7.0.0")
def pexpiretime(c, argv):
    """PEXPIRETIME key -- the absolute expiry in Unix milliseconds, -1 / -2 as TTL. O(1)."""
    return _ttl_generic(c, argv[1], ms=True, absolute=True)


@command("persist", 2, "write fast", (1, 1, 1), "@keyspace @write @fast", since="2.2.0",
         key_specs=(spec("RW update"),))
def persist(c, argv):
    """PERSIST key -- remove the TTL: 1 if there was one, else 0. O(1)."""
    key = argv[1]
    db = c.db
    if db.get(key) is None or not db.persist(key):
        return ZERO
    c.emit([b"PERSIST", key])
    if c.ks.notify_flags:
        c.notify(GENERIC, b"persist", key)
    return ONE
