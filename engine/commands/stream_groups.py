"""Consumer groups: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP), XACK, XPENDING, XCLAIM, XAUTOCLAIM.

(XREADGROUP is in ``engine.commands.stream_read``; the group's data in
``engine.types.stream``: ``Group``, ``Consumer``, ``Pending``.)

A group's PEL maps each delivered, unacknowledged ID to a ``Pending`` (its
consumer, last delivery time in ms, delivery count); each consumer keeps the
sorted IDs it owns, so XPENDING by consumer and XREADGROUP's history read
walk only its own. ``entries_read`` follows Redis 7's rules
(``engine.types.stream.estimate_read``): None when it cannot be known.

Effects, as Redis propagates them: XGROUP and XACK as sent; XCLAIM and
XAUTOCLAIM as one ``XCLAIM key group consumer 0 id TIME <ms> RETRYCOUNT
<n> FORCE JUSTID LASTID <group last id>`` per claimed entry (the state it
left, whatever options made it), an ``XACK`` for entries found deleted and
dropped from the PEL; ``XGROUP CREATECONSUMER`` for a consumer they create.

Keyspace events (class ``t``): ``xgroup-create``, ``xgroup-setid``,
``xgroup-destroy``, ``xgroup-createconsumer``, ``xgroup-delconsumer``
(XREADGROUP/XCLAIM/XAUTOCLAIM creating a consumer announce it too).
"""

from __future__ import annotations

from engine import errors
from engine.commands.stream import get_stream, parse_id, parse_ids, parse_range_bound
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.notify import STREAM
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import EMPTY_ARRAY, OK, help_lines
from engine.types.stream import MAX_ID, MIN_ID, Stream, fields_of, format_id
from engine.types.stream_group import Consumer, Group, Pending
from engine.util import INT64_MAX, to_int_or_none

NEEDS_KEY = ("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use "
             "the MKSTREAM option to create an empty stream automatically.")
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
NOGROUP_XGROUP = "NOGROUP No such consumer group '{}' for key name '{}'"
NOGROUP = "NOGROUP No such key '{}' or consumer group '{}'"
ENTRIESREAD_RANGE = "ERR value for ENTRIESREAD must be positive or -1"
XCLAIM_MINIDLE = "ERR Invalid min-idle-time argument for XCLAIM"
XAUTOCLAIM_MINIDLE = "ERR Invalid min-idle-time argument for XAUTOCLAIM"
XCLAIM_OPTION = "ERR Invalid {} option argument for XCLAIM"
XCLAIM_UNKNOWN = "ERR Unrecognized XCLAIM option '{}'"
COUNT_POSITIVE = "ERR COUNT must be > 0"
_XAUTOCLAIM_ATTEMPTS = 10  # PEL entries looked at per entry of COUNT, as Redis does


