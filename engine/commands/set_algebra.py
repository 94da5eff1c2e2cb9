"""Set algebra: SINTER, SINTERCARD, SINTERSTORE, SUNION(STORE), SDIFF(STORE).

A missing key is an empty set; every key is type-checked (WRONGTYPE) before
anything is computed or stored. The algorithms are Redis 7.2's, because the
encoding a STORE command leaves depends on how the result was built:

* intersection walks the smallest set (ties keep the keys' order) and keeps
  the members every other set holds: O(N*M), N the smallest set's size, M
  the number of sets. The result starts as an intset when that smallest set
  is one and as a listpack otherwise, grows as SADD grows a set, and ends an
  all-integer listpack that fits as an intset.
* union adds every member of every set to a result that starts as an
  intset: O(N), N the members of all sets.
* difference picks, as Redis does, between walking the first set and
  testing each member against the others (sorted by decreasing size),
  O(N*M), and adding the first set then removing the others' members,
  O(N); the estimate favours the first by half.

The STORE forms replace the destination whatever its type (and drop its
TTL); an empty result deletes it. Effects: the command as sent, when it
stored a result or deleted a destination (Redis propagates them as sent:
replay reads the same sources, so it builds the same result); nothing when
the result was empty and there was no destination.

Keyspace events: ``sinterstore``, ``sunionstore`` or ``sdiffstore``
(class ``s``) on the destination, after its ``new``; ``del`` (class ``g``)
when an empty result removed it.
"""

from __future__ import annotations

from array import array

from engine import errors
from engine.commands.set import read_set
from engine.errors import CommandError
from engine.keyspecs import keynum_spec, spec
from engine.notify import GENERIC
from engine.notify import SET as SET_EVENTS
from engine.registry import command
from engine.reply import INTS, ZERO
from engine.reply import Set as SetReply
from engine.types.set import INTSET, Set
from engine.util import parse_int


def _sources(c, keys) -> list:
    """The sets under ``keys`` (None for a missing one), after checking every type."""
    return [read_set(c, k) for k in keys]


def _store(c, argv, dst: bytes, result, event: bytes) -> object:
    """Store ``result`` (a Set, or None for an empty result) under ``dst``; the reply."""
    if result is None or not len(result):
        if c.db.delete(dst):
            c.emit(argv)
            if c.ks.notify_flags:
                c.notify(GENERIC, b"del", dst)
        return ZERO
    c.db.set(dst, result)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(SET_EVENTS, event, dst)
    n = len(result)
    return INTS[n] if n < len(INTS) else n


def _intersection(sets: list, limit: int = 0) -> tuple[list, int]:
    """(the members every set holds, the encoding of the smallest set)."""
    sets = sorted(sets, key=len)
    first = sets[0]
    others = [s.lookup() for s in sets[1:] if s is not first]
    out = []
    for m in first.members():
        for o in others:
            if m not in o:
                break
        else:
            out.append(m)
            if len(out) == limit:
                break
    return out, first.enc


@command("sinter", -2, "readonly", (1, -1, 1), "@read @set @slow", group="set",
         summary="The members that every given set holds", since="1.0.0",
         tips="nondeterministic_output_order")
def sinter(c, argv):
    """SINTER key [key ...] -- the intersection (a set reply). O(N*M)."""
    sets = _sources(c, argv[1:])
    if None in sets:
        return SetReply()
    return SetReply(_intersection(sets)[0])


@command("sintercard", -3, "readonly movablekeys", (0, 0, 0), "@read @set @slow", group="set",
         summary="How many members every given set holds", since="7.0.0",
         key_specs=(keynum_spec("RO access", 1),))
