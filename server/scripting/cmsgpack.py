"""``cmsgpack``, the MessagePack library Redis loads into Lua, written for
Keel: ``pack``, ``unpack``, ``unpack_one``, ``unpack_limit``.

What Redis's library does, and so what this does:

* ``pack(v1, v2, …)`` encodes each argument and concatenates them (no
  argument: ``bad argument #0 … (MessagePack pack needs input.)``).
  A number that a 64-bit integer holds exactly is an integer in its smallest
  encoding (fixnum, uint8/16/32/64, int8/16/32/64); any other number is a
  32-bit float when that holds it exactly (infinities too), else a double.
  Strings are fixstr/str8/str16/str32, booleans true/false; nil, functions,
  userdata (``cjson.null``) and threads are nil.
* A table is an array when its keys are exactly 1..n (an empty table too),
  otherwise a map whose pairs come in the order Lua's ``next`` gives them
  (the same Lua 5.1, so the same bytes as Redis). Tables nested 16 deep are
  encoded as nil past that depth, so a table that holds itself ends.
* ``unpack(s)`` returns every value in ``s``; ``unpack_one(s [, offset])``
  and ``unpack_limit(s, limit [, offset])`` return the offset to go on from
  (-1 when ``s`` is done) and then up to 1 / ``limit`` values. A uint64 reads
  as Redis reads it, through a signed 64-bit integer. Truncated input is
  ``Missing bytes in input.``, an unknown or unsupported type byte (bin, ext)
  ``Bad data format in input.``; a nil or NaN map key is Lua's ``table index
  is nil``/``is NaN``; past Lua's C stack (8000 slots: values returned at
  once, and nesting) the same ``stack overflow (…)`` as Redis, at the same
  counts. The decoder keeps its own stack, so deep nesting costs no Python
  recursion.
"""

from __future__ import annotations

import struct

from server.scripting.clib import MAXCSTACK, CLib, LibError, c_int
from server.scripting.vm import lua_type

MAX_NESTING = 16  # tables deeper than this are encoded as nil
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_FIX = [bytes((i,)) for i in range(256)]  # positive and negative fixnums, one byte each

_EOF = "Missing bytes in input."
_BADFMT = "Bad data format in input."
_TOO_MANY = "too many return values at once; use unpack_one or unpack_limit instead."
_IN_ARRAY = "in function mp_decode_to_lua_array"
_IN_UNPACK = "in function mp_unpack_full"
_INT_MAX = (1 << 31) - 1


# --- encoding ------------------------------------------------------------------------

def _integer(out: list, n: int) -> None:
    if n >= 0:
        if n <= 0x7F:
            out.append(_FIX[n])
        elif n <= 0xFF:
            out.append(b"\xcc" + _FIX[n])
        elif n <= 0xFFFF:
            out.append(b"\xcd" + n.to_bytes(2, "big"))
        elif n <= 0xFFFFFFFF:
            out.append(b"\xce" + n.to_bytes(4, "big"))
        else:
            out.append(b"\xcf" + n.to_bytes(8, "big"))
    elif n >= -32:
        out.append(_FIX[n & 0xFF])
    elif n >= -128:
        out.append(b"\xd0" + _FIX[n & 0xFF])
    elif n >= -32768:
        out.append(b"\xd1" + n.to_bytes(2, "big", signed=True))
    elif n >= -(1 << 31):
        out.append(b"\xd2" + n.to_bytes(4, "big", signed=True))
    else:
        out.append(b"\xd3" + n.to_bytes(8, "big", signed=True))


def _double(out: list, d: float) -> None:
    try:
        f = _F32.pack(d)
        if _F32.unpack(f)[0] == d:  # (NaN is never equal: a double)
            out.append(b"\xca" + f)
            return
    except OverflowError:  # beyond a float's range
        pass
    out.append(b"\xcb" + _F64.pack(d))


def _string(out: list, s: bytes) -> None:
    n = len(s)
    if n < 32:
        out.append(_FIX[0xA0 | n])
    elif n <= 0xFF:
        out.append(b"\xd9" + _FIX[n])
    elif n <= 0xFFFF:
        out.append(b"\xda" + n.to_bytes(2, "big"))
    else:
        out.append(b"\xdb" + n.to_bytes(4, "big"))
    out.append(s)


