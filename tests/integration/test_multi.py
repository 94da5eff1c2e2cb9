"""MULTI / EXEC / DISCARD / WATCH / UNWATCH, side by side with redis-server.

Every reply is compared with a real redis-server's; the cases name what Redis
users rely on: QUEUED, EXECABORT after a refused command, a runtime error that
does not stop the others, WATCH broken by another client, by an expiry, by
FLUSHALL and SWAPDB, and the nesting errors.
"""

from __future__ import annotations

import time

import pytest

from tests.support import Err, Pair, encode


@pytest.fixture
def two(keel, redis_ref):
    """Two connections to each server: (main pair, other pair)."""
    a = Pair(keel.client(), redis_ref.client())
    b = Pair(keel.client(), redis_ref.client())
    a.keel.call("FLUSHALL")
    a.ref.call("FLUSHALL")
    yield a, b
    a.close()
    b.close()


def test_queued_and_exec(pair):
    pair.check("MULTI")
    pair.check("SET", "a", "1")
    pair.check("INCR", "a")
    pair.check("LPUSH", "a", "x")  # fails while running: WRONGTYPE in its place
    pair.check("GET", "a")
    assert pair.check("EXEC")[0] == b"OK"
    pair.check("GET", "a")


def test_refused_at_queue_time_aborts(pair):
    pair.check("SET", "a", "1")
    pair.check("MULTI")
    pair.check("SET", "a", "2")
    pair.check("NOSUCHCOMMAND", "x")
    pair.check("GET")  # arity
    pair.check("OBJECT", "NOSUCH")  # unknown subcommand
    pair.check("EXEC")
    pair.check("GET", "a")  # nothing ran
    pair.check("EXEC")  # the transaction is gone


def test_no_multi_commands_refused_inside_multi(pair):
    pair.check("SET", "a", "1")
    pair.check("MULTI")
    pair.check("SAVE")  # flagged no_multi: refused at queue time, dooms EXEC
    pair.check("SHUTDOWN", "NOSAVE")
    pair.check("SET", "a", "2")
    pair.check("EXEC")
    pair.check("GET", "a")


def test_errors_around_multi(pair):
    pair.check("EXEC")
    pair.check("DISCARD")
    pair.check("MULTI")
    pair.check("MULTI")  # nested
    pair.check("WATCH", "a")  # inside MULTI
    pair.check("SET", "a", "1")
    pair.check("EXEC")
    pair.check("GET", "a")
    pair.check("WATCH")  # arity


def test_discard(pair):
    pair.check("MULTI")
    pair.check("SET", "a", "1")
    pair.check("DISCARD")
    pair.check("GET", "a")
    pair.check("EXEC")


def test_empty_exec_and_unwatch_queued(pair):
    pair.check("MULTI")
    pair.check("EXEC")
    pair.check("MULTI")
    pair.check("UNWATCH")
    pair.check("PING")
    pair.check("EXEC")


def test_watch_broken_by_other_client(two):
    a, b = two
    a.check("SET", "k", "1")
    a.check("WATCH", "k")
    b.check("SET", "k", "2")
    a.check("MULTI")
    a.check("SET", "k", "3")
    a.check("EXEC")
    a.check("GET", "k")


def test_watch_kept_when_untouched_and_by_own_write(two):
    a, b = two
    a.check("WATCH", "k", "other")
    b.check("SET", "unrelated", "1")
    a.check("MULTI")
    a.check("SET", "k", "3")
    a.check("EXEC")
    a.check("WATCH", "k")
    a.check("SET", "k", "own")  # the client's own write breaks it too
    a.check("MULTI")
    a.check("SET", "k", "4")
    a.check("EXEC")
    a.check("GET", "k")


def test_watch_missing_key_then_created(two):
    a, b = two
    a.check("WATCH", "k")
    b.check("LPUSH", "k", "x")
    a.check("MULTI")
    a.check("GET", "k")
    a.check("EXEC")


def test_unwatch_and_discard_forget_watches(two):
    a, b = two
    a.check("WATCH", "k")
    a.check("UNWATCH")
    b.check("SET", "k", "2")
    a.check("MULTI")
    a.check("SET", "k", "3")
    a.check("EXEC")
    a.check("WATCH", "k")
    a.check("MULTI")
    a.check("DISCARD")
    b.check("SET", "k", "4")
    a.check("MULTI")
    a.check("GET", "k")
    a.check("EXEC")


@pytest.mark.parametrize("breaker", [
    ("FLUSHALL",), ("FLUSHDB",), ("DEL", "k"), ("EXPIRE", "k", "100"), ("PERSIST", "k"),
    ("RENAME", "k", "k2"), ("APPEND", "k", "x"), ("SETRANGE", "k", "0", "z"), ("SWAPDB", "0", "1"),
    ("RESTORE", "k", "0", None, "REPLACE"),
])
def test_watch_broken_by(two, breaker):
    a, b = two
    a.check("SET", "k", "1", "EX", "1000")
    a.check("WATCH", "k")
    if breaker[0] == "RESTORE":
        payload = b.ref.call("DUMP", "k")
        args = breaker[:3] + (payload,) + breaker[4:]
        assert b.keel.call(*args) == b.ref.call(*args)
    else:
        b.check(*breaker)
    a.check("MULTI")
    a.check("PING")
    a.check("EXEC")


