"""Pub/sub over real sockets, byte for byte against a real redis-server.

Each scenario opens the same connections to Keel and to redis-server and
compares what every connection received, raw bytes included, so that RESP2
arrays and RESP3 push frames (``>``) are told apart. ``exchange`` sends
commands followed by a PING and reads up to the PING's reply: messages
published before it are then all in (the server wrote them before it read
the PING), and nothing is left in flight for the next step.

Where Redis answers in its dictionaries' order (UNSUBSCRIBE without
arguments, PUBSUB CHANNELS), names are compared as sets and counts in
order. Where Redis 7.2 differs from the 7.0 reference (a message to the
client whose command is running comes after that command's reply), Keel is
checked against 7.2's documented behaviour alone.
"""

from __future__ import annotations

import socket
import time

import hiredis
import pytest

from tests.support import Err, RespClient, encode

PONG2 = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"  # PING's reply to a RESP2 subscriber
PONG = b"+PONG\r\n"


def exchange(c: RespClient, *commands) -> bytes:
    """Send ``commands`` and a PING; every byte received up to the PING's reply."""
    c.send_raw(b"".join(encode(cmd) for cmd in commands) + encode(["PING"]))
    buf = b""
    c.sock.settimeout(5.0)
    try:
        while True:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed; got {buf[-200:]!r}")
            buf += chunk
            if buf.endswith(PONG) or buf.endswith(PONG2):
                # Make sure it is PING's reply, not a message that happens to end so.
                r = hiredis.Reader()
                r.feed(buf)
                replies = []
                while (x := r.gets()) is not False:
                    replies.append(x)
                if not r.has_data() and replies and replies[-1] in (b"PONG", [b"pong", b""]):
                    return buf
    finally:
        c.sock.settimeout(10.0)


def parse(raw: bytes) -> list:
    r = hiredis.Reader(replyError=Err)
    r.feed(raw)
    out = []
    while (x := r.gets()) is not False:
        out.append(x)
    return out


@pytest.fixture
def connect(keel, redis_ref):
    """Per test: ``connect(proto)`` opens a connection to each server: (keel, redis)."""
    opened = []

    def open_pair(proto: int = 2):
        pair = []
        for proc in (keel, redis_ref):
            c = proc.client()
            if proto == 3:
                c.call("HELLO", "3")
            opened.append(c)
            pair.append(c)
        return pair

    yield open_pair
    for c in opened:
        c.close()


def same(pair, *commands) -> bytes:
    """``exchange`` on both connections of ``pair``; the bytes must be equal."""
    k, r = (exchange(c, *commands) for c in pair)
    assert k == r, f"{commands!r}:\nkeel  {k!r}\nredis {r!r}"
    return k


# --- confirmations ---------------------------------------------------------------

@pytest.mark.parametrize("proto", [2, 3])
def test_confirmations_match_redis(connect, proto):
    pair = connect(proto)
    same(pair, ["UNSUBSCRIBE"], ["PUNSUBSCRIBE"], ["SUNSUBSCRIBE"])  # nothing to leave: nil, 0
    same(pair, ["UNSUBSCRIBE", "a", "b"], ["PUNSUBSCRIBE", "a*"], ["SUNSUBSCRIBE", "x"])
    same(pair, ["SUBSCRIBE", "a", "b", "a"], ["PSUBSCRIBE", "a*", "b?"], ["SSUBSCRIBE", "s1", "s2"])
    same(pair, ["UNSUBSCRIBE", "zz", "a"], ["PUNSUBSCRIBE", "b?"], ["SUNSUBSCRIBE", "s2", "s2"])
    same(pair, ["SUBSCRIBE", ""], ["PSUBSCRIBE", ""], ["UNSUBSCRIBE", ""])
    same(pair, ["UNSUBSCRIBE", "b"], ["PUNSUBSCRIBE", "a*"], ["PUNSUBSCRIBE", ""], ["SUNSUBSCRIBE", "s1"])
    same(pair, ["UNSUBSCRIBE"], ["SUNSUBSCRIBE"])  # subscribed to nothing again


