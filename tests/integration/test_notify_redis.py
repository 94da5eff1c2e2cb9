"""Keyspace notifications side by side: the same commands to Keel and to a
real redis-server, each watched by a subscriber on ``PSUBSCRIBE __key*__:*``;
the messages (pattern, channel, payload, in order) must be the same.

The command scripts are ``tests/unit/test_notify_events.py``'s (every type,
expiry, blocking pops); here they run live, with every class on, and the
two servers' message sequences are compared after every command (a PING on
the subscriber marks where a command's messages end: both servers publish
while the command runs). Expired events are compared from lazy expiry (a
command meeting the key) and from the active expiry cycle (as a multiset:
the cycle's walk order is each server's own).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support import ROOT, RedisProcess, RespClient, encode, free_port, wait_ready
from tests.unit.test_notify_events import DIFFERENTIAL

PATTERN = "__key*__:*"
# Replies that are random on both sides (the events are still compared).
RANDOM_REPLIES = {b"SPOP", b"SRANDMEMBER"}


class Side:
    """One server: a client that runs commands, and a subscriber that sees their events."""

    def __init__(self, port: int):
        self.cmd = RespClient(port)
        self.sub = RespClient(port)
        self.cmd.call("FLUSHALL")
        self.cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        self.sub.call("PSUBSCRIBE", PATTERN)

    def messages(self) -> list:
        """The messages published since the last call (a PING marks the end)."""
        self.sub.send_raw(encode(("PING",)))  # its reply follows every message already published
        out = []
        while True:
            m = self.sub.read()
            if m == [b"pong", b""]:
                return out
            out.append(m)

    def close(self) -> None:
        self.cmd.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        self.cmd.call("CONFIG", "SET", "notify-keyspace-events", "")
        self.cmd.call("FLUSHALL")
        self.cmd.close()
        self.sub.close()


class Sides:
    def __init__(self, keel_port: int, redis_port: int, flags: str = "KEAn"):
        self.keel = Side(keel_port)
        self.ref = Side(redis_port)
        self.config(flags)

    def config(self, flags: str) -> None:
        for s in (self.keel, self.ref):
            assert s.cmd.call("CONFIG", "SET", "notify-keyspace-events", flags) == b"OK"

    def both(self, *args):
        return self.keel.cmd.call(*args), self.ref.cmd.call(*args)

    def check(self, *args, what: str = ""):
        """Run ``args`` on both; the replies (unless random) and the messages must match."""
        k, r = self.both(*args)
        head = (args[0].encode() if isinstance(args[0], str) else args[0]).upper()
        if head not in RANDOM_REPLIES:
            assert k == r, f"{what}{args!r}: keel replied {k!r}, redis {r!r}"
        km, rm = self.keel.messages(), self.ref.messages()
        assert km == rm, f"{what}{args!r}: keel sent\n{km!r}\nredis sent\n{rm!r}"
        return km

    def close(self) -> None:
        self.keel.close()
        self.ref.close()


@pytest.fixture(scope="module")
def ref():
    if not RedisProcess.available():
        pytest.skip("redis-server is not installed")
    # DEBUG SET-ACTIVE-EXPIRE needs the debug command (off by default in 7.0).
    proc = RedisProcess("--enable-debug-command", "yes").start()
    yield proc
    proc.cleanup()


@pytest.fixture
def sides(keel, ref):
    s = Sides(keel.port, ref.port)
    yield s
    s.close()


def _script_lines(script: str):
    for line in script.strip().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            command = line.partition("->")[0]
            yield [b"" if a == "''" else a.encode() for a in command.split()]


# --- every command --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(DIFFERENTIAL))
def test_each_command_sends_what_redis_sends(sides, name):
    for args in _script_lines(DIFFERENTIAL[name]):
        sides.check(*args, what=f"{name}: ")


def test_restore_and_dump_payloads_send_what_redis_sends(sides):
    sides.check("SET", "a", "1")
    for side in (sides.keel, sides.ref):
        payload = side.cmd.call("DUMP", "a")
        for args in (("RESTORE", "b", 0, payload), ("RESTORE", "b", 0, payload),
                     ("RESTORE", "b", 0, payload, "REPLACE"), ("RESTORE", "b", 100000, payload, "REPLACE"),
                     ("RESTORE", "b", 1, payload, "REPLACE", "ABSTTL")):
            side.cmd.call(*args)
    assert sides.keel.messages() == sides.ref.messages()


def test_messages_name_the_database(sides):
    sides.check("SELECT", 5)
    sides.check("RPUSH", "l", "a")
    sides.check("MOVE", "l", 0)
    sides.check("SELECT", 0)
    msgs = sides.check("COPY", "l", "m", "DB", 9)
    assert [m[2] for m in msgs] == [b"__keyspace@9__:m", b"__keyevent@9__:new", b"__keyspace@9__:m",
                                    b"__keyevent@9__:copy_to"]


def test_multi_exec_sends_each_commands_events_in_order(sides):
    for args in (("MULTI",), ("RPUSH", "q", "1"), ("SET", "k", "v"), ("INCR", "k"), ("LPOP", "q"),
                 ("HSET", "h", "f", "v"), ("EXEC",)):
        sides.check(*args)


def test_blocked_clients_served_later_send_what_redis_sends(sides, keel, ref):
    waiters = [RespClient(keel.port), RespClient(ref.port)]
    try:
        for block, wake in ((("BLPOP", "q", 0), ("RPUSH", "q", "a", "b")),
                            (("BLMOVE", "w", "v", "LEFT", "RIGHT", 0), ("RPUSH", "w", "a")),
                            (("BRPOPLPUSH", "x", "y", 0), ("LPUSH", "x", "a")),
                            (("BZPOPMIN", "z", 0), ("ZADD", "z", 1, "a")),
                            (("BLMPOP", 0, 1, "m", "RIGHT", "COUNT", 5), ("RPUSH", "m", 1, 2))):
            for w in waiters:
                w.send_raw(encode(block))
            time.sleep(0.05)  # both parked
            sides.check(*wake)
            assert waiters[0].read() == waiters[1].read()
    finally:
        for w in waiters:
            w.close()


# --- expired ----------------------------------------------------------------------

def _due(sides, *keys):
    """Give ``keys`` (set up identically on both) a TTL that has run out."""
    for key in keys:
        sides.both("PEXPIRE", key, 1)
    sides.keel.messages(), sides.ref.messages()
    time.sleep(0.01)


@pytest.mark.parametrize("args", [
    ("GET", "x"), ("EXISTS", "x"), ("TTL", "x"), ("TYPE", "x"), ("DEL", "x", "a"), ("EXPIRE", "x", 10),
    ("SET", "x", 2), ("SET", "x", 2, "EX", 5), ("MSET", "x", 1, "a", 2), ("APPEND", "x", "y"), ("INCR", "x"),
    ("RPUSH", "x", "a"), ("SADD", "x", "a"), ("HSET", "x", "f", "v"), ("ZADD", "x", 1, "m"),
    ("RENAME", "a", "x"), ("COPY", "a", "x"), ("MOVE", "x", 1), ("SORT", "l", "STORE", "x"),
    ("LPUSHX", "x", "a"), ("GETSET", "x", "v"),
])
def test_lazy_expiry_sends_expired_before_the_commands_events(sides, args):
    sides.check("SET", "a", "1")
    sides.check("RPUSH", "l", "1")
    sides.check("SET", "x", "old")
    _due(sides, "x")
    msgs = sides.check(*args)
    assert msgs[:2] == [[b"pmessage", b"__key*__:*", b"__keyspace@0__:x", b"expired"],
                        [b"pmessage", b"__key*__:*", b"__keyevent@0__:expired", b"x"]]


def test_active_expiry_sends_expired_for_keys_nobody_reads(sides):
    for index in (0, 3):
        sides.check("SELECT", index)
        for key in ("s", "l", "h", "z", "t"):
            sides.both("DEL", key)
        sides.check("SET", "s", "v")
        sides.check("RPUSH", "l", "a")
        sides.check("HSET", "h", "f", "v")
        sides.check("ZADD", "z", 1, "m")
        sides.check("SADD", "t", "m")
        for key in ("s", "l", "h", "z", "t"):
            sides.check("PEXPIRE", key, 30)
    sides.check("SELECT", 0)
    time.sleep(0.05)
    sides.both("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    got = {}
    for name, side in (("keel", sides.keel), ("redis", sides.ref)):
        msgs = []
        deadline = time.time() + 10
        while len(msgs) < 20 and time.time() < deadline:
            msgs += side.messages()
            time.sleep(0.02)
        got[name] = sorted(msgs)
    assert got["keel"] == got["redis"]
    assert len(got["keel"]) == 20
    assert sides.both("DBSIZE") == (0, 0)


# --- the classes and the directive ---------------------------------------------------

@pytest.mark.parametrize("flags", ["K$", "El", "Kgx", "Eszh", "KA", "KEA", "E", "Ag", "Kn", "KEg$lshzxetdm"])
def test_each_class_and_channel_kind_alone_sends_what_redis_sends(sides, flags):
    sides.config(flags)
    for args in (("SET", "s", "v", "EX", 100), ("RPUSH", "l", "a", "b"), ("LMOVE", "l", "d", "LEFT", "RIGHT"),
                 ("SADD", "t", "a"), ("SMOVE", "t", "u", "a"), ("HSET", "h", "f", "v"), ("HDEL", "h", "f"),
                 ("ZADD", "z", 1, "m"), ("ZPOPMIN", "z"), ("RENAME", "s", "s2"), ("DEL", "l", "d", "u")):
        sides.check(*args, what=f"{flags}: ")


def test_without_notifications_nothing_is_sent(sides):
    sides.config("")
    for args in (("SET", "s", "v"), ("RPUSH", "l", "a"), ("DEL", "s", "l")):
        assert sides.check(*args) == []


@pytest.mark.parametrize("value", [
    "", "KEA", "AKE", "Kg", "gK$", "xx", "KEAn", "KEAnm", "EKg$lshzxetdnm", "Elg", "nK", "Z", "Axy", "K E", "k",
])
def test_config_set_and_get_as_redis(sides, value):
    k, r = sides.both("CONFIG", "SET", "notify-keyspace-events", value)
    assert k == r
    k, r = sides.both("CONFIG", "GET", "notify-keyspace-events")
    assert k == r


def _server(*args):
    return subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_the_config_file_and_the_command_line_set_it(tmp_path):
    conf = tmp_path / "keel.conf"
    port = free_port()
    conf.write_text(f'port {port}\nnotify-keyspace-events "Kl$"\n')
    proc = _server(str(conf), "--dir", str(tmp_path), "--appendonly", "no")
    try:
        wait_ready(port, proc)
        c, s = RespClient(port), RespClient(port)
        assert c.call("CONFIG", "GET", "notify-keyspace-events") == [b"notify-keyspace-events", b"$lK"]
        s.call("PSUBSCRIBE", PATTERN)
        c.call("SADD", "t", "a")  # class s is off
        c.call("RPUSH", "l", "a")
        assert s.read() == [b"pmessage", PATTERN.encode(), b"__keyspace@0__:l", b"rpush"]
        c.close()
        s.close()
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("where", ["file", "argument"])
def test_a_bad_value_stops_the_start(tmp_path, where):
    if where == "file":
        conf = tmp_path / "bad.conf"
        conf.write_text("notify-keyspace-events KEQ\n")
        args = [str(conf)]
    else:
        args = ["--notify-keyspace-events", "KEQ"]
    out = subprocess.run([sys.executable, "-m", "server", *args, "--dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 1
    assert "notify-keyspace-events" in out.stderr and "Invalid event class character" in out.stderr
