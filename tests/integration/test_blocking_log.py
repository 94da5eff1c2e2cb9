"""What serving a blocked client journals, and when its reply may leave.

In-process: a real ``Server`` with its write-ahead log in a temporary
directory, connections on recording transports, and a loop whose turns the
test runs (``_Loop``), so the test sees exactly which records the log holds
and how far the log was fsynced when each reply was written. Engine level:
the blocking handlers' answers (``WouldBlock``, the non-blocking fallback),
Redis 7.2's timeout rules, and a replay of the log rebuilding the state.
"""

from __future__ import annotations

import hiredis
import pytest

from engine.commands.blocking import WAIT, WouldBlock, parse_timeout, without_blocking
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.reply import NULL_ARRAY
from engine.session import Session
from server.app import Server
from server.config import Config
from server.protocol import Connection
from tests.support import encode, run, take_effects


class _Handle:
    def __init__(self, loop, when, fn, args):
        self.loop, self.when, self.fn, self.args = loop, when, fn, args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class _Loop:
    """call_soon callbacks run by ``turn()``; call_later ones by ``advance()``."""

    def __init__(self):
        self.ready = []
        self.timers = []

    def call_soon(self, fn, *args):
        self.ready.append((fn, args))

    def call_later(self, delay, fn, *args):
        h = _Handle(self, delay, fn, args)
        self.timers.append(h)
        return h

    def turn(self):
        while self.ready:
            fn, args = self.ready.pop(0)
            fn(*args)

    def fire_timers(self):
        timers, self.timers = self.timers, []
        for h in timers:
            if not h.cancelled:
                h.fn(*h.args)
        self.turn()


class _Transport:
    """Records each write with the log's durable offset at that moment."""

    def __init__(self, srv):
        self.srv = srv
        self.sent = []

    def write(self, data):
        lg = self.srv.persistence.log
        self.sent.append((data, lg.durable_offset if lg is not None else None))

    def get_extra_info(self, name, default=None):
        return default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def close(self):
        pass


def _server(tmp_path, fsync="always", appendonly=True):
    cfg = Config()
    cfg.set("dir", str(tmp_path))
    cfg.set("appendfsync", fsync)
    cfg.set("appendonly", "yes" if appendonly else "no")
    srv = Server(cfg)
    srv.loop = _Loop()
    srv.persistence.load()
    return srv


def _connect(srv):
    conn = Connection(srv)
    t = _Transport(srv)
    conn.connection_made(t)
    return t, conn


def _send(conn, *commands):
    conn.data_received(b"".join(encode(c) for c in commands))


def _commands(payload: bytes) -> list:
    r = hiredis.Reader()
    r.feed(payload)
    out = []
    while (cmd := r.gets()) is not False:
        out.append(cmd)
    return out


def _journal(srv, start: int) -> list:
    return [cmd for _, _, payload in srv.persistence.log.read_from(start) for cmd in _commands(payload)]


# --- the journal -------------------------------------------------------------------

@pytest.mark.parametrize("blocking,pushed,effect", [
    (["BLPOP", "a", "q", "0"], ["RPUSH", "q", "x", "y"], [b"LPOP", b"q"]),
    (["BRPOP", "q", "0"], ["RPUSH", "q", "x", "y"], [b"RPOP", b"q"]),
    (["BLMOVE", "q", "d", "LEFT", "RIGHT", "0"], ["RPUSH", "q", "x", "y"], [b"LMOVE", b"q", b"d", b"LEFT", b"RIGHT"]),
    (["BRPOPLPUSH", "q", "d", "0"], ["RPUSH", "q", "x", "y"], [b"RPOPLPUSH", b"q", b"d"]),
    (["BLMPOP", "0", "2", "a", "q", "RIGHT", "COUNT", "5"], ["RPUSH", "q", "x", "y"], [b"RPOP", b"q", b"2"]),
    (["BZPOPMIN", "q", "0"], ["ZADD", "q", "1", "x", "2", "y"], [b"ZPOPMIN", b"q", b"1"]),
    (["BZPOPMAX", "q", "0"], ["ZADD", "q", "1", "x", "2", "y"], [b"ZPOPMAX", b"q", b"1"]),
    (["BZMPOP", "0", "1", "q", "MAX", "COUNT", "9"], ["ZADD", "q", "1", "x", "2", "y"], [b"ZPOPMAX", b"q", b"2"]),
])
def test_a_served_client_journals_the_non_blocking_form_after_the_push(tmp_path, blocking, pushed, effect):
    srv = _server(tmp_path)
    start = srv.persistence.log.end_offset
    wt, waiter = _connect(srv)
    pt, pusher = _connect(srv)
    _send(waiter, blocking)
    assert waiter.client.blocked is not None
    srv.loop.turn()
    assert _journal(srv, start) == []  # blocking journals nothing
    _send(pusher, pushed)
    srv.loop.turn()
    assert _journal(srv, start) == [[b"SELECT", b"0"], [p.encode() for p in pushed], effect]
    assert len(wt.sent) == 1 and waiter.client.blocked is None
    srv.persistence.close(save=False)


