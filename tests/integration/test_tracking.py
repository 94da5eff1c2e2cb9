"""Client-side caching over real sockets: Keel and a real redis-server side by side.

Each scenario runs against both servers with fresh connections and returns
the exact bytes each connection received (replies and ``invalidate`` push
frames, in their order), which must be equal. ``Conn`` reads whole RESP
frames, so a push that arrives with a reply is never lost inside a parser.

This file: default tracking (own and other clients' writes, MGET, failed
reads, databases, expiry, FLUSHALL/FLUSHDB, NOLOOP, pipelines, MULTI,
CLIENT REPLY), OPTIN/OPTOUT, BCAST prefixes, and redis-py's client-side
cache. Redirection, tracking-table-max-keys and bookkeeping are in
``test_tracking_redirect.py``.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support import encode


def frame_end(buf: bytes, pos: int = 0):
    """Where the RESP frame starting at ``pos`` ends, or None if incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    kind, head, pos = buf[pos:pos + 1], buf[pos + 1:nl], nl + 2
    if kind in (b"$", b"=", b"!"):
        n = int(head)
        if n < 0:
            return pos
        return pos + n + 2 if len(buf) >= pos + n + 2 else None
    if kind in (b"*", b">", b"~", b"%", b"|"):
        n = int(head)
        for _ in range(max(n, 0) * (2 if kind in (b"%", b"|") else 1)):
            pos = frame_end(buf, pos)
            if pos is None:
                return None
        return pos
    return pos  # + - : _ , # (


