"""CLIENT LIST / CLIENT INFO fields and INFO clients, side by side with redis-server.

Field names and order are compared with a real redis-server 7.0.15, which
prints Redis 7.0's fields: Keel prints those in the same order plus the ones
later versions added where they put them (``watch`` after ``multi``, 7.4;
``lib-name`` and ``lib-ver`` last, 7.2). Values are checked to move as the
client does: qbuf with a request cut short, omem with replies the client does
not read, multi and multi-mem in MULTI, watch, sub/psub/ssub, resp, name, db,
argv-mem of the running command, tot-mem (``Client.memory_usage``) above
them all. Also INFO clients (7.4's fields in order) and CLIENT KILL's TYPE and
MAXAGE filters.
"""

from __future__ import annotations

import time

import pytest

from tests.support import Err, encode

# CLIENT LIST's fields as Redis 7.4 prints them (7.0's, plus watch, lib-name, lib-ver).
FIELDS = ("id addr laddr fd name age idle flags db sub psub ssub multi watch qbuf qbuf-free argv-mem "
          "multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp lib-name lib-ver").split()
NEWER_THAN_70 = {"watch", "lib-name", "lib-ver"}

INFO_CLIENTS = ("connected_clients cluster_connections maxclients client_recent_max_input_buffer "
                "client_recent_max_output_buffer blocked_clients tracking_clients pubsub_clients "
                "watching_clients clients_in_timeout_table total_watched_keys total_blocking_keys "
                "total_blocking_keys_on_nokey").split()


@pytest.fixture(params=["keel", "redis"])
def srv(request, keel_own, redis_own):
    """(name, admin client, connect()): the scenario runs on both servers."""
    proc = keel_own if request.param == "keel" else redis_own
    admin = proc.client()
    admin.call("FLUSHALL")
    clients = []

    def connect():
        c = proc.client()
        clients.append(c)
        return c

    yield request.param, admin, connect
    for c in clients:
        c.close()
    admin.close()


def fields(line: bytes) -> dict:
    return {k.decode(): v for k, v in (f.split(b"=", 1) for f in line.rstrip(b"\n").split(b" "))}


def names(line: bytes) -> list:
    return [f.split(b"=", 1)[0].decode() for f in line.rstrip(b"\n").split(b" ")]


def of(admin, c, cid=None) -> dict:
    cid = cid if cid is not None else c.call("CLIENT", "ID")
    lines = admin.call("CLIENT", "LIST", "ID", str(cid)).splitlines()
    assert len(lines) == 1
    return fields(lines[0])


def poll(fn, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r:
            return r
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.002)


def test_fields_are_redis_fields_in_redis_order(keel_own, redis_own):
    k, r = keel_own.client(), redis_own.client()
    try:
        ours, theirs = names(k.call("CLIENT", "INFO")), names(r.call("CLIENT", "INFO"))
        assert ours == FIELDS
        assert [f for f in ours if f not in NEWER_THAN_70] == theirs
        for line in k.call("CLIENT", "LIST").splitlines():
            assert names(line) == FIELDS
    finally:
        k.close()
        r.close()


def test_a_fresh_connection(srv):
    name, admin, connect = srv
    c = connect()
    f = fields(c.call("CLIENT", "INFO"))
    assert f["flags"] == b"N" and f["db"] == b"0" and f["multi"] == b"-1" and f["cmd"] == b"client|info"
    assert f["argv-mem"] == b"10"  # "client" + "info": the command running now
    assert f["sub"] == f["psub"] == f["ssub"] == f["omem"] == f["oll"] == f["obl"] == b"0"
    assert f["user"] == b"default" and f["redir"] == b"-1" and f["resp"] == b"2" and f["events"] == b"r"
    assert int(f["tot-mem"]) > 1000 and int(f["qbuf-free"]) >= 0
    other = of(c, admin)  # another client, seen from this one: no command running
    assert other["cmd"] == b"client|id" and other["argv-mem"] == b"0"


def test_qbuf_holds_a_request_cut_short(srv):
    name, admin, connect = srv
    c = connect()
    cid = c.call("CLIENT", "ID")
    part = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + b"x" * 60
    c.send_raw(part)
    f = poll(lambda: (lambda f: f if int(f["qbuf"]) else None)(of(admin, None, cid)))
    if name == "keel":
        assert int(f["qbuf"]) == len(part)  # Keel keeps the whole request until it is complete
        info = admin.call("INFO", "clients").decode()
        assert int(info.split("client_recent_max_input_buffer:")[1].split("\r\n")[0]) == len(part)
    c.send_raw(b"x" * 40 + b"\r\n")
    assert c.read() == b"OK"
    after = of(admin, None, cid)
    assert after["qbuf"] == b"0"
    if name == "keel":  # the buffer's memory is counted, and freed with it
        assert int(f["tot-mem"]) - int(after["tot-mem"]) >= len(part)


def test_omem_grows_with_replies_the_client_does_not_read(srv):
    name, admin, connect = srv
    admin.call("SET", "big", "v" * 256 * 1024)
    c = connect()
    cid = c.call("CLIENT", "ID")
    c.send_raw(encode(("GET", "big")) * 64)  # 16 MB of replies, never read
    f = poll(lambda: (lambda f: f if int(f["omem"]) > 1024 * 1024 else None)(of(admin, None, cid)))
    assert int(f["tot-mem"]) > int(f["omem"])
    if name == "redis":
        return  # (Redis shows w only while its write handler is armed, and samples the max from its cron)
    assert f["events"] == b"rw"
    info = admin.call("INFO", "clients").decode()
    assert int(info.split("client_recent_max_output_buffer:")[1].split("\r\n")[0]) > 1024 * 1024


