"""FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL|HELP, FCALL, FCALL_RO.

A library is Lua code that opens with ``#!lua name=<library>`` and, when
run once at load, registers its functions with ``redis.register_function``
(``(name, callback)`` or ``{function_name=, callback=, flags=, description=}``).
Libraries live in their own Lua state (``@user_function`` in error texts),
apart from EVAL's, as in Redis. FCALL calls a function with ``(keys, args)``.

Durability: FUNCTION LOAD journals itself (with REPLACE, so a replay over a
checkpoint that already holds the library succeeds), and DELETE, FLUSH and
RESTORE journal themselves; checkpoints keep every library's code
(``codes``/``load_codes``, called by ``wal.checkpoint``), so functions
survive a restart, ``kill -9`` included. FUNCTION DUMP writes Redis's
payload: per library the RDB function opcode (245) and the code as an RDB
string, then the RDB version and a CRC64, so a dump restores on Redis too.
"""

from __future__ import annotations

import re
import time

from engine import errors, rdb
from engine.errors import CommandError
from engine.glob import match as glob_match
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import OK, Set, help_lines
from server.scripting.eval import SCRIPT_FLAGS, numkeys, _keys
from server.scripting.runner import ScriptRun
from server.scripting.vm import ScriptError, lua_type

_NAME = re.compile(rb"^[A-Za-z0-9_]+$")
_OPCODE_FUNCTION = b"\xf5"  # RDB_OPCODE_FUNCTION2
LOAD_TIME_LIMIT = 0.5  # seconds a library's body may run at load
_NAME_ERR = "ERR {} names can only contain letters, numbers, or underscores(_) and must be at least one character long"


class Function:
    __slots__ = ("name", "callback", "flags", "description", "library", "text", "no_writes")

    def __init__(self, name, callback, flags, description, library):
        self.name, self.callback, self.flags = name, callback, flags
        self.description, self.library = description, library
        self.text = name.decode("utf-8", "replace")  # (as error texts name it)
        self.no_writes = b"no-writes" in flags


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes, functions: dict):
        self.name, self.code, self.functions = name, code, functions


# --- loading ----------------------------------------------------------------------

def _vm(scripting):
    vm = scripting.function_vm
    if vm is None:
        vm = scripting.function_vm = scripting._new_vm(b"@user_function")
        vm.api[b"redis"][b"register_function"] = lambda *a: _register(scripting, *a)
    return vm


def _metadata(code: bytes) -> tuple[bytes, bytes]:
    """(library name, the code to compile with its first line blanked)."""
    if not code.startswith(b"#!"):
        raise CommandError("ERR Missing library metadata")
    end = code.find(b"\n")
    line = code if end < 0 else code[:end]
    parts = line.split()
    if parts[0] != b"#!lua":
        raise CommandError(f"ERR Engine '{parts[0][2:].decode('utf-8', 'replace')}' not found")
    name = None
    for opt in parts[1:]:
        if not opt.startswith(b"name="):
            raise CommandError(f"ERR Invalid metadata value given: {opt.decode('utf-8', 'replace')}")
        name = opt[5:]
    if not name:
        raise CommandError("ERR Library name was not given")
    if not _NAME.match(name):
        raise CommandError(_NAME_ERR.format("Library"))
    return name, (b"" if end < 0 else code[end:])


def _register(scripting, *args):
    pending = scripting.loading
    if pending is None:
        raise ScriptError("ERR redis.register_function can only be called on FUNCTION LOAD command")
    flags, description = (), None
    if len(args) == 1 and lua_type(args[0]) == "table":
        t = args[0]
        for k in t.keys():
            if k not in (b"function_name", b"callback", b"flags", b"description"):
                raise ScriptError("ERR unknown argument given to redis.register_function")
        name, callback, fl, description = t[b"function_name"], t[b"callback"], t[b"flags"], t[b"description"]
        if fl is not None:
            if lua_type(fl) != "table":
                raise ScriptError("ERR flags argument to redis.register_function must be a table representing function flags")
            flags = tuple(fl.values())
    elif len(args) == 2:
        name, callback = args
    elif len(args) == 1:
        raise ScriptError("ERR calling redis.register_function with a single argument is only applicable to "
                          "Lua table (representing named arguments).")
    else:
        raise ScriptError("ERR wrong number of arguments to redis.register_function")
    if type(name) is not bytes:
        raise ScriptError("ERR function_name argument given to redis.register_function must be a string")
    if lua_type(callback) != "function":
        raise ScriptError("ERR callback argument given to redis.register_function must be a function")
    if not _NAME.match(name):
        raise ScriptError(_NAME_ERR.format("Library"))  # sic: Redis names libraries here too
    if name in pending:
        raise ScriptError("ERR Function already exists in the library")
    for f in flags:
        if f not in SCRIPT_FLAGS:
            raise ScriptError("ERR unknown flag given")
    pending[name] = Function(name, callback, frozenset(flags), description, None)


