"""CLIENT: ID, GETNAME/SETNAME, SETINFO, INFO, LIST, KILL, REPLY, HELP."""

from __future__ import annotations

import time

import pytest

import server.commands  # noqa: F401
from engine.registry import COMMANDS
from tests.support import Err, KeelProcess, help_subcommands


def _fields(line: bytes) -> dict:
    return dict(part.split(b"=", 1) for part in line.split())


def test_client_id_is_unique_and_increasing(keel):
    a, b = keel.client(), keel.client()
    try:
        ia, ib = a.call("CLIENT", "ID"), b.call("CLIENT", "ID")
        assert isinstance(ia, int) and ib > ia
    finally:
        a.close()
        b.close()


def test_setname_getname_round_trip(pair):
    pair.check("CLIENT", "GETNAME")
    pair.check("CLIENT", "SETNAME", "worker-1")
    pair.check("CLIENT", "GETNAME")
    pair.check("CLIENT", "SETNAME", "")
    pair.check("CLIENT", "GETNAME")


@pytest.mark.parametrize("name", ["a b", "new\nline", "tab\t", "\x01"])
def test_setname_rejects_spaces_and_control_characters(pair, name):
    pair.check("CLIENT", "SETNAME", name)


def test_setname_and_getname_arity(pair):
    pair.check("CLIENT", "SETNAME")
    pair.check("CLIENT", "SETNAME", "a", "b")
    pair.check("CLIENT", "GETNAME", "x")
    pair.check("CLIENT", "ID", "x")


