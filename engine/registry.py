"""The command table: every command declared once, next to its handler.

``@command(...)`` records what Redis's own command table carries — name,
arity (negative means "at least"), flags, key positions (first, last, step),
ACL categories, command tips and key specifications (``engine.keyspecs``) —
and registers the handler in ``TABLE``. Dispatch, MULTI
queueing, ACL checks and the ``COMMAND`` introspection family are all derived
from this one declaration; nothing else lists commands.

Container commands (CLIENT, CONFIG, OBJECT, COMMAND, DEBUG) declare their
subcommands with ``@subcommand(parent, name, ...)``; the parent's handler
dispatches to them with ``dispatch_subcommand``.

Invariants:
* ``TABLE`` maps the lower-case *and* upper-case name (bytes) to the same
  ``Command``, so the hot path finds ``GET`` and ``get`` with one dict lookup;
  mixed case falls back to ``name.lower()``.
* Flags and categories are ``frozenset``s of ``str`` exactly as Redis spells
  them (``"write"``, ``"denyoom"``; ``"@string"``), so COMMAND INFO can be
  compared with a real redis-server's field by field.
"""

from __future__ import annotations

from typing import Callable

from engine import errors, keyspecs
from engine.errors import CommandError

Handler = Callable[..., object]


class Command:
    """One entry of the command table (a command or a subcommand)."""

    __slots__ = (
        "name", "fullname", "arity", "flags", "first_key", "last_key", "key_step",
        "acl", "handler", "subcommands", "parent", "summary", "since", "group",
        "is_write", "calls", "usec", "timed_calls", "rejected_calls", "failed_calls",
        "getkeys", "key_specs", "tips", "_one_spec",
    )

    def __init__(self, name, arity, flags, keys, acl, handler, parent=None,
                 summary="", since="1.0.0", group="generic"):
        self.name = name
        self.parent = parent
        self.fullname = f"{parent.name}|{name}" if parent else name
        self.arity = arity
        self.flags = frozenset(flags.split()) if isinstance(flags, str) else frozenset(flags)
        self.first_key, self.last_key, self.key_step = keys
        self.acl = frozenset(acl.split()) if isinstance(acl, str) else frozenset(acl)
        self.handler = handler
        self.subcommands: dict[bytes, Command] = {}
        self.summary = summary
        self.since = since
        self.group = group
        self.is_write = "write" in self.flags
        # Where the keys are and how they are used (COMMAND INFO field 8): one
        # range spec derived from (first, last, step) unless declared. A
        # command whose specs argv alone cannot settle (SORT's STORE, SET's
        # flags that depend on GET) names its keys with ``getkeys(argv) ->
        # [(position, flags), ...]``.
        self.key_specs: tuple = keyspecs.derived(self.first_key, self.last_key, self.key_step, self.is_write)
        self.getkeys = None
        self.tips: tuple = ()  # COMMAND INFO field 7, in Redis's order
        self._one_spec = None  # the spec key_positions can use alone, if any
        # INFO commandstats counters (kept here: one object per command, no
        # lookups on the hot path beyond the one dispatch already does).
        self.calls = 0
        self.usec = 0  # nanoseconds over timed_calls (a sample of calls)
        self.timed_calls = 0
        self.rejected_calls = 0
        self.failed_calls = 0

    def __repr__(self) -> str:
        return f"<Command {self.fullname} arity={self.arity}>"

    def arity_ok(self, n: int) -> bool:
        a = self.arity
        return n == a if a > 0 else n >= -a

    def set_keys(self, key_specs, tips, getkeys) -> None:
        if key_specs is not None:
            self.key_specs = tuple(key_specs)
        self.getkeys = getkeys
        self.tips = tuple(tips.split()) if isinstance(tips, str) else tuple(tips)
        keyed = [s for s in self.key_specs if s.is_key]
        self._one_spec = keyed[0] if len(keyed) == 1 and not keyed[0].needs_getkeys else None

    @property
    def has_keys(self) -> bool:
        """Whether any argument may be a key (COMMAND GETKEYS refuses the others)."""
        return self.getkeys is not None or any(s.is_key for s in self.key_specs)

    def keys_and_flags(self, argv: list) -> list[tuple]:
        """``[(position, flags), ...]`` of the keys in ``argv`` (GETKEYSANDFLAGS, ACL)."""
        return keyspecs.find(self.key_specs, self.getkeys, argv)

    def key_positions(self, argv: list) -> list[int]:
        """Indexes of the key arguments in ``argv`` (COMMAND GETKEYS, tracking)."""
        one = self._one_spec
        if one is not None:
            return one.positions(argv) or []
        return [i for i, _ in keyspecs.find(self.key_specs, self.getkeys, argv)]


TABLE: dict[bytes, Command] = {}
# The hot path's table: the commands it may run without the full dispatch
# sequence. A command declared ``fast_path=False`` (it changes the client's
# state: QUIT, AUTH, HELLO, CLIENT, RESET, SHUTDOWN, …) is left out and always
# goes through ``server.dispatch``.
# FAST[argc][name] is ``(handler, check, command)`` for each command that
# accepts ``argc`` arguments (name included): one list index and one dict
# lookup both find the command and check its arity. Commands called with more
# than FAST_MAX_ARGC arguments, or with a wrong count, take the full dispatch,
# which names the arity error. ``check`` says that the hot path must prove
# every argument a bulk string first (a client may send ``:5``): true for
# commands that store their arguments (writes) or send them back (ECHO,
# PING); a read given a non-string argument can only miss.
FAST_MAX_ARGC = 64
FAST: list[dict[bytes, tuple]] = [{} for _ in range(FAST_MAX_ARGC + 1)]


