"""ACL and its subcommands: users, their permissions, the log of refusals.

The users and the checks live in ``server.acl``; these handlers parse
arguments and shape replies as Redis 7.2 does (GETUSER as a map, LOG
entries with entry-id and timestamps, DRYRUN naming the key or channel).
LOAD and SAVE read and write the ``aclfile`` (``server.aclfile``).
"""

from __future__ import annotations

from engine import errors
from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, lookup, subcommand
from engine.reply import OK, Set, help_lines
from engine.util import to_int_or_none
from server import aclfile
from server.acl import genpass, message
from server.acl_rules import CATEGORIES, in_category

_SUB = "admin noscript loading stale"
_ADMIN = "@admin @slow @dangerous"
_PLAIN = "noscript loading stale"

USER_NOT_FOUND = "ERR User '{}' not found"
COMMAND_NOT_FOUND = "ERR Command '{}' not found"
DEFAULT_UNDELETABLE = "ERR The 'default' user cannot be removed"
UNKNOWN_CATEGORY = "ERR Unknown category '{}'"
GENPASS_BITS = "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"
WRONG_USAGE = "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP."


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def acl_of(c):
    return c.server.acl


@command("acl", -2, "", acl="@slow", group="server", since="6.0.0", fast_path=False)
def acl(c, argv):
    """ACL subcommand [arg ...] -- manage users and their permissions."""
    return dispatch_subcommand(acl.command, c, argv)


@subcommand("acl", "setuser", -3, _SUB, acl=_ADMIN, since="6.0.0")
def acl_setuser(c, argv):
    """ACL SETUSER username [rule ...] -- create or change a user; all rules or none. O(N) in the rules."""
    try:
        acl_of(c).setuser(_text(argv[2]), [_text(a) for a in argv[3:]])
    except ValueError as e:
        raise CommandError(str(e)) from None
    return OK


@subcommand("acl", "getuser", 3, _SUB, acl=_ADMIN, since="6.0.0")
def acl_getuser(c, argv):
    """ACL GETUSER username -- the user's flags, passwords, commands, keys, channels, selectors; nil if none."""
    u = acl_of(c).users.get(_text(argv[2]))
    if u is None:
        return None
    root = u.root
    return {
        b"flags": Set(f.encode() for f in u.flag_names()),
        b"passwords": [p.encode() for p in u.passwords],
        b"commands": root.describe_commands().encode(),
        b"keys": _b(root.describe_keys()),
        b"channels": _b(root.describe_channels()),
        b"selectors": [{
            b"commands": s.describe_commands().encode(),
            b"keys": _b(s.describe_keys()),
            b"channels": _b(s.describe_channels()),
        } for s in u.selectors],
    }


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


@subcommand("acl", "deluser", -3, _SUB, acl=_ADMIN, since="6.0.0")
def acl_deluser(c, argv):
    """ACL DELUSER username [username ...] -- delete users, disconnecting their clients: how many. O(1) each."""
    names = [_text(a) for a in argv[2:]]
    if "default" in names:
        raise CommandError(DEFAULT_UNDELETABLE)
    return acl_of(c).deluser(names, c)


@subcommand("acl", "users", 2, _SUB, acl=_ADMIN, since="6.0.0")
def acl_users(c, argv):
    """ACL USERS -- every user name, sorted. O(N)."""
    return [_b(n) for n in sorted(acl_of(c).users)]


@subcommand("acl", "list", 2, _SUB, acl=_ADMIN, since="6.0.0")
def acl_list(c, argv):
    """ACL LIST -- every user as its rules, one line each (the ACL file's format). O(N)."""
    users = acl_of(c).users
    return [_b(users[n].describe()) for n in sorted(users)]


@subcommand("acl", "whoami", 2, _PLAIN, acl="@slow", since="6.0.0")
def acl_whoami(c, argv):
    """ACL WHOAMI -- the connection's user name. O(1)."""
    return _b(c.user.name)


@subcommand("acl", "cat", -2, _PLAIN, acl="@slow", since="6.0.0")
def acl_cat(c, argv):
    """ACL CAT [category] -- the categories, or the commands in one. O(1), O(N) with a category."""
    if len(argv) > 3:
        raise CommandError(WRONG_USAGE.format(_text(argv[1])))
    if len(argv) == 2:
        return [cat.encode() for cat in CATEGORIES]
    cat = _text(argv[2]).lower()
    if cat not in CATEGORIES:
        raise CommandError(UNKNOWN_CATEGORY.format(_text(argv[2])))
    return [cmd.fullname.encode() for cmd in in_category(cat)]


