"""The generic key commands against a real redis-server: same commands, same
replies, errors included (DEL, UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX,
MOVE, COPY, KEYS, RANDOMKEY, OBJECT). SCAN has its own file."""

from __future__ import annotations

import time

import pytest

import engine.commands  # noqa: F401
from engine.registry import COMMANDS
from tests.support import help_subcommands


def _load(pair, *kv):
    for i in range(0, len(kv), 2):
        pair.check("SET", kv[i], kv[i + 1])


# --- DEL / UNLINK / EXISTS / TOUCH / TYPE ---------------------------------------

def test_del_counts_each_deleted_key_once(pair):
    _load(pair, "a", "1", "b", "2")
    assert pair.check("DEL", "a", "a", "b", "missing") == 2
    assert pair.check("DEL", "a") == 0
    pair.check("EXISTS", "a", "b")


def test_unlink_counts_deleted_keys(pair):
    _load(pair, "a", "1")
    assert pair.check("UNLINK", "a", "zz", "a") == 1
    pair.check("EXISTS", "a")


def test_exists_counts_duplicates(pair):
    _load(pair, "a", "1", "b", "2")
    assert pair.check("EXISTS", "a", "a", "b", "missing", "a") == 4


def test_touch_counts_existing_keys(pair):
    _load(pair, "a", "1")
    assert pair.check("TOUCH", "a", "a", "missing") == 2


def test_type_of_a_string_and_of_a_missing_key(pair):
    _load(pair, "a", "1")
    assert pair.check("TYPE", "a") == b"string"
    assert pair.check("TYPE", "missing") == b"none"


@pytest.mark.parametrize("args", [
    ("DEL",), ("UNLINK",), ("EXISTS",), ("TOUCH",), ("TYPE",), ("TYPE", "a", "b"), ("RENAME", "a"),
    ("RENAME", "a", "b", "c"), ("RENAMENX", "a"), ("MOVE", "a"), ("MOVE", "a", "1", "2"), ("COPY", "a"),
    ("KEYS",), ("KEYS", "a", "b"), ("RANDOMKEY", "a"), ("OBJECT",),
])
def test_wrong_number_of_arguments(pair, args):
    assert pair.check(*args).startswith("ERR wrong number of arguments")


# --- RENAME / RENAMENX ---------------------------------------------------------

def test_rename_moves_value_and_ttl(pair):
    _load(pair, "a", "1")
    pair.check("EXPIRE", "a", "1000")
    assert pair.check("RENAME", "a", "b") == b"OK"
    pair.check("GET", "b")
    pair.check("EXISTS", "a")
    pair.check("TTL", "b")


def test_rename_overwrites_the_destination_and_its_ttl(pair):
    _load(pair, "a", "1", "b", "2")
    pair.check("EXPIRE", "b", "1000")
    pair.check("RENAME", "a", "b")
    pair.check("GET", "b")
    pair.check("TTL", "b")


def test_rename_errors_when_the_source_is_missing(pair):
    _load(pair, "b", "2")
    assert pair.check("RENAME", "missing", "b") == "ERR no such key"
    pair.check("RENAME", "missing", "missing")
    pair.check("RENAMENX", "missing", "b")
    pair.check("GET", "b")


def test_rename_to_the_same_name(pair):
    _load(pair, "a", "1")
    assert pair.check("RENAME", "a", "a") == b"OK"
    assert pair.check("RENAMENX", "a", "a") == 0
    pair.check("GET", "a")


def test_renamenx_refuses_an_existing_destination(pair):
    _load(pair, "a", "1", "b", "2")
    assert pair.check("RENAMENX", "a", "b") == 0
    pair.check("GET", "b")
    assert pair.check("RENAMENX", "a", "c") == 1
    pair.check("GET", "c")
    pair.check("EXISTS", "a")


# --- MOVE --------------------------------------------------------------------------

def test_move_to_another_database(pair):
    _load(pair, "a", "1")
    pair.check("EXPIRE", "a", "1000")
    assert pair.check("MOVE", "a", "1") == 1
    pair.check("EXISTS", "a")
    pair.check("SELECT", "1")
    pair.check("GET", "a")
    pair.check("TTL", "a")
    pair.check("SELECT", "0")


def test_move_refuses_an_existing_destination_and_a_missing_source(pair):
    _load(pair, "a", "here")
    pair.check("SELECT", "1")
    _load(pair, "a", "there")
    pair.check("SELECT", "0")
    assert pair.check("MOVE", "a", "1") == 0
    assert pair.check("MOVE", "missing", "1") == 0
    pair.check("GET", "a")


@pytest.mark.parametrize("db", ["0", "16", "-1", "x", "01", "1.0", "2147483648", "99999999999"])
def test_move_database_errors(pair, db):
    _load(pair, "a", "1")
    pair.check("MOVE", "a", db)
    pair.check("MOVE", "missing", db)


# --- COPY --------------------------------------------------------------------------

