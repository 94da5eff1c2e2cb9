"""Blocking pops, the engine side: BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP.

Each handler validates its arguments in Redis's order, then tries its
non-blocking form at once: when a key can serve it, the reply is that of the
non-blocking command, run through its own handler (``lpop``, ``rpop``,
``lmove``, ``rpoplpush``, ``lmpop``, ``zpopmin``, ``zpopmax``, ``zmpop``),
which journals its own effect — so BLMOVE journals LMOVE, BLPOP LPOP, BZMPOP
ZPOPMIN/ZPOPMAX, as Redis propagates them.

When nothing can serve it, the handler returns a ``WouldBlock``: the keys to
wait on, the type a key must hold to wake it, the absolute deadline (0 =
forever) and ``attempt``, the non-blocking try to run again once a key is
ready (it returns ``WAIT`` while there is still nothing to take). The engine
knows nothing of sockets or timers: ``server.blocking`` parks the client,
arms the timer, and calls ``attempt`` when a write marks one of the keys
ready. Where a command may not block (inside MULTI, in a script)
``without_blocking`` gives the reply it answers instead, the one Redis gives
there (a nil array; a nil bulk for BLMOVE/BRPOPLPUSH). A client that times
out gets a nil array from every one of these commands, BLMOVE included
(Redis's reply, ``*-1`` in RESP2, ``_`` in RESP3).

Timeouts are seconds as ``strtold`` reads them (decimals, exponents, hex),
turned into whole milliseconds rounding up, as Redis 7.2 does: ``1e-5``
waits 1 ms, ``-0.0001`` rounds to 0 and waits forever; a negative value is
``timeout is negative``, one beyond 2**63-1 ms (``inf`` included) or whose
deadline would overflow is ``timeout is out of range``.

An attempt run again after the client was parked reruns the whole
non-blocking form over all its keys (Redis 7.2 reprocesses the command), so
the first non-empty key in the command's order serves it and a key that now
holds another type answers WRONGTYPE.
"""

from __future__ import annotations

import math

from engine import errors, longdouble
from engine.commands.list import get_list, lmove, lmpop, lpop, mpop_parse, rpop, rpoplpush
from engine.commands.zset import get_zset, parse_mpop, zmpop, zpopmax, zpopmin
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import keynum_spec, spec
from engine.registry import command
from engine.reply import NULL_ARRAY
from engine.util import INT64_MAX, to_int_or_none

WAIT = type("Wait", (), {"__slots__": (), "__repr__": lambda self: "WAIT"})()  # an attempt found nothing yet


class WouldBlock:
    """A blocking command's answer when no key can serve it yet (see the module docstring)."""

    __slots__ = ("keys", "kind", "deadline", "attempt", "no_wait")

    def __init__(self, keys, kind: str, deadline: int, attempt, no_wait):
        self.keys = keys  # the keys to wait on, in the command's order (repeats allowed)
        self.kind = kind  # "list" | "zset": what a ready key must hold to wake the client
        self.deadline = deadline  # absolute time in ms; 0 waits forever
        self.attempt = attempt  # attempt(session) -> reply, or WAIT; may raise CommandError
        self.no_wait = no_wait  # the reply where the command may not block

    def __repr__(self) -> str:
        return f"<WouldBlock {self.kind} {self.keys!r} deadline={self.deadline}>"


def without_blocking(reply):
    """The reply of a blocking command where it may not block (MULTI, scripts)."""
    return reply.no_wait if type(reply) is WouldBlock else reply


# --- timeouts -----------------------------------------------------------------

_MS = 1000


