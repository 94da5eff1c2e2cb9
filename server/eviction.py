"""maxmemory on the server side: the OOM check, eviction slices, access tracking.

``Eviction`` (one per server, ``server.eviction``) follows the maxmemory
directives live (CONFIG SET) and keeps ``engine.evict``'s ``Access`` (per-key
LRU clock / LFU counter) and ``Evictor`` (the policy and its pool).

The hot path pays nothing while ``maxmemory`` is 0 and the policy tracks no
access: the entries of ``engine.registry.FAST`` are the commands' own
handlers. Otherwise ``_install`` swaps in wrapped handlers, for the
commands that need one only:

* with ``maxmemory`` > 0, every ``denyoom`` command (and the scripting
  commands, whose flags depend on the script) first evicts while used
  memory is over the limit (``Keyspace.mem_used``, plus ``STARTUP`` and the
  access entries' ``access_mem``, see ``_threshold``: what INFO's
  used_memory counts, clients' buffers apart), and is refused with ``-OOM`` (and
  runs nothing) when that cannot bring it under (``noeviction``, or nothing
  left to evict: a volatile-* policy never touches a key without a TTL);
* under an LRU/LFU policy, every command that looks its keys up touches them
  afterwards (``Access.touch``), except the ones Redis looks up without
  touching (TYPE, EXISTS, TTL and its kin, OBJECT) and the commands of
  ``CLIENT NO-TOUCH`` clients (TOUCH itself still touches, as in Redis);
  FLUSHDB, FLUSHALL and SWAPDB take their databases' entries along. Under
  the other policies no access is kept (it would cost every read a store
  and each key 52 bytes) and OBJECT IDLETIME answers 0.

The full dispatch (``server.dispatch.slow_call``) makes the same check in
Redis's place, after ACL (``refuses``), evicting before any command: inside
MULTI every command but EXEC, DISCARD, QUIT and RESET is refused while over
the limit (EXEC then aborts), EXEC is refused (``-EXECABORT``) when one of its
queued commands is ``denyoom``; an EVAL whose script has a shebang without
``no-writes`` or ``allow-oom`` (and any FCALL whose function has neither)
is refused up front, and a script without those flags started while over
the limit has its first ``denyoom`` call refused (``script_oom``, checked
by ``server.scripting.runner``), as Redis's scripts are.

Nothing is evicted (and nothing refused) where Redis would not evict: on a
keyspace that does not expire keys itself (a replica, CLIENT PAUSE) or while
loading. Eviction never stalls clients long: one command evicts for at
most the time ``maxmemory-eviction-tenacity`` allows (50 us per step up to 10, then 15%
more per step, unlimited at 100, as Redis), checked every 16 keys; what is
left continues from a loop callback, slice after slice, while other clients
are served. ``total_eviction_exceeded_time`` / ``current_eviction_exceeded_time``
(INFO stats, ms) count the time spent over the limit; a command's eviction
over ``latency-monitor-threshold`` is a LATENCY ``eviction-cycle`` event.
"""

from __future__ import annotations

import time
import weakref

from engine import errors
from engine.errors import CommandError
from engine.evict import LRU, OFF, Access, Evictor
from engine.memory import STARTUP
from engine.registry import FAST, subcommand
from engine.reply import OK, Raw
from server import latency
from server.commands import client as _client  # noqa: F401  (CLIENT, which NO-TOUCH extends)