def _leave_all(c, command):
    """The names UNSUBSCRIBE-all confirmed (as a set) and its counts (in order)."""
    frames = parse(exchange(c, [command]))[:-1]
    assert all(f[0] == command.lower().encode() for f in frames)
    return {f[1] for f in frames}, [f[2] for f in frames]


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("command,subscribe", [("UNSUBSCRIBE", "SUBSCRIBE"), ("PUNSUBSCRIBE", "PSUBSCRIBE"),
                                               ("SUNSUBSCRIBE", "SSUBSCRIBE")])
def test_leaving_everything_confirms_each_name(connect, proto, command, subscribe):
    pair = connect(proto)
    same(pair, [subscribe, "c1", "c2", "c3"], ["SUBSCRIBE" if subscribe != "SUBSCRIBE" else "PSUBSCRIBE", "o"])
    k, r = (_leave_all(c, command) for c in pair)
    assert k == r
    assert k[0] == {b"c1", b"c2", b"c3"}
    same(pair, [command])  # now nil, with what is left


# --- messages ----------------------------------------------------------------------

@pytest.mark.parametrize("proto", [2, 3])
def test_messages_match_redis(connect, proto):
    sub = connect(proto)
    pub = connect()
    same(sub, ["SUBSCRIBE", "news.a", "other"], ["PSUBSCRIBE", "news.*"], ["SSUBSCRIBE", "news.a"])
    for args in (("PUBLISH", "news.a", "hello"), ("PUBLISH", "news.b", ""), ("PUBLISH", "other", "x" * 300),
                 ("PUBLISH", "nobody", "m"), ("SPUBLISH", "news.a", "shard"), ("SPUBLISH", "nobody", "m")):
        k, r = pub[0].call(*args), pub[1].call(*args)
        assert k == r, args
    same(sub)


def test_publish_counts_every_receiver_once_per_match(connect):
    a, b = connect(), connect()
    pub = connect()
    same(a, ["SUBSCRIBE", "n.1"], ["PSUBSCRIBE", "n.*", "*"])
    same(b, ["PSUBSCRIBE", "n.?"], ["SSUBSCRIBE", "n.1"])
    for channel in ("n.1", "n.22", "x", ""):
        k, r = pub[0].call("PUBLISH", channel, "m"), pub[1].call("PUBLISH", channel, "m")
        assert k == r, channel
    assert [c.call("PUBLISH", "n.1", "m") for c in pub] == [4, 4]
    for pair in (a, b):
        k, r = (sorted(parse(exchange(c)), key=repr) for c in pair)
        assert k == r


def test_a_binary_channel_and_message_arrive_intact(connect):
    sub, pub = connect(), connect()
    channel, message = b"\x00\xff\r\n*", b"\r\n$-1\r\n\x00"
    same(sub, ["SUBSCRIBE", channel], ["PSUBSCRIBE", b"\x00*"])
    assert [pub[0].call("PUBLISH", channel, message), pub[1].call("PUBLISH", channel, message)] == [2, 2]
    same(sub)


# --- what a subscriber may send ----------------------------------------------------

def test_a_resp2_subscriber_is_refused_other_commands_and_stays_connected(connect):
    pair = connect()
    same(pair, ["SUBSCRIBE", "a"])
    raw = same(pair, ["GET", "k"], ["CLIENT", "INFO"], ["HELLO", "3"], ["MULTI"], ["PUBLISH", "a", "m"])
    assert parse(raw)[0] == Err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                                "RESET are allowed in this context")
    same(pair, ["PING", "x"], ["NOSUCH"], ["SUBSCRIBE"], ["CLIENT", "NOSUCH"])
    same(pair, ["UNSUBSCRIBE"], ["GET", "k"])  # subscribed to nothing: back to normal


