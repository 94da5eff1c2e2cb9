"""ACL permission checks, side by side with redis-server: what a restricted
user may run (commands, subcommands, keys by read/write use, channels,
selectors), inside MULTI and from scripts, and ACL DRYRUN.

Each case runs as the same user on both servers. A refusal must be a
refusal on both and change nothing; Keel's text is Redis 7.2's (the
reference, 7.0, words them differently: see tests/integration/test_acl.py),
so a refusal is compared by its kind and Keel's exact words are asserted.
"""

from __future__ import annotations

import pytest

from tests.integration.test_acl import COMMON_LOG_FIELDS, _clean, both_setuser, log_entries
from tests.support import Err, Pair

CMD = "NOPERM User u has no permissions to run the '{}' command"
KEY = "NOPERM No permissions to access a key"
CHANNEL = "NOPERM No permissions to access a channel"


@pytest.fixture
def acl(keel, redis_ref):
    p = Pair(keel.client(), redis_ref.client())
    for c in (p.keel, p.ref):
        c.call("FLUSHALL")
        _clean(c)
    yield p
    p.close()
    for proc in (keel, redis_ref):
        c = proc.client()
        _clean(c)
        c.close()


class AsUser:
    """Clients logged in as one user on both servers."""

    def __init__(self, keel, redis_ref, name: str = "u"):
        self.keel = keel.client()
        self.ref = redis_ref.client()
        for c in (self.keel, self.ref):
            assert c.call("AUTH", name, "pw") == b"OK"

    def run(self, *args, expect=None):
        """Run on both; a refusal on one is one on the other. ``expect``: Keel's exact reply."""
        k, r = self.keel.call(*args), self.ref.call(*args)
        if isinstance(k, Err) and k.startswith("NOPERM"):
            assert isinstance(r, Err) and r.startswith("NOPERM"), f"{args}: keel {k!r}, redis {r!r}"
        elif isinstance(k, str) and "ACL failure in script: " in k:  # 7.0: "The user executing the script can't ..."
            assert "The user executing the script can't" in r, f"{args}: keel {k!r}, redis {r!r}"
        else:
            assert k == r, f"{args}: keel {k!r} != redis {r!r}"
        if expect is not None:
            assert k == expect, f"{args}: {k!r}"
        return k

    def close(self):
        self.keel.close()
        self.ref.close()


@pytest.fixture
def user(acl, keel, redis_ref):
    made = []

    def make(*rules, name="u"):
        both_setuser(acl, name, "reset", "on", ">pw", *rules)
        u = AsUser(keel, redis_ref, name)
        made.append(u)
        return u

    yield make
    for u in made:
        u.close()


# --- commands and subcommands -----------------------------------------------------

def test_command_rules(acl, user):
    u = user("~*", "+get", "+client|id", "+@hash", "-hdel")
    u.run("GET", "k", expect=None)
    u.run("SET", "k", "v", expect=Err(CMD.format("set")))
    u.run("HSET", "h", "f", "v")
    u.run("HDEL", "h", "f", expect=Err(CMD.format("hdel")))
    assert isinstance(u.keel.call("CLIENT", "ID"), int)
    u.run("CLIENT", "INFO", expect=Err(CMD.format("client|info")))
    u.run("CLIENT", "NOSUCH")  # unknown subcommand: the error comes before the ACL check
    u.run("PING", expect=Err(CMD.format("ping")))
    u.run("AUTH", "u", "pw")  # no-auth commands are always allowed
    acl.check("HGET", "h", "f")
    acl.check("EXISTS", "k")


def test_category_rules_follow_the_command_table(acl, user):
    u = user("~*", "+@read", "-@hash")
    for args in (("GET", "k"), ("LRANGE", "l", "0", "-1"), ("HGET", "h", "f"), ("SET", "k", "v"),
                 ("ZSCORE", "z", "m"), ("SMEMBERS", "s"), ("TYPE", "k"), ("DEL", "k"), ("STRLEN", "k")):
        u.run(*args)


