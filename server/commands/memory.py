"""MEMORY USAGE|STATS|DOCTOR|MALLOC-STATS|PURGE|HELP, and the figures INFO memory prints.

Every figure comes from one accounting (``engine.memory``): ``Keyspace.mem_used``
is the dataset as the mutators keep it, and ``figures(server)`` turns it into
Redis's breakdown, which INFO memory and MEMORY STATS both print:

* ``startup`` = ``engine.memory.STARTUP``, what an empty instance counts
  (Redis's figure, not the interpreter's ~25 MB: see engine.memory);
* ``overhead`` = startup + the clients' buffers + the eviction policy's
  per-key access entries (``server.eviction.access_mem``) + the keyspace
  dicts' entries (every key's ``DICT_ENTRY``, every TTL's ``TTL_COST``), as
  Redis counts its main and expires hashtables as overhead;
* ``used`` (``used_memory``) = startup + the dataset estimate + the clients
  + the access entries; ``dataset`` = used - overhead. The eviction check
  compares the same sum but the clients with ``maxmemory`` (Redis leaves
  replica and AOF buffers out; Keel leaves out every client, whose buffers
  ``maxmemory-clients`` bounds apart);
* ``rss`` is the process's resident size, apart; ``fragmentation`` =
  rss / used, as Redis computes ``mem_fragmentation_ratio``: for a small
  dataset it is dominated by the interpreter's own baseline.

The peak is the highest ``used`` seen by INFO, MEMORY or the INFO sampler's
100 ms tick (``note_peak``), as Redis samples its peak in its cron.
MEMORY PURGE gives freed heap back to the system with glibc's
``malloc_trim`` (ctypes; nothing where there is no glibc).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import weakref

from engine import errors
from engine.errors import CommandError
from engine.memory import DICT_ENTRY, STARTUP, TTL_COST, charge, key_cost
from engine.keyspecs import spec
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import OK, Verbatim, help_lines
from engine.util import to_int_or_none
from server.info import rss_bytes

_peaks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# The resident size before any data: the interpreter and Keel's code, which
# MEMORY DOCTOR leaves out of its fragmentation verdict.
RSS_AT_START = rss_bytes()


def total_system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * _PAGE
    except (ValueError, OSError, AttributeError):
        return 0


def _clients(server) -> int:
    total = 0
    for c in getattr(server, "clients", {}).values():
        usage = getattr(c, "memory_usage", None)
        if usage is not None:
            try:
                total += usage()
            except Exception:  # a client half closed: it costs nothing more
                pass
    return total


def note_peak(server, used: int) -> int:
    """Record ``used`` as a candidate peak; the peak so far (the keyspace
    notes its own peak before every removal: ``Keyspace.mem_peak``)."""
    peak = max(used, _peaks.get(server, 0), STARTUP + server.ks.mem_peak)
    _peaks[server] = peak
    return peak


def access_mem(server) -> int:
    """What the eviction policy's per-key access entries cost (server.eviction), 0 without them."""
    return getattr(getattr(server, "eviction", None), "access_mem", 0)


def figures(server) -> dict:
    """The memory breakdown INFO memory and MEMORY STATS print (see the module docstring)."""
    ks = server.ks
    ks.mem_settle()  # collections changed in place while maxmemory is 0 (Keyspace.mem_defer)
    clients = _clients(server)
    access = access_mem(server)
    used = STARTUP + ks.mem_used + clients + access
    tables = sum(len(db.data) * DICT_ENTRY + len(db.expires) * TTL_COST for db in ks.dbs)
    overhead = min(STARTUP + clients + access + tables, used)
    rss = rss_bytes()
    return {
        "used": used, "rss": rss, "peak": note_peak(server, used), "startup": STARTUP,
        "overhead": overhead, "dataset": used - overhead, "clients": clients,
        "keys": sum(len(db.data) for db in ks.dbs),
    }


def percent(part: int, whole: int) -> float:
    return part * 100.0 / whole if whole > 0 else 0.0


# --- MEMORY ---------------------------------------------------------------------

_TIPS = "nondeterministic_output request_policy:all_shards response_policy:special"


