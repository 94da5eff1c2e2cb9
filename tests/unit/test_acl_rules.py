"""The ACL rule grammar and checks without a server: server.acl_rules' Selector
and server.acl's User, Acl and selector-argument merging."""

from __future__ import annotations

import hashlib

import pytest

import engine.commands  # noqa: F401
import server.commands  # noqa: F401
from engine.registry import COMMANDS
from server.acl import Acl, SetUserError, User, genpass, merge_selector_args, message
from server.acl_rules import (CATEGORIES, DENIED_CHANNEL, DENIED_CMD, DENIED_KEY, OK, RuleError, Selector,
                              in_category, lookup_command)


def sel(*rules) -> Selector:
    s = Selector()
    for r in rules:
        s.apply(r)
    return s


def check(s, *argv):
    name = argv[0].lower()
    cmd = COMMANDS[name]
    args = [a.encode() for a in argv]
    if cmd.subcommands:
        cmd = cmd.subcommands[args[1].lower()]
    return s.check(cmd, args)


# --- commands --------------------------------------------------------------------

def test_a_new_selector_allows_nothing_but_no_auth_commands():
    s = sel()
    assert check(s, "GET", "k") == (DENIED_CMD, 0)
    assert check(s, "AUTH", "p") == (OK, 0)
    assert check(s, "HELLO") == (OK, 0)


def test_container_rule_covers_its_subcommands_and_a_subcommand_rule_only_itself():
    s = sel("+client", "-client|kill")
    assert check(s, "CLIENT", "ID")[0] == OK
    assert check(s, "CLIENT", "KILL", "x")[0] == DENIED_CMD
    s = sel("+client|id")
    assert check(s, "CLIENT", "ID")[0] == OK
    assert check(s, "CLIENT", "INFO")[0] == DENIED_CMD


def test_categories_come_from_the_command_table():
    s = sel("+@string")
    for cmd in in_category("string"):
        assert cmd in s.allowed
    assert COMMANDS["hset"] not in s.allowed
    assert set(CATEGORIES) >= {a[1:] for cmd in COMMANDS.values() for a in cmd.acl}


def test_first_arg_rules():
    s = sel("~*", "+select|0")
    assert check(s, "SELECT", "0")[0] == OK
    assert check(s, "SELECT", "1")[0] == DENIED_CMD
    s.apply("+select")  # the whole command replaces its first-arg rules
    assert check(s, "SELECT", "1")[0] == OK
    assert s.describe_commands() == "-@all +select"


@pytest.mark.parametrize("rules,described", [
    (("+get", "+set"), "-@all +get +set"),
    (("+get", "-get"), "-@all -get"),
    (("+@all", "-@dangerous", "+get"), "+@all -@dangerous +get"),
    (("+client|id", "+client|info", "-client"), "-@all -client"),
    (("+get", "-@all"), "-@all"),
    (("-@all", "+@all"), "+@all"),
    (("+GET", "+@STRING"), "-@all +get +@string"),
])
def test_command_rules_are_kept_as_given(rules, described):
    assert sel(*rules).describe_commands() == described


@pytest.mark.parametrize("rule,reason", [
    ("+nosuch", "Unknown command or category name in ACL"),
    ("+@nosuch", "Unknown command or category name in ACL"),
    ("-get|x", "Unknown command or category name in ACL"),
    ("+client|id|x", "Allowing first-arg of a subcommand is not supported"),
    ("+get|", "Syntax error"),
    ("%X~k", "Syntax error"),
    ("%~k", "Syntax error"),
    ("bogus", "Syntax error"),
])
def test_refused_rules(rule, reason):
    with pytest.raises(RuleError, match=reason.replace("|", r"\|")):
        sel(rule)


def test_lookup_command():
    assert lookup_command("GET") is COMMANDS["get"]
    assert lookup_command("client|ID").fullname == "client|id"
    assert lookup_command("get|x") is None
    assert lookup_command("client|") is None


# --- keys -------------------------------------------------------------------------

