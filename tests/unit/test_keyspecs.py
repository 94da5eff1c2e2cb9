"""engine.keyspecs finds keys as Redis's key specs say, including the forms no
Keel command uses yet (keyword searches, ranges with a limit), which
test_command_table cannot reach through a real server."""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401
import server.commands  # noqa: F401
from engine.keyspecs import find, flags_of, keynum_spec, keyword_spec, spec, unknown_spec
from engine.registry import COMMANDS, resolve

RO = flags_of("RO access")
OW = flags_of("OW update")


def _argv(line: str) -> list:
    return [w.encode() for w in line.split()]


def test_flags_come_out_in_redis_order_and_unknown_names_are_refused():
    assert flags_of("delete access RW") == ("RW", "access", "delete")
    with pytest.raises(ValueError):
        flags_of("RW acess")


def test_a_keyword_search_forwards_finds_the_keys_after_it():
    # MIGRATE-like: keys after KEYS, searched from the sixth argument on.
    s = keyword_spec("RW access delete", "KEYS", 6, last=-1)
    assert s.positions(_argv("MIGRATE h p x 0 5 COPY keys a b")) == [8, 9]
    assert s.positions(_argv("MIGRATE h p k 0 5")) == []  # no keyword: nothing to say


def test_a_keyword_search_backwards_takes_the_last_occurrence():
    # GEORADIUS-like STORE: searched from the end.
    s = keyword_spec("OW update", "STORE", -2)
    assert s.positions(_argv("GEORADIUS k 1 2 3 m STORE d1 STORE d2")) == [9]


def test_a_range_with_a_limit_takes_that_share_of_what_follows():
    # XREAD-like: STREAMS a b 0 0 names half of what follows as keys.
    s = keyword_spec("RO access", "STREAMS", 1, last=-1, limit=2)
    assert s.positions(_argv("XREAD COUNT 2 STREAMS a b 0 0")) == [4, 5]


def test_a_key_count_argv_contradicts_makes_the_line_keyless():
    specs = (spec("OW update"), keynum_spec("RO access", 2))
    assert find(specs, None, _argv("ZUNIONSTORE d 2 a b")) == [(1, OW), (3, RO), (4, RO)]
    for bad in ("ZUNIONSTORE d 3 a b", "ZUNIONSTORE d 0 a", "ZUNIONSTORE d -1 a", "ZUNIONSTORE d 01 a"):
        assert find(specs, None, _argv(bad)) == []


def test_not_key_specs_name_no_keys():
    assert find((spec("not_key", 1, -1),), None, _argv("SSUBSCRIBE a b")) == []


def test_an_unknown_spec_adds_nothing_unless_getkeys_finds_it():
    specs = (spec("RO access"), unknown_spec("OW update", "STORE"))
    assert find(specs, None, _argv("SORT_RO k")) == [(1, RO)]
    assert find(specs, lambda argv: [(1, RO), (3, OW)], _argv("SORT k STORE d")) == [(1, RO), (3, OW)]


def test_getkeys_is_not_asked_when_the_specs_settle_every_key():
    def refuse(argv):
        raise AssertionError("getkeys called")

    assert find((keynum_spec("RW access delete", 1),), refuse, _argv("LMPOP 2 a b LEFT")) == [
        (2, flags_of("RW access delete")), (3, flags_of("RW access delete"))]


def test_key_positions_agree_with_keys_and_flags_for_every_command():
    # key_positions has a shortcut for one plain spec; it must not disagree.
    lines = ["GET a", "MSET a 1 b 2", "DEL a b c", "SORT k STORE d", "LMOVE a b LEFT RIGHT", "OBJECT ENCODING k",
             "ZUNIONSTORE d 2 a b", "SET k v GET", "SSUBSCRIBE a", "BLPOP a b 0"]
    for line in lines:
        argv = _argv(line)
        cmd = resolve(argv)
        assert cmd.key_positions(argv) == [i for i, _ in cmd.keys_and_flags(argv)], line


def test_every_declared_spec_fits_the_command():
    # A command with keys in (first, last, step) has a spec for them, and only
    # movablekeys commands need a key count or a getkeys to find theirs.
    for cmd in COMMANDS.values():
        for c in (cmd, *cmd.subcommands.values()):
            if c.first_key > 0:
                assert c.key_specs, c.fullname
            moving = any(s.find[0] == "keynum" or s.begin[0] != "index" for s in c.key_specs)
            if moving:
                assert "movablekeys" in c.flags, c.fullname
