"""Client-side caching, continued: REDIRECT, tracking-table-max-keys, bookkeeping.

Side by side with a real redis-server, as ``test_tracking``: the bytes each
connection receives must be the same, client ids apart (each server numbers
its own connections; ``ids`` puts them in).
"""

from __future__ import annotations

import time

from tests.integration.test_tracking import Conn, both, inv, servers  # noqa: F401  (servers: a fixture)

MESSAGE = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"


def msg(*keys: str) -> bytes:
    """What a RESP2 redirect target in pub/sub mode receives for ``keys``."""
    return MESSAGE + b"*%d\r\n" % len(keys) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k.encode()) for k in keys)


def info(c: Conn, section: str) -> dict:
    text = c.call("INFO", section)
    body = text[text.index(b"\r\n") + 2:]
    return dict(line.split(":", 1) for line in body.decode().split("\r\n") if ":" in line)


def wait_for(pred, timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, "condition never held"
        time.sleep(0.005)


# --- RESP2 redirection through pub/sub ------------------------------------------------

def test_resp2_redirect_target_gets_a_message_while_subscribed(servers):
    connect, _ = servers
    t, target, bystander, w = connect(), connect(), connect(), connect()

    def scenario(i):
        target[i].call("SUBSCRIBE", "__redis__:invalidate")
        bystander[i].call("SUBSCRIBE", "__redis__:invalidate")  # subscribed, but nobody's target
        c = t[i]
        out = [c.call("CLIENT", "TRACKING", "on", "REDIRECT", str(target[i].id))]
        c.call("GET", "k")
        w[i].call("SET", "k", "1")
        out.append(target[i].frames())
        c.call("GET", "k")
        out += [c.call("SET", "k", "2"), c.quiet(), target[i].frames()]  # its own write goes there too
        c.call("GET", "k")
        out += [c.call("FLUSHALL"), target[i].frames(), bystander[i].quiet()]
        return out

    assert both(scenario) == [b"+OK\r\n", msg("k"), b"+OK\r\n", True, msg("k"), b"+OK\r\n",
                              MESSAGE + b"$-1\r\n", True]


def test_resp2_redirect_reaches_a_target_subscribed_to_anything(servers):
    connect, _ = servers
    t, target, w = connect(), connect(), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "REDIRECT", str(target[i].id))
        target[i].call("PSUBSCRIBE", "other*")
        c.call("GET", "k")
        w[i].call("SET", "k", "1")
        out = [target[i].frames()]
        target[i].call("PUNSUBSCRIBE")  # not in pub/sub mode: RESP2 has nowhere to put it
        c.call("GET", "k")
        w[i].call("SET", "k", "2")
        return out + [target[i].quiet(), target[i].call("PING")]

    assert both(scenario) == [msg("k"), True, b"+PONG\r\n"]


def test_resp3_redirect_target_gets_the_push(servers):
    connect, _ = servers
    t, target, w = connect(), connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "REDIRECT", str(target[i].id))
        c.call("GET", "k")
        w[i].call("SET", "k", "1")
        out = [target[i].frames()]
        c.call("GET", "k")
        w[i].call("FLUSHALL")
        return out + [target[i].frames(), c.quiet()]

    # The null is the tracker's (RESP2) one, as Redis sends it.
    assert both(scenario) == [inv("k"), b">2\r\n$10\r\ninvalidate\r\n$-1\r\n", True]


def test_bcast_redirect(servers):
    connect, _ = servers
    t, target, w = connect(), connect(3), connect()

    def scenario(i):
        t[i].call("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b:", "REDIRECT", str(target[i].id))
        w[i].call("MSET", "b:2", "1", "b:1", "1", "a", "1")
        return target[i].frames()

    assert both(scenario) == inv("b:1", "b:2")


