"""One Lua 5.1 state (lupa) set up as Redis sets up its scripting state.

``LuaVM`` owns a ``lupa.lua51.LuaRuntime`` running ``prelude.lua``: the
``redis`` table, the sandbox (no os/io/loadfile/dofile/…; undeclared globals
neither read nor written, in Redis's words; read-only library tables),
Redis's ``math.random`` (the rand48 generator, one sequence per state as in
Redis 7.0, ``math.randomseed`` resetting it) and a count hook that calls
``on_hook`` every ``HOOK_EVERY`` instructions (the busy check and SCRIPT
KILL, ``server.scripting.busy``).

Conversions, as Redis documents them:

* reply -> Lua (what ``redis.call`` returns): integer -> number, bulk ->
  string, nil bulk / nil array -> false (RESP3: nil), array -> table,
  status -> ``{ok=…}``, error -> ``{err=…}`` (raised by ``redis.call``);
  after ``redis.setresp(3)``: map -> ``{map=…}``, set -> ``{set=…}``,
  double -> ``{double=…}``, boolean -> boolean, big number ->
  ``{big_number=…}``, verbatim -> ``{verbatim_string=…}``.
* Lua -> reply (what a script returns): number -> integer (truncated),
  string -> bulk, true -> 1, false/nil -> nil (after ``redis.setresp(3)``:
  true/false -> booleans, :1/:0 to a RESP2 client), ``{ok=…}`` -> status,
  ``{err=…}`` -> error (CR and LF in those two made spaces), ``{double=…}``, ``{map=…}``, ``{set=…}``,
  ``{big_number=…}``, ``{verbatim_string=…}`` -> their RESP3 types (their
  RESP2 forms for a RESP2 client; a verbatim format cut or padded to three
  characters), other tables -> arrays up to the first nil.

``redis.setresp(3)`` also switches the calling client to RESP3 while the
script runs (``on_setresp``), so that handlers answer in RESP3's shapes
(ZRANGE WITHSCORES as pairs of doubles, GEOPOS doubles), as Redis's script
client does.

The VM knows nothing of commands: ``call`` (set by the owner) runs one.
"""

from __future__ import annotations

import hashlib
import logging
import os

import lupa.lua51 as lua51

from engine.errors import CommandError
from engine.reply import NULL_ARRAY, OK, BigNumber, Raw, Set, Status, Verbatim
from server.resp import format_double

log = logging.getLogger("keel.scripting")

HOOK_EVERY = 100_000  # Lua instructions between two calls of the hook
_PRELUDE = open(os.path.join(os.path.dirname(__file__), "prelude.lua"), "rb").read()
_LOG_LEVELS = (logging.DEBUG, logging.DEBUG, logging.INFO, logging.WARNING)
_MASK48 = (1 << 48) - 1
_RAND_MAX = 2147483647
ARGS_ERR = "ERR Lua redis lib command arguments must be strings or integers"
NO_ARGS_ERR = "ERR Please specify at least one argument for this redis lib call"
LuaError = lua51.LuaError
LuaMemoryError = lua51.LuaMemoryError
lua_type = lua51.lua_type


def arg_bytes(a) -> bytes | None:
    """A ``redis.call`` argument as Redis turns it into a string (None: refused)."""
    t = type(a)
    if t is bytes:
        return a
    if t is int:
        return b"%d" % a if -10**17 < a < 10**17 else repr(float(a)).encode()
    if t is float:
        if a == int(a) and abs(a) < 1e17:
            return b"%d" % a
        return _shortest(a)
    return None


def _shortest(d: float) -> bytes:
    s = repr(d)
    if "e" in s:
        m, e = s.split("e")
        s = m + "e" + ("+" if not e.startswith("-") else "-") + e.lstrip("+-").rjust(2, "0")
    return s.encode()


