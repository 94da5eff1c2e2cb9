"""Slow subscribers: ``client-output-buffer-limit pubsub`` keeps the server's memory bounded.

A subscriber that never reads (its receive buffer shrunk so the kernel holds
little for it) is cut off once its pending output passes the hard limit, or
once it has stayed above the soft limit for the soft seconds, traffic or not.
The publisher and a subscriber that keeps up are unaffected: the latter gets
every message, in order. The server runs alone (its own process), so its peak
resident size (VmHWM) says what the slow subscriber cost it.
"""

from __future__ import annotations

import socket
import threading
import time

import hiredis
import pytest

from tests.support import KeelProcess, RespClient, encode

MESSAGE = 16 * 1024


@pytest.fixture(scope="module")
def server():
    proc = KeelProcess("--appendonly", "no").start()
    yield proc
    proc.cleanup()


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _never_reading_subscriber(port: int, channel: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.connect(("127.0.0.1", port))
    s.sendall(encode(["SUBSCRIBE", channel]))
    r = hiredis.Reader()
    while (reply := r.gets()) is False:
        r.feed(s.recv(4096))
    assert reply == [b"subscribe", channel.encode(), 1]
    return s


class _Reader(threading.Thread):
    """A subscriber that keeps up: reads everything into ``data``."""

    def __init__(self, client: RespClient):
        super().__init__(daemon=True)
        self.client = client
        self.data = bytearray()
        self.closed = False

    def run(self):
        sock = self.client.sock
        sock.settimeout(None)
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            self.data += chunk


def _client_ids(admin: RespClient) -> set:
    return {int(line.split(b" ", 1)[0][3:]) for line in admin.call("CLIENT", "LIST").splitlines()}


def _payload(i: int) -> bytes:
    return b"%08d" % i + b"x" * (MESSAGE - 8)


def test_a_subscriber_that_never_reads_is_cut_off_and_the_rest_get_everything(server):
    admin = server.client()
    admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 4mb 0 0")
    slow = _never_reading_subscriber(server.port, "feed")
    slow_id = max(_client_ids(admin))
    good = server.client()
    pub = server.client()
    try:
        good.call("SUBSCRIBE", "feed")
        reader = _Reader(good)
        reader.start()
        base = _peak_rss(server.proc.pid)
        frame = len(b"*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$%d\r\n\r\n" % MESSAGE) + MESSAGE
        total, batch = 3072, 32  # 48 MB
        counts = []
        for start in range(0, total, batch):
            counts += pub.pipeline([("PUBLISH", "feed", _payload(i)) for i in range(start, start + batch)])
            # The good subscriber keeps up: never more than a few batches behind.
            deadline = time.time() + 10
            while len(reader.data) < (start - 2 * batch) * frame:
                assert time.time() < deadline, "the reading subscriber fell behind"
                time.sleep(0.001)
        assert counts[0] == 2 and counts[-1] == 1 and counts == sorted(counts, reverse=True)
        assert slow_id not in _client_ids(admin)
        deadline = time.time() + 10
        while len(reader.data) < total * frame:
            assert time.time() < deadline and not reader.closed
            time.sleep(0.01)
        # Every message, in order, and nothing else.
        assert reader.data == b"".join(b"*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$%d\r\n%s\r\n" % (MESSAGE, _payload(i))
                                       for i in range(total))
        # 48 MB went out while one subscriber read nothing: the server kept at
        # most its 4 MB limit (and a message) for it, not the 44 MB it missed.
        assert _peak_rss(server.proc.pid) - base < 16 << 20
        assert "past client-output-buffer-limit pubsub" in server.log()
        assert pub.call("PING") == b"PONG"
    finally:
        admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
        for c in (admin, good, pub):
            c.close()
        slow.close()


def test_a_subscriber_over_the_soft_limit_for_the_soft_seconds_is_cut_off_without_more_traffic(server):
    admin = server.client()
    admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 256kb 1")
    slow = _never_reading_subscriber(server.port, "soft")
    slow_id = max(_client_ids(admin))
    pub = server.client()
    try:
        # More than the kernel holds for a closed window (its send buffer grows to 4 MB).
        assert set(pub.pipeline([("PUBLISH", "soft", _payload(i)) for i in range(512)])) == {1}
        t0 = time.time()
        assert slow_id in _client_ids(admin)  # over the soft limit, not yet for a second
        while slow_id in _client_ids(admin):
            assert time.time() - t0 < 5, "never cut off"
            time.sleep(0.05)
        assert time.time() - t0 > 0.5
        assert pub.call("PUBLISH", "soft", "m") == 0
    finally:
        admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
        for c in (admin, pub):
            c.close()
        slow.close()


def test_a_subscriber_within_its_limits_is_left_alone(server):
    admin = server.client()
    admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
    slow = _never_reading_subscriber(server.port, "calm")
    slow_id = max(_client_ids(admin))
    pub = server.client()
    try:
        assert set(pub.pipeline([("PUBLISH", "calm", _payload(i)) for i in range(256)])) == {1}  # 4 MB
        time.sleep(0.2)
        assert slow_id in _client_ids(admin)
    finally:
        for c in (admin, pub):
            c.close()
        slow.close()
