"""XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP.

Replies in Redis 7.2's field order, as maps (RESP3) or flat arrays (RESP2).
``radix-tree-keys`` is the node count; ``radix-tree-nodes`` the node count of
a compressed radix tree over the node keys (``engine.types.stream.
radix_nodes``), which is what Redis's tree holds after appends and trims;
one changed by other deletions may differ from it.

7.2's fields over 7.0's: XINFO CONSUMERS gives ``inactive`` (ms since the
last successful read or claim, -1 if none), FULL's consumers ``active-time``.
"""

from __future__ import annotations

from engine import errors
from engine.commands.stream import NO_SUCH_KEY, get_stream
from engine.commands.stream_groups import NOGROUP_XGROUP
from engine.errors import CommandError
from engine.keyspace import now_ms
from engine.keyspecs import spec
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import help_lines
from engine.types.stream import Stream, fields_of, format_id
from engine.types.stream_group import lag
from engine.util import to_int_or_none

_FULL_COUNT = 10


def _existing(c, key: bytes):
    s = get_stream(c, key)
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    return s


def _entry(row):
    if row is None:
        return None
    i, v, mf = row
    return [format_id(i), fields_of(mf, v)]


def radix_nodes(s: Stream) -> int:
    """The node count of a radix tree holding the node keys (XINFO's radix-tree-nodes)."""
    keys = [m.to_bytes(8, "big") + q.to_bytes(8, "big") for m, q in s._firsts]
    if not keys:
        return 1
    return _subtree(keys, 0)


def _subtree(keys: list, d: int) -> int:
    if d == 16:
        return 1
    if len(keys) == 1:
        return 2
    a, b = keys[0], keys[-1]
    lcp = d
    while a[lcp] == b[lcp]:
        lcp += 1
    n = 1 if lcp > d else 0
    return n + _branch(keys, lcp)


def _branch(keys: list, d: int) -> int:
    n = 1
    start = 0
    for j in range(1, len(keys) + 1):
        if j == len(keys) or keys[j][d] != keys[start][d]:
            n += _subtree(keys[start:j], d + 1)
            start = j
    return n


@command("xinfo", -2, "", acl="@slow", group="stream", summary="A container for stream introspection commands",
         since="5.0.0")
def xinfo(c, argv):
    """XINFO <subcommand> ... -- stream introspection."""
    return dispatch_subcommand(xinfo.command, c, argv)


def _head(s) -> dict:
    return {
        b"length": s.length,
        b"radix-tree-keys": s.node_count(),
        b"radix-tree-nodes": radix_nodes(s),
        b"last-generated-id": format_id(s.last_id),
        b"max-deleted-entry-id": format_id(s.max_deleted),
        b"entries-added": s.entries_added,
        b"recorded-first-entry-id": format_id(s.first_id),
    }


def _full(s, count: int) -> dict:
    out = _head(s)
    out[b"entries"] = [[format_id(i), fields_of(mf, v)] for i, v, mf in s.range((0, 0), (2**64 - 1, 2**64 - 1), count)]
    groups = []
    for name, g in (s.groups or {}).items():
        pel = []
        for i, p in g.pel.items():
            if count and len(pel) == count:
                break
            pel.append([format_id(i), p.consumer.name, p.time, p.count])
        consumers = []
        for cname, cons in sorted(g.consumers.items()):
            mine = []
            for i in cons.pel:
                if count and len(mine) == count:
                    break
                p = g.pel[i]
                mine.append([format_id(i), p.time, p.count])
            consumers.append({b"name": cname, b"seen-time": cons.seen, b"active-time": cons.active,
                              b"pel-count": len(cons.pel), b"pending": mine})
        groups.append({b"name": name, b"last-delivered-id": format_id(g.last_id),
                       b"entries-read": g.entries_read, b"lag": lag(s, g), b"pel-count": len(g.pel),
                       b"pending": pel, b"consumers": consumers})
    out[b"groups"] = groups
    return out


@subcommand("xinfo", "stream", -3, "readonly", (2, 2, 1), "@read @stream @slow", summary="Get information about a stream",
            since="5.0.0", key_specs=(spec("RO access", 2),))
def xinfo_stream(c, argv):
    """XINFO STREAM key [FULL [COUNT count]] -- the stream's metadata (and entries, groups). O(log N) (FULL: O(N))."""
    n = len(argv)
    full = False
    count = _FULL_COUNT
    if n > 3:
        if argv[3].upper() != b"FULL" or n not in (4, 6):
            raise CommandError(errors.SUBCOMMAND_SYNTAX.format("STREAM", "XINFO"))
        full = True
        if n == 6:
            if argv[4].upper() != b"COUNT":
                raise CommandError(errors.SUBCOMMAND_SYNTAX.format("STREAM", "XINFO"))
            count = to_int_or_none(argv[5])
            if count is None:
                raise CommandError(errors.NOT_INTEGER)
            count = max(count, 0)
    s = _existing(c, argv[2])
    if full:
        return _full(s, count)
    out = _head(s)
    out[b"groups"] = len(s.groups) if s.groups else 0
    out[b"first-entry"] = _entry(s.first_entry())
    out[b"last-entry"] = _entry(s.last_entry())
    return out


@subcommand("xinfo", "groups", 3, "readonly", (2, 2, 1), "@read @stream @slow",
            summary="List the consumer groups of a stream", since="5.0.0", key_specs=(spec("RO access", 2),))
def xinfo_groups(c, argv):
    """XINFO GROUPS key -- one map per group. O(groups)."""
    s = _existing(c, argv[2])
    return [{b"name": name, b"consumers": len(g.consumers), b"pending": len(g.pel),
             b"last-delivered-id": format_id(g.last_id), b"entries-read": g.entries_read, b"lag": lag(s, g)}
            for name, g in (s.groups or {}).items()]


@subcommand("xinfo", "consumers", 4, "readonly", (2, 2, 1), "@read @stream @slow",
            summary="List the consumers in a consumer group", since="5.0.0", tips="nondeterministic_output",
            key_specs=(spec("RO access", 2),))
def xinfo_consumers(c, argv):
    """XINFO CONSUMERS key group -- one map per consumer. O(consumers)."""
    key, name = argv[2], argv[3]
    s = _existing(c, key)
    g = s.group(name)
    if g is None:
        raise CommandError(NOGROUP_XGROUP.format(name.decode("utf-8", "replace"), key.decode("utf-8", "replace")))
    now = now_ms()
    return [{b"name": cname, b"pending": len(cons.pel), b"idle": max(now - cons.seen, 0),
             b"inactive": max(now - cons.active, 0) if cons.active >= 0 else -1}
            for cname, cons in sorted(g.consumers.items())]


_XINFO_HELP = (
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
)


@subcommand("xinfo", "help", 2, "loading stale", acl="@stream @slow",
            summary="Show helpful text about the different subcommands", since="5.0.0")
def xinfo_help(c, argv):
    """XINFO HELP -- what the subcommands do."""
    return help_lines("XINFO", _XINFO_HELP)
