"""What a library written in Python needs to behave as one of Lua's C
libraries: its argument checks (``luaL_checknumber``, ``luaL_checklstring``,
``luaL_optinteger``) and its errors (``luaL_error``, ``luaL_argerror``), in
Lua's words.

A Python function in a Lua state is called as a C function is, so Lua's
debug information sees it as one: level 1 of ``debug.getinfo`` (asked from
Python while the call runs) is the call itself, which tells the name it was
called by (``'pack'``, a local's name, ``'?'`` through ``pcall``); level 2 is
its caller, whose line opens the message (``user_script:1: ``) when it is Lua
code. That is what Lua's own ``luaL_where(L, 1)`` and ``luaL_argerror`` read,
so the texts come out as Redis's C libraries make them. Both are looked up
only when an error is raised.

``LibError`` carries the message two ways: a script's ``pcall`` gets it as
Lua gives it (``user_script:1: bad argument …``), the reply gets Redis's
``ERR `` in front.
"""

from __future__ import annotations

import math

from server.scripting.vm import ScriptError, lua_type

MAXCSTACK = 8000  # LUAI_MAXCSTACK: the slots a C function may use (luaL_checkstack)
_INT64_MIN = -(1 << 63)


class LibError(ScriptError):
    """An error raised by a library function (``luaL_error``)."""

    def __init__(self, msg: str):
        super().__init__("ERR " + msg)
        self.caught = msg  # what pcall hands the script


def typename(args: tuple, i: int) -> str:
    """``luaL_typename`` of argument ``i`` (1-based); "no value" past the last."""
    if i > len(args):
        return "no value"
    v = args[i - 1]
    t = type(v)
    if v is None:
        return "nil"
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is bytes:
        return "string"
    return lua_type(v) or "userdata"  # a Python object (cjson.null) is userdata to Lua


def to_integer(d) -> int:
    """``lua_tointeger`` of a number: truncated, as C casts a double."""
    if type(d) is int:
        return d
    if d != d or d in (math.inf, -math.inf) or abs(d) >= 2.0 ** 63:
        return _INT64_MIN  # what x86's conversion gives for what does not fit
    return int(d)


def c_int(n: int) -> int:
    """A ``lua_Integer`` stored in a C ``int``."""
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


class CLib:
    """The checks and errors of one Lua state's C-style library functions."""

    def __init__(self, vm):
        api = vm.api
        env = api[b"env"]
        self._getinfo = api[b"getinfo"]
        self._tonumber = env[b"tonumber"]
        self._tostring = env[b"tostring"]

    # -- errors ----------------------------------------------------------------
    def where(self) -> str:
        """``luaL_where(L, 1)``: the calling line, when the caller is Lua code."""
        info = self._getinfo(2, b"Sl")
        if info is not None:
            line = info[b"currentline"]
            if line is not None and line > 0:
                return "%s:%d: " % (info[b"short_src"].decode("utf-8", "replace"), line)
        return ""

    def error(self, msg: str) -> LibError:
        """``luaL_error``: raise what this returns."""
        return LibError(self.where() + msg)

    def arg_error(self, narg: int, extramsg: str) -> LibError:
        """``luaL_argerror``: raise what this returns."""
        info = self._getinfo(1, b"n")
        name = namewhat = None
        if info is not None:
            name, namewhat = info[b"name"], info[b"namewhat"]
        name = name.decode("utf-8", "replace") if type(name) is bytes else "?"
        if namewhat == b"method":
            narg -= 1
            if narg == 0:
                return self.error("calling '%s' on bad self (%s)" % (name, extramsg))
        return self.error("bad argument #%d to '%s' (%s)" % (narg, name, extramsg))

    def type_error(self, args: tuple, i: int, expected: str) -> LibError:
        return self.arg_error(i, "%s expected, got %s" % (expected, typename(args, i)))

    # -- argument checks ---------------------------------------------------------
    def number(self, args: tuple, i: int):
        """``luaL_checknumber``: a number, or a string Lua reads as one."""
        v = args[i - 1] if i <= len(args) else None
        t = type(v)
        if t is int or t is float:
            return v
        if t is bytes:
            n = self._tonumber(v)
            if n is not None:
                return n
        raise self.type_error(args, i, "number")

    def integer(self, args: tuple, i: int) -> int:
        """``luaL_checkinteger``."""
        return to_integer(self.number(args, i))

    def opt_integer(self, args: tuple, i: int, default: int) -> int:
        """``luaL_optinteger``: ``default`` for none or nil."""
        if i > len(args) or args[i - 1] is None:
            return default
        return self.integer(args, i)

    def string(self, args: tuple, i: int) -> bytes:
        """``luaL_checklstring``: a string, or a number as Lua writes it."""
        v = args[i - 1] if i <= len(args) else None
        t = type(v)
        if t is bytes:
            return v
        if t is int or t is float:
            return self._tostring(v)
        raise self.type_error(args, i, "string")

    def stack_error(self, msg: str) -> LibError:
        """``luaL_checkstack`` failing."""
        return self.error("stack overflow (%s)" % msg)
