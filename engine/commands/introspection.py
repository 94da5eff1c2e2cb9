"""COMMAND and its subcommands: the command table, described to clients.

Everything here is generated from ``engine.registry.COMMANDS`` at the moment
the command runs, so a command registered by any module is described without
being listed anywhere else.

A COMMAND INFO entry has Redis 7's ten fields: name, arity, flags (a set of
status strings), first key, last key, key step, ACL categories, tips, key
specifications and subcommands (entries of the same shape). Flags are printed
with ``_`` where a declaration may spell them with ``-`` (``no-auth`` is what
dispatch tests; Redis prints ``no_auth``), and flags and categories come out in
the order Redis prints them.
"""

from __future__ import annotations

import fnmatch

from engine import errors
from engine.errors import CommandError
from engine.registry import COMMANDS, command, dispatch_subcommand, lookup, subcommand
from engine.reply import Set, Status, help_lines

# The order redis-server prints flags and ACL categories in.
_FLAG_ORDER = (
    "write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript", "blocking", "loading",
    "stale", "skip_monitor", "skip_slowlog", "asking", "fast", "no_auth", "may_replicate", "sentinel",
    "only_sentinel", "no_mandatory_keys", "protected", "no_async_loading", "no_multi", "movablekeys",
    "allow_busy",
)
_ACL_ORDER = (
    "@keyspace", "@read", "@write", "@set", "@sortedset", "@list", "@hash", "@string", "@bitmap",
    "@hyperloglog", "@geo", "@stream", "@pubsub", "@admin", "@fast", "@slow", "@blocking", "@dangerous",
    "@connection", "@transaction", "@scripting",
)
_FLAG_RANK = {f: i for i, f in enumerate(_FLAG_ORDER)}
_ACL_RANK = {a: i for i, a in enumerate(_ACL_ORDER)}


# Flags a command carries that COMMAND INFO leaves out, as Redis does:
# may_replicate (a read that may journal a write, PFCOUNT's cache).
_HIDDEN = frozenset(("may_replicate",))


def wire_flags(cmd) -> list[str]:
    """The command's flags as Redis spells and orders them."""
    names = {f.replace("-", "_") for f in cmd.flags} - _HIDDEN
    return sorted(names, key=lambda f: (_FLAG_RANK.get(f, len(_FLAG_RANK)), f))


def wire_categories(cmd) -> list[str]:
    return sorted(cmd.acl, key=lambda a: (_ACL_RANK.get(a, len(_ACL_RANK)), a))


def _spec_entry(spec) -> dict:
    """One key specification as COMMAND INFO shows it (notes first, as Redis does)."""
    out = {b"notes": spec.notes.encode()} if spec.notes else {}
    out[b"flags"] = Set([Status(f) for f in spec.flags])
    begin, find = spec.begin, spec.find
    if begin[0] == "index":
        out[b"begin_search"] = {b"type": b"index", b"spec": {b"index": begin[1]}}
    elif begin[0] == "keyword":
        out[b"begin_search"] = {b"type": b"keyword", b"spec": {b"keyword": begin[1].upper(), b"startfrom": begin[2]}}
    else:
        out[b"begin_search"] = {b"type": b"unknown", b"spec": {}}
    if find[0] == "range":
        out[b"find_keys"] = {b"type": b"range",
                             b"spec": {b"lastkey": find[1], b"keystep": find[2], b"limit": find[3]}}
    elif find[0] == "keynum":
        out[b"find_keys"] = {b"type": b"keynum",
                             b"spec": {b"keynumidx": find[1], b"firstkey": find[2], b"keystep": find[3]}}
    else:
        out[b"find_keys"] = {b"type": b"unknown", b"spec": {}}
    return out


def info_entry(cmd) -> list:
    """One COMMAND INFO entry (Redis 7 format)."""
    return [
        cmd.fullname.encode(),
        cmd.arity,
        Set([Status(f) for f in wire_flags(cmd)]),
        cmd.first_key,
        cmd.last_key,
        cmd.key_step,
        Set([Status(a) for a in wire_categories(cmd)]),
        [Status(t) for t in cmd.tips],
        [_spec_entry(spec) for spec in cmd.key_specs],
        [info_entry(s) for s in cmd.subcommands.values()],
    ]


def docs_entry(cmd) -> dict:
    """One COMMAND DOCS entry: summary, since, group (and subcommands)."""
    doc = {b"summary": cmd.summary.encode(), b"since": cmd.since.encode(), b"group": cmd.group.encode()}
    if cmd.subcommands:
        doc[b"subcommands"] = {s.fullname.encode(): docs_entry(s) for s in cmd.subcommands.values()}
    return doc


def find(name: bytes):
    """A command by name, or a subcommand by ``parent|sub`` (any case)."""
    text = name.lower()
    if b"|" in text:
        parent_name, _, sub_name = text.partition(b"|")
        parent = lookup(parent_name)
        return parent.subcommands.get(sub_name) if parent is not None else None
    return lookup(text)


def all_commands():
    """Every command and subcommand, parents first."""
    for cmd in list(COMMANDS.values()):
        yield cmd
        yield from cmd.subcommands.values()


@command("command", -1, "loading stale", acl="@slow @connection", group="server", since="2.8.13",
         fast_path=False,
         tips="nondeterministic_output_order")