class Conn:
    """A raw connection that keeps every byte and hands them out frame by frame."""

    def __init__(self, port: int, proto: int = 2):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        if proto == 3:
            self.call("HELLO", "3")
        self.id = int(self.call("CLIENT", "ID")[1:-2])

    def send(self, *args) -> None:
        self.sock.sendall(encode(args))

    def frames(self, n: int = 1) -> bytes:
        """The bytes of exactly the next ``n`` frames (waits for them)."""
        pos = 0
        for _ in range(n):
            while True:
                end = frame_end(self.buf, pos)
                if end is not None:
                    pos = end
                    break
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed by server")
                self.buf += chunk
        out, self.buf = self.buf[:pos], self.buf[pos:]
        return out

    def call(self, *args) -> bytes:
        """Send a command; the next frame (a reply, or a push that came first)."""
        self.send(*args)
        return self.frames()

    def quiet(self, wait: float = 0.05) -> bool:
        """True when nothing is waiting and nothing arrives for ``wait`` seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(5.0)
        self.buf += chunk
        return not chunk

    def close(self) -> None:
        self.sock.close()


def inv(*keys: str) -> bytes:
    """The RESP3 push a key invalidation is."""
    return b">2\r\n$10\r\ninvalidate\r\n*%d\r\n" % len(keys) + b"".join(
        b"$%d\r\n%s\r\n" % (len(k), k.encode()) for k in keys)


INV_NULL = b">2\r\n$10\r\ninvalidate\r\n_\r\n"


@pytest.fixture
def servers(keel, redis_ref):
    """Per test: ``connect(proto)`` opens a ``Conn`` to each server (Keel, redis); both emptied."""
    opened = []

    def connect(proto: int = 2):
        pair = []
        for proc in (keel, redis_ref):
            c = Conn(proc.port, proto)
            opened.append(c)
            pair.append(c)
        return pair

    admin = connect()
    for c in admin:
        c.call("FLUSHALL")
    yield connect, admin
    for c in opened:
        c.close()


def both(fn):
    """Run ``fn(index)`` for Keel (0) and redis-server (1); assert equal results."""
    k, r = fn(0), fn(1)
    assert k == r, f"keel {k!r} != redis {r!r}"
    return k


# --- default mode -------------------------------------------------------------------

def test_own_write_is_announced_after_its_reply(servers):
    connect, _ = servers
    t = connect(3)

    def scenario(i):
        c = t[i]
        return [c.call("CLIENT", "TRACKING", "on"), c.call("GET", "k"), c.call("SET", "k", "1"), c.frames(),
                c.call("GET", "k"), c.quiet()]

    assert both(scenario) == [b"+OK\r\n", b"_\r\n", b"+OK\r\n", inv("k"), b"$1\r\n1\r\n", True]


def test_another_clients_write_invalidates_once_until_read_again(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.call("GET", "k")
        w[i].call("SET", "k", "1")
        first = c.frames()
        w[i].call("SET", "k", "2")  # forgotten: no second message before k is read again
        silent = c.quiet()
        c.call("GET", "k")
        w[i].call("DEL", "k")
        return [first, silent, c.frames()]

    assert both(scenario) == [inv("k"), True, inv("k")]


def test_every_key_of_a_read_is_remembered_and_each_announced_alone(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.call("MGET", "x", "y")
        w[i].call("MSET", "x", "1", "y", "2", "z", "3")
        return c.frames(2)

    assert both(scenario) == inv("x") + inv("y")


def test_a_read_that_fails_still_remembers_its_key(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        w[i].call("HSET", "h", "f", "v")
        c.call("CLIENT", "TRACKING", "on")
        reply = c.call("GET", "h")
        w[i].call("HSET", "h", "f", "w")
        return [reply, c.frames()]

    assert both(scenario) == [b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", inv("h")]


def test_keys_are_remembered_by_name_whatever_the_database(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.call("GET", "d")
        w[i].call("SELECT", "1")
        w[i].call("SET", "d", "1")
        got = c.frames()
        w[i].call("FLUSHDB")  # leaves database 1 tidy for the next test
        w[i].call("SELECT", "0")
        return got

    assert both(scenario) == inv("d")


def test_swapdb_invalidates_the_keys_it_moves(keel):
    # Keel-only: Redis 7.0 (and 7.2) send nothing on SWAPDB, which leaves a
    # cached key stale; Keel announces each key of either database.
    w, t = Conn(keel.port), Conn(keel.port, 3)
    try:
        w.call("FLUSHALL")
        t.call("CLIENT", "TRACKING", "on")
        w.call("SELECT", "1")
        w.call("SET", "s", "1")
        t.call("GET", "s")  # in database 0: missing, until the swap brings it in
        w.call("SWAPDB", "0", "1")
        assert t.frames() == inv("s")
        assert t.call("GET", "s") == b"$1\r\n1\r\n"
    finally:
        w.call("FLUSHALL")
        w.close()
        t.close()


def test_a_write_command_remembers_nothing(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "NOLOOP")
        c.call("INCR", "n")
        c.call("LPUSH", "l", "a")
        w[i].call("INCR", "n")
        w[i].call("LPUSH", "l", "b")
        return c.quiet()

    assert both(scenario) is True


def test_active_expiry_invalidates(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        w[i].call("SET", "e", "1", "PX", "100")
        c.call("GET", "e")
        return c.frames()  # nobody touches e: the server's own expiry cycle deletes it

    assert both(scenario) == inv("e")


def test_lazy_expiry_invalidates(keel):
    admin, t = Conn(keel.port), Conn(keel.port, 3)
    admin.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        t.call("CLIENT", "TRACKING", "on")
        admin.call("SET", "lazy", "1", "PX", "30")
        assert t.call("GET", "lazy") == b"$1\r\n1\r\n"
        time.sleep(0.05)
        assert t.quiet()  # due, but nothing has looked at it
        assert admin.call("GET", "lazy") == b"$-1\r\n"
        assert t.frames() == inv("lazy")
    finally:
        admin.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        admin.close()
        t.close()


def test_a_key_expired_by_the_trackers_own_read_is_announced_after_the_reply(keel):
    # Redis 7.2 defers every self-invalidation to after the reply (7.0, the
    # reference here, still sent this one first).
    admin, t = Conn(keel.port), Conn(keel.port, 3)
    admin.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        t.call("CLIENT", "TRACKING", "on")
        admin.call("SET", "e3", "1", "PX", "30")
        t.call("GET", "e3")
        time.sleep(0.05)
        assert t.call("GET", "e3") == b"_\r\n"
        assert t.frames() == inv("e3")
    finally:
        admin.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        admin.close()
        t.close()


@pytest.mark.parametrize("flush", ["FLUSHALL", "FLUSHDB"])
def test_a_flush_sends_one_null_to_every_tracking_client(servers, flush):
    connect, _ = servers
    a, b, w = connect(3), connect(3), connect()

    def scenario(i):
        a[i].call("CLIENT", "TRACKING", "on")
        b[i].call("CLIENT", "TRACKING", "on", "BCAST")
        a[i].call("GET", "k")
        out = [w[i].call(flush), a[i].frames(), b[i].frames(), a[i].quiet(), b[i].quiet()]
        a[i].call("GET", "k")
        out += [a[i].call(flush), a[i].frames(), b[i].frames()]  # the flusher's own: after its reply
        w[i].call("SET", "k", "1")  # the flush forgot k
        return out + [a[i].quiet()]

    assert both(scenario) == [b"+OK\r\n", INV_NULL, INV_NULL, True, True, b"+OK\r\n", INV_NULL, INV_NULL, True]


def test_noloop_silences_own_writes_only(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "NOLOOP")
        c.call("GET", "n")
        out = [c.call("SET", "n", "1"), c.quiet()]
        w[i].call("SET", "n", "2")  # the own write forgot n: nothing
        out.append(c.quiet())
        c.call("GET", "n")
        w[i].call("SET", "n", "3")
        return out + [c.frames()]

    assert both(scenario) == [b"+OK\r\n", True, True, inv("n")]


def test_pipelined_own_writes_each_follow_their_reply(servers):
    connect, _ = servers
    t = connect(3)

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.call("GET", "p")
        c.sock.sendall(encode(["SET", "p", "1"]) + encode(["GET", "p"]) + encode(["SET", "p", "2"]))
        return c.frames(5)

    assert both(scenario) == b"+OK\r\n" + inv("p") + b"$1\r\n1\r\n+OK\r\n" + inv("p")


def test_writes_inside_exec_are_announced_after_its_reply(servers):
    connect, _ = servers
    t = connect(3)

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.call("GET", "m1")
        c.call("GET", "m2")
        c.sock.sendall(b"".join(encode(a) for a in (["MULTI"], ["SET", "m1", "1"], ["SET", "m2", "1"], ["EXEC"])))
        return c.frames(6)

    assert both(scenario) == b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n" + inv("m1") + inv("m2")


def test_reads_inside_exec_are_remembered(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.sock.sendall(b"".join(encode(a) for a in (["MULTI"], ["GET", "x1"], ["EXEC"])))
        c.frames(3)
        w[i].call("SET", "x1", "1")
        return c.frames()

    assert both(scenario) == inv("x1")


def test_invalidations_still_come_under_client_reply_off(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on")
        c.call("GET", "k")
        c.send("CLIENT", "REPLY", "OFF")
        c.send("SET", "k", "1")  # its own write: no reply, the invalidation still
        own = c.frames()
        c.send("GET", "k")
        w[i].call("SET", "k", "2")
        other = c.frames()
        return [own, other, c.call("CLIENT", "REPLY", "ON")]

    assert both(scenario) == [inv("k"), inv("k"), b"+OK\r\n"]


def test_a_served_blocked_clients_write_is_no_own_write_of_noloop(servers):
    # The tracker's push wakes a BLMOVE onto a key the tracker cached: that
    # write is the blocked client's, so NOLOOP does not hold it back.
    connect, admin = servers
    t, blocked = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "NOLOOP")
        c.call("LRANGE", "dst", "0", "-1")
        blocked[i].send("BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
        deadline = time.time() + 5
        while b"blocked_clients:1" not in admin[i].call("INFO", "clients"):
            assert time.time() < deadline
            time.sleep(0.005)
        return [c.call("LPUSH", "src", "v"), c.frames(), blocked[i].frames()]

    assert both(scenario) == [b":1\r\n", inv("dst"), b"$1\r\nv\r\n"]


def test_resp2_without_redirect_is_accepted_and_told_nothing(servers):
    connect, _ = servers
    t, w = connect(2), connect()

    def scenario(i):
        c = t[i]
        out = [c.call("CLIENT", "TRACKING", "on"), c.call("GET", "k")]
        w[i].call("SET", "k", "1")
        return out + [c.call("SET", "k", "2"), c.quiet()]

    assert both(scenario) == [b"+OK\r\n", b"$-1\r\n", b"+OK\r\n", True]


# --- OPTIN / OPTOUT -----------------------------------------------------------------

def test_optin_remembers_only_the_command_after_caching_yes(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "OPTIN")
        c.call("GET", "a")
        w[i].call("SET", "a", "1")
        out = [c.quiet()]
        c.call("CLIENT", "CACHING", "yes")
        c.call("CLIENT", "ID")  # CLIENT's own subcommands leave the flag set
        c.call("GET", "a")
        c.call("GET", "b")  # the flag was spent on a
        w[i].call("MSET", "a", "2", "b", "2")
        out.append(c.frames())
        c.call("CLIENT", "CACHING", "yes")
        c.call("PING")  # any other command spends it
        c.call("GET", "a")
        w[i].call("SET", "a", "3")
        return out + [c.quiet()]

    assert both(scenario) == [True, inv("a"), True]


def test_optin_flag_covers_a_whole_transaction(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "OPTIN")
        c.call("CLIENT", "CACHING", "yes")
        c.sock.sendall(b"".join(encode(a) for a in (["MULTI"], ["GET", "a"], ["GET", "b"], ["EXEC"])))
        c.frames(4)
        w[i].call("MSET", "a", "1", "b", "1")
        out = [c.frames(2), c.call("CLIENT", "TRACKINGINFO")]
        return out

    assert both(scenario) == [inv("a") + inv("b"),
                              b"%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\noptin\r\n"
                              b"$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n"]


def test_optout_skips_only_the_command_after_caching_no(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "OPTOUT")
        c.call("GET", "a")
        w[i].call("SET", "a", "1")
        out = [c.frames()]
        c.call("CLIENT", "CACHING", "no")
        c.call("GET", "a")
        c.call("GET", "b")
        w[i].call("MSET", "a", "2", "b", "2")
        return out + [c.frames(), c.quiet()]

    assert both(scenario) == [inv("a"), inv("b"), True]


def test_a_refused_command_spends_caching_no(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "OPTOUT")
        c.call("CLIENT", "CACHING", "no")
        c.call("NOSUCHCOMMAND")  # refused before running: the flag is spent all the same
        c.call("GET", "a")  # so this read is tracked
        w[i].call("SET", "a", "1")
        return [c.frames(), c.quiet()]

    assert both(scenario) == [inv("a"), True]


# --- BCAST ------------------------------------------------------------------------------

def test_bcast_sends_each_prefixs_changed_keys_sorted_in_one_message(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "u:", "PREFIX", "v:")
        w[i].sock.sendall(encode(["MSET", "u:2", "1", "u:1", "1", "w", "1", "v:1", "2"]) +
                          encode(["SET", "u:2", "3"]))
        w[i].frames(2)
        out = [c.frames(2), c.quiet()]
        out += [c.call("SET", "u:3", "1"), c.frames()]  # its own writes too, after the reply
        w[i].call("SET", "other", "1")
        return out + [c.quiet()]

    assert both(scenario) == [inv("u:1", "u:2") + inv("v:1"), True, b"+OK\r\n", inv("u:3"), True]


def test_bcast_without_prefix_covers_every_key(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "BCAST")
        w[i].call("SET", "anything", "1")
        w[i].call("EXPIRE", "anything", "100")
        return c.frames(2)

    assert both(scenario) == inv("anything") + inv("anything")


def test_bcast_noloop_leaves_out_the_clients_own_keys(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "BCAST", "NOLOOP", "PREFIX", "u:")
        out = [c.call("SET", "u:4", "1"), c.quiet()]
        w[i].call("SET", "u:6", "1")
        return out + [c.frames()]

    assert both(scenario) == [b"+OK\r\n", True, inv("u:6")]


# --- redis-py's client-side cache -----------------------------------------------------

def test_redis_py_client_side_cache_sees_another_clients_write(keel, monkeypatch):
    from redis.cache import CacheConfig
    from redis.connection import CacheProxyConnection

    # redis-py caches only for servers that report 7.4 or later (a policy,
    # not a protocol need: tracking is 6.0's); Keel reports 7.2.
    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.2.0")
    cached = keel.redis(protocol=3, cache_config=CacheConfig())
    writer = keel.redis()
    try:
        writer.set("csc", "1")
        assert cached.get("csc") == b"1"
        assert cached.get("csc") == b"1"
        cache = cached.get_cache()
        assert cache.size == 1
        writer.set("csc", "2")
        deadline = time.time() + 5
        while cached.get("csc") != b"2":  # the push may be on its way still
            assert time.time() < deadline, "the cached value was never invalidated"
            time.sleep(0.01)
        writer.flushall()
        deadline = time.time() + 5
        while cached.get("csc") is not None:
            assert time.time() < deadline, "FLUSHALL did not empty the cache"
            time.sleep(0.01)
    finally:
        cached.close()
        writer.close()
