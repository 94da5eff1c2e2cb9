"""CLIENT and its subcommands: the connection's own state and other clients'.

A client is killed by closing its connection; the server forgets it when the
transport reports the close. A client that kills itself gets its reply first
(``close_after_reply``), as in Redis.
"""

from __future__ import annotations

import time

from engine import errors
from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import OK, Verbatim, help_lines
from engine.util import to_int_or_none
from server.commands.connection import valid_name
from server.dispatch import NO_REPLY
from server.pause import ALL, WRITE, pause_of

_CLIENT_TYPES = {b"normal": "normal", b"master": "master", b"replica": "replica", b"slave": "replica",
                 b"pubsub": "pubsub"}


def client_type(cl) -> str:
    """normal | master | replica | pubsub, from the CLIENT LIST flags."""
    flags = cl.flags
    if "M" in flags:
        return "master"
    if "S" in flags:
        return "replica"
    if cl.pubsub is not None:  # flag P
        return "pubsub"
    return "normal"


def _parse_type(arg: bytes) -> str:
    t = _CLIENT_TYPES.get(arg.lower())
    if t is None:
        raise CommandError(errors.CLIENT_TYPE_UNKNOWN.format(arg.decode("utf-8", "replace")))
    return t


def _kill(c, cl) -> None:
    if cl is c:
        c.close_after_reply = True
    elif cl.conn is not None:
        cl.conn.close()


@command("client", -2, "", acl="@slow", group="connection", since="2.4.0", fast_path=False)
def client(c, argv):
    """CLIENT subcommand [arg ...] -- inspect and manage client connections."""
    return dispatch_subcommand(client.command, c, argv)


_SUB = "noscript loading stale"
_ADMIN = "admin noscript loading stale"


@subcommand("client", "id", 2, _SUB, acl="@slow @connection", since="5.0.0")
def client_id(c, argv):
    """CLIENT ID -- the connection's id. O(1)."""
    return c.id


@subcommand("client", "getname", 2, _SUB, acl="@slow @connection", since="2.6.9")
def client_getname(c, argv):
    """CLIENT GETNAME -- the connection's name, or nil. O(1)."""
    return c.name or None


@subcommand("client", "setname", 3, _SUB, acl="@slow @connection", since="2.6.9")
def client_setname(c, argv):
    """CLIENT SETNAME name -- name the connection (empty clears it). O(1)."""
    name = argv[2]
    if not valid_name(name):
        raise CommandError(errors.CLIENT_NAME_INVALID)
    c.name = name
    return OK


@subcommand("client", "setinfo", 4, _SUB, acl="@slow @connection", since="7.2.0")
def client_setinfo(c, argv):
    """CLIENT SETINFO LIB-NAME name | LIB-VER version -- describe the client library. O(1)."""
    attr, value = argv[2].lower(), argv[3]
    if attr not in (b"lib-name", b"lib-ver"):
        raise CommandError(errors.CLIENT_ATTR_UNKNOWN.format(argv[2].decode("utf-8", "replace")))
    if not valid_name(value):
        raise CommandError(errors.CLIENT_ATTR_INVALID.format(attr.decode()))
    if attr == b"lib-name":
        c.lib_name = value
    else:
        c.lib_ver = value
    return OK


@subcommand("client", "info", 2, _SUB, acl="@slow @connection", since="6.2.0",
            tips="nondeterministic_output")
def client_info(c, argv):
    """CLIENT INFO -- this connection, as one CLIENT LIST line. O(1)."""
    return Verbatim((c.info_line(argv) + "\n").encode())


@subcommand("client", "list", -2, _ADMIN, acl="@admin @slow @dangerous @connection", since="2.4.0",
            tips="nondeterministic_output")
def client_list(c, argv):
    """CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...] -- the connections. O(N)."""
    clients = list(c.server.clients.values())
    n = len(argv)
    if n == 4 and argv[2].lower() == b"type":
        t = _parse_type(argv[3])
        clients = [cl for cl in clients if client_type(cl) == t]
    elif n >= 4 and argv[2].lower() == b"id":
        ids = []
        for a in argv[3:]:
            v = to_int_or_none(a)
            if v is None:
                raise CommandError(errors.CLIENT_ID_INVALID)
            ids.append(v)
        wanted = set(ids)
        clients = [cl for cl in clients if cl.id in wanted]
    elif n != 2:
        raise CommandError(errors.SYNTAX)
    return Verbatim("".join(cl.info_line(argv if cl is c else None) + "\n" for cl in clients).encode())


