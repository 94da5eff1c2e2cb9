"""ACL: users, their rules, authentication, the permission check and ACL LOG.

``Acl`` (``server.acl``) holds the users by name and the log of refusals.
A ``User`` has flags (on/off, nopass, sanitize-payload), SHA-256 password
hashes and selectors (``server.acl_rules``): the root one first, then those
given in parentheses. A client holds its ``User`` object, so a user changed
by ACL SETUSER is re-read on the client's next command; a deleted user's
clients are disconnected, and a subscriber whose channels a change no longer
permits is disconnected too (Redis's rules; ``off`` and ``resetpass`` leave
connected clients be).

The ``default`` user is where new connections start. ``requirepass`` is its
password: setting it (config file, CONFIG SET) resets the default user's
passwords to that one, or to ``nopass`` when empty, as Redis ties them.

The check (``Acl.check``) runs in dispatch, before a command runs, for
clients whose user is ``restricted`` (every client of such a user is gated
onto the full dispatch; the others take the hot path unchecked, since their
user may run everything). A refusal is counted in ``Acl.log``: entries
with the same reason, context, object and user within 60 seconds are
merged into one with a count, as Redis merges them.

The same check runs again for each queued command at EXEC (the user may
have changed since it was queued: ``exec_refusal``), for each command a
script runs (``script_acl_check``, against the script's caller), and
SORT's BY/GET patterns need a user who may read every key
(``User.reads_every_key``). Refusals are worded as Redis 7.2 words them
(``message``).

SETUSER applies its rules to a copy and keeps it only if every rule is
valid: a refused rule changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

from engine.errors import CommandError
from server.acl_rules import (DENIED_AUTH, DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, OK, SYNTAX, RuleError,
                              Selector)

# Reasons for SETUSER refusals of user-level rules.
BAD_HASH = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
DUPLICATE_USER = "Duplicate user found. A user can only be defined once in config files"

SETUSER_ERROR = "ERR Error in ACL SETUSER modifier '{}': {}"
UNMATCHED_PAREN = "ERR Unmatched parenthesis in acl selector starting at '{}'."
BAD_USERNAME = "ERR Usernames can't contain spaces or null characters"

LOG_REASONS = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_CHANNEL: "channel", DENIED_AUTH: "auth"}
LOG_GROUPING_MS = 60000
LOG_MATCH_DEPTH = 10

_HEX = frozenset("0123456789abcdef")


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()


def _valid_hash(h: str) -> bool:
    return len(h) == 64 and all(ch in _HEX for ch in h)


def merge_selector_args(args: list) -> list:
    """Rules with ``(`` ... ``)`` selectors given across several arguments joined into one.

    Raises ``ValueError(first argument)`` for a selector that never closes."""
    out = []
    i, n = 0, len(args)
    while i < n:
        a = args[i]
        if a.startswith("(") and not a.endswith(")"):
            j = i
            parts = [a]
            while not parts[-1].endswith(")"):
                j += 1
                if j == n:
                    raise ValueError(a)
                parts.append(args[j])
            out.append(" ".join(parts))
            i = j + 1
        else:
            out.append(a)
            i += 1
    return out


class User:
    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "root", "selectors", "restricted")

    def __init__(self, name: str, pubsub_all: bool = False):
        self.name = name
        self.enabled = False
        self.nopass = False
        self.sanitize = True  # sanitize-payload (Redis 7.2's default) | skip-sanitize-payload
        self.passwords: list[str] = []  # SHA-256 hex, in the order given
        self.root = Selector(pubsub_all)
        self.selectors: list[Selector] = []  # the root's siblings, in the order given
        self.restricted = True

    def copy(self) -> "User":
        u = User(self.name)
        u.enabled, u.nopass, u.sanitize = self.enabled, self.nopass, self.sanitize
        u.passwords = list(self.passwords)
        u.root = self.root.copy()
        u.selectors = [s.copy() for s in self.selectors]
        u.restricted = self.restricted
        return u

    def take(self, other: "User") -> None:
        """Become ``other`` (a copy SETUSER changed): clients holding this object see it at once."""
        for attr in User.__slots__:
            setattr(self, attr, getattr(other, attr))

    def refresh(self) -> None:
        self.restricted = not self.root.unrestricted

    # -- rules ---------------------------------------------------------------
    def apply(self, op: str, pubsub_all: bool) -> None:
        """Apply one rule of ACL SETUSER (a selector ``(...)`` included) or raise RuleError."""
        low = op.lower()
        if low == "on":
            self.enabled = True
        elif low == "off":
            self.enabled = False
        elif low == "nopass":
            self.nopass = True
            self.passwords = []
        elif low == "resetpass":
            self.nopass = False
            self.passwords = []
        elif low == "sanitize-payload":
            self.sanitize = True
        elif low == "skip-sanitize-payload":
            self.sanitize = False
        elif op[:1] in (">", "#"):
            h = hash_password(op[1:].encode("utf-8", "surrogateescape")) if op[0] == ">" else op[1:]
            if op[0] == "#" and not _valid_hash(h):
                raise RuleError(BAD_HASH)
            if h not in self.passwords:
                self.passwords.append(h)
            self.nopass = False
        elif op[:1] in ("<", "!"):
            h = hash_password(op[1:].encode("utf-8", "surrogateescape")) if op[0] == "<" else op[1:]
            if op[0] == "!" and not _valid_hash(h):
                raise RuleError(BAD_HASH)
            if h not in self.passwords:
                raise RuleError(NO_SUCH_PASSWORD)
            self.passwords.remove(h)
        elif low == "clearselectors":
            self.selectors = []
        elif low == "reset":
            self.passwords = []
            self.nopass = False
            self.enabled = False
            self.sanitize = True
            self.selectors = []
            self.root = Selector(pubsub_all)
        elif op.startswith("(") and op.endswith(")"):
            s = Selector(pubsub_all)
            for part in op[1:-1].split():
                s.apply(part)
            self.selectors.append(s)
        elif op.startswith("("):
            raise RuleError(SYNTAX)
        else:
            self.root.apply(op)

    # -- description -----------------------------------------------------------
    def flag_names(self) -> list[str]:
        names = ["on" if self.enabled else "off"]
        if self.nopass:
            names.append("nopass")
        names.append("sanitize-payload" if self.sanitize else "skip-sanitize-payload")
        return names

    def describe(self) -> str:
        """The user as one line of ACL LIST / the ACL file."""
        parts = ["user", self.name, *self.flag_names(), *("#" + h for h in self.passwords), self.root.describe()]
        parts.extend("(" + s.describe() + ")" for s in self.selectors)
        return " ".join(parts)

    def password_ok(self, password: bytes) -> bool:
        if self.nopass:
            return True
        h = hash_password(password)
        ok = False
        for p in self.passwords:  # compare with every hash: the time says nothing of which matched
            ok |= hmac.compare_digest(p, h)
        return ok

    def reads_every_key(self, cmd) -> bool:
        """Whether one selector allows ``cmd`` and reading any key (``allkeys`` or ``%R~*``)."""
        return any(s.allows_command(cmd) and s.reads_every_key() for s in (self.root, *self.selectors))

    def check(self, cmd, argv: list) -> tuple:
        """``(result, index)``: OK when one selector allows the command, else Redis's most relevant refusal."""
        result, idx = self.root.check(cmd, argv)
        if result == OK or not self.selectors:
            return result, idx
        for s in self.selectors:
            r, i = s.check(cmd, argv)
            if r == OK:
                return OK, 0
            if r > result or (r == result and i > idx):
                result, idx = r, i
        return result, idx