def _fast_add(name: str, cmd: "Command") -> None:
    lo = abs(cmd.arity)
    hi = cmd.arity if cmd.arity > 0 else FAST_MAX_ARGC
    entry = (cmd.handler, cmd.is_write or name in ("echo", "ping"), cmd)
    for argc in range(lo, min(hi, FAST_MAX_ARGC) + 1):
        FAST[argc][name.encode()] = entry
        FAST[argc][name.upper().encode()] = entry


def rename_command(old: str, new: str) -> None:
    """``rename-command OLD NEW`` (config file only, applied once at start, for
    the whole process): the command answers to ``new`` only; ``new`` empty
    removes it. Its table entry, COMMAND INFO and statistics keep the
    command's own name, as Redis keeps them. KeyError when ``old`` is unknown;
    ValueError when ``new`` is taken."""
    cmd = TABLE.get(old.lower().encode())
    if cmd is None:
        raise KeyError(old)
    if new and new.lower().encode() in TABLE:
        raise ValueError(new)
    for key in [k for k, v in TABLE.items() if v is cmd]:
        del TABLE[key]
    entries = {}
    for argc_table in FAST:
        for key in [k for k, v in argc_table.items() if v[2] is cmd]:
            entries[id(argc_table)] = (argc_table, argc_table.pop(key))
    if not new:
        return
    for name in (new.lower().encode(), new.upper().encode(), new.encode()):
        TABLE[name] = cmd
        for argc_table, entry in entries.values():
            argc_table[name] = entry


def checks_own_arguments(name: str, argc: int) -> None:
    """The handler of ``name`` proves its ``argc`` arguments bulk strings itself
    (raising TypeError before it changes anything), cheaper than the hot path's
    generic check: plain SET is the hottest write."""
    for n in (name.encode(), name.upper().encode()):
        handler, _, cmd = FAST[argc][n]
        FAST[argc][n] = (handler, False, cmd)


def _fast_remove(name: str) -> None:
    for table in FAST:
        table.pop(name.encode(), None)
        table.pop(name.upper().encode(), None)
COMMANDS: dict[str, Command] = {}  # lower-case name -> command, for introspection


def command(name: str, arity: int, flags: str = "", keys=(0, 0, 0), acl: str = "",
            summary: str = "", since: str = "1.0.0", group: str = "generic", fast_path: bool = True,
            getkeys=None, key_specs=None, tips: str = ""):
    """Declare a command: ``@command("get", 2, "readonly fast", (1, 1, 1), "@read @string @fast")``.

    ``key_specs`` (``engine.keyspecs.spec(...)`` & co.) replaces the one
    range spec derived from (first, last, step); ``getkeys(argv) ->
    [(position, flags), ...]`` finds the keys of a spec argv cannot settle;
    ``tips`` are Redis's command tips (``"request_policy:all_shards"``).
    """

    def register(fn: Handler) -> Handler:
        cmd = Command(name, arity, flags, keys, acl, fn, summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
                      since=since, group=group)
        if name in COMMANDS:
            raise RuntimeError(f"command {name!r} declared twice")
        cmd.set_keys(*_declared(name, key_specs, tips), getkeys)
        COMMANDS[name] = cmd
        TABLE[name.encode()] = cmd
        TABLE[name.upper().encode()] = cmd
        if fast_path and not cmd.subcommands:
            _fast_add(name, cmd)
        fn.command = cmd
        return fn

    return register


def _declared(fullname: str, key_specs, tips: str):
    """The key specs and tips of a command, from its declaration or from
    ``keyspecs.DECLARED_HERE`` (never both)."""
    here = keyspecs.DECLARED_HERE.get(fullname)
    if here is None:
        return key_specs, tips
    if key_specs is not None or tips:
        raise RuntimeError(f"key specs or tips of {fullname!r} declared twice")
    return here.get("key_specs"), here.get("tips", "")


def subcommand(parent: str, name: str, arity: int, flags: str = "", keys=(0, 0, 0), acl: str = "",
               summary: str = "", since: str = "1.0.0", key_specs=None, tips: str = ""):
    """Declare ``PARENT NAME``; arity counts the parent too, as Redis does."""

    def register(fn: Handler) -> Handler:
        p = COMMANDS[parent]
        cmd = Command(name, arity, flags, keys, acl, fn, parent=p,
                      summary=summary or (fn.__doc__ or "").strip().split("\n")[0], since=since, group=p.group)
        specs, tips_ = _declared(cmd.fullname, key_specs, tips)
        cmd.set_keys(specs, tips_, None)
        p.subcommands[name.encode()] = cmd
        _fast_remove(p.name)
        fn.command = cmd
        return fn

    return register


def lookup(name: bytes) -> Command | None:
    cmd = TABLE.get(name)
    if cmd is None:
        cmd = TABLE.get(name.lower())
    return cmd


def dispatch_subcommand(parent: Command, c, argv: list):
    """Run ``PARENT SUB ...``: find SUB (any case), check its arity, call it."""
    sub = parent.subcommands.get(argv[1].lower())
    if sub is None:
        raise CommandError(errors.UNKNOWN_SUBCOMMAND.format(
            argv[1].decode("utf-8", "replace"), parent.name.upper()))
    if not sub.arity_ok(len(argv)):
        raise CommandError(errors.WRONG_ARITY.format(sub.fullname))
    return sub.handler(c, argv)


def resolve(argv: list) -> Command | None:
    """The table entry that ``argv`` runs: the subcommand when there is one."""
    cmd = lookup(argv[0])
    if cmd is not None and cmd.subcommands and len(argv) > 1:
        return cmd.subcommands.get(argv[1].lower(), cmd)
    return cmd