def parse_timeout(arg: bytes) -> int:
    """A timeout in seconds as Redis 7.2 reads it, in whole ms (0 = forever)."""
    ms = to_int_or_none(arg)
    if ms is not None:
        ms *= _MS
    else:
        v = longdouble.parse(arg)
        if v is None:
            raise CommandError(errors.TIMEOUT_NOT_FLOAT)
        if v == longdouble.INF:
            raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
        if v == longdouble.NEG_INF:
            raise CommandError(errors.NEGATIVE_TIMEOUT)
        # The product is a long double too (x87), rounded before ceill.
        scaled = longdouble.round_ld(v * _MS)
        if scaled == longdouble.INF:
            raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
        if scaled == longdouble.NEG_INF:
            raise CommandError(errors.NEGATIVE_TIMEOUT)
        ms = math.ceil(scaled)
    if ms > INT64_MAX:
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
    if ms < 0:
        raise CommandError(errors.NEGATIVE_TIMEOUT)
    return ms


def deadline(arg: bytes) -> int:
    """The absolute time in ms at which a wait given ``arg`` ends; 0 for never."""
    ms = parse_timeout(arg)
    if not ms:
        return 0
    now = now_ms()
    if ms > INT64_MAX - now:
        raise CommandError(errors.TIMEOUT_OUT_OF_RANGE)
    return now + ms


def _run(c, keys, kind: str, until: int, attempt, no_wait):
    """Try now; a ``WouldBlock`` when nothing can serve the command yet."""
    r = attempt(c)
    if r is WAIT:
        return WouldBlock(keys, kind, until, attempt, no_wait)
    return r


def _position(arg: bytes) -> bytes:
    w = arg.upper()
    if w != b"LEFT" and w != b"RIGHT":
        raise CommandError(errors.SYNTAX)
    return w


# --- lists ----------------------------------------------------------------------

def _first_list(keys, name: bytes, handler):
    """BLPOP/BRPOP's attempt: pop from the first non-empty list of ``keys``."""

    def attempt(c):
        for key in keys:
            if get_list(c, key) is not None:
                return [key, handler(c, [name, key])]
        return WAIT

    return attempt


@command("blpop", -3, "write noscript blocking", (1, -2, 1), "@write @list @slow @blocking", group="list",
         summary="Pop the first element of the first non-empty list, waiting for one", since="2.0.0",
         fast_path=False,
         key_specs=(spec("RW access delete", 1, -2),))
def blpop(c, argv):
    """BLPOP key [key ...] timeout -- [key, element], or a nil array at timeout. O(N) in the keys."""
    until = deadline(argv[-1])
    keys = argv[1:-1]
    return _run(c, keys, "list", until, _first_list(keys, b"LPOP", lpop), NULL_ARRAY)


@command("brpop", -3, "write noscript blocking", (1, -2, 1), "@write @list @slow @blocking", group="list",
         summary="Pop the last element of the first non-empty list, waiting for one", since="2.0.0",
         fast_path=False,
         key_specs=(spec("RW access delete", 1, -2),))
def brpop(c, argv):
    """BRPOP key [key ...] timeout -- [key, element], or a nil array at timeout. O(N) in the keys."""
    until = deadline(argv[-1])
    keys = argv[1:-1]
    return _run(c, keys, "list", until, _first_list(keys, b"RPOP", rpop), NULL_ARRAY)


def _move(src: bytes, effect: list, handler):
    def attempt(c):
        if get_list(c, src) is None:
            return WAIT
        return handler(c, effect)

    return attempt


@command("blmove", 6, "write denyoom noscript blocking", (1, 2, 1), "@write @list @slow @blocking",
         group="list", summary="Move an element from one list to another, waiting for one",
         since="6.2.0", fast_path=False,
         key_specs=(spec("RW access delete"), spec("RW insert", 2)))
