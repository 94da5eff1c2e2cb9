"""Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH.

Authentication checks a user of ``server.acl``: ``AUTH password`` (and
``HELLO ... AUTH default password``) the ``default`` user, whose password
``requirepass`` sets (CONFIG SET requirepass takes effect at once; clients
already authenticated stay so, as in Redis). A failed AUTH leaves the
client's state as it was and is counted in ACL LOG.

RESET returns the connection to its state right after connecting. Other areas
that keep per-connection state (MULTI, subscriptions, tracking) append a
function taking the client to ``RESET_HOOKS``; RESET calls each of them.
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command
from engine.reply import OK, PONG, Status
from engine.util import to_int_or_none
from server.acl import server_acl

RESET_HOOKS: list = []

_RESET = Status("RESET")


@command("ping", -1, "fast", acl="@fast @connection", group="connection",
         tips="request_policy:all_shards response_policy:all_succeeded")
def ping(c, argv):
    """PING [message] -- PONG, or the message. O(1).

    A RESP2 client subscribed to something gets ``pong`` and the message (or
    an empty string) as an array, like any message it receives there."""
    n = len(argv)
    if n > 2:
        raise CommandError(errors.WRONG_ARITY.format("ping"))
    if c.pubsub is not None and c.protocol == 2:
        return [b"pong", argv[1] if n == 2 else b""]
    return PONG if n == 1 else argv[1]


@command("echo", 2, "loading stale fast", acl="@fast @connection", group="connection")
def echo(c, argv):
    """ECHO message -- the message. O(1)."""
    return argv[1]


@command("quit", -1, "allow_busy noscript loading stale fast no-auth", acl="@fast @connection", group="connection",
         fast_path=False)
def quit_(c, argv):
    """QUIT -- reply OK and close the connection."""
    c.close_after_reply = True
    return OK


# --- authentication ---------------------------------------------------------

def authenticate(c, user: bytes, password: bytes, cmd_name: bytes = b"auth") -> None:
    """Log ``c`` in as ``user`` or raise WRONGPASS (logged in ACL LOG); nothing changes on failure."""
    if not server_acl(c.server).authenticate(c, user, password, cmd_name):
        raise CommandError(errors.WRONGPASS)


@command("auth", -2, "noscript loading stale fast no-auth allow_busy", acl="@fast @connection",
         group="connection", fast_path=False)
def auth(c, argv):
    """AUTH [username] password -- authenticate the connection. O(N) in the password length."""
    n = len(argv)
    if n > 3:
        raise CommandError(errors.SYNTAX)
    if n == 2:
        if server_acl(c.server).default.nopass:
            raise CommandError(errors.AUTH_NOT_CONFIGURED)
        authenticate(c, b"default", argv[1], argv[0])
    else:
        authenticate(c, argv[1], argv[2], argv[0])
    return OK


def valid_name(name: bytes) -> bool:
    """Client names and library attributes: printable ASCII, no spaces."""
    return all(33 <= ch <= 126 for ch in name)


def server_role(server) -> str:
    repl = getattr(server, "repl", None)
    return repl.role if repl is not None else "master"


@command("hello", -1, "noscript loading stale fast no-auth allow_busy", acl="@fast @connection",
         group="connection", since="6.0.0", fast_path=False)
def hello(c, argv):
    """HELLO [protover [AUTH username password] [SETNAME clientname]] -- handshake. O(1)."""
    from server.app import REDIS_VERSION

    version = None
    i = 1
    if len(argv) >= 2:
        version = to_int_or_none(argv[1])
        if version is None:
            raise CommandError(errors.HELLO_PROTO_NOT_INT)
        if version not in (2, 3):
            raise CommandError(errors.NOPROTO)
        i = 2
    credentials = None
    name = None
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        more = n - 1 - i
        if opt == b"auth" and more >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"setname" and more >= 1:
            name = argv[i + 1]
            if not valid_name(name):
                raise CommandError(errors.CLIENT_NAME_INVALID)
            i += 2
        else:
            raise CommandError(errors.HELLO_BAD_OPTION.format(argv[i].decode("utf-8", "replace")))
    if credentials is not None:
        authenticate(c, *credentials, argv[0])
    if not c.authenticated:
        raise CommandError(errors.HELLO_NOAUTH)
    if version is not None:
        c.set_protocol(version)
    if name is not None:
        c.name = name
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": c.protocol,
        b"id": c.id,
        b"mode": b"standalone",
        b"role": server_role(c.server).encode(),
        b"modules": [],
    }


@command("reset", 1, "noscript loading stale fast no-auth allow_busy", acl="@fast @connection",
         group="connection", since="6.2.0", fast_path=False)
def reset(c, argv):
    """RESET -- return the connection to its initial state. O(1)."""
    for hook in RESET_HOOKS:
        hook(c)
    c.select(0)
    c.set_protocol(2)
    c.name = b""
    c.reply_mode = "on"
    acl = server_acl(c.server)
    c.user = acl.default
    c.logged_in = c.authenticated = acl.starts_authenticated()
    c.regate()
    return _RESET
