"""Test support: start real servers, talk raw RESP to them, compare replies.

Nothing here is a mock: ``KeelProcess`` runs ``python -m server`` on a free
port, ``RedisProcess`` runs a real ``redis-server`` next to it, and
``RespClient`` speaks RESP over a real socket, returning replies parsed by
hiredis with errors as ``Err(text)`` values, so that replies (errors included)
from both servers can be compared with ``==``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import hiredis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Err(str):
    """An error reply, compared by its text."""

    def __repr__(self) -> str:
        return f"Err({str.__repr__(self)})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(args) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class RespClient:
    """A blocking RESP client over a real socket; replies parsed by hiredis."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader(replyError=Err)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self):
        while True:
            r = self.reader.gets()
            if r is not False:
                return r
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by server")
            self.reader.feed(data)

    def call(self, *args):
        self.sock.sendall(encode(args))
        return self.read()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(encode(c) for c in commands))
        return [self.read() for _ in commands]

    def recv_all(self, timeout: float = 1.0) -> bytes:
        """Everything the server sends until it closes the connection or goes quiet."""
        self.sock.settimeout(timeout)
        chunks = []
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    break
                chunks.append(d)
        except socket.timeout:
            pass
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def wait_ready(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0,
               log_path: str | None = None, log_from: int = 0) -> None:
    """Until the server answers PING (or -NOAUTH). A -NOAUTH comes before a
    -LOADING (as in Redis, authentication is checked first), so with
    ``log_path`` (a Keel server's log) it counts only once the log, past
    byte ``log_from`` (where this start began), says the server is ready,
    which it says after loading."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            c = RespClient(port, timeout=1.0)
            try:
                r = c.call("PING")
            finally:
                c.close()
            if r == b"PONG":
                return
            if isinstance(r, Err) and r.startswith("NOAUTH"):
                if log_path is None or _says_ready(log_path, log_from):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not become ready")


def _says_ready(log_path: str, start: int) -> bool:
    try:
        with open(log_path, "rb") as f:
            f.seek(start)
            return b"ready to accept connections" in f.read()
    except OSError:
        return False


class KeelProcess:
    """A real Keel server process on a free port with its own data directory."""

    def __init__(self, *args: str, dir: str | None = None, port: int | None = None):
        self.port = port or free_port()
        self.own_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="keel-test-")
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(self.dir, "keel.log")

    def start(self, wait: bool = True) -> "KeelProcess":
        # DEBUG is off by default, as in Redis; tests use its hooks (a later
        # --enable-debug-command in ``args`` wins).
        cmd = [sys.executable, "-m", "server", "--port", str(self.port), "--dir", self.dir,
               "--logfile", self.log_path, "--enable-debug-command", "yes"] + self.args
        try:
            self.log_from = os.path.getsize(self.log_path)  # (a restart appends to the same log)
        except OSError:
            self.log_from = 0
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            wait_ready(self.port, self.proc, log_path=self.log_path, log_from=self.log_from)
        return self

    def client(self, **kw) -> RespClient:
        return RespClient(self.port, **kw)

    def redis(self, **kw):
        import redis
        return redis.Redis(port=self.port, **kw)

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig: int | None = None, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class RedisProcess:
    """A real redis-server on a free port, no persistence unless asked."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-ref-")
        self.args = list(args)
        self.proc = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> "RedisProcess":
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
               "--save", "", "--appendonly", "no", "--daemonize", "no"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port, self.proc)
        return self

    def client(self, **kw) -> RespClient:
        return RespClient(self.port, **kw)

    def redis(self, **kw):
        import redis
        return redis.Redis(port=self.port, **kw)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Pair:
    """The same commands to Keel and to redis-server; replies must match."""

    def __init__(self, keel: RespClient, ref: RespClient):
        self.keel = keel
        self.ref = ref

    def both(self, *args):
        return self.keel.call(*args), self.ref.call(*args)

    def check(self, *args, sort: bool = False, approx: bool = False):
        """Send ``args`` to both; assert equal replies; return Keel's."""
        k, r = self.both(*args)
        if sort:
            k, r = _sorted(k), _sorted(r)
        if approx:
            assert _approx_equal(k, r), f"{args!r}: keel {k!r} != redis {r!r}"
        else:
            assert k == r, f"{args!r}: keel {k!r} != redis {r!r}"
        return k

    def close(self) -> None:
        self.keel.close()
        self.ref.close()


def _sorted(v):
    if isinstance(v, list):
        return sorted((_sorted(x) for x in v), key=repr)
    return v


def _approx_equal(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_approx_equal(x, y) for x, y in zip(a, b))
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return abs(fa - fb) <= 1e-9 * max(1.0, abs(fa), abs(fb))


def help_subcommands(client: RespClient, command: str, help_: str = "HELP") -> set[bytes]:
    """The subcommands that ``command HELP`` names, lower case.

    The raw reply is checked first: clients print HELP line by line and expect
    an array of simple strings (``+line``), a heading first. Each subcommand's
    syntax starts a line at the margin; descriptions are indented.
    """
    client.send_raw(encode((command, help_)))
    buf = b""
    while True:
        chunk = client.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
        lines = buf.split(b"\r\n")
        assert buf[:1] == b"*", f"{command} {help_}: not an array: {buf[:200]!r}"
        if len(lines) > 1 and len(lines) - 2 >= int(lines[0][1:]):
            break
    items = lines[1:-1]
    assert lines[-1] == b"" and len(items) == int(lines[0][1:]) > 1, f"{command} {help_}: {buf!r}"
    assert all(item[:1] == b"+" for item in items), f"{command} {help_}: not all simple strings: {buf!r}"
    return {item[1:].split(b" ")[0].lower() for item in items[1:] if item[1:2] not in (b" ", b"(")}


# --- engine-level helpers: run handlers directly, observe their effects ------

def run(session, *args):
    """Call a command's handler directly (no server): ``run(c, "SET", "k", 1)``."""
    from engine.registry import COMMANDS

    argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return COMMANDS[argv[0].decode().lower()].handler(session, argv)


def take_effects(session) -> list:
    """The effects recorded since the last call (argv lists), then forgets them."""
    out = [argv for _, argv in session.ks.effects]
    session.ks.effects.clear()
    return out


def bitfield_args(ops) -> list:
    """BITFIELD arguments from (op, type, offset, value, overflow mode) tuples."""
    args = []
    for op, kind, offset, value, mode in ops:
        if op == "OVERFLOW":
            args += [op, mode]
        elif op == "GET":
            args += [op, kind, offset]
        else:
            args += [op, kind, offset, value]
    return args
