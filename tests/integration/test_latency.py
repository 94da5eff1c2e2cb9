"""LATENCY and INFO latencystats side by side with redis-server 7.0.

DEBUG SLEEP makes a ``command`` event on both servers; LATEST, HISTORY,
RESET, GRAPH and their errors are compared; HISTOGRAM and INFO latencystats
are compared by shape (bucket labels, cumulative counts, field names), the
figures being each server's own. The histogram's arithmetic (buckets and
percentiles as Redis's HDR histogram reports them) is checked against
values read from a redis-server run.
"""

from __future__ import annotations

import re
import time

import pytest

from server.latency import Histogram, graph, record, reset
from tests.support import Err, Pair


@pytest.fixture
def lp(servers):
    keel, ref = servers
    p = Pair(keel.client(), ref.client())
    p.check("CONFIG", "SET", "latency-monitor-threshold", "10")
    p.check("LATENCY", "RESET")
    yield p
    p.both("CONFIG", "SET", "latency-monitor-threshold", "0")
    p.both("CONFIG", "SET", "latency-tracking", "yes")
    p.both("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")
    p.both("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    p.close()


# --- the histogram's arithmetic -------------------------------------------------------

def test_histogram_percentiles_as_redis_prints_them():
    h = Histogram()
    h.add(2000)
    assert (h.percentile(50), h.percentile(100), h.percentile(0)) == (2007, 2007, 2000)
    h = Histogram()
    for ns in (1000, 1000, 1000, 12000):  # Redis: p50=1.003, p99=12.031, p0=1.000
        h.add(ns)
    assert (h.percentile(50), h.percentile(99), h.percentile(0)) == (1003, 12031, 1000)
    h.add(0)  # clamped to 1 ns: Redis's p0=0.001
    assert h.percentile(0) == 1


def test_histogram_buckets_as_redis_labels_them():
    h = Histogram()
    for us in (1, 2, 3, 4, 5, 16, 17, 40, 1000, 50_000):
        h.add(us * 1000)
    # Redis labels its power-of-two buckets from 1024 ns by their highest value in µs
    # (1, 2, 4, 8, 16, 33, 66, 132, …, 1056, …); only buckets that hold calls, counts cumulative.
    assert h.buckets() == {1: 1, 2: 2, 4: 4, 8: 5, 16: 6, 33: 7, 66: 8, 1056: 9, 67633: 10}


def test_graph_of_one_sample_and_of_several():
    reset()
    record("test-event", 50)
    text = graph("test-event")
    assert text.split("\n") == ["test-event - high 50 ms, low 50 ms (all time high 50 ms)", "-" * 80,
                                " ", " ", " ", "_", " ", "0", "s", ""]
    assert graph("no-such-event") is None
    reset()


# --- events, side by side ---------------------------------------------------------------

def test_debug_sleep_makes_a_command_event(lp):
    lp.check("DEBUG", "SLEEP", "0.03")
    k, r = lp.both("LATENCY", "LATEST")
    for latest in (k, r):
        [[name, when, ms, top]] = latest
        assert name == b"command" and 30 <= ms == top < 1000 and when > 0
    k, r = lp.both("LATENCY", "HISTORY", "command")
    assert len(k) == len(r) == 1 and k[0][1] >= 30
    k, r = lp.both("LATENCY", "GRAPH", "command")
    assert re.match(rb"command - high \d+ ms, low \d+ ms \(all time high \d+ ms\)\n", k)
    # The rows and the age label, one sample each; the age's digits may differ
    # by a second between the two servers' replies (a second can turn between them).
    def rows(graph):
        return [b"#" if line.isdigit() else line for line in graph.split(b"\n")[1:]]
    assert rows(k) == rows(r)
    doctor = lp.keel.call("LATENCY", "DOCTOR")
    assert b"command" in doctor and b"SLOWLOG" in doctor


def test_below_the_threshold_nothing_is_recorded(lp):
    lp.check("DEBUG", "SLEEP", "0")
    lp.check("LATENCY", "LATEST")
    lp.check("CONFIG", "SET", "latency-monitor-threshold", "0")
    lp.check("DEBUG", "SLEEP", "0.015")
    lp.check("LATENCY", "LATEST")
    assert b"latency-monitor-threshold" in lp.keel.call("LATENCY", "DOCTOR")  # monitoring is off


def test_reset_counts_the_events_it_forgot(lp):
    lp.check("DEBUG", "SLEEP", "0.011")
    lp.check("LATENCY", "RESET", "nosuch")
    lp.check("LATENCY", "RESET", "command", "command", "other")
    lp.check("LATENCY", "RESET")
    lp.check("LATENCY", "LATEST")


def test_unknown_event(lp):
    lp.check("LATENCY", "HISTORY", "nosuch")
    assert lp.check("LATENCY", "GRAPH", "nosuch") == Err("ERR No samples available for event 'nosuch'")


@pytest.mark.parametrize("args", [
    (), ("NOSUCH",), ("HISTORY",), ("HISTORY", "a", "b"), ("GRAPH",), ("LATEST", "x"), ("DOCTOR", "x"),
    ("HELP", "x"),
])
def test_errors(lp, args):
    assert isinstance(lp.check("LATENCY", *args), Err)


@pytest.mark.parametrize("name, value", [
    ("latency-monitor-threshold", "-1"), ("latency-tracking-info-percentiles", "50 x"),
    ("latency-tracking-info-percentiles", "101"), ("latency-tracking-info-percentiles", "-1"),
    ("latency-tracking", "maybe"), ("latency-tracking-info-percentiles", "1_0"),
])
def test_config_errors(lp, name, value):
    assert isinstance(lp.check("CONFIG", "SET", name, value), Err)
    lp.check("CONFIG", "GET", name)


def test_expire_cycle_event(servers):
    """An active expiry slice that takes the threshold's time is an event (Keel's slices last
    up to 2 ms: a threshold of 1 ms and many keys expiring at once)."""
    keel, _ = servers
    c = keel.client()
    c.call("CONFIG", "SET", "latency-monitor-threshold", "1")
    c.call("LATENCY", "RESET")
    c.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    c.pipeline([("SET", "exp:%d" % i, "v", "PX", "1") for i in range(10000)])
    c.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    deadline = time.time() + 5
    while c.call("DBSIZE") and time.time() < deadline:
        time.sleep(0.05)
    history = c.call("LATENCY", "HISTORY", "expire-cycle")
    c.call("CONFIG", "SET", "latency-monitor-threshold", "0")
    c.call("LATENCY", "RESET")
    c.call("FLUSHALL")
    c.close()
    assert history and all(ms >= 1 for _, ms in history)


# --- histograms and INFO latencystats -----------------------------------------------------

def _latencystats(c) -> dict:
    text = c.call("INFO", "latencystats").decode()
    assert text.startswith("# Latencystats")
    return dict(line.split(":", 1) for line in text.splitlines()[1:] if line)


def test_histogram_shape_and_calls(lp):
    # Every call taken by the full dispatch (slowlog at 0 gates every client): all of them counted.
    lp.check("CONFIG", "SET", "slowlog-log-slower-than", "0")
    for _ in range(7):
        lp.check("STRLEN", "k")
    k, r = lp.both("LATENCY", "HISTOGRAM", "strlen", "nosuch")
    for reply in (k, r):
        assert reply[0] == b"strlen" and len(reply) == 2
        fields = dict(zip(reply[1][::2], reply[1][1::2]))
        assert fields[b"calls"] == 7
        buckets = fields[b"histogram_usec"]
        labels, counts = buckets[::2], buckets[1::2]
        assert labels == sorted(labels) and counts == sorted(counts) and counts[-1] == 7
        assert set(labels) <= {1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16908}
    k, r = lp.both("LATENCY", "HISTOGRAM", "config")  # a container: each subcommand with calls
    assert set(k[::2]) == set(r[::2]) and b"config|set" in k[::2]
    assert all(name.startswith(b"config|") for name in k[::2])
    k, r = lp.both("LATENCY", "HISTOGRAM", "config|set", "CONFIG")  # asked twice: given twice, as Redis does
    assert sorted(k[::2]) == sorted(r[::2]) and k[::2].count(b"config|set") == 2


def test_info_latencystats(lp):
    lp.check("CONFIG", "SET", "slowlog-log-slower-than", "0")
    lp.check("STRLEN", "k")
    for c in (lp.keel, lp.ref):
        stats = _latencystats(c)
        assert re.fullmatch(r"p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}", stats["latency_percentiles_usec_strlen"])
    lp.check("CONFIG", "SET", "latency-tracking-info-percentiles", "5e1 0x10")  # strtod's numbers
    lp.check("CONFIG", "GET", "latency-tracking-info-percentiles")
    lp.check("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.99 0 100 12.5")
    lp.check("CONFIG", "GET", "latency-tracking-info-percentiles")
    for c in (lp.keel, lp.ref):
        field = _latencystats(c)["latency_percentiles_usec_strlen"]
        assert [part.split("=")[0] for part in field.split(",")] == ["p50", "p99.99", "p0", "p100", "p12.5"]
    lp.check("CONFIG", "SET", "latency-tracking-info-percentiles", "")
    assert all(v == "" for v in _latencystats(lp.keel).values())
    lp.check("CONFIG", "SET", "latency-tracking", "no")
    assert _latencystats(lp.keel) == _latencystats(lp.ref) == {}


def test_latencystats_is_in_all_not_in_default(lp):
    def titles(c, *args):
        return [line for line in c.call("INFO", *args).decode().splitlines() if line.startswith("# ")]
    for c in (lp.keel, lp.ref):
        assert "# Latencystats" not in titles(c)
        for which in ("all", "everything"):
            t = titles(c, which)
            assert t.index("# Errorstats") < t.index("# Latencystats") < t.index("# Cluster") < t.index("# Keyspace")


def test_log_write_event(servers):
    """Under appendfsync always (Keel's default), a log commit that takes the threshold's
    time is an ``aof-fsync-always`` event: an 8 MB write takes more than a millisecond."""
    keel, _ = servers
    c = keel.client()
    assert c.call("CONFIG", "GET", "appendfsync") == [b"appendfsync", b"always"]
    c.call("CONFIG", "SET", "latency-monitor-threshold", "1")
    c.call("LATENCY", "RESET")
    c.call("SET", "bigvalue", "x" * (8 << 20))
    history = c.call("LATENCY", "HISTORY", "aof-fsync-always")
    c.call("CONFIG", "SET", "latency-monitor-threshold", "0")
    c.call("LATENCY", "RESET")
    c.call("DEL", "bigvalue")
    c.close()
    assert history and all(ms >= 1 for _, ms in history)