def load_library(scripting, code: bytes, replace: bool) -> bytes:
    name, body = _metadata(code)
    old = scripting.libraries.get(name)
    if old is not None and not replace:
        raise CommandError(f"ERR Library '{name.decode()}' already exists")
    vm = _vm(scripting)
    r = vm.compile(body)
    func, err = r if type(r) is tuple else (r, None)
    if func is None:
        raise CommandError("ERR Error compiling function: " + err.decode("utf-8", "replace"))
    scripting.loading = {}
    scripting.load_deadline = time.monotonic() + LOAD_TIME_LIMIT
    try:
        r = vm.api[b"run_plain"](func)
        ok, res = (r, None) if type(r) is bool else r[:2]
        pending = scripting.loading
    finally:
        scripting.loading = None
        scripting.load_deadline = None
    if not ok:
        msg = res[1].decode("utf-8", "replace") if lua_type(res) == "table" else "ERR out of memory"
        raise CommandError("ERR Error registering functions: " + msg)
    if not pending:
        raise CommandError("ERR No functions registered")
    for fname in pending:
        owner = scripting.functions.get(fname)
        if owner is not None and owner.library != name:
            raise CommandError(f"ERR Function {fname.decode()} already exists")
    if old is not None:
        _drop(scripting, name)
    for f in pending.values():
        f.library = name
        scripting.functions[f.name] = f
    scripting.libraries[name] = Library(name, code, pending)
    return name


def _drop(scripting, name: bytes) -> None:
    lib = scripting.libraries.pop(name)
    for fname in lib.functions:
        scripting.functions.pop(fname, None)


def flush(scripting) -> None:
    scripting.libraries.clear()
    scripting.functions.clear()
    scripting.function_vm = None  # a new state, as Redis makes one


def codes(scripting) -> list:
    """Every library's code, in load order (what a checkpoint keeps)."""
    return [lib.code for lib in scripting.libraries.values()]


def load_codes(scripting, code_list: list) -> None:
    flush(scripting)
    for code in code_list:
        load_library(scripting, code, True)


# --- the commands -----------------------------------------------------------------

@command("function", -2, "", acl="@slow", group="scripting", since="7.0.0", fast_path=False)
def function_(c, argv):
    """FUNCTION subcommand [arg ...] -- manage function libraries."""
    return dispatch_subcommand(function_.command, c, argv)


_W = "@write @slow @scripting"
_R = "@slow @scripting"


@subcommand("function", "load", -3, "write denyoom noscript", acl=_W, since="7.0.0")
def function_load(c, argv):
    """FUNCTION LOAD [REPLACE] code -- load a library; its name."""
    replace = False
    if len(argv) == 4:
        if argv[2].lower() != b"replace":
            raise CommandError(f"ERR Unknown option given: {argv[2].decode('utf-8', 'replace')}")
        replace = True
    elif len(argv) > 4:
        raise CommandError(errors.WRONG_ARITY.format("function|load"))
    code = argv[-1]
    name = load_library(c.ks.scripting, code, replace)
    c.emit([b"FUNCTION", b"LOAD", b"REPLACE", code])
    return name


@subcommand("function", "delete", 3, "write noscript", acl=_W, since="7.0.0")
def function_delete(c, argv):
    """FUNCTION DELETE library -- remove a library and its functions."""
    scripting = c.ks.scripting
    if argv[2] not in scripting.libraries:
        raise CommandError("ERR Library not found")
    _drop(scripting, argv[2])
    c.emit(argv)
    return OK


@subcommand("function", "flush", -2, "write noscript", acl=_W, since="7.0.0")
def function_flush(c, argv):
    """FUNCTION FLUSH [ASYNC|SYNC] -- remove every library."""
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    flush(c.ks.scripting)
    c.emit([b"FUNCTION", b"FLUSH"])
    return OK


@subcommand("function", "list", -2, "noscript", acl=_R, since="7.0.0")
def function_list(c, argv):
    """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE] -- the libraries and their functions."""
    pattern, withcode = None, False
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"withcode" and not withcode:
            withcode = True
        elif opt == b"libraryname" and pattern is None and i + 1 < len(argv):
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"ERR Unknown argument {argv[i].decode('utf-8', 'replace')}")
        i += 1
    out = []
    for lib in c.ks.scripting.libraries.values():
        if pattern is not None and not glob_match(pattern, lib.name):
            continue
        entry = {b"library_name": lib.name, b"engine": b"LUA", b"functions": [
            {b"name": f.name, b"description": f.description, b"flags": Set(sorted(f.flags))}
            for f in sorted(lib.functions.values(), key=lambda f: f.name)]}
        if withcode:
            entry[b"library_code"] = lib.code
        out.append(entry)
    return out


