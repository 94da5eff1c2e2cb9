"""Configuration: redis.conf syntax, ``--name value`` arguments, CONFIG GET/SET.

Each directive is declared once in ``DIRECTIVES`` with its kind (how a value is
parsed and printed), its default, and whether CONFIG SET may change it at run
time. The same parsers serve the config file, the command line and CONFIG SET,
so a value is accepted or refused the same way everywhere.

Sizes take Redis's units (``1k`` = 1000, ``1kb`` = 1024, ``mb``, ``gb`` …);
booleans are ``yes``/``no``. An unknown directive or a bad value stops the
start with a message naming the directive, as redis-server does.
"""

from __future__ import annotations

import fnmatch
import os
import shlex

from engine import notify


class ConfigError(Exception):
    pass


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int:
    s = text.strip().lower()
    i = len(s)
    while i and not s[i - 1].isdigit():
        i -= 1
    num, unit = s[:i], s[i:]
    if unit not in _UNITS or not num or not (num.isdigit() or (num[0] == "-" and num[1:].isdigit())):
        raise ConfigError("argument must be a memory value")
    return int(num) * _UNITS[unit]


# client-output-buffer-limit: ``<class> <hard> <soft> <soft-seconds>``, one or
# more groups; a value names only the classes it changes (a config file may
# give one line per class, CONFIG SET "pubsub 64mb 16mb 90" leaves the others).
BUFFER_CLASSES = ("normal", "slave", "pubsub")


def parse_buffer_limits(text: str) -> dict:
    """``{class: (hard, soft, soft_seconds)}`` for the classes ``text`` names."""
    parts = text.split()
    if len(parts) % 4:
        raise ConfigError("Wrong number of arguments in buffer limit configuration.")
    out = {}
    for i in range(0, len(parts), 4):
        name = parts[i].lower()
        name = "slave" if name == "replica" else name
        if name not in BUFFER_CLASSES:
            raise ConfigError("Invalid client class specified in buffer limit configuration.")
        secs = parts[i + 3]
        try:
            hard, soft = parse_memory(parts[i + 1]), parse_memory(parts[i + 2])
        except ConfigError:
            hard = soft = -1
        seconds = int(secs) if secs.isascii() and secs.isdigit() else -1
        if hard < 0 or soft < 0 or seconds < 0:
            raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        out[name] = (hard, soft, seconds)
    return out


def format_buffer_limits(limits: dict) -> str:
    return " ".join("%s %d %d %d" % (name, *limits[name]) for name in BUFFER_CLASSES)


