"""Running a script: the checks ``redis.call`` makes, the effects a script
journals, the state of the script that runs now.

``Scripting`` (one per keyspace, ``ks.scripting``) owns the two Lua states
(EVAL scripts and FUNCTION libraries, kept apart as Redis keeps them), the
script cache and the function libraries, and ``current``: the ``ScriptRun``
of the script running now, if any.

``redis.call`` runs a command through its own handler after the checks a
command inside a script needs, in Redis's order: unknown command, arity,
``noscript`` flag, a write from a read-only script (EVAL_RO, FCALL_RO, a
``no-writes`` script; a ``may_replicate`` command such as PFCOUNT or
PUBLISH counts as a write there, as in Redis, though not on a read-only
replica, where only ``write`` commands are refused). Its effects land in
``ks.effects`` like any command's; ``run`` wraps a script's effects in
MULTI/EXEC when there are more than one, so the turn's log record holds
the whole script, and the script's reply leaves with the others once
that record is safe. Inside
EXEC (``in_exec``, set by ``server.multi``) it adds no markers: EXEC wraps
the whole transaction, the script's effects in it, in one MULTI/EXEC. The
script runs with the caller's database, and a SELECT inside it is undone
when it returns, as in Redis. A blocking command answers its non-blocking
reply; clients blocked on keys the script made ready are served after it
(dispatch does that after the top-level command).
"""

from __future__ import annotations

import time

from engine import errors
from engine.commands.blocking import WouldBlock
from engine.errors import CommandError
from engine.registry import TABLE
from engine.reply import OK, Status
from server.acl import script_acl_check
from server.monitor import script_call as script_monitor
from server.slowlog import script_call as script_slow
from server.scripting.vm import LuaMemoryError, LuaVM, line_text

_MULTI = [b"MULTI"]
_EXEC = [b"EXEC"]

LUA_MAX_MEMORY = 1 << 30  # each Lua state's allocation limit without a server (lua-max-memory)


class ScriptRun:
    """The script running now: who runs it, what it may do, what it did."""

    __slots__ = ("client", "readonly", "wrote", "started", "name", "kind", "killed", "busy")

    def __init__(self, client, readonly: bool, name: str, kind: str):
        self.client = client
        self.readonly = readonly
        self.wrote = False  # a write command ran: SCRIPT KILL answers UNKILLABLE
        self.started = time.monotonic()
        self.name = name  # the sha, or the function's name
        self.kind = kind  # "script" | "function"
        self.killed = None  # the error text the hook kills the script with
        self.busy = False  # past busy-reply-threshold: other clients get -BUSY


