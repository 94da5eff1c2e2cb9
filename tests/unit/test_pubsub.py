"""Pub/sub state and delivery, driven through ``Connection`` with mock transports (no socket).

What the wire shows is compared with a real redis-server in
tests/integration/test_pubsub.py; here are the invariants behind it: a
client's ``pubsub`` is set exactly while it holds a subscription, a channel
exists only while someone listens on it, nobody listening costs no encoding,
a message to the client whose command runs follows that command's reply, and
a subscriber whose output backs up past its limits is aborted.
"""

from __future__ import annotations

import hiredis
import pytest

from server.app import Server
from server.config import Config
from server.protocol import Connection
from server.pubsub import CHANNEL, PATTERN, SHARD
from tests.support import encode


class _Loop:
    """call_soon and call_later recorded; ``fire()`` runs the timers as if their time had come."""

    def __init__(self):
        self.ready = []
        self.timers = []

    def call_soon(self, fn, *args):
        self.ready.append((fn, args))

    def turn(self):
        """The end of the loop's turn: what was scheduled for it runs."""
        while self.ready:
            fn, args = self.ready.pop(0)
            fn(*args)

    def call_later(self, delay, fn, *args):
        timer = _Timer(delay, fn, args)
        self.timers.append(timer)
        return timer

    def fire(self):
        timers, self.timers = self.timers, []
        for t in timers:
            if not t.cancelled:
                t.fn(*t.args)


class _Timer:
    def __init__(self, delay, fn, args):
        self.delay, self.fn, self.args, self.cancelled = delay, fn, args, False

    def cancel(self):
        self.cancelled = True


class _Transport:
    """Collects writes; ``unsent`` is what it claims not to have sent yet."""

    def __init__(self):
        self.sent = bytearray()
        self.writes = 0
        self.unsent = 0
        self.aborted = False

    def write(self, data):
        self.sent += data
        self.writes += 1

    def get_write_buffer_size(self):
        return self.unsent

    def get_extra_info(self, name, default=None):
        return default

    def set_write_buffer_limits(self, high=None, low=None):
        pass

    def close(self):
        pass

    def abort(self):
        self.aborted = True

    def replies(self) -> list:
        r = hiredis.Reader()
        r.feed(bytes(self.sent))
        self.sent.clear()
        out = []
        while (x := r.gets()) is not False:
            out.append(x)
        return out


@pytest.fixture
def srv(tmp_path):
    cfg = Config()
    cfg.set("dir", str(tmp_path))
    cfg.set("appendonly", "no")
    s = Server(cfg)
    s.loop = _Loop()
    s.persistence.load()
    yield s
    s.persistence.close(save=False)


def _connect(srv):
    conn = Connection(srv)
    t = _Transport()
    conn.connection_made(t)
    return conn, t


def _send(conn, *commands):
    conn.data_received(b"".join(encode(c) for c in commands))


# --- state --------------------------------------------------------------------------

def test_pubsub_is_set_exactly_while_the_client_holds_a_subscription(srv):
    conn, _ = _connect(srv)
    c = conn.client
    assert c.pubsub is None and not c.gated
    _send(conn, ["SUBSCRIBE", "a"], ["PSUBSCRIBE", "p*"], ["SSUBSCRIBE", "s"])
    assert c.pubsub is not None and c.gated
    _send(conn, ["UNSUBSCRIBE"], ["PUNSUBSCRIBE", "p*"])
    assert c.pubsub is not None  # the shard channel is left
    _send(conn, ["SUNSUBSCRIBE", "s"])
    assert c.pubsub is None and not c.gated


def test_a_name_exists_only_while_someone_listens_on_it(srv):
    a, _ = _connect(srv)
    b, _ = _connect(srv)
    _send(a, ["SUBSCRIBE", "x", "y"], ["PSUBSCRIBE", "p*"])
    _send(b, ["SUBSCRIBE", "x"])
    ps = srv.pubsub
    assert set(ps.channels) == {b"x", b"y"} and set(ps.patterns) == set(ps.matchers) == {b"p*"}
    _send(a, ["UNSUBSCRIBE", "x", "y"], ["PUNSUBSCRIBE"])
    assert set(ps.channels) == {b"x"} and not ps.patterns and not ps.matchers
    b.connection_lost(None)
    assert not ps.channels


def test_reset_and_disconnect_leave_everything_silently(srv):
    conn, t = _connect(srv)
    _send(conn, ["SUBSCRIBE", "a"], ["PSUBSCRIBE", "a*"], ["SSUBSCRIBE", "a"])
    t.replies()
    _send(conn, ["RESET"])
    assert t.replies() == [b"RESET"]
    assert conn.client.pubsub is None
    assert not (srv.pubsub.channels or srv.pubsub.patterns or srv.pubsub.shard)