def test_a_resp2_subscriber_with_only_shard_channels_is_still_in_subscribed_mode(connect):
    pair = connect()
    same(pair, ["SSUBSCRIBE", "s"], ["UNSUBSCRIBE"], ["GET", "k"], ["SUNSUBSCRIBE"], ["GET", "k"])


def test_a_resp3_subscriber_may_send_anything(connect):
    pair = connect(3)
    same(pair, ["SUBSCRIBE", "a"], ["SET", "k", "v"], ["GET", "k"], ["PING"], ["PING", "x"], ["DEL", "k"])
    for c in pair:  # and may go back to RESP2, still subscribed
        assert parse(exchange(c, ["HELLO", "2"]))[-1] == [b"pong", b""]
    same(pair, ["GET", "k"], ["PING"], ["UNSUBSCRIBE"])


def test_quit_while_subscribed(connect):
    for c in connect():
        c.call("SUBSCRIBE", "a")
        c.send_raw(encode(["QUIT"]))
        assert c.recv_all() == b"+OK\r\n"


def test_reset_leaves_every_subscription(connect):
    pair = connect()
    admin = connect()
    same(pair, ["SUBSCRIBE", "a"], ["PSUBSCRIBE", "a*"], ["SSUBSCRIBE", "a"])
    same(pair, ["RESET"], ["GET", "k"])
    same(admin, ["PUBSUB", "NUMSUB", "a"], ["PUBSUB", "NUMPAT"], ["PUBSUB", "SHARDNUMSUB", "a"],
         ["PUBLISH", "a", "m"])


def test_a_disconnecting_subscriber_leaves_everything(connect):
    pair = connect()
    admin = connect()
    same(pair, ["SUBSCRIBE", "gone"], ["PSUBSCRIBE", "gone*"], ["SSUBSCRIBE", "gone"])
    for c in pair:
        c.close()
    deadline = time.time() + 5
    while admin[0].call("PUBSUB", "NUMSUB", "gone")[1] or admin[0].call("PUBSUB", "NUMPAT"):
        assert time.time() < deadline
        time.sleep(0.01)
    same(admin, ["PUBSUB", "SHARDNUMSUB", "gone"], ["PUBLISH", "gone", "m"])


def test_client_reply_off_still_delivers_confirmations_and_messages(connect):
    sub, pub = connect(), connect()
    got = [b"", b""]
    for i, c in enumerate(sub):  # no PING barrier: its reply would not come
        c.send_raw(encode(["CLIENT", "REPLY", "OFF"]) + encode(["SUBSCRIBE", "a"]) + encode(["PING"]))
        got[i] += c.recv_all(timeout=0.3)
    assert [pub[0].call("PUBLISH", "a", "m"), pub[1].call("PUBLISH", "a", "m")] == [1, 1]
    for i, c in enumerate(sub):
        c.send_raw(encode(["UNSUBSCRIBE", "a"]))
        got[i] += c.recv_all(timeout=0.3)
    assert got[0] == got[1]
    assert parse(got[0]) == [[b"subscribe", b"a", 1], [b"message", b"a", b"m"], [b"unsubscribe", b"a", 0]]


@pytest.mark.parametrize("proto", [2, 3])
def test_subscribe_inside_multi_replies_inside_exec(connect, proto):
    pair = connect(proto)
    same(pair, ["MULTI"], ["SUBSCRIBE", "a"], ["PING"], ["EXEC"])
    same(pair, ["UNSUBSCRIBE"])


# --- Redis 7.2's order: a message to the running client follows the command's reply ----

def test_a_resp3_client_publishing_to_itself_gets_the_reply_first(k):
    k.call("HELLO", "3")
    k.call("SUBSCRIBE", "me")
    raw = exchange(k, ["PUBLISH", "me", "m"])
    assert raw == b":1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$1\r\nm\r\n" + PONG


