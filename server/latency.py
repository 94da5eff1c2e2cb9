"""Latency: the LATENCY events and the per-command latency histograms.

Events. ``add(event, ms)`` records that ``event`` took ``ms`` milliseconds,
when latency-monitor-threshold is set and ``ms`` reaches it (any code may call
it: the eviction cycle, say). Each event keeps its last 160 samples, one per
second (two in the same second keep the larger) and its all-time maximum.
What Keel records: ``command`` (a call of a command not flagged ``fast``) and
``fast-command`` (a ``fast`` one) from every timed call (``server.slowlog.timed``),
``expire-cycle`` (an active expiry slice, ``Server.expire_slice``),
``aof-fsync-always`` / ``aof-write`` (a log commit under appendfsync always /
otherwise, ``Persistence.commit``).

Histograms. With latency-tracking on, every call the full dispatch times
(``dispatch.run``) is counted in its command's histogram, which INFO
latencystats (percentiles) and LATENCY HISTOGRAM (power-of-two buckets) read.
The hot path reads no clock, so what is counted is the sample of calls the
full dispatch runs (``protocol.sample_calls``: the first command of a few
reads every tick, whatever it is), plus every call of a gated client: a
statistically fair sample of the calls, not their number (``calls`` in
LATENCY HISTOGRAM counts the sample; INFO commandstats has the real count).

The histogram keeps Redis's resolution (an HDR histogram with two
significant digits, in nanoseconds from 1 ns to 1 s): below 256 ns every
value is its own bucket; above, a bucket spans 1/128 of its power of two.
A percentile is the highest value of the bucket holding it (the lowest for
p0), printed in µs with three decimals, as Redis prints it.
"""

from __future__ import annotations

import time
from collections import deque

HISTORY = 160
MAX_NS = 1_000_000_000
FIRST_BUCKET_NS = 1024

THRESHOLD_MS = 0  # latency-monitor-threshold (server.slowlog.configure sets it)
TRACKING = True  # latency-tracking

EVENTS: dict = {}  # name -> Event
HISTOGRAMS: dict = {}  # Command -> Histogram


class Event:
    __slots__ = ("samples", "max")

    def __init__(self):
        self.samples: deque = deque(maxlen=HISTORY)  # [unix seconds, ms], oldest first
        self.max = 0


def add(event: str, ms: int) -> None:
    """Record ``event`` taking ``ms`` ms if it reaches latency-monitor-threshold."""
    if THRESHOLD_MS and ms >= THRESHOLD_MS:
        record(event, ms)


def record(event: str, ms: int) -> None:
    e = EVENTS.get(event)
    if e is None:
        e = EVENTS[event] = Event()
    now = int(time.time())
    samples = e.samples
    if samples and samples[-1][0] == now:
        if ms > samples[-1][1]:
            samples[-1][1] = ms
    else:
        samples.append([now, ms])
    if ms > e.max:
        e.max = ms


def reset(names: list | None = None) -> int:
    """Forget the named events (all of them without names): how many there were."""
    if names is None:
        n = len(EVENTS)
        EVENTS.clear()
        return n
    n = 0
    for name in dict.fromkeys(names):
        if EVENTS.pop(name, None) is not None:
            n += 1
    return n


def configure(tracking: bool) -> None:
    global TRACKING
    TRACKING = tracking


# --- histograms -------------------------------------------------------------------

def _low(v: int) -> int:
    """The lowest value of ``v``'s bucket."""
    shift = v.bit_length() - 8
    return v if shift <= 0 else (v >> shift) << shift