def test_setinfo_shows_in_client_info(k):
    assert k.call("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"OK"
    assert k.call("CLIENT", "SETINFO", "lib-ver", "5.0") == b"OK"
    f = _fields(k.call("CLIENT", "INFO"))
    assert f[b"lib-name"] == b"redis-py" and f[b"lib-ver"] == b"5.0"


def test_setinfo_errors(k):
    assert k.call("CLIENT", "SETINFO", "color", "red") == Err("ERR Unrecognized option 'color'")
    assert k.call("CLIENT", "SETINFO", "lib-name", "a b") == Err(
        "ERR lib-name cannot contain spaces, newlines or special characters.")
    assert k.call("CLIENT", "SETINFO", "lib-name") == Err("ERR wrong number of arguments for 'client|setinfo' command")


def test_client_info_describes_this_connection(k):
    k.call("CLIENT", "SETNAME", "me")
    k.call("SELECT", "2")
    line = k.call("CLIENT", "INFO")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    f = _fields(line)
    assert int(f[b"id"]) == k.call("CLIENT", "ID")
    assert f[b"name"] == b"me" and f[b"db"] == b"2" and f[b"resp"] == b"2" and f[b"user"] == b"default"
    k.call("SELECT", "0")


def test_client_list_has_one_line_per_connection(k, keel):
    other = keel.client()
    try:
        other_id = other.call("CLIENT", "ID")
        ids = {int(_fields(line)[b"id"]) for line in k.call("CLIENT", "LIST").splitlines()}
        assert {k.call("CLIENT", "ID"), other_id} <= ids
    finally:
        other.close()


def test_client_list_by_id_and_type(k, keel):
    other = keel.client()
    try:
        oid = other.call("CLIENT", "ID")
        lines = k.call("CLIENT", "LIST", "ID", str(oid), "999999").splitlines()
        assert [int(_fields(line)[b"id"]) for line in lines] == [oid]
        assert len(k.call("CLIENT", "LIST", "TYPE", "normal").splitlines()) >= 2
        assert k.call("CLIENT", "LIST", "TYPE", "replica") == b""
        assert k.call("CLIENT", "LIST", "TYPE", "PUBSUB") == b""
    finally:
        other.close()


@pytest.mark.parametrize("args", [
    ("TYPE", "foo"), ("ID", "x"), ("ID", "1", "-x"), ("FOO",), ("ID",), ("TYPE",), ("TYPE", "normal", "x"),
])
def test_client_list_errors(pair, args):
    pair.check("CLIENT", "LIST", *args)


def test_client_list_by_unknown_id_is_empty(pair):
    pair.check("CLIENT", "LIST", "ID", "0")


def _closed(c) -> bool:
    return c.recv_all(timeout=2.0) == b""


def test_kill_by_id_closes_that_connection(k, keel):
    victim = keel.client()
    vid = victim.call("CLIENT", "ID")
    assert k.call("CLIENT", "KILL", "ID", str(vid)) == 1
    assert _closed(victim)
    assert k.call("CLIENT", "KILL", "ID", str(vid)) == 0
    victim.close()


def test_kill_old_form_by_address(k, keel):
    victim = keel.client()
    addr = _fields(victim.call("CLIENT", "INFO"))[b"addr"]
    assert k.call("CLIENT", "KILL", addr) == b"OK"
    assert _closed(victim)
    victim.close()


def test_kill_by_addr_and_laddr_filters(k, keel):
    victim = keel.client()
    f = _fields(victim.call("CLIENT", "INFO"))
    assert k.call("CLIENT", "KILL", "ADDR", f[b"addr"], "LADDR", "1.2.3.4:1") == 0
    assert k.call("CLIENT", "KILL", "ADDR", f[b"addr"], "LADDR", f[b"laddr"]) == 1
    assert _closed(victim)
    victim.close()


def test_kill_skipme_spares_the_caller_by_default(keel):
    me = keel.client()
    try:
        my_id = me.call("CLIENT", "ID")
        assert me.call("CLIENT", "KILL", "ID", str(my_id)) == 0
        assert me.call("PING") == b"PONG"
    finally:
        me.close()


def test_kill_self_with_skipme_no_replies_then_closes(keel):
    me = keel.client()
    my_id = me.call("CLIENT", "ID")
    me.send_raw(b"*6\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$2\r\nID\r\n$%d\r\n%d\r\n$6\r\nSKIPME\r\n$2\r\nno\r\n"
                % (len(str(my_id)), my_id))
    assert me.recv_all(timeout=2.0) == b":1\r\n"
    me.close()


def test_kill_by_user_default():
    # Its own server: this kills every other connection.
    p = KeelProcess().start()
    a, me = p.client(), p.client()
    try:
        assert me.call("CLIENT", "KILL", "USER", "default") == 1
        assert _closed(a)
        assert me.call("PING") == b"PONG"
    finally:
        a.close()
        me.close()
        p.cleanup()


@pytest.mark.parametrize("args", [
    ("1.2.3.4:5",), ("ID", "x"), ("ID", "0"), ("ID", "-1"), ("USER", "bob"), ("FOO", "x"), ("ID",),
    ("SKIPME", "maybe"), ("TYPE", "foo"), ("ID", "1", "SKIPME"),
])
def test_kill_errors(pair, args):
    pair.check("CLIENT", "KILL", *args)


def test_reply_off_then_on(k):
    k.send_raw(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n"
               b"*2\r\n$4\r\nECHO\r\n$6\r\nhidden\r\n"
               b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n")
    assert k.read() == b"OK"
    assert k.call("ECHO", "seen") == b"seen"


def test_reply_skip_drops_the_next_reply_only(k):
    k.send_raw(b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"
               b"*2\r\n$4\r\nECHO\r\n$6\r\nhidden\r\n"
               b"*2\r\n$4\r\nECHO\r\n$4\r\nseen\r\n")
    assert k.read() == b"seen"


def test_reply_errors(pair):
    pair.check("CLIENT", "REPLY", "MAYBE")
    pair.check("CLIENT", "REPLY")


def test_unknown_subcommand_and_help(pair):
    pair.check("CLIENT", "NOSUCH")
    pair.check("CLIENT")
    pair.check("CLIENT", "HELP", "x")
    assert help_subcommands(pair.keel, "CLIENT") == set(COMMANDS["client"].subcommands)


def test_client_list_age_and_idle_are_numbers(k):
    time.sleep(0.01)
    f = _fields(k.call("CLIENT", "INFO"))
    assert int(f[b"age"]) >= 0 and int(f[b"idle"]) >= 0