# Commands whose key lookups do not touch (Redis's LOOKUP_NOTOUCH callers).
# RESTORE sets its key's information itself (IDLETIME, FREQ).
NO_TOUCH = frozenset(("exists", "type", "ttl", "pttl", "expiretime", "pexpiretime", "object", "memory", "restore"))
SCRIPT_COMMANDS = frozenset(("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))
FLUSHES = frozenset(("flushall", "flushdb", "swapdb"))
MAX_SAMPLES = 1024  # maxmemory-samples beyond this samples this many (Redis keeps them on its stack)
MULTI_ALLOWED = frozenset(("exec", "discard", "quit", "reset"))
DIRECTIVES = ("maxmemory", "maxmemory-policy", "maxmemory-samples", "maxmemory-eviction-tenacity",
              "lfu-log-factor", "lfu-decay-time")


def time_limit_ns(tenacity: int) -> float:
    """How long one command may evict (Redis's progression), in ns."""
    if tenacity <= 10:
        return 50_000.0 * tenacity
    if tenacity < 100:
        return 500_000.0 * 1.15 ** (tenacity - 10)
    return float("inf")


class Eviction:
    def __init__(self, server):
        self.server = server
        self.ks = ks = server.ks
        self.access = Access(ks)
        self.evictor = Evictor(ks, self.access)
        ks.access = self.access  # OBJECT IDLETIME/FREQ and RESTORE read it (engine.commands)
        self.limit = 0  # maxmemory
        self.threshold = -STARTUP
        self.access_mem = 0  # bytes the access entries cost (see _threshold)
        self.budget_ns = time_limit_ns(10)
        self.notouch: dict[int, object] = {}  # CLIENT NO-TOUCH clients, by id
        self.script_oom = False  # the script running now started over the limit (see module doc)
        self.exceeded_since = 0  # perf_counter_ns when used memory went over, 0 while under
        self.exceeded_total_ns = 0
        self.continuing = None  # the loop callback that goes on evicting
        cfg = server.config
        for name in DIRECTIVES:
            self._apply(name, cfg[name])
        cfg.listeners.append(self._config_changed)
        if self.limit or self.access.mode != OFF:
            self._install()

    # -- configuration ------------------------------------------------------------
    def _config_changed(self, name: str, value) -> None:
        if name in DIRECTIVES:
            self._apply(name, value)
            self._install()
            if name == "maxmemory" and value:
                self._continue_soon()  # a lowered limit evicts now, as Redis starts its eviction proc

    def _apply(self, name: str, value) -> None:
        if name == "maxmemory":
            self.limit = value
            self.ks.mem_defer(not value)  # with a limit, every change is counted before the next check
            self._threshold()
            if not value:
                self._under()
        elif name == "maxmemory-policy":
            self.evictor.set_policy(value)
            self._threshold()
        elif name == "maxmemory-samples":
            self.evictor.samples = min(value, MAX_SAMPLES)
        elif name == "maxmemory-eviction-tenacity":
            self.budget_ns = time_limit_ns(value)
        elif name == "lfu-log-factor":
            self.access.log_factor = value
        elif name == "lfu-decay-time":
            self.access.decay_time = value

    def _threshold(self) -> None:
        """Over maxmemory when ``mem_used`` is over this (negative: always):
        used memory is the dataset (``mem_used``), plus what an empty Redis
        reports (``engine.memory.STARTUP``), plus the access entries
        (``access_mem``, counted again by the cron: they come and go with
        keys). The clients' buffers are not counted (Redis counts them)."""
        self.access_mem = self.access.size() if self.access.mode != OFF else 0
        self.threshold = self.limit - STARTUP - self.access_mem

    def _install(self) -> None:
        """Put the wrapped handlers the settings need into FAST (or the commands' own back)."""
        self.script_oom = False
        if self.limit or self.access.mode != OFF:
            _WANTING.add(self)
        else:
            _WANTING.discard(self)
        install()
        for c in list(self.server.clients.values()):
            c.regate()  # a restricted user's table (server.acl_fast) is rebuilt from FAST

    def refused(self, c, cmd):
        """The hot path's OOM refusal: counted as a rejected call, as the full dispatch counts it."""
        from server import dispatch

        cmd.calls -= 1  # the hot path counts the call it ran; a refusal ran nothing
        return Raw(dispatch.refuse(c, cmd, CommandError(errors.OOM)) or b"")

    # -- the checks ----------------------------------------------------------------
    def script_denies_oom(self, cmd, argv: list) -> tuple[bool, bool]:
        """(the script command counts as ``denyoom``, its script allows OOM)
        from the script's flags, as Redis derives the command's flags."""
        scripting = self.ks.scripting
        name = cmd.name
        if name.startswith("fcall"):
            fn = scripting.functions.get(argv[1]) if len(argv) > 1 else None
            if fn is None:
                return False, False
            flags = fn.flags
        else:
            from server.scripting import eval as eval_mod

            if name.startswith("evalsha"):
                script = scripting.scripts.get(argv[1].lower()) if len(argv) > 1 else None
                if script is None:
                    return False, False
                flags, shebang = script.flags, script.shebang
            else:
                import hashlib

                script = scripting.scripts.get(hashlib.sha1(argv[1]).hexdigest().encode())
                if script is not None:
                    flags, shebang = script.flags, script.shebang
                else:
                    try:
                        flags, _, shebang = eval_mod.parse_shebang(argv[1])
                    except CommandError:
                        return False, False
            if not shebang:
                return False, False
        allow = b"allow-oom" in flags or b"no-writes" in flags
        return not allow, allow

    def script_check(self, c, cmd, argv: list):
        """Before EVAL/FCALL with a limit: the refusal to answer, or None
        (and ``script_oom`` set for the script's own calls)."""
        if self.ks.mem_used <= self.threshold or self.perform():
            self.script_oom = False
            return None
        denyoom, allow = self.script_denies_oom(cmd, argv)
        if denyoom:
            return self.refused(c, cmd)
        self.script_oom = not allow
        return None

    def refuses(self, client, cmd, stat, argv: list) -> bool:
        """The full dispatch's OOM check (with a limit set): True when the
        command must be refused with -OOM."""
        self.script_oom = False
        if self.ks.mem_used <= self.threshold or self.perform():
            return False
        name = cmd.name
        if client.multi is not None and name not in MULTI_ALLOWED:
            return True
        if name == "exec":
            return client.multi is not None and any("denyoom" in s.flags for _, s, _ in client.multi)
        if name in SCRIPT_COMMANDS:
            denyoom, allow = self.script_denies_oom(cmd, argv)
            self.script_oom = not denyoom and not allow
            return denyoom
        return "denyoom" in stat.flags

    def touch_keys(self, client, cmd, argv: list) -> None:
        """Touch the keys of ``argv`` in the client's database (tracking on)."""
        db = client.db
        touch = self.access.touch
        for i in cmd.key_positions(argv):
            touch(db, argv[i])

    def after_flush(self, client, name: str, argv: list) -> None:
        """FLUSHDB, FLUSHALL or SWAPDB ran (tracking on): their databases' entries follow."""
        a = self.access
        if not a.mode:
            return
        if name == "flushall":
            a.flushed()
        elif name == "flushdb":
            a.flushed(client.db.index)
        else:
            try:
                a.swapped(int(argv[1]), int(argv[2]))
            except (ValueError, IndexError):
                a.follow()

    def touch_after(self, client, stat, argv: list) -> None:
        """The full dispatch's touch, after a command ran (tracking on)."""
        if stat.name in FLUSHES:
            self.after_flush(client, stat.name, argv)
            return
        if stat.name in NO_TOUCH or (stat.parent is not None and stat.parent.name in NO_TOUCH):
            return
        if self.notouch and client.id in self.notouch and stat.name != "touch":
            return
        if not stat.has_keys:
            return
        db = client.db
        for i in stat.key_positions(argv):
            self.access.touch(db, argv[i])

    # -- evicting ----------------------------------------------------------------------
    def perform(self) -> bool:
        """Evict while over the limit, for at most this command's budget.
        False when it cannot get under (noeviction, nothing evictable);
        True when under, or when time ran out (a loop callback goes on)."""
        ks = self.ks
        limit = self.threshold
        if ks.mem_used <= limit or not self.limit:
            self._under()
            return True
        if not ks.expire_on_lookup or ks.loading or self.server.loading:
            # Not now, as Redis (a replica, CLIENT PAUSE, loading): nothing is
            # evicted and nothing refused, as if under the limit.
            return True
        if not self.exceeded_since:
            self.exceeded_since = time.perf_counter_ns()
        evictor = self.evictor
        if evictor.rank is None:
            return False
        # The common case, a write that needs one key evicted, without the clock.
        if not evictor.evict_one():
            return self._recounted_under()
        if ks.mem_used <= limit:
            self._under()
            return True
        t0 = time.perf_counter_ns()
        deadline = t0 + self.budget_ns
        n = 0
        try:
            while ks.mem_used > limit:
                if not evictor.evict_one():
                    return self._recounted_under()
                n += 1
                if not n & 15 and time.perf_counter_ns() > deadline:
                    self._continue_soon()
                    return True
            self._under()
            return True
        finally:
            if latency.THRESHOLD_MS:
                latency.add("eviction-cycle", (time.perf_counter_ns() - t0) // 1_000_000)

    def _recounted_under(self) -> bool:
        """Nothing left to evict: under the limit after all, with the access
        entries counted now (the cron's count may be a tick old)?"""
        self._threshold()
        if self.ks.mem_used <= self.threshold:
            self._under()
            return True
        return False

    def _under(self) -> None:
        if self.exceeded_since:
            self.exceeded_total_ns += time.perf_counter_ns() - self.exceeded_since
            self.exceeded_since = 0

    def _continue_soon(self) -> None:
        loop = self.server.loop
        if self.continuing is None and loop is not None:
            self.continuing = loop.call_soon(self._continue)

    def _continue(self) -> None:
        self.continuing = None
        if self.limit and self.ks.mem_used > self.threshold:
            self.perform()
            if self.ks.effects:  # the DELs of what it evicted, journaled now as the expiry cycle's are
                self.server.persistence.journal()
            if self.ks.mem_used > self.threshold and self.evictor.rank is not None and self.continuing is None:
                self._continue_soon_if_evictable()

    def _continue_soon_if_evictable(self) -> None:
        # Nothing evictable left (a volatile policy, no TTLs): stop; the next write retries.
        if any(self.evictor._source(db) for db in self.ks.dbs):
            self._continue_soon()

    # -- the server's tick -----------------------------------------------------------
    def cron(self) -> None:
        self.access.tick()
        if self.access.mode != OFF:
            self.access.follow()
            self.access.sweep()
            self._threshold()
        if self.notouch:
            clients = self.server.clients
            for cid in [i for i in self.notouch if i not in clients]:
                del self.notouch[cid]
        if self.limit and self.ks.mem_used > self.threshold:
            self._continue_soon()

    def info_stats(self) -> list:
        now = time.perf_counter_ns()
        current = (now - self.exceeded_since) // 1_000_000 if self.exceeded_since else 0
        total = (self.exceeded_total_ns + (now - self.exceeded_since if self.exceeded_since else 0)) // 1_000_000
        return [("total_eviction_exceeded_time", total), ("current_eviction_exceeded_time", current)]


# --- the wrapped handlers of FAST ---------------------------------------------------
# FAST is the process's one table: the wrappers are in place while any server
# of the process wants them (tests run several), and each call reads its own
# server's settings, so a wrapper is right for every server.

_WANTING: "weakref.WeakSet[Eviction]" = weakref.WeakSet()
_SAVED: dict = {}  # (FAST row index, name) -> the entry a wrapper replaced


def install() -> None:
    for (i, name), entry in _SAVED.items():
        FAST[i][name] = entry
    _SAVED.clear()
    oom = any(ev.limit for ev in _WANTING)
    track = any(ev.access.mode != OFF for ev in _WANTING)
    if oom or track:
        made = {}
        for i, row in enumerate(FAST):
            for name, entry in row.items():
                handler, check, cmd = entry
                key = (id(handler), id(cmd))
                w = made.get(key, False)
                if w is False:
                    w = made[key] = _wrap(handler, cmd, oom, track)
                if w is not None:
                    _SAVED[(i, name)] = entry
                    row[name] = (w, check, cmd)
    from server import acl_fast

    acl_fast._GUARDED = None  # built from FAST: again, on next use


def _wrap(handler, cmd, oom: bool, track: bool):
    if track and cmd.name in FLUSHES:
        def flushing(c, argv):
            r = handler(c, argv)
            c.server.eviction.after_flush(c, cmd.name, argv)
            return r
        return flushing
    guard = oom and "denyoom" in cmd.flags
    touches = track and cmd.has_keys and cmd.name not in NO_TOUCH
    if oom and cmd.name in SCRIPT_COMMANDS:
        def script(c, argv):
            ev = c.server.eviction
            if ev.limit:
                refusal = ev.script_check(c, cmd, argv)
                if refusal is not None:
                    return refusal
                try:
                    return handler(c, argv)
                finally:
                    ev.script_oom = False
            return handler(c, argv)
        return script
    if not guard and not touches:
        return None
    single = cmd.first_key == 1 and cmd.last_key == 1  # the key is argv[1], whatever else getkeys finds
    toucher = cmd.name == "touch"

    def wrapped(c, argv):
        ev = c.server.eviction
        if guard and ev.limit and c.ks.mem_used > ev.threshold and not ev.perform():
            return ev.refused(c, cmd)
        r = handler(c, argv)
        a = ev.access
        if touches and a.mode and (not ev.notouch or c.id not in ev.notouch or toucher):
            if single:
                db = c.db
                k = argv[1]
                if k in db.data:
                    if a.mode == LRU:
                        a.dicts[db.index][k] = a.clock
                    else:
                        a.lfu_touch(a.dicts[db.index], k)
                else:
                    a.touch(db, k)
            else:
                ev.touch_keys(c, cmd, argv)
        return r
    return wrapped


# --- CLIENT NO-TOUCH -----------------------------------------------------------------

@subcommand("client", "no-touch", 3, "noscript loading stale", acl="@slow @connection", since="7.2.0")
def client_no_touch(c, argv):
    """CLIENT NO-TOUCH ON|OFF -- whether this client's commands leave the keys'
    LRU/LFU information alone (TOUCH still touches). O(1)."""
    arg = argv[2].lower()
    ev = c.server.eviction
    if arg == b"on":
        ev.notouch[c.id] = c
    elif arg == b"off":
        ev.notouch.pop(c.id, None)
    else:
        raise CommandError(errors.SYNTAX)
    return OK