@command("memory", -2, "", acl="@slow", group="server", since="4.0.0")
def memory_(c, argv):
    """MEMORY <subcommand> ... -- the memory accounting and the allocator."""
    return dispatch_subcommand(memory_.command, c, argv)


@subcommand("memory", "usage", -3, "readonly", (2, 2, 1), "@read @slow", since="4.0.0",
            key_specs=(spec("RO", 2),), summary="Estimate the memory usage of a key")
def usage(c, argv):
    """MEMORY USAGE key [SAMPLES count]

    Reply: the bytes the key and its value take (their share of the
    keyspace's accounting, its TTL included), nil for a missing key. The
    default is the running estimate the mutators keep (its elements sampled
    as the value grew); SAMPLES n resamples n elements (0: all) of a big
    collection. O(1), or O(n) for SAMPLES n.
    """
    samples = None
    i = 3
    while i < len(argv):
        if argv[i].lower() == b"samples" and i + 1 < len(argv):
            n = to_int_or_none(argv[i + 1])
            if n is None:
                raise CommandError(errors.NOT_INTEGER)
            if n < 0:
                raise CommandError(errors.SYNTAX)
            samples = n
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    key = argv[2]
    db = c.db
    v = db.get(key)
    if v is None:
        return None
    t = type(v)
    if t is bytes:
        size = charge(v)
    elif t is bytearray:
        size = db.ba_mem[key]
    elif samples is None:
        size = getattr(v, "_held", 0)
    else:
        size = v.mem_size(samples)
    return key_cost(key) + size + (TTL_COST if key in db.expires else 0)


@subcommand("memory", "stats", 2, "", acl="@slow", since="4.0.0", tips=_TIPS,
            summary="Show the memory usage details of the server")
def stats(c, argv):
    """MEMORY STATS -- Redis 7.0's map of memory figures (see ``figures``). O(databases + clients)."""
    server = c.server
    f = figures(server)
    ks = server.ks
    scripting = dict(ks.scripting.info())
    out = {
        "peak.allocated": f["peak"],
        "total.allocated": f["used"],
        "startup.allocated": f["startup"],
        "replication.backlog": 0,
        "clients.slaves": 0,
        "clients.normal": f["clients"],
        "cluster.links": 0,
        "aof.buffer": 0,
        "lua.caches": scripting.get("used_memory_scripts", 0),
        "functions.caches": scripting.get("used_memory_functions", 0),
    }
    for db in ks.dbs:
        if db.data:
            out[f"db.{db.index}"] = {
                "overhead.hashtable.main": len(db.data) * DICT_ENTRY,
                "overhead.hashtable.expires": len(db.expires) * TTL_COST,
                "overhead.hashtable.slot-to-keys": 0,
            }
    keys = f["keys"]
    out.update({
        "overhead.total": f["overhead"],
        "keys.count": keys,
        "keys.bytes-per-key": (f["used"] - f["startup"]) // keys if keys else 0,
        "dataset.bytes": f["dataset"],
        "dataset.percentage": percent(f["dataset"], f["used"] - f["startup"]),
        "peak.percentage": percent(f["used"], f["peak"]),
        "allocator.allocated": f["used"],
        "allocator.active": f["rss"],
        "allocator.resident": f["rss"],
        "allocator-fragmentation.ratio": f["rss"] / f["used"],
        "allocator-fragmentation.bytes": f["rss"] - f["used"],
        "allocator-rss.ratio": 1.0,
        "allocator-rss.bytes": 0,
        "rss-overhead.ratio": 1.0,
        "rss-overhead.bytes": 0,
        "fragmentation": f["rss"] / f["used"],
        "fragmentation.bytes": f["rss"] - f["used"],
    })
    return out


# The situations MEMORY DOCTOR reports, as Redis's doctor tells them apart.
_EMPTY_BELOW = 5 << 20  # used_memory under which there is nothing to diagnose
_PEAK_RATIO = 1.5  # a peak this much above used memory is reported
_FRAG_RATIO = 1.4  # resident memory beyond the interpreter's baseline, over the data's
_FRAG_BYTES = 10 << 20
_CLIENT_AVG = 200 << 10  # bytes per normal client


@subcommand("memory", "doctor", 2, "", acl="@slow", since="4.0.0", tips=_TIPS,
            summary="Output a memory problems report")