def test_key_permissions_by_use():
    s = sel("+@all", "%R~r*", "%W~w*", "~b*")
    assert check(s, "GET", "r1")[0] == OK
    assert check(s, "GET", "w1") == (DENIED_KEY, 1)
    assert check(s, "SET", "w1", "v")[0] == OK
    assert check(s, "SET", "r1", "v")[0] == DENIED_KEY
    assert check(s, "SET", "w1", "v", "GET")[0] == DENIED_KEY  # GET makes SET read the key too
    assert check(s, "INCR", "b1")[0] == OK
    assert check(s, "EXISTS", "w1")[0] == OK  # neither read nor written
    assert check(s, "COPY", "r1", "w2")[0] == OK
    assert check(s, "COPY", "w1", "r2") == (DENIED_KEY, 1)
    assert check(s, "MSET", "w1", "1", "r1", "2") == (DENIED_KEY, 3)


def test_patterns_with_the_same_text_merge_their_permissions():
    s = sel("%R~a", "%W~a")
    assert s.describe_keys() == "~a"
    assert sel("%R~a", "%R~a").describe_keys() == "%R~a"


def test_allkeys_and_patterns_after_it():
    s = sel("~a", "allkeys")
    assert s.allkeys and s.describe_keys() == "~*"
    with pytest.raises(RuleError, match="allkeys"):
        s.apply("~b")
    with pytest.raises(RuleError, match="allkeys"):
        s.apply("%R~b")
    s.apply("resetkeys")
    s.apply("~b")
    assert s.describe_keys() == "~b"
    assert sel("%RW~*").allkeys and not sel("%R~*").allkeys


@pytest.mark.parametrize("pattern,key,matches", [
    ("k*", "k", True), ("k*", "", False), ("", "", True), ("", "k", False), ("k?", "k1", True),
    ("k?", "k12", False), ("[ab]c", "bc", True), ("[^a]c", "ac", False), ("a\\*", "a*", True),
    ("a\\*", "ab", False), ("*", "\n", True), ("k*z", "k\nz", True),
])
def test_key_patterns_match_as_glob(pattern, key, matches):
    s = sel("+@all", "%R~" + pattern, "%W~never-" + pattern)
    assert (check(s, "GET", key)[0] == OK) is matches


def test_a_key_check_sees_a_pattern_added_later():
    s = sel("+@all", "~a")
    assert check(s, "GET", "b")[0] == DENIED_KEY
    s.apply("~b")
    assert check(s, "GET", "b")[0] == OK
    s.apply("resetkeys")
    assert check(s, "GET", "a")[0] == DENIED_KEY


# --- channels ---------------------------------------------------------------------

def test_channels():
    s = sel("+@all", "&news.*")
    assert check(s, "PUBLISH", "news.a", "m")[0] == OK
    assert check(s, "PUBLISH", "x", "m") == (DENIED_CHANNEL, 1)
    assert check(s, "SUBSCRIBE", "news.a", "x") == (DENIED_CHANNEL, 2)
    assert check(s, "PSUBSCRIBE", "news.*")[0] == OK
    assert check(s, "PSUBSCRIBE", "news.a*")[0] == DENIED_CHANNEL
    assert check(s, "UNSUBSCRIBE", "x")[0] == OK
    with pytest.raises(RuleError, match="allchannels"):
        sel("&*", "&x")
    assert sel("&a", "allchannels").describe_channels() == "&*"


# --- users ------------------------------------------------------------------------

def user(*rules) -> User:
    a = Acl()
    return a.setuser("u", list(rules))


def test_passwords():
    u = user("on", ">a", ">b", ">a")
    assert u.passwords == [hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()]
    assert u.password_ok(b"a") and u.password_ok(b"b") and not u.password_ok(b"c")
    u.apply("<a", False)
    assert not u.password_ok(b"a")
    with pytest.raises(RuleError, match="does not exist"):
        u.apply("<a", False)
    with pytest.raises(RuleError, match="64 characters"):
        u.apply("#" + "0" * 63, False)
    u.apply("nopass", False)
    assert u.password_ok(b"anything") and u.passwords == []
    u.apply(">x", False)
    assert not u.nopass and not u.password_ok(b"anything")


