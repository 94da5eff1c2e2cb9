"""ACL users and their rules, side by side with redis-server.

Every test leaves both servers with only the default user, as it starts
(``on nopass ~* &* +@all``), and an empty ACL LOG.

Where redis-server 7.0.15 (the reference) differs from Redis 7.2, Keel
follows 7.2 and the test says so:

* 7.2 gives every new user the ``sanitize-payload`` flag (7.0 only after
  ``reset``): ``as72`` adds it to the reference's replies before comparing;
* 7.2 keeps command rules as given (a rule replacing an earlier one for the
  same command or category and its subcommands); 7.0 recomputes them from
  its bitmap. Rule sets both describe alike are compared with the reference;
  the others are checked against 7.2's description;
* 7.2's refusal words (``NOPERM User u has no permissions to run the 'get'
  command``, ``NOPERM No permissions to access a key``/``a channel``; DRYRUN's
  ``User u has no permissions to access the 'k' key``) replaced 7.0's
  (``NOPERM this user has no permissions ...``): both are refusals, Keel's
  text is 7.2's;
* 7.2's ACL LOG entries add ``entry-id``, ``timestamp-created`` and
  ``timestamp-last-updated``.
"""

from __future__ import annotations

import time

import pytest

from tests.support import Err, Pair


def _clean(c) -> None:
    for name in c.call("ACL", "USERS"):
        if name != b"default":
            c.call("ACL", "DELUSER", name)
    assert c.call("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all") == b"OK"
    c.call("ACL", "LOG", "RESET")


@pytest.fixture
def acl(keel, redis_ref):
    """A pair whose ACL state is reset to the start's before and after the test."""
    p = Pair(keel.client(), redis_ref.client())
    _clean(p.keel)
    _clean(p.ref)
    yield p
    p.close()
    for proc in (keel, redis_ref):
        c = proc.client()
        _clean(c)
        c.close()


def _as72_line(line: bytes) -> bytes:
    """A 7.0 ACL LIST line with the sanitize-payload flag 7.2 gives every user."""
    if b" sanitize-payload" in line or b"skip-sanitize-payload" in line:
        return line
    parts = line.split(b" ")
    at = 3 + (parts[3:4] == [b"nopass"])
    return b" ".join(parts[:at] + [b"sanitize-payload"] + parts[at:])


def _as72_getuser(reply):
    if reply is None:
        return None
    d = dict(zip(reply[::2], reply[1::2]))
    if b"sanitize-payload" not in d[b"flags"] and b"skip-sanitize-payload" not in d[b"flags"]:
        d[b"flags"] = d[b"flags"] + [b"sanitize-payload"]
    return [x for kv in d.items() for x in kv]


def both_setuser(p: Pair, name: str, *rules) -> None:
    k, r = p.both("ACL", "SETUSER", name, *rules)
    assert k == r, f"SETUSER {rules}: keel {k!r} != redis {r!r}"


def check_user(p: Pair, name: str) -> None:
    k, r = p.both("ACL", "GETUSER", name)
    assert k == _as72_getuser(r)
    k, r = p.both("ACL", "LIST")
    assert k == [_as72_line(x) for x in r]


def login(proc, user: str, password: str = "pw"):
    c = proc.client()
    assert c.call("AUTH", user, password) == b"OK"
    return c


def log_entries(c) -> list[dict]:
    return [dict(zip(e[::2], e[1::2])) for e in c.call("ACL", "LOG")]


COMMON_LOG_FIELDS = (b"count", b"reason", b"context", b"object", b"username")


# --- the default user ----------------------------------------------------------

def test_default_user_as_7_2_lists_it(acl):
    assert acl.keel.call("ACL", "LIST") == [b"user default on nopass sanitize-payload ~* &* +@all"]
    check_user(acl, "default")
    acl.check("ACL", "USERS")
    acl.check("ACL", "WHOAMI")


# --- the rule grammar: replies -------------------------------------------------

