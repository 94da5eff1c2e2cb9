"""Shared by the side-by-side benchmarks: start servers, pin them, clean up.

``Servers`` starts Keel, redis-server and ``../shared/bench/ceiling.py`` on
free 127.0.0.1 ports, pins each to one core (``taskset -apc 1 PID``: every
thread, as ../shared/bench/README.md describes) and stops every process it
started when the ``with`` block ends, on error or on SIGTERM/SIGINT too.
The benchmark client pins itself to the other core with ``pin_self()``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.support import KeelProcess, RedisProcess, RespClient, free_port, wait_ready  # noqa: E402

SHARED_BENCH = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench"))
CEILING = os.path.join(SHARED_BENCH, "ceiling.py")
COMPARE = os.path.join(SHARED_BENCH, "compare.py")

SERVER_CPU = "1"
CLIENT_CPU = 0


def pin(pid: int, cpu: str = SERVER_CPU) -> None:
    """Pin every thread of ``pid`` to ``cpu`` (threads started later inherit it)."""
    if shutil.which("taskset"):
        subprocess.run(["taskset", "-apc", cpu, str(pid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def pin_self(cpu: int = CLIENT_CPU) -> None:
    """Run this (client) process on ``cpu``, away from the servers' core."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class CeilingProcess:
    """``../shared/bench/ceiling.py PORT``: the bare uvloop + hiredis server."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CeilingProcess":
        self.proc = subprocess.Popen([sys.executable, CEILING, str(self.port)] + self.args,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port, self.proc)
        return self

    def client(self, **kw) -> RespClient:
        return RespClient(self.port, **kw)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _Stop(BaseException):
    pass


class Servers:
    """Context manager owning the server processes of one benchmark run."""

    def __init__(self, pin_servers: bool = True):
        self.pin_servers = pin_servers
        self.procs: list = []
        self._old: dict = {}

    def __enter__(self) -> "Servers":
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._old[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass
        return self

    def _on_signal(self, signum, frame):
        raise SystemExit(128 + signum)

    def __exit__(self, *exc) -> None:
        self.stop_all()
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _started(self, p):
        self.procs.append(p)
        if self.pin_servers:
            pin(p.proc.pid)
        return p

    def keel(self, *args: str) -> KeelProcess:
        return self._start(KeelProcess(*args, "--loglevel", "warning"))

    def redis(self, *args: str) -> RedisProcess:
        return self._start(RedisProcess(*args))

    def ceiling(self, *args: str) -> CeilingProcess:
        return self._start(CeilingProcess(*args))

    def _start(self, p):
        try:
            p.start()
        except BaseException:
            self._stop(p)
            raise
        return self._started(p)

    @staticmethod
    def _stop(p) -> None:
        try:
            if isinstance(p, KeelProcess):
                # Throwaway data: no shutdown checkpoint of millions of keys.
                p.kill()
            p.cleanup()
        except Exception:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()

    def stop(self, p) -> None:
        if p in self.procs:
            self.procs.remove(p)
        self._stop(p)

    def stop_all(self) -> None:
        while self.procs:
            self._stop(self.procs.pop())


def requests_per_second(cmd: list) -> dict:
    """Run ``redis-benchmark`` (``cmd``: its argv, ``--csv`` among the
    options) and read its CSV: test name -> requests per second."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    got = {}
    for line in out.splitlines():
        m = re.match(r'"(\w+)","([\d.]+)"', line)
        if m:
            got[m.group(1)] = float(m.group(2))
    return got


def settle(seconds: float = 0.5) -> None:
    time.sleep(seconds)