def test_all_but_dangerous(acl, user):
    u = user("~*", "&*", "+@all", "-@dangerous")
    for args in (("FLUSHALL",), ("CONFIG", "GET", "port"), ("CLIENT", "LIST"), ("KEYS", "*"), ("SET", "k", "v"),
                 ("CLIENT", "ID"), ("ACL", "WHOAMI"), ("ACL", "LIST")):
        k = u.keel.call(*args)
        r = u.ref.call(*args)
        assert (isinstance(k, Err) and k.startswith("NOPERM")) == (isinstance(r, Err) and r.startswith("NOPERM")), args


def test_first_arg_rules(acl, user):
    u = user("~*", "+select|0", "+select|2")
    u.run("SELECT", "0")
    u.run("SELECT", "2")
    u.run("SELECT", "1", expect=Err(CMD.format("select")))


# --- keys -------------------------------------------------------------------------

def test_key_patterns_by_read_and_write(acl, user):
    u = user("+@all", "~rw*", "%R~r*", "%W~w*")
    acl.check("SET", "r1", "x")
    acl.check("SET", "w1", "x")
    u.run("GET", "r1", expect=b"x")
    u.run("SET", "r1", "v", expect=Err(KEY))
    u.run("GET", "w1", expect=Err(KEY))
    u.run("SET", "w1", "v", expect=b"OK")
    u.run("SET", "rw1", "v", expect=b"OK")
    u.run("GET", "rw1", expect=b"v")
    u.run("APPEND", "w1", "v", expect=2)  # inserts without reading: write alone
    u.run("INCR", "w1", expect=Err(KEY))  # reads and updates: needs both
    u.run("INCR", "r1", expect=Err(KEY))
    u.run("EXISTS", "w1")  # neither read nor written: any matching pattern
    u.run("EXISTS", "r1")
    u.run("EXISTS", "other", expect=Err(KEY))
    u.run("GET", "other", expect=Err(KEY))
    u.run("COPY", "r1", "w2")  # read r1, write w2
    u.run("COPY", "w1", "r2", expect=Err(KEY))
    u.run("DEL", "r1", expect=Err(KEY))
    acl.check("GET", "r1")
    acl.check("GET", "w1")
    u.run("DEL", "w1")
    acl.check("GET", "w2")


@pytest.mark.parametrize("args", [
    ("MSET", "a1", "1", "b1", "2"),
    ("MGET", "a1", "b1"),
    ("SORT", "a1", "STORE", "b1"),
    ("SORT", "l", "BY", "b*"),
    ("ZUNIONSTORE", "a1", "2", "a2", "b2"),
    ("ZUNIONSTORE", "b1", "2", "a2", "a3"),
    ("EVAL", "return 1", "2", "a1", "b1"),
    ("EVAL", "return 1", "1", "a1", "b1"),
    ("LMOVE", "a1", "b1", "LEFT", "RIGHT"),
    ("RENAME", "a1", "b1"),
    ("BLPOP", "a1", "b1", "0.01"),
    ("OBJECT", "ENCODING", "b1"),
    ("TOUCH", "a1", "b1"),
])
def test_keys_found_by_key_specs(acl, user, args):
    """Movable keys (SORT STORE, ZUNIONSTORE's numkeys, EVAL's) are found and checked."""
    u = user("+@all", "~a*")
    acl.check("RPUSH", "a1", "3")
    acl.check("RPUSH", "l", "1")
    u.run(*args)


def test_a_refused_command_changes_nothing(acl, user):
    u = user("+@all", "~a*")
    u.run("MSET", "a1", "1", "b1", "2", expect=Err(KEY))
    acl.check("EXISTS", "a1", "b1")
    u.run("DEL", "a1", "b1", expect=Err(KEY))


# --- channels ---------------------------------------------------------------------

def test_channel_patterns(acl, user):
    u = user("+@all", "resetchannels", "&news.*", "&lit*")
    u.run("PUBLISH", "news.a", "m", expect=0)
    u.run("PUBLISH", "other", "m", expect=Err(CHANNEL))
    u.run("SPUBLISH", "other", "m", expect=Err(CHANNEL))