class Scripting:
    def __init__(self, ks, server=None):
        self.ks = ks
        self.server = server
        self.max_memory = LUA_MAX_MEMORY
        if server is not None:
            self.max_memory = server.config["lua-max-memory"]
            server.config.listeners.append(self._config_changed)
        self.scripts = {}  # sha (lower-case hex bytes) -> eval.Script
        self.eval_vm = self._new_vm(b"@user_script")
        self.function_vm = None  # made with the first library (server.scripting.function)
        self.libraries = {}  # name -> function.Library
        self.functions = {}  # name -> function.Function
        self.current: ScriptRun | None = None
        self.current_vm: LuaVM | None = None  # ... and its Lua state
        self._plain = {}  # redis.call's lookups: name -> (command, arity, noscript), for those without subcommands
        self.in_exec = False  # EXEC is running its commands: it wraps their effects itself
        self.loading = None  # while FUNCTION LOAD runs a library: the functions it registered
        self.load_deadline = None  # ... and when that run must stop
        self.busy = None  # server.scripting.busy.Busy, when running in a server
        if server is not None:
            from server.scripting.busy import Busy
            self.busy = Busy(server, self)

    def _new_vm(self, chunkname: bytes) -> LuaVM:
        vm = LuaVM(chunkname, 2 * self.max_memory)
        vm.call = self.call
        vm.on_hook = self._hook
        vm.on_setresp = self._setresp
        return vm

    def _setresp(self, version: int) -> None:
        """redis.setresp: the commands the script calls answer in that
        protocol (ZRANGE WITHSCORES in pairs of doubles, GEOPOS doubles, …),
        as Redis's script client does; the caller's is restored after."""
        run = self.current
        if run is not None:
            run.client.protocol = version

    def _config_changed(self, name: str, value) -> None:
        if name == "lua-max-memory":
            self.max_memory = value
            for vm in (self.eval_vm, self.function_vm):
                if vm is not None:
                    vm.lua.set_max_memory(2 * value)

    def _hook(self):
        """Every ``HOOK_EVERY`` Lua instructions: the text to kill the script
        with (SCRIPT KILL, SHUTDOWN NOSAVE), or None to go on."""
        run = self.current
        if run is None:
            if self.load_deadline is not None and time.monotonic() > self.load_deadline:
                return b"ERR FUNCTION LOAD timeout"
            return None
        if run.killed is None:
            # lua-max-memory is enforced here, between instructions, where
            # an error is an ordinary Lua error; lupa's own limit (twice as
            # high) only stops what grows past it within one hook interval,
            # since running out inside a call into Python can abort the process.
            vm = self.function_vm if run.kind == "function" else self.eval_vm
            if vm.memory() > self.max_memory:
                vm.api[b"gc"]()
                if vm.memory() > self.max_memory:
                    run.killed = errors.SCRIPT_OOM.format(run.name)
        if run.killed is None and self.busy is not None:
            self.busy.tick(run)
        return None if run.killed is None else run.killed.encode()

    def reset_eval_vm(self) -> None:
        """SCRIPT FLUSH: a new Lua state, as Redis starts one."""
        self.scripts.clear()
        self.eval_vm = self._new_vm(b"@user_script")

    # -- redis.call ---------------------------------------------------------------
    def call(self, argv: list):
        run = self.current
        if run is None:
            raise CommandError(errors.SCRIPT_NOT_ALLOWED)
        name = argv[0]
        plain = self._plain.get(name)
        if plain is not None:  # the same checks, in the same order, from what the first call found
            stat, arity, noscript = plain
            n = len(argv)
            if n != arity if arity > 0 else n < -arity:
                raise CommandError(errors.SCRIPT_WRONG_ARITY)
            if noscript and not self._deny_disabled():
                raise CommandError(errors.SCRIPT_NOT_ALLOWED)
            handler = stat.handler
        else:
            stat, handler = self._lookup(name, argv)
        user = getattr(run.client, "user", None)  # checked against the calling user, as Redis does
        if user is not None and user.restricted:
            script_acl_check(run.client, stat, argv)
        if stat.is_write:
            if run.readonly:
                raise CommandError(errors.SCRIPT_WRITE_READONLY)
            if self.server is not None and self.server.repl.refuses_write(run.client, stat):
                raise CommandError(errors.READONLY)  # a read-only replica (replication/)
            if not run.wrote and self.server is not None and self.server.eviction.script_oom and "denyoom" in stat.flags:
                raise CommandError(errors.OOM)  # started over maxmemory, no write yet (server.eviction)
            run.wrote = True
        elif run.readonly and "may_replicate" in stat.flags:  # PFCOUNT, PUBLISH: writes, to a read-only script
            raise CommandError(errors.SCRIPT_WRITE_READONLY)
        c = run.client
        effects = self.ks.effects
        n = len(effects)
        server = self.server
        t0 = time.perf_counter_ns()
        try:
            r = handler(c, argv)
        finally:  # the slow log and MONITOR take a script's commands, failed ones too (server.slowlog, server.monitor)
            if server is not None:
                ns = time.perf_counter_ns() - t0
                if ns >= server.slow_ns:
                    script_slow(c, stat, argv, ns)
                if server.monitors:
                    script_monitor(server, c, stat, argv)
        if type(r) is WouldBlock:
            r = r.no_wait
        stat.calls += 1
        if self.current_vm.repl == 0:  # redis.set_repl(redis.REPL_NONE): kept out of the log
            del effects[n:]
        if server is not None and c.tracking is not None:
            server.tracking.remember(c, stat, argv)
        return r

    def _lookup(self, name: bytes, argv: list):
        """redis.call's first checks in full: unknown command, arity, unknown
        subcommand, ``noscript``; (the command or subcommand, its handler)."""
        cmd = TABLE.get(name)
        if cmd is None:
            cmd = TABLE.get(name.lower())
            if cmd is None:
                raise CommandError(errors.SCRIPT_UNKNOWN_COMMAND)
        if not cmd.subcommands:
            self._plain[name] = (cmd, cmd.arity, "noscript" in cmd.flags)
        if not cmd.arity_ok(len(argv)):
            raise CommandError(errors.SCRIPT_WRONG_ARITY)
        stat = cmd
        handler = cmd.handler
        if cmd.subcommands and len(argv) > 1:
            sub = cmd.subcommands.get(argv[1].lower())
            if sub is None:
                raise CommandError(errors.UNKNOWN_SUBCOMMAND.format(
                    argv[1].decode("utf-8", "replace"), cmd.name.upper()))
            if not sub.arity_ok(len(argv)):
                raise CommandError(errors.SCRIPT_WRONG_ARITY)
            stat = sub
            handler = sub.handler
        if ("noscript" in stat.flags or "noscript" in cmd.flags) and not self._deny_disabled():
            raise CommandError(errors.SCRIPT_NOT_ALLOWED)
        return stat, handler

    def _deny_disabled(self) -> bool:
        """DEBUG SET-DISABLE-DENY-SCRIPTS 1: ``noscript`` commands are allowed."""
        return self.server is not None and self.server.disable_deny_scripts

    # -- running ----------------------------------------------------------------
    def run(self, c, vm: LuaVM, entry, f, nkeys: int, args, run: ScriptRun, chunk: str):
        """Run ``f`` through ``entry`` (``vm.run_script`` / ``vm.run_function``);
        the reply value, or raise the script's error in Redis's words."""
        if self.current is not None:  # a script calling EVAL is refused before this
            raise CommandError(errors.SCRIPT_NOT_ALLOWED)
        effects = self.ks.effects
        first = len(effects)
        db = c.db
        protocol = c.protocol
        c.protocol = 2
        vm.resp = 2
        vm.caller_protocol = protocol
        vm.repl = 3
        self.current = run
        self.current_vm = vm
        try:
            r = entry(f, nkeys, *args)  # see prelude.lua's classify
        except LuaMemoryError:
            r = (False, None)
        finally:
            self.current = None
            c.db = db
            c.protocol = protocol
            if run.busy:
                self.busy.leave(run)
        killed = run.killed
        if killed is not None and killed.startswith("ERR Out of memory"):
            vm.api[b"gc"]()
        if killed is not None and killed == errors.SCRIPT_SHUTDOWN:
            del effects[first:]  # the process stops: what the script did is not kept
        elif len(effects) - first > 1 and not self.in_exec:
            effects.insert(first, (effects[first][0], _MULTI))
            effects.append((effects[-1][0], _EXEC))
        if len(r) == 3:
            ok, kind, res = r
            if kind == 0:
                return vm.to_reply(res)
            if kind == 2 and res == b"OK":  # (redis.call's +OK handed back: pre-encoded)
                return OK
        else:
            ok, kind, res = r[0], 0, r[1]
        if not ok:
            if res is None or type(res) is bytes:  # "not enough memory": no handler ran
                vm.api[b"gc"]()  # what the script left behind is garbage: free it now
                raise CommandError(errors.SCRIPT_OOM.format(run.name))
            msg, line = res[1], res[2]
            raise CommandError(errors.SCRIPT_FAILED.format(
                msg.decode("utf-8", "replace"), run.name, chunk, int(line or 0)))
        if kind == 1:
            return CommandError(line_text(res))
        if kind == 2:
            return Status(line_text(res))
        return vm.to_reply(res)

    def kill(self, kind: str):
        """SCRIPT KILL / FUNCTION KILL: the hook stops the script at its next tick."""
        run = self.current
        if run is None:
            raise CommandError(errors.NOTBUSY)
        if run.kind != kind:  # SCRIPT KILL of a function (or the other way): the BUSY that names the right one
            raise CommandError(errors.BUSY_FUNCTION if run.kind == "function" else errors.BUSY_SCRIPT)
        if run.wrote:
            raise CommandError(errors.UNKILLABLE)
        run.killed = errors.SCRIPT_KILLED  # (FUNCTION KILL too: Redis names SCRIPT KILL either way)
        return OK

    # -- what a checkpoint keeps (wal.checkpoint) ------------------------------------
    def codes(self) -> list:
        from server.scripting.function import codes
        return codes(self)

    def load_codes(self, code_list: list) -> None:
        from server.scripting.function import load_codes
        load_codes(self, code_list)

    # -- INFO memory ------------------------------------------------------------
    def info(self) -> list:
        eval_mem = self.eval_vm.memory()
        fn_mem = self.function_vm.memory() if self.function_vm is not None else 0
        return [
            ("used_memory_lua", eval_mem),
            ("used_memory_vm_eval", eval_mem),
            ("used_memory_vm_functions", fn_mem),
            ("used_memory_scripts", sum(len(s.body) for s in self.scripts.values())),
            ("number_of_cached_scripts", len(self.scripts)),
            ("number_of_functions", len(self.functions)),
            ("number_of_libraries", len(self.libraries)),
        ]
