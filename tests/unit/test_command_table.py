"""Every command Keel declares is described exactly as redis-server describes it.

For each command and subcommand in the registry (whatever the registry holds
when the tests are collected), Keel's ``COMMAND INFO`` entry must carry the
same arity, flags, first/last/step key positions and ACL categories as a real
redis-server's. Flags and categories are compared as sets (RESP3 sets have no
order). Keel reports Redis 7.2 but the reference is 7.0: commands Redis added
after 7.0 are listed in ``NEWER_THAN_REFERENCE`` and checked to be unknown to
the reference, so the list cannot silently hide a misspelled command;
commands whose entry 7.2 changed are in ``CHANGED_SINCE_REFERENCE`` with the
fields 7.2 gives them, checked to differ from the reference's.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
import server.commands  # noqa: F401
from engine.commands.introspection import all_commands
from engine.registry import COMMANDS, resolve
from tests.support import help_subcommands

NEWER_THAN_REFERENCE = {"client|setinfo"}
# Commands whose entry 7.2 changed from 7.0's: the fields 7.2 gives them.
CHANGED_SINCE_REFERENCE = {
    "zrank": {"arity": -3},     # 7.2's WITHSCORE option
    "zrevrank": {"arity": -3},
}

NAMES = sorted(cmd.fullname for cmd in all_commands())


def _fields(entry):
    name, arity, flags, first, last, step, acl = entry[:7]
    return {
        "name": name,
        "arity": arity,
        "flags": sorted(flags),
        "keys": (first, last, step),
        "acl": sorted(acl),
    }


@pytest.mark.parametrize("name", NAMES)
def test_command_info_matches_redis(k, redis_ref, name):
    ref = redis_ref.client()
    try:
        [theirs] = ref.call("COMMAND", "INFO", name)
    finally:
        ref.close()
    [ours] = k.call("COMMAND", "INFO", name)
    assert ours is not None, f"Keel's COMMAND INFO does not know {name}"
    if name in NEWER_THAN_REFERENCE:
        assert theirs is None, f"{name} is known to the reference now: remove it from NEWER_THAN_REFERENCE"
        return
    assert theirs is not None, f"redis-server has no command {name!r}"
    expected = _fields(theirs)
    changed = CHANGED_SINCE_REFERENCE.get(name, {})
    assert all(expected[f] != v for f, v in changed.items()), f"{name}: the reference has 7.2's entry now"
    expected.update(changed)
    assert _fields(ours) == expected


def test_command_info_entry_has_redis7_shape(k):
    [entry] = k.call("COMMAND", "INFO", "client")
    assert len(entry) == 10
    assert entry[0] == b"client"
    assert isinstance(entry[7], list) and isinstance(entry[8], list)
    subs = {e[0] for e in entry[9]}
    assert {b"client|id", b"client|list", b"client|kill"} <= subs


def test_key_spec_describes_the_key_positions(pair):
    # ECHO has no keys; a one-key readonly command has one range spec from index 1.
    assert pair.keel.call("COMMAND", "INFO", "echo")[0][8] == []
    for name in ("get", "del", "exists", "expire"):
        ours = pair.keel.call("COMMAND", "INFO", name)[0]
        if ours is None:
            continue  # not implemented yet
        theirs = pair.ref.call("COMMAND", "INFO", name)[0]
        spec, ref_spec = dict(zip(ours[8][0][::2], ours[8][0][1::2])), dict(zip(theirs[8][0][::2], theirs[8][0][1::2]))
        assert spec[b"begin_search"] == ref_spec[b"begin_search"]
        assert spec[b"find_keys"] == ref_spec[b"find_keys"]


def test_flags_come_out_as_redis_spells_them(k):
    [quit_] = k.call("COMMAND", "INFO", "quit")
    assert b"no_auth" in quit_[2] and b"no-auth" not in quit_[2]


def test_command_count_is_the_number_of_top_level_commands(k):
    count = k.call("COMMAND", "COUNT")
    assert count == len(k.call("COMMAND")) == len([n for n in NAMES if "|" not in n])
    assert count > 0


def test_command_info_without_names_describes_every_command(k):
    assert len(k.call("COMMAND", "INFO")) == k.call("COMMAND", "COUNT")


def test_command_info_unknown_name_is_nil(pair):
    pair.check("COMMAND", "INFO", "nosuchcommand", "echo")


def test_command_list_includes_subcommands(k):
    names = k.call("COMMAND", "LIST")
    assert b"client|id" in names and b"client" in names and b"command|info" in names


def test_command_list_filters(pair):
    pair.check("COMMAND", "LIST", "FILTERBY", "MODULE", "nosuchmodule")
    keel = set(pair.keel.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "config*"))
    assert keel == {b"config", b"config|get", b"config|set", b"config|resetstat", b"config|rewrite", b"config|help"}
    keel = set(pair.keel.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"))
    assert {b"ping", b"echo", b"auth", b"hello", b"client|id"} <= keel
    assert b"config|get" not in keel


def test_command_list_syntax_errors(pair):
    pair.check("COMMAND", "LIST", "FOO")
    pair.check("COMMAND", "LIST", "FILTERBY", "FOO", "x")
    pair.check("COMMAND", "LIST", "FILTERBY", "PATTERN")


@pytest.mark.parametrize("args", [
    ("ECHO", "x"),  # no key arguments
    ("NOSUCH", "a"),  # unknown command
    ("PING", "a", "b"),  # wrong arity
    ("CLIENT", "ID"),
    ("GET",),  # too short for COMMAND GETKEYS itself
])
def test_command_getkeys_errors(pair, args):
    pair.check("COMMAND", "GETKEYS", *args)


@pytest.mark.parametrize("args", [
    ("GET", "a"),
    ("SET", "k", "v", "EX", "10"),
    ("DEL", "a", "b", "c"),
    ("EXISTS", "a", "b"),
    ("RENAME", "a", "b"),
])
def test_command_getkeys_finds_the_keys(pair, args):
    if pair.keel.call("COMMAND", "INFO", args[0])[0] is None:
        pytest.skip(f"{args[0]} not implemented yet")
    pair.check("COMMAND", "GETKEYS", *args)


def test_command_getkeysandflags_names_access(k):
    [[key, flags]] = k.call("COMMAND", "GETKEYSANDFLAGS", "GET", "a")
    assert key == b"a" and b"RO" in flags


def test_command_docs_has_summary_since_group(k):
    docs = k.call("COMMAND", "DOCS", "ping", "nosuch")
    assert docs[0] == b"ping" and len(docs) == 2
    doc = dict(zip(docs[1][::2], docs[1][1::2]))
    assert doc[b"group"] == b"connection" and doc[b"since"] and doc[b"summary"]


def test_command_docs_lists_subcommands(k):
    docs = k.call("COMMAND", "DOCS", "config")
    doc = dict(zip(docs[1][::2], docs[1][1::2]))
    assert b"config|get" in doc[b"subcommands"][::2]


def test_command_docs_unknown_is_empty(pair):
    pair.check("COMMAND", "DOCS", "nosuch")


def _map(flat):
    return dict(zip(flat[::2], flat[1::2]))


@pytest.mark.parametrize("name", NAMES)
def test_command_docs_gives_a_summary_and_redis_facts(k, redis_ref, name):
    # The summary is Keel's own sentence; the version and group are facts and match Redis.
    [got, doc] = k.call("COMMAND", "DOCS", name)
    assert got == name.encode()
    doc = _map(doc)
    assert {b"summary", b"since", b"group"} <= set(doc) <= {b"summary", b"since", b"group", b"complexity",
                                                            b"subcommands"}
    assert isinstance(doc[b"summary"], bytes) and doc[b"summary"].strip()
    if b"complexity" in doc:
        assert isinstance(doc[b"complexity"], bytes) and doc[b"complexity"].strip()
    cmd = resolve(name.encode().split(b"|"))
    if cmd.subcommands:
        assert set(_map(doc[b"subcommands"])) == {s.fullname.encode() for s in cmd.subcommands.values()}
    ref = redis_ref.client()
    try:
        theirs = ref.call("COMMAND", "DOCS", name)
    finally:
        ref.close()
    if name in NEWER_THAN_REFERENCE:
        assert theirs == [], f"{name} is known to the reference now: remove it from NEWER_THAN_REFERENCE"
        return
    theirs = _map(theirs[1])
    assert (doc[b"since"], doc[b"group"]) == (theirs[b"since"], theirs[b"group"])


@pytest.mark.parametrize("name", sorted(cmd.name for cmd in COMMANDS.values() if cmd.subcommands))
def test_help_names_every_declared_subcommand(k, name):
    assert help_subcommands(k, name.upper()) == set(COMMANDS[name].subcommands)


def test_command_unknown_subcommand_and_help(pair):
    pair.check("COMMAND", "FOO")
    assert help_subcommands(pair.keel, "COMMAND") == set(COMMANDS["command"].subcommands)
    pair.check("COMMAND", "HELP", "extra")
