"""Protected mode, side by side with redis-server 7.0.15.

Both servers bind every IPv4 address; the test connects through this host's
own non-loopback address (the one a route to the outside would use), so the
servers see a peer that is not the loopback interface. Without such an
address (a machine with loopback only) the tests skip, saying why.
"""

from __future__ import annotations

import socket
import time

import pytest

import subprocess
import tempfile

from tests.support import KeelProcess, free_port, wait_ready


def _outside_address() -> str | None:
    for probe in ("192.0.2.254", "10.255.255.255", "172.31.255.255"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((probe, 9))  # no packet is sent: this only picks the route's source address
            ip = s.getsockname()[0]
        except OSError:
            continue
        finally:
            s.close()
        if not ip.startswith("127."):
            return ip
    return None


OUTSIDE = _outside_address()
pytestmark = pytest.mark.skipif(OUTSIDE is None, reason="this machine has no non-loopback IPv4 address")


def _first_reply(host: str, port: int) -> tuple[bytes, bool]:
    """What a client from ``host`` gets: the server's greeting if it sends one
    at once (protected mode's ``-DENIED``, before the client says anything),
    else the reply to a PING; and whether the server closed the connection."""
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(0.5)
    try:
        try:
            data = s.recv(65536)
        except socket.timeout:
            data = None
        if data is not None:  # spoken to first: read it all, then the close
            s.settimeout(3)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        s.settimeout(3)
        s.sendall(b"PING\r\n")
        return s.recv(65536), False
    finally:
        s.close()


@pytest.fixture
def ref_outside():
    procs = []

    def start(*args):
        port = free_port()
        d = tempfile.mkdtemp(prefix="redis-pm-")
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "0.0.0.0", "--dir", d, "--save", "",
                              "--appendonly", "no", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_ready(port, p)
        return port
    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


@pytest.fixture
def keel_outside():
    procs = []

    def start(*args):
        k = KeelProcess("--bind", "0.0.0.0", *args).start()
        procs.append(k)
        return k.port
    yield start
    for k in procs:
        k.cleanup()


def test_outside_client_without_a_password_is_denied_as_redis_does(keel_outside, ref_outside):
    kp, rp = keel_outside(), ref_outside()
    got, closed = _first_reply(OUTSIDE, kp)
    want, ref_closed = _first_reply(OUTSIDE, rp)
    assert want.startswith(b"-DENIED Redis is running in protected mode")
    assert got == want
    assert closed and ref_closed


def test_loopback_is_always_served(keel_outside):
    kp = keel_outside()
    assert _first_reply("127.0.0.1", kp)[0] == b"+PONG\r\n"


def test_a_password_lets_outside_clients_reach_auth(keel_outside, ref_outside):
    kp, rp = keel_outside("--requirepass", "s3cret"), ref_outside("--requirepass", "s3cret")
    got, _ = _first_reply(OUTSIDE, kp)
    want, _ = _first_reply(OUTSIDE, rp)
    assert want.startswith(b"-NOAUTH")
    assert got == want


def test_protected_mode_off_serves_outside_clients(keel_outside, ref_outside):
    kp, rp = keel_outside("--protected-mode", "no"), ref_outside("--protected-mode", "no")
    assert _first_reply(OUTSIDE, kp)[0] == _first_reply(OUTSIDE, rp)[0] == b"+PONG\r\n"


def test_config_set_protected_mode_takes_effect_for_new_connections(keel_outside):
    kp = keel_outside()
    assert _first_reply(OUTSIDE, kp)[0].startswith(b"-DENIED")
    local = socket.create_connection(("127.0.0.1", kp), timeout=5)
    local.sendall(b"CONFIG SET protected-mode no\r\n")
    assert local.recv(100) == b"+OK\r\n"
    assert _first_reply(OUTSIDE, kp)[0] == b"+PONG\r\n"
    local.sendall(b"CONFIG SET requirepass pw\r\nCONFIG SET protected-mode yes\r\n")
    time.sleep(0.2)
    local.recv(100)
    assert _first_reply(OUTSIDE, kp)[0].startswith(b"-NOAUTH")  # a password: protected mode stands aside
    local.close()