class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "client_info", "entry_id",
                 "created", "updated")

    def __init__(self, reason, context, obj, username, client_info, entry_id, now_ms):
        self.count = 1
        self.reason, self.context, self.object, self.username = reason, context, obj, username
        self.client_info = client_info
        self.entry_id = entry_id
        self.created = self.updated = now_ms

    def reply(self, now_ms: int) -> dict:
        return {
            b"count": self.count,
            b"reason": self.reason.encode(),
            b"context": self.context.encode(),
            b"object": self.object,
            b"username": self.username,
            b"age-seconds": (now_ms - self.updated) / 1000.0,
            b"client-info": self.client_info.encode("utf-8", "replace"),
            b"entry-id": self.entry_id,
            b"timestamp-created": self.created,
            b"timestamp-last-updated": self.updated,
        }


class SetUserError(ValueError):
    """A refused ACL SETUSER: ``str(e)`` is the wire error; ``op`` and ``reason``
    the rule and why (None for errors that name no rule)."""

    def __init__(self, text: str, op: str | None = None, reason: str | None = None):
        super().__init__(text)
        self.op, self.reason = op, reason


class Acl:
    def __init__(self, server=None, pubsub_all: bool = False):
        self.server = server
        self._pubsub_all = pubsub_all
        self.users: dict[str, User] = {}
        self.log: list[LogEntry] = []  # newest first
        self.next_entry_id = 0
        self.denied = dict.fromkeys(LOG_REASONS.values(), 0)  # refusals by reason (INFO acl_access_denied_*)
        default = User("default")
        for op in ("on", "nopass", "~*", "&*", "+@all"):
            default.apply(op, True)
        default.refresh()
        self.default = default
        self.users["default"] = default
        if server is not None:
            if server.config["requirepass"]:
                self.set_requirepass(server.config["requirepass"])
            server.config.listeners.append(self._config_changed)
            server.config.current_user_lines = self.config_lines

    @property
    def pubsub_all(self) -> bool:
        if self.server is None:
            return self._pubsub_all
        return self.server.config.values.get("acl-pubsub-default") == "allchannels"

    def _config_changed(self, name: str, value) -> None:
        if name == "requirepass":
            self.set_requirepass(value)

    def set_requirepass(self, password: str) -> None:
        """``requirepass``: the default user's only password (``nopass`` when empty)."""
        u = self.default
        u.passwords = []
        u.nopass = False
        if password:
            u.apply(">" + password, self.pubsub_all)
        else:
            u.nopass = True
        self.after_change(u)

    def config_lines(self):
        """CONFIG REWRITE's ``user`` lines, sorted by name; None while an aclfile holds the users."""
        if self.server is not None and self.server.config.values.get("aclfile"):
            return None
        return [self.users[n].describe() for n in sorted(self.users)]

    def default_user_nopass(self) -> bool:
        return self.default.nopass

    def starts_authenticated(self) -> bool:
        """Whether a new connection is logged in as ``default`` without AUTH."""
        d = self.default
        return d.nopass and d.enabled

    # -- users -----------------------------------------------------------------
    def setuser(self, name: str, rules: list[str]) -> User:
        """ACL SETUSER: create or change ``name``; raises ``SetUserError``, changing nothing."""
        if any(ch in name for ch in " \0"):
            raise SetUserError(BAD_USERNAME)
        try:
            merged = merge_selector_args(rules)
        except ValueError as e:
            raise SetUserError(UNMATCHED_PAREN.format(e.args[0])) from None
        old = self.users.get(name)
        pubsub_all = self.pubsub_all
        new = old.copy() if old is not None else User(name, pubsub_all)
        for op in merged:
            try:
                new.apply(op, pubsub_all)
            except RuleError as e:
                raise SetUserError(SETUSER_ERROR.format(op, e), op, str(e)) from None
        new.refresh()
        if old is None:
            self.users[name] = new
            return new
        old.take(new)
        self.after_change(old)
        return old

    def after_change(self, user: User) -> None:
        """Clients of ``user`` take their new permissions: regated, and subscribers
        whose subscriptions are no longer permitted are disconnected. A client
        that never logged in may run commands while the default user needs no
        password, and needs AUTH again once it does."""
        server = self.server
        if server is None:
            return
        open_ = self.starts_authenticated()
        for cl in list(server.clients.values()):
            if cl.user is not user:
                continue
            if user is self.default:
                cl.authenticated = cl.logged_in or open_
            if cl.pubsub is not None and not self._subscriptions_allowed(user, cl.pubsub.sets):
                kill(cl)
                continue
            cl.regate()

    @staticmethod
    def _subscriptions_allowed(user: User, sets) -> bool:
        channels, patterns, shard = sets
        for s in (user.root, *user.selectors):
            if s.allchannels:
                return True
        for name in (*channels, *shard):
            if not any(s.channel_allowed(name, False) for s in (user.root, *user.selectors)):
                return False
        for name in patterns:
            if not any(s.channel_allowed(name, True) for s in (user.root, *user.selectors)):
                return False
        return True

    def deluser(self, names: list[str], caller=None) -> int:
        deleted = 0
        for name in names:
            u = self.users.pop(name, None)
            if u is None:
                continue
            deleted += 1
            if self.server is not None:
                for cl in list(self.server.clients.values()):
                    if cl.user is u:
                        kill(cl, caller)
        return deleted

    def authenticate(self, c, username: bytes, password: bytes, cmd_name: bytes) -> bool:
        """Log ``c`` in as ``username``; a refusal is logged (reason ``auth``, the command's
        name as sent for its object) and changes nothing."""
        name = username.decode("utf-8", "surrogateescape")
        u = self.users.get(name)
        if u is None or not u.enabled or not u.password_ok(password):
            # (an AUTH queued in MULTI runs in EXEC: context multi, as in Redis)
            scripting = getattr(getattr(c, "ks", None), "scripting", None)
            in_multi = c.multi is not None or (scripting is not None and scripting.in_exec)
            self.add_log(c, DENIED_AUTH, "multi" if in_multi else "toplevel", cmd_name, username)
            return False
        c.user = u
        c.logged_in = c.authenticated = True
        c.regate()
        return True

    # -- the check -------------------------------------------------------------
    def refusal(self, c, cmd, argv: list, context: str = "toplevel", sent: bool = True):
        """None when ``c``'s user may run ``cmd`` as ``argv``; else the refusal (logged
        with ``context``): ``(result, index)``. ``sent``: the client sent the command
        itself, and CLIENT LIST's ``cmd=`` names it (not so for EXEC's and scripts')."""
        user = c.user
        result, idx = user.check(cmd, argv)
        if result == OK:
            return None
        if sent:
            c.last_cmd = cmd.fullname
        obj = cmd.fullname.encode() if result == DENIED_CMD else argv[idx]
        self.add_log(c, result, context, obj, user.name.encode("utf-8", "surrogateescape"))
        return result, idx

    def add_log(self, c, result: int, context: str, obj: bytes, username: bytes) -> None:
        now = int(time.time() * 1000)
        reason = LOG_REASONS[result]
        self.denied[reason] += 1
        info = c.info_line() if hasattr(c, "info_line") else ""
        for i, e in enumerate(self.log[:LOG_MATCH_DEPTH]):
            if (e.reason == reason and e.context == context and e.object == obj and e.username == username
                    and now - e.updated < LOG_GROUPING_MS):
                e.count += 1
                e.updated = now
                e.client_info = info
                if i:  # the latest refusal comes first
                    del self.log[i]
                    self.log.insert(0, e)
                return
        self.log.insert(0, LogEntry(reason, context, obj, username, info, self.next_entry_id, now))
        self.next_entry_id += 1
        limit = self.server.config.values.get("acllog-max-len", 128) if self.server is not None else 128
        del self.log[limit:]


