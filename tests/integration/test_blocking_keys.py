"""Which changes wake a blocked client, on Keel and redis-server side by side:
databases, SWAPDB, FLUSHALL, RENAME, COPY, a store command, repeated keys,
and the key specs COMMAND GETKEYS derives for the blocking commands."""

from __future__ import annotations

import time

from tests.integration.test_blocking import _info_field, both, servers, silent, wait_blocked  # noqa: F401
from tests.support import encode


def test_waiters_are_parked_per_database(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        w[i].call("SELECT", "1")
        w[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        admin[i].call("RPUSH", "q", "db0")
        untouched = silent(w[i], 0.05)
        admin[i].call("SELECT", "1")
        admin[i].call("RPUSH", "q", "db1")
        admin[i].call("SELECT", "0")
        return untouched, w[i].read(), admin[i].call("LRANGE", "q", "0", "-1")

    assert both(scenario) == (True, [b"q", b"db1"], [b"db0"])


def test_swapdb_bringing_a_list_in_serves_the_waiter(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        admin[i].call("SELECT", "1")
        admin[i].call("RPUSH", "q", "from-db1")
        admin[i].call("SELECT", "0")
        w[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        admin[i].call("SWAPDB", "0", "1")
        return w[i].read(), admin[i].call("DBSIZE")

    assert both(scenario) == ([b"q", b"from-db1"], 0)


def test_flushall_keeps_waiters_waiting(servers):
    connect, admin = servers
    (w,) = [connect()]

    def scenario(i):
        admin[i].call("RPUSH", "other", "x")
        w[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        admin[i].call("FLUSHALL")
        waiting = silent(w[i], 0.05), _info_field(admin[i], "blocked_clients")
        admin[i].call("RPUSH", "q", "after")
        return waiting, w[i].read()

    assert both(scenario) == ((True, 1), [b"q", b"after"])


def test_rename_copy_and_store_commands_wake_waiters(servers):
    connect, admin = servers
    a, b, c = connect(), connect(), connect()

    def scenario(i):
        admin[i].call("RPUSH", "tmp", "renamed")
        admin[i].call("ZADD", "zsrc", "5", "copied")
        admin[i].call("RPUSH", "nums", "3", "1", "2")
        a[i].send_raw(encode(["BLPOP", "ra", "0"]))
        b[i].send_raw(encode(["BZPOPMAX", "zc", "0"]))
        c[i].send_raw(encode(["BRPOP", "sorted", "0"]))
        wait_blocked(admin[i], 3)
        admin[i].call("RENAME", "tmp", "ra")
        admin[i].call("COPY", "zsrc", "zc")
        admin[i].call("SORT", "nums", "STORE", "sorted")
        return a[i].read(), b[i].read(), c[i].read(), admin[i].call("LRANGE", "sorted", "0", "-1")

    assert both(scenario) == ([b"ra", b"renamed"], [b"zc", b"copied", b"5"], [b"sorted", b"3"], [b"1", b"2"])


def test_a_key_named_twice_parks_the_client_once(servers):
    connect, admin = servers
    a, b = connect(), connect()

    def scenario(i):
        a[i].send_raw(encode(["BLPOP", "q", "q", "q", "0"]))
        b[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 2)
        admin[i].call("RPUSH", "q", "1", "2")
        return a[i].read(), b[i].read()

    assert both(scenario) == ([b"q", b"1"], [b"q", b"2"])


def test_a_waiter_that_times_out_leaves_the_others_in_place(servers):
    connect, admin = servers
    first, brief, last = connect(), connect(), connect()

    def scenario(i):
        first[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 1)
        brief[i].send_raw(encode(["BLPOP", "q", "0.05"]))
        wait_blocked(admin[i], 2)
        last[i].send_raw(encode(["BLPOP", "q", "0"]))
        wait_blocked(admin[i], 3)
        timed_out = brief[i].read()
        wait_blocked(admin[i], 2)
        admin[i].call("RPUSH", "q", "a", "b")
        return timed_out, first[i].read(), last[i].read()

    assert both(scenario) == (None, [b"q", b"a"], [b"q", b"b"])


def test_many_waiters_on_one_key_are_served_in_order_by_one_push(servers):
    connect, admin = servers
    waiters = [connect() for _ in range(50)]

    def scenario(i):
        for w in waiters:
            w[i].send_raw(encode(["BRPOP", "jobs", "0"]))
        wait_blocked(admin[i], len(waiters))
        # Sent one after the other but parked concurrently: the order they
        # blocked in is the server's, so compare the set and that all are served.
        admin[i].call("LPUSH", "jobs", *[str(n) for n in range(len(waiters))])
        got = sorted(int(w[i].read()[1]) for w in waiters)
        return got, admin[i].call("EXISTS", "jobs")

    assert both(scenario) == (list(range(50)), 0)


def test_command_getkeys_for_the_blocking_commands(servers):
    _, admin = servers

    def scenario(i):
        return [admin[i].call("COMMAND", "GETKEYS", *c) for c in (
            ["BLPOP", "a", "b", "0"], ["BRPOPLPUSH", "s", "d", "0"], ["BLMOVE", "s", "d", "LEFT", "LEFT", "0"],
            ["BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "3"], ["BZPOPMIN", "z", "y", "1"],
            ["BZMPOP", "1", "3", "x", "y", "z", "MIN"])]

    assert both(scenario) == [[b"a", b"b"], [b"s", b"d"], [b"s", b"d"], [b"a", b"b"], [b"z", b"y"],
                              [b"x", b"y", b"z"]]


def test_a_blocked_client_is_not_closed_by_the_idle_timeout(keel, redis_ref):
    for proc in (keel, redis_ref):
        admin = proc.client()
        w = proc.client()
        try:
            admin.call("CONFIG", "SET", "timeout", "1")
            w.send_raw(encode(["BLPOP", "idle-q", "0"]))
            wait_blocked(admin, 1)
            for _ in range(5):  # the admin connection stays active; the waiter sends nothing
                time.sleep(0.5)
                admin.call("PING")
            admin.call("RPUSH", "idle-q", "still-here")
            assert w.read() == [b"idle-q", b"still-here"]
        finally:
            reset = proc.client()
            reset.call("CONFIG", "SET", "timeout", "0")
            reset.call("DEL", "idle-q")
            reset.close()
            admin.close()
            w.close()