def test_swapdb_breaks_watch_on_either_side(two):
    a, b = two
    a.check("SELECT", "1")
    a.check("SET", "only1", "x")
    a.check("SELECT", "0")
    a.check("WATCH", "only1", "missing")  # missing in db 0, present in db 1
    b.check("SWAPDB", "0", "1")
    a.check("MULTI")
    a.check("PING")
    a.check("EXEC")
    a.check("WATCH", "missing")  # in neither database: untouched
    b.check("SWAPDB", "0", "1")
    a.check("MULTI")
    a.check("PING")
    a.check("EXEC")


def test_watched_key_expires_before_exec(pair):
    pair.check("SET", "k", "1", "PX", "100")
    pair.check("WATCH", "k")
    time.sleep(0.25)
    pair.check("MULTI")
    pair.check("PING")
    pair.check("EXEC")  # expired since WATCH: nil, even though nothing deleted it


def test_key_already_expired_when_watched(two):
    a, b = two
    for p in (a.keel, a.ref):
        p.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        a.check("SET", "k", "1", "PX", "50")
        time.sleep(0.15)
        a.check("WATCH", "k")  # expired, not yet deleted
        b.check("EXISTS", "k")  # deletes it lazily: logically no change
        a.check("MULTI")
        a.check("PING")
        a.check("EXEC")
    finally:
        for p in (a.keel, a.ref):
            p.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_blocking_command_inside_multi_does_not_block(pair):
    pair.check("MULTI")
    pair.check("BLPOP", "nolist", "0")
    pair.check("BLMOVE", "nolist", "dst", "LEFT", "RIGHT", "0")
    pair.check("BZPOPMIN", "nozset", "0")
    pair.check("RPUSH", "l", "a")
    pair.check("BLPOP", "l", "0")
    pair.check("EXEC")


def test_exec_serves_blocked_clients_after_the_whole_transaction(keel):
    waiter = keel.client()
    c = keel.client()
    c.call("FLUSHALL")
    waiter.send_raw(encode(("BLPOP", "q", "5")))
    time.sleep(0.1)
    c.call("MULTI")
    c.call("RPUSH", "q", "1")
    c.call("RPUSH", "q", "2")
    c.call("LPOP", "q")
    assert c.call("EXEC") == [1, 2, b"1"]
    assert waiter.read() == [b"q", b"2"]  # woken once the transaction ended
    waiter.close()
    c.close()


def test_select_inside_multi(pair):
    pair.check("MULTI")
    pair.check("SELECT", "2")
    pair.check("SET", "a", "db2")
    pair.check("EXEC")
    pair.check("GET", "a")
    pair.check("SELECT", "0")
    pair.check("GET", "a")


def test_reset_leaves_multi_and_watch(two):
    a, b = two
    a.check("WATCH", "k")
    a.check("MULTI")
    a.check("SET", "k", "1")
    a.check("RESET")
    a.check("EXEC")
    b.check("SET", "k", "2")
    a.check("MULTI")
    a.check("SET", "k", "3")
    a.check("EXEC")  # the WATCH went with RESET


