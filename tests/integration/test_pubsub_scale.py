"""Pub/sub at scale: thousands of subscribers on one channel, one client on thousands of names.

The subscribers are raw sockets (one connection each, as many applications
open them); the big subscription lists are compared with redis-server's
replies where Redis's order is fixed (arguments are confirmed in order).
"""

from __future__ import annotations

import socket
import time

import hiredis

from tests.support import encode

SUBSCRIBERS = 2000


def _read_replies(sock: socket.socket, n: int) -> list:
    r = hiredis.Reader()
    out = []
    while len(out) < n:
        while (x := r.gets()) is not False:
            out.append(x)
        if len(out) < n:
            chunk = sock.recv(1 << 20)
            assert chunk, "closed"
            r.feed(chunk)
    return out


def test_thousands_of_subscribers_on_one_channel_each_get_the_message(keel, k):
    socks = []
    try:
        for _ in range(SUBSCRIBERS):
            s = socket.create_connection(("127.0.0.1", keel.port), timeout=10)
            s.sendall(encode(["SUBSCRIBE", "crowd"]))
            socks.append(s)
        for s in socks:
            assert _read_replies(s, 1) == [[b"subscribe", b"crowd", 1]]
        assert k.call("PUBSUB", "NUMSUB", "crowd") == [b"crowd", SUBSCRIBERS]
        assert k.call("PUBLISH", "crowd", "hello all") == SUBSCRIBERS
        assert k.call("PUBLISH", "crowd", "again") == SUBSCRIBERS
        for s in socks:
            assert _read_replies(s, 2) == [[b"message", b"crowd", b"hello all"], [b"message", b"crowd", b"again"]]
    finally:
        for s in socks:
            s.close()
    deadline = time.time() + 10
    while k.call("PUBSUB", "NUMSUB", "crowd")[1]:
        assert time.time() < deadline, "the subscribers were not forgotten"
        time.sleep(0.02)
    assert k.call("PUBLISH", "crowd", "nobody") == 0


def test_one_client_on_thousands_of_channels_and_patterns(keel, redis_ref):
    channels = [f"ch:{i}" for i in range(5000)]
    patterns = [f"pat:{i}:*" for i in range(2000)]
    clients = [keel.client(), redis_ref.client()]
    pub = [keel.client(), redis_ref.client()]
    try:
        got = []
        for c in clients:
            c.send_raw(encode(["SUBSCRIBE", *channels]) + encode(["PSUBSCRIBE", *patterns]))
            got.append(_read_replies(c.sock, len(channels) + len(patterns)))
        assert got[0] == got[1]
        assert got[0][-1] == [b"psubscribe", b"pat:1999:*", 7000]
        # A channel that is also matched by one pattern: two deliveries.
        assert [p.call("PUBLISH", "ch:7", "m") for p in pub] == [1, 1]
        assert [p.call("PUBLISH", "pat:7:x", "m") for p in pub] == [1, 1]
        assert [p.call("PUBLISH", "nothing", "m") for p in pub] == [0, 0]
        assert [p.call("PUBSUB", "NUMPAT") for p in pub] == [2000, 2000]
        fields = dict(kv.split(b"=", 1) for kv in pub[0].call("CLIENT", "LIST").split()
                      if kv.startswith((b"sub=5000", b"psub=2000")))
        assert fields == {b"sub": b"5000", b"psub": b"2000"}
        for c in clients:
            assert _read_replies(c.sock, 2) == [[b"message", b"ch:7", b"m"], [b"pmessage", b"pat:7:*", b"pat:7:x", b"m"]]
        left = []
        for c in clients:
            c.send_raw(encode(["UNSUBSCRIBE"]) + encode(["PUNSUBSCRIBE"]))
            frames = _read_replies(c.sock, len(channels) + len(patterns))
            left.append((sorted(f[1] for f in frames), [f[2] for f in frames]))
        assert left[0] == left[1]
        assert left[0][1] == list(range(6999, -1, -1))
        assert [p.call("PUBSUB", "NUMPAT") for p in pub] == [0, 0]
    finally:
        for c in clients + pub:
            c.close()
