"""Random argv for every command in Keel's table (see ``tests.fuzz.argv``).

Each run starts its own Keel (``enable-debug-command yes`` so DEBUG is
fuzzed too, ``proto-max-bulk-len 1mb`` so that no single argv allocates
half a gigabyte, ``appendfsync everysec`` so that the writes among 12 000
commands do not wait for an fsync each) and, where redis-server runs, takes
the argument trees from its ``COMMAND DOCS``. CI sends 50 argv per command
and subcommand; ``--soak`` sends 1000. ``KEEL_FUZZ_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.fuzz import argv as fuzz
from tests.support import KeelProcess, RedisProcess


@pytest.fixture
def fuzz_keel():
    proc = KeelProcess("--enable-debug-command", "yes", "--proto-max-bulk-len", "1mb",
                       "--appendfsync", "everysec").start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def docs():
    if not RedisProcess.available():
        return {}
    ref = RedisProcess().start()
    try:
        c = ref.client()
        out = fuzz.redis_docs(c)
        c.close()
        return out
    finally:
        ref.cleanup()


def _run(keel, docs, per_command):
    seed = int(os.environ.get("KEEL_FUZZ_SEED") or random.randrange(2**32))
    f = fuzz.Fuzzer(keel.port, keel.proc, seed, docs)
    report = f.run(per_command)
    where = f"seed {seed}: {report.summary()}"
    print(where)
    assert keel.proc.poll() is None, where
    assert report.commands >= 150 and report.sent >= report.commands * per_command * 0.8, where
    assert not report.findings, where + "\n" + "\n".join(str(x) for x in report.findings[:30])
    log = keel.log()
    assert "Traceback" not in log, f"{where}\nserver log:\n{log[-4000:]}"
    return report


def test_random_argv_to_every_command_gets_a_value_or_a_redis_error(fuzz_keel, docs):
    _run(fuzz_keel, docs, 50)


@pytest.mark.soak
def test_many_random_argv_to_every_command_get_a_value_or_a_redis_error(fuzz_keel, docs):
    _run(fuzz_keel, docs, 1000)


def test_the_grammar_comes_from_redis_docs(docs):
    if not docs:
        pytest.skip("redis-server is not installed")
    tokens = [a.get("token") for a in docs["set"] for a in [a] + a.get("arguments", [])]
    assert "EX" in tokens and "KEEPTTL" in tokens


def test_every_skip_names_its_reason():
    assert all(reason for reason in fuzz.SKIP.values())
    assert "config|set" not in fuzz.SKIP and "flushall" not in fuzz.SKIP


class _Canned:
    """A connection whose every call answers ``reply`` (or raises it)."""

    def __init__(self, reply):
        self.reply = reply

    def call(self, *argv):
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    def close(self):
        pass


@pytest.mark.parametrize("reply, finding", [
    (("ERR", "ERR internal error while running 'get': KeyError"), "internal error"),
    (__import__("socket").timeout(), "no reply within"),
    (ConnectionError("closed"), "connection closed"),
])
def test_the_fuzzer_reports_internal_errors_hangs_and_closes(keel, reply, finding):
    f = fuzz.Fuzzer(keel.port, keel.proc, 1)
    f.conn = _Canned(reply)
    f.send_one([b"GET", b"s"])
    assert len(f.report.findings) == 1 and finding in f.report.findings[0].what
    f.conn.close()


def test_damaged_payloads_keep_a_valid_checksum_so_they_reach_the_decoders(k):
    k.call("RPUSH", "l", "a", "b")
    f = fuzz.Fuzzer(k.sock.getpeername()[1], None, 3)
    f.payloads = [k.call("DUMP", "l")]
    replies = {k.call("RESTORE", f"r{i}", "0", f.damaged_payload()) for i in range(200)}
    assert "ERR Bad data format" in replies  # got past the checksum
    assert "ERR DUMP payload version or checksum are wrong" in replies  # and one in ten not