def test_subscribing_twice_keeps_one_subscription(srv):
    conn, t = _connect(srv)
    _send(conn, ["SUBSCRIBE", "a", "a"], ["SUBSCRIBE", "a"])
    assert t.replies() == [[b"subscribe", b"a", 1]] * 3
    assert len(srv.pubsub.channels[b"a"]) == 1


# --- delivery -----------------------------------------------------------------------

class _Unencodable(bytes):
    def __len__(self):
        raise AssertionError("the message was encoded")


def test_publishing_where_nobody_listens_encodes_nothing(srv):
    a, _ = _connect(srv)
    _send(a, ["SUBSCRIBE", *[f"ch{i}" for i in range(1000)]])
    assert srv.pubsub.publish(b"nobody", _Unencodable(b"m")) == 0


def test_patterns_are_matched_only_while_some_exist(srv):
    a, t = _connect(srv)
    _send(a, ["PSUBSCRIBE", "news.*"])
    seen = []
    match = srv.pubsub.matchers[b"news.*"]
    srv.pubsub.matchers[b"news.*"] = lambda name: seen.append(name) or match(name)
    assert srv.pubsub.publish(b"sport", b"m") == 0
    assert srv.pubsub.publish(b"news.x", b"m") == 1
    assert seen == [b"sport", b"news.x"]
    srv.loop.turn()
    assert t.replies()[1:] == [[b"pmessage", b"news.*", b"news.x", b"m"]]


def test_one_publish_reaches_channel_and_pattern_subscribers_in_each_protocol(srv):
    two, t2 = _connect(srv)
    three, t3 = _connect(srv)
    _send(three, ["HELLO", "3"])
    t3.replies()
    for conn in (two, three):
        _send(conn, ["SUBSCRIBE", "n.1"], ["PSUBSCRIBE", "n.*"])
    t2.sent.clear()
    t3.sent.clear()
    assert srv.pubsub.publish(b"n.1", b"hi") == 4
    srv.loop.turn()
    message = b"$7\r\nmessage\r\n$3\r\nn.1\r\n$2\r\nhi\r\n"
    pmessage = b"$8\r\npmessage\r\n$3\r\nn.*\r\n$3\r\nn.1\r\n$2\r\nhi\r\n"
    assert bytes(t2.sent) == b"*3\r\n" + message + b"*4\r\n" + pmessage
    assert bytes(t3.sent) == b">3\r\n" + message + b">4\r\n" + pmessage


def test_shard_messages_reach_only_shard_subscribers(srv):
    a, t = _connect(srv)
    _send(a, ["SUBSCRIBE", "s"], ["SSUBSCRIBE", "s"])
    t.replies()
    assert srv.pubsub.spublish(b"s", b"m") == 1
    assert srv.pubsub.spublish(b"other", b"m") == 0
    srv.loop.turn()
    assert t.replies() == [[b"smessage", b"s", b"m"]]


def test_a_message_to_the_running_client_follows_its_reply(srv):
    # Redis 7.2: a RESP3 client publishing to itself gets the reply, then the message.
    conn, t = _connect(srv)
    _send(conn, ["HELLO", "3"], ["SUBSCRIBE", "a"])
    t.sent.clear()
    _send(conn, ["PUBLISH", "a", "m"], ["PING"])
    assert bytes(t.sent) == b":1\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n+PONG\r\n"
    assert srv.pubsub.later == []


def test_the_messages_of_one_turn_leave_in_one_write(srv):
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    writes = t.writes
    for i in range(100):
        srv.pubsub.publish(b"a", b"%d" % i)
    assert t.writes == writes
    srv.loop.turn()
    assert t.writes == writes + 1
    assert t.replies()[1:] == [[b"message", b"a", b"%d" % i] for i in range(100)]


def test_a_reply_never_overtakes_a_message_pushed_before_it(srv):
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    t.replies()
    srv.pubsub.publish(b"a", b"first")
    _send(sub, ["PING"])  # in the same turn, before the pushed message was written
    srv.loop.turn()
    assert t.replies() == [[b"message", b"a", b"first"], [b"pong", b""]]


def test_messages_wait_behind_replies_held_for_the_log(srv):
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    t.sent.clear()
    sub.holding = True
    sub.held.append(b"+HELD\r\n")
    srv.pubsub.publish(b"a", b"m")
    srv.loop.turn()
    assert bytes(t.sent) == b""
    sub.release()
    assert t.replies() == [b"HELD", [b"message", b"a", b"m"]]


