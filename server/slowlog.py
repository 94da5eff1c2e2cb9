"""The slow log (SLOWLOG) and where every timed call ends: ``timed``.

An entry is ``[id, unix time, duration µs, argv, client addr, client name]``,
newest first; argv is trimmed as Redis trims it (at most 32 arguments, the
32nd saying ``... (N more arguments)``; each argument at most 128 bytes, then
``... (N more bytes)``) and its passwords redacted (``server.monitor.redacted``).
``slowlog-log-slower-than`` (µs; 0 logs every call, negative none) and
``slowlog-max-len`` (the list is cut back to it at the next entry, as in
Redis) apply at once.

Which calls are timed, and how their times arrive here:

- the full dispatch (``dispatch.run``) times every call it runs and passes it
  to ``timed`` when it reaches ``server.timed_ns`` (0 while latency tracking
  is on: ``timed`` also feeds the per-command histograms, ``server.latency``);
- EXEC's loop (``server.multi``) and ``redis.call`` (``server.scripting``) time
  each command they run, as Redis logs each of them (EXEC itself is flagged
  ``skip_slowlog``; a script's commands are logged from the script's client,
  ``?:0`` with no name, as Redis 7.0 logs them);
- the hot path (``server.protocol``) reads no clock. With the threshold at 0
  every client takes the full dispatch (``Server.full_dispatch("slowlog")``),
  so every call is logged. With a threshold above 0 the commands that can be
  slow — those not flagged ``fast`` — run on the hot path through a timing
  wrapper (``time_slow_commands``), except the plain string writes
  (``UNTIMED``), whose cost is the size of what the client sent, as for a
  fast command: SET is the hottest write, and the wrapper's two clock reads
  and call cost it about a tenth of its time. ``fast`` commands stay untimed
  there (O(1) or O(log N)); the sampled calls (``protocol.sample_calls``) still
  reach the log through the full dispatch.

A blocked command's wait is never counted: a BLPOP that parks is not timed,
and one served later by another client's push is not logged (Redis 7.0 logs it
with the time its serving took: not done here).
"""

from __future__ import annotations

import time
from collections import deque

from engine.registry import FAST
from server import latency
from server.monitor import redacted

MAX_ARGC = 32
MAX_STRING = 128
INF = float("inf")

# Non-fast commands the hot path runs untimed (see the module docstring).
UNTIMED = frozenset(("set", "setex", "psetex", "mset", "msetnx", "getset"))

_SECRET = frozenset((b"auth", b"hello", b"migrate"))


def trimmed(argv: list) -> list:
    argc = len(argv)
    if argv[0].lower() in _SECRET:
        argv = redacted(argv)
    shown = argv if argc <= MAX_ARGC else argv[:MAX_ARGC - 1]
    out = [a if len(a) <= MAX_STRING else a[:MAX_STRING] + b"... (%d more bytes)" % (len(a) - MAX_STRING)
           for a in shown]
    if argc > MAX_ARGC:
        out.append(b"... (%d more arguments)" % (argc - MAX_ARGC + 1))
    return out


class SlowLog:
    def __init__(self, server):
        self.server = server
        self.entries: deque = deque()
        self.next_id = 0
        self.threshold_ns = server.config["slowlog-log-slower-than"] * 1000

    def push(self, argv: list, duration_ns: int, addr: str, name: bytes) -> None:
        entries = self.entries
        entries.appendleft([self.next_id, int(time.time()), duration_ns // 1000, trimmed(argv),
                            addr.encode(), name])
        self.next_id += 1
        max_len = self.server.config["slowlog-max-len"]
        while len(entries) > max_len:
            entries.pop()

    def get(self, count: int) -> list:
        entries = self.entries
        if count < 0 or count >= len(entries):
            return list(entries)
        return [entries[i] for i in range(count)]

    def reset(self) -> None:
        self.entries.clear()


def timed(client, stat, argv: list, ns: int, addr: str | None = None, track: bool = True) -> None:
    """A call of ``stat`` took ``ns``: the slow log, the latency events and (for
    the calls the full dispatch times, ``track``) the latency histograms."""
    server = client.server
    if track and latency.TRACKING:
        latency.track(stat, ns)
    log = server.slowlog
    if ns >= log.threshold_ns and "skip_slowlog" not in stat.flags:
        if addr is None:
            log.push(argv, ns, client.addr, client.name)
        else:
            log.push(argv, ns, addr, b"")
    if latency.THRESHOLD_MS and ns >= latency.THRESHOLD_MS * 1_000_000:
        latency.add("fast-command" if "fast" in stat.flags else "command", ns // 1_000_000)


def script_call(client, stat, argv: list, ns: int) -> None:
    """``redis.call`` ran ``argv`` in ``ns`` (called when it reaches ``server.slow_ns``)."""
    timed(client, stat, argv, ns, addr="?:0", track=False)


def exec_call(client, stat, argv: list, ns: int) -> None:
    """EXEC ran the queued ``argv`` in ``ns`` (called when it reaches ``server.slow_ns``)."""
    timed(client, stat, argv, ns, track=False)


# --- thresholds ------------------------------------------------------------------

def configure(server) -> None:
    """Work out the thresholds the hooks compare with, from the configuration."""
    cfg = server.config
    us = cfg["slowlog-log-slower-than"]
    server.slowlog.threshold_ns = us * 1000 if us >= 0 else INF
    lat_ms = cfg["latency-monitor-threshold"]
    latency.THRESHOLD_MS = lat_ms
    latency.configure(cfg["latency-tracking"])
    slow = min(server.slowlog.threshold_ns, lat_ms * 1_000_000 if lat_ms else INF)
    server.slow_ns = slow  # EXEC's loop, redis.call
    global HOT_NS
    HOT_NS = slow  # the hot path's wrapper (a global: one lookup fewer than c.server.slow_ns)
    server.timed_ns = 0 if latency.TRACKING else slow  # the full dispatch
    server.full_dispatch("slowlog", us == 0)


# --- the hot path's timing wrapper ----------------------------------------------------

_WRAPPED = False
HOT_NS = INF


def _timer(handler, cmd):
    clock = time.perf_counter_ns

    def timed_handler(c, argv):
        t0 = clock()
        r = handler(c, argv)  # (a call that raises is not timed: an error is rarely slow)
        ns = clock() - t0
        if ns >= HOT_NS:
            timed(c, cmd, argv, ns, track=False)
        return r
    return timed_handler


def time_slow_commands() -> None:
    """Wrap the hot path's handlers of the commands not flagged ``fast`` (once a process)."""
    global _WRAPPED
    if _WRAPPED:
        return
    _WRAPPED = True
    done = {}
    for row in FAST:
        for name, (handler, check, cmd) in list(row.items()):
            if "fast" in cmd.flags or cmd.name in UNTIMED:
                continue
            key = (id(handler), id(cmd))
            w = done.get(key)
            if w is None:
                w = done[key] = _timer(handler, cmd)
            row[name] = (w, check, cmd)