def test_copy_within_a_database_keeps_both_and_the_ttl(pair):
    _load(pair, "a", "1")
    pair.check("PEXPIRE", "a", "500000")
    assert pair.check("COPY", "a", "b") == 1
    pair.check("GET", "a")
    pair.check("GET", "b")
    pair.check("TTL", "b")


def test_copy_refuses_an_existing_destination_unless_replace(pair):
    _load(pair, "a", "1", "b", "2")
    assert pair.check("COPY", "a", "b") == 0
    pair.check("GET", "b")
    assert pair.check("COPY", "a", "b", "replace") == 1
    pair.check("GET", "b")
    assert pair.check("COPY", "missing", "b", "REPLACE") == 0


def test_copy_to_another_database(pair):
    _load(pair, "a", "1")
    assert pair.check("COPY", "a", "a", "DB", "2") == 1
    assert pair.check("COPY", "a", "a", "db", "2") == 0
    pair.check("SELECT", "2")
    pair.check("GET", "a")
    pair.check("SELECT", "0")


@pytest.mark.parametrize("args", [
    ("a", "a"), ("missing", "missing"), ("a", "a", "DB", "0"), ("a", "b", "DB"), ("a", "b", "DB", "x"),
    ("a", "b", "DB", "16"), ("a", "b", "DB", "-1"), ("a", "b", "DB", "4294967296"), ("a", "b", "BOGUS"),
    ("a", "b", "DB", "16", "BOGUS"), ("a", "b", "BOGUS", "DB", "16"), ("a", "b", "REPLACE", "REPLACE"),
    ("a", "b", "DB", "3", "DB", "1"),
])
def test_copy_options_and_errors(pair, args):
    _load(pair, "a", "1")
    pair.check("COPY", *args)
    pair.check("KEYS", "*", sort=True)


# --- KEYS ------------------------------------------------------------------------

KEYS_FIXTURE = ["hello", "hallo", "hxllo", "hllo", "heeeello", "h[a]llo", "h*llo", "h?llo", "h\\llo", "",
                "a", "b", "-", "]", "^", "\\", "foo:1", "foo:22", "bar"]


@pytest.mark.parametrize("pattern", [
    "*", "**", "", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "h\\*llo", "h\\?llo",
    "h\\[a\\]llo", "h[\\]]llo", "[", "[^", "[]", "[^]", "[a-]", "[]a]", "\\", "[\\", "foo:*", "*:??", "*llo",
    "h*l*o", "[a", "[^a", "a\\", "*[", "?", "??", "*\\", "[-]", "[\\-a]", "[a-\\]",
])
def test_keys_matches_like_redis(pair, pattern):
    for key in KEYS_FIXTURE:
        pair.check("SET", key, "v")
    pair.check("KEYS", pattern, sort=True)


def test_keys_on_an_empty_database(pair):
    assert pair.check("KEYS", "*") == []


def test_keys_skips_expired_keys(pair):
    _load(pair, "a", "1", "b", "2")
    pair.check("PEXPIRE", "b", "1")
    time.sleep(0.01)
    assert pair.check("KEYS", "*") == [b"a"]


# --- RANDOMKEY ---------------------------------------------------------------------

def test_randomkey_of_an_empty_database_is_nil(pair):
    assert pair.check("RANDOMKEY") is None


def test_randomkey_returns_an_existing_key_and_eventually_each(k):
    keys = {b"k%d" % i for i in range(5)}
    for key in keys:
        k.call("SET", key, "v")
    seen = {k.call("RANDOMKEY") for _ in range(200)}
    assert seen == keys


# --- OBJECT ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "9999", "10000", "-1", "-0", "01", "+1", " 1", "1.0",
                                   "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                                   "12345678901234567890", "x" * 44, "x" * 45, "", "hello"])
def test_object_encoding_and_refcount_of_strings(pair, value):
    pair.check("SET", "v", value)
    pair.check("OBJECT", "ENCODING", "v")
    pair.check("OBJECT", "REFCOUNT", "v")


def test_object_of_a_missing_key_is_nil(pair):
    for sub in ("ENCODING", "REFCOUNT", "IDLETIME", "FREQ"):
        assert pair.check("OBJECT", sub, "missing") is None


def test_object_freq_says_it_is_not_tracked(pair):
    pair.check("SET", "a", "1")
    assert pair.check("OBJECT", "FREQ", "a").startswith("ERR An LFU maxmemory policy is not selected")


def test_object_idletime_reports_zero(k):
    k.call("SET", "a", "1")
    assert k.call("OBJECT", "IDLETIME", "a") == 0


def test_object_help_and_errors(pair):
    assert help_subcommands(pair.keel, "OBJECT") == set(COMMANDS["object"].subcommands)
    assert help_subcommands(pair.keel, "OBJECT", "help") == set(COMMANDS["object"].subcommands)
    pair.check("OBJECT", "HELP", "extra")
    pair.check("OBJECT", "BOGUS", "a")
    pair.check("OBJECT", "ENCODING")
    pair.check("OBJECT", "ENCODING", "a", "b")
    pair.check("OBJECT")