def test_confirmations_arrive_under_client_reply_off(srv):
    conn, t = _connect(srv)
    _send(conn, ["CLIENT", "REPLY", "OFF"], ["SUBSCRIBE", "a"], ["PING"])
    assert t.replies() == [[b"subscribe", b"a", 1]]


# --- slow subscribers ---------------------------------------------------------------

def _limits(srv, text):
    srv.config.set_many([("client-output-buffer-limit", text)])


def test_a_subscriber_past_the_hard_limit_is_aborted(srv):
    _limits(srv, "pubsub 1000 0 0")
    slow, ts = _connect(srv)
    fast, tf = _connect(srv)
    _send(slow, ["SUBSCRIBE", "a"])
    _send(fast, ["SUBSCRIBE", "a"])
    ts.unsent = 999
    srv.pubsub.publish(b"a", b"x" * 200)
    assert not ts.aborted
    ts.unsent = 1000
    srv.pubsub.publish(b"a", b"x" * 200)
    assert ts.aborted and slow.closed and not tf.aborted
    before = len(ts.sent)
    assert srv.pubsub.publish(b"a", b"y") == 2  # counted until its connection is gone
    assert len(ts.sent) == before  # nothing more is queued for it
    slow.connection_lost(None)
    assert srv.pubsub.publish(b"a", b"y") == 1


def test_held_replies_count_toward_the_limit(srv):
    _limits(srv, "pubsub 1000 0 0")
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    sub.holding = True
    srv.pubsub.publish(b"a", b"x" * 1000)
    assert t.aborted


def test_a_subscriber_above_the_soft_limit_for_the_soft_seconds_is_aborted(srv):
    _limits(srv, "pubsub 0 500 2")
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    t.unsent = 600
    srv.pubsub.publish(b"a", b"x" * 100)
    s = sub.client.pubsub
    assert s.soft_since is not None and not t.aborted
    [timer] = srv.loop.timers
    assert 2 < timer.delay < 2.1
    s.soft_since -= 2.5  # the soft seconds have passed, with no more traffic
    srv.loop.fire()
    assert t.aborted


def test_a_subscriber_that_drains_below_the_soft_limit_is_forgiven(srv):
    _limits(srv, "pubsub 0 500 2")
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    t.unsent = 600
    srv.pubsub.publish(b"a", b"x" * 100)
    s = sub.client.pubsub
    t.unsent = 0
    srv.pubsub.publish(b"a", b"x" * 100)
    assert s.soft_since is None and s.timer is None
    srv.loop.fire()
    assert not t.aborted


def test_no_limits_means_no_checks(srv):
    _limits(srv, "pubsub 0 0 0")
    sub, t = _connect(srv)
    _send(sub, ["SUBSCRIBE", "a"])
    t.unsent = 1 << 40
    srv.pubsub.publish(b"a", b"x" * 100_000)
    assert not t.aborted and sub.client.pubsub.unchecked > 0


def test_config_set_changes_the_limits_live(srv):
    ps = srv.pubsub
    assert (ps.hard, ps.soft, ps.soft_seconds) == (32 << 20, 8 << 20, 60)
    _limits(srv, "pubsub 4mb 1mb 5")
    assert (ps.hard, ps.soft, ps.soft_seconds) == (4 << 20, 1 << 20, 5)
    assert ps.check_bytes == 64 * 1024
    _limits(srv, "pubsub 800 0 0")
    assert ps.check_bytes == 100


# --- introspection ------------------------------------------------------------------

def test_names_and_counts(srv):
    a, _ = _connect(srv)
    b, _ = _connect(srv)
    _send(a, ["SUBSCRIBE", "n.a", "n.b", "x"], ["SSUBSCRIBE", "s"], ["PSUBSCRIBE", "p", "q"])
    _send(b, ["SUBSCRIBE", "n.a"], ["PSUBSCRIBE", "p"])
    ps = srv.pubsub
    assert ps.names(CHANNEL) == [b"n.a", b"n.b", b"x"]
    assert ps.names(CHANNEL, b"n.*") == [b"n.a", b"n.b"]
    assert ps.names(SHARD) == [b"s"]
    assert ps.numsub(CHANNEL, [b"n.a", b"zz", b"n.a"]) == [b"n.a", 2, b"zz", 0, b"n.a", 2]
    assert len(ps.patterns) == 2 and len(ps.spaces[PATTERN][b"p"]) == 2
    assert a.client.pubsub.count(CHANNEL) == 5 and a.client.pubsub.count(SHARD) == 1