def test_the_log_replays_to_the_state_the_served_clients_left(tmp_path):
    srv = _server(tmp_path)
    _, a = _connect(srv)
    _, b = _connect(srv)
    _, w = _connect(srv)
    _send(a, ["BLMOVE", "src", "mid", "RIGHT", "LEFT", "0"])
    _send(b, ["BLMPOP", "0", "1", "mid", "LEFT", "COUNT", "3"])
    _send(w, ["RPUSH", "src", "1", "2", "3"], ["SELECT", "2"], ["ZADD", "z", "1", "m"])
    srv.loop.turn()
    state = {k: srv.ks.dbs[0].data[k] for k in srv.ks.dbs[0].data}
    assert set(state) == {b"src"}
    srv.persistence.close(save=False)

    again = _server(tmp_path)  # replays the log: no blocking command in it
    s = Session(again.ks)
    assert run(s, "LRANGE", "src", "0", "-1") == [b"1", b"2"]
    assert set(again.ks.dbs[0].data) == {b"src"}  # mid was filled by BLMOVE and emptied by BLMPOP
    s.select(2)
    assert run(s, "ZRANGE", "z", "0", "-1") == [b"m"]
    again.persistence.close(save=False)


def test_a_served_client_in_another_database_journals_its_select(tmp_path):
    srv = _server(tmp_path)
    start = srv.persistence.log.end_offset
    _, w = _connect(srv)
    _, p = _connect(srv)
    _send(w, ["SELECT", "3"], ["BLPOP", "q", "0"])
    _send(p, ["RPUSH", "q", "in-db-0"], ["SELECT", "3"], ["RPUSH", "q", "in-db-3"])
    srv.loop.turn()
    assert _journal(srv, start) == [
        [b"SELECT", b"0"], [b"RPUSH", b"q", b"in-db-0"],
        [b"SELECT", b"3"], [b"RPUSH", b"q", b"in-db-3"], [b"LPOP", b"q"]]
    srv.persistence.close(save=False)


# --- held replies ------------------------------------------------------------------

