"""Key specifications: where a command's keys are and what it does to them.

A command's keys are described as Redis 7 describes them (COMMAND INFO field
8): a list of ``KeySpec``, each one a way to *begin* searching argv (at a
fixed index, or after a keyword) and a way to *find* the keys from there (a
range, or a count read from an argument), with flags saying how the keys are
used. ``COMMAND GETKEYS``/``GETKEYSANDFLAGS``, client-side caching and ACL
key checks all read the keys through ``find`` below, so the one declaration
serves every use.

Flags (Redis's names and meaning):

* one of ``RO`` (read), ``RW`` (read and write), ``OW`` (overwrite: the old
  value is not read), ``RM`` (remove);
* what is done to the value: ``access`` (returned or used to compute the
  reply), ``update``, ``insert``, ``delete``;
* ``not_key`` (the argument sits where a key would, for cluster routing,
  but is a shard channel, not a key), ``incomplete`` (some keys may be
  missed), ``variable_flags`` (the flags depend on the other arguments: the
  command's own ``getkeys`` says which).

A spec whose keys cannot be found from argv alone (``unknown``: SORT's GET
patterns, its STORE that may appear anywhere) contributes no keys by itself;
the command declares ``getkeys(argv) -> [(position, flags), ...]`` for them.

Specs are declared with the handler (``@command(..., key_specs=(...))``).
``DECLARED_HERE`` at the end holds the specs and tips of the commands whose
modules were being reworked by others while key specs were introduced (lists,
sorted sets, scripting): declaring them here kept those edits apart. They
belong next to their handlers, and move there when those modules are next
touched (the registry refuses a command declared in both places).
"""

from __future__ import annotations

from engine.util import to_int_or_none

# The order Redis prints key-spec flags in.
FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete",
              "variable_flags")
_RANK = {f: i for i, f in enumerate(FLAG_ORDER)}


def flags_of(text) -> tuple:
    """``"RW insert"`` (or an iterable of names) as a tuple in Redis's order."""
    names = text.split() if isinstance(text, str) else list(text)
    for name in names:
        if name not in _RANK:
            raise ValueError(f"unknown key-spec flag {name!r}")
    return tuple(sorted(set(names), key=_RANK.__getitem__))


class KeySpec:
    """One key specification.

    ``begin`` is ``("index", pos)``, ``("keyword", word, startfrom)`` or
    ``("unknown",)``; ``find`` is ``("range", lastkey, keystep, limit)``,
    ``("keynum", keynumidx, firstkey, keystep)`` or ``("unknown",)``, with
    Redis's meaning of each number (``lastkey`` negative counts from the end
    of argv; ``limit`` divides what remains; ``keynumidx``/``firstkey`` are
    relative to where the search began).
    """

    __slots__ = ("flags", "begin", "find", "notes")

    def __init__(self, flags, begin: tuple, find: tuple, notes: str = ""):
        self.flags = flags_of(flags)
        self.begin = begin
        self.find = find
        self.notes = notes

    def __repr__(self) -> str:
        return f"<KeySpec {' '.join(self.flags)} {self.begin} {self.find}>"

    @property
    def is_key(self) -> bool:
        return "not_key" not in self.flags

    @property
    def needs_getkeys(self) -> bool:
        """True when argv alone cannot give this spec's keys or their flags."""
        return (self.begin[0] == "unknown" or self.find[0] == "unknown"
                or "incomplete" in self.flags or "variable_flags" in self.flags)

    def simple_range(self):
        """``(first, lastkey, step)`` when the keys are a plain index range."""
        if self.begin[0] == "index" and self.find[0] == "range" and self.find[3] == 0:
            return self.begin[1], self.find[1], self.find[2]
        return None

    def positions(self, argv: list):
        """The positions of this spec's keys in ``argv``.

        ``[]`` when the spec has nothing to say (a keyword that is absent, an
        ``unknown`` spec); ``None`` when argv contradicts it (a key count
        that is not a non-negative integer, keys past the end): the command
        line is invalid and has no keys at all.
        """
        argc = len(argv)
        kind = self.begin[0]
        if kind == "index":
            first = self.begin[1]
        elif kind == "keyword":
            first = _after_keyword(argv, self.begin[1], self.begin[2])
            if first is None:
                return []
        else:
            return []
        kind = self.find[0]
        if kind == "range":
            _, lastkey, step, limit = self.find
            if lastkey >= 0:
                last = first + lastkey
            elif limit:
                last = first + (argc - first) // limit + lastkey
            else:
                last = argc + lastkey
        elif kind == "keynum":
            _, keynumidx, firstkey, step = self.find
            at = first + keynumidx
            n = to_int_or_none(argv[at]) if at < argc else None
            if n is None or n < 0:
                return None
            first += firstkey
            last = first + n - 1
        else:
            return []
        if first >= argc or last >= argc or last < first:
            return None
        return list(range(first, last + 1, step))


