"""rename-command, enable-protected-configs, enable-debug-command and
enable-module-command, side by side with redis-server 7.0.15 where it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from tests.support import ROOT, Err, KeelProcess, RedisProcess, wait_ready


class ConfKeel(KeelProcess):
    """A Keel process started from a config file (which must come first)."""

    def __init__(self, conf: str, *args: str):
        super().__init__(*args)
        self.conf = conf

    def start(self, wait: bool = True) -> "ConfKeel":
        cmd = [sys.executable, "-m", "server", self.conf, "--port", str(self.port), "--dir", self.dir,
               "--logfile", self.log_path] + self.args
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            wait_ready(self.port, self.proc)
        return self


def _conf(text: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def renamed():
    path = _conf('rename-command FLUSHDB ""\nrename-command config k33p-config\nrename-command get fetch\n')
    keel = ConfKeel(path).start()
    yield keel
    keel.cleanup()
    os.unlink(path)


def test_rename_command_answers_to_the_new_name_only(renamed):
    c = renamed.client()
    assert c.call("SET", "a", "1") == b"OK"
    assert c.call("FETCH", "a") == b"1"
    assert c.call("fetch", "a") == b"1"
    r = c.call("GET", "a")
    assert isinstance(r, Err) and r.startswith("ERR unknown command 'GET'")
    r = c.call("FLUSHDB")
    assert isinstance(r, Err) and r.startswith("ERR unknown command 'FLUSHDB'")
    assert c.call("K33P-CONFIG", "GET", "port") == [b"port", str(renamed.port).encode()]
    r = c.call("CONFIG", "GET", "port")
    assert isinstance(r, Err) and "unknown command" in r
    # Pipelined (the hot path's table) and from a script (redis.call's table) alike.
    c.sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$5\r\nFETCH\r\n$1\r\na\r\n")
    assert isinstance(c.read(), Err)
    assert c.read() == b"1"
    r = c.call("EVAL", "return redis.call('get', KEYS[1])", "1", "a")
    assert isinstance(r, Err) and "Unknown Redis command" in r
    assert c.call("EVAL", "return redis.call('fetch', KEYS[1])", "1", "a") == b"1"
    c.close()


def test_rename_command_of_an_unknown_command_stops_the_start():
    path = _conf("rename-command NOSUCHCOMMAND x\n")
    keel = ConfKeel(path)
    keel.start(wait=False)
    try:
        assert keel.proc.wait(15) != 0
        assert "no such command" in keel.log()
    finally:
        keel.cleanup()
        os.unlink(path)


def test_rename_command_is_not_a_config_get_directive(renamed):
    c = renamed.client()
    assert c.call("K33P-CONFIG", "GET", "rename-command") == []
    c.close()


@pytest.fixture
def defaults():
    """Keel and redis-server with the enable-* directives at their defaults."""
    keel = KeelProcess("--enable-debug-command", "no").start()
    ref = RedisProcess().start()
    yield keel.client(), ref.client()
    keel.cleanup()
    ref.cleanup()


def test_protected_configs_are_refused_by_default(defaults):
    k, r = defaults
    for args in (("dbfilename", "x.rdb"),):
        assert k.call("CONFIG", "SET", *args) == r.call("CONFIG", "SET", *args)
        assert "can't set protected config" in k.call("CONFIG", "SET", *args)
    assert k.call("CONFIG", "GET", "enable-protected-configs") == r.call("CONFIG", "GET", "enable-protected-configs")
    # Immutable, as in Redis.
    for name in ("enable-protected-configs", "enable-debug-command", "enable-module-command"):
        assert k.call("CONFIG", "SET", name, "yes") == r.call("CONFIG", "SET", name, "yes")


def test_debug_is_refused_by_default(defaults):
    k, r = defaults
    got, want = k.call("DEBUG", "HELP"), r.call("DEBUG", "HELP")
    assert isinstance(got, Err) and got == want
    assert k.call("CONFIG", "GET", "enable-debug-command") == r.call("CONFIG", "GET", "enable-debug-command")


@pytest.mark.parametrize("mode", ["yes", "local"])
def test_protected_configs_allowed_when_enabled(mode):
    keel = KeelProcess("--enable-protected-configs", mode).start()
    try:
        c = keel.client()
        assert c.call("CONFIG", "SET", "dbfilename", "other.rdb") == b"OK"
        assert c.call("CONFIG", "GET", "dbfilename") == [b"dbfilename", b"other.rdb"]
        # Keel's dir holds the log: immutable whatever enable-protected-configs says.
        assert "can't set immutable config" in c.call("CONFIG", "SET", "dir", "/tmp")
        c.close()
    finally:
        keel.cleanup()


def test_debug_local_runs_from_loopback():
    keel = KeelProcess("--enable-debug-command", "local").start()
    try:
        c = keel.client()
        assert isinstance(c.call("DEBUG", "HELP"), list)
        c.close()
    finally:
        keel.cleanup()