def test_a_gone_redirect_target_is_reported_broken(servers):
    connect, _ = servers
    t, target, w = connect(3), connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "REDIRECT", str(target[i].id))
        c.call("GET", "k")
        gone = target[i].id
        target[i].close()
        wait_for(lambda: f"id={gone} ".encode() not in w[i].call("CLIENT", "LIST"))
        before = c.call("CLIENT", "TRACKINGINFO")
        w[i].call("SET", "k", "1")
        broken = c.frames()
        flags = c.call("CLIENT", "INFO").split(b" flags=")[1].split(b" ")[0]
        out = [before, broken, c.call("CLIENT", "TRACKINGINFO"), flags, c.call("CLIENT", "GETREDIR"),
               c.call("FLUSHALL"), c.frames()]
        return [x.replace(b":%d\r\n" % gone, b":ID\r\n") for x in out]

    broken = b">2\r\n$21\r\ntracking-redir-broken\r\n:ID\r\n"
    assert both(scenario) == [
        b"%3\r\n$5\r\nflags\r\n~1\r\n$2\r\non\r\n$8\r\nredirect\r\n:ID\r\n$8\r\nprefixes\r\n*0\r\n",
        broken,
        b"%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:ID\r\n"
        b"$8\r\nprefixes\r\n*0\r\n",
        b"tR", b":ID\r\n", b"+OK\r\n", broken]


def test_redirect_argument_errors(servers):
    connect, _ = servers
    t, other = connect(), connect()

    def scenario(i):
        c, oid = t[i], str(other[i].id)
        return [c.call("CLIENT", "TRACKING", "on", "REDIRECT", oid, "REDIRECT", oid),
                c.call("CLIENT", "TRACKING", "on", "REDIRECT", "0"),
                c.call("CLIENT", "TRACKING", "off", "REDIRECT", "999999"),
                c.call("CLIENT", "TRACKING", "on", "REDIRECT", str(c.id)),  # itself: allowed
                c.call("CLIENT", "GETREDIR").replace(str(c.id).encode(), b"ME")]

    assert both(scenario) == [b"-ERR A client can only redirect to a single other client\r\n",
                              b"-ERR The client ID you want redirect to does not exist\r\n",
                              b"-ERR The client ID you want redirect to does not exist\r\n",
                              b"+OK\r\n", b":ME\r\n"]


# --- tracking-table-max-keys --------------------------------------------------------------

def test_past_tracking_table_max_keys_a_key_is_invalidated_and_forgotten(servers):
    connect, admin = servers
    t = connect(3)

    def scenario(i):
        c = t[i]
        admin[i].call("CONFIG", "SET", "tracking-table-max-keys", "2")
        try:
            c.call("CLIENT", "TRACKING", "on")
            reply = c.call("MGET", "m1", "m2", "m3")
            evicted = c.frames()  # which of the three is chosen at random
            keys = info(admin[i], "stats")["tracking_total_keys"]
        finally:
            admin[i].call("CONFIG", "SET", "tracking-table-max-keys", "1000000")
        return [reply, evicted in (inv("m1"), inv("m2"), inv("m3")), keys]

    assert both(scenario) == [b"*3\r\n_\r\n_\r\n_\r\n", True, "2"]


def test_lowering_tracking_table_max_keys_evicts_at_once(keel):
    admin, t = Conn(keel.port), Conn(keel.port, 3)
    try:
        t.call("CLIENT", "TRACKING", "on")
        t.call("MGET", "a", "b", "c", "d")
        assert admin.call("CONFIG", "SET", "tracking-table-max-keys", "1") == b"+OK\r\n"
        assert t.frames(3).count(b"invalidate") == 3
        assert info(admin, "stats")["tracking_total_keys"] == "1"
    finally:
        admin.call("CONFIG", "SET", "tracking-table-max-keys", "1000000")
        admin.close()
        t.close()


def test_tracking_table_max_keys_is_a_directive(pair):
    pair.check("CONFIG", "GET", "tracking-table-max-keys")
    pair.check("CONFIG", "SET", "tracking-table-max-keys", "-1")
    pair.check("CONFIG", "SET", "tracking-table-max-keys", "abc")


# --- bookkeeping ---------------------------------------------------------------------------

