"""Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, TIME, DEBUG, SHUTDOWN."""

from __future__ import annotations

import time

import pytest

from server.commands.admin import DEBUG_SUBCOMMANDS
from tests.support import Err, KeelProcess, Pair, RedisProcess, help_subcommands


# --- PING, ECHO, TIME --------------------------------------------------------------

def test_ping_replies_pong_or_the_message(pair):
    pair.check("PING")
    pair.check("PING", "hello")
    pair.check("PING", "a", "b")


def test_ping_in_resp3(k):
    k.call("HELLO", "3")
    assert k.call("PING") == b"PONG"
    assert k.call("PING", "x") == b"x"


def test_echo_returns_its_argument(pair):
    pair.check("ECHO", "hello world")
    pair.check("ECHO", "")
    pair.check("ECHO")
    pair.check("ECHO", "a", "b")


def test_time_is_seconds_and_microseconds_now(pair):
    sec, usec = pair.keel.call("TIME")
    assert abs(int(sec) - time.time()) < 5
    assert 0 <= int(usec) < 1_000_000
    pair.check("TIME", "extra")


# --- QUIT, RESET --------------------------------------------------------------------

def test_quit_replies_ok_then_closes(keel):
    c = keel.client()
    c.send_raw(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")
    assert c.recv_all() == b"+OK\r\n"
    c.close()


def test_reset_restores_the_initial_connection_state(k):
    k.call("SELECT", "3")
    k.call("CLIENT", "SETNAME", "worker")
    k.call("HELLO", "3")
    assert k.call("RESET") == b"RESET"
    assert k.call("CLIENT", "GETNAME") is None
    assert b" db=0 " in k.call("CLIENT", "INFO")
    assert b" resp=2 " in k.call("CLIENT", "INFO")
    # Back in RESP2: HELLO's reply is a flat array again.
    assert isinstance(k.call("HELLO"), list)


def test_reset_turns_replies_back_on(k):
    k.send_raw(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n")
    assert k.call("RESET") == b"RESET"
    assert k.call("PING") == b"PONG"


def test_reset_wrong_arity(pair):
    pair.check("RESET", "x")


# --- HELLO --------------------------------------------------------------------------

def test_hello_reply_has_redis_fields(pair):
    keel, ref = pair.both("HELLO")
    assert keel[0::2] == ref[0::2]
    fields = dict(zip(keel[0::2], keel[1::2]))
    assert fields[b"server"] == b"redis"
    assert fields[b"version"] == b"7.2.0"
    assert fields[b"proto"] == 2
    assert fields[b"id"] == pair.keel.call("CLIENT", "ID")
    assert fields[b"mode"] == b"standalone" and fields[b"role"] == b"master" and fields[b"modules"] == []


def test_hello_3_switches_to_resp3(keel):
    c = keel.client()
    try:
        c.send_raw(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        reply = c.read()
        assert isinstance(reply, dict) and reply[b"proto"] == 3
        c.send_raw(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$7\r\ntimeout\r\n")
        c.sock.settimeout(2)
        raw = c.sock.recv(1000)
        assert raw.startswith(b"%1\r\n")  # a RESP3 map
    finally:
        c.close()


def test_hello_setname_names_the_connection(k):
    k.call("HELLO", "2", "SETNAME", "conn1")
    assert k.call("CLIENT", "GETNAME") == b"conn1"


@pytest.mark.parametrize("args", [
    ("4",), ("1",), ("x",), ("2", "FOO"), ("2", "AUTH", "a"), ("2", "SETNAME"), ("2", "SETNAME", "a b"),
    ("3", "AUTH", "bob", "pw"),
])
def test_hello_errors(pair, args):
    pair.check("HELLO", *args)


def test_hello_error_leaves_protocol_unchanged(k):
    k.call("HELLO", "3", "FOO")
    assert isinstance(k.call("HELLO"), list)


# --- AUTH ---------------------------------------------------------------------------

def test_auth_without_configured_password(pair):
    pair.check("AUTH", "x")
    pair.check("AUTH", "default", "anything")
    pair.check("AUTH", "bob", "x")
    pair.check("AUTH", "a", "b", "c")
    pair.check("AUTH")


@pytest.fixture(scope="module")
def secured():
    """Keel and redis-server with ``requirepass s3cret`` (set once both are up:
    the readiness probe is an unauthenticated PING)."""
    keel = KeelProcess().start()
    ref = RedisProcess().start() if RedisProcess.available() else None
    for proc in (keel, ref):
        if proc is not None:
            c = proc.client()
            assert c.call("CONFIG", "SET", "requirepass", "s3cret") == b"OK"
            c.close()
    yield keel, ref
    keel.cleanup()
    if ref is not None:
        ref.cleanup()


@pytest.fixture
def spair(secured):
    keel, ref = secured
    if ref is None:
        pytest.skip("redis-server is not installed")
    p = Pair(keel.client(), ref.client())
    yield p
    p.close()


def test_commands_need_auth_when_requirepass_is_set(spair):
    spair.check("GET", "a")
    spair.check("CLIENT", "ID")
    spair.check("SET", "a", "1")


def test_no_auth_commands_pass_before_auth(spair):
    spair.check("HELLO")
    spair.check("HELLO", "3")
    spair.check("AUTH", "wrong")
    spair.check("AUTH", "default", "wrong")
    spair.check("AUTH", "nobody", "s3cret")
    spair.check("HELLO", "2", "AUTH", "default", "wrong")
    spair.check("RESET")


def test_auth_with_password_then_commands_run(spair):
    spair.check("AUTH", "s3cret")
    spair.check("SET", "a", "1")
    spair.check("GET", "a")
    spair.check("DEL", "a")


def test_auth_default_user_form(spair):
    spair.check("AUTH", "default", "s3cret")
    spair.check("PING")


def test_hello_auth_authenticates_and_switches(secured):
    keel, _ = secured
    c = keel.client()
    try:
        reply = c.call("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "x")
        assert reply[b"proto"] == 3
        assert c.call("CLIENT", "GETNAME") == b"x"
    finally:
        c.close()


def test_failed_auth_keeps_an_authenticated_client_authenticated(secured):
    keel, _ = secured
    c = keel.client()
    try:
        assert c.call("AUTH", "s3cret") == b"OK"
        assert c.call("AUTH", "wrong") == Err("WRONGPASS invalid username-password pair or user is disabled.")
        assert c.call("PING") == b"PONG"
    finally:
        c.close()


def test_reset_logs_the_client_out_when_a_password_is_required(secured):
    keel, _ = secured
    c = keel.client()
    try:
        c.call("AUTH", "s3cret")
        assert c.call("RESET") == b"RESET"
        assert c.call("PING") == Err("NOAUTH Authentication required.")
    finally:
        c.close()


def test_pipelined_commands_after_auth_take_the_fast_path(secured):
    keel, _ = secured
    c = keel.client()
    try:
        replies = c.pipeline([("PING",), ("AUTH", "s3cret"), ("PING",), ("ECHO", "x")])
        assert replies == [Err("NOAUTH Authentication required."), b"OK", b"PONG", b"x"]
    finally:
        c.close()


def test_config_set_requirepass_applies_to_new_connections():
    p = KeelProcess().start()
    try:
        admin = p.client()
        assert admin.call("CONFIG", "SET", "requirepass", "pw") == b"OK"
        assert admin.call("PING") == b"PONG"  # already connected: stays authenticated
        fresh = p.client()
        assert fresh.call("PING") == Err("NOAUTH Authentication required.")
        assert fresh.call("AUTH", "pw") == b"OK"
        assert admin.call("CONFIG", "SET", "requirepass", "") == b"OK"
        assert p.client().call("PING") == b"PONG"
    finally:
        p.cleanup()


# --- DEBUG --------------------------------------------------------------------------

def test_debug_sleep_blocks_the_server(k, keel):
    other = keel.client()
    try:
        t0 = time.monotonic()
        k.send_raw(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.3\r\n")
        time.sleep(0.05)
        assert other.call("PING") == b"PONG"
        assert time.monotonic() - t0 >= 0.25
        assert k.read() == b"OK"
    finally:
        other.close()


def test_debug_sleep_accepts_anything_like_atof(k):
    assert k.call("DEBUG", "SLEEP", "x") == b"OK"
    assert k.call("DEBUG", "SLEEP", "0") == b"OK"


def test_debug_set_active_expire_stops_background_expiry(k):
    try:
        assert k.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"OK"
        k.call("SET", "a", "1")
        assert k.call("PEXPIRE", "a", "50") == 1
        time.sleep(0.4)
        # Still stored: DBSIZE counts it, nothing deleted it in the background.
        assert k.call("DBSIZE") == 1
        assert k.call("DEBUG", "SET-ACTIVE-EXPIRE", "1") == b"OK"
        deadline = time.time() + 3
        while k.call("DBSIZE") and time.time() < deadline:
            time.sleep(0.05)
        assert k.call("DBSIZE") == 0
    finally:
        k.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_debug_errors(k):
    assert k.call("DEBUG", "NOSUCH") == Err(
        "ERR unknown subcommand or wrong number of arguments for 'NOSUCH'. Try DEBUG HELP.")
    assert k.call("DEBUG", "SLEEP") == Err(
        "ERR unknown subcommand or wrong number of arguments for 'SLEEP'. Try DEBUG HELP.")
    assert k.call("DEBUG") == Err("ERR wrong number of arguments for 'debug' command")
    # (SET-DISABLE-DENY-SCRIPTS is missing from Redis's DEBUG HELP too.)
    assert help_subcommands(k, "DEBUG") == set(DEBUG_SUBCOMMANDS) - {b"set-disable-deny-scripts"}


def test_debug_refused_when_disabled():
    p = KeelProcess("--enable-debug-command", "no").start()
    try:
        assert p.client().call("DEBUG", "HELP").startswith("ERR DEBUG command not allowed.")
    finally:
        p.cleanup()


# --- SHUTDOWN -----------------------------------------------------------------------

def test_shutdown_option_errors(pair):
    pair.check("SHUTDOWN", "FOO")
    pair.check("SHUTDOWN", "SAVE", "NOSAVE")
    pair.check("SHUTDOWN", "ABORT")


def test_shutdown_closes_without_reply_and_exits_zero():
    p = KeelProcess().start()
    try:
        c = p.client()
        c.send_raw(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        assert c.recv_all(timeout=5) == b""
        assert p.proc.wait(10) == 0
    finally:
        p.cleanup()