@subcommand("acl", "genpass", -2, _PLAIN, acl="@slow", since="6.0.0")
def acl_genpass(c, argv):
    """ACL GENPASS [bits] -- a random password of 256 (or ``bits``) bits, as hex. O(1)."""
    if len(argv) > 3:
        raise CommandError(WRONG_USAGE.format(_text(argv[1])))
    bits = 256
    if len(argv) == 3:
        bits = to_int_or_none(argv[2])
        if bits is None:
            raise CommandError(errors.NOT_INTEGER)
        if not 0 < bits <= 4096:
            raise CommandError(GENPASS_BITS)
    return genpass(bits).encode()


@subcommand("acl", "log", -2, _SUB, acl=_ADMIN, since="6.0.0")
def acl_log(c, argv):
    """ACL LOG [count | RESET] -- the latest refusals, newest first (10 unless told). O(N) in the entries shown."""
    import time

    a = acl_of(c)
    if len(argv) > 3:
        raise CommandError(WRONG_USAGE.format(_text(argv[1])))
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            a.log.clear()
            return OK
        count = to_int_or_none(argv[2])
        if count is None:
            raise CommandError(errors.NOT_INTEGER)
    if count <= 0:
        return []
    now = int(time.time() * 1000)
    return [e.reply(now) for e in a.log[:count]]


@subcommand("acl", "dryrun", -4, _SUB, acl=_ADMIN, since="7.0.0")
def acl_dryrun(c, argv):
    """ACL DRYRUN username command [arg ...] -- whether the user may run it (OK, or why not), without running it."""
    u = acl_of(c).users.get(_text(argv[2]))
    if u is None:
        raise CommandError(USER_NOT_FOUND.format(_text(argv[2])))
    run = argv[3:]
    cmd = lookup(run[0])
    if cmd is None:
        raise CommandError(COMMAND_NOT_FOUND.format(_text(run[0])))
    if cmd.subcommands and len(run) > 1:
        sub = cmd.subcommands.get(run[1].lower())
        if sub is None:
            raise CommandError(COMMAND_NOT_FOUND.format(_text(run[0])))
        cmd = sub
    if not cmd.arity_ok(len(run)):
        raise CommandError(errors.WRONG_ARITY.format(cmd.fullname))
    result, idx = u.check(cmd, run)
    if result:
        return message(result, u, cmd, run[idx], verbose=True).encode("utf-8", "replace")
    return OK


@subcommand("acl", "load", 2, _SUB, acl=_ADMIN, since="6.0.0")
def acl_load(c, argv):
    """ACL LOAD -- replace every user with those of the ACL file (all or none). O(N) in the users."""
    try:
        aclfile.load(c.server, c)
    except aclfile.AclFileError as e:
        raise CommandError(str(e)) from None
    return OK


@subcommand("acl", "save", 2, _SUB, acl=_ADMIN, since="6.0.0")
def acl_save(c, argv):
    """ACL SAVE -- write every user to the ACL file. O(N) in the users."""
    try:
        aclfile.save(c.server)
    except aclfile.AclFileError as e:
        raise CommandError(str(e)) from None
    return OK


_HELP = (
    "CAT [<category>]",
    "    The command categories, or the commands and subcommands in <category>.",
    "DELUSER <username> [<username> ...]",
    "    Remove users; their connections are closed.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Tell whether <username> may run the command line, without running it.",
    "GETUSER <username>",
    "    The flags, passwords, permissions and selectors of <username>.",
    "GENPASS [<bits>]",
    "    A random password: 256 bits, or <bits>, as hexadecimal digits.",
    "LIST",
    "    Every user as the rules that define it, as the ACL file holds them.",
    "LOAD",
    "    Replace every user with those defined in the ACL file.",
    "LOG [<count> | RESET]",
    "    The latest commands and logins refused (10, or <count>); RESET empties the log.",
    "SAVE",
    "    Write every user into the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create <username> or change it with the rules given; if one is refused, nothing changes.",
    "USERS",
    "    The name of every user.",
    "WHOAMI",
    "    The user this connection is authenticated as.",
)


@subcommand("acl", "help", 2, "loading stale", acl="@slow", since="6.0.0")
def acl_help(c, argv):
    """ACL HELP -- the subcommands of ACL. O(1)."""
    return help_lines("ACL", _HELP)