def test_a_message_to_itself_inside_exec_follows_the_exec_reply(k):
    k.call("HELLO", "3")
    k.call("SUBSCRIBE", "me")
    raw = exchange(k, ["MULTI"], ["PING"], ["PUBLISH", "me", "m"], ["UNSUBSCRIBE"], ["EXEC"])
    assert raw == (b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
                   b"*3\r\n+PONG\r\n:1\r\n>3\r\n$11\r\nunsubscribe\r\n$2\r\nme\r\n:0\r\n"
                   b">3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$1\r\nm\r\n" + PONG)


# --- PUBSUB --------------------------------------------------------------------------

def test_pubsub_introspection_matches_redis(connect):
    a, b = connect(), connect(3)
    admin = connect()
    same(a, ["SUBSCRIBE", "news.a", "news.b", "x"], ["PSUBSCRIBE", "news.*", "n*"])
    same(b, ["SUBSCRIBE", "news.a"], ["PSUBSCRIBE", "n*"], ["SSUBSCRIBE", "s1", "s2"])
    k, r = admin
    for args in (("CHANNELS",), ("CHANNELS", "news.*"), ("CHANNELS", "[xy]"), ("CHANNELS", "nomatch"),
                 ("SHARDCHANNELS",), ("SHARDCHANNELS", "*1")):
        assert sorted(k.call("PUBSUB", *args)) == sorted(r.call("PUBSUB", *args)), args
    same(admin, ["PUBSUB", "NUMSUB", "news.a", "zz", "news.a"], ["PUBSUB", "NUMSUB"], ["PUBSUB", "NUMPAT"],
         ["PUBSUB", "SHARDNUMSUB", "s1", "news.a"], ["PUBSUB", "SHARDNUMSUB"])


@pytest.mark.parametrize("args", [
    ("SUBSCRIBE",), ("PSUBSCRIBE",), ("SSUBSCRIBE",), ("PUBLISH",), ("PUBLISH", "a"), ("PUBLISH", "a", "b", "c"),
    ("SPUBLISH", "a"), ("PUBSUB",), ("PUBSUB", "nosuch"), ("PUBSUB", "CHANNELS", "a", "b"),
    ("PUBSUB", "shardchannels", "a", "b"), ("PUBSUB", "NUMPAT", "x"), ("PUBSUB", "HELP", "x"),
])
def test_bad_input_gets_redis_words_and_keeps_the_connection(pair, args):
    pair.check(*args)
    pair.check("PING")


def test_pubsub_in_resp3(connect):
    pair = connect(3)
    same(pair, ["PUBSUB", "NUMSUB", "a"], ["PUBSUB", "CHANNELS", "zzz*"], ["PUBSUB", "NUMPAT"])


# --- the command table ---------------------------------------------------------------

@pytest.mark.parametrize("args", [("SPUBLISH", "ch", "m"), ("SSUBSCRIBE", "a", "b"), ("SUNSUBSCRIBE", "a"),
                                  ("PUBLISH", "ch", "m"), ("SUBSCRIBE", "a")])
def test_channels_are_not_keys_to_command_getkeys(pair, args):
    pair.check("COMMAND", "GETKEYS", *args)


@pytest.mark.parametrize("name", ["ssubscribe", "sunsubscribe", "spublish"])
def test_shard_commands_key_specs_say_not_key(pair, name):
    k, r = pair.both("COMMAND", "INFO", name)
    assert k[0][8] == r[0][8]


# --- clients and INFO ------------------------------------------------------------------

def _fields(line: bytes) -> dict:
    return dict(part.split(b"=", 1) for part in line.split())


