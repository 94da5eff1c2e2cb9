"""wal.checkpoint and collections, which commands change in place: the
capture takes a copy of each (its COPY copy, sharing only immutable pieces)
on the loop, so changes after the capture's loop turn never reach the
checkpoint, while the writer thread encodes the copies."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import run
from wal.checkpoint import Checkpointer

CHANGES = [
    ("HSET", "h", "f{n}", "v{n}"),
    ("SADD", "s", "m{n}"),
    ("ZADD", "z", "{n}", "m{n}"),
    ("RPUSH", "l", "e{n}"),
]


@pytest.fixture
def cp(tmp_path):
    c = Checkpointer(str(tmp_path / "cp"))
    yield c
    c.close()


def contents(ks: Keyspace) -> dict:
    s = Session(ks)
    return {b"h": run(s, "HGETALL", "h"), b"s": sorted(run(s, "SMEMBERS", "s")),
            b"z": run(s, "ZRANGE", "z", "0", "-1", "WITHSCORES"), b"l": run(s, "LRANGE", "l", "0", "-1")}


def change(s: Session, n: int) -> None:
    for cmd in CHANGES:
        run(s, *[a.format(n=n) for a in cmd])


@pytest.mark.parametrize("size", [5, 3000])  # small (packed) and large encodings
def test_changes_after_the_capture_never_reach_the_checkpoint(cp, size):
    ks = Keyspace()
    s = Session(ks)
    cp.start_tracking(ks)
    for n in range(size):
        change(s, n)
    cap = cp.begin_capture(ks)
    n = size
    while not cap.step(1):  # a chunk per key, the collections changed between chunks
        change(s, n)
        n += 1
    snap = cap.finish()
    expected = contents(ks)
    for m in range(n, n + 50):  # after the capture's turn, before the writer runs
        change(s, m)
    cp.write(snap, 1)
    loaded = Keyspace()
    cp.load(loaded)
    assert contents(loaded) == expected
    assert contents(ks) != expected