def _high(low: int) -> int:
    shift = low.bit_length() - 8
    return low if shift <= 0 else low + (1 << shift) - 1


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self):
        self.counts: dict = {}  # bucket's lowest value (ns) -> count
        self.total = 0

    def add(self, ns: int) -> None:
        if ns < 1:
            ns = 1
        elif ns > MAX_NS:
            ns = MAX_NS
        shift = ns.bit_length() - 8
        if shift > 0:
            ns = (ns >> shift) << shift
        counts = self.counts
        counts[ns] = counts.get(ns, 0) + 1
        self.total += 1

    def percentile(self, p: float) -> int:
        """The value (ns) at percentile ``p``."""
        want = max(1, int(min(p, 100.0) / 100 * self.total + 0.5))
        seen = 0
        low = 0
        for low in sorted(self.counts):
            seen += self.counts[low]
            if seen >= want:
                break
        return low if p == 0 else _high(low)

    def buckets(self) -> dict:
        """``{bucket µs: cumulative count}`` over power-of-two buckets from 1024 ns,
        the buckets that hold values only (LATENCY HISTOGRAM's ``histogram_usec``)."""
        out = {}
        level = FIRST_BUCKET_NS
        seen = 0
        last = 0
        for low in sorted(self.counts):
            while low > level:
                if seen > last:
                    out[_high(level) // 1000] = last = seen
                level <<= 1
            seen += self.counts[low]
        while seen > last:
            out[_high(level) // 1000] = last = seen
        return out


def track(stat, ns: int) -> None:
    h = HISTOGRAMS.get(stat)
    if h is None:
        h = HISTOGRAMS[stat] = Histogram()
    h.add(ns)


def reset_histograms() -> None:
    HISTOGRAMS.clear()


def info_section(server) -> list:
    """INFO latencystats: ``latency_percentiles_usec_<command>:p50=…,p99=…``."""
    if not TRACKING:
        return []
    from server.config import format_percentile

    percentiles = server.config["latency-tracking-info-percentiles"]
    out = []
    for cmd, h in HISTOGRAMS.items():
        if h.total:
            out.append((f"latency_percentiles_usec_{cmd.fullname}",
                        ",".join(f"p{format_percentile(p)}={h.percentile(p) / 1000:.3f}" for p in percentiles)))
    return out


# --- LATENCY GRAPH ------------------------------------------------------------------

GRAPH_COLS = 80
GRAPH_ROWS = 4
_FILL = "_o#"


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _render(values: list, labels: list, low: int, high: int) -> str:
    """Columns of one chunk: GRAPH_ROWS rows of bars (filled below their top),
    a blank row, then each column's label written downwards."""
    span = high - low or 1
    levels = len(_FILL) * GRAPH_ROWS
    steps = [min(levels - 1, max(0, int((v - low) * levels / span))) for v in values]
    lines = []
    for row in range(GRAPH_ROWS):
        floor = (GRAPH_ROWS - row - 1) * len(_FILL)  # the lowest step this row draws
        chars = []
        for s in steps:
            k = s - floor
            chars.append(_FILL[k] if 0 <= k < len(_FILL) else ("|" if k >= len(_FILL) else " "))
        lines.append("".join(chars))
    lines.append(" " * len(values))
    for i in range(max(map(len, labels))):
        lines.append("".join(label[i] if i < len(label) else " " for label in labels))
    return "".join(line + "\n" for line in lines)


def graph(event: str) -> str | None:
    """LATENCY GRAPH's text for ``event``; None when it has no samples."""
    e = EVENTS.get(event)
    if e is None or not e.samples:
        return None
    now = int(time.time())
    values = [ms for _, ms in e.samples]
    labels = [_ago(now - t) for t, _ in e.samples]
    low, high = min(values), max(values)
    out = [f"{event} - high {high} ms, low {low} ms (all time high {e.max} ms)\n", "-" * GRAPH_COLS + "\n"]
    for i in range(0, len(values), GRAPH_COLS):
        out.append(_render(values[i:i + GRAPH_COLS], labels[i:i + GRAPH_COLS], low, high))
    return "".join(out)


# --- LATENCY DOCTOR -----------------------------------------------------------------

_ADVICE = {
    "command": "Look at SLOWLOG GET for the slow calls: commands over big values (KEYS, SMEMBERS, "
               "LRANGE 0 -1, SORT, ZRANGE of a whole set) cost what they walk; SCAN and bounded ranges do not.",
    "fast-command": "Commands flagged fast were slow: the process itself was held (swapping, a busy machine, "
                    "a checkpoint writer competing for the CPU).",
    "expire-cycle": "Many keys expire at once: spread their TTLs so that the active expiry has less to do per slice.",
    "eviction-cycle": "Eviction is freeing much memory at a time: give maxmemory more room, or enable "
                      "lazyfree-lazy-eviction.",
}


def doctor() -> str:
    """LATENCY DOCTOR: a plain-words report on the recorded events."""
    if not EVENTS and not THRESHOLD_MS:
        return doctor_unset()
    if not EVENTS:
        return ("I have not seen any latency spike since this Keel server started "
                "(or since LATENCY RESET): nothing to report.\n")
    lines = ["I have seen latency spikes in this Keel server. Here is what I found:", ""]
    now = int(time.time())
    for i, (name, e) in enumerate(sorted(EVENTS.items()), 1):
        values = [ms for _, ms in e.samples]
        if not values:
            continue
        mean = sum(values) / len(values)
        mad = sum(abs(v - mean) for v in values) / len(values)
        first = e.samples[0][0]
        period = (now - first) / len(values) if len(values) > 1 else 0
        lines.append(f"{i}. {name}: {len(values)} spike(s) of {int(mean)} ms on average (mean deviation "
                     f"{int(mad)} ms, one every {period:.2f} s); the worst ever was {e.max} ms.")
    lines += ["", "What I suggest:", ""]
    if THRESHOLD_MS:
        lines.append(f"- Events shorter than latency-monitor-threshold ({THRESHOLD_MS} ms) are not recorded.")
    for name in sorted(EVENTS):
        advice = _ADVICE.get(name)
        if advice:
            lines.append(f"- {name}: {advice}")
    return "\n".join(lines) + "\n"


def doctor_unset() -> str:
    return ("Latency monitoring is off: set latency-monitor-threshold (CONFIG SET latency-monitor-threshold "
            "<milliseconds>) and I will record events that last at least that long.\n")