@subcommand("client", "kill", -3, _ADMIN, acl="@admin @slow @dangerous @connection", since="2.4.0")
def client_kill(c, argv):
    """CLIENT KILL ip:port | CLIENT KILL [ID id] [TYPE t] [USER u] [ADDR a] [LADDR a] [SKIPME yes|no]
    [MAXAGE seconds]. O(N)."""
    clients = c.server.clients
    if len(argv) == 3:
        addr = argv[2].decode("utf-8", "replace")
        for cl in list(clients.values()):
            if cl.addr == addr:
                _kill(c, cl)
                return OK
        raise CommandError(errors.NO_SUCH_CLIENT)
    filters = []
    skipme = True
    i = 2
    n = len(argv)
    while i < n:
        if i + 1 >= n:
            raise CommandError(errors.SYNTAX)
        opt, val = argv[i].lower(), argv[i + 1]
        if opt == b"id":
            cid = to_int_or_none(val)
            if cid is None or cid <= 0:
                raise CommandError(errors.CLIENT_ID_NOT_POSITIVE)
            filters.append(lambda cl, cid=cid: cl.id == cid)
        elif opt == b"type":
            t = _parse_type(val)
            filters.append(lambda cl, t=t: client_type(cl) == t)
        elif opt == b"addr":
            a = val.decode("utf-8", "replace")
            filters.append(lambda cl, a=a: cl.addr == a)
        elif opt == b"laddr":
            a = val.decode("utf-8", "replace")
            filters.append(lambda cl, a=a: cl.laddr == a)
        elif opt == b"user":
            u = c.server.acl.users.get(val.decode("utf-8", "surrogateescape"))
            if u is None:
                raise CommandError(errors.NO_SUCH_USER.format(val.decode("utf-8", "replace")))
            filters.append(lambda cl, u=u: cl.user is u)
        elif opt == b"maxage":  # Redis 7.4: connections older than this many seconds
            age = to_int_or_none(val)
            if age is None:
                raise CommandError(errors.NOT_INTEGER)
            if age:  # 0: no filter, as in Redis
                now = time.time()
                filters.append(lambda cl, age=age, now=now: int(now - cl.created) > age)
        elif opt == b"skipme":
            v = val.lower()
            if v not in (b"yes", b"no"):
                raise CommandError(errors.SYNTAX)
            skipme = v == b"yes"
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    killed = 0
    for cl in list(clients.values()):
        if (cl is c and skipme) or not all(f(cl) for f in filters):
            continue
        _kill(c, cl)
        killed += 1
    return killed


@subcommand("client", "reply", 3, _SUB, acl="@slow @connection", since="3.2.0")
def client_reply(c, argv):
    """CLIENT REPLY ON|OFF|SKIP -- stop or resume replies to this connection. O(1)."""
    mode = argv[2].lower()
    if mode == b"on":
        c.reply_mode = "on"
    elif mode == b"off":
        c.reply_mode = "off"
    elif mode == b"skip":
        # Drop this command's reply and the next one's (dispatch.deliver).
        if c.reply_mode == "off":
            return NO_REPLY
        c.reply_mode = "skip_next"
    else:
        raise CommandError(errors.SYNTAX)
    c.regate()
    return OK


@subcommand("client", "unblock", -3, _ADMIN, acl="@admin @slow @dangerous @connection", since="5.0.0")
def client_unblock(c, argv):
    """CLIENT UNBLOCK id [TIMEOUT|ERROR] -- end another client's blocking command: 1 if it was blocked. O(log N)."""
    if len(argv) > 4:
        raise CommandError(errors.WRONG_ARITY.format("client|unblock"))
    error = None
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason == b"error":
            error = errors.UNBLOCKED
        elif reason != b"timeout":
            raise CommandError(errors.CLIENT_UNBLOCK_REASON)
    cid = to_int_or_none(argv[2])
    if cid is None:
        raise CommandError(errors.NOT_INTEGER)
    target = c.server.clients.get(cid)
    if target is None or target.paused_argv is not None:  # held by CLIENT PAUSE: not blocked in Redis's sense
        return 0
    return int(c.server.blocking.end(target, error))


