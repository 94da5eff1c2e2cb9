"""The ACL file (``aclfile``) and the config file's ``user`` lines.

Each line is ``user <name> <rule> ...`` (ACL LIST's format); blank lines and
``#`` comments are skipped. A file is loaded whole or not at all: every
line is applied to a fresh set of users first, and only when all of them
hold does it replace the running users. The default user, when the file does
not define it, keeps its built-in rules (``on nopass ~* &* +@all``).
Replacing the users disconnects every client of a user other than
``default`` (their user objects are gone, as in Redis); the default user's
clients stay, re-checked on their next command.

SAVE writes the users aside, fsyncs and renames over the file.
"""

from __future__ import annotations

import os
import shlex

from server.acl import Acl, SetUserError, kill, server_acl

NO_ACLFILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
    "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) "
    "in order to store users in the Redis configuration."
)
NOTHING_CHANGED = "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
SAVE_FAILED = "ERR There was an error trying to save the ACLs. Please check the server logs for more information"
BOTH_GIVEN = ("Configuring Keel with users defined in the config file and an ACL file at the same time is "
              "invalid: define users in one place")


class AclFileError(Exception):
    """``str(e)`` is the wire error."""


def parse(lines, where: str, pubsub_all: bool) -> Acl:
    """Users from ``user ...`` lines, into a fresh ``Acl``; raises AclFileError naming the line."""
    fresh = Acl(pubsub_all=pubsub_all)
    seen = set()
    errors = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parts = shlex.split(line)
        except ValueError:
            errors.append(f"{where}:{n}: unbalanced quotes in acl line. ")
            continue
        if len(parts) < 2 or parts[0] != "user":
            errors.append(f"{where}:{n} should start with user keyword followed by the username. ")
            continue
        name = parts[1]
        if name in seen:
            errors.append(f"WARNING: Duplicate user '{name}' found on line {n}. ")
            continue
        seen.add(name)
        if name == "default":
            parts = [parts[0], name, "reset", *parts[2:]]
        try:
            fresh.setuser(name, parts[2:])
        except SetUserError as e:
            if e.op is not None:
                text = f"Error in applying operation '{e.op}': {e.reason}"
            else:
                text = str(e)[4:]
            errors.append(f"{where}:{n}: {text}. ")
    if errors:
        raise AclFileError("ERR " + "".join(errors) + NOTHING_CHANGED)
    return fresh


def replace(server, fresh: Acl, caller=None) -> None:
    """Make ``fresh``'s users the server's: the default user object stays (clients hold it)."""
    acl = server_acl(server)
    old_default = acl.default
    old_users = [u for u in acl.users.values() if u is not old_default]
    old_default.take(fresh.default)
    fresh.users["default"] = old_default
    fresh.default = old_default
    acl.users = fresh.users
    acl.default = old_default
    gone = set(map(id, old_users))
    for cl in list(server.clients.values()):
        if id(cl.user) in gone:
            kill(cl, caller)
    acl.after_change(old_default)


def load(server, caller=None) -> None:
    """ACL LOAD: the users of the ACL file, all or none."""
    path = server.config.values.get("aclfile", "")
    if not path:
        raise AclFileError(NO_ACLFILE)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise AclFileError(f"ERR Error loading ACLs, opening file '{path}': {e.strerror}") from None
    replace(server, parse(lines, path, server_acl(server).pubsub_all), caller)


def save(server) -> None:
    """ACL SAVE: every user as its ACL LIST line, written aside then renamed over the file."""
    path = server.config.values.get("aclfile", "")
    if not path:
        raise AclFileError(NO_ACLFILE)
    users = server.acl.users
    text = "".join(users[n].describe() + "\n" for n in sorted(users))
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        raise AclFileError(SAVE_FAILED) from None


def load_at_start(server) -> None:
    """The users of the config file's ``user`` lines or of the ``aclfile``; raises AclFileError."""
    cfg = server.config
    lines = getattr(cfg, "user_lines", [])
    path = cfg.values.get("aclfile", "")
    if lines and path:
        raise AclFileError(BOTH_GIVEN)
    if lines:
        replace(server, parse(lines, "config file", server_acl(server).pubsub_all))
    elif path:  # a missing file stops the start too, as in Redis
        load(server)
