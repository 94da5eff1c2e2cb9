"""TLS (server.tls) with certificates made by the system's openssl for this run.

A CA signs a server certificate (for localhost / 127.0.0.1) and a client
certificate; a second, unrelated CA signs a client certificate the server must
refuse. Clients are redis-py with ``ssl=True`` and redis-cli ``--tls``.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import redis

from tests.support import KeelProcess, free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ca(d, name):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", "2", "-subj", f"/CN={name}", cwd=d)


def _signed(d, name, ca, san=None):
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}", cwd=d)
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2"]
    if san:
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        args += ["-extfile", f"{name}.ext"]
    _openssl(*args, cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    _ca(d, "ca")
    _ca(d, "otherca")
    _signed(d, "server", "ca", san="DNS:localhost,IP:127.0.0.1")
    _signed(d, "client", "ca")
    _signed(d, "stranger", "otherca")
    return {n: os.path.join(d, n) for n in ("ca", "server", "client", "stranger")}


def _tls_args(certs, port, *extra):
    return ("--tls-port", str(port), "--tls-cert-file", certs["server"] + ".crt",
            "--tls-key-file", certs["server"] + ".key", "--tls-ca-cert-file", certs["ca"] + ".crt", *extra)


@pytest.fixture(scope="module")
def tls_keel(certs):
    port = free_port()
    proc = KeelProcess(*_tls_args(certs, port)).start()
    proc.tls_port = port
    _wait_tls(port, certs)
    yield proc
    proc.cleanup()


def _wait_tls(port, certs, deadline=10.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("TLS port not listening")


def _client(certs, port, who="client", **kw):
    return redis.Redis(port=port, ssl=True, ssl_ca_certs=certs["ca"] + ".crt",
                       ssl_certfile=certs[who] + ".crt" if who else None,
                       ssl_keyfile=certs[who] + ".key" if who else None, socket_timeout=5, **kw)


def test_redis_py_over_tls_reads_what_plain_tcp_wrote(tls_keel, certs):
    plain = tls_keel.redis()
    plain.set("shared", "from-tcp")
    c = _client(certs, tls_keel.tls_port)
    assert c.get("shared") == b"from-tcp"
    c.set("k", "v" * 100000)  # spans many TLS records
    assert plain.get("k") == b"v" * 100000
    p = c.pipeline(transaction=True)
    p.incr("n").incr("n").get("n")
    assert p.execute() == [1, 2, b"2"]
    c.close()
    plain.close()


def test_redis_cli_tls(tls_keel, certs):
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed")
    base = ["redis-cli", "-p", str(tls_keel.tls_port), "--tls", "--cacert", certs["ca"] + ".crt",
            "--cert", certs["client"] + ".crt", "--key", certs["client"] + ".key"]
    out = subprocess.run(base + ["SET", "cli", "yes"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "OK"
    out = subprocess.run(base + ["GET", "cli"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "yes"


def test_client_without_certificate_is_refused_when_auth_clients_yes(tls_keel, certs):
    c = _client(certs, tls_keel.tls_port, who=None)
    with pytest.raises(redis.ConnectionError):
        c.ping()
    c.close()


def test_client_with_a_certificate_of_another_ca_is_refused(tls_keel, certs):
    c = _client(certs, tls_keel.tls_port, who="stranger")
    with pytest.raises(redis.ConnectionError):
        c.ping()
    c.close()
    assert tls_keel.redis().ping()  # the server is fine


def test_plain_text_on_the_tls_port_does_not_reach_commands(tls_keel, certs):
    s = socket.create_connection(("127.0.0.1", tls_keel.tls_port), timeout=5)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$7\r\nplainin\r\n$1\r\n1\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    assert tls_keel.redis().exists("plainin") == 0


def test_a_stalled_handshake_does_not_block_others(tls_keel, certs):
    stalled = []
    for _ in range(20):  # connect and say nothing: the handshake never starts
        stalled.append(socket.create_connection(("127.0.0.1", tls_keel.tls_port), timeout=5))
    half = socket.create_connection(("127.0.0.1", tls_keel.tls_port), timeout=5)
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello, then silence
    garbage = socket.create_connection(("127.0.0.1", tls_keel.tls_port), timeout=5)
    garbage.sendall(os.urandom(4096))
    t0 = time.monotonic()
    c = _client(certs, tls_keel.tls_port)
    assert c.ping()
    assert tls_keel.redis().ping()
    assert time.monotonic() - t0 < 2.0
    c.close()
    for s in stalled + [half, garbage]:
        s.close()


def test_handshake_timeout_closes_a_silent_connection(certs):
    port = free_port()
    proc = KeelProcess(*_tls_args(certs, port, "--tls-handshake-timeout", "300")).start()
    try:
        _wait_tls(port, certs)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        t0 = time.monotonic()
        assert s.recv(10) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - t0 < 3.0
        s.close()
    finally:
        proc.cleanup()


def test_auth_clients_optional_and_no(certs):
    for mode, without_cert_ok in (("optional", True), ("no", True)):
        port = free_port()
        proc = KeelProcess(*_tls_args(certs, port, "--tls-auth-clients", mode)).start()
        try:
            _wait_tls(port, certs)
            c = _client(certs, port, who=None)
            assert c.ping() is without_cert_ok
            c.close()
            if mode == "optional":  # a certificate that is sent is still checked
                bad = _client(certs, port, who="stranger")
                with pytest.raises(redis.ConnectionError):
                    bad.ping()
                bad.close()
        finally:
            proc.cleanup()


def test_port_0_serves_tls_only(certs):
    port = free_port()
    proc = KeelProcess(*_tls_args(certs, port), port=free_port())
    proc.args += ["--port", "0"]  # the later --port wins: no TCP listener
    proc.start(wait=False)
    try:
        _wait_tls(port, certs)
        c = _client(certs, port)
        for _ in range(50):
            try:
                assert c.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        assert _listening_ports(proc.proc.pid) == {port}
        c.close()
    finally:
        proc.cleanup()


def _listening_ports(pid: int) -> set:
    """The TCP ports process ``pid`` listens on (its socket inodes in /proc/net/tcp*, state LISTEN)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def test_tls_listener_beside_the_tcp_one(tls_keel):
    assert _listening_ports(tls_keel.proc.pid) == {tls_keel.port, tls_keel.tls_port}