def _s(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def nogroup(key: bytes, group: bytes, where: str = "") -> CommandError:
    return CommandError(NOGROUP.format(_s(key), _s(group)) + where)


def find_group(c, key: bytes, group: bytes, where: str = ""):
    """(stream, group) or NOGROUP (missing key or group)."""
    s = get_stream(c, key)
    g = None if s is None else s.group(group)
    if g is None:
        raise nogroup(key, group, where)
    return s, g


def consumer(c, key: bytes, gname: bytes, g: Group, name: bytes, now: int) -> Consumer:
    """The consumer ``name`` of ``g``, created (journaled, announced) when missing; its seen-time set to ``now``."""
    cons = g.consumers.get(name)
    if cons is None:
        cons = g.consumers[name] = Consumer(name, now)
        c.db.touched(key)
        c.emit([b"XGROUP", b"CREATECONSUMER", key, gname, name])
        if c.ks.notify_flags:
            c.notify(STREAM, b"xgroup-createconsumer", key)
    cons.seen = now
    return cons


def pel_remove(g: Group, i) -> bool:
    p = g.pel.pop(i, None)
    if p is None:
        return False
    p.consumer.pel.discard(i)
    return True


def claim_effect(key: bytes, gname: bytes, cname: bytes, i, p: Pending, g: Group) -> list:
    return [b"XCLAIM", key, gname, cname, b"0", format_id(i), b"TIME", b"%d" % p.time,
            b"RETRYCOUNT", b"%d" % p.count, b"FORCE", b"JUSTID", b"LASTID", format_id(g.last_id)]


def _entries_read_option(argv: list, i: int):
    n = to_int_or_none(argv[i])
    if n is None:
        raise CommandError(errors.NOT_INTEGER)
    if n < 0 and n != -1:
        raise CommandError(ENTRIESREAD_RANGE)
    return None if n == -1 else n


# --- XGROUP ------------------------------------------------------------------------

@command("xgroup", -2, "", acl="@slow", group="stream", summary="A container for consumer groups commands",
         since="5.0.0")
def xgroup(c, argv):
    """XGROUP <subcommand> ... -- consumer group administration."""
    return dispatch_subcommand(xgroup.command, c, argv)


def _unknown_options(name: str) -> CommandError:
    return CommandError(errors.SUBCOMMAND_SYNTAX.format(name, "XGROUP"))


@subcommand("xgroup", "create", -5, "write denyoom", (2, 2, 1), "@write @stream @slow",
            summary="Create a consumer group.", since="5.0.0", key_specs=(spec("RW insert", 2),))
def xgroup_create(c, argv):
    """XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n] -- OK. O(1)."""
    key, name = argv[2], argv[3]
    mkstream = False
    entries_read = None
    i = 5
    while i < len(argv):
        w = argv[i].upper()
        if w == b"MKSTREAM":
            mkstream = True
            i += 1
        elif w == b"ENTRIESREAD" and i + 1 < len(argv):
            entries_read = _entries_read_option(argv, i + 1)
            i += 2
        else:
            raise _unknown_options("CREATE")
    s = get_stream(c, key)
    if s is None and not mkstream:
        raise CommandError(NEEDS_KEY)
    start = None if argv[4] == b"$" else parse_id(argv[4], strict=True)
    created = s is None
    if created:
        s = Stream()
    if start is None:
        start = s.last_id
    if s.groups is None:
        s.groups = {}
    if name in s.groups:
        raise CommandError(BUSYGROUP)
    s.groups[name] = Group(start, entries_read)
    s.groups = dict(sorted(s.groups.items()))
    if created:
        c.db.set(key, s)
    else:
        c.db.touched(key)
    c.emit([b"XGROUP", b"CREATE", key, name, format_id(start), *([b"MKSTREAM"] if created else []),
            *([b"ENTRIESREAD", b"%d" % entries_read] if entries_read is not None else [])])
    if c.ks.notify_flags:
        c.notify(STREAM, b"xgroup-create", key)
    return OK


@subcommand("xgroup", "setid", -5, "write", (2, 2, 1), "@write @stream @slow",
            summary="Set a consumer group to an arbitrary last delivered ID value.", since="5.0.0",
            key_specs=(spec("RW update", 2),))
def xgroup_setid(c, argv):
    """XGROUP SETID key group id|$ [ENTRIESREAD n] -- OK. O(1)."""
    key, name = argv[2], argv[3]
    entries_read = None
    n = len(argv)
    if n == 7 and argv[5].upper() == b"ENTRIESREAD":
        entries_read = _entries_read_option(argv, 6)
    elif n != 5:
        raise _unknown_options("SETID")
    s = get_stream(c, key)
    if s is None:
        raise CommandError(NEEDS_KEY)
    g = s.group(name)
    if g is None:
        raise CommandError(NOGROUP_XGROUP.format(_s(name), _s(key)))
    g.last_id = s.last_id if argv[4] == b"$" else parse_id(argv[4])
    g.entries_read = entries_read
    c.db.touched(key)
    c.emit([b"XGROUP", b"SETID", key, name, format_id(g.last_id),
            *([b"ENTRIESREAD", b"%d" % entries_read] if entries_read is not None else [])])
    if c.ks.notify_flags:
        c.notify(STREAM, b"xgroup-setid", key)
    return OK


def _existing(c, key: bytes, name: bytes):
    s = get_stream(c, key)
    if s is None:
        raise CommandError(NEEDS_KEY)
    g = s.group(name)
    return s, g


@subcommand("xgroup", "destroy", 4, "write", (2, 2, 1), "@write @stream @slow",
            summary="Destroy a consumer group.", since="5.0.0", key_specs=(spec("RW delete", 2),))
def xgroup_destroy(c, argv):
    """XGROUP DESTROY key group -- 1 when the group existed. O(N) in its PEL."""
    key, name = argv[2], argv[3]
    s, g = _existing(c, key, name)
    if g is None:
        return 0
    del s.groups[name]
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STREAM, b"xgroup-destroy", key)
    return 1