@pytest.mark.parametrize("args,allowed", [
    (("SUBSCRIBE", "news.a"), True),
    (("SUBSCRIBE", "news.a", "other"), False),
    (("PSUBSCRIBE", "news.*"), True),   # a pattern must equal a permitted pattern
    (("PSUBSCRIBE", "news.a*"), False),
    (("PSUBSCRIBE", "*"), False),
    (("SSUBSCRIBE", "lit1"), True),
    (("SSUBSCRIBE", "x"), False),
    (("UNSUBSCRIBE", "other"), True),  # leaving is never refused
    (("PUNSUBSCRIBE", "x*"), True),
])
def test_subscribe_checks(acl, user, args, allowed):
    u = user("+@all", "resetchannels", "&news.*", "&lit*")
    k, r = u.keel.call(*args), u.ref.call(*args)
    assert (k == Err(CHANNEL)) is (not allowed)
    assert (isinstance(r, Err)) is (not allowed)
    if allowed:
        assert k == r


def test_allchannels_lets_everything_through(acl, user):
    u = user("+@all", "allchannels")
    u.run("PUBLISH", "x", "m")
    assert u.keel.call("PSUBSCRIBE", "*")[0] == b"psubscribe"


# --- selectors --------------------------------------------------------------------

def test_selectors_each_allow_their_own(acl, user):
    u = user("+get", "~g*", "(+set ~s*)", "(+del %W~d*)")
    u.run("GET", "g1")
    u.run("SET", "s1", "v", expect=b"OK")
    u.run("GET", "s1", expect=Err(KEY))  # the root may GET, but not s*; the selector may not GET
    u.run("SET", "g1", "v", expect=Err(KEY))
    u.run("DEL", "d1")
    u.run("DEL", "g1", expect=Err(KEY))
    u.run("INCR", "g1", expect=Err(CMD.format("incr")))


def test_selector_refusal_names_the_most_relevant_reason(acl, user):
    # the root refuses the command, the selector the key: the key is reported
    u = user("+get", "~a", "(+set ~b &c)")
    u.run("SET", "a", "v", expect=Err(KEY))
    ours = log_entries(acl.keel)[0]
    theirs = log_entries(acl.ref)[0]
    assert [ours[f] for f in COMMON_LOG_FIELDS] == [theirs[f] for f in COMMON_LOG_FIELDS]


# --- MULTI --------------------------------------------------------------------------

def test_refused_at_queue_time_aborts_exec(acl, user):
    u = user("+@all", "-del", "~k*")
    for c in (u.keel, u.ref):
        assert c.call("MULTI") == b"OK"
        assert c.call("SET", "k1", "v") == b"QUEUED"
        assert c.call("DEL", "k1").startswith("NOPERM")
        assert c.call("GET", "x").startswith("NOPERM")
        assert c.call("EXEC").startswith("EXECABORT")
    acl.check("EXISTS", "k1")
    ours, theirs = log_entries(acl.keel), log_entries(acl.ref)
    assert [[e[f] for f in COMMON_LOG_FIELDS] for e in ours] == [[e[f] for f in COMMON_LOG_FIELDS] for e in theirs]
    assert {e[b"context"] for e in ours} == {b"multi"}


def test_exec_rechecks_a_user_changed_since_queueing(acl, user):
    u = user("+@all", "~*", "&*")
    for c in (u.keel, u.ref):
        assert c.call("MULTI") == b"OK"
        for args in (("SET", "a", "1"), ("GET", "b"), ("PUBLISH", "ch", "x"), ("SET", "c", "2")):
            assert c.call(*args) == b"QUEUED"
    both_setuser(acl, "u", "-get", "resetkeys", "~a", "resetchannels")
    k, r = u.keel.call("EXEC"), u.ref.call("EXEC")
    assert k == r
    assert k[0] == b"OK" and all(isinstance(x, Err) for x in k[1:])
    acl.check("GET", "a")
    acl.check("GET", "c")
    ours, theirs = log_entries(acl.keel), log_entries(acl.ref)
    assert [[e[f] for f in COMMON_LOG_FIELDS] for e in ours] == [[e[f] for f in COMMON_LOG_FIELDS] for e in theirs]
    assert b"cmd=exec" in ours[0][b"client-info"]


# --- scripts ------------------------------------------------------------------------