def test_pipelined_transaction_in_one_write(pair):
    raw = b"".join(encode(c) for c in (("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("EXEC",), ("GET", "a")))
    for cl in (pair.keel, pair.ref):
        cl.send_raw(raw)
    replies = [[cl.read() for _ in range(5)] for cl in (pair.keel, pair.ref)]
    assert replies[0] == replies[1]


def test_client_list_shows_multi(keel):
    c = keel.client()
    c.call("MULTI")
    c.call("SET", "a", "1")
    c.call("SET", "b", "1")
    # CLIENT is queued too: the line is in EXEC's reply.
    line = c.call("EXEC")
    assert line[:2] == [b"OK", b"OK"]
    c.call("MULTI")
    c.call("PING")
    info = keel.client().call("CLIENT", "LIST").decode()
    mine = [ln for ln in info.splitlines() if "cmd=ping" in ln or " multi=1 " in ln]
    assert any(" multi=1 " in ln and "flags=x" in ln for ln in mine)
    c.close()


def test_info_counts_watches(keel):
    a = keel.client()
    a.call("WATCH", "x", "y")
    info = keel.client().call("INFO", "clients").decode()
    assert "total_watched_keys:2" in info and "watching_clients:1" in info
    a.close()
    time.sleep(0.1)
    info = keel.client().call("INFO", "clients").decode()
    assert "total_watched_keys:0" in info and "watching_clients:0" in info


def test_exec_journals_its_effects_wrapped_in_multi_exec(tmp_path):
    import io

    from tests.support import KeelProcess
    from wal.__main__ import main as wal_main

    keel = KeelProcess("--appendfsync", "always", dir=str(tmp_path)).start()
    try:
        c = keel.client()
        c.call("MULTI")
        c.call("SET", "a", "1")
        c.call("GET", "a")
        c.call("INCR", "a")
        assert c.call("EXEC") == [b"OK", b"1", 2]
        c.call("MULTI")
        c.call("SET", "single", "x")  # one effect: no wrapping, as Redis propagates it
        c.call("EXEC")
        c.close()
        keel.kill()
        out = io.StringIO()
        wal_main(["dump", str(tmp_path)], out=out)
        text = out.getvalue()
        assert text.index("MULTI") < text.index("INCR") < text.index("EXEC") < text.index("single"), text
        assert text.count("MULTI") == 1 and text.count("EXEC") == 1, text
        keel.start()
        c = keel.client()
        assert c.call("GET", "a") == b"2" and c.call("GET", "single") == b"x"
        c.close()
    finally:
        keel.cleanup()


def test_sentinel_admin_transaction_pipelined(keel, redis_ref):
    """What Sentinel sends to reconfigure a server, in one write: CONFIG REWRITE
    fails inside EXEC (no config file), not at queue time; the kills run."""
    seq = [("MULTI",), ("CONFIG", "REWRITE"), ("CLIENT", "KILL", "TYPE", "normal"),
           ("CLIENT", "KILL", "TYPE", "pubsub"), ("EXEC",)]
    raw = b"".join(encode(c) for c in seq)
    got = []
    for proc in (keel, redis_ref):
        victim = proc.client()
        assert victim.call("PING") in ("PONG", b"PONG")
        c = proc.client()
        c.send_raw(raw)
        replies = [c.read() for _ in range(len(seq))]
        assert [bytes(x) if isinstance(x, bytes) else x.encode() for x in replies[:4]] == [b"OK", b"QUEUED", b"QUEUED", b"QUEUED"]
        rewrite, killed_normal, killed_pubsub = replies[4]
        assert killed_normal >= 1 and killed_pubsub == 0
        with pytest.raises((ConnectionError, OSError)):
            victim.call("PING")  # killed by the transaction
        assert c.call("PING") in ("PONG", b"PONG")  # SKIPME: the sender lives on
        got.append(str(rewrite))
        c.close()
        victim.close()
    assert got[0] == got[1]


def test_redis_py_optimistic_locking_under_contention(keel):
    """redis-py's WATCH / MULTI / EXEC retry loop from several threads: every
    increment lands exactly once, and some attempts had to retry."""
    import threading

    import redis

    r = keel.redis()
    r.flushall()
    r.set("counter", 0)
    retries = []

    def worker():
        c = keel.redis()
        for _ in range(100):
            while True:
                with c.pipeline() as p:
                    try:
                        p.watch("counter")
                        v = int(p.get("counter"))
                        p.multi()
                        p.set("counter", v + 1)
                        p.execute()
                        break
                    except redis.WatchError:
                        retries.append(1)
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert int(r.get("counter")) == 400
    assert retries, "four threads never collided: the test proves nothing"

    def incr_both(pipe):
        a = int(pipe.get("counter"))
        pipe.multi()
        pipe.set("counter", a * 2)
        pipe.set("copy", a * 2)

    assert r.transaction(incr_both, "counter") == [True, True]
    assert r.mget("counter", "copy") == [b"800", b"800"]
    r.close()


def _raw(c, *commands):
    c.sock.sendall(b"".join(encode(cmd) for cmd in commands))
    return [c.read() for _ in commands]


def test_a_refused_exec_aborts_the_transaction_as_redis_does(pair):
    # Wrong arity in MULTI: EXECABORT naming the refusal, the transaction gone (found by the protocol fuzzer).
    cmds = [("MULTI",), ("SET", "a", "1"), ("EXEC", "x"), ("EXEC",), ("GET", "a")]
    assert _raw(pair.keel, *cmds) == _raw(pair.ref, *cmds)
    # Outside MULTI too, and its WATCH is dropped.
    cmds = [("WATCH", "w"), ("EXEC", "x"), ("MULTI",), ("SET", "w", "1"), ("EXEC",)]
    got = _raw(pair.keel, *cmds)
    assert got == _raw(pair.ref, *cmds)
    assert got[1] == Err("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")


def test_an_unauthenticated_exec_answers_execabort(pair, keel, redis_ref):
    for c in (pair.keel, pair.ref):
        assert c.call("CONFIG", "SET", "requirepass", "pw") == b"OK"
    try:
        k, r = keel.client(), redis_ref.client()
        got, want = _raw(k, ("EXEC",), ("MULTI",)), _raw(r, ("EXEC",), ("MULTI",))
        assert got == want
        assert got[0] == Err("EXECABORT Transaction discarded because of: NOAUTH Authentication required.")
        k.close()
        r.close()
    finally:
        for c in (pair.keel, pair.ref):
            c.call("AUTH", "pw")
            c.call("CONFIG", "SET", "requirepass", "")