@subcommand("xgroup", "createconsumer", 5, "write denyoom", (2, 2, 1), "@write @stream @slow",
            summary="Create a consumer in a consumer group.", since="6.2.0", key_specs=(spec("RW insert", 2),))
def xgroup_createconsumer(c, argv):
    """XGROUP CREATECONSUMER key group consumer -- 1 when created. O(1)."""
    key, name, cname = argv[2], argv[3], argv[4]
    s, g = _existing(c, key, name)
    if g is None:
        raise CommandError(NOGROUP_XGROUP.format(_s(name), _s(key)))
    if cname in g.consumers:
        return 0
    g.consumers[cname] = Consumer(cname, now_ms())
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STREAM, b"xgroup-createconsumer", key)
    return 1


@subcommand("xgroup", "delconsumer", 5, "write", (2, 2, 1), "@write @stream @slow",
            summary="Delete a consumer from a consumer group.", since="5.0.0", key_specs=(spec("RW delete", 2),))
def xgroup_delconsumer(c, argv):
    """XGROUP DELCONSUMER key group consumer -- how many entries it had pending. O(N) in those."""
    key, name, cname = argv[2], argv[3], argv[4]
    s, g = _existing(c, key, name)
    if g is None:
        raise CommandError(NOGROUP_XGROUP.format(_s(name), _s(key)))
    cons = g.consumers.pop(cname, None)
    if cons is None:
        return 0
    for i in cons.pel:
        g.pel.pop(i, None)
    c.db.touched(key)
    c.emit(argv)
    if c.ks.notify_flags:
        c.notify(STREAM, b"xgroup-delconsumer", key)
    return len(cons.pel)


_XGROUP_HELP = (
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
)


@subcommand("xgroup", "help", 2, "loading stale", acl="@stream @slow",
            summary="Show helpful text about the different subcommands", since="5.0.0")
def xgroup_help(c, argv):
    """XGROUP HELP -- what the subcommands do."""
    return help_lines("XGROUP", _XGROUP_HELP)


# --- XACK ----------------------------------------------------------------------------

@command("xack", -4, "write fast", (1, 1, 1), "@write @stream @fast", group="stream",
         summary="Marks a pending message as correctly processed, effectively removing it from the pending "
         "entries list of the consumer group. Return value of the command is the number of messages "
         "successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.",
         since="5.0.0", key_specs=(spec("RW update"),))
def xack(c, argv):
    """XACK key group id [id ...] -- how many were pending. O(log N) each."""
    key = argv[1]
    s = get_stream(c, key)
    g = None if s is None else s.group(argv[2])
    if g is None:
        return 0
    ids = parse_ids(argv, 3)  # all before the first acknowledgement
    acked = g.pel.pop_many(ids)
    if not acked:
        return 0
    cons = acked[0][1].consumer  # usually every one of them is its
    mine = [i for i, p in acked if p.consumer is cons]
    cons.pel.pop_many(mine)
    if len(mine) < len(acked):
        for i, p in acked:
            if p.consumer is not cons:
                p.consumer.pel.pop(i)
    c.db.touched(key)
    c.emit(argv)
    return len(acked)


# --- XPENDING ------------------------------------------------------------------------

@command("xpending", -3, "readonly", (1, 1, 1), "@read @stream @slow", group="stream",
         summary="Return information and entries from a stream consumer group pending entries list, that are "
         "messages fetched but never acknowledged.", since="5.0.0", tips="nondeterministic_output",
         key_specs=(spec("RO access"),))
