"""Pipelines from a restricted user's client (server.acl_fast: the hot path
runs them, each checked by ACL first), side by side with redis-server.

A refusal in the middle of a pipeline refuses that command only, changes
nothing, and is logged and counted as Redis logs and counts it; whatever
else would gate the client (MULTI, a subscription, CLIENT REPLY) still sends
its commands through the full dispatch.
"""

from __future__ import annotations

import pytest

from tests.integration.test_acl import COMMON_LOG_FIELDS, _clean, both_setuser, log_entries
from tests.support import Err, Pair, encode

KEYS = [f"~app{i}:*" for i in range(10)]
RULES = ["-@all", "+get", "+set", "+incr", "+del", "+exists", "+mget", "+mset", "+lpush", "+lrange", "+rpop",
         "+hset", "+hget", "+sadd", "+smembers", "+zadd", "+zrange", "+ping", "+multi", "+exec", "+select"]


@pytest.fixture
def acl(keel, redis_ref):
    p = Pair(keel.client(), redis_ref.client())
    for c in (p.keel, p.ref):
        c.call("FLUSHALL")
        _clean(c)
    both_setuser(p, "app", "reset", "on", ">pw", *KEYS, *RULES)
    yield p
    p.close()
    for proc in (keel, redis_ref):
        c = proc.client()
        _clean(c)
        c.close()


def _login(proc):
    c = proc.client()
    assert c.call("AUTH", "app", "pw") == b"OK"
    return c


def _pipeline(c, commands):
    c.sock.sendall(b"".join(encode(cmd) for cmd in commands))
    return [c.read() for _ in commands]


PIPELINE = [
    ("SET", "app1:a", "1"),
    ("GET", "app1:a"),
    ("SET", "other:a", "1"),          # key refused
    ("INCR", "app2:n"),
    ("FLUSHALL",),                    # command refused
    ("MSET", "app3:x", "1", "other:y", "2"),  # one key refused: nothing written
    ("MGET", "app3:x", "other:y"),    # a read of a refused key
    ("LPUSH", "app4:l", "a", "b"),
    ("LRANGE", "app4:l", "0", "-1"),
    ("HSET", "app5:h", "f", "v"),
    ("KEYS", "*"),                    # not in the rules
    ("ZADD", "app6:z", "1", "m"),
    ("ZRANGE", "app6:z", "0", "-1", "WITHSCORES"),
    ("GET", "app9:missing"),
    ("PING",),
]


def test_a_restricted_pipeline_gets_redis_replies_and_refusals(acl, keel, redis_ref):
    k, r = _login(keel), _login(redis_ref)
    got, want = _pipeline(k, PIPELINE), _pipeline(r, PIPELINE)
    for cmd, a, b in zip(PIPELINE, got, want):
        if isinstance(b, Err):
            assert isinstance(a, Err) and a.split()[0] == b.split()[0] == "NOPERM", (cmd, a, b)
        else:
            assert a == b, (cmd, a, b)
    assert got[2] == Err("NOPERM No permissions to access a key")
    assert got[4] == Err("NOPERM User app has no permissions to run the 'flushall' command")
    # Nothing refused was written.
    assert acl.keel.call("EXISTS", "other:a", "other:y", "app3:x") == acl.ref.call("EXISTS", "other:a", "other:y", "app3:x") == 0
    ke = [{f: e[f] for f in COMMON_LOG_FIELDS} for e in log_entries(acl.keel)]
    re_ = [{f: e[f] for f in COMMON_LOG_FIELDS} for e in log_entries(acl.ref)]
    assert ke == re_
    k.close()
    r.close()


def test_refusals_in_a_pipeline_count_as_rejected_calls(acl, keel, redis_ref):
    for c in (acl.keel, acl.ref):
        c.call("CONFIG", "RESETSTAT")
    k, r = _login(keel), _login(redis_ref)
    batch = [("SET", "app1:a", "1"), ("SET", "nope", "1"), ("GET", "nope"), ("GET", "app1:a")] * 5
    _pipeline(k, batch)
    _pipeline(r, batch)

    def stats(c):
        out = {}
        for line in c.call("INFO", "commandstats").decode().splitlines():
            if line.startswith(("cmdstat_set:", "cmdstat_get:")):
                name, _, fields = line.partition(":")
                kv = dict(f.split("=") for f in fields.split(","))
                out[name] = (kv["calls"], kv["rejected_calls"], kv["failed_calls"])
        return out

    assert stats(acl.keel) == stats(acl.ref) == {"cmdstat_set": ("5", "5", "0"), "cmdstat_get": ("5", "5", "0")}
    k.close()
    r.close()


def test_a_rule_changed_mid_session_applies_to_the_next_pipeline(acl, keel, redis_ref):
    k, r = _login(keel), _login(redis_ref)
    assert _pipeline(k, [("SET", "app1:a", "1")]) == _pipeline(r, [("SET", "app1:a", "1")]) == [b"OK"]
    both_setuser(acl, "app", "-set")
    got = _pipeline(k, [("SET", "app1:a", "2"), ("GET", "app1:a")])
    want = _pipeline(r, [("SET", "app1:a", "2"), ("GET", "app1:a")])
    assert isinstance(got[0], Err) and isinstance(want[0], Err)
    assert got[1] == want[1] == b"1"
    both_setuser(acl, "app", "allkeys", "+@all")  # no longer restricted by keys; still not "unrestricted"? compare
    got = _pipeline(k, [("SET", "other", "3"), ("GET", "other")])
    want = _pipeline(r, [("SET", "other", "3"), ("GET", "other")])
    assert got == want
    k.close()
    r.close()


@pytest.mark.parametrize("first", [("MULTI",), ("CLIENT", "REPLY", "SKIP")])
def test_other_gates_still_take_the_full_dispatch(acl, keel, redis_ref, first):
    both_setuser(acl, "app", "+client")
    k, r = _login(keel), _login(redis_ref)
    batch = [first, ("SET", "app1:a", "1"), ("SET", "other", "1"), ("GET", "app1:a")]
    if first == ("MULTI",):
        batch.append(("EXEC",))
    n = len(batch) - (1 if first[0] == "CLIENT" else 0) - (1 if first[0] == "CLIENT" else 0)
    k.sock.sendall(b"".join(encode(c) for c in batch))
    r.sock.sendall(b"".join(encode(c) for c in batch))
    got = [k.read() for _ in range(n)]
    want = [r.read() for _ in range(n)]
    assert [type(x) for x in got] == [type(x) for x in want]
    assert [x for x in got if not isinstance(x, Err)] == [x for x in want if not isinstance(x, Err)]
    k.close()
    r.close()