def _after_keyword(argv: list, word: bytes, startfrom: int):
    """The position just after ``word`` (any case), searched from ``startfrom``:
    forwards when positive, backwards from the end when negative."""
    argc = len(argv)
    if startfrom > 0:
        order = range(startfrom, argc)
    else:
        order = range(argc + startfrom, 0, -1)
    for i in order:
        if 0 < i < argc and argv[i].lower() == word:
            return i + 1
    return None


# --- declaring specs ---------------------------------------------------------

def spec(flags: str, index: int = 1, last: int = 0, step: int = 1, limit: int = 0, notes: str = "") -> KeySpec:
    """Keys from ``argv[index]``: ``last`` more after it (negative: up to that
    many from the end), every ``step``-th one."""
    return KeySpec(flags, ("index", index), ("range", last, step, limit), notes)


def keyword_spec(flags: str, keyword: str, startfrom: int, last: int = 0, step: int = 1, limit: int = 0,
                 notes: str = "") -> KeySpec:
    """Keys after ``keyword`` (searched from ``startfrom``, negative from the end)."""
    return KeySpec(flags, ("keyword", keyword.lower().encode(), startfrom), ("range", last, step, limit), notes)


def keynum_spec(flags: str, index: int, keynumidx: int = 0, firstkey: int = 1, step: int = 1,
                notes: str = "") -> KeySpec:
    """``numkeys key [key ...]``: the count at ``index + keynumidx``, the keys from ``index + firstkey``."""
    return KeySpec(flags, ("index", index), ("keynum", keynumidx, firstkey, step), notes)


def unknown_spec(flags: str, notes: str) -> KeySpec:
    """Keys that cannot be found from argv alone (the command's getkeys finds them)."""
    return KeySpec(flags, ("unknown",), ("unknown",), notes)


def derived(first: int, last: int, step: int, write: bool) -> tuple:
    """The spec of a command that declares only (first, last, step): one range,
    read-and-written by a write command, read by any other."""
    if first <= 0:
        return ()
    return (spec("RW access update" if write else "RO access", first, last if last < 0 else last - first, step),)


# --- finding keys ---------------------------------------------------------------

def find(specs: tuple, getkeys, argv: list) -> list:
    """``[(position, flags), ...]`` of the keys in ``argv``, in spec order.

    A command with a spec that argv cannot settle asks its ``getkeys``; an
    invalid command line (a spec returns None) has no keys.
    """
    if getkeys is not None and any(s.needs_getkeys for s in specs):
        return getkeys(argv)
    out = []
    for s in specs:
        if not s.is_key:
            continue
        found = s.positions(argv)
        if found is None:
            return []
        out.extend((i, s.flags) for i in found)
    return out


# --- specs declared here rather than with their handlers (see the docstring) ----

_RO = "RO access"
_POP = "RW access delete"
_STORE = "OW update"
_ANY_USE_RW = "How the script uses its keys is unknown: assumed read, written and updated"
_ANY_USE_RO = "How the script uses its keys is unknown: assumed read"