def xpending(c, argv):
    """XPENDING key group [[IDLE min-idle] start end count [consumer]] -- the summary or the entries. O(log N + M)."""
    n = len(argv)
    key, name = argv[1], argv[2]
    idle = None
    i = 3
    extended = n > 3
    if n in (4, 5):
        raise CommandError(errors.SYNTAX)
    if extended and argv[3].upper() == b"IDLE":
        idle = to_int_or_none(argv[4])
        if idle is None:
            raise CommandError(errors.NOT_INTEGER)
        if n not in (8, 9):
            raise CommandError(errors.SYNTAX)
        i = 5
    if extended:
        count = to_int_or_none(argv[i + 2])  # Redis reads the count before the bounds
        if count is None:
            raise CommandError(errors.NOT_INTEGER)
        lo = parse_range_bound(argv[i], True)
        hi = parse_range_bound(argv[i + 1], False)
        cname = argv[i + 3] if n - i >= 4 else None  # Redis ignores what follows
    s, g = find_group(c, key, name)
    if not extended:
        if not g.pel:
            return [0, None, None, None]
        per = {}
        for p in g.pel.values():
            per[p.consumer.name] = per.get(p.consumer.name, 0) + 1
        return [len(g.pel), format_id(g.pel.first()), format_id(g.pel.last()),
                [[name_, b"%d" % k] for name_, k in sorted(per.items())]]
    if count <= 0 or lo > hi:
        return EMPTY_ARRAY
    now = now_ms()
    out = []
    if cname is not None:
        cons = g.consumers.get(cname)
        if cons is None:
            return EMPTY_ARRAY
        ids = cons.pel.irange(lo, hi)
    else:
        ids = g.pel.irange(lo, hi)
    for i_ in ids:
        p = g.pel[i_]
        age = max(now - p.time, 0)
        if idle is not None and age < idle:
            continue
        out.append([format_id(i_), p.consumer.name, age, p.count])
        if len(out) == count:
            break
    return out


# --- XCLAIM / XAUTOCLAIM -------------------------------------------------------------------

def _millis(arg: bytes, error: str) -> int:
    v = to_int_or_none(arg)
    if v is None:
        raise CommandError(error)
    return v


@command("xclaim", -6, "write fast", (1, 1, 1), "@write @stream @fast", group="stream",
         summary="Changes (or acquires) ownership of a message in a consumer group, as if the message was "
         "delivered to the specified consumer.", since="5.0.0", tips="nondeterministic_output",
         key_specs=(spec("RW update"),))
