"""MONITOR with real clients, side by side with redis-server 7.0.

One client monitors, another runs commands; the lines each server sends are
compared after their timestamp and client address (which differ by nature):
the database, whether the command came from a script (``lua``), and the
quoted arguments, in order. A marker command (``ECHO``) ends each batch. The
cases are what an operator relies on: Redis's quoting, SELECT's database,
scripts' commands after their EVAL, MULTI/EXEC at EXEC time, failed commands
shown and refused ones not, admin commands hidden, passwords redacted, and
what the monitoring client itself may still do.
"""

from __future__ import annotations

import re
import time

import pytest

from server.monitor import quote
from tests.support import Err, RespClient, encode

LINE = re.compile(rb"^(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)$", re.S)


class Side:
    """A monitoring connection and a commanding one to one server."""

    def __init__(self, port: int):
        self.port = port
        self.cmd = RespClient(port)
        self.cmd.call("FLUSHALL")
        self.addr = self.cmd.call("CLIENT", "INFO").split(b" addr=")[1].split(b" ")[0]
        self.mon = RespClient(port)
        assert self.mon.call("MONITOR") == b"OK"
        self.marks = 0

    def run(self, *args):
        return self.cmd.call(*args)

    def lines(self) -> list:
        """(db, source, quoted args) of what was shown since the last call; source is
        ``client`` for the commanding connection's address, else the address shown."""
        self.marks += 1
        mark = b"mark-%d" % self.marks
        self.cmd.call("ECHO", mark)
        out = []
        while True:
            line = self.mon.read()
            m = LINE.match(line)
            assert m, line
            sec, usec, db, addr, args = m.groups()
            assert abs(int(sec) + int(usec) / 1e6 - time.time()) < 30
            if args == b'"ECHO" "' + mark + b'"':
                return out
            out.append((int(db), "client" if addr == self.addr else addr.decode(), args))

    def close(self) -> None:
        self.mon.close()
        self.cmd.close()


@pytest.fixture
def sides(servers):
    keel, ref = servers
    s = Side(keel.port), Side(ref.port)
    yield s
    for side in s:
        side.close()


def both(sides, *args):
    k, r = (s.run(*args) for s in sides)
    if not (isinstance(k, Err) and isinstance(r, Err)):  # (error texts of unknown commands differ: MIGRATE)
        assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
    return k


def same_lines(sides) -> list:
    k, r = (s.lines() for s in sides)
    assert k == r, f"keel showed\n{k!r}\nredis showed\n{r!r}"
    return k


# --- the quoting, as a function -------------------------------------------------------

@pytest.mark.parametrize("arg, shown", [
    (b"plain text", b'"plain text"'),
    (b"", b'""'),
    (b'a"b', b'"a\\"b"'),
    (b"back\\slash", b'"back\\\\slash"'),
    (b"\n\r\t\a\b", b'"\\n\\r\\t\\a\\b"'),
    (b"\x00\x01\x7f\x80\xff", b'"\\x00\\x01\\x7f\\x80\\xff"'),
    ("é".encode(), b'"\\xc3\\xa9"'),
])
def test_quote_escapes_as_redis(arg, shown):
    assert quote(arg) == shown


# --- side by side ---------------------------------------------------------------------

def test_commands_their_database_and_quoting(sides):
    both(sides, "SET", "k", b"a\x00b\"c\n\r\t\\ \x7f\xff")
    both(sides, "SELECT", "3")
    both(sides, "GET", "k")
    both(sides, "SELECT", "0")
    both(sides, "ECHO", "")
    both(sides, "PING")
    shown = same_lines(sides)
    assert shown[1] == (3, "client", b'"SELECT" "3"')  # fed after it ran: already in db 3
    assert len(shown) == 6


def test_failed_commands_are_shown_and_refused_ones_are_not(sides):
    both(sides, "SET", "s", "1")
    both(sides, "LPUSH", "s", "x")  # WRONGTYPE, once it ran
    both(sides, "NOSUCHCOMMAND", "x")
    both(sides, "GET")  # arity
    both(sides, "CLIENT", "NOSUCH")
    assert [a for _, _, a in same_lines(sides)] == [b'"SET" "s" "1"', b'"LPUSH" "s" "x"']


def test_admin_commands_are_hidden(sides):
    for args in (("CONFIG", "SET", "hz", "10"), ("CONFIG", "GET", "hz"), ("DEBUG", "SLEEP", "0"),
                 ("SLOWLOG", "LEN"), ("LATENCY", "LATEST"), ("CLIENT", "LIST"), ("ACL", "SETUSER", "mon-bob"),
                 ("ACL", "WHOAMI"), ("CLIENT", "SETNAME", "x"), ("INFO", "server"), ("BGSAVE", "SCHEDULE")):
        for side in sides:  # (the replies are each server's own: counters, clients, saves)
            side.run(*args)
    lines = same_lines(sides)
    assert [a for _, _, a in lines] == [b'"ACL" "WHOAMI"', b'"CLIENT" "SETNAME" "x"', b'"INFO" "server"']
    for s in sides:
        s.run("ACL", "DELUSER", "mon-bob")


