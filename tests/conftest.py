"""Shared fixtures: one real Keel server and one real redis-server per session.

``keel`` / ``redis_ref`` are session-wide processes; ``k`` and ``pair`` give
each test fresh connections and start it from empty databases (FLUSHALL on
both). Without redis-server on PATH the side-by-side tests are skipped on a
developer's machine, and *fail* under CI (``CI`` set), where skipping them
would hide a missing install step.

``--soak`` turns on the long-running tests marked ``soak``.
"""

from __future__ import annotations

import os

import pytest

from tests.support import KeelProcess, Pair, RedisProcess


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", default=False, help="run long soak tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: opt in with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def keel():
    proc = KeelProcess().start()
    yield proc
    proc.cleanup()


def reference(*args: str) -> RedisProcess:
    """A started redis-server to compare with (skipped without one, failed under CI)."""
    if not RedisProcess.available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run must install it")
        pytest.skip("redis-server is not installed")
    return RedisProcess(*args).start()


@pytest.fixture(scope="session")
def redis_ref():
    proc = reference()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def keel_own():
    """A Keel server of this test module's own (for tests that change its
    configuration or global state: pauses, monitors, logs)."""
    proc = KeelProcess().start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def redis_own():
    """A redis-server of this test module's own, DEBUG enabled as on Keel's."""
    proc = reference("--enable-debug-command", "yes")
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def servers(keel_own, redis_own):
    """(Keel, redis-server) of this module's own; a module may define its own ``servers``."""
    return keel_own, redis_own


@pytest.fixture
def k(keel):
    """A raw RESP client to the shared Keel server, databases emptied first."""
    c = keel.client()
    c.call("FLUSHALL")
    yield c
    c.close()


@pytest.fixture
def r(keel):
    """A redis-py client to the shared Keel server, databases emptied first."""
    c = keel.redis()
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def pair(keel, redis_ref):
    """Raw clients to Keel and to redis-server, both emptied first."""
    p = Pair(keel.client(), redis_ref.client())
    p.keel.call("FLUSHALL")
    p.ref.call("FLUSHALL")
    yield p
    p.close()