def sintercard(c, argv):
    """SINTERCARD numkeys key [key ...] [LIMIT limit] -- the intersection's size,
    counting stops at limit (0: no limit). O(N*M)."""
    numkeys = parse_int(argv[1], errors.NUMKEYS_NOT_POSITIVE)
    if numkeys < 1:
        raise CommandError(errors.NUMKEYS_NOT_POSITIVE)
    if numkeys > len(argv) - 2:
        raise CommandError(errors.NUMKEYS_TOO_MANY)
    limit = 0
    j = 2 + numkeys
    while j < len(argv):
        if argv[j].upper() == b"LIMIT" and j + 1 < len(argv):
            limit = parse_int(argv[j + 1], errors.LIMIT_NEGATIVE)
            if limit < 0:
                raise CommandError(errors.LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    sets = _sources(c, argv[2:2 + numkeys])
    if None in sets:
        return ZERO
    n = len(_intersection(sets, limit)[0])
    return INTS[n] if n < len(INTS) else n


@command("sinterstore", -3, "write denyoom", (1, -1, 1), "@write @set @slow", group="set",
         summary="Store the members that every given set holds", since="1.0.0",
         key_specs=(spec("RW update"), spec("RO access", 2, -1)))
def sinterstore(c, argv):
    """SINTERSTORE destination key [key ...] -- the size of the intersection
    stored at destination (deleted when empty). O(N*M)."""
    sets = _sources(c, argv[2:])
    if None in sets:
        return _store(c, argv, argv[1], None, b"sinterstore")
    members, first_enc = _intersection(sets)
    return _store(c, argv, argv[1], Set.build(members, c.ks.limits, first_enc) if members else None,
                  b"sinterstore")


def _union(c, sets) -> Set:
    out = Set(INTSET, array("q"))
    limits = c.ks.limits
    for s in sets:
        if s is not None:
            out.add(s.members(), limits, hint=0)
    return out


def _difference(c, sets) -> Set:
    out = Set(INTSET, array("q"))
    first = sets[0]
    if first is None or not len(first):
        return out
    rest = [s for s in sets[1:] if s is not None]
    if any(s is first for s in rest):
        return out
    limits = c.ks.limits
    # Redis's estimate: walking the first set costs its size per set, half
    # price; adding it and removing the others costs all their sizes.
    walk = len(first) * (len(rest) + 1) // 2
    bulk = len(first) + sum(len(s) for s in rest)
    if walk <= bulk:
        rest.sort(key=len, reverse=True)
        lookups = [s.lookup() for s in rest]
        keep = [m for m in first.members() if not any(m in o for o in lookups)]
        out.add(keep, limits, hint=0)
        return out
    out.add(first.members(), limits, hint=0)
    for s in rest:
        out.remove(s.members())
        if not len(out):
            break
    return out


@command("sunion", -2, "readonly", (1, -1, 1), "@read @set @slow", group="set",
         summary="The members of any of the given sets", since="1.0.0",
         tips="nondeterministic_output_order")
def sunion(c, argv):
    """SUNION key [key ...] -- the union (a set reply). O(N)."""
    return SetReply(_union(c, _sources(c, argv[1:])).members())


@command("sunionstore", -3, "write denyoom", (1, -1, 1), "@write @set @slow", group="set",
         summary="Store the members of any of the given sets", since="1.0.0",
         key_specs=(spec("OW update"), spec("RO access", 2, -1)))
def sunionstore(c, argv):
    """SUNIONSTORE destination key [key ...] -- the size of the union stored at
    destination (deleted when empty). O(N)."""
    return _store(c, argv, argv[1], _union(c, _sources(c, argv[2:])), b"sunionstore")


@command("sdiff", -2, "readonly", (1, -1, 1), "@read @set @slow", group="set",
         summary="The members of the first set that no other given set holds", since="1.0.0",
         tips="nondeterministic_output_order")
def sdiff(c, argv):
    """SDIFF key [key ...] -- the first set less the others (a set reply). O(N)."""
    return SetReply(_difference(c, _sources(c, argv[1:])).members())


@command("sdiffstore", -3, "write denyoom", (1, -1, 1), "@write @set @slow", group="set",
         summary="Store the members of the first set that no other given set holds", since="1.0.0",
         key_specs=(spec("OW update"), spec("RO access", 2, -1)))
def sdiffstore(c, argv):
    """SDIFFSTORE destination key [key ...] -- the size of the difference stored
    at destination (deleted when empty). O(N)."""
    return _store(c, argv, argv[1], _difference(c, _sources(c, argv[2:])), b"sdiffstore")
