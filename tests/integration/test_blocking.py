"""Blocking pops over real sockets, on Keel and on a real redis-server side by side.

Each scenario runs against both servers with fresh connections: waiters are
parked (``wait_blocked`` polls INFO until the server reports them blocked,
so the order they blocked in is the order they were sent in), a writer
wakes them, and what every connection received is compared, bytes included
where RESP2 and RESP3 differ.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support import Err, RespClient, encode


def _info_field(client: RespClient, field: str) -> int:
    text = client.call("INFO", "clients").decode()
    for line in text.split("\r\n"):
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"INFO clients has no {field}: {text!r}")


def wait_blocked(client: RespClient, n: int, timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while _info_field(client, "blocked_clients") != n:
        assert time.time() < deadline, f"blocked_clients never reached {n}"
        time.sleep(0.005)


def silent(client: RespClient, wait: float = 0.15) -> bool:
    """True when nothing arrives on ``client`` for ``wait`` seconds."""
    client.sock.settimeout(wait)
    try:
        data = client.sock.recv(65536)
    except socket.timeout:
        return True
    finally:
        client.sock.settimeout(10.0)
    client.reader.feed(data)
    return False


def raw_reply(client: RespClient, timeout: float = 5.0) -> bytes:
    """The bytes of exactly the next reply (hiredis finds where it ends)."""
    import hiredis

    probe = hiredis.Reader()
    buf = b""
    client.sock.settimeout(timeout)
    try:
        while True:
            chunk = client.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
            probe.feed(chunk)
            if probe.gets() is not False:
                return buf
    finally:
        client.sock.settimeout(10.0)


@pytest.fixture
def servers(keel, redis_ref):
    """Per test: a function opening a connection to each server; both emptied first."""
    opened = []

    def connect(proto: int = 2):
        pair = []
        for proc in (keel, redis_ref):
            c = proc.client()
            if proto == 3:
                c.call("HELLO", "3")
            opened.append(c)
            pair.append(c)
        return pair

    admin_k, admin_r = connect()
    admin_k.call("FLUSHALL")
    admin_r.call("FLUSHALL")
    yield connect, (admin_k, admin_r)
    for c in opened:
        c.close()


def both(fn):
    """Run ``fn(index)`` for Keel (0) and redis-server (1); assert equal results."""
    k, r = fn(0), fn(1)
    assert k == r, f"keel {k!r} != redis {r!r}"
    return k


# --- order of service -------------------------------------------------------------

def test_waiters_are_served_in_the_order_they_blocked(servers):
    connect, admin = servers
    waiters = [connect() for _ in range(3)]

    def scenario(i):
        for n, w in enumerate(waiters):
            w[i].send_raw(encode(["BRPOP", "q", "0"]))
            wait_blocked(admin[i], n + 1)
        got = []
        for n, v in enumerate(("a", "b", "c")):
            admin[i].call("LPUSH", "q", v)
            got.append(waiters[n][i].read())
            got.append([silent(w[i], 0.03) for w in waiters[n + 1:]])
        return got, _info_field(admin[i], "blocked_clients")

    assert both(scenario) == ([[b"q", b"a"], [True, True], [b"q", b"b"], [True], [b"q", b"c"], []], 0)


def test_one_push_of_three_elements_serves_three_waiters_in_order(servers):
    connect, admin = servers
    waiters = [connect() for _ in range(3)]

    def scenario(i):
        for n, w in enumerate(waiters):
            w[i].send_raw(encode(["BLPOP", "q", "0"]))
            wait_blocked(admin[i], n + 1)
        pushed = admin[i].call("LPUSH", "q", "a", "b", "c")
        return pushed, [w[i].read() for w in waiters], admin[i].call("EXISTS", "q"), \
            _info_field(admin[i], "blocked_clients")

    assert both(scenario) == (3, [[b"q", b"c"], [b"q", b"b"], [b"q", b"a"]], 0, 0)


def test_a_push_serves_only_as_many_waiters_as_it_has_elements(servers):
    connect, admin = servers
    waiters = [connect() for _ in range(3)]

    def scenario(i):
        for n, w in enumerate(waiters):
            w[i].send_raw(encode(["BLPOP", "q", "0"]))
            wait_blocked(admin[i], n + 1)
        admin[i].call("RPUSH", "q", "x", "y")
        served = [waiters[0][i].read(), waiters[1][i].read()]
        third_waits = silent(waiters[2][i])
        left = _info_field(admin[i], "blocked_clients")
        admin[i].call("RPUSH", "q", "z")
        return served, third_waits, left, waiters[2][i].read()

    assert both(scenario) == ([[b"q", b"x"], [b"q", b"y"]], True, 1, [b"q", b"z"])


def test_first_key_in_the_commands_order_that_has_elements_serves(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        admin[i].call("RPUSH", "b", "1")
        now = w[i].call("BLPOP", "a", "b", "c", "0")
        w[i].send_raw(encode(["BRPOP", "a", "b", "c", "0"]))
        wait_blocked(admin[i], 1)
        admin[i].call("RPUSH", "c", "3")
        return now, w[i].read()

    assert both(scenario) == ([b"b", b"1"], [b"c", b"3"])


def test_pipelined_push_then_pop_lets_the_waiter_take_the_element_first(servers):
    # The waiter is served right after the push, before the writer's next command.
    connect, admin = servers
    w, writer = connect(), connect()

    def scenario(i):
        w[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        replies = writer[i].pipeline([["RPUSH", "q", "x"], ["LPOP", "q"], ["RPUSH", "q", "y"]])
        return replies, w[i].read(), admin[i].call("LRANGE", "q", "0", "-1")

    assert both(scenario) == ([1, None, 1], [b"q", b"x"], [b"y"])


def test_requests_sent_while_blocked_run_after_the_reply(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        w[i].send_raw(encode(["BLPOP", "q", "0"]) + encode(["PING"]) + encode(["LLEN", "q"]))
        wait_blocked(admin[i], 1)
        quiet = silent(w[i])
        w[i].send_raw(encode(["ECHO", "later"]))
        still_quiet = silent(w[i])
        admin[i].call("RPUSH", "q", "x", "y")
        return quiet, still_quiet, [w[i].read() for _ in range(4)]

    assert both(scenario) == (True, True, [[b"q", b"x"], b"PONG", 1, b"later"])


# --- timeouts -----------------------------------------------------------------------

@pytest.mark.parametrize("proto,expected", [(2, b"*-1\r\n"), (3, b"_\r\n")])
@pytest.mark.parametrize("command", [
    ["BLPOP", "q", "0.2"], ["BRPOP", "q", "p", "0.2"], ["BLMOVE", "q", "d", "LEFT", "RIGHT", "0.2"],
    ["BRPOPLPUSH", "q", "d", "0.2"], ["BLMPOP", "0.2", "2", "q", "p", "LEFT"], ["BZPOPMIN", "z", "0.2"],
    ["BZPOPMAX", "z", "0.2"], ["BZMPOP", "0.2", "1", "z", "MIN", "COUNT", "2"],
])
def test_a_decimal_timeout_answers_a_nil_array(servers, command, proto, expected):
    connect, _ = servers
    (w,) = [connect(proto)]

    def scenario(i):
        t0 = time.time()
        w[i].send_raw(encode(command))
        reply = raw_reply(w[i])
        return reply, 0.19 <= time.time() - t0 < 1.0

    assert both(scenario) == (expected, True)


def test_zero_waits_until_a_later_push(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        w[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        quiet = silent(w[i], 0.5)
        admin[i].call("RPUSH", "q", "late")
        return quiet, w[i].read()

    assert both(scenario) == (True, [b"q", b"late"])


@pytest.mark.parametrize("timeout", ["-1", "-0.5", "abc", "1 ", " 1", "nan", "", "1e-5000"])
def test_bad_timeouts_are_refused_like_redis(servers, timeout):
    connect, admin = servers

    def scenario(i):
        admin[i].call("RPUSH", "q", "x")
        return [admin[i].call(*c) for c in (
            ["BLPOP", "q", timeout], ["BRPOP", "q", timeout], ["BRPOPLPUSH", "q", "d", timeout],
            ["BLMOVE", "q", "d", "LEFT", "LEFT", timeout], ["BLMPOP", timeout, "1", "q", "LEFT"],
            ["BZPOPMIN", "q", timeout], ["BZMPOP", timeout, "1", "q", "MAX"], ["LLEN", "q"])]

    replies = both(scenario)
    assert all(isinstance(r, Err) for r in replies[:-1]) and replies[-1] == 1  # nothing popped


def test_argument_errors_come_before_the_timeout_in_redis_order(servers):
    connect, admin = servers

    def scenario(i):
        return [admin[i].call(*c) for c in (
            ["BLMPOP", "x", "0", "q", "LEFT"], ["BLMPOP", "x", "1", "q", "UP"], ["BLMPOP", "-1", "1", "q", "LEFT"],
            ["BLMPOP", "0", "1", "q", "LEFT", "COUNT", "0"], ["BZMPOP", "x", "1", "q", "MIN", "COUNT", "-1"],
            ["BZMPOP", "0", "2", "q", "MIN"], ["BLMOVE", "q", "d", "UP", "LEFT", "x"],
            ["BLMOVE", "q", "d", "LEFT", "LEFT", "x"], ["BLPOP", "q"], ["BLMPOP", "0", "1", "q"])]

    assert both(scenario)[:3] == [Err("ERR numkeys should be greater than 0"), Err("ERR syntax error"),
                                  Err("ERR timeout is negative")]


# --- disconnects and CLIENT UNBLOCK -------------------------------------------------

def test_a_client_that_disconnects_while_blocked_is_forgotten(servers):
    connect, admin = servers
    gone, stays = connect(), connect()

    def scenario(i):
        gone[i].send_raw(encode(["BLPOP", "q", "0"]))
        stays[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 2)
        gone[i].close()
        wait_blocked(admin[i], 1)
        admin[i].call("RPUSH", "q", "a", "b")
        return stays[i].read(), admin[i].call("LRANGE", "q", "0", "-1")

    assert both(scenario) == ([b"q", b"a"], [b"b"])


def _client_id(c: RespClient) -> int:
    return c.call("CLIENT", "ID")


@pytest.mark.parametrize("proto", [2, 3])
def test_client_unblock_timeout_and_error(servers, proto):
    connect, admin = servers
    w = connect(proto)
    ids = [_client_id(w[0]), _client_id(w[1])]

    def scenario(i):
        w[i].send_raw(encode(["BLMOVE", "q", "d", "LEFT", "LEFT", "0"]))
        wait_blocked(admin[i], 1)
        as_timeout = admin[i].call("CLIENT", "UNBLOCK", ids[i], "TIMEOUT"), raw_reply(w[i])
        w[i].send_raw(encode(["BZPOPMIN", "z", "0"]))
        wait_blocked(admin[i], 1)
        as_error = admin[i].call("CLIENT", "UNBLOCK", ids[i], "error"), raw_reply(w[i])
        w[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        default = admin[i].call("CLIENT", "UNBLOCK", ids[i]), raw_reply(w[i])
        not_blocked = admin[i].call("CLIENT", "UNBLOCK", ids[i]), admin[i].call("CLIENT", "UNBLOCK", 999999)
        return as_timeout, as_error, default, not_blocked, w[i].call("PING"), _info_field(admin[i], "blocked_clients")

    nil = b"*-1\r\n" if proto == 2 else b"_\r\n"
    assert both(scenario) == ((1, nil), (1, b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"), (1, nil),
                              (0, 0), b"PONG", 0)


def test_client_unblock_argument_errors(servers):
    _, admin = servers

    def scenario(i):
        return [admin[i].call(*c) for c in (["CLIENT", "UNBLOCK", "x"], ["CLIENT", "UNBLOCK", "1", "later"],
                                            ["CLIENT", "UNBLOCK", "x", "later"], ["CLIENT", "UNBLOCK", "-1"])]

    assert both(scenario) == [Err("ERR value is not an integer or out of range"),
                              Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
                              Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"), 0]


# --- BLMOVE chains and keys others wait on -----------------------------------------

def test_blmove_chain_serves_every_link_in_one_pass(servers):
    connect, admin = servers
    a, b, c = connect(), connect(), connect()

    def scenario(i):
        a[i].send_raw(encode(["BLMOVE", "s", "d", "RIGHT", "LEFT", "0"]))
        wait_blocked(admin[i], 1)
        b[i].send_raw(encode(["BRPOPLPUSH", "d", "e", "0"]))
        wait_blocked(admin[i], 2)
        c[i].send_raw(encode(["BLPOP", "e", "0"]))
        wait_blocked(admin[i], 3)
        admin[i].call("RPUSH", "s", "x")
        return a[i].read(), b[i].read(), c[i].read(), [admin[i].call("EXISTS", k) for k in ("s", "d", "e")]

    assert both(scenario) == (b"x", b"x", [b"e", b"x"], [0, 0, 0])


def test_lmove_onto_a_key_others_wait_on_serves_them(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        admin[i].call("RPUSH", "src", "1", "2")
        w[i].send_raw(encode(["BLMPOP", "0", "2", "nope", "dst", "RIGHT", "COUNT", "5"]))
        wait_blocked(admin[i], 1)
        moved = admin[i].call("LMOVE", "src", "dst", "LEFT", "LEFT")
        return moved, w[i].read(), admin[i].call("LRANGE", "src", "0", "-1")

    assert both(scenario) == (b"1", [b"dst", [b"1"]], [b"2"])


def test_blmove_onto_a_key_of_another_type_answers_wrongtype_when_served(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        admin[i].call("SET", "dst", "string")
        w[i].send_raw(encode(["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]))
        wait_blocked(admin[i], 1)
        admin[i].call("RPUSH", "src", "x")
        return w[i].read(), admin[i].call("LRANGE", "src", "0", "-1"), _info_field(admin[i], "blocked_clients")

    assert both(scenario) == (Err("WRONGTYPE Operation against a key holding the wrong kind of value"), [b"x"], 0)


# --- types ---------------------------------------------------------------------------

def test_wrongtype_when_the_key_holds_another_type_at_call_time(servers):
    _, admin = servers

    def scenario(i):
        admin[i].call("SET", "s", "x")
        admin[i].call("ZADD", "z", "1", "m")
        admin[i].call("RPUSH", "l", "v")
        return [admin[i].call(*c) for c in (
            ["BLPOP", "missing", "s", "0"], ["BRPOP", "s", "l", "0"], ["BLPOP", "l", "s", "0"],
            ["BLMOVE", "s", "d", "LEFT", "LEFT", "0"], ["BRPOPLPUSH", "z", "d", "0"],
            ["BLMPOP", "0", "2", "missing", "z", "LEFT"], ["BZPOPMIN", "l2", "s", "0"],
            ["BZMPOP", "0", "1", "s", "MIN"], ["RPUSH", "l", "w"], ["BLMOVE", "l", "s", "LEFT", "LEFT", "0"],
            ["LLEN", "l"])]

    wrong = Err("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert both(scenario) == [wrong, wrong, [b"l", b"v"], wrong, wrong, wrong, wrong, wrong, 1, wrong, 1]


def test_a_key_deleted_or_given_another_type_keeps_its_waiters_waiting(servers):
    connect, admin = servers
    lw, zw = connect(), connect()

    def scenario(i):
        lw[i].send_raw(encode(["BLPOP", "k", "0"]))
        zw[i].send_raw(encode(["BZPOPMIN", "k", "0"]))
        wait_blocked(admin[i], 2)
        admin[i].call("SET", "k", "string")
        admin[i].call("DEL", "k")
        admin[i].call("HSET", "k", "f", "v")
        admin[i].call("DEL", "k")
        waiting = silent(lw[i], 0.05), silent(zw[i], 0.05), _info_field(admin[i], "blocked_clients")
        admin[i].call("ZADD", "k", "2", "m")
        z = zw[i].read()
        admin[i].call("RPUSH", "k", "1")
        return waiting, z, lw[i].read()

    assert both(scenario) == ((True, True, 2), [b"k", b"m", b"2"], [b"k", b"1"])


def test_a_list_pushed_and_emptied_by_one_pipeline_serves_only_what_is_left(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        w[i].send_raw(encode(["BLPOP", "k", "0"]))
        wait_blocked(admin[i], 1)
        admin[i].pipeline([["RPUSH", "k", "a"], ["RPUSH", "k", "b"]])
        return w[i].read(), admin[i].call("LRANGE", "k", "0", "-1")

    assert both(scenario) == ([b"k", b"a"], [b"b"])


@pytest.mark.parametrize("proto", [2, 3])
def test_sorted_set_waiters_get_redis_replies_in_each_protocol(servers, proto):
    connect, admin = servers
    a, b, c = connect(proto), connect(proto), connect(proto)

    def scenario(i):
        # One at a time: the order they block in decides who is served first.
        a[i].send_raw(encode(["BZPOPMIN", "z1", "z2", "0"]))
        wait_blocked(admin[i], 1)
        b[i].send_raw(encode(["BZPOPMAX", "z2", "0"]))
        wait_blocked(admin[i], 2)
        c[i].send_raw(encode(["BZMPOP", "0", "2", "z1", "z2", "MAX", "COUNT", "10"]))
        wait_blocked(admin[i], 3)
        admin[i].call("ZADD", "z2", "1.5", "a", "2", "b", "3", "c", "-inf", "d")
        return raw_reply(a[i]), raw_reply(b[i]), raw_reply(c[i]), admin[i].call("EXISTS", "z2")

    replies = both(scenario)
    assert replies[3] == 0 and replies[1] == (b"*3\r\n$2\r\nz2\r\n$1\r\nc\r\n$1\r\n3\r\n" if proto == 2
                                              else b"*3\r\n$2\r\nz2\r\n$1\r\nc\r\n,3\r\n")


@pytest.mark.parametrize("proto", [2, 3])
def test_list_waiters_get_redis_replies_in_each_protocol(servers, proto):
    connect, admin = servers
    a, b, c = connect(proto), connect(proto), connect(proto)

    def scenario(i):
        a[i].send_raw(encode(["BLMPOP", "0", "1", "l", "LEFT", "COUNT", "2"]))
        wait_blocked(admin[i], 1)
        b[i].send_raw(encode(["BLMOVE", "l", "d", "RIGHT", "RIGHT", "0"]))
        wait_blocked(admin[i], 2)
        c[i].send_raw(encode(["BRPOP", "l", "0"]))
        wait_blocked(admin[i], 3)
        admin[i].call("RPUSH", "l", "1", "2", "3", "4", "5")
        return raw_reply(a[i]), raw_reply(b[i]), raw_reply(c[i]), admin[i].call("LRANGE", "l", "0", "-1")

    assert both(scenario)[3] == [b"3"]


# --- INFO and CLIENT LIST --------------------------------------------------------------

def test_info_blocked_clients_and_client_list_flag(servers):
    connect, admin = servers
    forever, timed = connect(), connect()

    def scenario(i):
        before = _info_field(admin[i], "blocked_clients"), _info_field(admin[i], "clients_in_timeout_table")
        forever[i].call("CLIENT", "SETNAME", "forever")
        timed[i].call("CLIENT", "SETNAME", "timed")
        forever[i].send_raw(encode(["BLPOP", "q", "0"]))
        timed[i].send_raw(encode(["BZPOPMIN", "z", "30"]))
        wait_blocked(admin[i], 2)
        during = _info_field(admin[i], "blocked_clients"), _info_field(admin[i], "clients_in_timeout_table")
        flags = {}
        for line in admin[i].call("CLIENT", "LIST").decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" "))
            flags[fields["name"]] = (fields["flags"], fields["cmd"])
        admin[i].call("RPUSH", "q", "x")
        admin[i].call("ZADD", "z", "1", "m")
        forever[i].read()
        timed[i].read()
        after = _info_field(admin[i], "blocked_clients"), _info_field(admin[i], "clients_in_timeout_table")
        return before, during, flags["forever"], flags["timed"], after

    assert both(scenario) == ((0, 0), (2, 1), ("b", "blpop"), ("b", "bzpopmin"), (0, 0))


def test_commandstats_count_a_blocked_call_once(servers):
    connect, admin = servers
    (w,) = [connect()]

    def calls(i):
        for line in admin[i].call("INFO", "commandstats").decode().split("\r\n"):
            if line.startswith("cmdstat_brpop:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    def scenario(i):
        admin[i].call("CONFIG", "RESETSTAT")
        w[i].send_raw(encode(["BRPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        during = calls(i)
        admin[i].call("RPUSH", "q", "x")
        w[i].read()
        w[i].call("BRPOP", "q", "0.01")
        return during, calls(i)

    # Redis 7.2 counts the call when its wait ends, 7.0 when it blocked: both once.
    (keel_during, keel_after), (_, ref_after) = scenario(0), scenario(1)
    assert keel_during == 0 and keel_after == ref_after == 2
