"""EVAL and SCRIPT side by side with a real redis-server: the same scripts,
the same replies — conversions both ways, errors and their texts, the
sandbox, script flags."""

from __future__ import annotations

import pytest

# Each case: the script, then numkeys and the keys and arguments.
CONVERSIONS = [
    ("return 1",), ("return -3.7",), ("return 3.99",), ("return 'x'",), ("return true",), ("return false",),
    ("return nil",), ("return {1,2,3,nil,4}",), ("return {1,{2,'x'},true,false}",),
    ("return {1,2,3.5, 'a', true, false}",), ("return {ok='x'}",), ("return {ok=''}",), ("return {err='x'}",),
    ("return {1,2,{err='x'}}",), ("return {1,2,{ok='x'}}",), ("return redis.status_reply('FOO')",),
    ("return redis.error_reply('x')",), ("return redis.error_reply('MY x')",), ("return redis.error_reply(1)",),
    ("return redis.status_reply()",), ("return {double=3.5}",), ("return {map={a=1}}",),
    ("return {set={a=true}}",), ("return {big_number='123'}",),
    ("return {verbatim_string={format='txt',string='hi'}}",),
    ("return {KEYS[1],ARGV[1],ARGV[2]}", "1", "kk", "vv", "ww"), ("return #KEYS",),
    ("return redis.call('get','nokey')",), ("return redis.call('ping')",),
    ("redis.setresp(3); return redis.call('hgetall','nokey')",),
    ("redis.setresp(3); return redis.call('get','nokey') == nil",),
    ("redis.setresp(3); return redis.call('exists','nokey')",),
    ("redis.setresp(3); return redis.call('ping')",),
    ("return redis.call('set', 'n', -0.5)",), ("return redis.call('set', 'big', 1e20)",),
    ("return redis.call('set', 'n', 3.0)",), ("return tostring(1e20)",),
    ("return redis.sha1hex('')",), ("return {redis.REPL_ALL, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_NONE}",),
    ("return {redis.LOG_DEBUG,redis.LOG_VERBOSE,redis.LOG_NOTICE,redis.LOG_WARNING}",),
    ("return redis.replicate_commands()",), ("return redis.log(redis.LOG_WARNING, 'from a test')",),
    ("return table.concat({1,2},',')",), ("math.randomseed(1); return math.random(1,1000)",),
    ("math.randomseed(7); return {math.random(10), math.random(5, 9), tostring(math.random())}",),
]

ERRORS = [
    ("a=1",), ("return a",), ("return _G.x",), ("return rawget(_G,'x')",), ("string.x = 1 return 1",),
    ("return os",), ("return io",), ("return loadfile",), ("return dofile",), ("return debug",),
    ("return require",), ("return setfenv",), ("return getfenv",), ("return newproxy",), ("return print",),
    ("return type(loadstring)..type(unpack)..type(coroutine)..type(pcall)..type(_G)",),
    ("return 'x' .. {}",), ("return error('boom')",), ("return error('x', 0)",), ("return error(nil)",),
    ("return error({err='x'})",), ("error('ERR foo',0)",), ("error('MYERR foo')",),
    ("\n\nlocal x = 1\nerror('boom')",), ("\n\nlocal x = 1\nredis.call('incr','s')",),
    ("local function f() redis.call('incr','s') end\n\nf()",),
    ("return redis.call('incr','s')",), ("return redis.pcall('incr','s')",),
    ("local ok,e = pcall(redis.call,'incr','s'); return {type(e), tostring(e)}",),
    ("local ok,e = pcall(redis.call,'incr','s'); error(e)",),
    ("local ok,e = pcall(redis.call,'lpush','s', 1); error(e)",),
    ("local ok,e = pcall(error, 'x'); return {type(e), tostring(e)}",),
    ("return redis.call('nosuch')",), ("return redis.pcall('nosuch')",), ("return redis.call('get')",),
    ("return redis.pcall('get')",), ("return redis.call('eval','return 1', 0)",),
    ("return redis.call('set','a',{})",), ("return redis.pcall('set','a',{})",), ("return redis.call()",),
    ("return redis.call('lpush','s','b')",), ("return redis.sha1hex()",), ("return redis.set_repl(99)",),
    ("return redis.setresp(4)",), ("return 1 +",), ("#!lua flags=bogus\nreturn 1",),
    ("#!lua name=x\nreturn 1",), ("#!luax\nreturn 1",), ("#!lua\nreturn 1",),
    ("#!lua flags=no-writes\nreturn redis.call('set','x','y')",),
    ("#!lua flags=no-writes,allow-oom\nreturn redis.call('get','x')",),
]


