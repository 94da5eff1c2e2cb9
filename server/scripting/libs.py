"""Libraries Redis loads into its Lua states besides Lua's own, written for
Keel in Python: ``bit`` (LuaBitOp: 32-bit operations on Lua numbers) and
``cjson`` (encode/decode between Lua values and JSON, with cjson's rules:
a table whose keys are 1..n is an array, any other table an object, an
empty table ``{}``, numbers with ``%.14g``, JSON null as ``cjson.null``),
here; ``cmsgpack`` (server.scripting.cmsgpack) and ``struct``
(server.scripting.lstruct) in their own modules.

Each function raises a ``ScriptError`` (the script sees a Lua error) on bad
input, as the C libraries do.
"""

from __future__ import annotations

import json
import math

from server.scripting.vm import ScriptError, lua_type


def _i32(v) -> int:
    if type(v) not in (int, float) or v != v or v in (math.inf, -math.inf):
        raise ScriptError("ERR bad argument to bit operation (number expected)")
    n = int(v) & 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


def _u(v) -> int:
    return _i32(v) & 0xFFFFFFFF


def _fold(op):
    def f(*args):
        if not args:
            raise ScriptError("ERR bad argument #1 to bit operation (number expected)")
        acc = _u(args[0])
        for a in args[1:]:
            acc = op(acc, _u(a))
        return _i32(acc)
    return f


def _tohex(x, n=8):
    n = int(n)
    digits = "0123456789ABCDEF" if n < 0 else "0123456789abcdef"
    n = min(abs(n), 8) or 8
    v = _u(x)
    return "".join(digits[(v >> (4 * i)) & 15] for i in reversed(range(n))).encode()


BIT = {
    b"tobit": lambda x: _i32(x),
    b"tohex": _tohex,
    b"bnot": lambda x: _i32(~_u(x)),
    b"band": _fold(lambda a, b: a & b),
    b"bor": _fold(lambda a, b: a | b),
    b"bxor": _fold(lambda a, b: a ^ b),
    b"lshift": lambda x, n: _i32(_u(x) << (_u(n) & 31)),
    b"rshift": lambda x, n: _i32(_u(x) >> (_u(n) & 31)),
    b"arshift": lambda x, n: _i32(_i32(x) >> (_u(n) & 31)),
    b"rol": lambda x, n: _i32((_u(x) << (_u(n) & 31)) | (_u(x) >> ((32 - (_u(n) & 31)) & 31))),
    b"ror": lambda x, n: _i32((_u(x) >> (_u(n) & 31)) | (_u(x) << ((32 - (_u(n) & 31)) & 31))),
    b"bswap": lambda x: _i32(int.from_bytes(_u(x).to_bytes(4, "little"), "big")),
}


class _Null:
    __slots__ = ()


NULL = _Null()


def _number(v) -> str:
    if v != v or v in (math.inf, -math.inf):
        raise ScriptError("ERR Cannot serialise number: must not be NaN or Inf")
    if type(v) is int or v == int(v) and abs(v) < 1e14:
        return "%d" % v
    return "%.14g" % v


def _encode(v, depth: int = 0) -> str:
    if depth > 1000:
        raise ScriptError("ERR Cannot serialise, excessive nesting (1001)")
    t = type(v)
    if v is None or v is NULL:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return _number(v)
    if t is bytes:
        return json.dumps(v.decode("latin-1"), ensure_ascii=False).replace("/", "\\/")
    if lua_type(v) == "table":
        keys = list(v.keys())
        if keys and all(type(k) in (int, float) and k == int(k) and k >= 1 for k in keys):
            n = int(max(keys))
            if n <= 2 * len(keys) or n <= 10:  # cjson's sparse-array rule
                return "[" + ",".join(_encode(v[i], depth + 1) for i in range(1, n + 1)) + "]"
            raise ScriptError("ERR Cannot serialise table: excessively sparse array")
        parts = []
        for k in keys:
            if type(k) in (int, float):
                k = _number(k).encode()
            elif type(k) is not bytes:
                raise ScriptError("ERR Cannot serialise table: table key must be a number or string")
            parts.append(_encode(k) + ":" + _encode(v[k], depth + 1))
        return "{" + ",".join(parts) + "}"
    raise ScriptError(f"ERR Cannot serialise {lua_type(v) or t.__name__}: type not supported")


def install(vm) -> None:
    lua = vm.lua
    env = vm.api[b"env"]
    bit = lua.table()
    for name, fn in BIT.items():
        bit[name] = fn
    env[b"bit"] = bit

    cjson = lua.table()

    def encode(*args):
        if len(args) != 1:
            raise ScriptError("ERR bad argument #1 to 'encode' (expected 1 argument)")
        return _encode(args[0]).encode("latin-1", "replace")

    def to_lua(x):
        if x is None:
            return cjson[b"null"]
        if type(x) is str:
            return x.encode("utf-8")
        if type(x) is bool or type(x) is int or type(x) is float:
            return x
        if type(x) is list:
            return lua.table_from([to_lua(i) for i in x])
        return lua.table_from({k.encode("utf-8"): to_lua(i) for k, i in x.items()})

    def decode(*args):
        if len(args) != 1 or type(args[0]) is not bytes:
            raise ScriptError("ERR bad argument #1 to 'decode' (string expected)")
        try:
            return to_lua(json.loads(args[0].decode("utf-8", "surrogateescape")))
        except ValueError as e:
            raise ScriptError(f"ERR Expected value but found invalid token at character {getattr(e, 'pos', 0) + 1}")

    cjson[b"encode"] = encode
    cjson[b"decode"] = decode
    cjson[b"null"] = NULL
    env[b"cjson"] = cjson

    from server.scripting import cmsgpack, lstruct
    from server.scripting.clib import CLib
    clib = CLib(vm)
    cmsgpack.install(vm, clib)
    lstruct.install(vm, clib)