def command_(c, argv):
    """COMMAND [subcommand ...] -- details about every command. O(N)."""
    if len(argv) == 1:
        return [info_entry(cmd) for cmd in list(COMMANDS.values())]
    return dispatch_subcommand(command_.command, c, argv)


@subcommand("command", "count", 2, "loading stale", acl="@slow @connection", since="2.8.13")
def command_count(c, argv):
    """COMMAND COUNT -- the number of commands (subcommands not counted). O(1)."""
    return len(COMMANDS)


@subcommand("command", "info", -2, "loading stale", acl="@slow @connection", since="2.8.13",
            tips="nondeterministic_output_order")
def command_info(c, argv):
    """COMMAND INFO [command-name ...] -- details about the named commands, or all. O(N)."""
    if len(argv) == 2:
        return [info_entry(cmd) for cmd in list(COMMANDS.values())]
    out = []
    for name in argv[2:]:
        cmd = find(name)
        out.append(info_entry(cmd) if cmd is not None else None)
    return out


@subcommand("command", "docs", -2, "loading stale", acl="@slow @connection", since="7.0.0",
            tips="nondeterministic_output_order")
def command_docs(c, argv):
    """COMMAND DOCS [command-name ...] -- documentation of the named commands, or all. O(N)."""
    if len(argv) == 2:
        return {cmd.name.encode(): docs_entry(cmd) for cmd in list(COMMANDS.values())}
    out = {}
    for name in argv[2:]:
        cmd = find(name)
        if cmd is not None:
            out[cmd.fullname.encode()] = docs_entry(cmd)
    return out


@subcommand("command", "list", -2, "loading stale", acl="@slow @connection", since="7.0.0",
            tips="nondeterministic_output_order")
def command_list(c, argv):
    """COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern] -- command names. O(N)."""
    n = len(argv)
    if n == 2:
        return [cmd.fullname.encode() for cmd in all_commands()]
    if n != 5 or argv[2].lower() != b"filterby":
        raise CommandError(errors.SYNTAX)
    kind, value = argv[3].lower(), argv[4]
    if kind == b"module":
        return []  # Keel loads no modules
    if kind == b"aclcat":
        cat = "@" + value.decode("utf-8", "replace").lower()
        return [cmd.fullname.encode() for cmd in all_commands() if cat in cmd.acl]
    if kind == b"pattern":
        pat = value.decode("utf-8", "surrogateescape").lower()
        return [cmd.fullname.encode() for cmd in all_commands() if fnmatch.fnmatchcase(cmd.fullname, pat)]
    raise CommandError(errors.SYNTAX)


def _getkeys(argv: list) -> list[tuple]:
    """The keys of the command line ``argv[2:]`` with their flags, or the
    error Redis gives, checked in Redis's order: an unknown command (or
    subcommand), one without keys, a wrong argument count, no key found."""
    target = argv[2:]
    cmd = lookup(target[0])
    if cmd is not None and cmd.subcommands and len(target) > 1:
        cmd = cmd.subcommands.get(target[1].lower())
    if cmd is None:
        raise CommandError(errors.GETKEYS_INVALID_COMMAND)
    if not cmd.has_keys:
        raise CommandError(errors.GETKEYS_NO_KEYS)
    if not cmd.arity_ok(len(target)):
        raise CommandError(errors.GETKEYS_INVALID_ARITY)
    found = cmd.keys_and_flags(target)
    if not found and "no_mandatory_keys" not in cmd.flags:
        raise CommandError(errors.GETKEYS_INVALID_ARGUMENTS)
    return [(target[i], flags) for i, flags in found]


@subcommand("command", "getkeys", -4, "loading stale", acl="@slow @connection", since="2.8.13")
def command_getkeys(c, argv):
    """COMMAND GETKEYS command [arg ...] -- the key arguments of a full command. O(N)."""
    return [key for key, _ in _getkeys(argv)]


@subcommand("command", "getkeysandflags", -4, "loading stale", acl="@slow @connection", since="7.0.0")
def command_getkeysandflags(c, argv):
    """COMMAND GETKEYSANDFLAGS command [arg ...] -- the key arguments and how they are used. O(N)."""
    return [[key, Set([Status(f) for f in flags])] for key, flags in _getkeys(argv)]


_HELP = (
    "(no subcommand)",
    "    Describe every command the server knows.",
    "COUNT",
    "    How many commands there are, subcommands not counted.",
    "LIST [FILTERBY MODULE <name>|ACLCAT <category>|PATTERN <glob>]",
    "    The name of every command and subcommand, or of those the filter keeps.",
    "INFO [<command-name> ...]",
    "    Arity, flags, key positions and ACL categories of the named commands (of all, if none is named).",
    "DOCS [<command-name> ...]",
    "    Summary, first version and group of the named commands (of all, if none is named).",
    "GETKEYS <command> [<arg> ...]",
    "    Which arguments of that full command line are keys.",
    "GETKEYSANDFLAGS <command> [<arg> ...]",
    "    The key arguments of that full command line, each with how it is accessed.",
)


@subcommand("command", "help", 2, "loading stale", acl="@slow @connection", since="5.0.0")
def command_help(c, argv):
    """COMMAND HELP -- the subcommands of COMMAND. O(1)."""
    return help_lines("COMMAND", _HELP)
