"""The command fuzzer: random argument lists for every command in ``COMMAND``.

``Fuzzer`` reads Keel's command table (``COMMAND``: names, arities,
subcommands) and, where a real redis-server runs beside it, Redis's
``COMMAND DOCS`` argument trees, which name each command's option words and
what kind of value each argument takes. For every command and subcommand it
then sends ``per_command`` argument lists, half built from the argument
tree (options in random order, some left out, some repeated) and half
random; a quarter of them queued in MULTI ... EXEC or run from a script (random arity around the command's, any value in any place): keys
holding every type (small and large encodings) or none, numbers at the
int64 edges and past them, floats, ``inf``/``nan``, huge counts, negative
indexes, empty strings, binary bytes, the command's own option words, DUMP
payloads of real values with damaged bodies and recomputed checksums (so
they reach the decoders), and small valid Lua scripts.

What must hold: every reply parses and is a value or a Redis error; an
``-ERR internal error`` (a handler raised something other than a
``CommandError``: ``dispatch.crashed``) is a failure, and so are a server
that dies, a reply that does not come within ``reply_timeout`` (a hang), and
a connection the server closes.

What is not sent, and why (``SKIP`` and ``guard``): commands that would stop
the test rather than test the command (SHUTDOWN; MONITOR, SYNC, PSYNC and
the SUBSCRIBE family, which turn the connection into a stream; REPLICAOF,
SLAVEOF, FAILOVER and MIGRATE, which connect elsewhere; QUIT and RESET, which
end or reset the fuzzing connection), and some arguments: DEBUG SLEEP (blocks
the server on purpose; and any DEBUG subcommand that crashes, restarts or
fills a server, should Keel grow one), CLIENT KILL (may kill the fuzzing connection), CLIENT
PAUSE (pauses every client), CLIENT REPLY (OFF/SKIP silence the replies the
fuzzer waits for), CONFIG SET of anything but harmless directives (dir, port,
requirepass, maxmemory … would stop or lock out the test), ACL rules for the
``default`` user (``off`` or a password would lock the fuzzer out), AUTH and
HELLO AUTH with a user name (a user without permissions would silence the
rest). Blocking commands get a timeout of at most 50 ms instead of a random
one (0 blocks forever). Counts that make Redis itself build a reply of
billions of elements (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER with a huge
negative count) are kept to thousands. The server runs with
``proto-max-bulk-len 1mb`` so that SETRANGE/SETBIT/BITFIELD offsets cannot
allocate 512 MB each.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import time

import hiredis

from engine.rdb import crc64
from tests.support import encode

SKIP = {
    "shutdown": "stops the server",
    "monitor": "turns the connection into a stream of every command",
    "sync": "turns the connection into a replication stream",
    "psync": "turns the connection into a replication stream",
    "subscribe": "RESP2 subscriber mode refuses every other command",
    "psubscribe": "RESP2 subscriber mode refuses every other command",
    "ssubscribe": "RESP2 subscriber mode refuses every other command",
    "unsubscribe": "subscriber-mode replies (no subscription: pushes, not replies)",
    "punsubscribe": "subscriber-mode replies (no subscription: pushes, not replies)",
    "sunsubscribe": "subscriber-mode replies (no subscription: pushes, not replies)",
    "replicaof": "connects to another server and makes this one a read-only replica",
    "slaveof": "connects to another server and makes this one a read-only replica",
    "failover": "hands the primary role to a replica",
    "migrate": "connects to the host it is given",
    "quit": "closes the fuzzing connection",
    "reset": "resets the fuzzing connection's state (database, protocol, auth)",
    "client|kill": "may kill the fuzzing connection itself",
    "client|pause": "pauses every client, the fuzzer's included",
    "client|reply": "OFF and SKIP silence the replies the fuzzer waits for",
}

# Commands slow by design, sent only this many times: PFSELFTEST runs
# Redis's HyperLogLog self-test, most of a second each.
CAPS = {"pfselftest": 2}

# CONFIG SET only of these: none can stop the server, move its files or lock
# the fuzzer out, whatever value they get.
SAFE_CONFIG = [
    "hash-max-listpack-entries", "hash-max-listpack-value", "zset-max-listpack-entries",
    "zset-max-listpack-value", "set-max-intset-entries", "set-max-listpack-entries",
    "list-max-listpack-size", "list-compress-depth", "notify-keyspace-events", "slowlog-log-slower-than",
    "slowlog-max-len", "latency-tracking", "lazyfree-lazy-user-del", "hz", "stream-node-max-entries",
    "activerehashing", "maxmemory-policy", "maxmemory-samples", "lfu-log-factor", "lfu-decay-time",
    "hll-sparse-max-bytes", "tracking-table-max-keys",
]

# DEBUG subcommands that stop, block or restart the server, or fill it.
DANGEROUS_DEBUG = {b"sleep", b"segfault", b"panic", b"restart", b"crash-and-recover", b"reload", b"oom", b"assert",
                   b"populate", b"loadaof", b"mallctl", b"mallctl-str", b"client-eviction", b"pause-cron"}

# Where a blocking command takes its timeout: a position (negative from the
# end) or the word before it.
BLOCKING = {
    "blpop": -1, "brpop": -1, "brpoplpush": -1, "blmove": -1, "bzpopmin": -1, "bzpopmax": -1,
    "blmpop": 1, "bzmpop": 1, "wait": 2, "waitaof": 3, "xread": "block", "xreadgroup": "block",
}
SMALL_TIMEOUTS = ["0.01", "0.05", "-1", "x", "0.001", "1e-3"]
SMALL_MS = ["1", "10", "50", "-1", "x"]

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
NUMBERS = ["0", "1", "-1", "2", "3", "5", "10", "-10", "100", "-100", "1000", str(LLONG_MAX), str(LLONG_MIN),
           str(LLONG_MAX + 1), str(LLONG_MIN - 1), str(2**31), str(2**31 - 1), str(-2**31), str(2**32),
           "4294967295", "4294967296", "99999999999999999999999", "-0", "+1", "01", " 1", "1 ", "0x10", "1e3"]
FLOATS = ["1.5", "-0.5", "0.0", "-0.0", "1e308", "1e309", "-1e400", "1e-320", "inf", "-inf", "+inf", "nan",
          "NaN", "-nan", "infinity", "3.14159265358979323846", ".5", "5.", "1,5", "0x1p3"]
STRINGS = ["", "a", "b", "hello", "*", "?", "[a-z]*", "\\", "x" * 100, "a" * 1000, "\x00", "\xff\xfe\x00\x01",
           "-", "+", "(", "[", "(1", "[a", "$", "~", "!", "#", "%", "\r\n", " ", "é", "0-0", "0-1", "*-*", "1-*",
           "$", ">", "~0", "10-5", "i5", "u8", "i64", "u63", "u64", "#2", "OVERFLOW", "FAIL", "SAT", "WRAP"]

# d1..d3 hold values RESTOREd from damaged payloads that RESTORE accepted,
# so that every command also meets values only a damaged payload makes.
KEYS = ["s", "n", "f", "l", "L", "h", "H", "st", "is", "S", "z", "Z", "b", "x", "hll", "g", "missing", "{t}a",
        "d1", "d2", "d3"]

SCRIPTS = [
    "return 1", "return redis.call('get', KEYS[1])", "return redis.pcall('incr', KEYS[1])",
    "return {1, 'a', {2, 3.5}, false}", "return redis.status_reply('fine')", "return redis.error_reply('bad')",
    "return redis.call('set', KEYS[1], ARGV[1])", "return #KEYS + #ARGV", "error('boom')",
    "return redis.call('nosuchcommand')", "return cjson.encode({1, 2})", "return redis.sha1hex(ARGV[1] or '')",
    "return tonumber(ARGV[1])", "local t = {} for i = 1, 100 do t[i] = i end return t",
    "#!lua flags=no-writes\nreturn 1", "#!lua name=x\nreturn 1",
]
# Runs its arguments as a command from a script, errors caught (redis.pcall).
PCALL = "return redis.pcall(unpack(ARGV))"
LIBRARY = "#!lua name=fzlib\nredis.register_function('fzf', function(keys, args) return #keys end)"


def setup_commands() -> list[list]:
    """Requests that give every key in KEYS its value (both encodings)."""
    cmds = [["DEL", *KEYS]]
    cmds += [["SET", "s", "hello"], ["SET", "n", "12345"], ["SET", "f", "3.5"],
             ["RPUSH", "l", "a", "b", "c", "1", "2"], ["RPUSH", "L", *[f"e{i}" for i in range(200)]],
             ["HSET", "h", "f1", "v1", "f2", "2"], ["HSET", "H", *[x for i in range(200) for x in (f"f{i}", i)]],
             ["SADD", "st", "a", "b", "c"], ["SADD", "is", "1", "2", "3", "-5"],
             ["SADD", "S", *[f"m{i}" for i in range(300)]], ["ZADD", "z", "1", "a", "2", "b", "2.5", "c"],
             ["ZADD", "Z", *[x for i in range(200) for x in (i, f"m{i}")]], ["SETBIT", "b", "100", "1"],
             ["SET", "{t}a", "x"]]
    return cmds


def optional_setup(names: set) -> list[list]:
    """Values of the types whose commands this Keel has (streams, HLL, geo are being written)."""
    cmds = []
    if "xadd" in names:
        cmds += [["XADD", "x", "1-1", "f", "v"], ["XADD", "x", "2-1", "f", "w"]]
        if "xgroup" in names:
            cmds.append(["XGROUP", "CREATE", "x", "grp", "0"])
    if "pfadd" in names:
        cmds.append(["PFADD", "hll", "a", "b", "c"])
    if "geoadd" in names:
        cmds.append(["GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"])
    return cmds


@dataclasses.dataclass
class Finding:
    argv: list
    what: str

    def __str__(self) -> str:
        shown = [a if len(a) < 80 else a[:60] + b"..." for a in self.argv]
        return f"{self.what}: {shown!r}"


@dataclasses.dataclass
class Report:
    commands: int = 0  # names and subcommands fuzzed
    sent: int = 0
    errors: int = 0  # Redis error replies (expected: most argv are wrong)
    values: int = 0
    skipped: dict = dataclasses.field(default_factory=dict)
    findings: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.commands} commands, {self.sent} argv sent in {self.seconds:.1f} s: {self.values} values, "
                f"{self.errors} errors; {len(self.findings)} findings; skipped {sorted(self.skipped)}")


class Conn:
    """One blocking connection; ``call`` returns the parsed reply, raises on timeout or close."""

    def __init__(self, port: int, timeout: float):
        self.port = port
        self.timeout = timeout
        self.open()

    def open(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.reader = hiredis.Reader(replyError=lambda s: ("ERR", s))

    def send(self, requests):
        self.sock.sendall(b"".join(encode(r) for r in requests))

    def read(self):
        while True:
            r = self.reader.gets()  # hiredis errors propagate: the caller reports them
            if r is not False:
                return r
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("connection closed by the server")
            self.reader.feed(data)

    def call(self, *args):
        self.send([args])
        return self.read()

    def close(self):
        self.sock.close()


class Fuzzer:
    def __init__(self, port: int, proc, seed: int, docs: dict | None = None, reply_timeout: float = 10.0):
        self.port = port
        self.proc = proc
        self.rng = random.Random(seed)
        self.docs = docs or {}
        self.reply_timeout = reply_timeout
        self.conn = Conn(port, reply_timeout)
        self.report = Report()
        table = self.conn.call("COMMAND")
        self.commands = {}  # fullname -> arity
        for entry in table:
            name = entry[0].decode()
            self.commands[name] = entry[1]
            for sub in (entry[9] if len(entry) > 9 else []):
                self.commands[sub[0].decode()] = sub[1]
        self.names = {n for n in self.commands if "|" not in n}
        self.payloads = []

    # -- values ----------------------------------------------------------------
    def value(self, kind: str | None = None, tokens=()) -> bytes:
        rng = self.rng
        if kind is None:
            kind = rng.choice(("key", "key", "integer", "integer", "double", "string", "token", "payload", "bytes"))
        if kind == "key":
            v = rng.choice(KEYS)
        elif kind in ("integer", "unix-time"):
            v = rng.choice(NUMBERS) if rng.random() < 0.8 else str(rng.randrange(-20, 20))
        elif kind == "double":
            v = rng.choice(FLOATS + NUMBERS[:12])
        elif kind == "token" and tokens:
            v = rng.choice(tokens)
            if rng.random() < 0.2:
                v = v.lower()
        elif kind == "payload" and self.payloads:
            return self.damaged_payload()
        elif kind == "bytes":
            return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20)))
        elif kind == "script":
            v = rng.choice(SCRIPTS + [LIBRARY])
        else:
            v = rng.choice(STRINGS + KEYS + NUMBERS[:6])
        return v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v

    def damaged_payload(self) -> bytes:
        """A DUMP payload of a real value, its body damaged, its checksum made right again."""
        rng = self.rng
        p = bytearray(rng.choice(self.payloads))
        body = p[:-10]  # value, then 2 bytes of RDB version and 8 of CRC64
        for _ in range(rng.randrange(1, 4)):
            if not body:
                break
            m = rng.randrange(4)
            i = rng.randrange(len(body))
            if m == 0:
                body[i] = rng.randrange(256)
            elif m == 1:
                del body[i:]
            elif m == 2:
                body[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
            else:
                body[i] = rng.choice((0, 0xFF, 0x7F, 0x80, 0xC0, 0xC3, 0xFE))
        out = bytes(body) + bytes(p[-10:-8])
        if rng.random() < 0.9:
            return out + crc64(out).to_bytes(8, "little")
        return out + bytes(p[-8:])

    # -- argument lists -------------------------------------------------------
    def tokens(self, name: str) -> list[str]:
        out = []

        def walk(args):
            for a in args or ():
                if a.get("token"):
                    out.append(a["token"])
                walk(a.get("arguments"))
        walk(self.docs.get(name))
        return out

    def from_docs(self, name: str, args) -> list[bytes]:
        rng = self.rng
        out = []

        def emit(a):
            t = a.get("type")
            if a.get("token"):
                out.append(a["token"].encode())
            if t == "pure-token":
                return
            if t == "oneof":
                emit(rng.choice(a["arguments"]))
            elif t == "block":
                parts = list(a["arguments"])
                for sub in parts:
                    if sub.get("optional") and rng.random() < 0.4:
                        continue
                    emit(sub)
            else:
                out.append(self.value(t if rng.random() < 0.8 else None, self.tokens(name)))

        parts = list(args)
        if rng.random() < 0.3:  # options in another order
            head = [a for a in parts if not a.get("optional")]
            tail = [a for a in parts if a.get("optional")]
            rng.shuffle(tail)
            parts = head + tail
        for a in parts:
            if a.get("optional") and rng.random() < 0.5:
                continue
            for _ in range(rng.choice((1, 1, 2, 3)) if a.get("multiple") else 1):
                emit(a)
        return out

    def random_args(self, name: str, arity: int) -> list[bytes]:
        rng = self.rng
        lo = abs(arity) - 1 - name.count("|")
        n = lo if arity > 0 else lo + rng.choice((0, 0, 1, 2, 3, 5, 8))
        if rng.random() < 0.1:
            n = max(0, n + rng.choice((-1, 1)))
        tokens = self.tokens(name)
        return [self.value(None, tokens) for _ in range(n)]

    def argv(self, name: str) -> list[bytes]:
        head = [p.encode() for p in name.split("|")]
        args = self.docs.get(name)
        if args is not None and self.rng.random() < 0.5:
            rest = self.from_docs(name, args)
        else:
            rest = self.random_args(name, self.commands[name])
        return self.guard(name, head + rest)

    def guard(self, name: str, argv: list[bytes]):
        """``argv`` made safe to send (see the module docstring), or None to skip it."""
        rng = self.rng
        low = [a.lower() for a in argv]
        base = name.split("|")[0]
        if name == "debug" and len(argv) > 1 and low[1] in DANGEROUS_DEBUG:
            return None
        if name == "config|set":
            for i in range(2, len(argv), 2):
                argv[i] = rng.choice(SAFE_CONFIG).encode()
        if name == "acl|setuser" and len(argv) > 2:
            argv[2] = b"fz" + argv[2][:8].replace(b"default", b"")
        if name == "auth" and len(argv) > 2:
            return None
        if name == "hello" and b"auth" in low:
            return None
        if base in BLOCKING:
            where = BLOCKING[base]
            if isinstance(where, str):
                for i, a in enumerate(low):
                    if a == where.encode() and i + 1 < len(argv):
                        argv[i + 1] = rng.choice(SMALL_MS).encode()
            elif len(argv) > abs(where):
                small = SMALL_MS if base in ("wait", "waitaof") else SMALL_TIMEOUTS
                argv[where] = rng.choice(small).encode()
        if base in ("srandmember", "hrandfield", "zrandmember") and len(argv) > 2:
            try:
                count = int(argv[2])
            except ValueError:
                count = 0
            if -(LLONG_MAX // 2) <= count < -5000:
                argv[2] = str(rng.randrange(-5000, 0)).encode()
        if base in ("eval", "eval_ro") and len(argv) > 1 and rng.random() < 0.6:
            argv[1] = self.value("script")
        if name == "function|load" and len(argv) > 2 and rng.random() < 0.5:
            argv[-1] = LIBRARY.encode()
        if base == "restore" and self.payloads and rng.random() < 0.7:
            # A well-formed RESTORE of a damaged payload, so that it reaches the decoders.
            argv = [argv[0], b"rk%d" % rng.randrange(1000), b"0", self.damaged_payload()]
            argv += [b"REPLACE"] if rng.random() < 0.5 else []
        return argv

    # -- running ---------------------------------------------------------------
    def control(self, *requests) -> list:
        self.conn.send(requests)
        return [self.conn.read() for _ in requests]

    def reset_state(self) -> None:
        """Database 0, RESP2, out of MULTI, tracking off, every typed key in place."""
        setup = [["DISCARD"], ["SELECT", "0"], ["CLIENT", "TRACKING", "off"]] + setup_commands() + optional_setup(
            self.names)
        self.control(*setup)
        self.payloads = [p for p in self.control(*(["DUMP", k] for k in KEYS)) if isinstance(p, bytes)]
        if self.payloads:
            self.control(*(["RESTORE", f"d{1 + i % 3}", "0", self.damaged_payload(), "REPLACE"] for i in range(12)))

    def send_one(self, argv: list, how: str = "plain") -> None:
        """Send ``argv`` alone, queued in MULTI ... EXEC, or from a script
        (``redis.pcall``), and report what is wrong with the reply."""
        report = self.report
        try:
            if how == "multi":
                self.conn.send([["MULTI"], argv, ["EXEC"]])
                r = [self.conn.read(), self.conn.read(), self.conn.read()]
            elif how == "script":
                r = self.conn.call("EVAL", PCALL, "0", *argv)
            else:
                r = self.conn.call(*argv)
        except socket.timeout:
            report.findings.append(Finding(argv, f"no reply within {self.reply_timeout} s"))
            self.reconnect()
            return
        except (hiredis.ProtocolError, TypeError) as e:  # TypeError: a RESP3 map keyed by an array
            report.findings.append(Finding(argv, f"reply does not parse: {e!r}"))
            self.reconnect()
            return
        except (ConnectionError, OSError) as e:
            if self.proc is not None and self.proc.poll() is not None:
                report.findings.append(Finding(argv, f"server died (status {self.proc.returncode})"))
                raise
            report.findings.append(Finding(argv, f"connection closed: {e}"))
            self.reconnect()
            return
        report.sent += 1
        if how == "multi" and isinstance(r[2], list):
            r = r[2][0] if r[2] else r[1]  # what the command answered inside EXEC
        if _is_error(r):
            report.errors += 1
        else:
            report.values += 1
        for text in _errors_in(r):
            if "internal error" in text:
                report.findings.append(Finding(argv, f"{text} ({how})"))

    def reconnect(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        self.conn = Conn(self.port, self.reply_timeout)

    def run(self, per_command: int, only=None) -> Report:
        t0 = time.monotonic()
        names = sorted(only or self.commands)
        for name in names:
            if name in SKIP or name.split("|")[0] in SKIP:
                self.report.skipped[name] = SKIP.get(name) or SKIP[name.split("|")[0]]
                continue
            self.report.commands += 1
            self.reset_state()
            for i in range(min(per_command, CAPS.get(name, per_command))):
                if i == per_command * 2 // 3:  # the last third in RESP3
                    self.control(["HELLO", "3"])
                argv = self.argv(name)
                if argv is None:
                    continue
                how = self.rng.random()
                self.send_one(argv, "plain" if how < 0.75 else "multi" if how < 0.9 else "script")
                if name.split("|")[0] in ("select", "swapdb", "multi", "hello", "client", "acl", "auth", "debug",
                                          "config", "function", "script", "flushall", "flushdb", "move", "exec"):
                    self.reset_after()
            self.control(["HELLO", "2"])
        self.report.seconds = time.monotonic() - t0
        return self.report

    def reset_after(self) -> None:
        """Undo what a command may have changed about the connection (not the data)."""
        self.control(["DISCARD"], ["SELECT", "0"], ["CLIENT", "TRACKING", "off"])


def _is_error(r) -> bool:
    return isinstance(r, tuple) and len(r) == 2 and r[0] == "ERR"


def _errors_in(r):
    """Every error text in a reply, nested ones (EXEC's, a script's arrays) included."""
    if _is_error(r):
        yield r[1]
    elif isinstance(r, list):
        for x in r:
            yield from _errors_in(x)
    elif isinstance(r, dict):
        for k, v in r.items():
            yield from _errors_in(k)
            yield from _errors_in(v)


def redis_docs(client) -> dict:
    """Argument trees from a real redis-server's COMMAND DOCS: fullname -> list of dicts."""

    def as_dict(flat):
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    def arg(flat):
        d = as_dict(flat)
        out = {"type": d.get("type", b"string").decode(), "optional": b"optional" in (d.get("flags") or []),
               "multiple": b"multiple" in (d.get("flags") or [])}
        if "token" in d:
            out["token"] = d["token"].decode()
        if "arguments" in d:
            out["arguments"] = [arg(a) for a in d["arguments"]]
        return out

    docs = {}

    def take(name, doc):
        d = as_dict(doc)
        if "arguments" in d:
            docs[name] = [arg(a) for a in d["arguments"]]
        else:
            docs[name] = []
        for sub, sdoc in as_dict(d.get("subcommands") or []).items():
            take(sub, sdoc)

    for name, doc in as_dict(client.call("COMMAND", "DOCS")).items():
        take(name, doc)
    return docs
