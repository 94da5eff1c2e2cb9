"""INFO: the server's state as ``field:value`` lines, in sections.

Each section is a function from the server to a list of ``(field, value)``
pairs, registered in ``SECTIONS`` in the order INFO prints them. Field names
are Redis's, since tools (redis-cli, Sentinel, exporters, client libraries)
parse them; Keel adds ``keel_version``. Another area that owns a section's
truth (replication, the write-ahead log) replaces that section with
``register_section``.

Memory figures come from the keyspace's accounting (``engine.memory``,
``server.commands.memory.figures``): ``used_memory`` is the dataset as Keel
estimates it plus Redis's startup figure and the clients' buffers, and the
process's resident size is ``used_memory_rss``, apart.

``instantaneous_ops_per_sec`` and ``instantaneous_input/output_kbps`` come
from a sampler that records the command and network byte counters every
100 ms (16 samples, as Redis does); it starts with the first INFO call, so
the first INFO of a process reports 0.

Fields Redis prints for machinery Keel does not have (forks, active
defragmentation, I/O threads, reply-buffer resizing, the event loop's cycle
clock) are printed with the value Redis shows when that machinery is idle,
so that parsers (redis-py, redis_exporter, Sentinel) find every field.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import resource
import sys
import time
import weakref

from engine.keyspace import now_ms
from server.client import output_bytes, query_buffer

SECTIONS: dict = {}  # name -> (title, fn, in_default)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def register_section(name: str, title: str, fn, default: bool = True) -> None:
    """Add or replace a section: ``fn(server) -> [(field, value), ...]``."""
    SECTIONS[name] = (title, fn, default)


def human_bytes(n: int) -> str:
    """Redis's bytesToHuman: 1023B, 1.00K, 1.50M, 2.00G."""
    for unit, scale in (("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n}B"


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- instantaneous ops/sec ----------------------------------------------------

class _Sampler:
    """Commands processed per second, averaged over the last 16 samples."""

    INTERVAL = 0.1
    SAMPLES = 16

    def __init__(self, server):
        self.server = weakref.ref(server)
        self.rates = [0.0] * self.SAMPLES
        self.in_rates = [0.0] * self.SAMPLES  # bytes/s read, written (instantaneous_*_kbps)
        self.out_rates = [0.0] * self.SAMPLES
        self.index = 0
        self.last_t = time.monotonic()
        self.last_n = server.stats.commands
        self.last_in = server.stats.net_input_bytes
        self.last_out = server.stats.net_output_bytes
        self.handle = None

    def start(self, loop) -> None:
        self.handle = loop.call_later(self.INTERVAL, self.tick)

    def tick(self) -> None:
        server = self.server()
        if server is None or server.shutdown_event is None or server.shutdown_event.is_set():
            return
        now = time.monotonic()
        st = server.stats
        n, nin, nout = st.commands, st.net_input_bytes, st.net_output_bytes
        elapsed = now - self.last_t
        if n < self.last_n or nin < self.last_in or nout < self.last_out:  # CONFIG RESETSTAT zeroed them
            self.last_n = self.last_in = self.last_out = 0
        i = self.index
        if elapsed > 0:
            self.rates[i] = (n - self.last_n) / elapsed
            self.in_rates[i] = (nin - self.last_in) / elapsed
            self.out_rates[i] = (nout - self.last_out) / elapsed
        self.index = (i + 1) % self.SAMPLES
        self.last_t, self.last_n, self.last_in, self.last_out = now, n, nin, nout
        self.handle = server.loop.call_later(self.INTERVAL, self.tick)

    def ops_per_sec(self) -> int:
        return int(sum(self.rates) / self.SAMPLES)

    def kbps(self) -> tuple[float, float]:
        return sum(self.in_rates) / self.SAMPLES / 1024, sum(self.out_rates) / self.SAMPLES / 1024


_samplers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _sampler(server):
    """The server's sampler, started by the first INFO (None on that first call)."""
    s = _samplers.get(server)
    if s is None:
        s = _samplers[server] = _Sampler(server)
        if server.loop is not None:
            s.start(server.loop)
        return None
    return s


def ops_per_sec(server) -> int:
    s = _sampler(server)
    return 0 if s is None else s.ops_per_sec()


def net_kbps(server) -> tuple[float, float]:
    """KB/s read and written over the last 1.6 s (instantaneous_input/output_kbps)."""
    s = _sampler(server)
    return (0.0, 0.0) if s is None else s.kbps()


# --- sections -----------------------------------------------------------------

def _listeners(server) -> list:
    """7.2's ``listenerN`` lines: each listener's kind, bind addresses and port."""
    cfg = server.config
    binds = ",".join(f"bind={b}" for b in str(cfg["bind"]).split())
    out = []
    if server.port:
        out.append(f"name=tcp,{binds},port={server.port}")
    if server.tls_port:
        out.append(f"name=tls,{binds},port={server.tls_port}")
    if cfg["unixsocket"]:
        out.append(f"name=unix,bind={cfg['unixsocket']}")
    return [(f"listener{i}", line) for i, line in enumerate(out)]


def _compiler_version() -> str:
    """The version of the C compiler that built Python (and Keel's C extensions)."""
    m = re.search(r"\d+\.\d+(\.\d+)?", platform.python_compiler())
    return m.group(0) if m else "0.0.0"


@functools.lru_cache(maxsize=None)
def _build_id() -> str:
    """A 16-character hex name of Keel's version, as Redis names its build (text to parsers)."""
    from server.app import KEEL_VERSION

    return "k" + hashlib.sha1(f"keel {KEEL_VERSION}".encode()).hexdigest()[:15]


def _server(server):
    from server.app import KEEL_VERSION, REDIS_VERSION

    uname = platform.uname()
    now = time.time()
    uptime = int(now - server.start_time)
    cfg = server.config
    return [
        ("redis_version", REDIS_VERSION),
        ("keel_version", KEEL_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", _build_id()),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "uvloop"),
        ("atomicvar_api", "none"),  # one thread touches the keyspace: no atomics
        ("gcc_version", _compiler_version()),
        ("python_version", platform.python_version()),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", server.run_id),
        ("tcp_port", server.port),
        ("server_time_usec", time.time_ns() // 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", cfg["hz"]),
        ("configured_hz", cfg["hz"]),
        ("lru_clock", int(now) & ((1 << 24) - 1)),
        ("executable", sys.executable),
        ("config_file", cfg.source_file or ""),
        ("io_threads_active", 0),
        *_listeners(server),
    ]


def _clients(server):
    # Redis 7.4's fields and order (7.2's plus pubsub_clients, watching_clients,
    # total_watched_keys). The "recent max" buffers are the largest held by a
    # client now (Redis keeps the peak of the last few seconds).
    max_in = max_out = pubsub = 0
    for c in server.clients.values():
        if c.pubsub is not None:
            pubsub += 1
        conn = c.conn
        if conn is not None:
            max_in = max(max_in, query_buffer(conn)[0])
            max_out = max(max_out, output_bytes(conn))
    blocking_keys = on_nokey = 0
    for queues in server.blocking.queues:
        blocking_keys += len(queues)
        for q in queues.values():  # keys a deletion wakes: XREADGROUP's (its wait ends with an error)
            if any(not w.done and w.block.kind == "stream-group" for w in q.waiters):
                on_nokey += 1
    return [
        ("connected_clients", len(server.clients)),
        ("cluster_connections", 0),
        ("maxclients", server.config["maxclients"]),
        ("client_recent_max_input_buffer", max_in),
        ("client_recent_max_output_buffer", max_out),
        ("blocked_clients", server.blocking.blocked),
        ("tracking_clients", server.tracking.info_clients()),
        ("pubsub_clients", pubsub),
        ("watching_clients", server.watches.clients_watching()),
        ("clients_in_timeout_table", server.blocking.timed),
        ("total_watched_keys", server.watches.keys),
        ("total_blocking_keys", blocking_keys),
        ("total_blocking_keys_on_nokey", on_nokey),
    ]


def _memory(server):
    """Redis 7.0's fields, from the accounting (server.commands.memory.figures):
    used_memory is the estimate, used_memory_rss the process's resident size."""
    from server.commands.memory import figures, percent, total_system_memory

    f = figures(server)
    used, rss, peak, startup = f["used"], f["rss"], f["peak"], f["startup"]
    cfg = server.config
    maxmemory = cfg["maxmemory"]
    scripting = dict(server.ks.scripting.info())
    lua = scripting.get("used_memory_lua", 0)
    vm_fn = scripting.get("used_memory_vm_functions", 0)
    scripts = scripting.get("used_memory_scripts", 0)
    functions = scripting.get("used_memory_functions", 0)
    system = total_system_memory()
    return [
        ("used_memory", used),
        ("used_memory_human", human_bytes(used)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", human_bytes(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", human_bytes(peak)),
        ("used_memory_peak_perc", f"{percent(used, peak):.2f}%"),
        ("used_memory_overhead", f["overhead"]),
        ("used_memory_startup", startup),
        ("used_memory_dataset", f["dataset"]),
        ("used_memory_dataset_perc", f"{percent(f['dataset'], used - startup):.2f}%"),
        ("allocator_allocated", used),
        ("allocator_active", rss),
        ("allocator_resident", rss),
        ("total_system_memory", system),
        ("total_system_memory_human", human_bytes(system)),
        ("used_memory_lua", lua),
        ("used_memory_vm_eval", scripting.get("used_memory_vm_eval", lua)),
        ("used_memory_lua_human", human_bytes(lua)),
        ("used_memory_scripts_eval", scripts),
        ("number_of_cached_scripts", scripting.get("number_of_cached_scripts", 0)),
        ("number_of_functions", scripting.get("number_of_functions", 0)),
        ("number_of_libraries", scripting.get("number_of_libraries", 0)),
        ("used_memory_vm_functions", vm_fn),
        ("used_memory_vm_total", lua + vm_fn),
        ("used_memory_vm_total_human", human_bytes(lua + vm_fn)),
        ("used_memory_functions", functions),
        ("used_memory_scripts", scripts + functions),
        ("used_memory_scripts_human", human_bytes(scripts + functions)),
        ("maxmemory", maxmemory),
        ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", cfg["maxmemory-policy"]),
        ("allocator_frag_ratio", f"{rss / used:.2f}"),
        ("allocator_frag_bytes", rss - used),
        ("allocator_rss_ratio", "1.00"),
        ("allocator_rss_bytes", 0),
        ("rss_overhead_ratio", "1.00"),
        ("rss_overhead_bytes", 0),
        ("mem_fragmentation_ratio", f"{rss / used:.2f}"),
        ("mem_fragmentation_bytes", rss - used),
        ("mem_not_counted_for_evict", 0),
        ("mem_replication_backlog", 0),
        ("mem_total_replication_buffers", 0),
        ("mem_clients_slaves", 0),
        ("mem_clients_normal", f["clients"]),
        ("mem_cluster_links", 0),
        ("mem_aof_buffer", 0),
        ("mem_allocator", "pymalloc"),
        ("active_defrag_running", 0),
        ("lazyfree_pending_objects", getattr(server, "lazyfree_pending", 0)),
        ("lazyfreed_objects", getattr(server, "lazyfreed_objects", 0)),
    ]


def _log_fields(p) -> list:
    """What Redis prints while the AOF is on, from the write-ahead log: its size
    on disk, the part a checkpoint covers (the "base"), what is not yet written."""
    lg = p.log
    size = 0
    for seg in lg.segments():
        try:
            size += os.path.getsize(seg.path)
        except OSError:
            pass
    return [
        ("aof_current_size", size),
        ("aof_base_size", max(0, p.checkpoint_offset - lg.start_offset)),
        ("aof_pending_rewrite", 0),
        ("aof_buffer_length", sum(map(len, p.batch)) + lg.end_offset - lg.written_offset),
        ("aof_pending_bio_fsync", int(p.bg_fsync_running)),
        ("aof_delayed_fsync", 0),
    ]


def _loading_fields(p) -> list:
    total, done = p.load_total_bytes, p.load_done_bytes
    elapsed = max(time.time() - p.loading_started, 1e-6)
    rate = done / elapsed
    return [
        ("loading_start_time", int(p.loading_started)),
        ("loading_total_bytes", total),
        ("loading_rdb_used_mem", 0),
        ("loading_loaded_bytes", done),
        ("loading_loaded_perc", f"{100.0 * done / total if total else 0:.2f}"),
        ("loading_eta_seconds", int((total - done) / rate) if rate and total > done else 1),
    ]


def _persistence(server):
    p = server.persistence
    fields = list(p.info().items())
    extra = []
    if p.log is not None:
        extra += _log_fields(p)
    if server.ks.loading or server.loading:
        extra += _loading_fields(p)
    # Redis's conditional fields come after its fixed ones; Keel's own last.
    at = next((i for i, (k, _) in enumerate(fields) if k.startswith("keel_")), len(fields))
    return fields[:at] + extra + fields[at:]


def _acl_denied(server) -> list:
    acl = getattr(server, "acl", None)
    denied = acl.denied if acl is not None else {}
    return [(f"acl_access_denied_{field}", denied.get(reason, 0))
            for reason, field in (("auth", "auth"), ("command", "cmd"), ("key", "key"), ("channel", "channel"))]


def _stats(server):
    # Redis 7.2's fields and order. Counters of machinery Keel does not have
    # (forks, defragmentation, I/O threads, reply buffer resizing, the
    # event-loop cycle clock, MIGRATE's sockets) are 0.
    st = server.stats
    ks = server.ks
    kbps_in, kbps_out = net_kbps(server)
    acl = _acl_denied(server)
    return [
        ("total_connections_received", st.total_connections),
        ("total_commands_processed", st.commands),
        ("instantaneous_ops_per_sec", ops_per_sec(server)),
        ("total_net_input_bytes", st.net_input_bytes),
        ("total_net_output_bytes", st.net_output_bytes),
        ("total_net_repl_input_bytes", 0),
        ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", f"{kbps_in:.2f}"),
        ("instantaneous_output_kbps", f"{kbps_out:.2f}"),
        ("instantaneous_input_repl_kbps", "0.00"),
        ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", st.rejected_connections),
        ("sync_full", server.repl.primary.sync_full),
        ("sync_partial_ok", server.repl.primary.sync_partial_ok),
        ("sync_partial_err", server.repl.primary.sync_partial_err),
        ("expired_keys", ks.expired_keys),
        ("expired_stale_perc", "0.00"),
        ("expired_time_cap_reached_count", 0),
        ("expire_cycle_cpu_milliseconds", 0),
        ("evicted_keys", ks.evicted_keys),
        ("evicted_clients", getattr(st, "evicted_clients", 0)),
        *server.eviction.info_stats(),  # total_/current_eviction_exceeded_time
        ("keyspace_hits", ks.hits),
        ("keyspace_misses", ks.misses),
        ("pubsub_channels", len(server.pubsub.channels)),
        ("pubsub_patterns", len(server.pubsub.patterns)),
        ("pubsubshard_channels", len(server.pubsub.shard)),
        ("latest_fork_usec", 0),
        ("total_forks", 0),
        ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        *server.tracking.info_stats(),
        ("unexpected_error_replies", 0),
        ("total_error_replies", sum(st.errors.values())),
        ("dump_payload_sanitizations", 0),
        ("total_reads_processed", 0),
        ("total_writes_processed", 0),
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
        ("client_query_buffer_limit_disconnections", getattr(st, "query_buffer_limit_disconnections", 0)),
        ("client_output_buffer_limit_disconnections", getattr(st, "output_buffer_limit_disconnections", 0)),
        ("reply_buffer_shrinks", 0),
        ("reply_buffer_expands", 0),
        ("eventloop_cycles", 0),
        ("eventloop_duration_sum", 0),
        ("eventloop_duration_cmd_sum", _command_usec()),
        ("instantaneous_eventloop_cycles_per_sec", 0),
        ("instantaneous_eventloop_duration_usec", 0),
        *acl,
        ("total_protocol_errors", st.protocol_errors),
    ]


def _replication(server):
    if getattr(server, "repl", None) is not None:
        return server.repl.info()
    replid = getattr(server, "replid", None) or server.run_id
    return [
        ("role", getattr(server, "role", "master")),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", replid),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", getattr(server, "repl_offset", 0)),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", server.config["repl-backlog-size"]),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu(server):
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    # INFO runs on the event loop's thread, the main one: its own usage is
    # the main thread's (the checkpoint writer and fsync threads are apart).
    main = resource.getrusage(resource.RUSAGE_THREAD) if hasattr(resource, "RUSAGE_THREAD") else me
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{kids.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{kids.ru_utime:.6f}"),
        ("used_cpu_sys_main_thread", f"{main.ru_stime:.6f}"),
        ("used_cpu_user_main_thread", f"{main.ru_utime:.6f}"),
    ]


def _modules(server):
    return []


def _command_usec() -> int:
    """Microseconds spent in commands, from the per-command samples (as commandstats scales them)."""
    from engine.commands.introspection import all_commands

    total = 0
    for cmd in all_commands():
        if cmd.timed_calls:
            total += int(cmd.usec / cmd.timed_calls / 1000 * cmd.calls)
    return total


def _commandstats(server):
    from engine.commands.introspection import all_commands

    out = []
    for cmd in all_commands():
        if not (cmd.calls or cmd.rejected_calls or cmd.failed_calls):
            continue
        # usec is measured on a sample of calls (see server.protocol): scale the
        # sample's mean to every call.
        mean_us = cmd.usec / cmd.timed_calls / 1000 if cmd.timed_calls else 0.0
        usec = int(mean_us * cmd.calls)
        out.append((f"cmdstat_{cmd.fullname}",
                    f"calls={cmd.calls},usec={usec},usec_per_call={mean_us:.2f},"
                    f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}"))
    return out


def _errorstats(server):
    return [(f"errorstat_{prefix}", f"count={n}") for prefix, n in sorted(server.stats.errors.items()) if n]


def _cluster(server):
    return [("cluster_enabled", 0)]


def _keyspace(server):
    out = []
    now = now_ms()
    for db in server.ks.dbs:
        if not db.data:
            continue
        expires = db.expires
        avg_ttl = 0
        if expires:
            # A bounded sample keeps INFO O(1) on a big keyspace.
            total = count = 0
            for when in expires.values():
                if when > now:
                    total += when - now
                    count += 1
                if count >= 1000:
                    break
            avg_ttl = total // count if count else 0
        out.append((f"db{db.index}", f"keys={len(db.data)},expires={len(expires)},avg_ttl={avg_ttl}"))
    return out


register_section("server", "Server", _server)
register_section("clients", "Clients", _clients)
register_section("memory", "Memory", _memory)
register_section("persistence", "Persistence", _persistence)
register_section("stats", "Stats", _stats)
register_section("replication", "Replication", _replication)
register_section("cpu", "CPU", _cpu)
register_section("modules", "Modules", _modules)
register_section("commandstats", "Commandstats", _commandstats, default=False)
register_section("errorstats", "Errorstats", _errorstats)
register_section("cluster", "Cluster", _cluster)
register_section("keyspace", "Keyspace", _keyspace)


# Redis's order of the sections, whichever module registers each.
ORDER = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
         "commandstats", "errorstats", "latencystats", "cluster", "keyspace")


def _rank(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


def section_names(args: list[str]) -> list[str]:
    """The sections INFO ``args`` asks for, in INFO's order (``ORDER``)."""
    if not args:
        args = ["default"]
    wanted = set()
    for a in args:
        a = a.lower()
        if a in ("all", "everything"):
            wanted.update(SECTIONS)  # Keel has no modules: all == everything
        elif a == "default":
            wanted.update(name for name, (_, _, dflt) in SECTIONS.items() if dflt)
        else:
            wanted.add(a)
    return sorted((name for name in SECTIONS if name in wanted), key=_rank)


def generate(server, args: list[str]) -> str:
    """The INFO text for ``args`` (section names, ``all``, ``everything``, ``default``)."""
    parts = []
    for name in section_names(args):
        title, fn, _ = SECTIONS[name]
        parts.append(f"# {title}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in fn(server)))
    return "\r\n".join(parts)


def parse(text: str) -> dict[str, str]:
    """``field -> value`` of an INFO text (for tests and tools)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, _, v = line.partition(":")
            out[k] = v
    return out
