"""``python -m server``: configuration errors stop the start with a message and status 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT, RespClient, free_port, wait_ready


def _run(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_version_flag():
    out = _run("--version")
    assert out.returncode == 0 and "v=" in out.stdout and "7.2.0" in out.stdout


def test_help_flag():
    out = _run("--help")
    assert out.returncode == 0 and "Usage" in out.stdout


@pytest.mark.parametrize("args,needle", [
    (("--nosuch-directive", "1"), "unknown directive 'nosuch-directive'"),
    (("--port", "notaport"), "'port'"),
    (("--port", "70000"), "between 0 and 65535"),
    (("--appendonly", "maybe"), "'yes' or 'no'"),
    (("--maxmemory", "12parsecs"), "memory value"),
    (("--loglevel", "loud"), "one of the following"),
    (("--port",), "'port' takes exactly one value"),
])
def test_bad_arguments_stop_the_start(tmp_path, args, needle):
    out = _run("--dir", str(tmp_path), *args)
    assert out.returncode == 1
    assert "FATAL CONFIG" in out.stderr and needle in out.stderr


def test_bad_config_file_line_is_named(tmp_path):
    conf = tmp_path / "keel.conf"
    conf.write_text("# comment\nport 7777\nbogus yes\n")
    out = _run(str(conf))
    assert out.returncode == 1
    assert "line 3" in out.stderr and "bogus" in out.stderr


def test_missing_config_file(tmp_path):
    out = _run(str(tmp_path / "nope.conf"))
    assert out.returncode == 1 and "nope.conf" in out.stderr


def test_config_file_and_arguments_both_apply_arguments_last(tmp_path):
    conf = tmp_path / "keel.conf"
    port = free_port()
    conf.write_text(f'# test\nport {port}\nhz 20\nsave ""\nmaxmemory 2mb\n')
    proc = subprocess.Popen([sys.executable, "-m", "server", str(conf), "--hz", "30", "--dir", str(tmp_path),
                             "--logfile", str(tmp_path / "keel.log")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        c = RespClient(port)
        assert c.call("CONFIG", "GET", "hz") == [b"hz", b"30"]
        assert c.call("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"2097152"]
        assert c.call("INFO", "server").decode().count(f"config_file:{conf}") == 1
        c.send_raw(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