@subcommand("function", "dump", 2, "noscript", acl=_R, since="7.0.0")
def function_dump(c, argv):
    """FUNCTION DUMP -- every library, as a payload FUNCTION RESTORE takes."""
    body = b"".join(_OPCODE_FUNCTION + rdb.encode_string(code) for code in codes(c.ks.scripting))
    body += rdb.RDB_VERSION.to_bytes(2, "little")
    return body + rdb.crc64(body).to_bytes(8, "little")


@subcommand("function", "restore", -3, "write denyoom noscript", acl=_W, since="7.0.0")
def function_restore(c, argv):
    """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE] -- load the libraries of a FUNCTION DUMP."""
    policy = argv[3].lower() if len(argv) > 3 else b"append"
    if len(argv) > 4 or policy not in (b"flush", b"append", b"replace"):
        raise CommandError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    payload = argv[2]
    try:
        rdb.check_footer(payload)
    except Exception:
        raise CommandError("ERR DUMP payload version or checksum are wrong") from None
    found, pos, end = [], 0, len(payload) - 10
    try:
        while pos < end:
            if payload[pos:pos + 1] != _OPCODE_FUNCTION:
                raise CommandError("ERR given type is not a function")
            code, pos = rdb.read_string(payload, pos + 1)
            found.append(bytes(code))
    except (IndexError, ValueError):
        raise CommandError("ERR DUMP payload version or checksum are wrong") from None
    scripting = c.ks.scripting
    saved = (dict(scripting.libraries), dict(scripting.functions), scripting.function_vm)
    try:
        if policy == b"flush":
            flush(scripting)
        elif policy == b"append":
            for code in found:
                name = _metadata(code)[0]
                if name in scripting.libraries:
                    raise CommandError(f"ERR Library {name.decode()} already exists")
        for code in found:
            load_library(scripting, code, policy != b"append")
    except CommandError:
        scripting.libraries, scripting.functions, scripting.function_vm = saved
        raise
    c.emit(argv)
    return OK


@subcommand("function", "stats", 2, "noscript allow_busy", acl=_R, since="7.0.0")
def function_stats(c, argv):
    """FUNCTION STATS -- the running function, and counts per engine."""
    scripting = c.ks.scripting
    run = scripting.current
    running = None
    if run is not None and run.kind == "function":
        running = {b"name": run.name.encode(), b"command": [b"fcall", run.name.encode()],
                   b"duration_ms": int((time.monotonic() - run.started) * 1000)}
    return {b"running_script": running, b"engines": {b"LUA": {
        b"libraries_count": len(scripting.libraries), b"functions_count": len(scripting.functions)}}}


@subcommand("function", "kill", 2, "noscript allow_busy", acl=_R, since="7.0.0")
def function_kill(c, argv):
    """FUNCTION KILL -- stop the running function, if it has written nothing."""
    return c.ks.scripting.kill("function")


@subcommand("function", "help", 2, "loading stale", acl=_R, since="7.0.0")
def function_help(c, argv):
    """FUNCTION HELP -- the subcommands."""
    return help_lines("FUNCTION", (
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries.",
        "STATS",
        "    Return information about the current function running.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries.",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload.",
    ))


def _fcall(c, argv, ro: bool):
    scripting = c.ks.scripting
    fn = scripting.functions.get(argv[1])
    if fn is None:
        raise CommandError("ERR Function not found")
    n = numkeys(argv)
    if ro and not fn.no_writes:
        raise CommandError(errors.SCRIPT_WRITE_FLAG_RO)
    if not fn.no_writes:
        from server.scripting.eval import _replica_refuses

        if _replica_refuses(c):
            raise CommandError(errors.READONLY)
    vm = scripting.function_vm
    run = ScriptRun(c, ro or fn.no_writes, fn.text, "function")
    return scripting.run(c, vm, vm.run_function, fn.callback, n, argv[3:], run, "user_function")


_FCALL_FLAGS = "noscript skip_monitor no_mandatory_keys stale movablekeys"


@command("fcall", -3, _FCALL_FLAGS, acl=_R, group="scripting", since="7.0.0", getkeys=_keys)
def fcall(c, argv):
    """FCALL function numkeys [key ...] [arg ...] -- call a function."""
    return _fcall(c, argv, False)


@command("fcall_ro", -3, "readonly " + _FCALL_FLAGS, acl=_R, group="scripting", since="7.0.0", getkeys=_keys)
def fcall_ro(c, argv):
    """FCALL_RO function numkeys [key ...] [arg ...] -- call a read-only function."""
    return _fcall(c, argv, True)
