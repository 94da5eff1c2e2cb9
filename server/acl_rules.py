"""ACL selectors: what a set of rules allows (commands, keys, channels), and
the check of one command line against them.

A user (``server.acl.User``) has a root selector and any number of further
selectors, ``(...)`` in the rule grammar; a command runs when one of them
allows it. A selector holds:

* the commands it allows: a set of ``engine.registry.Command`` entries
  (subcommands are entries of their own, as Redis gives each its own bit);
  ``+cmd`` on a container allows every subcommand, ``+cmd|sub`` one, ``+@cat``
  every command and subcommand in the category (read from the command table,
  so ACL CAT and the checks agree with COMMAND INFO); ``+cmd|arg`` of a
  command without subcommands allows it with that first argument only
  (Redis's deprecated first-arg rules);
* the command rules as given (Redis 7.2 keeps them in order instead of
  recomputing a minimal description from the bitmap, as 7.0 did): a rule
  replaces an earlier rule for the same name and the rules of its
  subcommands; ``+@all``/``-@all`` clear them;
* key patterns with read/write permissions (``~p`` both, ``%R~p``, ``%W~p``),
  ``allkeys`` (``~*``);
* channel patterns (``&p``), ``allchannels`` (``&*``).

Key permission needed by a key, from its key-spec flags (Redis's rule):
``access`` needs read; ``insert``/``update``/``delete`` need write; a key
with neither (EXISTS, TYPE) needs a pattern that matches, whatever its
permissions. Channels of PUBLISH/SUBSCRIBE/SSUBSCRIBE/SPUBLISH match the
patterns as globs; PSUBSCRIBE's patterns must equal a permitted pattern.
"""

from __future__ import annotations

import re

from engine import glob
from engine.registry import COMMANDS

# Check results, ordered as Redis ranks them when several selectors refuse.
OK, DENIED_CMD, DENIED_KEY, DENIED_AUTH, DENIED_CHANNEL = range(5)

READ, WRITE = 1, 2
RW = READ | WRITE

# Why a rule was refused (the text after "Error in ACL SETUSER modifier '...': ").
SYNTAX = "Syntax error"
UNKNOWN = "Unknown command or category name in ACL"
AFTER_ALLKEYS = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have "
                 "any effect. Try 'resetkeys' to start with an empty list of patterns")
AFTER_ALLCHANNELS = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not "
                     "have any effect. Try 'resetchannels' to start with an empty list of channels")
FIRSTARG_OF_SUB = "Allowing first-arg of a subcommand is not supported"

# The categories ACL CAT lists, in Redis's order.
CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
    "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
    "transaction", "scripting",
)

# Commands whose arguments are channels: (first, last or None for all, as patterns).
CHANNEL_ARGS = {
    "publish": (1, 1, False),
    "spublish": (1, 1, False),
    "subscribe": (1, None, False),
    "ssubscribe": (1, None, False),
    "psubscribe": (1, None, True),
}


_NEEDS: dict = {}
_ONE, _GETKEYS, _SPECS = object(), object(), object()
# Command -> (how its keys are found: _ONE | _GETKEYS | _SPECS | None, the permission a
# _ONE key needs, its CHANNEL_ARGS or None): worked out once per command.
_PLANS: dict = {}


def _need(flags) -> int:
    """The permission a key with these key-spec flags needs (READ, WRITE, both, or none)."""
    need = _NEEDS.get(flags)
    if need is None:
        need = 0
        if "access" in flags:
            need |= READ
        if "insert" in flags or "update" in flags or "delete" in flags:
            need |= WRITE
        _NEEDS[flags] = need
    return need


def _plan(cmd) -> tuple:
    channels = CHANNEL_ARGS.get(cmd.fullname)
    if not cmd.has_keys:
        return None, 0, channels
    spec = cmd._one_spec
    if spec is not None and cmd.getkeys is None and spec.simple_range() == (1, 0, 1):
        return _ONE, _need(spec.flags), channels
    if cmd.getkeys is not None and any(s.needs_getkeys for s in cmd.key_specs):  # as keyspecs.find decides
        return _GETKEYS, 0, channels
    return _SPECS, 0, channels


def _any_of(patterns: list):
    """One predicate for "matches one of these glob patterns"."""
    if not patterns:
        return lambda key: False
    empty_ok = b"" in patterns
    rest = [p for p in patterns if p]
    if not rest:
        return lambda key: not key
    fullmatch = re.compile(b"|".join(b"(?:" + glob.to_regex(p) + b")" for p in rest), re.DOTALL).fullmatch
    if empty_ok:
        return lambda key: not key or fullmatch(key) is not None
    return lambda key: bool(key) and fullmatch(key) is not None


class RuleError(Exception):
    """A rule refused: ``str(e)`` is Redis's reason."""


def every_command():
    """Every command and subcommand of the table."""
    for cmd in COMMANDS.values():
        yield cmd
        yield from cmd.subcommands.values()


