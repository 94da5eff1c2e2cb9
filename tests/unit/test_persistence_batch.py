"""One loop turn's journaled effects, from every client, become one log record,
and no reply leaves before that record is written (fsynced under ``always``)."""

from __future__ import annotations

import hiredis
import pytest

from engine.session import Session
from server.app import Server
from server.config import Config
from server.protocol import Connection
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
    assert p.must_hold  # journaled, not yet durable: replies wait
    assert p.log.end_offset == start  # nothing framed before the commit
    srv.loop.turn()
    assert not p.must_hold
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


class _Transport:
    """Records each write with the log's written and durable offsets at that moment."""

    def __init__(self, lg):
        self.lg = lg
        self.sent = []

    def write(self, data):
        self.sent.append((data, self.lg.written_offset, self.lg.durable_offset))

    def get_extra_info(self, name, default=None):
        return default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def close(self):
        pass


def _connect(srv):
    conn = Connection(srv)
    t = _Transport(srv.persistence.log)
    conn.connection_made(t)
    return t, conn


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_replies_wait_for_the_turns_log_write_under_every_policy(tmp_path, fsync):
    srv = _server(tmp_path, fsync)
    lg = srv.persistence.log
    writer_t, writer = _connect(srv)
    reader_t, reader = _connect(srv)
    writer.data_received(b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n")
    reader.data_received(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n")  # reads the unwritten SET
    assert writer_t.sent == reader_t.sent == []  # nothing acknowledged before the write
    srv.loop.turn()
    end = lg.end_offset

    def safe(sent):  # each reply with how far the log was safe when it left
        return [(data, durable if fsync == "always" else written) for data, written, durable in sent]

    assert safe(writer_t.sent) == [(b"+OK\r\n", end)]
    assert safe(reader_t.sent) == [(b"$1\r\n1\r\n", end)]
    if fsync != "always":
        assert lg.durable_offset < end  # the write did not wait for an fsync
    reader.data_received(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n")  # nothing unwritten now
    assert reader_t.sent[-1][0] == b"$1\r\n1\r\n"
    srv.persistence.close(save=False)
