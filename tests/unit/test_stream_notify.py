"""Stream keyspace events (class ``t``) side by side with redis-server.

Each side has a subscriber on ``__key*__:*`` with ``notify-keyspace-events
KEA``; every command of the script runs on both and the messages it caused
(a PING on the subscriber marks their end) must be the same, in order.
"""

from __future__ import annotations

import shlex

from tests.support import RespClient, encode

SCRIPT = """
XADD s 1-1 a 1
XADD s 2-1 a 2
XADD s MAXLEN 1 3-1 a 3
XADD s NOMKSTREAM 4-1 a 4
XADD nokey NOMKSTREAM 4-1 a 4
XDEL s 3-1 9-9
XDEL s 9-9
XTRIM s MAXLEN 0
XTRIM s MAXLEN 0
XSETID s 10-0
XGROUP CREATE s g $
XGROUP CREATE t g $ MKSTREAM
XGROUP CREATECONSUMER s g alice
XGROUP CREATECONSUMER s g alice
XADD s 11-1 a 1
XREADGROUP GROUP g bob STREAMS s >
XREADGROUP GROUP g bob STREAMS s >
XACK s g 11-1
XCLAIM s g carol 0 11-1 FORCE
XAUTOCLAIM s g dave 0 0
XGROUP SETID s g 0
XGROUP DELCONSUMER s g alice
XGROUP DESTROY s g
XGROUP DESTROY s g
DEL s
"""


def _messages(sub: RespClient) -> list:
    sub.send_raw(encode(("PING",)))
    out = []
    while True:
        m = sub.read()
        if m == [b"pong", b""]:
            return out
        out.append(m)


def test_stream_events_agree_with_redis(keel, redis_ref):
    sides = []
    for port in (keel.port, redis_ref.port):
        cmd, sub = RespClient(port), RespClient(port)
        cmd.call("FLUSHALL")
        cmd.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        sub.call("PSUBSCRIBE", "__key*__:*")
        sides.append((cmd, sub))
    try:
        for line in SCRIPT.strip().splitlines():
            args = shlex.split(line)
            got = []
            for cmd, sub in sides:
                cmd.call(*args)
                got.append(_messages(sub))
            assert got[0] == got[1], f"{args!r}: keel {got[0]!r} != redis {got[1]!r}"
    finally:
        for cmd, sub in sides:
            cmd.call("CONFIG", "SET", "notify-keyspace-events", "")
            cmd.close()
            sub.close()