def _header(out: list, n: int, fix: int, b16: bytes, b32: bytes) -> None:
    if n <= 15:
        out.append(_FIX[fix | n])
    elif n <= 0xFFFF:
        out.append(b16 + n.to_bytes(2, "big"))
    else:
        out.append(b32 + n.to_bytes(4, "big"))


def _table(out: list, t, level: int) -> None:
    items = list(t.items())  # lua_next's order
    n = len(items)
    top = 0
    for k, _ in items:
        if type(k) is not int or not 0 < k <= _INT_MAX:
            break
        if k > top:
            top = k
    else:
        if top == n:  # keys 1..n exactly: an array
            values = [None] * n
            for k, v in items:
                values[k - 1] = v
            _header(out, n, 0x90, b"\xdc", b"\xdd")
            for v in values:
                _value(out, v, level + 1)
            return
    _header(out, n, 0x80, b"\xde", b"\xdf")
    for k, v in items:
        _value(out, k, level + 1)
        _value(out, v, level + 1)


def _value(out: list, v, level: int) -> None:
    t = type(v)
    if t is bytes:
        _string(out, v)
    elif t is int:  # lupa hands over as an int exactly the numbers an int64 holds
        _integer(out, v)
    elif t is float:
        _double(out, v)
    elif t is bool:
        out.append(b"\xc3" if v else b"\xc2")
    elif v is not None and level < MAX_NESTING and lua_type(v) == "table":
        _table(out, v, level)
    else:
        out.append(b"\xc0")


def pack_values(args) -> bytes:
    out = []
    for v in args:
        _value(out, v, 0)
    return b"".join(out)


# --- decoding ------------------------------------------------------------------------

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_SCALARS = {  # type byte -> (payload size, reader)
    0xCC: (1, None), 0xCD: (2, _U16), 0xCE: (4, _U32), 0xCF: (8, _I64),  # uint64 read signed, as Redis does
    0xD0: (1, _I8), 0xD1: (2, _I16), 0xD2: (4, _I32), 0xD3: (8, _I64),
    0xCA: (4, _F32), 0xCB: (8, _F64),
}
_LENGTHS = {  # type byte -> (kind, size of the length field)
    0xD9: ("s", 1), 0xDA: ("s", 2), 0xDB: ("s", 4),
    0xDC: ("a", 2), 0xDD: ("a", 4), 0xDE: ("m", 2), 0xDF: ("m", 4),
}
_CONSTANTS = {0xC0: None, 0xC2: False, 0xC3: True}


class _Container:
    __slots__ = ("is_map", "items", "left", "top")

    def __init__(self, is_map: bool, n: int, top: int):
        self.is_map = is_map
        self.items = []
        self.left = n
        self.top = top  # the Lua stack top below the table (for luaL_checkstack)


