"""One loop turn's journaled effects, from every client, become one log record."""

from __future__ import annotations

import hiredis

from engine.session import Session
from server.app import Server
from server.config import Config
from tests.support import run


class _Loop:
    """Collects call_soon callbacks; ``turn()`` runs them like the event loop."""

    def __init__(self):
        self.ready = []

    def call_soon(self, fn, *args):
        self.ready.append((fn, args))

    def turn(self):
        while self.ready:
            fn, args = self.ready.pop(0)
            fn(*args)


def _server(tmp_path, fsync="always"):
    cfg = Config()
    cfg.set("dir", str(tmp_path))
    cfg.set("appendfsync", fsync)
    srv = Server(cfg)
    srv.loop = _Loop()
    srv.persistence.load()
    return srv


def _commands(payload: bytes) -> list:
    r = hiredis.Reader()
    r.feed(payload)
    out = []
    while (cmd := r.gets()) is not False:
        out.append(cmd)
    return out


def test_reads_of_one_turn_are_one_record_with_their_selects(tmp_path):
    srv = _server(tmp_path)
    p = srv.persistence
    start = p.log.end_offset
    s0, s3 = Session(srv.ks, 0), Session(srv.ks, 3)
    for session, args in ((s0, ("SET", "a", "1")), (s3, ("SET", "b", "2")), (s0, ("INCR", "n"))):
        run(session, *args)
        p.journal()
    assert p.must_hold()  # journaled, not yet durable: replies wait
    assert p.log.end_offset == start  # nothing framed before the commit
    srv.loop.turn()
    assert not p.must_hold()
    records = list(p.log.read_from(start))
    assert len(records) == 1
    assert _commands(records[0][2]) == [
        [b"SELECT", b"0"], [b"SET", b"a", b"1"],
        [b"SELECT", b"3"], [b"SET", b"b", b"2"],
        [b"SELECT", b"0"], [b"INCR", b"n"],
    ]
    p.close(save=False)


def test_a_turn_after_a_commit_starts_a_new_record(tmp_path):
    srv = _server(tmp_path, fsync="everysec")
    p = srv.persistence
    start = p.log.end_offset
    s0 = Session(srv.ks, 0)
    run(s0, "SET", "a", "1")
    p.journal()
    srv.loop.turn()
    run(s0, "SET", "b", "2")
    p.journal()
    srv.loop.turn()
    assert [len(_commands(r[2])) for r in p.log.read_from(start)] == [2, 1]  # SELECT once
    p.close(save=False)
