"""Replication groups of real processes, a TCP proxy to break their links, and
real redis-sentinels to watch them.

- ``Proxy``: an in-process TCP forwarder (one asyncio loop in a daemon thread
  serves every proxy) with ``cut()`` (abort every connection, close each new
  one at once), ``pause()`` (keep connections, forward nothing: a partition
  that shows as timeouts, not resets), ``delay(ms)`` and ``heal()``.
- ``Node``: one server (``KeelProcess`` or ``RedisProcess``) behind its own
  front proxy. Everyone reaches a node through its proxy: replicas (their
  ``replicaof`` names the primary's proxy), sentinels (they monitor proxy
  addresses) and clients (the address sentinels hand out), because each node
  announces its proxy's port (``replica-announce-port``). Cutting a node's
  proxy therefore cuts it off from everyone, and the addresses Sentinel learns
  stay the proxied ones across failovers. ``direct`` bypasses the proxy (a
  client on the node's side of a partition).
- ``Group``: a primary and N replicas of one kind, started and torn down together.
- ``Sentinel`` / ``Sentinels``: real ``redis-sentinel`` processes with a
  generated config monitoring ``mymaster``.
- ``wait_for`` and the waits built on it: a replica's link up, offsets equal,
  sentinels agreeing on a primary.

Nodes, proxies and sentinels listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from tests.support import Err, KeelProcess, RedisProcess, RespClient, free_port, wait_ready

HOST = "127.0.0.1"
MASTER = "mymaster"


def wait_for(cond, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``cond()`` until it returns something true; return it. Exceptions
    from ``cond`` count as not yet (a server restarting refuses connections)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            got = cond()
            if got:
                return got
        except (OSError, ConnectionError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}"
                               + (f" (last error: {last!r})" if last else ""))
        time.sleep(interval)


def call(port: int, *args, timeout: float = 2.0):
    """One command on a fresh connection (for probes of a server that may be down)."""
    c = RespClient(port, timeout=timeout)
    try:
        return c.call(*args)
    finally:
        c.close()


def info(port: int, section: str = "replication") -> dict[str, str]:
    """``INFO section`` as a dict of its ``name:value`` lines."""
    raw = call(port, "INFO", section)
    if isinstance(raw, Err):
        raise ConnectionError(str(raw))
    out = {}
    for line in raw.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


# --- the proxy ---------------------------------------------------------------

class _LoopThread:
    """One event loop in a daemon thread, shared by every proxy of the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def loop(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="proxy-loop", daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def run(cls, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, cls.loop()).result(timeout)


class Proxy:
    """Forwards ``127.0.0.1:port`` to ``target``; faults are switched from any thread."""

    def __init__(self, target_port: int, target_host: str = HOST):
        self.target = (target_host, target_port)
        self.port = 0
        self._server = None
        self._conns: set = set()
        self._cut = False
        self._delay = 0.0
        self._flowing: asyncio.Event | None = None

    def start(self) -> "Proxy":
        async def go():
            self._flowing = asyncio.Event()
            self._flowing.set()
            self._server = await asyncio.start_server(self._handle, HOST, 0)
            self.port = self._server.sockets[0].getsockname()[1]
        _LoopThread.run(go())
        return self

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def _handle(self, reader, writer):
        if self._cut:
            writer.transport.abort()
            return
        await self._flowing.wait()  # paused: the connection is accepted, nothing flows
        if self._cut:
            writer.transport.abort()
            return
        try:
            ureader, uwriter = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()  # the server is down: the client sees a reset
            return
        pair = (writer, uwriter)
        self._conns.add(pair)
        pumps = [asyncio.ensure_future(self._pump(reader, uwriter)),
                 asyncio.ensure_future(self._pump(ureader, writer))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            self._conns.discard(pair)
            for w in pair:
                w.transport.abort()

    async def _pump(self, src, dst):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    return
                if self._delay:
                    await asyncio.sleep(self._delay)
                await self._flowing.wait()
                dst.write(data)
                await dst.drain()
        except (OSError, ConnectionError):
            return

    @staticmethod
    def _switch(fn):
        """Run ``fn`` on the proxies' loop (their state is the loop's alone)."""
        async def go():
            fn()
        _LoopThread.run(go())

    def cut(self) -> None:
        """Drop every connection (reset) and refuse new ones until ``heal()``."""
        def go():
            self._cut = True
            self._flowing.set()  # wake paused handlers so that they abort too
            for pair in list(self._conns):
                for w in pair:
                    w.transport.abort()
        self._switch(go)

    def pause(self) -> None:
        """Forward nothing, drop nothing: peers see silence until ``heal()``."""
        self._switch(self._flowing.clear)

    def delay(self, ms: float) -> None:
        """Hold each chunk ``ms`` milliseconds before forwarding it (0: none)."""
        def go():
            self._delay = ms / 1000.0
        self._switch(go)

    def heal(self) -> None:
        """Back to forwarding everything at once: no cut, no pause, no delay."""
        def go():
            self._cut = False
            self._delay = 0.0
            self._flowing.set()
        self._switch(go)

    def close(self) -> None:
        if self._server is None:
            return

        async def go():
            self._server.close()
            for pair in list(self._conns):
                for w in pair:
                    w.transport.abort()
        _LoopThread.run(go())
        self._server = None


# --- servers -------------------------------------------------------------------

class Node:
    """One server process of a group, reached through its own front proxy."""

    def __init__(self, kind: str, name: str, args: list[str]):
        assert kind in ("keel", "redis"), kind
        self.kind = kind
        self.name = name
        self.proc = KeelProcess(*args) if kind == "keel" else RedisProcess(*args)
        self.proxy: Proxy | None = None
        self.stopped = False

    @property
    def direct(self) -> int:
        """The server's own port (no proxy in between)."""
        return self.proc.port

    @property
    def port(self) -> int:
        """The address everyone uses: the proxy's port."""
        return self.proxy.port

    def start(self, extra: list[str] = (), ready: bool = True) -> "Node":
        """Start the process (announcing the proxy's port); the proxy first time
        round. ``ready=False`` returns before a Keel server answers (a
        redis-server is up at once anyway): see ``wait_ready``."""
        if self.proxy is None:
            self.proxy = Proxy(self.proc.port).start()
        base = list(self.proc.args)
        self.proc.args = base + ["--replica-announce-ip", HOST,
                                 "--replica-announce-port", str(self.proxy.port)] + list(extra)
        try:
            if self.kind == "keel":
                self.proc.start(wait=ready)
            else:
                self.proc.start()
        finally:
            self.proc.args = base
        self.stopped = False
        return self

    def wait_ready(self) -> None:
        if self.kind == "keel":
            wait_ready(self.direct, self.proc.proc, log_path=self.proc.log_path, log_from=self.proc.log_from)
        else:
            wait_ready(self.direct, self.proc.proc)

    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None

    def kill(self) -> None:
        """kill -9."""
        self.cont()
        if self.alive():
            self.proc.proc.kill()
            self.proc.proc.wait()

    def stop(self) -> None:
        """SIGSTOP: the process holds its sockets and answers nothing."""
        if self.alive():
            os.kill(self.proc.proc.pid, signal.SIGSTOP)
            self.stopped = True

    def cont(self) -> None:
        if self.stopped and self.alive():
            os.kill(self.proc.proc.pid, signal.SIGCONT)
        self.stopped = False

    def client(self, direct: bool = False, **kw) -> RespClient:
        return RespClient(self.direct if direct else self.port, **kw)

    def redis(self, direct: bool = False, **kw):
        import redis
        return redis.Redis(host=HOST, port=self.direct if direct else self.port, **kw)

    def info(self, section: str = "replication") -> dict[str, str]:
        return info(self.direct, section)

    def role(self) -> str:
        return self.info()["role"]

    def log(self) -> str:
        if self.kind == "keel":
            return self.proc.log()
        return ""

    def cleanup(self) -> None:
        self.cont()
        if self.proxy is not None:
            self.proxy.close()
        if self.kind == "keel":
            self.proc.kill()  # throwaway data: no shutdown checkpoint
        self.proc.cleanup()


class Group:
    """A primary and ``replicas`` replicas of one kind, each behind its proxy.

    ``args`` go to every server; ``primary_args`` / ``replica_args`` to one side.
    Every server starts with ``repl-diskless-sync-delay 0``: Redis's default
    waits 5 s for more replicas before a full sync begins.
    """

    def __init__(self, kind: str, replicas: int = 1, args: list[str] = (),
                 primary_args: list[str] = (), replica_args: list[str] = ()):
        self.kind = kind
        args = ["--repl-diskless-sync-delay", "0"] + list(args)
        self.primary = Node(kind, "n0", list(args) + list(primary_args))
        self.replicas = [Node(kind, f"n{i + 1}", list(args) + list(replica_args))
                         for i in range(replicas)]
        self.nodes = [self.primary] + self.replicas

    def start(self, wait: bool = True) -> "Group":
        try:
            self.primary.start()
            for r in self.replicas:  # Keel's start in parallel: a Python start is slow
                r.start(["--replicaof", HOST, str(self.primary.port)], ready=False)
            for r in self.replicas:
                r.wait_ready()
            if wait:
                for r in self.replicas:
                    wait_link_up(r)
        except BaseException:
            self.cleanup()
            raise
        return self

    def by_port(self, port: int) -> Node:
        """The node a (proxied or direct) port belongs to."""
        for n in self.nodes:
            if port in (n.port, n.direct):
                return n
        raise KeyError(port)

    def restart(self, node: Node, extra: list[str] = ()) -> Node:
        node.kill()
        return node.start(extra)

    def cleanup(self) -> None:
        for n in self.nodes:
            try:
                n.cleanup()
            except Exception:
                pass


def wait_link_up(replica: Node, timeout: float = 15.0) -> dict:
    """Until ``replica`` reports ``master_link_status:up``; its INFO replication."""
    def up():
        i = replica.info()
        return i if i.get("role") == "slave" and i.get("master_link_status") == "up" else None
    return wait_for(up, timeout, what=f"{replica.name}'s master link up")


def repl_offset(node: Node) -> int:
    i = node.info()
    return int(i["master_repl_offset"] if i["role"] == "master" else i["slave_repl_offset"])


def wait_offsets_match(primary: Node, replicas: list[Node], timeout: float = 15.0) -> int:
    """Until every replica's offset equals the primary's (read after the
    replicas', so a write in between shows as not yet); that offset."""
    def same():
        offs = [repl_offset(r) for r in replicas]
        p = repl_offset(primary)
        return p if all(o == p for o in offs) else None
    return wait_for(same, timeout, what="replica offsets to match the primary's")


# --- sentinels -----------------------------------------------------------------

class Sentinel:
    """A real ``redis-sentinel`` with a generated config monitoring ``mymaster``."""

    def __init__(self, primary_port: int, quorum: int = 2, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 10000, extra: list[str] = ()):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sentinel-")
        self.conf = os.path.join(self.dir, "sentinel.conf")
        self.log_path = os.path.join(self.dir, "sentinel.log")
        lines = [
            f"port {self.port}", f"bind {HOST}", "daemonize no", f"dir {self.dir}",
            f"logfile {self.log_path}", "sentinel resolve-hostnames no",
            f"sentinel announce-ip {HOST}",
            f"sentinel monitor {MASTER} {HOST} {primary_port} {quorum}",
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
            f"sentinel failover-timeout {MASTER} {failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER} 1",
        ] + list(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def binary() -> list[str]:
        if shutil.which("redis-sentinel"):
            return ["redis-sentinel"]
        return ["redis-server", "--sentinel"]

    def start(self, wait: bool = True) -> "Sentinel":
        cmd = self.binary()
        cmd = [cmd[0], self.conf] + cmd[1:]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            wait_ready(self.port, self.proc)
        return self

    def call(self, *args):
        return call(self.port, *args)

    def master_addr(self) -> tuple[str, int] | None:
        r = self.call("SENTINEL", "get-master-addr-by-name", MASTER)
        return (r[0].decode(), int(r[1])) if r else None

    def replicas(self) -> list[dict]:
        return [_pairs(x) for x in self.call("SENTINEL", "replicas", MASTER)]

    def sentinels(self) -> list[dict]:
        return [_pairs(x) for x in self.call("SENTINEL", "sentinels", MASTER)]

    def master(self) -> dict:
        return _pairs(self.call("SENTINEL", "master", MASTER))

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pairs(flat) -> dict:
    """A flat [name, value, name, value ...] reply as a dict of str."""
    it = iter(flat)
    return {k.decode(): v.decode() if isinstance(v, bytes) else v for k, v in zip(it, it)}


class Sentinels:
    """``n`` sentinels watching ``group``'s primary (through its proxy)."""

    def __init__(self, group: Group, n: int = 3, quorum: int = 2, **kw):
        self.group = group
        self.all = [Sentinel(group.primary.port, quorum, **kw) for _ in range(n)]

    def start(self) -> "Sentinels":
        try:
            for s in self.all:
                s.start(wait=False)
            for s in self.all:
                wait_ready(s.port, s.proc)
        except BaseException:
            self.cleanup()
            raise
        return self

    def addresses(self) -> list[tuple[str, int]]:
        return [(HOST, s.port) for s in self.all]

    def agreed_primary(self) -> Node | None:
        """The node every sentinel names as the primary, if they agree."""
        got = {s.master_addr() for s in self.all}
        if len(got) != 1:
            return None
        (addr,) = got
        return self.group.by_port(addr[1]) if addr else None

    def wait_primary(self, not_: Node | None = None, timeout: float = 20.0) -> Node:
        """Until all sentinels name one primary (other than ``not_``); that node."""
        def agreed():
            n = self.agreed_primary()
            return n if n is not None and n is not not_ else None
        return wait_for(agreed, timeout, interval=0.1,
                        what="sentinels to agree on a new primary" if not_ else "sentinels to agree")

    def wait_discovered(self, timeout: float = 15.0) -> None:
        """Until every sentinel knows every replica and every other sentinel."""
        want = len(self.group.nodes) - 1

        def known():
            return all(len(s.replicas()) >= want and len(s.sentinels()) >= len(self.all) - 1
                       for s in self.all)
        wait_for(known, timeout, interval=0.1, what="sentinels to discover replicas and each other")

    def wait_failed_over(self, old: Node, timeout: float = 20.0) -> tuple[Node, list[Node]]:
        """Until the sentinels agree on a primary other than ``old``, it says it
        is one, and every other replica replicates from it with its link up:
        (new primary, those replicas)."""
        new = self.wait_primary(not_=old, timeout=timeout)
        wait_for(lambda: new.role() == "master", 10, what=f"{new.name} to report role master")
        others = [n for n in self.group.nodes if n is not new and n is not old]
        for n in others:
            wait_for(lambda: n.info().get("master_port") == str(new.port), 15,
                     what=f"{n.name} repointed to {new.name}")
            wait_link_up(n)
        return new, others

    def logs(self) -> str:
        return "\n".join(f"--- sentinel {s.port}\n{s.log()}" for s in self.all)

    def cleanup(self) -> None:
        for s in self.all:
            s.cleanup()