def xclaim(c, argv):
    """XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE] [JUSTID]
    [LASTID id] -- the claimed entries (or IDs). O(log N) each."""
    key, name, cname = argv[1], argv[2], argv[3]
    s, g = find_group(c, key, name)
    min_idle = max(_millis(argv[4], XCLAIM_MINIDLE), 0)
    ids = []
    j = 5
    n = len(argv)
    while j < n:
        try:
            ids.append(parse_id(argv[j], strict=True))
        except CommandError:
            break
        j += 1
    now = now_ms()
    when = None
    retry = None
    force = justid = False
    lastid = None
    while j < n:
        w = argv[j].upper()
        more = j + 1 < n
        if w == b"FORCE":
            force = True
        elif w == b"JUSTID":
            justid = True
        elif w == b"IDLE" and more:
            j += 1
            when = now - _millis(argv[j], XCLAIM_OPTION.format("IDLE"))
        elif w == b"TIME" and more:
            j += 1
            when = _millis(argv[j], XCLAIM_OPTION.format("TIME"))
        elif w == b"RETRYCOUNT" and more:
            j += 1
            retry = _millis(argv[j], XCLAIM_OPTION.format("RETRYCOUNT"))
            if retry < 0:
                retry = None  # as Redis: a negative count is no count
        elif w == b"LASTID" and more:
            j += 1
            lastid = parse_id(argv[j], strict=True)
        else:
            raise CommandError(XCLAIM_UNKNOWN.format(_s(argv[j])))
        j += 1
    if when is not None and (when < 0 or when > now):
        when = now
    changed = moved = False
    if lastid is not None and lastid > g.last_id:
        g.last_id = lastid
        changed = moved = True
    cons = None
    out = []
    for i in ids:
        p = g.pel.get(i)
        entry = s.get(i)
        if p is None and (not force or entry is None):
            continue
        if entry is None:
            pel_remove(g, i)
            c.emit([b"XACK", key, name, format_id(i)])
            changed = True
            continue
        if p is not None and min_idle and now - p.time < min_idle:
            continue
        if cons is None:
            cons = consumer(c, key, name, g, cname, now)  # created by the first claim, as in Redis
        if p is None:
            p = g.pel[i] = Pending(cons, now, 1)
            cons.pel.add(i)
        else:
            if p.consumer is not cons:
                p.consumer.pel.discard(i)
                p.consumer = cons
                cons.pel.add(i)
        p.time = when if when is not None else now
        if retry is not None:
            p.count = retry
        elif not justid:
            p.count += 1
        cons.active = now
        changed = True
        c.emit(claim_effect(key, name, cname, i, p, g))
        out.append(format_id(i) if justid else [format_id(i), fields_of(entry[1], entry[0])])
    if changed:
        c.db.touched(key)
    if moved and not out:
        c.emit([b"XGROUP", b"SETID", key, name, format_id(g.last_id),
                *([b"ENTRIESREAD", b"%d" % g.entries_read] if g.entries_read is not None else [])])
    return out


@command("xautoclaim", -6, "write fast", (1, 1, 1), "@write @stream @fast", group="stream",
         summary="Changes (or acquires) ownership of messages in a consumer group, as if the messages were "
         "delivered to the specified consumer.", since="6.2.0", tips="nondeterministic_output",
         key_specs=(spec("RW delete"),))
def xautoclaim(c, argv):
    """XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID] --
    [next start, claimed entries, deleted IDs]. O(count)."""
    key, name, cname = argv[1], argv[2], argv[3]
    min_idle = max(_millis(argv[4], XAUTOCLAIM_MINIDLE), 0)
    start = parse_range_bound(argv[5], True)
    count = 100
    justid = False
    j = 6
    n = len(argv)
    while j < n:
        w = argv[j].upper()
        if w == b"COUNT" and j + 1 < n:
            count = to_int_or_none(argv[j + 1])
            if count is None or count < 1 or count > INT64_MAX // _XAUTOCLAIM_ATTEMPTS:
                raise CommandError(COUNT_POSITIVE)
            j += 2
        elif w == b"JUSTID":
            justid = True
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
    s, g = find_group(c, key, name)
    now = now_ms()
    cons = None  # created by the first claim, as in Redis
    attempts = count * _XAUTOCLAIM_ATTEMPTS
    out = []
    deleted = []
    nxt = MIN_ID
    walk = g.pel.irange(start, MAX_ID)
    for i in walk:
        if not attempts or len(out) >= count:
            nxt = i
            break
        attempts -= 1
        p = g.pel[i]
        entry = s.get(i)
        if entry is None:
            deleted.append(i)
            continue
        if min_idle and now - p.time < min_idle:
            continue
        if cons is None:
            cons = consumer(c, key, name, g, cname, now)
        if p.consumer is not cons:
            p.consumer.pel.discard(i)
            p.consumer = cons
            cons.pel.add(i)
        p.time = now
        if not justid:
            p.count += 1
        cons.active = now
        out.append((i, entry))
    for i in deleted:
        pel_remove(g, i)
    if deleted:
        c.emit([b"XACK", key, name, *map(format_id, deleted)])
    for i, _ in out:
        c.emit(claim_effect(key, name, cname, i, g.pel[i], g))
    if out or deleted:
        c.db.touched(key)
    claimed = [format_id(i) for i, _ in out] if justid else \
        [[format_id(i), fields_of(e[1], e[0])] for i, e in out]
    return [format_id(nxt), claimed, [format_id(i) for i in deleted]]