def test_tls_protocols_bound_the_versions(certs):
    port = free_port()
    proc = KeelProcess(*_tls_args(certs, port, "--tls-protocols", "TLSv1.3")).start()
    try:
        _wait_tls(port, certs)
        ctx = ssl.create_default_context(cafile=certs["ca"] + ".crt")
        ctx.load_cert_chain(certs["client"] + ".crt", certs["client"] + ".key")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"PING\r\n")
                    s.recv(10)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert s.version() == "TLSv1.3"
                s.sendall(b"PING\r\n")
                assert s.recv(10) == b"+PONG\r\n"
    finally:
        proc.cleanup()


@pytest.mark.parametrize("args, words", [
    (("--tls-cert-file", "/nonexistent.crt"), "Failed to load certificate"),
    (("--tls-protocols", "SSLv3"), "Invalid tls-protocols"),
    (("--tls-ciphers", "NOT-A-CIPHER"), "Failed to configure ciphers"),
])
def test_bad_tls_configuration_stops_the_start_with_a_message(certs, args, words):
    port = free_port()
    proc = KeelProcess(*_tls_args(certs, port), *args)
    proc.start(wait=False)
    try:
        assert proc.proc.wait(15) != 0
        assert words in proc.log() + proc.proc.stderr.read().decode()
    finally:
        proc.cleanup()


def test_config_get_lists_the_tls_directives(tls_keel):
    c = tls_keel.redis()
    got = c.config_get("tls-*")
    for name in ("tls-port", "tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-auth-clients",
                 "tls-protocols", "tls-ciphers", "tls-ciphersuites", "tls-replication"):
        assert name in got
    assert got["tls-port"] == str(tls_keel.tls_port)
    assert got["tls-auth-clients"] == "yes"
    c.close()