def test_multi_counts_queued_commands(srv):
    name, admin, connect = srv
    c = connect()
    cid = c.call("CLIENT", "ID")
    c.call("MULTI")
    c.call("SET", "a", "1")
    c.call("SET", "b", "2")
    f = of(admin, None, cid)
    assert f["flags"] == b"x" and f["multi"] == b"2" and int(f["multi-mem"]) > 0
    c.call("EXEC")
    f = of(admin, None, cid)
    assert f["flags"] == b"N" and f["multi"] == b"-1" and f["multi-mem"] == b"0"


def test_watch_counts_watched_keys(keel_own):
    c, admin = keel_own.client(), keel_own.client()
    try:
        c.call("WATCH", "a", "b", "c")
        f = of(admin, c)
        assert f["watch"] == b"3" and int(f["multi-mem"]) > 0
        admin.call("SET", "a", "changed")
        assert of(admin, c)["flags"] == b"d"  # a watched key changed: EXEC will fail
        c.call("UNWATCH")
        assert of(admin, c)["watch"] == b"0"
    finally:
        c.close()
        admin.close()


def test_subscription_counts(srv):
    name, admin, connect = srv
    c = connect()
    cid = c.call("CLIENT", "ID")
    c.call("SUBSCRIBE", "a", "b")
    c.read()
    c.call("PSUBSCRIBE", "p*")
    c.call("SSUBSCRIBE", "s")
    f = of(admin, None, cid)
    assert (f["flags"], f["sub"], f["psub"], f["ssub"]) == (b"P", b"2", b"1", b"1")
    info = admin.call("INFO", "clients").decode()
    if name == "keel":  # (pubsub_clients is Redis 7.4's)
        assert "pubsub_clients:1\r\n" in info
    assert admin.call("CLIENT", "KILL", "TYPE", "pubsub") == 1


def test_resp_name_db_and_library(srv):
    name, admin, connect = srv
    c = connect()
    c.call("HELLO", "3", "SETNAME", "me")
    c.call("SELECT", "3")
    f = fields(c.call("CLIENT", "INFO"))
    assert (f["resp"], f["name"], f["db"]) == (b"3", b"me", b"3")
    if name == "keel":  # CLIENT SETINFO is Redis 7.2's
        c.call("CLIENT", "SETINFO", "LIB-NAME", "redis-py")
        c.call("CLIENT", "SETINFO", "LIB-VER", "5.0.1")
        f = fields(c.call("CLIENT", "INFO"))
        assert (f["lib-name"], f["lib-ver"]) == (b"redis-py", b"5.0.1")


def test_info_clients_fields_and_blocking_keys(keel_own, redis_own):
    k, r = keel_own.client(), redis_own.client()
    waiters = [keel_own.client() for _ in range(2)]
    try:
        ours = [ln.split(":")[0] for ln in k.call("INFO", "clients").decode().split("\r\n")[1:] if ln]
        theirs = [ln.split(":")[0] for ln in r.call("INFO", "clients").decode().split("\r\n")[1:] if ln]
        assert ours == INFO_CLIENTS
        assert [f for f in ours if f in theirs] == theirs  # 7.0's fields, in 7.0's order
        k.call("DEL", "s")
        k.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        waiters[0].send_raw(encode(("BLPOP", "l1", "l2", "0")))
        waiters[1].send_raw(encode(("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")))

        def info():
            text = k.call("INFO", "clients").decode()
            return dict(ln.split(":", 1) for ln in text.split("\r\n")[1:] if ln)

        f = poll(lambda: (lambda f: f if f["blocked_clients"] == "2" else None)(info()))
        assert f["total_blocking_keys"] == "3" and f["total_blocking_keys_on_nokey"] == "1"
    finally:
        for w in waiters:
            w.close()
        k.call("DEL", "s")
        k.close()
        r.close()


def test_kill_maxage(keel_own):
    # Keel only: MAXAGE is Redis 7.4's (redis-server 7.0.15 answers a syntax error).
    me, other = keel_own.client(), keel_own.client()
    try:
        oid = str(other.call("CLIENT", "ID"))
        assert me.call("CLIENT", "KILL", "MAXAGE", "100000", "ID", oid) == 0  # not that old
        assert me.call("CLIENT", "KILL", "MAXAGE", "abc") == Err("ERR value is not an integer or out of range")
        assert me.call("CLIENT", "KILL", "MAXAGE", "-1", "ID", oid) == 1  # older than -1 s: every client
        with pytest.raises(ConnectionError):
            other.call("PING")
    finally:
        me.close()
        other.close()


def test_flags_in_redis_order(srv):
    name, admin, connect = srv
    c = connect()
    cid = c.call("CLIENT", "ID")
    c.call("HELLO", "3")
    c.call("SUBSCRIBE", "a")  # (RESP3: any command may follow)
    assert c.call("CLIENT", "NO-EVICT", "ON") == b"OK"
    assert c.call("MULTI") == b"OK"
    assert of(admin, None, cid)["flags"] == b"Pxe"
    c.call("DISCARD")
    c.call("CLIENT", "NO-EVICT", "OFF")
    assert of(admin, None, cid)["flags"] == b"P"