SAME_IN_BOTH = [
    ("on", ">pw", "~foo*", "%R~r*", "%W~w*", "&ch*", "+@all", "-get"),
    ("+@all", "-@dangerous"),
    ("-@all", "+@string"),
    ("+@all", "-client|kill"),
    ("+client", "-client|kill"),
    ("+select|0", "+select|1"),
    ("allcommands", "-@write", "+set"),
    ("nocommands",),
    ("~a", "%R~a", "%W~b", "%RW~c", "%WR~d", "&x", "&x", "&y"),
    ("allkeys", "allchannels"),
    ("~*", "&*"),
    ("~a", "resetkeys", "~b"),
    ("&a", "resetchannels", "&b"),
    ("on", ">a", ">b", "<a"),
    ("on", ">a", "nopass"),
    ("on", "nopass", ">a"),
    ("on", ">a", "resetpass"),
    ("#" + "a" * 64, "#" + "b" * 64, "!" + "a" * 64),
    ("on", "off"),
    ("skip-sanitize-payload",),
    ("sanitize-payload",),
    ("on", ">a", "~k", "+get", "reset"),
    ("+get", "(+set ~x*)", "(+del %R~y &c)"),
    ("(+set ~x*)", "clearselectors", "(~z +get)"),
    ("(", "+set", "~a", ")"),
    ("( +get )",),
    ("()",),
    ("(allkeys allchannels allcommands nocommands)",),
    ("(~a resetkeys ~b &c resetchannels)",),
    ("+GET", "~Mixed", "&Case"),
]


@pytest.mark.parametrize("rules", SAME_IN_BOTH, ids=" ".join)
def test_setuser_then_getuser_and_list_match_redis(acl, rules):
    both_setuser(acl, "u", *rules)
    check_user(acl, "u")


def test_setuser_twice_adds_to_the_user(acl):
    both_setuser(acl, "u", "on", ">a", "~k*", "+@all", "-get")
    both_setuser(acl, "u", ">b", "&c", "%R~r", "(+set ~s)")
    both_setuser(acl, "u", "(+get ~g)")
    check_user(acl, "u")


# Rule sets 7.0 describes from its bitmap but 7.2 as given: 7.2's description.
AS_GIVEN = [
    (("+get", "+set"), "-@all +get +set"),
    (("+get", "-get"), "-@all -get"),
    (("+@all", "+get"), "+@all +get"),
    (("+@hash", "+@string", "-hset"), "-@all +@hash +@string -hset"),
    (("+client|id", "+client|info"), "-@all +client|id +client|info"),
    (("+client|id", "-client"), "-@all -client"),
    (("+get", "+@string", "+get"), "-@all +@string +get"),
    (("+get", "-@all", "+set"), "-@all +set"),
    (("-@dangerous", "+@all", "-get"), "+@all -get"),
]