class LuaVM:
    """A Lua state with Redis's environment. ``chunkname`` names its code
    in error texts (``@user_script`` for EVAL, ``@user_function`` for FCALL)."""

    def __init__(self, chunkname: bytes, max_memory: int = 0):
        self.lua = lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                    unpack_returned_tuples=True, max_memory=max_memory or None)
        self.call = None  # call(argv) -> reply value; raises CommandError (set by the owner)
        self.on_hook = _no_hook  # () -> error text to kill the script with, or None
        self.resp = 2  # the protocol of redis.call's replies (redis.setresp)
        self.repl = 3  # redis.set_repl's flags
        self.on_setresp = _no_resp  # (version): the calling client's replies take that protocol
        self.caller_protocol = 2  # the protocol of the client the script's reply goes to
        self.rand = int.from_bytes(os.urandom(6), "little")
        from server.app import REDIS_VERSION
        major, minor, patch = (int(x) for x in REDIS_VERSION.split("."))
        self.api = api = self.lua.execute(
            _PRELUDE, _errtext, self._hook, REDIS_VERSION.encode(),
            (major << 16) | (minor << 8) | patch, HOOK_EVERY, chunkname, _caught)
        redis = api[b"redis"]
        redis[b"call"] = self._call
        redis[b"pcall"] = self._pcall
        redis[b"sha1hex"] = _sha1
        redis[b"log"] = _log
        redis[b"setresp"] = self._setresp
        redis[b"set_repl"] = self._setrepl
        math = api[b"env"][b"math"]
        math[b"random"] = self._random
        math[b"randomseed"] = self._seed
        from server.scripting import libs
        libs.install(self)
        api[b"seal"](callable)
        self._ok, self._err, self._double = api[b"ok"], api[b"err"], api[b"double"]
        self._map, self._set = api[b"map"], api[b"set"]
        self._big, self._verbatim = api[b"big_number"], api[b"verbatim"]
        self._ok_batch = api[b"ok_batch"]
        self._oks = []
        self.table = self.lua.table_from
        self.run_script = api[b"run"]
        self.run_function = api[b"run_function"]
        self.compile = api[b"compile"]

    def memory(self) -> int:
        return self.lua.get_memory_used() or 0

    # -- callbacks from Lua (the redis.* functions that may raise) -----------------
    # redis.call runs once per command a script sends, so its path is written
    # out: the arguments taken as they come when they are all strings, +OK
    # (the commonest reply) as a status table from a pool.
    def _call(self, *args):
        argv = list(args)
        if not all(map(bytes.__instancecheck__, argv)) or not argv:
            argv = _argv(argv)
        try:
            r = self.call(argv)
        except CommandError as e:
            raise ScriptError(e.text) from None
        if r is OK:
            return self._ok_table()
        return self.to_lua(r)

    def _pcall(self, *args):
        try:
            argv = list(args)
            if not all(map(bytes.__instancecheck__, argv)) or not argv:
                argv = _argv(argv)
            r = self.call(argv)
        except (CommandError, ScriptError) as e:
            return self._err(e.text.encode())
        if r is OK:
            return self._ok_table()
        return self.to_lua(r)

    def _ok_table(self):
        """A new ``{ok='OK'}`` table: made 256 at a time, one call into Lua
        for them all instead of one each (each is handed out once: a script
        may change the table it gets)."""
        pool = self._oks
        if not pool:
            pool.extend(self._ok_batch(b"OK", 256))
        return pool.pop()

    def _hook(self):
        return self.on_hook()

    def _setresp(self, v=None) -> None:
        if v != 2 and v != 3:
            raise ScriptError("ERR RESP version must be 2 or 3.")
        self.resp = int(v)
        self.on_setresp(self.resp)

    def _setrepl(self, v=None) -> None:
        if type(v) not in (int, float) or v != int(v) or not 0 <= v <= 3:
            raise ScriptError("ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
        self.repl = int(v)

    def _next(self) -> int:
        self.rand = (0x5DEECE66D * self.rand + 0xB) & _MASK48
        return self.rand >> 17

    def _random(self, *args):
        r = (self._next() % _RAND_MAX) / _RAND_MAX
        n = len(args)
        if n == 0:
            return r
        if not all(type(a) in (int, float) for a in args):
            raise ScriptError(f"ERR bad argument #{n} to 'random' (number expected)")
        if n == 1:
            if args[0] < 1:
                raise ScriptError("ERR bad argument #1 to 'random' (interval is empty)")
            return int(r * int(args[0])) + 1
        if n == 2:
            lo, hi = int(args[0]), int(args[1])
            if lo > hi:
                raise ScriptError("ERR bad argument #2 to 'random' (interval is empty)")
            return int(r * (hi - lo + 1)) + lo
        raise ScriptError("ERR wrong number of arguments")

    def _seed(self, s=None) -> None:
        if type(s) not in (int, float):
            raise ScriptError("ERR bad argument #1 to 'randomseed' (number expected)")
        self.rand = ((int(s) & 0xFFFFFFFF) << 16) | 0x330E

    # -- replies to Lua ----------------------------------------------------------
    def to_lua(self, r):
        t = type(r)
        if t is Raw:
            return self.to_lua(parse_raw(r))
        if t is bytes:
            return r
        if t is int:
            return r
        if t is Status:
            return self._ok(r.encode())
        if r is None or r is NULL_ARRAY:
            return False if self.resp == 2 else None
        if t is list or t is tuple:
            return self.table([self.to_lua(x) for x in r])
        if t is bool:
            return (1 if r else 0) if self.resp == 2 else r
        if t is float:
            return format_double(r) if self.resp == 2 else self._double(r)
        if t is dict:
            if self.resp == 2:
                flat = []
                for k, v in r.items():
                    flat.append(self.to_lua(k))
                    flat.append(self.to_lua(v))
                return self.table(flat)
            return self._map(self.table({self.to_lua(k): self.to_lua(v) for k, v in r.items()}))
        if t is Set:
            if self.resp == 2:
                return self.table([self.to_lua(x) for x in r])
            return self._set(self.table({self.to_lua(x): True for x in r}))
        if t is Verbatim:
            return bytes(r) if self.resp == 2 else self._verbatim(b"txt", bytes(r))
        if t is BigNumber:
            return bytes(r) if self.resp == 2 else self._big(bytes(r))
        if isinstance(r, CommandError):
            return self._err(r.text.encode())
        if t is str:
            return r.encode()
        raise TypeError(f"no Lua form for a reply of type {t.__name__}")

    # -- a script's result to a reply ----------------------------------------------
    def to_reply(self, v, depth: int = 0):
        t = type(v)
        if t is bytes:
            return v
        if t is int:
            return v
        if t is float:
            return int(v) if v == v and abs(v) < 2**63 else -2**63
        if t is bool:  # after redis.setresp(3) a boolean (:1/:0 to a RESP2 client)
            return v if self.resp == 3 else 1 if v else None
        if v is None:
            return None
        if lua_type(v) != "table":
            return None  # functions, userdata, threads: nil, as in Redis
        if depth > 1000:
            raise CommandError("ERR reached lua stack limit")
        err = v[b"err"]
        if type(err) is bytes:
            return CommandError(line_text(err))
        ok = v[b"ok"]
        if type(ok) is bytes:
            return Status(line_text(ok))
        d = v[b"double"]
        if d is not None and type(d) in (int, float):
            return float(d)  # (a NaN prints "nan", as Redis 7.2 prints every NaN; 7.0: "-nan" for Lua's 0/0)
        big = v[b"big_number"]
        if type(big) is bytes:
            return BigNumber(big)
        m = v[b"map"]
        if m is not None and lua_type(m) == "table":
            return {self.to_reply(k, depth + 1): self.to_reply(x, depth + 1) for k, x in m.items()}
        s = v[b"set"]
        if s is not None and lua_type(s) == "table":
            return Set(self.to_reply(k, depth + 1) for k in s.keys())
        vs = v[b"verbatim_string"]
        if vs is not None and lua_type(vs) == "table" and type(vs[b"string"]) is bytes \
                and type(vs[b"format"]) is bytes:
            fmt = vs[b"format"][:3].ljust(3)  # three characters, as Redis writes it: cut or padded with spaces
            if fmt == b"txt" or self.caller_protocol == 2:
                return Verbatim(vs[b"string"])
            body = fmt + b":" + vs[b"string"]
            return Raw(b"=%d\r\n%s\r\n" % (len(body), body))
        out = []
        i = 1
        while True:
            x = v[i]
            if x is None:
                return out
            out.append(self.to_reply(x, depth + 1))
            i += 1


def line_text(s: bytes) -> str:
    """A status or error text a script returns, as one line: CR and LF
    become spaces, as Redis makes them (they would end the reply early)."""
    if b"\r" in s or b"\n" in s:
        s = s.replace(b"\r", b" ").replace(b"\n", b" ")
    return s.decode("utf-8", "replace")


def _argv(args: list) -> list:
    """redis.call's arguments as Redis takes them: numbers become strings."""
    if not args:
        raise ScriptError(NO_ARGS_ERR)
    for i, a in enumerate(args):
        b = arg_bytes(a)
        if b is None:
            raise ScriptError(ARGS_ERR)
        args[i] = b
    return args


class ScriptError(Exception):
    """An error a redis.* function raises into the script, with Redis's text."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _errtext(e) -> bytes:
    if isinstance(e, ScriptError):
        return e.text.encode()
    return b"ERR " + str(e).encode("utf-8", "replace")


def _caught(e) -> bytes:
    """What a script's pcall gets for an error a Python function raised:
    a library's message as Lua gives it, Redis's reply text otherwise."""
    if isinstance(e, ScriptError):
        return getattr(e, "caught", e.text).encode()
    return b"ERR " + str(e).encode("utf-8", "replace")


def _no_hook():
    return None


def _no_resp(version: int) -> None:
    return None


def _text(v) -> bytes:
    if type(v) is bytes:
        return v
    if type(v) in (int, float):
        return arg_bytes(v)
    return b"nil" if v is None else (b"true" if v is True else b"false" if v is False else repr(v).encode())


def _log(*args) -> None:
    if len(args) < 2:
        raise ScriptError("ERR redis.log() requires two arguments or more.")
    level = args[0]
    if type(level) not in (int, float):
        raise ScriptError("ERR First argument must be a number (log level).")
    if not 0 <= level <= 3:
        raise ScriptError("ERR Invalid debug level.")
    log.log(_LOG_LEVELS[int(level)], "%s", b" ".join(map(_text, args[1:])).decode("utf-8", "replace"))


def _sha1(*args) -> bytes:
    if len(args) != 1 or type(args[0]) not in (bytes, int, float):
        raise ScriptError("ERR wrong number of arguments")
    return hashlib.sha1(_text(args[0])).hexdigest().encode()


# --- pre-encoded replies --------------------------------------------------------

_PARSED = {}  # the common constants (OK, :0 …), parsed once


def parse_raw(data: bytes):
    """A pre-encoded reply (``Raw``) back into a reply value."""
    v = _PARSED.get(data)
    if v is not None:
        return v
    v, pos = _parse(data, 0)
    if len(data) < 64 and type(v) in (Status, int):
        _PARSED[bytes(data)] = v
    return v


def _parse(b: bytes, pos: int):
    kind = b[pos:pos + 1]
    end = b.index(b"\r\n", pos)
    line = b[pos + 1:end]
    pos = end + 2
    if kind == b"+":
        return Status(line.decode("utf-8", "replace")), pos
    if kind == b"-":
        return CommandError(line.decode("utf-8", "replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$" or kind == b"=" or kind == b"!":
        n = int(line)
        if n < 0:
            return None, pos
        s = b[pos:pos + n]
        pos += n + 2
        if kind == b"=":
            return Verbatim(s[4:]), pos
        if kind == b"!":
            return CommandError(s.decode("utf-8", "replace")), pos
        return s, pos
    if kind in (b"*", b"~", b">"):
        n = int(line)
        if n < 0:
            return NULL_ARRAY, pos
        items = []
        for _ in range(n):
            x, pos = _parse(b, pos)
            items.append(x)
        return (Set(items) if kind == b"~" else items), pos
    if kind == b"%":
        out = {}
        for _ in range(int(line)):
            k, pos = _parse(b, pos)
            x, pos = _parse(b, pos)
            out[k if not isinstance(k, list) else tuple(k)] = x
        return out, pos
    if kind == b"_":
        return None, pos
    if kind == b",":
        return float(line), pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b"(":
        return BigNumber(line), pos
    raise ValueError(f"cannot parse reply {b[:32]!r}")