def test_script_commands_are_checked_against_the_caller(acl, user):
    u = user("+@all", "-del", "~k*")
    acl.check("SET", "k1", "v")
    u.run("EVAL", "return redis.call('get', KEYS[1])", "1", "k1", expect=b"v")
    k = u.run("EVAL", "return redis.call('del', KEYS[1])", "1", "k1")
    assert k.startswith("ERR ACL failure in script: User u has no permissions to run the 'del' command script: ")
    k = u.run("EVAL", "return redis.call('get', 'x1')", "0")
    assert k.startswith("ERR ACL failure in script: No permissions to access a key script: ")
    u.run("EVAL", "return redis.call('get', KEYS[1])", "1", "x1", expect=Err(KEY))  # EVAL's own keys
    k = u.keel.call("EVAL", "local ok = redis.pcall('del', 'k1'); return ok['err']", "0")
    assert k.startswith(b"ERR ACL failure in script: User u has no permissions")
    assert u.ref.call("EVAL", "local ok = redis.pcall('del', 'k1'); return ok['err']", "0").startswith(
        b"ERR The user executing the script can't run this command")
    acl.check("GET", "k1")
    ours, theirs = log_entries(acl.keel), log_entries(acl.ref)
    assert [[e[f] for f in COMMON_LOG_FIELDS] for e in ours] == [[e[f] for f in COMMON_LOG_FIELDS] for e in theirs]
    assert ours[0][b"context"] == b"lua"


# --- DRYRUN -------------------------------------------------------------------------

def test_dryrun(acl):
    both_setuser(acl, "u", "on", ">pw", "~k*", "&c*", "+get", "+publish", "+acl|whoami")
    for args, ours in [
        (("get", "k1"), b"OK"),
        (("del", "k"), b"User u has no permissions to run the 'del' command"),
        (("get", "x1"), b"User u has no permissions to access the 'x1' key"),
        (("publish", "x1", "m"), b"User u has no permissions to access the 'x1' channel"),
        (("acl", "whoami"), b"OK"),
        (("client", "id"), b"User u has no permissions to run the 'client|id' command"),
    ]:
        k, r = acl.both("ACL", "DRYRUN", "u", *args)
        assert k == ours
        assert (k == b"OK") == (r == b"OK")
    for args in (("nosuch", "get", "k"), ("u", "nosuchcmd"), ("u", "get"), ("u", "client"), ("u", "client", "nosuch"),
                 ("u", "acl")):
        acl.check("ACL", "DRYRUN", *args)
    acl.check("ACL", "DRYRUN", "u")
    acl.check("ACL", "LOG")  # DRYRUN logs nothing


def test_refusals_are_counted_as_rejected_calls_and_noperm_errors(acl, user):
    u = user("~k*", "+get")
    for c in (acl.keel, acl.ref):
        c.call("CONFIG", "RESETSTAT")
    u.run("GET", "x", expect=Err(KEY))
    u.run("SET", "k", "v", expect=Err(CMD.format("set")))

    def stats(c):
        lines = c.call("INFO", "ALL").decode().splitlines()
        pick = ("errorstat_NOPERM:", "cmdstat_get:", "cmdstat_set:")
        out = {}
        for line in lines:
            if line.startswith(pick):
                name, _, fields = line.partition(":")
                kv = dict(f.split("=") for f in fields.split(","))
                out[name] = {k: v for k, v in kv.items() if k in ("count", "calls", "rejected_calls", "failed_calls")}
        return out

    assert stats(acl.keel) == stats(acl.ref) == {
        "errorstat_NOPERM": {"count": "2"},
        "cmdstat_get": {"calls": "0", "rejected_calls": "1", "failed_calls": "0"},
        "cmdstat_set": {"calls": "0", "rejected_calls": "1", "failed_calls": "0"},
    }


@pytest.mark.parametrize("rules", [("~l*",), ("%R~*",), ("~*",), ("%W~*",), ("~l*", "(+@all %R~*)")])
@pytest.mark.parametrize("args", [
    ("SORT", "l1", "BY", "w_*"),
    ("SORT", "l1", "BY", "nosort"),
    ("SORT", "l1", "GET", "#"),
    ("SORT", "l1", "GET", "w_*", "BY", "x"),
    ("SORT_RO", "l1", "BY", "w_*"),
    ("SORT", "l1", "BY", "w_*", "LIMIT", "x", "1"),
])
def test_sort_by_and_get_patterns_need_every_key_readable(acl, user, rules, args):
    acl.check("RPUSH", "l1", "3", "1", "2")
    u = user("+@all", *rules)
    u.run(*args)