def blmove(c, argv):
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout -- the element moved. O(1)."""
    wherefrom = _position(argv[3])
    whereto = _position(argv[4])
    until = deadline(argv[5])
    src, dst = argv[1], argv[2]
    attempt = _move(src, [b"LMOVE", src, dst, wherefrom, whereto], lmove)
    return _run(c, [src], "list", until, attempt, None)


@command("brpoplpush", 4, "write denyoom noscript blocking", (1, 2, 1), "@write @list @slow @blocking",
         group="list", summary="Move the last element of a list to another's head, waiting for one",
         since="2.2.0", fast_path=False,
         key_specs=(spec("RW access delete"), spec("RW insert", 2)))
def brpoplpush(c, argv):
    """BRPOPLPUSH source destination timeout -- BLMOVE source destination RIGHT LEFT. O(1)."""
    until = deadline(argv[3])
    src, dst = argv[1], argv[2]
    attempt = _move(src, [b"RPOPLPUSH", src, dst], rpoplpush)
    return _run(c, [src], "list", until, attempt, None)


def _mpop(effect: list, handler):
    """B*MPOP's attempt: the non-blocking *MPOP over the same arguments."""

    def attempt(c):
        r = handler(c, effect)
        return WAIT if r is NULL_ARRAY else r

    return attempt


@command("blmpop", -5, "write blocking movablekeys", (0, 0, 0), "@write @list @slow @blocking", group="list",
         summary="Pop elements from the first non-empty list of several, waiting for one", since="7.0.0",
         fast_path=False,
         key_specs=(keynum_spec("RW access delete", 2),))
def blmpop(c, argv):
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count] -- [key, elements]. O(N+M)."""
    keys, _, _ = mpop_parse(argv, 2)  # Redis reads the rest before the timeout
    until = deadline(argv[1])
    return _run(c, keys, "list", until, _mpop([b"LMPOP", *argv[2:]], lmpop), NULL_ARRAY)


# --- sorted sets ----------------------------------------------------------------

def _first_zset(keys, name: bytes, handler):
    """BZPOPMIN/BZPOPMAX's attempt: [key, member, score] of the first non-empty set."""

    def attempt(c):
        for key in keys:
            if get_zset(c, key) is not None:
                return [key, *handler(c, [name, key])]
        return WAIT

    return attempt


@command("bzpopmin", -3, "write noscript blocking fast", (1, -2, 1), "@write @sortedset @fast @blocking",
         group="sorted-set", summary="Pop the lowest-scored member of the first non-empty sorted set, waiting "
         "for one", since="5.0.0", fast_path=False,
         key_specs=(spec("RW access delete", 1, -2),))
def bzpopmin(c, argv):
    """BZPOPMIN key [key ...] timeout -- [key, member, score], nil array at timeout. O(log N)."""
    until = deadline(argv[-1])
    keys = argv[1:-1]
    return _run(c, keys, "zset", until, _first_zset(keys, b"ZPOPMIN", zpopmin), NULL_ARRAY)


@command("bzpopmax", -3, "write noscript blocking fast", (1, -2, 1), "@write @sortedset @fast @blocking",
         group="sorted-set", summary="Pop the highest-scored member of the first non-empty sorted set, waiting "
         "for one", since="5.0.0", fast_path=False,
         key_specs=(spec("RW access delete", 1, -2),))
def bzpopmax(c, argv):
    """BZPOPMAX key [key ...] timeout -- [key, member, score], nil array at timeout. O(log N)."""
    until = deadline(argv[-1])
    keys = argv[1:-1]
    return _run(c, keys, "zset", until, _first_zset(keys, b"ZPOPMAX", zpopmax), NULL_ARRAY)


@command("bzmpop", -5, "write blocking movablekeys", (0, 0, 0), "@write @sortedset @slow @blocking",
         group="sorted-set", summary="Pop members from the first non-empty sorted set of several, waiting "
         "for one", since="7.0.0", fast_path=False,
         key_specs=(keynum_spec("RW access delete", 2),))
def bzmpop(c, argv):
    """BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count] -- [key, [[member, score], …]]. O(K+M log N)."""
    keys, _, _ = parse_mpop(argv, 2)
    until = deadline(argv[1])
    return _run(c, keys, "zset", until, _mpop([b"ZMPOP", *argv[2:]], zmpop), NULL_ARRAY)