DECLARED_HERE: dict[str, dict] = {
    # lists (engine/commands/list.py)
    "linsert": {"key_specs": (spec("RW insert"),)},
    "llen": {"key_specs": (spec("RO"),)},
    "lmove": {"key_specs": (spec(_POP), spec("RW insert", 2))},
    "lmpop": {"key_specs": (keynum_spec(_POP, 1),)},
    "lpop": {"key_specs": (spec(_POP),)},
    "lpush": {"key_specs": (spec("RW insert"),)},
    "lpushx": {"key_specs": (spec("RW insert"),)},
    "lrem": {"key_specs": (spec("RW delete"),)},
    "lset": {"key_specs": (spec("RW update"),)},
    "ltrim": {"key_specs": (spec("RW delete"),)},
    "rpop": {"key_specs": (spec(_POP),)},
    "rpoplpush": {"key_specs": (spec(_POP), spec("RW insert", 2))},
    "rpush": {"key_specs": (spec("RW insert"),)},
    "rpushx": {"key_specs": (spec("RW insert"),)},
    # sorted sets (engine/commands/zset.py, zset_range.py, zset_setops.py)
    "zadd": {"key_specs": (spec("RW update"),)},
    "zcard": {"key_specs": (spec("RO"),)},
    "zmpop": {"key_specs": (keynum_spec(_POP, 1),)},
    "zpopmax": {"key_specs": (spec(_POP),)},
    "zpopmin": {"key_specs": (spec(_POP),)},
    "zrandmember": {"tips": "nondeterministic_output"},
    "zrem": {"key_specs": (spec("RW delete"),)},
    "zscan": {"tips": "nondeterministic_output"},
    "zrangestore": {"key_specs": (spec(_STORE), spec(_RO, 2))},
    "zremrangebylex": {"key_specs": (spec("RW delete"),)},
    "zremrangebyrank": {"key_specs": (spec("RW delete"),)},
    "zremrangebyscore": {"key_specs": (spec("RW delete"),)},
    "zdiff": {"key_specs": (keynum_spec(_RO, 1),)},
    "zdiffstore": {"key_specs": (spec(_STORE), keynum_spec(_RO, 2))},
    "zinter": {"key_specs": (keynum_spec(_RO, 1),)},
    "zintercard": {"key_specs": (keynum_spec(_RO, 1),)},
    "zinterstore": {"key_specs": (spec(_STORE), keynum_spec(_RO, 2))},
    "zunion": {"key_specs": (keynum_spec(_RO, 1),)},
    "zunionstore": {"key_specs": (spec(_STORE), keynum_spec(_RO, 2))},
    # scripts and functions (server/scripting): a script may do anything to its
    # keys, so a writing one is assumed to read and update them all
    "eval": {"key_specs": (keynum_spec("RW access update", 2, notes=_ANY_USE_RW),)},
    "evalsha": {"key_specs": (keynum_spec("RW access update", 2),)},
    "eval_ro": {"key_specs": (keynum_spec(_RO, 2, notes=_ANY_USE_RO),)},
    "evalsha_ro": {"key_specs": (keynum_spec(_RO, 2),)},
    "fcall": {"key_specs": (keynum_spec("RW access update", 2, notes=_ANY_USE_RW),)},
    "fcall_ro": {"key_specs": (keynum_spec(_RO, 2, notes=_ANY_USE_RO),)},
    "script|exists": {"tips": "request_policy:all_shards response_policy:agg_logical_and"},
    "script|flush": {"tips": "request_policy:all_nodes response_policy:all_succeeded"},
    "script|load": {"tips": "request_policy:all_nodes response_policy:all_succeeded"},
    "script|kill": {"tips": "request_policy:all_shards response_policy:one_succeeded"},
    "function|delete": {"tips": "request_policy:all_shards response_policy:all_succeeded"},
    "function|flush": {"tips": "request_policy:all_shards response_policy:all_succeeded"},
    "function|load": {"tips": "request_policy:all_shards response_policy:all_succeeded"},
    "function|restore": {"tips": "request_policy:all_shards response_policy:all_succeeded"},
    "function|kill": {"tips": "request_policy:all_shards response_policy:one_succeeded"},
    "function|list": {"tips": "nondeterministic_output_order"},
    "function|stats": {"tips": "nondeterministic_output request_policy:all_shards response_policy:special"},
}