def doctor(c, argv):
    """MEMORY DOCTOR -- a report in words: an empty instance, all fine, a peak much
    higher than now, resident memory far beyond the data, big client buffers."""
    return Verbatim(diagnose(c.server).encode())


def diagnose(server) -> str:
    f = figures(server)
    used = f["used"]
    if used < _EMPTY_BELOW:
        return ("Keel here: this instance holds almost no data (under 5 MB counted), so there is "
                "nothing to diagnose yet. Load some keys and ask again.\n")
    findings = []
    if f["peak"] > used * _PEAK_RATIO:
        findings.append(
            f" * Peak memory: the counted memory once reached {f['peak']} bytes, more than 150% of "
            f"the {used} bytes counted now. The resident size may stay near the peak: the allocator "
            "keeps freed memory for reuse (MEMORY PURGE returns what it can).")
    beyond = f["rss"] - RSS_AT_START
    data = used - f["startup"]
    if data > 0 and beyond > data * _FRAG_RATIO and beyond - data > _FRAG_BYTES:
        findings.append(
            f" * High fragmentation: beyond the interpreter's own {RSS_AT_START} bytes, the process "
            f"holds {beyond} resident bytes for {data} bytes of data ({beyond / data:.2f}x). Memory "
            "freed by deleted keys stays with the allocator until it is reused; MEMORY PURGE may "
            "return some of it, a restart from the checkpoint returns all of it.")
    normal = [cl for cl in getattr(server, "clients", {}).values()]
    if normal and f["clients"] / len(normal) > _CLIENT_AVG:
        findings.append(
            f" * Big client buffers: the {len(normal)} clients hold {f['clients'] // len(normal)} bytes "
            "each on average. Check CLIENT LIST (qbuf, omem) for a slow reader or a huge pipeline, "
            "and client-output-buffer-limit.")
    if not findings:
        return ("Keel here: I found no memory problem in this instance: the counted memory, its peak "
                "and the resident size agree with the data it holds.\n")
    return "Keel here: I found these memory problems:\n\n" + "\n\n".join(findings) + "\n"


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBC = _libc()


@subcommand("memory", "malloc-stats", 2, "", acl="@slow", since="4.0.0", tips=_TIPS,
            summary="Show allocator internal stats")
def malloc_stats(c, argv):
    """MEMORY MALLOC-STATS -- the allocators' figures as text: Keel's accounting, pymalloc's
    blocks, the garbage collector's generations and glibc's mallinfo2."""
    server = c.server
    f = figures(server)
    lines = [
        "___ Keel memory statistics ___",
        f"allocator: pymalloc (objects up to 512 bytes) over glibc malloc; Python {sys.version.split()[0]}",
        f"counted (used_memory): {f['used']}",
        f"dataset estimate (mem_used): {server.ks.mem_used}",
        f"resident (rss): {f['rss']}",
        f"resident at start: {RSS_AT_START}",
        f"pymalloc allocated blocks: {sys.getallocatedblocks()}",
        f"gc objects by generation: {' '.join(str(n) for n in gc.get_count())}",
        f"gc tracked objects: {len(gc.get_objects()) if f['keys'] < 100_000 else 'not counted (large heap)'}",
    ]
    if _LIBC is not None and hasattr(_LIBC, "mallinfo2"):
        _LIBC.mallinfo2.restype = _Mallinfo2
        mi = _LIBC.mallinfo2()
        lines.append("glibc mallinfo2: " + " ".join(f"{k}={getattr(mi, k)}" for k, _ in _Mallinfo2._fields_))
    lines.append("___ End of statistics ___")
    return Verbatim(("\n".join(lines) + "\n").encode())


@subcommand("memory", "purge", 2, "", acl="@slow", since="4.0.0",
            tips="request_policy:all_shards response_policy:all_succeeded",
            summary="Ask the allocator to release memory")
def purge(c, argv):
    """MEMORY PURGE -- return free heap pages to the system (glibc malloc_trim). OK."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
    return OK


@subcommand("memory", "help", 2, "loading stale", acl="@slow", since="4.0.0",
            summary="Show helpful text about the different subcommands")
def help_(c, argv):
    """MEMORY HELP"""
    return help_lines("MEMORY", (
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: the running estimate, 0 means sample all).",
    ))
