"""Scripts after ``redis.setresp(3)`` side by side with a real redis-server:
the RESP3 shapes ``redis.call`` hands Lua (``{map=…}``, ``{set=…}``,
``{double=…}``, booleans, nil, ``{big_number=…}``, ``{verbatim_string=…}``),
the RESP3 shapes handlers answer in (ZRANGE WITHSCORES as pairs of doubles,
GEOPOS doubles), and the way back: a script's tables become RESP3 types for a
RESP3 caller and their RESP2 forms for a RESP2 one.

Replies are compared as bytes, since hiredis drops the difference between a
verbatim string and a bulk, or a big number and a bulk.

Redis 7.0 and 7.2 differ on one case here: a NaN double (Lua's ``0/0``) is
``-nan`` on 7.0 (its printf's text for a negative NaN) and ``nan`` on 7.2,
which writes every NaN as ``nan``; Keel writes ``nan``.
"""

from __future__ import annotations

import hiredis
import pytest

from tests.support import encode

SETUP = [
    ("HSET", "h", "a", "1", "b", "2"), ("SADD", "s", "x"), ("ZADD", "z", "1.5", "m", "2", "n"),
    ("GEOADD", "g", "13.361389", "38.115556", "pa"), ("RPUSH", "l", "a"), ("XADD", "x", "1-1", "f", "v"),
    ("SET", "str", "v"),
]

R3 = "redis.setresp(3); "
SCRIPTS = [
    # what redis.call hands Lua after setresp(3), looked at from inside
    R3 + "local r = redis.call('hgetall','h'); return {type(r), type(r.map), r.map.a, r.map.b}",
    R3 + "local r = redis.call('smembers','s'); return {type(r.set), tostring(r.set.x)}",
    R3 + "local r = redis.call('zscore','z','m'); return {type(r), type(r.double), tostring(r.double)}",
    R3 + "local r = redis.call('zrange','z',0,-1,'withscores'); return {#r, r[1][1], tostring(r[1][2].double)}",
    R3 + "local r = redis.call('get','nokey'); return {type(r), r == nil}",
    R3 + "local r = redis.call('sismember','s','x'); return {type(r), r}",
    R3 + "local r = redis.call('debug','protocol','true'); return {type(r), tostring(r)}",
    R3 + "local r = redis.call('debug','protocol','false'); return {type(r), tostring(r)}",
    R3 + "local r = redis.call('debug','protocol','bignum'); return {type(r), r.big_number}",
    R3 + "local r = redis.call('debug','protocol','verbatim'); return {r.verbatim_string.format, "
         "r.verbatim_string.string}",
    "local r = redis.call('zscore','z','m'); return {type(r), r}",
    "local r = redis.call('get','nokey'); return {type(r), tostring(r)}",
    R3 + "redis.setresp(2); local r = redis.call('hgetall','h'); return {type(r), #r}",
    # replies handed straight back: RESP3 to a RESP3 caller, RESP2 forms to a RESP2 one
    R3 + "return redis.call('hgetall','h')",
    R3 + "return redis.call('smembers','s')",
    R3 + "return redis.call('zscore','z','m')",
    R3 + "return redis.call('zscore','z','nope')",
    R3 + "return redis.call('zrange','z',0,-1,'withscores')",
    R3 + "return redis.call('zrangebyscore','z','-inf','+inf','withscores')",
    R3 + "return redis.call('zrevrangebyscore','z','+inf','-inf','withscores')",
    R3 + "return redis.call('zunion',1,'z','withscores')",
    R3 + "return redis.call('zinter',1,'z','withscores')",
    R3 + "return redis.call('zmscore','z','m','nope')",
    R3 + "return redis.call('zincrby','z',0,'m')",
    R3 + "return redis.call('zrank','z','m')",
    R3 + "return redis.call('geopos','g','pa','nope')",
    R3 + "return redis.call('geodist','g','pa','pa')",
    R3 + "return redis.call('georadius','g',13,38,500,'km','withcoord','withdist')",
    R3 + "return redis.call('geosearch','g','fromlonlat',13,38,'byradius',500,'km','withcoord','withdist')",
    R3 + "return redis.call('config','get','maxmemory')",
    R3 + "return redis.call('xinfo','stream','x')",
    R3 + "return redis.call('xrange','x','-','+')",
    R3 + "return redis.call('hmget','h','a','nope')",
    R3 + "return redis.call('get','nokey')",
    R3 + "return redis.call('blpop','nolist',1)",
    R3 + "return redis.call('lpos','l','nope')",
    R3 + "return redis.call('smismember','s','x','nope')",
    R3 + "return redis.call('incrbyfloat','fl','1.5')",
    R3 + "return redis.call('ping')",
    R3 + "return redis.call('type','h')",
    R3 + "return redis.call('function','stats')",
    R3 + "return redis.call('debug','protocol','bignum')",
    R3 + "return redis.call('debug','protocol','verbatim')",
    R3 + "return redis.call('debug','protocol','double')",
    R3 + "return redis.call('debug','protocol','map')",
    R3 + "return redis.call('debug','protocol','set')",
    R3 + "return redis.call('debug','protocol','null')",
    R3 + "return redis.call('debug','protocol','attrib')",
    R3 + "redis.setresp(2); return redis.call('zrange','z',0,-1,'withscores')",
    # a script's own RESP3 tables
    "return {double=3.5}", "return {double=1/0}", "return {double=-1/0}", "return {map={a=1}}",
    "return {set={a=true}}", "return {big_number='123'}", "return {map={a={set={b=true}}}}",
    "return {verbatim_string={format='txt',string='hi'}}", "return {verbatim_string={format='mkd',string='hi'}}",
    "return {verbatim_string={format='ab',string='hi'}}", "return {verbatim_string={format='abcd',string='hi'}}",
    "return {verbatim_string={string='hi'}}", "return {verbatim_string={format=1,string='hi'}}",
    "return {verbatim_string={format='txt',string=5}}",
    R3 + "return {double='1.5'}", R3 + "return {big_number=12}", R3 + "return {set={a=1, b=false}}",
    # booleans: RESP3 booleans only after setresp(3) (:1/:0 to a RESP2 caller), else 1 and nil
    R3 + "return true", R3 + "return false", R3 + "return nil", "return true", "return false",
    R3 + "return {true, false, {map={a=true}}}", R3 + "redis.setresp(2); return true",
    R3 + "return {1, false, 2}", "return {1, false, 2}",
]