class Codec:
    """cmsgpack for one Lua state."""

    def __init__(self, vm, clib: CLib):
        self.clib = clib
        api = vm.api
        self.table_from = vm.lua.table_from
        self.array = api[b"array_from"]
        self.hash = api[b"hash_from"]

    def _build(self, box: _Container):
        items = self.table_from(box.items)
        if box.is_map:
            return self.hash(items, len(box.items) // 2)
        return self.array(items, len(box.items))

    def _one(self, data: bytes, pos: int, top: int):
        """The value at ``pos``, with ``top`` slots of Lua's stack in use
        before it; (value, next position)."""
        clib = self.clib
        end = len(data)
        stack = []
        while True:
            if top + 1 > MAXCSTACK:
                raise clib.stack_error(_TOO_MANY)
            if pos >= end:
                raise clib.error(_EOF)
            b = data[pos]
            pos += 1
            box = None
            if b <= 0x7F:
                v = b
            elif b >= 0xE0:
                v = b - 256
            elif b >= 0xA0 and b <= 0xBF:
                n = b & 0x1F
                if end - pos < n:
                    raise clib.error(_EOF)
                v = data[pos:pos + n]
                pos += n
            elif b >= 0x80 and b <= 0x9F:
                box = (b >= 0x90, b & 0x0F)
            elif b in _CONSTANTS:
                v = _CONSTANTS[b]
            elif b in _SCALARS:
                size, reader = _SCALARS[b]
                if end - pos < size:
                    raise clib.error(_EOF)
                v = data[pos] if reader is None else reader.unpack_from(data, pos)[0]
                pos += size
            elif b in _LENGTHS:
                kind, size = _LENGTHS[b]
                if end - pos < size:
                    raise clib.error(_EOF)
                n = int.from_bytes(data[pos:pos + size], "big")
                pos += size
                if kind == "s":
                    if end - pos < n:
                        raise clib.error(_EOF)
                    v = data[pos:pos + n]
                    pos += n
                else:
                    box = (kind == "a", n)
            else:
                raise clib.error(_BADFMT)
            if box is not None:
                is_array, n = box
                if is_array and top + 2 > MAXCSTACK:
                    raise clib.stack_error(_IN_ARRAY)
                c = _Container(not is_array, n, top)
                if n:
                    stack.append(c)
                    top += 2 if is_array else 1  # (the index or nothing, then the table)
                    continue
                v = self._build(c)
            # a value is complete: it goes into its container, which may complete too
            while stack:
                c = stack[-1]
                c.items.append(v)
                if c.is_map:
                    if len(c.items) & 1:  # a key: its value next, above it
                        top = c.top + 2
                        break
                    k = c.items[-2]
                    # lua_settable's own errors: raised inside the C
                    # function, so with no position
                    if k is None:
                        raise LibError("table index is nil")
                    if type(k) is float and k != k:
                        raise LibError("table index is NaN")
                c.left -= 1
                if c.left:
                    top = c.top + (1 if c.is_map else 2)
                    break
                stack.pop()
                v = self._build(c)
                top = c.top
            else:
                return v, pos

    def unpack(self, args, limit: int, offset: int, base: int):
        """``base``: the arguments left on Lua's stack under the values."""
        clib = self.clib
        decode_all = not limit and not offset
        s = clib.string(args, 1)
        n = len(s)
        if offset < 0 or limit < 0:
            raise clib.error("Invalid request to unpack with offset of %d and limit of %d." % (offset, n))
        if offset > n:
            raise clib.error("Start offset %d greater than input length %d." % (offset, n))
        if decode_all:
            limit = _INT_MAX
        values = []
        pos = offset
        while pos < n and len(values) < limit:
            v, pos = self._one(s, pos, base + len(values))
            values.append(v)
        if decode_all:
            return tuple(values)
        if base + len(values) + 1 > MAXCSTACK:
            raise clib.stack_error(_IN_UNPACK)
        return (-1 if pos == n else pos, *values)


def install(vm, clib: CLib) -> None:
    codec = Codec(vm, clib)

    def pack(*args):
        if not args:
            raise clib.arg_error(0, "MessagePack pack needs input.")
        return pack_values(args)

    def unpack(*args):
        return codec.unpack(args, 0, 0, len(args))

    def unpack_one(*args):
        offset = c_int(clib.opt_integer(args, 2, 0))
        return codec.unpack(args[:1], 1, offset, 1)

    def unpack_limit(*args):
        limit = c_int(clib.integer(args, 2))
        offset = c_int(clib.opt_integer(args, 3, 0))
        return codec.unpack(args[:1], limit, offset, 1)

    t = vm.lua.table()  # filled in the order Redis fills it: pairs() walks it alike
    t[b"pack"] = pack
    t[b"unpack"] = unpack
    t[b"unpack_one"] = unpack_one
    t[b"unpack_limit"] = unpack_limit
    t[b"_NAME"] = b"cmsgpack"
    t[b"_VERSION"] = b"lua-cmsgpack 0.4.0"
    t[b"_COPYRIGHT"] = b"Copyright (C) 2012, Salvatore Sanfilippo"
    t[b"_DESCRIPTION"] = b"MessagePack C implementation for Lua"
    vm.api[b"env"][b"cmsgpack"] = t