@pytest.mark.parametrize("rules,described", AS_GIVEN, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_command_rules_described_as_given_as_7_2_does(acl, rules, described):
    assert acl.keel.call("ACL", "SETUSER", "u", *rules) == b"OK"
    reply = dict(zip(*[iter(acl.keel.call("ACL", "GETUSER", "u"))] * 2))
    assert reply[b"commands"] == described.encode()
    assert acl.keel.call("ACL", "LIST")[1] == f"user u off sanitize-payload resetchannels {described}".encode()
    # The same permissions as the reference gives those rules.
    assert acl.ref.call("ACL", "SETUSER", "u", *rules) == b"OK"
    for cmd in (["get", "k"], ["set", "k", "v"], ["hset", "h", "f", "v"], ["client", "id"], ["client", "info"],
                ["strlen", "k"], ["del", "k"]):
        k, r = acl.both("ACL", "DRYRUN", "u", *cmd)
        assert (k == b"OK") == (r == b"OK"), cmd


# --- the rule grammar: errors, word for word -------------------------------------

BAD_RULES = [
    ("foo",),
    ("+nosuch",),
    ("-nosuch",),
    ("+@nosuch",),
    ("-@nosuch",),
    ("-client|nosuch",),
    ("+client|nosuch",),
    ("+client|id|x",),
    ("+get|",),
    ("%X~a",),
    ("%~a",),
    ("!abc",),
    ("#abc",),
    ("#" + "A" * 64,),
    ("<nothere",),
    ("!" + "c" * 64,),
    ("allkeys", "~a"),
    ("~*", "%R~b"),
    ("allchannels", "&b"),
    ("&*", "&b"),
    ("(+get",),
    ("(", "+get"),
    ("(foo)",),
    ("(on)",),
    ("(>x)",),
    ("(nopass)",),
    ("(reset)",),
    ("(clearselectors)",),
    ("(+get", "~a", "&b"),
    ("on", "+get", "+nosuch", "~k"),
]


@pytest.mark.parametrize("rules", BAD_RULES, ids=" ".join)
def test_setuser_errors_match_redis_and_change_nothing(acl, rules):
    both_setuser(acl, "u", "on", ">pw", "~k", "+get")
    k, r = acl.both("ACL", "SETUSER", "u", *rules)
    assert isinstance(k, Err) and k == r
    check_user(acl, "u")
    k, r = acl.both("ACL", "SETUSER", "fresh", *rules)
    assert isinstance(k, Err) and k == r
    acl.check("ACL", "GETUSER", "fresh")  # a refused SETUSER creates nobody


@pytest.mark.parametrize("name", ["a b", "a\0b"])
def test_username_with_space_or_nul_is_refused(acl, name):
    acl.check("ACL", "SETUSER", name, "on")


def test_setuser_arity(acl):
    acl.check("ACL", "SETUSER")
    acl.check("ACL", "GETUSER")
    acl.check("ACL", "GETUSER", "a", "b")
    acl.check("ACL", "DELUSER")


# --- the other subcommands ---------------------------------------------------------

def test_users_deluser_getuser(acl):
    for name in ("zed", "amy", "bob"):
        both_setuser(acl, name, "on")
    acl.check("ACL", "USERS")
    acl.check("ACL", "DELUSER", "amy", "nosuch", "zed")
    acl.check("ACL", "USERS")
    acl.check("ACL", "DELUSER", "nosuch")
    acl.check("ACL", "DELUSER", "bob", "default")
    acl.check("ACL", "DELUSER", "default")
    acl.check("ACL", "USERS")
    acl.check("ACL", "GETUSER", "nosuch")


def test_cat_lists_redis_categories(acl):
    acl.check("ACL", "CAT")


CATEGORIES = [c.decode() for c in (
    b"keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub admin fast "
    b"slow blocking dangerous connection transaction scripting").split()]


@pytest.mark.parametrize("cat", CATEGORIES)
def test_cat_of_a_category_lists_what_redis_lists(acl, cat):
    """Every command Keel has and redis-server puts in the category, and none it does not."""
    ours = set(acl.keel.call("ACL", "CAT", cat))
    theirs = set(acl.ref.call("ACL", "CAT", cat))
    ours_known = set(acl.keel.call("COMMAND", "LIST"))
    theirs_known = set(acl.ref.call("COMMAND", "LIST"))  # without 7.2's newer commands (CLIENT SETINFO)
    assert ours & theirs_known == theirs & ours_known
    assert acl.keel.call("ACL", "CAT", cat.upper()) == acl.keel.call("ACL", "CAT", cat)


def test_cat_errors(acl):
    acl.check("ACL", "CAT", "nosuch")
    acl.check("ACL", "CAT", "a", "b")


def test_whoami_after_auth(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+acl|whoami")
    for proc in (keel, redis_ref):
        c = login(proc, "u")
        assert c.call("ACL", "WHOAMI") == b"u"
        c.close()
    acl.check("ACL", "WHOAMI", "x")


def test_genpass(acl):
    for bits in (None, 1, 4, 5, 8, 100, 4096):
        args = () if bits is None else (bits,)
        k, r = acl.both("ACL", "GENPASS", *args)
        assert len(k) == len(r)
        int(k, 16)
    assert acl.keel.call("ACL", "GENPASS") != acl.keel.call("ACL", "GENPASS")
    for bad in ("0", "-1", "4097", "x"):
        acl.check("ACL", "GENPASS", bad)
    acl.check("ACL", "GENPASS", "1", "2")


def test_help_and_unknown_subcommand(acl):
    acl.check("ACL", "NOSUCH")
    acl.check("ACL")


# --- AUTH and HELLO -------------------------------------------------------------------

def test_auth_errors(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all")
    both_setuser(acl, "off", "off", ">pw", "+@all")
    acl.check("AUTH", "x")  # the default user has no password
    acl.check("AUTH", "u", "wrong")
    acl.check("AUTH", "nosuch", "pw")
    acl.check("AUTH", "off", "pw")
    acl.check("AUTH", "a", "b", "c")
    acl.check("HELLO", "3", "AUTH", "u", "wrong")
    acl.check("HELLO", "2", "AUTH", "nosuch", "x")
    acl.check("ACL", "WHOAMI")
    acl.check("AUTH", "u", "pw")
    acl.check("ACL", "WHOAMI")


def test_hello_auth_logs_in(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all")
    for proc in (keel, redis_ref):
        c = proc.client()
        reply = c.call("HELLO", "2", "AUTH", "u", "pw")
        assert dict(zip(reply[::2], reply[1::2]))[b"proto"] == 2
        assert c.call("ACL", "WHOAMI") == b"u"
        c.close()


def test_several_passwords_and_hashes(acl, keel, redis_ref):
    import hashlib
    h = hashlib.sha256(b"hashed").hexdigest()
    both_setuser(acl, "u", "on", ">one", ">two", "#" + h, "+@all")
    for proc in (keel, redis_ref):
        c = proc.client()
        for pw in ("one", "two", "hashed"):
            assert c.call("AUTH", "u", pw) == b"OK"
        assert c.call("AUTH", "u", "three") == Err("WRONGPASS invalid username-password pair or user is disabled.")
        c.close()
    both_setuser(acl, "u", "<one", "!" + h)
    for proc in (keel, redis_ref):
        c = proc.client()
        assert isinstance(c.call("AUTH", "u", "one"), Err)
        assert isinstance(c.call("AUTH", "u", "hashed"), Err)
        assert c.call("AUTH", "u", "two") == b"OK"
        c.close()


def test_default_user_with_a_password_needs_auth(acl, keel, redis_ref):
    both_setuser(acl, "default", "resetpass", ">secret")
    for proc in (keel, redis_ref):
        c = proc.client()
        assert c.call("GET", "k").startswith("NOAUTH")
        assert c.call("AUTH", "wrong").startswith("WRONGPASS")
        assert c.call("AUTH", "secret") == b"OK"
        assert c.call("GET", "k") is None
        c.close()
        c = proc.client()
        assert c.call("AUTH", "default", "secret") == b"OK"
        c.close()
    both_setuser(acl, "default", "nopass")


def test_requirepass_is_the_default_users_password(acl, keel, redis_ref):
    acl.check("CONFIG", "SET", "requirepass", "s3cret")
    try:
        check_user(acl, "default")
        for proc in (keel, redis_ref):
            c = proc.client()
            assert c.call("PING").startswith("NOAUTH")
            assert c.call("AUTH", "s3cret") == b"OK"
            c.close()
        acl.check("CONFIG", "SET", "requirepass", "")
        check_user(acl, "default")
    finally:
        for c in (acl.keel, acl.ref):
            c.call("CONFIG", "SET", "requirepass", "")


def test_auth_failures_are_logged(acl, keel, redis_ref):
    acl.check("AUTH", "nosuch", "pw")
    acl.check("HELLO", "3", "AUTH", "u9", "x")
    acl.both("HELLO", "2")
    ours, theirs = log_entries(acl.keel), log_entries(acl.ref)
    assert [[e[f] for f in COMMON_LOG_FIELDS] for e in ours] == [[e[f] for f in COMMON_LOG_FIELDS] for e in theirs]
    assert [e[b"object"] for e in ours] == [b"HELLO", b"AUTH"]  # the command's name as the client sent it


def test_reset_logs_out(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all")
    for proc in (keel, redis_ref):
        c = login(proc, "u")
        assert c.call("RESET") == b"RESET"
        assert c.call("ACL", "WHOAMI") == b"default"
        c.close()


# --- users changed or deleted while their clients are connected ----------------------

def _alive(c) -> bool:
    try:
        return c.call("PING") is not None
    except (ConnectionError, OSError):
        return False


@pytest.mark.parametrize("change", [("off",), ("resetpass",), (">new",), ("nopass",), ("-@all",), ("+get",)])
def test_changed_user_keeps_its_clients(acl, keel, redis_ref, change):
    both_setuser(acl, "u", "on", ">pw", "+@all", "~*", "&*")
    clients = [login(keel, "u"), login(redis_ref, "u")]
    both_setuser(acl, "u", *change)
    k, r = [c.call("PING") for c in clients]
    assert k == r or (k.startswith("NOPERM") and r.startswith("NOPERM")), change  # re-checked on the next command
    for c in clients:
        c.close()


def test_deleted_user_is_disconnected(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all", "~*", "&*")
    clients = [login(keel, "u"), login(redis_ref, "u")]
    acl.check("ACL", "DELUSER", "u")
    for c in clients:
        assert not _alive(c)
        c.close()


def test_deleting_ones_own_user_replies_then_closes(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all", "~*", "&*")
    for proc in (keel, redis_ref):
        c = login(proc, "u")
        assert c.call("ACL", "DELUSER", "u") == 1
        assert not _alive(c)
        c.close()


@pytest.mark.parametrize("change,closed", [
    (("resetchannels",), True),
    (("resetchannels", "&ch"), False),
    (("resetchannels", "&c*"), False),
    (("resetchannels", "&other"), True),
    (("reset",), True),
    (("-@all",), False),
])
def test_subscriber_whose_channels_are_taken_is_disconnected(acl, keel, redis_ref, change, closed):
    both_setuser(acl, "u", "on", ">pw", "+@all", "~*", "&*")
    clients = [login(keel, "u"), login(redis_ref, "u")]
    for c in clients:
        assert c.call("SUBSCRIBE", "ch")[0] == b"subscribe"
    both_setuser(acl, "u", *change)
    for c in clients:
        assert _alive(c) is (not closed)
        c.close()


def test_client_kill_user(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all")
    clients = [login(keel, "u"), login(redis_ref, "u"), login(keel, "u")]
    k, r = acl.both("CLIENT", "KILL", "USER", "u")
    assert (k, r) == (2, 1)
    acl.check("CLIENT", "KILL", "USER", "nosuch")
    for c in clients:
        assert not _alive(c)
        c.close()


def test_connections_see_a_user_change_at_once(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+@all", "~*")
    clients = [login(keel, "u"), login(redis_ref, "u")]
    for c in clients:
        assert c.call("SET", "k", "v") == b"OK"
    both_setuser(acl, "u", "-set")
    k, r = (c.call("SET", "k", "v") for c in clients)
    assert k == Err("NOPERM User u has no permissions to run the 'set' command") and r.startswith("NOPERM")
    both_setuser(acl, "u", "+set")
    assert [c.call("SET", "k", "w") for c in clients] == [b"OK", b"OK"]
    for c in clients:
        c.close()


def test_log_entries_merge_and_reset(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+get", "~k*")
    clients = [login(keel, "u"), login(redis_ref, "u")]
    for c in clients:
        for args in (("GET", "x"), ("GET", "x"), ("DEL", "k"), ("GET", "x"), ("GET", "y")):
            assert c.call(*args).startswith("NOPERM")
    ours, theirs = log_entries(acl.keel), log_entries(acl.ref)
    assert [[e[f] for f in COMMON_LOG_FIELDS] for e in ours] == [[e[f] for f in COMMON_LOG_FIELDS] for e in theirs]
    assert [(e[b"object"], e[b"count"]) for e in ours] == [(b"y", 1), (b"x", 3), (b"del", 1)]
    x = ours[1]
    assert x[b"entry-id"] < ours[2][b"entry-id"] < ours[0][b"entry-id"]  # numbered as first logged
    assert x[b"timestamp-created"] <= x[b"timestamp-last-updated"] <= time.time() * 1000 + 1
    assert b"user=u" in x[b"client-info"] and b"cmd=get" in x[b"client-info"]
    assert 0 <= float(x[b"age-seconds"]) < 5
    assert len(acl.keel.call("ACL", "LOG", "1")) == 1
    acl.check("ACL", "LOG", "0")
    acl.check("ACL", "LOG", "-1")
    acl.check("ACL", "LOG", "x")
    acl.check("ACL", "LOG", "reset", "x")
    acl.check("ACL", "LOG", "RESET")
    acl.check("ACL", "LOG")
    for c in clients:
        c.close()


def test_a_client_that_never_logged_in_follows_the_default_users_password(acl, keel, redis_ref):
    """Redis decides at every command whether AUTH is needed: while the default
    user needs no password, a client that never logged in may run commands."""
    both_setuser(acl, "default", "resetpass", ">pw")
    admins = [login(keel, "default"), login(redis_ref, "default")]
    clients = [keel.client(), redis_ref.client()]
    try:
        for c in clients:
            assert c.call("PING").startswith("NOAUTH")
        both_setuser(acl, "default", "nopass")
        assert [c.call("PING") for c in clients] == [b"PONG", b"PONG"]
        for a in admins:
            assert a.call("ACL", "SETUSER", "default", "resetpass", ">pw") == b"OK"
        for c in clients:
            assert c.call("PING").startswith("NOAUTH")
        for a in admins:  # a client that did log in stays so
            assert a.call("PING") == b"PONG"
            assert a.call("ACL", "SETUSER", "default", "nopass") == b"OK"
    finally:
        for c in clients + admins:
            c.close()


def test_pipelined_auth_then_commands_are_checked(acl, keel, redis_ref):
    both_setuser(acl, "u", "on", ">pw", "+get", "~k*")
    for proc in (keel, redis_ref):
        c = proc.client()
        replies = c.pipeline([("AUTH", "u", "pw"), ("GET", "k1"), ("GET", "x"), ("SET", "k1", "v"),
                              ("AUTH", "default", "x"), ("SET", "k1", "v")])
        assert replies[:2] == [b"OK", None]
        assert all(r.startswith("NOPERM") for r in replies[2:4])
        assert replies[4:] == [b"OK", b"OK"]  # back to the default user (nopass: any password)
        c.close()
    c = keel.client()
    assert c.pipeline([("ACL", "SETUSER", "default", "-get"), ("GET", "k")]) == [
        b"OK", Err("NOPERM User default has no permissions to run the 'get' command")]
    c.close()
