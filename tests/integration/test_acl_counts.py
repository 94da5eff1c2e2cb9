"""INFO stats ``acl_access_denied_{auth,cmd,key,channel}`` counted as Redis
counts them: one for each refusal ACL LOG records (failed AUTH and HELLO
AUTH, a command, key or channel refused at top level, in MULTI, at EXEC and
from scripts).

Redis 7.0.15, the reference here, has no such fields yet (7.2 added them),
so the same sequence runs on both and Keel's counters must rise by what
redis-server's ACL LOG counts per reason; the two logs are compared too.
CONFIG RESETSTAT and ACL LOG RESET leave the counters be, as in Redis 7.2,
which sets them to 0 only at startup.
"""

from __future__ import annotations

from tests.support import Err, RespClient

REASONS = {b"auth": "acl_access_denied_auth", b"command": "acl_access_denied_cmd",
           b"key": "acl_access_denied_key", b"channel": "acl_access_denied_channel"}
USER = "cnt_u"
OFF = "cnt_off"


def _counters(c) -> dict:
    info = c.call("INFO", "stats").decode()
    fields = dict(line.split(":", 1) for line in info.splitlines() if line.startswith("acl_access_denied_"))
    return {k: int(v) for k, v in fields.items()}


def _kind(reply):
    """A reply as compared across the two versions: an error by its code (7.2
    words NOPERM otherwise than 7.0), HELLO's map without its version."""
    if isinstance(reply, Err):
        return Err(reply.split(" ")[0])
    if isinstance(reply, list) and reply[:1] == [b"server"]:
        return "hello"
    if isinstance(reply, list):
        return [_kind(x) for x in reply]
    return reply


def _sequence(port: int) -> list:
    """Refusals of every kind; the replies."""
    a = RespClient(port)
    out = [a.call("ACL", "SETUSER", USER, "on", ">p", "~k*", "&ch*", "+get", "+set", "+publish", "+subscribe",
                  "+multi", "+exec", "+eval", "+auth", "+hello", "+acl|whoami"),
           a.call("ACL", "SETUSER", OFF, "off", ">x")]
    for cmd in (("AUTH", "nopass-configured"), ("AUTH", USER, "bad"), ("AUTH", "cnt_nobody", "bad"),
                ("HELLO", "3", "AUTH", USER, "bad"), ("HELLO", "2"), ("AUTH", OFF, "x"), ("AUTH", USER, "p"),
                ("GET", "other"), ("SET", "other", "1"), ("DEL", "k1"), ("PUBLISH", "other", "m"),
                ("PUBLISH", "ch1", "m"),
                ("MULTI",), ("GET", "other"), ("DEL", "k"), ("GET", "k1"), ("EXEC",),
                ("MULTI",), ("GET", "k1"), ("AUTH", USER, "bad"), ("EXEC",),
                ("EVAL", "return redis.call('get','other')", "0"), ("EVAL", "return redis.pcall('del','k1')", "0"),
                ("EVAL", "return redis.pcall('publish','zz', 'm')", "0"),
                ("EVAL", "return redis.call('get',KEYS[1])", "1", "other"), ("ACL", "DRYRUN", USER, "get", "x")):
        out.append(a.call(*cmd))
    for channels in (("other",), ("ch1", "zz")):
        b = RespClient(port)
        b.call("AUTH", USER, "p")
        out.append(b.call("SUBSCRIBE", *channels))
        b.close()
    a.close()
    return [_kind(x) for x in out]


def _log(c) -> list:
    entries = [dict(zip(e[::2], e[1::2])) for e in c.call("ACL", "LOG", "100")]
    return sorted((e[b"reason"], e[b"context"], e[b"object"], e[b"username"], e[b"count"]) for e in entries)


def test_acl_access_denied_counters_rise_as_redis_logs_refusals(keel, redis_ref):
    k, r = keel.client(), redis_ref.client()
    try:
        for c in (k, r):
            c.call("ACL", "LOG", "RESET")
        before = _counters(k)
        assert set(before) == set(REASONS.values())
        assert _sequence(keel.port) == _sequence(redis_ref.port)
        ref_log = _log(r)
        assert _log(k) == ref_log
        expected = dict.fromkeys(REASONS.values(), 0)
        for reason, *_, count in ref_log:
            expected[REASONS[reason]] += count
        assert expected == {"acl_access_denied_auth": 5, "acl_access_denied_cmd": 4,
                            "acl_access_denied_key": 5, "acl_access_denied_channel": 4}
        after = _counters(k)
        assert {f: after[f] - before[f] for f in after} == expected
        k.call("ACL", "LOG", "RESET")
        k.call("CONFIG", "RESETSTAT")
        assert _counters(k) == after  # only a restart sets them to 0
    finally:
        for c in (k, r):
            c.call("ACL", "DELUSER", USER, OFF)
            c.call("ACL", "LOG", "RESET")
            c.close()


def test_a_refusal_while_the_log_is_off_is_counted(keel):
    """``acllog-max-len 0`` keeps no entry; the counter rises all the same."""
    k = keel.client()
    try:
        old = k.call("CONFIG", "GET", "acllog-max-len")[1]
        k.call("CONFIG", "SET", "acllog-max-len", "0")
        before = _counters(k)["acl_access_denied_auth"]
        assert k.call("AUTH", "cnt_nobody", "x").startswith("WRONGPASS")
        assert k.call("ACL", "LOG") == []
        assert _counters(k)["acl_access_denied_auth"] == before + 1
    finally:
        k.call("CONFIG", "SET", "acllog-max-len", old)
        k.close()
