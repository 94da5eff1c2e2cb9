"""Fixtures of the replication tests: groups of real servers and sentinels.

Without ``redis-server`` / ``redis-sentinel`` on PATH the tests that need them
are skipped on a developer's machine and fail under CI (``CI`` set), as in
tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.replication.support import Group, Sentinels


def need(binary: str) -> None:
    if shutil.which(binary) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; .ci/run must install it")
        pytest.skip(f"{binary} is not installed")


def need_sentinel() -> None:
    if shutil.which("redis-sentinel") is None:
        need("redis-server")  # redis-server --sentinel


@pytest.fixture
def make_group():
    """``make_group(kind, replicas, ...)`` -> a started ``Group``, torn down after the test."""
    made = []

    def make(kind: str = "redis", replicas: int = 1, **kw) -> Group:
        need("redis-server" if kind == "redis" else "python3")
        g = Group(kind, replicas, **kw)
        made.append(g)
        return g.start()
    yield make
    for g in made:
        g.cleanup()


@pytest.fixture
def make_sentinels():
    """``make_sentinels(group, n, down_after_ms=...)`` -> started ``Sentinels``."""
    made = []

    def make(group: Group, n: int = 3, **kw) -> Sentinels:
        need_sentinel()
        s = Sentinels(group, n, **kw)
        made.append(s)
        return s.start()
    yield make
    for s in made:
        s.cleanup()