def parse_percentiles(text: str) -> tuple:
    """latency-tracking-info-percentiles: numbers from 0 to 100 (none is allowed)."""
    out = []
    for part in text.split():
        try:  # as strtod reads a number: decimal or hexadecimal, no underscores
            if "_" in part:
                raise ValueError(part)
            p = float.fromhex(part) if part.lower().lstrip("+-").startswith("0x") else float(part)
        except ValueError:
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters") from None
        if not 0.0 <= p <= 100.0:
            raise ConfigError("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        out.append(p)
    return tuple(out)


def format_percentile(p: float) -> str:
    """50.0 -> 50, 99.9 -> 99.9 (as INFO latencystats names them)."""
    text = repr(p)
    return text[:-2] if text.endswith(".0") else text


def parse_memory_or_percent(text: str) -> int:
    """A size, or ``N%`` (stored as -N: a share of maxmemory), as maxmemory-clients takes it."""
    t = text.strip()
    if t.endswith("%"):
        num = t[:-1]
        if not (num.isascii() and num.isdigit()):
            raise ConfigError("argument must be a memory or percent value")
        if int(num) > 100:
            raise ConfigError("percentage argument must be less or equal to 100")
        return -int(num)
    try:
        v = parse_memory(t)
    except ConfigError:
        v = -1
    if v < 0:
        raise ConfigError("argument must be a memory or percent value")
    return v


class SetError(ConfigError):
    """CONFIG SET refused ``name``: ``reason`` None means the name is unknown."""

    def __init__(self, name: str, reason: str | None):
        super().__init__(reason or f"unknown directive '{name}'")
        self.name = name
        self.reason = reason


class Directive:
    __slots__ = ("name", "kind", "default", "mutable", "choices", "lo", "hi", "aliases")

    def __init__(self, name, kind, default, mutable=True, choices=(), lo=None, hi=None, aliases=()):
        self.name, self.kind, self.default, self.mutable = name, kind, default, mutable
        self.choices, self.lo, self.hi, self.aliases = choices, lo, hi, aliases

    def parse(self, text: str):
        k = self.kind
        if k == "bool":
            t = text.lower()
            if t not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'")
            return t == "yes"
        if k == "int":
            try:
                v = int(text)
            except ValueError:
                raise ConfigError("argument couldn't be parsed into an integer") from None
        elif k == "memory":
            v = parse_memory(text)
            if v < 0 and self.lo is not None and self.lo >= 0:  # unsigned, as Redis parses them
                raise ConfigError("argument must be a memory value")
        elif k == "buffer-limits":
            return parse_buffer_limits(text)
        elif k == "memory-percent":
            return parse_memory_or_percent(text)
        elif k == "keyspace-events":
            try:
                return notify.parse(text)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        elif k == "percentiles":
            return parse_percentiles(text)
        elif k == "enum":
            t = text.lower()
            if t not in self.choices:
                raise ConfigError("argument(s) must be one of the following: " + ", ".join(self.choices))
            return t
        else:
            return text
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            raise ConfigError(f"argument must be between {self.lo} and {self.hi} inclusive")
        return v

    def format(self, value) -> str:
        if self.kind == "bool":
            return "yes" if value else "no"
        if self.kind == "keyspace-events":
            return notify.show(value)
        if self.kind == "buffer-limits":
            return format_buffer_limits(value)
        if self.kind == "memory-percent":
            return f"{-value}%" if value < 0 else str(value)
        if self.kind == "percentiles":
            return " ".join(map(format_percentile, value))
        return str(value)


_D = Directive
DIRECTIVES = [
    _D("port", "int", 6379, mutable=False, lo=0, hi=65535),
    _D("bind", "str", "127.0.0.1", mutable=False),
    _D("dir", "str", "./data", mutable=False),
    _D("unixsocket", "str", "", mutable=False),
    _D("daemonize", "bool", False, mutable=False),
    _D("pidfile", "str", "", mutable=False),
    _D("logfile", "str", "", mutable=False),
    _D("loglevel", "enum", "notice", choices=("debug", "verbose", "notice", "warning", "nothing")),
    _D("databases", "int", 16, mutable=False, lo=1, hi=1 << 20),
    _D("requirepass", "str", ""),
    # ACL (server.acl): the ACL file ACL LOAD/SAVE use, the length of ACL LOG,
    # and the channels a new user starts with (Redis 7's default: none).
    _D("aclfile", "str", "", mutable=False),
    _D("acllog-max-len", "int", 128, lo=0, hi=2**63 - 1),
    _D("acl-pubsub-default", "enum", "resetchannels", choices=("allchannels", "resetchannels")),
    _D("maxclients", "int", 10000, lo=1, hi=1 << 20),
    _D("timeout", "int", 0, lo=0, hi=2**31 - 1),
    _D("tcp-keepalive", "int", 300, lo=0, hi=2**31 - 1),
    _D("tcp-backlog", "int", 511, mutable=False, lo=0, hi=2**31 - 1),
    _D("protected-mode", "bool", True),
    _D("proto-max-bulk-len", "memory", 512 * 1024 * 1024, lo=1024 * 1024, hi=2**63 - 1),
    _D("client-query-buffer-limit", "memory", 1024 * 1024 * 1024, lo=1024 * 1024, hi=2**63 - 1),
    _D("client-output-buffer-limit", "buffer-limits",
       parse_buffer_limits("normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60")),
    # The clients' memory past which the biggest are closed (server.client_limits): 0 off.
    _D("maxmemory-clients", "memory-percent", 0),
    _D("hz", "int", 10, lo=1, hi=500),
    _D("maxmemory", "memory", 0, lo=0, hi=2**63 - 1),
    _D("maxmemory-policy", "enum", "noeviction", choices=(
        "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
        "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction")),
    _D("maxmemory-samples", "int", 5, lo=1, hi=2**31 - 1),
    _D("maxmemory-eviction-tenacity", "int", 10, lo=0, hi=100),
    _D("lfu-log-factor", "int", 10, lo=0, hi=2**31 - 1),
    _D("lfu-decay-time", "int", 1, lo=0, hi=2**31 - 1),
    # Scripting (server.scripting): past busy-reply-threshold (ms) a running
    # script lets other clients in, to answer -BUSY; lua-max-memory caps each
    # Lua state's allocations (a Keel directive: Redis has no such limit).
    _D("busy-reply-threshold", "int", 5000, lo=0, hi=2**63 - 1, aliases=("lua-time-limit",)),
    _D("lua-max-memory", "memory", 1024 * 1024 * 1024, lo=1024 * 1024, hi=2**63 - 1),
    _D("appendonly", "bool", True),
    _D("appendfsync", "enum", "always", choices=("always", "everysec", "no")),
    _D("appendfilename", "str", "appendonly.aof", mutable=False),
    _D("appenddirname", "str", "appendonlydir", mutable=False),
    # Keel: log segments are cut at this size; a checkpoint starts each time the
    # log has grown this much since the last one (0 = only SAVE/BGSAVE/SHUTDOWN).
    _D("wal-segment-size", "memory", 64 * 1024 * 1024, mutable=False, lo=4096, hi=2**40),
    _D("checkpoint-log-size", "memory", 256 * 1024 * 1024, lo=0, hi=2**63 - 1),
    _D("dbfilename", "str", "dump.rdb"),
    _D("save", "str", ""),
    # Lazy freeing (server.lazyfree, engine.lazyfree): Redis 7's defaults.
    _D("lazyfree-lazy-user-flush", "bool", False),
    _D("lazyfree-lazy-user-del", "bool", False),
    _D("lazyfree-lazy-server-del", "bool", False),
    _D("lazyfree-lazy-expire", "bool", False),
    _D("lazyfree-lazy-eviction", "bool", False),
    _D("replica-lazy-flush", "bool", False, aliases=("slave-lazy-flush",)),
    _D("replica-read-only", "bool", True, aliases=("slave-read-only",)),
    _D("replica-serve-stale-data", "bool", True, aliases=("slave-serve-stale-data",)),
    _D("repl-backlog-size", "memory", 1024 * 1024, lo=1, hi=2**63 - 1),
    _D("min-replicas-to-write", "int", 0, lo=0, hi=2**31 - 1, aliases=("min-slaves-to-write",)),
    _D("min-replicas-max-lag", "int", 10, lo=0, hi=2**31 - 1, aliases=("min-slaves-max-lag",)),
    # Replication (replication/): Redis 7's directives and defaults. replicaof
    # is read at startup (REPLICAOF changes the role at run time).
    _D("replicaof", "str", "", mutable=False, aliases=("slaveof",)),
    _D("masterauth", "str", ""),
    _D("masteruser", "str", ""),
    _D("replica-priority", "int", 100, lo=0, hi=2**31 - 1, aliases=("slave-priority",)),
    _D("replica-announce-ip", "str", "", aliases=("slave-announce-ip",)),
    _D("replica-announce-port", "int", 0, lo=0, hi=65535, aliases=("slave-announce-port",)),
    _D("replica-announced", "bool", True),
    _D("repl-timeout", "int", 60, lo=1, hi=2**31 - 1),
    _D("repl-ping-replica-period", "int", 10, lo=1, hi=2**31 - 1, aliases=("repl-ping-slave-period",)),
    _D("repl-diskless-sync", "bool", True),
    # (Keel's delay defaults to 0, not Redis's 5: Redis waits for more replicas
    # to share one fork; Keel makes a snapshot per replica without forking.)
    _D("repl-diskless-sync-delay", "int", 0, lo=0, hi=2**31 - 1),
    _D("repl-diskless-sync-max-replicas", "int", 0, lo=0, hi=2**31 - 1),
    _D("repl-diskless-load", "enum", "disabled", choices=("disabled", "on-empty-db", "swapdb")),
    _D("repl-disable-tcp-nodelay", "bool", False),
    _D("repl-backlog-ttl", "int", 3600, lo=0, hi=2**31 - 1),
    # Keel: a write's reply waits until this many replicas have it (synchronous
    # replication; 0 off); and how much log behind its end is kept on disk for
    # replicas that are behind (past it, they resynchronise in full).
    _D("min-replicas-to-ack", "int", 0, lo=0, hi=2**31 - 1),
    _D("repl-log-retain-max", "memory", 1 << 30, lo=0, hi=2**63 - 1),
    _D("slowlog-log-slower-than", "int", 10000, lo=-1, hi=2**63 - 1),
    _D("slowlog-max-len", "int", 128, lo=0, hi=2**63 - 1),
    # LATENCY (server.latency): events of at least this many ms are kept (0: off).
    _D("latency-monitor-threshold", "int", 0, lo=0, hi=2**63 - 1),
    _D("latency-tracking", "bool", True),
    _D("latency-tracking-info-percentiles", "percentiles", (50.0, 99.0, 99.9)),
    _D("tracking-table-max-keys", "int", 1000000, lo=0, hi=2**63 - 1),
    _D("notify-keyspace-events", "keyspace-events", 0),  # engine.notify's flags
    _D("active-expire-effort", "int", 1, lo=1, hi=10),
    _D("io-threads", "int", 1, mutable=False, lo=1, hi=128),
    # As in Redis: DEBUG, MODULE and CONFIG SET of the protected directives
    # (PROTECTED below) are refused unless enabled (yes, or local for loopback clients).
    _D("enable-debug-command", "enum", "no", mutable=False, choices=("yes", "no", "local")),
    _D("enable-protected-configs", "enum", "no", mutable=False, choices=("yes", "no", "local")),
    _D("enable-module-command", "enum", "no", mutable=False, choices=("yes", "no", "local")),
    _D("list-max-listpack-size", "int", -2, lo=-5, hi=2**31 - 1, aliases=("list-max-ziplist-size",)),
    _D("hash-max-listpack-entries", "int", 512, lo=0, hi=2**63 - 1, aliases=("hash-max-ziplist-entries",)),
    _D("hash-max-listpack-value", "int", 64, lo=0, hi=2**63 - 1, aliases=("hash-max-ziplist-value",)),
    _D("list-compress-depth", "int", 0, lo=0, hi=2**31 - 1),
    _D("set-max-intset-entries", "int", 512, lo=0, hi=2**63 - 1),
    _D("set-max-listpack-entries", "int", 128, lo=0, hi=2**63 - 1),
    _D("set-max-listpack-value", "int", 64, lo=0, hi=2**63 - 1),
    _D("zset-max-listpack-entries", "int", 128, lo=0, hi=2**63 - 1, aliases=("zset-max-ziplist-entries",)),
    _D("zset-max-listpack-value", "int", 64, lo=0, hi=2**63 - 1, aliases=("zset-max-ziplist-value",)),
    _D("stream-node-max-bytes", "memory", 4096, lo=0, hi=2**63 - 1),
    _D("stream-node-max-entries", "int", 100, lo=0, hi=2**63 - 1),
    _D("hll-sparse-max-bytes", "memory", 3000, lo=0, hi=2**63 - 1),
    # TLS (server.tls): a TLS listener on tls-port, built from these at start;
    # tls-handshake-timeout (ms) is Keel's: a handshake that has not finished is closed.
    _D("tls-port", "int", 0, mutable=False, lo=0, hi=65535),
    _D("tls-cert-file", "str", ""),
    _D("tls-key-file", "str", ""),
    _D("tls-key-file-pass", "str", ""),
    _D("tls-client-cert-file", "str", ""),
    _D("tls-client-key-file", "str", ""),
    _D("tls-client-key-file-pass", "str", ""),
    _D("tls-dh-params-file", "str", ""),
    _D("tls-ca-cert-file", "str", ""),
    _D("tls-ca-cert-dir", "str", ""),
    _D("tls-auth-clients", "enum", "yes", choices=("yes", "no", "optional")),
    _D("tls-protocols", "str", ""),
    _D("tls-ciphers", "str", ""),
    _D("tls-ciphersuites", "str", ""),
    _D("tls-prefer-server-ciphers", "bool", False),
    _D("tls-session-caching", "bool", True),
    _D("tls-session-cache-size", "int", 20480, lo=0, hi=2**31 - 1),
    _D("tls-session-cache-timeout", "int", 300, lo=0, hi=2**31 - 1),
    _D("tls-replication", "bool", False),
    _D("tls-cluster", "bool", False),
    _D("tls-handshake-timeout", "int", 10000, lo=1, hi=2**31 - 1),
]
# Directives CONFIG SET changes only when enable-protected-configs allows it
# (Redis 7's list; Keel's dir is immutable anyway: the log lives there).
PROTECTED = frozenset(("dir", "dbfilename"))

BY_NAME = {}
for _d in DIRECTIVES:
    BY_NAME[_d.name] = _d
    for _a in _d.aliases:
        BY_NAME[_a] = _d


class Config:
    """Current values, by canonical directive name; listeners see changes."""

    def __init__(self):
        self.values = {d.name: d.default for d in DIRECTIVES}
        self.source_file: str | None = None
        self.listeners: list = []  # called as listener(name, value) after a change
        self.renames: list = []  # rename-command OLD NEW, in order (server.app applies them)
        self.user_lines: list = []  # ``user NAME rules...`` lines, as written (server.aclfile loads them)
        # The users' lines CONFIG REWRITE writes (server.acl sets it): a list,
        # or None while the users live in an aclfile.
        self.current_user_lines = None

    def __getitem__(self, name: str):
        return self.values[name]

    def set(self, name: str, text: str, at_runtime: bool = False) -> None:
        d = BY_NAME.get(name.lower())
        if d is None:
            raise ConfigError("Bad directive or wrong number of arguments")
        if at_runtime and not d.mutable:
            raise ConfigError("can't set immutable config")
        value = self._merged(d, d.parse(text))
        self.values[d.name] = value
        for fn in self.listeners:
            fn(d.name, value)

    def set_many(self, pairs: list[tuple[str, str]], protected_ok: bool = True) -> None:
        """CONFIG SET: validate every pair, then apply them all (or none).

        Names are checked first (unknown, immutable, given twice), then values,
        as redis-server does; the first failure raises ``SetError``.
        """
        seen = set()
        for name, _ in pairs:
            d = BY_NAME.get(name.lower())
            if d is None:
                raise SetError(name, None)
            if not d.mutable:
                raise SetError(name, "can't set immutable config")
            if d.name in PROTECTED and not protected_ok:
                raise SetError(name, "can't set protected config")
            if d.name in seen:
                raise SetError(name, "duplicate parameter")
            seen.add(d.name)
        parsed = []
        for name, text in pairs:
            d = BY_NAME[name.lower()]
            try:
                parsed.append((d, self._merged(d, d.parse(text))))
            except ConfigError as e:
                raise SetError(name, str(e)) from None
        for d, value in parsed:
            self.values[d.name] = value
        for d, value in parsed:
            for fn in self.listeners:
                fn(d.name, value)

    def _merged(self, d: Directive, value):
        """A buffer-limits value changes only the classes it names."""
        if d.kind == "buffer-limits":
            return {**self.values[d.name], **value}
        return value

    def get(self, pattern: str) -> dict[str, str]:
        """CONFIG GET: every directive (or alias) whose name matches ``pattern``."""
        out = {}
        pat = pattern.lower()
        for name, d in BY_NAME.items():
            if fnmatch.fnmatchcase(name, pat):
                out[name] = d.format(self.values[d.name])
        return out

    # -- loading ------------------------------------------------------------
    def load_file(self, path: str) -> None:
        self.source_file = os.path.abspath(path)
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    parts = shlex.split(line)
                except ValueError:
                    raise ConfigError(f"line {lineno}: unbalanced quotes: {line}") from None
                self._apply(parts, f"line {lineno}")

    def load_args(self, argv: list[str]) -> None:
        """``[config-file] --name value ... --name2 value``, as redis-server takes them."""
        args = list(argv)
        if args and not args[0].startswith("--"):
            self.load_file(args.pop(0))
        i = 0
        while i < len(args):
            a = args[i]
            if not a.startswith("--"):
                raise ConfigError(f"unexpected argument {a!r}: directives are given as --name value")
            parts = [a[2:]]
            i += 1
            while i < len(args) and not args[i].startswith("--"):
                parts.append(args[i])
                i += 1
            self._apply(parts, "command line")

    def _apply(self, parts: list[str], where: str) -> None:
        name = parts[0].lower()
        if name == "user":  # an ACL user (server.aclfile), applied once at start
            if len(parts) < 2:
                raise ConfigError(f"{where}: 'user' takes a user name and its rules")
            self.user_lines.append(" ".join(shlex.quote(p) for p in parts))
            return
        if name == "rename-command":  # not a directive: no CONFIG GET, applied once at start
            if len(parts) != 3:
                raise ConfigError(f"{where}: 'rename-command' takes a command name and a new name")
            self.renames.append((parts[1], parts[2]))
            return
        d = BY_NAME.get(name)
        if d is None:
            raise ConfigError(f"{where}: unknown directive '{parts[0]}'")
        if name in ("save", "bind") or d.name == "replicaof" or d.kind == "buffer-limits":
            value = " ".join(parts[1:])
        elif len(parts) != 2:
            raise ConfigError(f"{where}: '{parts[0]}' takes exactly one value")
        else:
            value = parts[1]
        try:
            self.set(name, value)
        except ConfigError as e:
            raise ConfigError(f"{where}: invalid value {value!r} for '{parts[0]}': {e}") from None

    def rewrite(self) -> None:
        """CONFIG REWRITE: bring the config file up to date with the running values.

        Comments, blank lines and line order are kept; each directive's first
        line gets its current value and its repeats are dropped; directives
        that differ from their default and are not in the file are appended.
        ``user`` lines are replaced by every user's rules (unless the users
        are in an aclfile), the first in the first one's place.
        The new file is written aside, fsynced and renamed over the old one.
        """
        if not self.source_file:
            raise ConfigError("The server is running without a config file")
        try:
            with open(self.source_file, encoding="utf-8") as f:
                old = f.read().splitlines()
        except FileNotFoundError:
            old = []
        out, written = [], set()
        users = self.current_user_lines() if self.current_user_lines is not None else None
        for line in old:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                out.append(line)
                continue
            try:
                word = shlex.split(stripped)[0].lower()
            except (ValueError, IndexError):
                word = ""
            d = BY_NAME.get(word)
            if word == "user" and users is not None:
                if users:  # the users as they are now: the first where the first line was, as Redis does
                    out.append(users.pop(0))
            elif d is None:
                out.append(line)
            elif d.name not in written:
                written.add(d.name)
                out.append(self._line(d))
        appended = [self._line(d) for d in DIRECTIVES
                    if d.name not in written and self.values[d.name] != d.default]
        if users:
            appended.extend(users)
        if appended:
            out.append("# Generated by CONFIG REWRITE")
            out.extend(appended)
        tmp = self.source_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.source_file)
        dfd = os.open(os.path.dirname(self.source_file) or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _line(self, d: Directive) -> str:
        text = d.format(self.values[d.name])
        if d.name in ("save", "bind", "client-output-buffer-limit") and text:
            return f"{d.name} {text}"
        return f"{d.name} {shlex.quote(text) if text else chr(34) * 2}"