def test_reset_returns_a_user_to_its_start():
    u = user("on", ">a", "~k", "&c", "+get", "(+set)", "skip-sanitize-payload")
    u.apply("reset", False)
    assert u.describe() == "user u off sanitize-payload resetchannels -@all"


def test_selectors_each_tried():
    u = user("+get", "~g*", "(+set ~s*)")
    get, set_ = COMMANDS["get"], COMMANDS["set"]
    assert u.check(get, [b"get", b"g1"])[0] == OK
    assert u.check(set_, [b"set", b"s1", b"v"])[0] == OK
    assert u.check(set_, [b"set", b"g1", b"v"]) == (DENIED_KEY, 1)  # the most relevant refusal
    assert u.describe() == "user u off sanitize-payload ~g* resetchannels -@all +get (~s* resetchannels -@all +set)"


def test_setuser_is_all_or_nothing():
    a = Acl()
    a.setuser("u", ["on", ">a", "+get"])
    before = a.users["u"].describe()
    with pytest.raises(SetUserError) as e:
        a.setuser("u", ["+set", "+nosuch"])
    assert str(e.value) == "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    assert a.users["u"].describe() == before
    with pytest.raises(SetUserError):
        a.setuser("v", ["on", "(+get"])
    assert "v" not in a.users


def test_setuser_changes_the_user_object_clients_hold():
    a = Acl()
    u = a.setuser("u", ["on", "+get"])
    assert a.setuser("u", ["+set"]) is u
    assert COMMANDS["set"] in u.root.allowed


def test_restricted_is_whether_the_root_may_do_everything():
    assert not Acl().default.restricted
    assert user("+@all", "~*", "&*").restricted is False
    assert user("+@all", "~*").restricted is True
    assert user("+@all", "-get", "~*", "&*").restricted is True
    assert user("~*", "&*", "+@all", "-get", "+get").restricted is True  # allcommands is not regained


@pytest.mark.parametrize("args,merged", [
    (["a", "(b", "c)", "d"], ["a", "(b c)", "d"]),
    (["(b)"], ["(b)"]),
    (["(", "b", ")"], ["( b )"]),
    (["x)"], ["x)"]),
])
def test_merge_selector_args(args, merged):
    assert merge_selector_args(args) == merged


def test_unclosed_selector():
    with pytest.raises(ValueError, match=r"\(b"):
        merge_selector_args(["a", "(b", "c"])


def test_messages_in_redis_7_2_words():
    u = user("+get")
    get = COMMANDS["get"]
    assert message(DENIED_CMD, u, get, b"") == "User u has no permissions to run the 'get' command"
    assert message(DENIED_KEY, u, get, b"k") == "No permissions to access a key"
    assert message(DENIED_CHANNEL, u, get, b"c") == "No permissions to access a channel"
    assert message(DENIED_KEY, u, get, b"k", verbose=True) == "User u has no permissions to access the 'k' key"


@pytest.mark.parametrize("bits,chars", [(256, 64), (1, 1), (4, 1), (5, 2), (4096, 1024)])
def test_genpass_length(bits, chars):
    p = genpass(bits)
    assert len(p) == chars
    int(p, 16)


def test_log_merges_within_a_minute_and_keeps_the_latest_first():
    class C:
        multi = None

        def info_line(self):
            return "id=1"

    a = Acl()
    c = C()
    a.add_log(c, DENIED_KEY, "toplevel", b"x", b"u")
    a.add_log(c, DENIED_KEY, "toplevel", b"y", b"u")
    a.add_log(c, DENIED_KEY, "toplevel", b"x", b"u")
    assert [(e.object, e.count) for e in a.log] == [(b"x", 2), (b"y", 1)]
    a.log[0].updated -= 61000  # older than the grouping window
    a.add_log(c, DENIED_KEY, "toplevel", b"x", b"u")
    assert [(e.object, e.count) for e in a.log] == [(b"x", 1), (b"x", 2), (b"y", 1)]
    a.add_log(c, DENIED_KEY, "multi", b"y", b"u")  # another context: its own entry
    assert len(a.log) == 4