def server_acl(server) -> Acl:
    """The server's users (``server.acl``), made on first use with the directives it has."""
    acl = getattr(server, "acl", None)
    if acl is None:
        acl = server.acl = Acl(server)
    return acl


def kill(cl, caller=None) -> None:
    """Disconnect a client (its user was deleted or may no longer hear its channels);
    the client running the command gets its reply first."""
    if cl is caller:
        cl.close_after_reply = True
    elif cl.conn is not None:
        cl.conn.close()


EXEC_CHANGED = ("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
                "This command is no longer allowed for the following reason: {}")
EXEC_REASONS = {
    DENIED_CMD: "no permission to execute the command or subcommand",
    DENIED_KEY: "no permission to touch the specified keys",
    DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
}


def exec_refusal(c, cmd, argv: list) -> str | None:
    """EXEC's check of a queued command, in case the user changed since it was
    queued: None, or the error (logged, context ``multi``)."""
    if not c.user.restricted:
        return None
    denied = c.server.acl.refusal(c, cmd, argv, "multi", sent=False)
    return None if denied is None else EXEC_CHANGED.format(EXEC_REASONS[denied[0]])


def script_acl_check(c, cmd, argv: list) -> None:
    """redis.call's check against the script's caller: raises the script's error (logged, context ``lua``)."""
    denied = c.server.acl.refusal(c, cmd, argv, "lua", sent=False)
    if denied is not None:
        result, idx = denied
        raise CommandError("ERR ACL failure in script: " + message(result, c.user, cmd, argv[idx]))


def message(result: int, user: User, cmd, arg: bytes, verbose: bool = False) -> str:
    """Redis 7.2's words for a refusal (``verbose``: ACL DRYRUN's, naming the key or channel)."""
    if result == DENIED_CMD:
        return f"User {user.name} has no permissions to run the '{cmd.fullname}' command"
    what = "key" if result == DENIED_KEY else "channel"
    if verbose:
        return f"User {user.name} has no permissions to access the '{arg.decode('utf-8', 'replace')}' {what}"
    return f"No permissions to access a {what}"


def genpass(bits: int = 256) -> str:
    """``bits`` random bits as hex (rounded up to a whole hex digit), as ACL GENPASS gives them."""
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars]