def test_client_list_shows_the_subscriptions_and_flag_p(connect):
    pair = connect()
    ids = [c.call("CLIENT", "ID") for c in pair]
    same(pair, ["SUBSCRIBE", "a", "b"], ["PSUBSCRIBE", "c*"], ["SSUBSCRIBE", "d", "e", "f"])
    admin = connect()

    def line(a, client_id):
        [f] = [f for f in map(_fields, a.call("CLIENT", "LIST").splitlines()) if f[b"id"] == b"%d" % client_id]
        return f[b"flags"], f[b"sub"], f[b"psub"], f[b"ssub"]

    for a, client_id in zip(admin, ids):
        assert line(a, client_id) == (b"P", b"2", b"1", b"3")
        assert client_id in [int(_fields(x)[b"id"]) for x in a.call("CLIENT", "LIST", "TYPE", "pubsub").splitlines()]
    for c in pair:
        exchange(c, ["UNSUBSCRIBE"], ["PUNSUBSCRIBE"], ["SUNSUBSCRIBE"])
    for a, client_id in zip(admin, ids):
        assert line(a, client_id) == (b"N", b"0", b"0", b"0")


def test_client_kill_type_pubsub_kills_only_subscribers(connect):
    subs = connect(3)
    plain = connect()
    admin = connect()
    same(subs, ["PSUBSCRIBE", "*"])
    for a, s, p in zip(admin, subs, plain):
        assert a.call("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        assert s.recv_all(timeout=2.0) == b""  # closed
        assert p.call("PING") == b"PONG"


def _stats(c) -> dict:
    text = c.call("INFO", "stats").decode()
    return {k: int(v) for k, v in (line.split(":", 1) for line in text.split("\r\n") if ":" in line)
            if k.startswith("pubsub")}


def test_info_stats_counts_channels_patterns_and_shard_channels(connect):
    admin = connect()
    before = [_stats(c) for c in admin]
    assert set(before[0]) == set(before[1]) == {"pubsub_channels", "pubsub_patterns", "pubsubshard_channels"}
    a, b = connect(), connect()
    same(a, ["SUBSCRIBE", "i1", "i2"], ["PSUBSCRIBE", "i*"], ["SSUBSCRIBE", "i1"])
    same(b, ["SUBSCRIBE", "i2", "i3"], ["PSUBSCRIBE", "i*", "j*"])
    after = [_stats(c) for c in admin]
    for x, y in zip(before, after):
        assert {f: y[f] - x[f] for f in x} == {"pubsub_channels": 3, "pubsub_patterns": 2, "pubsubshard_channels": 1}


# --- client-output-buffer-limit, the directive ----------------------------------------------

@pytest.mark.parametrize("value", [
    "pubsub 1mb 512kb 10", "replica 1 2 3", "normal 1 2 3 PUBSUB 1k 2K 3", "", "pubsub 1 2", "foo 1 2 3",
    "pubsub x 2 3", "pubsub 1 2 -3", "pubsub 1 2 x", "pubsub -1 2 3", "pubsub 1gb 2 3.5",
])
def test_config_set_client_output_buffer_limit_as_redis(pair, value):
    default = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    try:
        pair.check("CONFIG", "SET", "client-output-buffer-limit", value)
        pair.check("CONFIG", "GET", "client-output-buffer-limit")
    finally:
        pair.check("CONFIG", "SET", "client-output-buffer-limit", default)


# --- timeout ------------------------------------------------------------------------------

def test_subscribers_never_time_out(keel, k):
    sub = keel.client()
    idle = keel.client()
    try:
        sub.call("SUBSCRIBE", "a")
        idle.call("PING")
        k.call("CONFIG", "SET", "timeout", "1")
        for _ in range(8):  # the admin connection stays busy; the other two idle
            time.sleep(0.3)
            k.call("PING")
        assert exchange(sub) == PONG2
        idle.sock.settimeout(1.0)
        try:
            assert idle.sock.recv(100) == b""  # closed by the server
        except (ConnectionResetError, socket.timeout):
            pytest.fail("the idle client was not closed")
    finally:
        k.call("CONFIG", "SET", "timeout", "0")
        sub.close()
        idle.close()