def in_category(cat: str) -> list:
    """The commands and subcommands whose ACL categories include ``@cat``."""
    tag = "@" + cat
    return [cmd for cmd in every_command() if tag in cmd.acl]


def lookup_command(name: str):
    """``get`` or ``client|id`` (any case) as a table entry, else None."""
    parent, _, sub = name.lower().partition("|")
    cmd = COMMANDS.get(parent)
    if cmd is None or not sub:
        return cmd if "|" not in name else None
    return cmd.subcommands.get(sub.encode())


class Selector:
    __slots__ = ("allowed", "allcommands", "future", "rules", "firstargs",
                 "keys", "allkeys", "channels", "allchannels", "_matchers")

    def __init__(self, allchannels: bool = False):
        self.allowed: set = set()
        self.allcommands = False  # every command, nothing taken away since +@all
        self.future = False  # +@all was the last of +@all/-@all: describes as "+@all ..."
        self.rules: list[str] = []  # command rules as given, e.g. "+get", "-@dangerous"
        self.firstargs: dict = {}  # Command -> set of allowed first arguments (lower case)
        self.keys: list = []  # [pattern bytes, READ|WRITE]
        self.allkeys = False
        self.channels: list = []  # [pattern bytes, matcher]
        self.allchannels = allchannels
        self._matchers: dict = {}  # permission needed -> one predicate over every pattern that grants it

    def copy(self) -> "Selector":
        s = Selector()  # its matchers are made again when first needed
        s.allowed = set(self.allowed)
        s.allcommands, s.future, s.rules = self.allcommands, self.future, list(self.rules)
        s.firstargs = {k: set(v) for k, v in self.firstargs.items()}
        s.keys = [list(k) for k in self.keys]
        s.allkeys = self.allkeys
        s.channels = [list(c) for c in self.channels]
        s.allchannels = self.allchannels
        return s

    @property
    def unrestricted(self) -> bool:
        return self.allcommands and self.allkeys and self.allchannels

    # -- rules ---------------------------------------------------------------
    def apply(self, op: str) -> None:
        """Apply one selector rule (``+get``, ``%R~k*``, ``allchannels``, ...) or raise RuleError."""
        low = op.lower()
        if low in ("allkeys", "~*"):
            self.allkeys = True
            self.keys = []
        elif low == "resetkeys":
            self.allkeys = False
            self.keys = []
            self._matchers = {}
        elif op[:1] in ("~", "%"):
            self._add_key_pattern(op)
            self._matchers = {}
        elif low in ("allchannels", "&*"):
            self.allchannels = True
            self.channels = []
        elif low == "resetchannels":
            self.allchannels = False
            self.channels = []
        elif op[:1] == "&":
            if self.allchannels:
                raise RuleError(AFTER_ALLCHANNELS)
            pat = op[1:].encode("utf-8", "surrogateescape")
            if not any(c[0] == pat for c in self.channels):
                self.channels.append([pat, glob.compile(pat)])
        elif low in ("allcommands", "+@all"):
            self.allowed = set(every_command())
            self.allcommands = self.future = True
            self.rules = []
            self.firstargs = {}
        elif low in ("nocommands", "-@all"):
            self.allowed = set()
            self.allcommands = self.future = False
            self.rules = []
            self.firstargs = {}
        elif op[:2] in ("+@", "-@"):
            cat = low[2:]
            if cat not in CATEGORIES:
                raise RuleError(UNKNOWN)
            allow = op[0] == "+"
            for cmd in in_category(cat):
                self._change(cmd, allow)
            self._record(low[1:], allow)
        elif op[:1] == "+":
            self._allow(op[1:])
        elif op[:1] == "-":
            cmd = lookup_command(op[1:])
            if cmd is None:
                raise RuleError(UNKNOWN)
            self._change(cmd, False)
            self._record(cmd.fullname, False)
        else:
            raise RuleError(SYNTAX)

    def _allow(self, name: str) -> None:
        if "|" not in name:
            cmd = lookup_command(name)
            if cmd is None:
                raise RuleError(UNKNOWN)
            self._change(cmd, True)
            self._record(cmd.fullname, True)
            return
        head, _, arg = name.rpartition("|")
        cmd = lookup_command(head)
        if cmd is None:
            raise RuleError(UNKNOWN)
        if cmd.parent is not None:
            raise RuleError(FIRSTARG_OF_SUB)
        if not arg:
            raise RuleError(SYNTAX)
        if cmd.subcommands:
            sub = cmd.subcommands.get(arg.lower().encode())
            if sub is None:
                raise RuleError(UNKNOWN)
            self._change(sub, True)
            self._record(sub.fullname, True)
        else:  # first-arg rule: SELECT 0 but no other database
            if cmd not in self.allowed:
                self.firstargs.setdefault(cmd, set()).add(arg.lower().encode())
            self._record(name.lower(), True)

    def _change(self, cmd, allow: bool) -> None:
        group = [cmd, *cmd.subcommands.values()]
        if allow:
            self.allowed.update(group)
        else:
            self.allowed.difference_update(group)
            self.allcommands = False
        self.firstargs.pop(cmd, None)

    def _record(self, name: str, allow: bool) -> None:
        """Keep ``name``'s rule last, replacing earlier ones for it and its subcommands."""
        sub = name + "|"
        self.rules = [r for r in self.rules if r[1:] != name and not r[1:].startswith(sub)]
        self.rules.append(("+" if allow else "-") + name)

    def _add_key_pattern(self, op: str) -> None:
        if self.allkeys:
            raise RuleError(AFTER_ALLKEYS)
        if op[0] == "%":
            flags, i = 0, 1
            while i < len(op):
                ch = op[i].upper()
                if ch == "R" and not flags & READ:
                    flags |= READ
                elif ch == "W" and not flags & WRITE:
                    flags |= WRITE
                elif ch == "~" and flags:
                    i += 1
                    break
                else:
                    raise RuleError(SYNTAX)
                i += 1
            pat = op[i:]
        else:
            flags, pat = RW, op[1:]
        if pat == "*" and flags == RW:
            self.allkeys = True
            self.keys = []
            return
        p = pat.encode("utf-8", "surrogateescape")
        for k in self.keys:
            if k[0] == p:
                k[1] |= flags
                return
        self.keys.append([p, flags])

    # -- description -----------------------------------------------------------
    def describe_commands(self) -> str:
        return " ".join(["+@all" if self.future else "-@all", *self.rules])

    def describe_keys(self) -> str:
        if self.allkeys:
            return "~*"
        return " ".join(("~" if f == RW else "%R~" if f == READ else "%W~") + p.decode("utf-8", "surrogateescape")
                        for p, f in self.keys)

    def describe_channels(self) -> str:
        if self.allchannels:
            return "&*"
        return " ".join("&" + p.decode("utf-8", "surrogateescape") for p, _ in self.channels)

    def describe(self) -> str:
        """The selector as rules (ACL LIST, the ACL file): keys, channels, commands."""
        parts = []
        keys = self.describe_keys()
        if keys:
            parts.append(keys)
        if self.allchannels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            if self.channels:
                parts.append(self.describe_channels())
        parts.append(self.describe_commands())
        return " ".join(parts)

    # -- checks ----------------------------------------------------------------
    def allows_command(self, cmd, argv: list | None = None) -> bool:
        """The command part of the check (first-arg rules need ``argv``)."""
        if self.allcommands or cmd in self.allowed or "no-auth" in cmd.flags:
            return True
        allowed_args = self.firstargs.get(cmd)
        return allowed_args is not None and argv is not None and len(argv) > 1 and argv[1].lower() in allowed_args

    def reads_every_key(self) -> bool:
        return self.allkeys or any(p == b"*" and perms & READ for p, perms in self.keys)

    def check(self, cmd, argv: list) -> tuple:
        """``(OK | DENIED_*, index of the refused argument)`` for ``cmd`` run as ``argv``."""
        if not self.allcommands and cmd not in self.allowed and not self.allows_command(cmd, argv):
            return DENIED_CMD, 0
        plan = _PLANS.get(cmd)
        if plan is None:
            plan = _PLANS[cmd] = _plan(cmd)
        keys, need, channels = plan
        if keys is not None and not self.allkeys:
            if keys is _ONE:  # one key at argv[1]: GET, INCR, HSET, ...
                if len(argv) > 1 and not self._matcher(need)(argv[1]):
                    return DENIED_KEY, 1
            else:
                for pos, flags in (cmd.getkeys(argv) if keys is _GETKEYS else cmd.keys_and_flags(argv)):
                    if not self._matcher(_need(flags))(argv[pos]):
                        return DENIED_KEY, pos
        if channels is not None and not self.allchannels:
            first, last, is_pattern = channels
            stop = len(argv) if last is None else min(last + 1, len(argv))
            for pos in range(first, stop):
                if not self.channel_allowed(argv[pos], is_pattern):
                    return DENIED_CHANNEL, pos
        return OK, 0

    def key_allowed(self, key: bytes, flags) -> bool:
        return self.allkeys or self._matcher(_need(flags))(key)

    def _matcher(self, need: int):
        """A predicate telling whether a key matches a pattern that grants ``need``:
        the patterns joined into one regex, so that a key costs one match however
        many patterns there are."""
        m = self._matchers.get(need)
        if m is None:
            pats = [p for p, perms in self.keys if perms & need == need]
            m = self._matchers[need] = _any_of(pats)
        return m

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        if self.allchannels:
            return True
        if is_pattern:
            return any(p == channel for p, _ in self.channels)
        return any(match(channel) for _, match in self.channels)
