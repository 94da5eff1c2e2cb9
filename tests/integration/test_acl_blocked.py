"""A client blocked (BLPOP, BLMOVE) while its user's permissions change.

Redis 7.2 reprocesses a blocked command when a key can serve it, ACL check
included: a user that lost the command or the key since it blocked gets
NOPERM (logged in ACL LOG, counted), takes nothing, and the clients queued
after it are served. Redis 7.0 (the redis-server installed here) served it
unchecked, so those cases are asserted on Keel alone. What both versions do
alike is compared side by side: ACL DELUSER disconnects the blocked client,
``off`` and ``resetpass`` leave it blocked and served, a wait that times out
answers nil.
"""

from __future__ import annotations

import time

import pytest

from tests.support import Err, RespClient, encode

USER = "blk_u"
RULES = ("reset", "on", ">p", "~l*", "+blpop", "+blmove", "+lpush", "+ping")


def _blocked(port: int, *cmd) -> RespClient:
    """A client of USER that sent ``cmd`` and is blocked in it."""
    c = RespClient(port, timeout=5)
    assert c.call("AUTH", USER, "p") == b"OK"
    c.send_raw(encode(cmd))
    return c


def _wait_blocked(admin: RespClient, n: int = 1) -> None:
    for _ in range(200):
        info = admin.call("INFO", "clients").decode()
        if f"blocked_clients:{n}" in info:
            return
        time.sleep(0.005)
    raise AssertionError("the client did not block")


def _rejected_blpop(admin: RespClient) -> int:
    for line in admin.call("INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_blpop:"):
            return int(line.split("rejected_calls=")[1].split(",")[0])
    return 0


@pytest.fixture
def admin(keel):
    c = keel.client()
    c.call("ACL", "SETUSER", USER, *RULES)
    c.call("DEL", "l1", "l2")
    c.call("ACL", "LOG", "RESET")
    yield c
    c.call("ACL", "DELUSER", USER)
    c.call("DEL", "l1", "l2")
    c.close()


@pytest.mark.parametrize("change, error", [
    (("-blpop",), "NOPERM User blk_u has no permissions to run the 'blpop' command"),
    (("-@all",), "NOPERM User blk_u has no permissions to run the 'blpop' command"),
    (("resetkeys", "~other"), "NOPERM No permissions to access a key"),
    (("resetkeys", "%R~l*"), "NOPERM No permissions to access a key"),  # BLPOP also deletes: needs W
])
def test_a_waiter_that_lost_its_permission_gets_noperm_when_served(keel, admin, change, error):
    c = _blocked(keel.port, "BLPOP", "l1", "5")
    try:
        _wait_blocked(admin)
        assert admin.call("ACL", "SETUSER", USER, *change) == b"OK"
        before = admin.call("INFO", "stats").decode()
        rejected = _rejected_blpop(admin)
        assert admin.call("LPUSH", "l1", "x") == 1
        assert c.read() == Err(error)
        assert admin.call("LLEN", "l1") == 1  # it took nothing
        entry = dict(zip(*[iter(admin.call("ACL", "LOG", "1")[0])] * 2))
        assert (entry[b"reason"], entry[b"context"], entry[b"username"]) == (
            b"command" if "command" in error else b"key", b"toplevel", USER.encode())
        assert entry[b"object"] == (b"blpop" if "command" in error else b"l1")
        field = "acl_access_denied_cmd" if "command" in error else "acl_access_denied_key"
        after = admin.call("INFO", "stats").decode()
        count = [int(t.split(":")[1]) for t in (before, after) for t in t.splitlines() if t.startswith(field)]
        assert count[1] == count[0] + 1
        assert _rejected_blpop(admin) == rejected + 1  # a rejected call, as Redis counts a refusal
        assert admin.call("INFO", "clients").decode().count("blocked_clients:0") == 1
    finally:
        c.close()


def test_the_clients_behind_a_refused_waiter_are_served(keel, admin):
    c = _blocked(keel.port, "BLPOP", "l1", "5")
    other = keel.client(timeout=5)
    try:
        _wait_blocked(admin)
        other.send_raw(encode(("BLPOP", "l1", "5")))  # the default user's
        _wait_blocked(admin, 2)
        admin.call("ACL", "SETUSER", USER, "-blpop")
        admin.call("LPUSH", "l1", "x")
        assert isinstance(c.read(), Err)
        assert other.read() == [b"l1", b"x"]
        assert admin.call("LLEN", "l1") == 0
    finally:
        c.close()
        other.close()


def test_blmove_whose_destination_is_no_longer_permitted_is_refused(keel, admin):
    admin.call("ACL", "SETUSER", USER, "~d*")
    c = _blocked(keel.port, "BLMOVE", "l1", "d1", "LEFT", "LEFT", "5")
    try:
        _wait_blocked(admin)
        admin.call("ACL", "SETUSER", USER, "resetkeys", "~l*")
        admin.call("LPUSH", "l1", "x")
        assert c.read() == Err("NOPERM No permissions to access a key")
        assert admin.call("LRANGE", "l1", "0", "-1") == [b"x"]
        assert admin.call("EXISTS", "d1") == 0
    finally:
        c.close()
        admin.call("DEL", "d1")


def test_a_permission_granted_meanwhile_serves_the_waiter(keel, admin):
    c = _blocked(keel.port, "BLPOP", "l1", "5")
    try:
        _wait_blocked(admin)
        admin.call("ACL", "SETUSER", USER, "+get", "~other")
        admin.call("LPUSH", "l1", "x")
        assert c.read() == [b"l1", b"x"]
    finally:
        c.close()


def _scenario(port: int, change: tuple, push: bool = True, timeout: str = "5") -> list:
    admin = RespClient(port)
    admin.call("ACL", "SETUSER", USER, *RULES)
    admin.call("DEL", "l1")
    c = _blocked(port, "BLPOP", "l1", timeout)
    out = []
    try:
        _wait_blocked(admin)
        out.append(admin.call("ACL", *change))
        if push:
            out.append(admin.call("LPUSH", "l1", "x"))
        try:
            out.append(c.read())
            out.append(c.call("PING"))
        except ConnectionError as e:
            out.append(str(e))
        out.append(admin.call("LLEN", "l1"))
    finally:
        c.close()
        admin.call("ACL", "DELUSER", USER)
        admin.call("DEL", "l1")
        admin.close()
    return out


@pytest.mark.parametrize("change", [("DELUSER", USER), ("SETUSER", USER, "off"), ("SETUSER", USER, "resetpass"),
                                    ("SETUSER", USER, "nopass")], ids=lambda c: " ".join(c[:1] + c[2:]))
def test_deluser_off_and_resetpass_as_redis(keel, redis_ref, change):
    assert _scenario(keel.port, change) == _scenario(redis_ref.port, change)


def test_a_refused_waiter_times_out_with_nil_as_redis(keel, redis_ref):
    """A wait that ends by its timeout is not checked again: nil, in both versions."""
    change = ("SETUSER", USER, "-blpop")
    k, r = (_scenario(port, change, push=False, timeout="0.05") for port in (keel.port, redis_ref.port))
    assert k == r == [b"OK", None, b"PONG", 0]
