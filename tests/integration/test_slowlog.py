"""SLOWLOG side by side with redis-server 7.0, with real clients.

With slowlog-log-slower-than 0 every call is logged: the entries' argv (trimmed
and redacted as Redis does), client address and name are compared with
Redis's for the same commands, and the durations and times checked for sense
(they are each server's own). GET's counts and errors, LEN, RESET,
slowlog-max-len and a threshold above 0 (a slow command on Keel's hot path,
which times commands not flagged ``fast``) are compared the same way.
"""

from __future__ import annotations

import time

import pytest

from server.slowlog import trimmed
from tests.support import Err, Pair


@pytest.fixture
def sl(servers):
    """A pair of clients, both servers logging every call, the logs empty."""
    keel, ref = servers
    p = Pair(keel.client(), ref.client())
    p.check("CONFIG", "SET", "slowlog-log-slower-than", "0")
    p.check("CONFIG", "SET", "slowlog-max-len", "128")
    p.both("FLUSHALL")
    p.check("SLOWLOG", "RESET")
    yield p
    p.both("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    p.close()


def addr_of(c) -> bytes:
    return c.call("CLIENT", "INFO").split(b" addr=")[1].split(b" ")[0]


def entries(p: Pair, *get):
    """Both logs (``SLOWLOG GET *get``) as (argv, source, name), source ``client``
    for the connection's own address; the ids, times and durations checked."""
    out = []
    for c in (p.keel, p.ref):
        addr = addr_of(c)
        got = c.call("SLOWLOG", "GET", *get)
        now = time.time()
        rows = []
        ids = [e[0] for e in got]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        for ident, when, usec, argv, source, name in got:
            assert abs(when - now) < 30 and usec >= 0
            rows.append((argv, "client" if source == addr else source, name))
        out.append(rows)
    return out


# --- trimming, as a function -------------------------------------------------------------

def test_trimmed_cuts_arguments_and_long_strings():
    argv = [b"RPUSH", b"k"] + [b"%d" % i for i in range(40)]
    t = trimmed(argv)
    assert len(t) == 32 and t[:31] == argv[:31] and t[31] == b"... (11 more arguments)"
    assert trimmed([b"SET", b"k", b"x" * 200]) == [b"SET", b"k", b"x" * 128 + b"... (72 more bytes)"]
    assert trimmed([b"SET", b"k", b"x" * 128]) == [b"SET", b"k", b"x" * 128]
    assert len(trimmed([b"X"] * 32)) == 32 and trimmed([b"X"] * 32)[-1] == b"X"


# --- side by side ------------------------------------------------------------------------

def test_threshold_zero_logs_every_call_as_redis(sl):
    sl.check("CLIENT", "SETNAME", "me")
    sl.check("SET", "k", "v")
    sl.check("RPUSH", "l", *[str(i) for i in range(40)])
    sl.check("SET", "big", "x" * 200)
    sl.check("MULTI")
    sl.check("SET", "a", "1")
    sl.check("EXEC")  # not logged itself (skip_slowlog); its SET is
    sl.check("EVAL", "return redis.call('set', 'z', '1')", "0")  # the script's SET from the script client
    sl.check("AUTH", "pw")
    sl.check("HELLO", "2", "AUTH", "u", "p")
    sl.check("NOSUCH")  # refused: not logged
    sl.check("GET")  # refused: not logged
    sl.check("LPUSH", "k", "x")  # failed while running: logged
    sl.check("BLPOP", "nolist", "0.01")  # timed out: not logged
    sl.check("PING")
    k, r = entries(sl, "-1")
    assert k == r
    assert [argv[0] for argv, _, _ in reversed(k)] == [
        b"SLOWLOG", b"CLIENT", b"SET", b"RPUSH", b"SET", b"MULTI", b"SET", b"set", b"EVAL", b"AUTH",
        b"HELLO", b"LPUSH", b"PING", b"CLIENT"]  # (the last: CLIENT INFO, asking for the address)
    assert (k[-1][2], k[-2][2]) == (b"", b"me")  # the name, from the moment it was set
    assert (b"set", b"z", b"1") == tuple(k[-8][0]) and k[-8][1:] == (b"?:0", b"")


def test_get_counts(sl):
    for i in range(15):
        sl.check("SET", "k%d" % i, "v")
    k, r = entries(sl)
    assert len(k) == len(r) == 10  # by default, the ten newest
    k, r = entries(sl, "3")
    assert k == r and len(k) == 3 and k[0][0][0] == b"CLIENT"
    assert entries(sl, "0") == [[], []]
    k, r = entries(sl, "1000")
    assert k == r and len(k) > 15


@pytest.mark.parametrize("args", [
    ("GET", "-2"), ("GET", "x"), ("GET", "99999999999999999999"), ("GET", "+5"), ("GET", " 5"), ("GET", "1_0"),
    ("GET", "05"), ("GET", "1", "2"), ("LEN", "x"),
    ("RESET", "x"), ("NOSUCH",), ("HELP", "x"),
])
def test_errors(sl, args):
    assert isinstance(sl.check("SLOWLOG", *args), Err)


def test_slowlog_without_subcommand(sl):
    assert isinstance(sl.check("SLOWLOG"), Err)


def test_len_and_reset(sl):
    sl.check("SET", "a", "1")
    sl.check("GET", "a")
    assert sl.check("SLOWLOG", "LEN") == 3  # the RESET before, SET, GET
    sl.check("SLOWLOG", "RESET")
    assert sl.check("SLOWLOG", "LEN") == 1  # the RESET itself


def test_max_len_applies_at_the_next_entry(sl):
    for i in range(6):
        sl.check("SET", "k", str(i))
    sl.check("CONFIG", "SET", "slowlog-max-len", "3")
    assert sl.check("SLOWLOG", "LEN") == 3  # the CONFIG SET was logged: cut back then
    k, r = entries(sl, "-1")
    assert k == r and len(k) == 3
    sl.check("CONFIG", "SET", "slowlog-max-len", "0")
    assert sl.check("SLOWLOG", "LEN") == 0


def test_negative_threshold_logs_nothing(sl):
    sl.check("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    sl.check("SLOWLOG", "RESET")
    sl.check("DEBUG", "SLEEP", "0.01")
    sl.check("SET", "a", "1")
    assert sl.check("SLOWLOG", "LEN") == 0


def test_threshold_above_zero_logs_the_slow_calls(sl):
    """DEBUG SLEEP (full dispatch) and a slow LRANGE / SORT (Keel's hot path, timed since neither is
    flagged fast) are logged; GET of a short string (fast, untimed on the hot path) is not."""
    sl.keel.call("RPUSH", "big", *[str(i) for i in range(3000)])
    sl.ref.call("RPUSH", "big", *[str(i) for i in range(3000)])
    sl.check("CONFIG", "SET", "slowlog-log-slower-than", "5000")
    sl.check("SLOWLOG", "RESET")
    sl.check("DEBUG", "SLEEP", "0.01")
    assert [e[3] for e in sl.keel.call("SLOWLOG", "GET")] == [[b"DEBUG", b"SLEEP", b"0.01"]]
    assert [e[3] for e in sl.ref.call("SLOWLOG", "GET")] == [[b"DEBUG", b"SLEEP", b"0.01"]]
    # Each server's own speed decides what is slow: a threshold each side's LRANGE passes.
    for c in (sl.keel, sl.ref):
        c.call("CONFIG", "SET", "slowlog-log-slower-than", "1")
        c.call("SLOWLOG", "RESET")
        c.call("LRANGE", "big", "0", "-1")
        c.call("SORT", "big")
        logged = [e[3][0] for e in c.call("SLOWLOG", "GET", "-1")]
        assert b"LRANGE" in logged and b"SORT" in logged, logged


@pytest.mark.parametrize("name, value", [
    ("slowlog-log-slower-than", "-2"), ("slowlog-log-slower-than", "x"), ("slowlog-max-len", "-1"),
])
def test_config_errors(sl, name, value):
    assert isinstance(sl.check("CONFIG", "SET", name, value), Err)
    sl.check("CONFIG", "GET", name)


def test_config_get(sl):
    k, r = sl.both("CONFIG", "GET", "slowlog-*")
    assert dict(zip(k[::2], k[1::2])) == dict(zip(r[::2], r[1::2]))


def test_hot_path_times_what_can_be_slow_and_leaves_set_get_alone():
    """The decision in server/slowlog.py: with a threshold above 0 the hot path times the
    commands not flagged fast (LRANGE, SMEMBERS, SORT, DEL, …) and leaves the fast ones and
    the plain string writes (SET) untouched, so SET/GET cost what they cost before."""
    import server.commands  # noqa: F401
    from engine.registry import FAST, TABLE
    from server.slowlog import time_slow_commands

    time_slow_commands()
    for name, argc in ((b"get", 2), (b"set", 3), (b"incr", 2), (b"lpush", 3), (b"hset", 4)):
        assert FAST[argc][name][0] is TABLE[name].handler, name
    for name, argc in ((b"lrange", 4), (b"smembers", 2), (b"sort", 2), (b"del", 2), (b"keys", 2)):
        assert FAST[argc][name][0] is not TABLE[name].handler, name