@subcommand("client", "pause", -3, _ADMIN, acl="@admin @slow @dangerous @connection", since="2.9.50")
def client_pause(c, argv):
    """CLIENT PAUSE timeout [WRITE|ALL] -- hold clients' commands (all, or those that
    may write) for ``timeout`` ms; a pause already on keeps the stricter mode and
    the later end (server.pause). O(1)."""
    n = len(argv)
    if n > 4:
        raise CommandError(errors.SUBCOMMAND_SYNTAX.format(argv[1].decode("utf-8", "replace"), "CLIENT"))
    mode = ALL
    if n == 4:
        m = argv[3].lower()
        if m == b"write":
            mode = WRITE
        elif m != b"all":
            raise CommandError(errors.CLIENT_PAUSE_MODE)
    timeout = to_int_or_none(argv[2])
    if timeout is None:
        raise CommandError(errors.TIMEOUT_NOT_INTEGER)
    if timeout < 0:
        raise CommandError(errors.NEGATIVE_TIMEOUT)
    pause_of(c.server).pause(mode, timeout)
    return OK


@subcommand("client", "unpause", 2, _ADMIN, acl="@admin @slow @dangerous @connection", since="6.2.0")
def client_unpause(c, argv):
    """CLIENT UNPAUSE -- end the pause; held clients run in the order they came. O(N) held clients."""
    pause_of(c.server).unpause()
    return OK


_HELP = (
    "ID",
    "    The numeric id of this connection.",
    "GETNAME",
    "    The name given to this connection, or nil.",
    "SETNAME <name>",
    "    Give this connection a name; an empty <name> removes it.",
    "SETINFO LIB-NAME|LIB-VER <value>",
    "    Record the name or version of the client library this connection uses.",
    "INFO",
    "    This connection, described the way CLIENT LIST describes each one.",
    "LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID <id> [<id> ...]]",
    "    One line per connection: all of them, those of one type, or those with these ids.",
    "KILL <ip:port>",
    "    Close the connection that comes from <ip:port>.",
    "KILL <filter> <value> [<filter> <value> ...]",
    "    Close every connection that passes all the filters, which are:",
    "    ID <id>, ADDR <ip:port>, LADDR <ip:port>, TYPE NORMAL|MASTER|REPLICA|PUBSUB,",
    "    USER <username>, MAXAGE <seconds> (connections older than that), and SKIPME YES|NO",
    "    (whether the caller is spared; YES unless told).",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Hold the commands of every client (ALL, the default), or only those that may write",
    "    (WRITE), for <timeout> milliseconds.",
    "UNPAUSE",
    "    End the pause now: the held clients run, in the order they came.",
    "NO-EVICT ON|OFF",
    "    Keep maxmemory-clients from closing this connection, however much memory it holds.",
    "NO-TOUCH ON|OFF",
    "    Leave the LRU/LFU information of the keys this connection uses as it was (TOUCH still counts).",
    "REPLY ON|OFF|SKIP",
    "    Go on replying to this connection, stop replying, or drop just the next reply.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    End the blocking command <clientid> waits in: as if it timed out (TIMEOUT, the default),",
    "    or with an UNBLOCKED error (ERROR).",
    "TRACKING ON|OFF [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]] [OPTIN] [OPTOUT] [NOLOOP]",
    "    Turn on or off invalidation messages for the keys this connection reads (client-side caching).",
    "CACHING YES|NO",
    "    In OPTIN mode, remember the keys of the next command; in OPTOUT mode, do not.",
    "GETREDIR",
    "    The id of the connection invalidations go to: 0 for this one, -1 when tracking is off.",
    "TRACKINGINFO",
    "    This connection's tracking mode, redirection and prefixes.",
)


@subcommand("client", "help", 2, "loading stale", acl="@slow @connection", since="5.0.0")
def client_help(c, argv):
    """CLIENT HELP -- the subcommands of CLIENT. O(1)."""
    return help_lines("CLIENT", _HELP)