def test_info_counts_clients_keys_items_and_prefixes(servers):
    connect, admin = servers
    a, b, c = connect(3), connect(3), connect(3)

    def scenario(i):
        wait_for(lambda: info(admin[i], "clients")["tracking_clients"] == "0")  # earlier tests' are gone
        a[i].call("CLIENT", "TRACKING", "on")
        b[i].call("CLIENT", "TRACKING", "on")
        c[i].call("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p", "PREFIX", "q")
        a[i].call("MGET", "x", "y")
        b[i].call("GET", "x")
        st = info(admin[i], "stats")
        counts = [info(admin[i], "clients")["tracking_clients"], st["tracking_total_keys"],
                  st["tracking_total_items"], st["tracking_total_prefixes"]]
        c[i].call("CLIENT", "TRACKING", "off")
        return counts + [info(admin[i], "clients")["tracking_clients"], info(admin[i], "stats")["tracking_total_prefixes"]]

    assert both(scenario) == ["3", "2", "3", "2", "2", "0"]


def test_client_list_flags_and_redir(servers):
    connect, _ = servers
    t, other = connect(), connect()

    def fields(c: Conn) -> tuple:
        line = c.call("CLIENT", "INFO").decode()
        f = dict(kv.split("=", 1) for kv in line.split("\r\n")[1].split(" ") if "=" in kv)
        return f["flags"], f["redir"]

    def scenario(i):
        c = t[i]
        out = [fields(c)]
        c.call("CLIENT", "TRACKING", "on")
        out.append(fields(c))
        c.call("CLIENT", "TRACKING", "off")
        c.call("CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", str(other[i].id))
        flags, redir = fields(c)
        return out + [(flags, redir == str(other[i].id))]

    assert both(scenario) == [("N", "-1"), ("t", "0"), ("tB", True)]


def test_a_disconnected_tracker_is_forgotten(servers):
    connect, admin = servers
    t = connect()

    def scenario(i):
        wait_for(lambda: info(admin[i], "clients")["tracking_clients"] == "0")
        t[i].call("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "gone:")
        before = info(admin[i], "stats")["tracking_total_prefixes"]
        t[i].close()
        wait_for(lambda: info(admin[i], "clients")["tracking_clients"] == "0")
        admin[i].call("SET", "gone:1", "1")  # nobody to tell
        return [before, info(admin[i], "stats")["tracking_total_prefixes"]]

    assert both(scenario) == ["1", "0"]


def test_reset_turns_tracking_off(servers):
    connect, _ = servers
    t, w = connect(3), connect()

    def scenario(i):
        c = t[i]
        c.call("CLIENT", "TRACKING", "on", "OPTIN")
        c.call("CLIENT", "CACHING", "yes")
        c.call("GET", "k")
        out = [c.call("RESET"), c.call("CLIENT", "TRACKINGINFO")]
        w[i].call("SET", "k", "1")
        return out + [c.quiet()]

    assert both(scenario) == [b"+RESET\r\n",
                              b"*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n"
                              b"$8\r\nprefixes\r\n*0\r\n", True]


def test_a_resp2_redirect_target_that_never_reads_is_cut_at_the_pubsub_limit(keel):
    import socket

    admin = Conn(keel.port)
    default = admin.call("CONFIG", "GET", "client-output-buffer-limit")
    target = socket.socket()
    target.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for it
    target.connect(("127.0.0.1", keel.port))
    t = Conn(keel.port)
    try:
        admin.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 262144 0 0")
        target.sendall(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nx\r\n")
        got = b""
        while got.count(b"\r\n") < 5:  # :id, then the 3-element confirmation
            got += target.recv(4096)
        target_id = int(got[1:got.index(b"\r\n")])
        t.call("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "big:", "REDIRECT", str(target_id))
        names = [b"big:%04d:" % n + b"k" * 1000 for n in range(200)]
        for _ in range(100):  # ~200 kB of invalidation a round for the target
            admin.send("MSET", *[x for name in names for x in (name, b"1")])
            admin.frames()
            if f"id={target_id} ".encode() not in admin.call("CLIENT", "LIST"):
                break
        else:
            raise AssertionError("the target was never cut off")
        assert t.call("PING") == b"+PONG\r\n"  # the tracker is unaffected
    finally:
        value = default.split(b"\r\n")[3].decode()
        admin.call("CONFIG", "SET", "client-output-buffer-limit", value)
        admin.call("FLUSHALL")
        for c in (admin, t):
            c.close()
        target.close()
