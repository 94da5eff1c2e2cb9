"""The failover figure as a test: bench/failover.py's runs on a Keel group,
and the checker they rely on (jepsen/workload.py).

With ``min-replicas-to-ack 1`` a failover on kill, SIGSTOP or a network cut
of the primary loses no acknowledged write, and writes resume on the new
primary within 5 s (issue 15's figure). Each run takes ~30 s: they are
``--soak`` tests. The checker's own test runs by default.
"""

from __future__ import annotations

import pytest

from bench.failover import parse, run_one
from jepsen.workload import SetAdd
from tests.replication.conftest import need_sentinel


def test_checker_counts_acknowledged_missing_and_resume_time():
    work = SetAdd([("127.0.0.1", 1)], writers=2)  # never started: acks written by hand
    a, b = work.writers
    a.acks = [(1.0, "0-0", 7000, False), (2.0, "0-1", 7000, True), (5.5, "0-2", 7001, True)]
    b.acks = [(1.5, "1-0", 7000, False), (4.0, "1-1", 7000, False), (6.0, "1-2", 7002, False)]
    b.errors = 3
    final = {b"0-0", b"0-2", b"1-2", b"unacked-but-there"}
    got = work.check(final, fault_at=3.0, faulted_ports={7000, 17000})
    assert got == {
        "acked": 6, "lost": 3,  # 0-1, 1-0 and 1-1 (acked by the old primary after the fault)
        "replica_acked": 2, "replica_acked_lost": 1,
        "errors": 3,
        "resume_s": 2.5,  # the first ack after the fault from another server, at 5.5
        "acked_before_fault": 3,
    }
    assert work.check(final, fault_at=7.0, faulted_ports=set())["resume_s"] is None


@pytest.mark.soak
@pytest.mark.parametrize("fault", ["kill", "stop", "cut"])
def test_sync_mode_failover_loses_no_acknowledged_write(fault):
    need_sentinel()
    r = run_one("keel", fault, parse(["--sync"]))
    assert r["acked"] > 1000, r
    assert r["lost"] == 0, r
    assert r["resume_s"] is not None and r["resume_s"] < 5, r
    assert r["settled"], r


@pytest.mark.soak
@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_async_failover_on_kill_and_pause_loses_almost_nothing(fault):
    need_sentinel()
    r = run_one("keel", fault, parse([]))
    assert r["acked"] > 1000 and r["lost"] <= 5, r
    assert r["resume_s"] is not None and r["resume_s"] < 5, r
