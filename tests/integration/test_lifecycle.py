"""Lifecycle: signals stop the server cleanly; a taken port stops it with a message."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support import ROOT, KeelProcess


def _port_accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(sig):
    keel = KeelProcess().start()
    try:
        c = keel.client()
        assert c.call("SET", "k", "v") == b"OK"
        status = keel.stop(sig)
        assert status == 0
        assert c.recv_all(1.0) == b""  # the client was disconnected
        c.close()
        assert not _port_accepts(keel.port)
        log = keel.log()
        assert "shutting down" in log and "ready to exit" in log
        assert "Traceback" not in log
    finally:
        keel.cleanup()


def test_second_server_on_a_taken_port_fails_with_a_clear_message():
    first = KeelProcess().start()
    second = KeelProcess(port=first.port)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "server", "--port", str(first.port), "--dir", second.dir],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0
        assert "Address already in use" in proc.stderr
        assert f"Failed listening on port {first.port}" in proc.stderr
        assert "Traceback" not in proc.stderr
        c = first.client()
        assert c.call("PING") == b"PONG"  # the first server is untouched
        c.close()
    finally:
        second.cleanup()
        first.cleanup()


def test_cron_runs_active_expiry(keel):
    c = keel.client()
    try:
        c.call("FLUSHALL")
        # One pipeline, so that all 50 exist before the first can expire even
        # on a busy machine; then only the cron can remove them.
        c.pipeline([("SET", f"e{i}", "v", "PX", "400") for i in range(50)])
        assert c.call("DBSIZE") == 50
        deadline = time.monotonic() + 3.0
        while c.call("DBSIZE") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.call("DBSIZE") == 0  # nobody read the keys: the cron expired them
    finally:
        c.close()
