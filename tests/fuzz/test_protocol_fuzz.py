"""The protocol fuzzer against a real Keel process (see ``tests.fuzz.wire``).

The CI size sends 20 000 inputs; ``--soak`` sends 1 000 000. Each run gets
its own Keel process (under the default ``appendfsync always``), so that a
crash is seen as one and the resident size is the fuzzer's alone. The seed is
random per run and named in every failure: ``KEEL_FUZZ_SEED=<seed>`` replays
the same inputs.

Beside the fuzzing, the harness itself is tested: a server that never closes
is reported as a hang, and garbage on the wire as a failure, so a run that
reports nothing has looked.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time

import pytest

from tests.fuzz import wire
from tests.support import KeelProcess, RedisProcess


def _seed() -> int:
    return int(os.environ.get("KEEL_FUZZ_SEED") or random.randrange(2**32))


@pytest.fixture
def fuzz_keel():
    proc = KeelProcess().start()
    yield proc
    proc.cleanup()


def _assert_clean(report: wire.Report, proc: KeelProcess, seed: int) -> None:
    where = f"seed {seed}: {report.summary()}"
    print(where)
    assert proc.proc.poll() is None and report.crashes == 0, where
    assert not report.hangs, f"{where}\nhangs (first inputs): {report.hangs[:5]!r}"
    assert not report.failures, f"{where}\nfailures: {report.failures[:10]!r}"
    assert report.checked_ops > 0, where
    assert report.rss_after <= report.rss_baseline + wire.RSS_SLACK, where
    log = proc.log()
    assert "Traceback" not in log and "internal error" not in log, f"{where}\nserver log:\n{log[-4000:]}"


def test_twenty_thousand_malformed_inputs_neither_crash_nor_hang_keel(fuzz_keel):
    seed = _seed()
    report = wire.run(fuzz_keel.port, fuzz_keel.proc, seed, total=20_000)
    _assert_clean(report, fuzz_keel, seed)
    assert report.inputs >= 20_000


def test_unauthenticated_connections_fuzzed_behind_requirepass_neither_crash_nor_hang_keel():
    # Clients that never log in take the slow path with Redis's smaller
    # limits (10 arguments, 16 KB bulks): the same inputs meet those.
    proc = KeelProcess("--requirepass", "fuzzpass").start()
    try:
        # start() returns at the first -NOAUTH, which comes before -LOADING.
        c = proc.client()
        assert c.call("AUTH", "fuzzpass") == b"OK"
        deadline = time.monotonic() + 15
        while c.call("PING") != b"PONG" and time.monotonic() < deadline:
            time.sleep(0.05)
        c.close()
        seed = _seed()
        report = wire.run(proc.port, proc.proc, seed, total=5_000, password="fuzzpass")
        _assert_clean(report, proc, seed)
    finally:
        proc.cleanup()


@pytest.mark.soak
def test_a_million_malformed_inputs_neither_crash_nor_hang_keel(fuzz_keel):
    seed = _seed()
    report = wire.run(fuzz_keel.port, fuzz_keel.proc, seed, total=1_000_000, batch=10_000)
    _assert_clean(report, fuzz_keel, seed)
    assert report.inputs >= 1_000_000


# Differences found by this test and forgiven line for line: none left (a
# refused EXEC answering the plain refusal instead of Redis's EXECABORT was
# the last; server.dispatch.refuse now aborts as Redis does).
def _known(keel_reply: bytes, redis_reply: bytes) -> bool:
    return keel_reply == redis_reply


def test_malformed_inputs_get_the_replies_redis_gives(keel, redis_ref):
    # Only inputs whose replies depend neither on timing nor on the server's
    # identity (see wire.compare); every other difference is a finding.
    seed = _seed()
    compared, diffs = wire.compare(keel.port, redis_ref.port, seed, 1500)
    assert compared == 1500
    diffs = [(d, k, r) for d, k, r in diffs if not (k[1] == r[1] and _known(k[0], r[0]))]
    assert not diffs, f"seed {seed}: {len(diffs)} differ, first: " + "\n".join(
        f"{d!r}: keel {k!r} != redis {r!r}" for d, k, r in diffs[:5])


def test_unauthenticated_malformed_inputs_get_the_replies_redis_gives():
    if not RedisProcess.available():
        pytest.skip("redis-server is not installed")
    keel = KeelProcess("--requirepass", "fuzzpass").start()
    ref = RedisProcess("--requirepass", "fuzzpass").start()
    try:
        seed = _seed()
        compared, diffs = wire.compare(keel.port, ref.port, seed, 800)
        diffs = [(d, k, r) for d, k, r in diffs if not (k[1] == r[1] and _known(k[0], r[0]))]
        assert not diffs, f"seed {seed}: {len(diffs)} differ, first: " + "\n".join(
            f"{d!r}: keel {k!r} != redis {r!r}" for d, k, r in diffs[:5])
    finally:
        keel.cleanup()
        ref.cleanup()


# --- the harness finds what it looks for --------------------------------------

def _server(behaviour) -> tuple[int, threading.Event]:
    """A TCP server on a free port that treats each connection with ``behaviour``."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    stop = threading.Event()

    def serve():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=behaviour, args=(conn, stop), daemon=True).start()
        lsock.close()

    threading.Thread(target=serve, daemon=True).start()
    return lsock.getsockname()[1], stop


def _session(port: int, data: bytes, close_timeout: float) -> wire.Report:
    report = wire.Report()

    class Always:  # end every session by shutting the sending side
        def random(self):
            return 0.0

        def choice(self, seq):
            return seq[0]

        def sample(self, seq, k):
            return list(seq)[:k]

        def randrange(self, *a):
            return a[0] if len(a) > 1 else 0

    asyncio.run(wire._session(port, data, Always(), report, close_timeout))
    return report


def test_a_connection_the_server_never_closes_is_reported_as_a_hang():
    def never_close(conn, stop):
        stop.wait(5)
        conn.close()

    port, stop = _server(never_close)
    try:
        report = _session(port, b"*1\r\n$4\r\nPING\r\n", close_timeout=0.5)
    finally:
        stop.set()
    assert len(report.hangs) == 1


@pytest.mark.parametrize("reply, finding", [
    (b"+PONG\r\n$5\r\nab", "do not parse"),
    (b"-ERR internal error while running 'get': KeyError\r\n", "internal error"),
    (b"-ERR Protocol error: invalid bulk length\r\n+OK\r\n", "after a protocol error"),
])
def test_bad_replies_are_reported(reply, finding):
    def answer(conn, stop):
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()

    port, stop = _server(answer)
    try:
        report = _session(port, b"PING\r\n", close_timeout=2)
    finally:
        stop.set()
    assert any(finding in what for what, _ in report.failures), report.failures


def test_inputs_are_reproducible_from_their_seed():
    a, b = wire.Inputs(7), wire.Inputs(7)
    assert [a.next() for _ in range(500)] == [b.next() for _ in range(500)]
