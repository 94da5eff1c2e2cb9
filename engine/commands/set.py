"""Set commands on one key (and SMOVE): SADD … SSCAN.

(SINTER, SUNION, SDIFF and their STORE and CARD forms are in
``engine.commands.set_algebra``.)

Values are ``engine.types.set.Set`` objects; handlers never look at the
encoding. A missing key is an empty set; a set that a command empties is
deleted. Every argument is checked before the first change, and a count
error comes before the key's type is looked at, as in Redis.

Effects: SADD, SREM and SMOVE journal the command as sent when it changed
something, nothing otherwise. SPOP's pick is random, so it journals its
outcome: ``SREM key <each member taken>`` (in batches of 1024 members, as
Redis propagates a big SPOP). SRANDMEMBER and the reads journal nothing.

Keyspace events (class ``s``; ``del`` is ``g``): one ``sadd`` when members
were added; ``srem``, then ``del`` if the set is gone; one ``spop`` however
many were taken, then ``del``; SMOVE ``srem`` on the source (and its
``del``), then ``sadd`` on the destination if it did not hold the member.

Replies come in the encoding's order: ascending for an intset (as Redis),
insertion order for a listpack (as Redis 7.2), dict order for a hashtable
(Redis's differs: clients must not rely on it).
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.keyspecs import spec
from engine.notify import GENERIC
from engine.notify import SET as SET_EVENTS
from engine.registry import command
from engine.reply import INTS, ONE, ZERO
from engine.reply import Set as SetReply
from engine.types.set import Set
from engine.util import INT64_MAX, parse_int
from engine.commands.scan import parse_cursor, parse_scan_options

# SPOP's effect is cut into SREM commands of at most this many members.
SPOP_BATCH = 1024


def get_set(c, key: bytes):
    """The set under ``key``, None when missing, WRONGTYPE for another type."""
    v = c.db.get(key)
    if v is None or type(v) is Set:
        return v
    raise CommandError(errors.WRONGTYPE)


def read_set(c, key: bytes):
    """``get_set`` for a read: counts a keyspace hit or miss (INFO), as Redis's
    read lookups do."""
    v = c.db.get(key)
    if v is None:
        c.ks.misses += 1
        return None
    c.ks.hits += 1
    if type(v) is Set:
        return v
    raise CommandError(errors.WRONGTYPE)


def _emit_srem(c, key: bytes, members: list) -> None:
    for i in range(0, len(members), SPOP_BATCH):
        c.emit([b"SREM", key, *members[i:i + SPOP_BATCH]])


@command("sadd", -3, "write denyoom fast", (1, 1, 1), "@write @set @fast", group="set",
         summary="Add members to a set", since="1.0.0",
         key_specs=(spec("RW insert"),))
def sadd(c, argv):
    """SADD key member [member ...] -- how many were new. O(1) a member (O(n) on a listpack)."""
    key = argv[1]
    if len(argv) == 3:
        # One member already there (a set with no TTL): nothing changes, no
        # effect, and no conversion of the encoding to pay for.
        db = c.db
        s = db.data.get(key)
        if type(s) is Set and not (db.expires and key in db.expires) and s.contains(argv[2]):
            return ZERO
    s = get_set(c, key)
    members = argv[2:]
    limits = c.ks.limits
    if s is None:
        s = Set.new(members[0], len(members), limits)
        added = s.add(members, limits)
        c.db.set(key, s)
    else:
        added = s.add(members, limits)
        if not added:
            return ZERO
        c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(SET_EVENTS, b"sadd", key)
    return INTS[added] if added < len(INTS) else added


@command("srem", -3, "write fast", (1, 1, 1), "@write @set @fast", group="set",
         summary="Remove members from a set", since="1.0.0",
         key_specs=(spec("RW delete"),))
def srem(c, argv):
    """SREM key member [member ...] -- how many were there. O(1) a member (O(n) on a listpack)."""
    key = argv[1]
    s = get_set(c, key)
    if s is None:
        return ZERO
    removed = s.remove(argv[2:])
    if not removed:
        return ZERO
    notifying = c.ks.notify_flags
    if notifying:
        c.notify(SET_EVENTS, b"srem", key)
    if len(s):
        c.db.touched(key)
    else:
        c.db.delete(key)
        if notifying:
            c.notify(GENERIC, b"del", key)
    c.emit(argv)
    return INTS[removed] if removed < len(INTS) else removed


@command("smembers", 2, "readonly", (1, 1, 1), "@read @set @slow", group="set",
         summary="Every member of a set", since="1.0.0",
         tips="nondeterministic_output_order")
def smembers(c, argv):
    """SMEMBERS key -- every member (a set reply). O(n)."""
    s = read_set(c, argv[1])
    return SetReply(s.members() if s is not None else ())


@command("sismember", 3, "readonly fast", (1, 1, 1), "@read @set @fast", group="set",
         summary="Whether a value is a member of a set", since="1.0.0",
         key_specs=(spec("RO"),))
def sismember(c, argv):
    """SISMEMBER key member -- 1 or 0. O(1) (O(log n) on an intset, O(n) on a listpack)."""
    s = read_set(c, argv[1])
    return ONE if s is not None and s.contains(argv[2]) else ZERO


@command("smismember", -3, "readonly fast", (1, 1, 1), "@read @set @fast", group="set",
         summary="Whether each value is a member of a set", since="6.2.0")
def smismember(c, argv):
    """SMISMEMBER key member [member ...] -- 1 or 0 for each. O(1) a member."""
    s = read_set(c, argv[1])
    if s is None:
        return [0] * (len(argv) - 2)
    return [1 if found else 0 for found in s.contains_many(argv[2:])]


@command("scard", 2, "readonly fast", (1, 1, 1), "@read @set @fast", group="set",
         summary="How many members a set has", since="1.0.0",
         key_specs=(spec("RO"),))
def scard(c, argv):
    """SCARD key -- the number of members, 0 for a missing key. O(1)."""
    s = read_set(c, argv[1])
    if s is None:
        return ZERO
    n = len(s)
    return INTS[n] if n < len(INTS) else n


@command("spop", -2, "write fast", (1, 1, 1), "@write @set @fast", group="set",
         summary="Remove and return random members of a set", since="1.0.0",
         key_specs=(spec("RW access delete"),), tips="nondeterministic_output")
def spop(c, argv):
    """SPOP key [count] -- a random member (nil when missing), or up to count of
    them (a set reply). O(1), O(count) with a count. Effect: SREM of those taken."""
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    key = argv[1]
    if len(argv) == 3:
        count = parse_int(argv[2], errors.MUST_BE_POSITIVE)
        if count < 0:
            raise CommandError(errors.MUST_BE_POSITIVE)
        s = get_set(c, key)
        if s is None or count == 0:
            return SetReply()
    else:
        s = get_set(c, key)
        if s is None:
            return None
        count = 1
    notifying = c.ks.notify_flags
    if notifying:
        c.notify(SET_EVENTS, b"spop", key)
    if count >= len(s):
        taken = s.members()
        c.db.delete(key)
        if notifying:
            c.notify(GENERIC, b"del", key)
    else:
        taken = s.pop(count, c.ks.limits)
        c.db.touched(key)
    _emit_srem(c, key, taken)
    return SetReply(taken) if len(argv) == 3 else taken[0]


@command("srandmember", -2, "readonly", (1, 1, 1), "@read @set @slow", group="set",
         summary="Random members of a set, left in place", since="1.0.0",
         tips="nondeterministic_output")
def srandmember(c, argv):
    """SRANDMEMBER key [count] -- a random member (nil when missing); with a
    count, that many distinct members (all, if fewer), or with a negative
    count that many picked independently (repeats possible). O(|count|)."""
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        s = read_set(c, argv[1])
        return None if s is None else s.random_member()
    count = parse_int(argv[2])
    if count < -INT64_MAX:
        raise CommandError(errors.COUNT_OUT_OF_RANGE)
    s = read_set(c, argv[1])
    if s is None or count == 0:
        return []
    if count < 0:
        return s.random_members(-count)
    if count == 1:
        return [s.random_member()]
    if count >= len(s):
        return s.members()
    return s.sample(count)


@command("smove", 4, "write fast", (1, 2, 1), "@write @set @fast", group="set",
         summary="Move a member from one set to another", since="1.0.0",
         key_specs=(spec("RW access delete"), spec("RW insert", 2)))
def smove(c, argv):
    """SMOVE source destination member -- 1 if it was moved, 0 if source does
    not hold it. O(1) (O(n) on a listpack). Effect: the command as sent."""
    _, src_key, dst_key, member = argv
    src = get_set(c, src_key)
    if src is None:
        return ZERO
    dst = get_set(c, dst_key)
    if src is dst:
        return ONE if src.contains(member) else ZERO
    if not src.remove((member,)):
        return ZERO
    notifying = c.ks.notify_flags
    if notifying:
        c.notify(SET_EVENTS, b"srem", src_key)
    if len(src):
        c.db.touched(src_key)
    else:
        c.db.delete(src_key)
        if notifying:
            c.notify(GENERIC, b"del", src_key)
    limits = c.ks.limits
    if dst is None:
        dst = Set.new(member, 1, limits)
        added = dst.add((member,), limits)
        c.db.set(dst_key, dst)
    else:
        added = dst.add((member,), limits)
        if added:
            c.db.touched(dst_key)
    c.emit(argv)
    if added and notifying:
        c.notify(SET_EVENTS, b"sadd", dst_key)
    return ONE


@command("sscan", -3, "readonly", (1, 1, 1), "@read @set @slow", group="set",
         summary="Walk the members of a set a few at a time", since="2.8.0",
         tips="nondeterministic_output")
def sscan(c, argv):
    """SSCAN key cursor [MATCH pattern] [COUNT count] -- [next cursor, members].

    An intset or listpack answers whole in one call, cursor 0 (as Redis); a
    hashtable is walked by entry position (``engine.dictscan.below``), O(COUNT)
    a call, with SCAN's guarantee. A missing key answers an empty scan before
    the options are read, as in Redis.
    """
    cursor = parse_cursor(argv[2])
    s = read_set(c, argv[1])
    if s is None:
        return [b"0", []]
    count, matcher, _ = parse_scan_options(argv, 3, allow_type=False)
    nxt, taken = s.scan(cursor if cursor < 2**62 else 0, count)
    if matcher is not None:
        taken = [m for m in taken if matcher(m)]
    return [b"%d" % nxt, taken]