def test_passwords_are_redacted(sides):
    both(sides, "AUTH", "secret")
    both(sides, "AUTH", "user", "secret")
    both(sides, "HELLO", "2", "AUTH", "user", "secret")
    for side in sides:
        side.run("HELLO", "2")  # (each server's own version and id)
    assert [a for _, _, a in same_lines(sides)] == [
        b'"AUTH" "(redacted)"', b'"AUTH" "(redacted)" "(redacted)"',
        b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)"', b'"HELLO" "2"']


def test_transactions_show_at_exec_time(sides):
    both(sides, "MULTI")
    both(sides, "SET", "a", "1")
    both(sides, "INCR", "a")
    both(sides, "EXEC")
    both(sides, "MULTI")
    both(sides, "SET", "a", "1")
    both(sides, "NOSUCH")
    both(sides, "EXEC")  # EXECABORT: the queued SET never ran
    both(sides, "MULTI")
    both(sides, "DISCARD")
    assert [a for _, _, a in same_lines(sides)] == [
        b'"MULTI"', b'"SET" "a" "1"', b'"INCR" "a"', b'"EXEC"', b'"MULTI"', b'"EXEC"', b'"MULTI"', b'"DISCARD"']


def test_scripts_show_before_the_commands_they_run(sides):
    both(sides, "SELECT", "2")
    both(sides, "EVAL", "redis.call('set', KEYS[1], 'v'); redis.call('select', '5'); "
                        "return redis.call('get', KEYS[1])", "1", "sk")
    both(sides, "EVAL", "return redis.pcall('nosuch')", "0")  # refused inside the script: not shown
    both(sides, "SELECT", "0")
    both(sides, "FUNCTION", "LOAD", "REPLACE",
         "#!lua name=monlib\nredis.register_function('monf', function(k, a) return redis.call('ping') end)")
    both(sides, "FCALL", "monf", "0")
    lines = same_lines(sides)
    assert lines[1][1] == "client" and lines[1][2].startswith(b'"EVAL"')
    assert lines[2:5] == [(2, "lua", b'"set" "sk" "v"'), (5, "lua", b'"select" "5"'), (5, "lua", b'"get" "sk"')]
    assert lines[-1] == (0, "lua", b'"ping"')
    for s in sides:
        s.run("FUNCTION", "DELETE", "monlib")


def test_blocking_command_is_shown_when_called(sides):
    both(sides, "BLPOP", "nolist", "0.01")
    assert [a for _, _, a in same_lines(sides)] == [b'"BLPOP" "nolist" "0.01"']


# --- the monitoring client ---------------------------------------------------------------

@pytest.mark.parametrize("args", [("GET", "a"), ("SET", "a", "1"), ("EVAL", "return 1", "0"),
                                  ("PUBLISH", "ch", "m"), ("PING",), ("CLIENT", "ID"), ("ECHO", "x")])
def test_what_a_monitor_may_run(sides, args):
    replies = []
    for s in sides:
        s.mon.send_raw(encode(args))
        r = s.mon.read()
        if isinstance(r, int):  # CLIENT ID: its own
            r = "an id"
        replies.append(r)
    assert replies[0] == replies[1]
    if not isinstance(replies[0], Err):  # it ran: the monitor sees its own command after its reply
        for s in sides:
            assert LINE.match(s.mon.read())


def test_monitor_twice_answers_nothing_and_reset_ends_it(sides):
    for s in sides:
        s.mon.send_raw(encode(("MONITOR",)) + encode(("RESET",)))
        assert s.mon.read() == b"RESET"  # MONITOR again: no reply of its own
        assert s.mon.call("GET", "a") is None  # a normal client again
        s.run("SET", "a", "1")
        assert s.mon.call("GET", "a") == b"1"  # no monitor line in between


def test_monitor_inside_multi_is_refused(servers):
    keel, ref = servers
    replies = []
    for port in (keel.port, ref.port):
        c = RespClient(port)
        replies.append([c.call("MULTI"), c.call("MONITOR"), c.call("EXEC"), c.call("GET", "nokey")])
        c.close()
    assert replies[0] == replies[1]
    assert replies[0][2] == [Err("ERR MONITOR isn't allowed for DENY BLOCKING client")]


def test_client_list_flags_a_monitor(servers):
    keel, ref = servers
    for port in (keel.port, ref.port):
        m = RespClient(port)
        m.call("MONITOR")
        c = RespClient(port)
        listing = c.call("CLIENT", "LIST").decode()
        flags = sorted(re.findall(r"flags=(\S+)", listing))
        assert flags == ["N", "O"], listing
        m.close()
        c.close()


def test_a_closed_monitor_stops_being_fed(servers):
    keel, _ = servers
    first = RespClient(keel.port)
    first.call("MONITOR")
    first.close()
    c = RespClient(keel.port)
    for _ in range(3):
        assert c.call("SET", "after", "close") == b"OK"
    listing = c.call("CLIENT", "LIST").decode()
    assert "flags=O" not in listing
    second = RespClient(keel.port)
    assert second.call("MONITOR") == b"OK"
    c.call("SET", "seen", "1")
    assert second.read().endswith(b'"SET" "seen" "1"')
    second.close()
    c.close()
