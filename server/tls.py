"""TLS: the ``tls-*`` directives turned into an ``ssl.SSLContext``, and protected mode.

A TLS listener (``tls-port``) serves the same ``Connection`` as a plain one;
uvloop runs the handshake, so a slow or garbage handshake holds only its own
connection (``tls-handshake-timeout``, a Keel directive, closes it after 10 s
by default). ``port 0`` with a ``tls-port`` serves TLS only, as in Redis.

What each directive does here:

* ``tls-cert-file`` / ``tls-key-file`` (``tls-key-file-pass``): the server's
  certificate chain and key, loaded at start; a file that is missing or does
  not match stops the start with a message naming it.
* ``tls-ca-cert-file`` / ``tls-ca-cert-dir``: the CAs a client certificate
  must chain to.
* ``tls-auth-clients``: ``yes`` (Redis's default) refuses a client without a
  valid certificate during the handshake, ``optional`` checks one only if it is
  sent, ``no`` asks for none.
* ``tls-protocols``: a space-separated list among ``TLSv1``, ``TLSv1.1``,
  ``TLSv1.2``, ``TLSv1.3``; the lowest and highest named bound what is
  accepted (an empty value: ``TLSv1.2 TLSv1.3``, as Redis defaults).
* ``tls-ciphers``: the OpenSSL cipher list for TLS 1.2 and below.
* ``tls-ciphersuites``: TLS 1.3 suites. Python's ``ssl`` module has no call to
  restrict them, so Keel accepts the directive only when it is empty or names
  suites all of which OpenSSL enables by default, and says so at start (a
  documented difference from Redis).
* ``tls-prefer-server-ciphers``: the server's cipher order wins.
* ``tls-session-caching`` / ``tls-session-cache-size`` /
  ``tls-session-cache-timeout``: accepted; OpenSSL's server session cache is
  on by default (Python exposes no size or timeout).
* ``tls-replication``: used by replication (a later issue) when it connects to
  a primary; accepted now.

The context is built once, at start. As in Redis, CONFIG SET of a ``tls-*``
file directive takes effect for new connections: the context is rebuilt and
swapped in (a failure leaves the old one and answers the error).

Protected mode (``protected-mode yes``, the default): while the default user
has no password, a connection from an address other than the loopback
interface (or a Unix socket) gets ``-DENIED …`` and is closed, whatever
``bind`` says — redis-server 7.0 behaves this way with an explicit
``--bind 0.0.0.0`` too (checked side by side).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl

log = logging.getLogger("keel.tls")


class TLSConfigError(Exception):
    pass


_PROTOCOLS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}

# OpenSSL's TLS 1.3 suites enabled by default: the only ones tls-ciphersuites may name.
_DEFAULT_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}


def enabled(cfg) -> bool:
    return bool(cfg["tls-port"])


def build_context(cfg) -> ssl.SSLContext:
    """The server's SSLContext from the ``tls-*`` directives (``TLSConfigError`` if unusable)."""
    cert, key = cfg["tls-cert-file"], cfg["tls-key-file"]
    if not cert or not key:
        raise TLSConfigError("Failed to configure TLS: tls-cert-file and tls-key-file are required")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key, password=cfg["tls-key-file-pass"] or None)
    except (OSError, ssl.SSLError) as e:
        raise TLSConfigError(f"Failed to load certificate: {cert} / private key: {key}: {e}") from None
    auth = cfg["tls-auth-clients"]
    ca_file, ca_dir = cfg["tls-ca-cert-file"], cfg["tls-ca-cert-dir"]
    if ca_file or ca_dir:
        try:
            ctx.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)
        except (OSError, ssl.SSLError) as e:
            raise TLSConfigError(f"Failed to configure CA certificate(s) file/directory: {e}") from None
    elif auth != "no":
        raise TLSConfigError("Either tls-ca-cert-file or tls-ca-cert-dir must be specified "
                             "when tls-auth-clients is yes or optional")
    ctx.verify_mode = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}[auth]
    names = cfg["tls-protocols"].split() or ["TLSv1.2", "TLSv1.3"]
    versions = []
    for n in names:
        v = _PROTOCOLS.get(n.lower())
        if v is None:
            raise TLSConfigError(f"Invalid tls-protocols specified: {n}")
        versions.append(v)
    try:
        ctx.minimum_version = min(versions)
        ctx.maximum_version = max(versions)
    except ValueError as e:
        raise TLSConfigError(f"Failed to set tls-protocols: {e}") from None
    if cfg["tls-ciphers"]:
        try:
            ctx.set_ciphers(cfg["tls-ciphers"])
        except ssl.SSLError:
            raise TLSConfigError(f"Failed to configure ciphers: {cfg['tls-ciphers']}") from None
    suites = [s for s in cfg["tls-ciphersuites"].split(":") if s]
    unknown = [s for s in suites if s not in _DEFAULT_SUITES]
    if unknown:
        raise TLSConfigError(f"Failed to configure ciphersuites: {':'.join(unknown)} "
                             "(Keel cannot restrict TLS 1.3 suites beyond OpenSSL's defaults)")
    if suites:
        log.warning("tls-ciphersuites: Python's ssl module keeps OpenSSL's default TLS 1.3 suites")
    if cfg["tls-prefer-server-ciphers"]:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if not cfg["tls-session-caching"]:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def is_tls(transport) -> bool:
    return transport is not None and transport.get_extra_info("ssl_object") is not None


# --- protected mode --------------------------------------------------------------

DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    b"for the default user. In this mode connections are only accepted from the loopback interface. If you "
    b"want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
    b"disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    b"connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    b"accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    b"you can just disable the protected mode by editing the Redis configuration file, and setting the "
    b"protected mode option to 'no', and then restarting the server. 3) If you started the server manually "
    b"just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication "
    b"password for the default user. NOTE: You only need to do one of the above things in order for the "
    b"server to start accepting connections from the outside.\r\n"
)


def is_loopback(peer) -> bool:
    """Whether a peer address (``getpeername``) is the loopback interface or a Unix socket."""
    if not isinstance(peer, tuple):
        return True  # a Unix socket ('' or a path)
    try:
        return ipaddress.ip_address(peer[0].split("%")[0]).is_loopback
    except ValueError:
        return False


def refuse_unprotected(server, transport) -> bool:
    """True (and ``-DENIED`` sent, the connection closed) when protected mode
    turns this connection away (see the module docstring)."""
    cfg = server.config
    if not cfg["protected-mode"] or not server.default_user_nopass():
        return False
    if is_loopback(transport.get_extra_info("peername")):
        return False
    transport.write(DENIED)
    transport.close()
    return True