@pytest.mark.parametrize("case", CONVERSIONS + ERRORS, ids=lambda c: c[0][:40])
def test_script_replies_match_redis(pair, case):
    pair.check("SET", "s", "abc")
    script, *rest = case
    pair.check("EVAL", script, *(rest or ["0"]))


@pytest.mark.parametrize("case", CONVERSIONS[:26], ids=lambda c: c[0][:40])
def test_script_replies_match_redis_resp3(pair, case):
    pair.both("HELLO", "3")
    script, *rest = case
    pair.check("EVAL", script, *(rest or ["0"]))


def test_write_commands_refused_in_eval_ro(pair):
    pair.check("EVAL_RO", "return redis.call('set','x','y')", "0")
    pair.check("EVAL_RO", "return redis.call('get','x')", "0")
    pair.check("EVAL_RO", "#!lua\nreturn 1", "0")
    pair.check("EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0")


def test_numkeys_errors(pair):
    pair.check("EVAL", "return 1", "-1")
    pair.check("EVAL", "return 1", "3", "a")
    pair.check("EVAL", "return 1", "x")
    pair.check("EVALSHA", "ab" * 20, "0")
    pair.check("EVALSHA", "nope", "0")


def test_script_load_exists_evalsha_flush(pair):
    sha = pair.check("SCRIPT", "LOAD", "return redis.call('incr', KEYS[1])")
    pair.check("SCRIPT", "EXISTS", sha, "ab" * 20, sha.upper())
    pair.check("EVALSHA", sha, "1", "counter")
    pair.check("EVALSHA", sha.upper(), "1", "counter")
    pair.check("EVALSHA_RO", sha, "1", "counter")
    pair.check("SCRIPT", "FLUSH", "x")
    pair.check("SCRIPT", "FLUSH", "SYNC")
    pair.check("SCRIPT", "EXISTS", sha)
    pair.check("EVALSHA", sha, "1", "counter")
    pair.check("SCRIPT", "KILL")
    pair.check("SCRIPT", "LOAD", "return 1 +")


def test_scripts_writes_and_types(pair):
    pair.check("EVAL", "redis.call('rpush', KEYS[1], ARGV[1], ARGV[2]); return redis.call('lrange', KEYS[1], 0, -1)",
               "1", "l", "a", "b")
    pair.check("EVAL", "return redis.call('hset', KEYS[1], 'f', 'v')", "1", "h")
    pair.check("EVAL", "return redis.call('hgetall', KEYS[1])", "1", "h")
    pair.check("EVAL", "redis.setresp(3); return redis.call('hgetall', KEYS[1])", "1", "h")
    pair.check("EVAL", "return redis.call('incrbyfloat', 'fl', '1.5')", "0")
    pair.check("EVAL", "return redis.call('type', 'h')", "0")
    pair.check("EVAL", "redis.call('select', 3); return redis.call('set', 'in3', 'v')", "0")
    pair.check("GET", "in3")  # the SELECT inside the script stayed there
    pair.check("EVAL", "return redis.call('zadd', 'z', 1.5, 'a')", "0")
    pair.check("EVAL", "return redis.call('zscore', 'z', 'a')", "0")
    pair.check("EVAL", "redis.setresp(3); return redis.call('zscore', 'z', 'a')", "0")


LIBRARIES = [
    "return bit.band(0xff, 0x0f)", "return bit.bor(1,2,4)", "return bit.bxor(5,3)", "return bit.bnot(0)",
    "return bit.lshift(1, 31)", "return bit.rshift(-1, 28)", "return bit.arshift(-256, 4)",
    "return bit.rol(0x12345678, 8)", "return bit.ror(0x12345678, 8)", "return bit.tohex(255)",
    "return bit.tohex(-1, -4)", "return bit.bswap(0x12345678)", "return bit.tobit(0xffffffff + 3)",
    "return cjson.encode({1,2,3})", "return cjson.encode({a=1})", "return cjson.encode({})",
    "return cjson.encode('a/b\"c')", "return cjson.encode({1.5, true, false, cjson.null})",
    "return cjson.encode({[1]=1,[3]=3})",
    "local t = cjson.decode('{\"a\":[1,2,{\"b\":null}]}') return {t.a[1], t.a[2], type(t.a[3].b)}",
    "return cjson.decode('[1,2,3]')[2]", "return cjson.decode('\"x\"')", "return cjson.decode('3.5') * 2",
    "return cjson.encode(cjson.decode('{\"k\":\"v\"}'))", "return type(cjson.null)", "return cjson.encode(1e20)",
    "return cjson.encode(0.1)",
]


@pytest.mark.parametrize("script", LIBRARIES, ids=lambda s: s[:40])
def test_bit_and_cjson_match_redis(pair, script):
    pair.check("EVAL", script, "0")