def test_under_always_the_served_reply_waits_for_the_fsync(tmp_path):
    srv = _server(tmp_path, "always")
    lg = srv.persistence.log
    wt, waiter = _connect(srv)
    pt, pusher = _connect(srv)
    _send(waiter, ["BLPOP", "q", "0"])
    srv.loop.turn()
    _send(pusher, ["RPUSH", "q", "x"])
    assert wt.sent == [] and pt.sent == []  # served, but the LPOP is not durable yet
    srv.loop.turn()
    end = lg.end_offset
    assert wt.sent == [(b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n", end)]  # left once fsynced to the end
    assert pt.sent == [(b":1\r\n", end)]
    srv.persistence.close(save=False)


def test_a_timeout_reply_also_waits_for_what_the_log_has_not_fsynced(tmp_path):
    srv = _server(tmp_path, "always")
    wt, waiter = _connect(srv)
    _, writer = _connect(srv)
    _send(waiter, ["BLPOP", "q", "0.01"])
    srv.loop.turn()
    import time
    time.sleep(0.02)
    _send(writer, ["SET", "k", "v"])  # journaled, not yet committed
    srv.loop.fire_timers()
    assert wt.sent == [(b"*-1\r\n", srv.persistence.log.end_offset)]
    srv.persistence.close(save=False)


def test_requests_pipelined_behind_a_blocking_command_run_after_its_reply(tmp_path):
    srv = _server(tmp_path, "no", appendonly=False)
    wt, waiter = _connect(srv)
    _, pusher = _connect(srv)
    _send(waiter, ["PING"], ["BLPOP", "q", "0"], ["RPUSH", "q", "mine"], ["LLEN", "q"])
    srv.loop.turn()
    assert [d for d, _ in wt.sent] == [b"+PONG\r\n"]
    waiter.data_received(encode(["ECHO", "later"]))  # read while blocked, run after
    srv.loop.turn()
    assert [d for d, _ in wt.sent] == [b"+PONG\r\n"]
    _send(pusher, ["RPUSH", "q", "theirs"])
    srv.loop.turn()
    assert b"".join(d for d, _ in wt.sent) == (
        b"+PONG\r\n*2\r\n$1\r\nq\r\n$6\r\ntheirs\r\n:1\r\n:1\r\n$5\r\nlater\r\n")
    srv.persistence.close(save=False)


def test_a_request_cut_across_reads_behind_a_blocking_command_waits_whole(tmp_path):
    srv = _server(tmp_path, "no", appendonly=False)
    wt, waiter = _connect(srv)
    _, pusher = _connect(srv)
    ping = encode(["PING", "after"])
    waiter.data_received(encode(["BLPOP", "q", "0"]) + ping[:7])  # hiredis parses BLPOP, keeps a part
    waiter.data_received(ping[7:])
    assert wt.sent == [] and waiter.client.blocked is not None
    _send(pusher, ["RPUSH", "q", "x"])
    srv.loop.turn()
    assert b"".join(d for d, _ in wt.sent) == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n$5\r\nafter\r\n"
    waiter.data_received(encode(["ECHO", "fast again"]))  # back on the hot path
    assert waiter.pending is None and wt.sent[-1][0] == b"$10\r\nfast again\r\n"
    srv.persistence.close(save=False)


def test_disconnected_waiter_is_forgotten_and_its_timer_cancelled(tmp_path):
    srv = _server(tmp_path, "no", appendonly=False)
    _, gone = _connect(srv)
    wt, stays = _connect(srv)
    _, pusher = _connect(srv)
    _send(gone, ["BLPOP", "q", "5"])
    _send(stays, ["BLPOP", "q", "0"])
    assert srv.blocking.blocked == 2 and srv.blocking.timed == 1
    gone.connection_lost(None)
    assert srv.blocking.blocked == 1 and srv.blocking.timed == 0
    assert all(h.cancelled for h in srv.loop.timers)
    _send(pusher, ["RPUSH", "q", "x"])
    assert [d for d, _ in wt.sent] == [b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"]
    assert srv.blocking.blocked == 0 and srv.ks.watchers == []  # nothing left to cost anything
    srv.persistence.close(save=False)


def test_nothing_watches_the_keyspace_while_nobody_is_blocked(tmp_path):
    srv = _server(tmp_path, "no", appendonly=False)
    wt, w = _connect(srv)
    _, admin = _connect(srv)
    assert srv.ks.watchers == []
    _send(w, ["BZPOPMIN", "z", "0"])
    assert len(srv.ks.watchers) == 1
    _send(admin, ["CLIENT", "UNBLOCK", str(w.client.id)])
    assert srv.ks.watchers == [] and [d for d, _ in wt.sent] == [b"*-1\r\n"]
    srv.persistence.close(save=False)


# --- engine level ----------------------------------------------------------------------

def _session():
    return Session(Keyspace())


@pytest.mark.parametrize("command,no_wait", [
    (["BLPOP", "a", "b", "0"], NULL_ARRAY), (["BRPOP", "a", "0"], NULL_ARRAY),
    (["BLMOVE", "a", "b", "LEFT", "LEFT", "0"], None), (["BRPOPLPUSH", "a", "b", "0"], None),
    (["BLMPOP", "0", "1", "a", "LEFT"], NULL_ARRAY), (["BZPOPMIN", "a", "0"], NULL_ARRAY),
    (["BZPOPMAX", "a", "b", "0"], NULL_ARRAY), (["BZMPOP", "0", "2", "a", "b", "MIN"], NULL_ARRAY),
])
def test_nothing_to_take_is_a_would_block_and_without_blocking_is_redis_multi_reply(command, no_wait):
    c = _session()
    r = run(c, *command)
    assert type(r) is WouldBlock and r.deadline == 0 and r.attempt(c) is WAIT
    assert without_blocking(r) is no_wait
    assert take_effects(c) == []


def test_a_would_block_names_its_keys_kind_and_deadline():
    c = _session()
    r = run(c, "BZMPOP", "1.5", "2", "x", "y", "MAX", "COUNT", "3")
    assert (r.keys, r.kind) == ([b"x", b"y"], "zset")
    from engine.keyspace import now_ms
    assert 0 < r.deadline - now_ms() <= 1500
    r = run(c, "BRPOPLPUSH", "s", "d", "0.001")
    assert (r.keys, r.kind) == ([b"s"], "list")


def test_without_blocking_passes_a_real_reply_through():
    c = _session()
    run(c, "RPUSH", "a", "1")
    assert without_blocking(run(c, "BLPOP", "a", "0")) == [b"a", b"1"]


def test_a_rerun_attempt_takes_from_the_first_key_in_the_commands_order():
    # Redis 7.2 reprocesses the whole command when a key is ready.
    c = _session()
    r = run(c, "BLPOP", "first", "second", "0")
    run(c, "RPUSH", "second", "2")
    run(c, "RPUSH", "first", "1")
    take_effects(c)
    assert r.attempt(c) == [b"first", b"1"]
    assert take_effects(c) == [[b"LPOP", b"first"]]


@pytest.mark.parametrize("arg,ms", [
    ("0", 0), ("1", 1000), ("0.1", 100), ("1.5", 1500), ("1e-5", 1), ("1e-400", 1), ("-0.0001", 0), ("-0", 0),
    ("0x10", 16000), ("+2", 2000), ("9.2e15", 9200000000000000000), (".5", 500),
])
def test_timeouts_are_seconds_rounded_up_to_whole_ms(arg, ms):
    assert parse_timeout(arg.encode()) == ms


@pytest.mark.parametrize("arg,error", [
    ("-1", "ERR timeout is negative"), ("-inf", "ERR timeout is negative"), ("-0.5", "ERR timeout is negative"),
    # Redis 7.2 (7.0 said "negative" for these: its cast wrapped around)
    ("inf", "ERR timeout is out of range"), ("9.3e15", "ERR timeout is out of range"),
    ("1e300", "ERR timeout is out of range"),
    ("abc", "ERR timeout is not a float or out of range"), ("nan", "ERR timeout is not a float or out of range"),
    (" 1", "ERR timeout is not a float or out of range"), ("1e99999", "ERR timeout is not a float or out of range"),
])
def test_bad_timeouts(arg, error):
    with pytest.raises(CommandError) as e:
        parse_timeout(arg.encode())
    assert e.value.text == error


def test_a_deadline_that_would_overflow_is_out_of_range():
    c = _session()
    with pytest.raises(CommandError) as e:
        run(c, "BLPOP", "k", "9223372036854775")  # fits in ms, not once now is added
    assert e.value.text == "ERR timeout is out of range"


def test_waiters_that_leave_are_dropped_from_the_queue_and_order_is_kept(tmp_path):
    srv = _server(tmp_path, "no", appendonly=False)
    conns = [_connect(srv) for _ in range(50)]
    _, admin = _connect(srv)
    for _, c in conns:
        _send(c, ["BLPOP", "q", "other", "0"])
    for _, c in conns[5:]:  # 45 leave from the middle and the end
        _send(admin, ["CLIENT", "UNBLOCK", str(c.client.id)])
    late_t, late = _connect(srv)
    _send(late, ["BLPOP", "q", "0"])
    q = srv.blocking.queues[0][b"q"]
    assert q.live == 6 and len(q.waiters) == 6  # the stale entries were dropped when it parked
    assert srv.blocking.queues[0][b"other"].live == 5
    _send(admin, ["RPUSH", "q", *[str(i) for i in range(6)]])
    assert [t.sent[-1][0] for t, _ in conns[:5]] == [b"*2\r\n$1\r\nq\r\n$1\r\n%d\r\n" % i for i in range(5)]
    assert late_t.sent == [(b"*2\r\n$1\r\nq\r\n$1\r\n5\r\n", None)]
    assert srv.blocking.queues[0] == {} and srv.blocking.blocked == 0
    srv.persistence.close(save=False)