class RawClient:
    """One connection; each reply returned as the bytes the server sent."""

    def __init__(self, port: int, protocol: int):
        from tests.support import RespClient

        self.c = RespClient(port)
        if protocol == 3:
            self.call("HELLO", "3")

    def call(self, *args) -> bytes:
        sock = self.c.sock
        sock.sendall(encode(args))
        reader = hiredis.Reader(notEnoughData=Ellipsis)  # (a False reply, #f, is a reply)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
            reader.feed(chunk)
            if reader.gets() is not Ellipsis:
                return data

    def close(self) -> None:
        self.c.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def raw_pair(request, keel, redis_ref):
    clients = RawClient(keel.port, request.param), RawClient(redis_ref.port, request.param)
    for c in clients:
        c.call("FLUSHALL")
        for cmd in SETUP:
            c.call(*cmd)
    yield clients
    for c in clients:
        c.close()


def test_scripts_after_setresp3_answer_as_redis(raw_pair):
    keel, ref = raw_pair
    diffs = []
    for script in SCRIPTS:
        k, r = keel.call("EVAL", script, "0"), ref.call("EVAL", script, "0")
        if k != r:
            diffs.append(f"{script}\n   keel  {k!r}\n   redis {r!r}")
    assert not diffs, "\n".join(diffs)


def test_functions_after_setresp3_answer_as_redis(raw_pair):
    keel, ref = raw_pair
    lib = ("#!lua name=resp3lib\nredis.register_function('f', function(keys, args) redis.setresp(3); "
           "return {redis.call('zrange', keys[1], 0, -1, 'withscores'), redis.call('hgetall', 'h'), true} end)")
    for c in raw_pair:
        c.call("FUNCTION", "LOAD", "REPLACE", lib)
    assert keel.call("FCALL", "f", "1", "z") == ref.call("FCALL", "f", "1", "z")


def test_nan_double_is_nan(k):
    """Redis 7.2 writes every NaN as ``nan`` (7.0 wrote Lua's 0/0 as ``-nan``)."""
    assert k.call("EVAL", "return {double=0/0}", "0") == b"nan"
    raw = RawClient(k.sock.getpeername()[1], 3)
    try:
        assert raw.call("EVAL", "return {double=0/0}", "0") == b",nan\r\n"
    finally:
        raw.close()


def test_setresp3_leaves_the_caller_in_resp2(keel, redis_ref):
    """The script's protocol is its own: the RESP2 caller's next reply is RESP2."""
    for port in (keel.port, redis_ref.port):
        c = RawClient(port, 2)
        try:
            c.call("ZADD", "zp", "1.5", "m")
            assert c.call("EVAL", "redis.setresp(3); return redis.call('zscore','zp','m')", "0") == b"$3\r\n1.5\r\n"
            assert c.call("ZRANGE", "zp", "0", "-1", "WITHSCORES") == b"*2\r\n$1\r\nm\r\n$3\r\n1.5\r\n"
            assert c.call("HGETALL", "nokey") == b"*0\r\n"
        finally:
            c.call("DEL", "zp")
            c.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_reads_setresp3_replies_as_from_redis(keel, redis_ref, protocol):
    """redis-py (``protocol=3`` and 2) parses the same values from both servers."""
    results = []
    for proc in (keel, redis_ref):
        r = proc.redis(protocol=protocol)
        try:
            r.delete("pz", "ph")
            r.zadd("pz", {"a": 1.5, "b": 2})
            r.hset("ph", mapping={"f": "v"})
            results.append([
                r.eval(R3 + "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", 1, "pz"),
                r.eval(R3 + "return redis.call('hgetall', KEYS[1])", 1, "ph"),
                r.eval(R3 + "return {double=2.5}", 0),
                r.eval(R3 + "return true", 0),
                r.eval(R3 + "return false", 0),
                r.eval("return {set={x=true}}", 0),
            ])
            r.delete("pz", "ph")
        finally:
            r.close()
    assert results[0] == results[1]
