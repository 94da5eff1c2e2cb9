"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP.

A script is compiled once into the EVAL Lua state and cached by the SHA1 of
its body (EVAL caches what it runs, as Redis 7 does), until SCRIPT FLUSH,
which also replaces the Lua state. A body may open with a shebang,
``#!lua flags=no-writes,allow-oom``: its flags are checked when it is
loaded; the line is blanked before compiling, so line numbers in errors
stay those of the body. A script with a shebang and no ``no-writes`` flag
may not run through EVAL_RO/EVALSHA_RO; ``no-writes`` makes it read-only
under EVAL too. (``allow-oom``, ``allow-stale``, ``no-cluster`` and
``allow-cross-slot-keys`` are accepted; Keel has no OOM refusal, stale
replica state or cluster for them to lift.)
"""

from __future__ import annotations

import hashlib

from engine import errors
from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import OK, help_lines
from server.scripting.runner import ScriptRun

SCRIPT_FLAGS = frozenset((b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"))


class Script:
    __slots__ = ("sha", "body", "func", "flags", "shebang", "no_writes")

    def __init__(self, sha: str, body: bytes, func, flags: frozenset, shebang: bool):
        self.sha = sha
        self.body = body
        self.func = func
        self.flags = flags
        self.shebang = shebang
        self.no_writes = b"no-writes" in flags


def parse_shebang(body: bytes) -> tuple[frozenset, bytes, bool]:
    """(flags, the body to compile, whether it had a shebang)."""
    if not body.startswith(b"#!"):
        return frozenset(), body, False
    end = body.find(b"\n")
    line = body if end < 0 else body[:end]
    parts = line.split()
    if parts[0] != b"#!lua":
        raise CommandError(errors.SHEBANG_ENGINE.format(parts[0].decode("utf-8", "replace")))
    flags = set()
    for opt in parts[1:]:
        if not opt.startswith(b"flags="):
            raise CommandError(errors.SHEBANG_OPTION.format(opt.decode("utf-8", "replace")))
        for f in opt[6:].split(b","):
            if not f:
                continue
            if f not in SCRIPT_FLAGS:
                raise CommandError(errors.SHEBANG_FLAG.format(f.decode("utf-8", "replace")))
            flags.add(f)
    return frozenset(flags), (b"" if end < 0 else body[end:]), True


def load(scripting, body: bytes) -> Script:
    """The cached script for ``body``, compiling it the first time."""
    sha = hashlib.sha1(body).hexdigest()
    script = scripting.scripts.get(sha.encode())
    if script is not None:
        return script
    flags, code, shebang = parse_shebang(body)
    func, err = _compile(scripting.eval_vm, code)
    if func is None:
        raise CommandError(errors.SCRIPT_COMPILE.format(err.decode("utf-8", "replace")))
    script = Script(sha, body, func, flags, shebang)
    scripting.scripts[sha.encode()] = script
    return script


def _compile(vm, code: bytes):
    r = vm.compile(code)
    return r if type(r) is tuple else (r, None)


def numkeys(argv: list, at: int = 2) -> int:
    try:
        n = int(argv[at])
    except ValueError:
        raise CommandError(errors.NOT_INTEGER) from None
    if n < 0:
        raise CommandError(errors.NUMKEYS_NEGATIVE)
    if n > len(argv) - at - 1:
        raise CommandError(errors.NUMKEYS_TOO_MANY)
    return n


def _keys(argv: list) -> list:
    try:
        n = int(argv[2])
    except (ValueError, IndexError):
        return []
    return list(range(3, 3 + max(0, min(n, len(argv) - 3))))


def _replica_refuses(c) -> bool:
    """A script that may write, on a read-only replica: refused before it runs
    (as Redis 7 refuses one that declares its flags; one without flags is
    stopped at its first write, ``Scripting.call``)."""
    server = getattr(c, "server", None)
    return server is not None and server.repl.read_only_for(c)


def run_script(c, script: Script, argv: list, n: int, ro: bool):
    if ro and script.shebang and not script.no_writes:
        raise CommandError(errors.SCRIPT_WRITE_FLAG_RO)
    if script.shebang and not script.no_writes and _replica_refuses(c):
        raise CommandError(errors.READONLY)
    scripting = c.ks.scripting
    vm = scripting.eval_vm
    run = ScriptRun(c, ro or script.no_writes, script.sha, "script")
    return scripting.run(c, vm, vm.run_script, script.func, n, argv[3:], run, "user_script")


# --- the commands -----------------------------------------------------------------

_EVAL_FLAGS = "noscript skip_monitor no_mandatory_keys stale movablekeys"
_EVAL_RO_FLAGS = "readonly noscript skip_monitor no_mandatory_keys stale movablekeys"


@command("eval", -3, _EVAL_FLAGS, acl="@slow @scripting", group="scripting", since="2.6.0", getkeys=_keys)
def eval_(c, argv):
    """EVAL script numkeys [key ...] [arg ...] -- run a Lua script. Depends on the script."""
    n = numkeys(argv)
    return run_script(c, load(c.ks.scripting, argv[1]), argv, n, False)


@command("eval_ro", -3, _EVAL_RO_FLAGS, acl="@slow @scripting", group="scripting", since="7.0.0", getkeys=_keys)
def eval_ro(c, argv):
    """EVAL_RO script numkeys [key ...] [arg ...] -- run a read-only Lua script."""
    n = numkeys(argv)
    return run_script(c, load(c.ks.scripting, argv[1]), argv, n, True)


def _cached(c, sha: bytes):
    scripts = c.ks.scripting.scripts
    script = scripts.get(sha)  # (clients send it as SCRIPT LOAD answered it, lower case)
    if script is None:
        script = scripts.get(sha.lower()) if len(sha) == 40 else None
        if script is None:
            raise CommandError(errors.NOSCRIPT)
    return script


@command("evalsha", -3, _EVAL_FLAGS, acl="@slow @scripting", group="scripting", since="2.6.0", getkeys=_keys)
def evalsha(c, argv):
    """EVALSHA sha1 numkeys [key ...] [arg ...] -- run a cached script by its SHA1."""
    n = numkeys(argv)
    return run_script(c, _cached(c, argv[1]), argv, n, False)


@command("evalsha_ro", -3, _EVAL_RO_FLAGS, acl="@slow @scripting", group="scripting", since="7.0.0",
         getkeys=_keys)
def evalsha_ro(c, argv):
    """EVALSHA_RO sha1 numkeys [key ...] [arg ...] -- run a cached read-only script."""
    n = numkeys(argv)
    return run_script(c, _cached(c, argv[1]), argv, n, True)


@command("script", -2, "", acl="@slow", group="scripting", since="2.6.0", fast_path=False)
def script_(c, argv):
    """SCRIPT subcommand [arg ...] -- manage the script cache."""
    return dispatch_subcommand(script_.command, c, argv)


_SUB = "noscript"
_ACL = "@slow @scripting"


@subcommand("script", "load", 3, _SUB + " stale", acl=_ACL, since="2.6.0")
def script_load(c, argv):
    """SCRIPT LOAD script -- cache a script without running it; its SHA1."""
    return load(c.ks.scripting, argv[2]).sha.encode()


@subcommand("script", "exists", -3, _SUB, acl=_ACL, since="2.6.0")
def script_exists(c, argv):
    """SCRIPT EXISTS sha1 [sha1 ...] -- 1 or 0 for each SHA1. O(N)."""
    scripts = c.ks.scripting.scripts
    return [int(sha.lower() in scripts) for sha in argv[2:]]


@subcommand("script", "flush", -2, _SUB, acl=_ACL, since="2.6.0")
def script_flush(c, argv):
    """SCRIPT FLUSH [ASYNC|SYNC] -- empty the script cache. O(N)."""
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError(errors.SCRIPT_FLUSH_MODE)
    c.ks.scripting.reset_eval_vm()
    return OK


@subcommand("script", "kill", 2, _SUB + " allow_busy", acl=_ACL, since="2.6.0")
def script_kill(c, argv):
    """SCRIPT KILL -- stop the running script, if it has written nothing."""
    return c.ks.scripting.kill("script")


@subcommand("script", "help", 2, "loading stale", acl=_ACL, since="5.0.0")
def script_help(c, argv):
    """SCRIPT HELP -- the subcommands."""
    return help_lines("SCRIPT", (
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
    ))
