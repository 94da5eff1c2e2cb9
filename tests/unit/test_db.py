"""Database-wide commands against a real redis-server: SELECT, DBSIZE,
FLUSHDB, FLUSHALL, SWAPDB — replies, errors, and what each database holds
afterwards."""

from __future__ import annotations

import pytest


def _fill(pair):
    pair.check("SET", "zero", "0")
    pair.check("SELECT", "1")
    pair.check("SET", "one", "1")
    pair.check("EXPIRE", "one", "1000")
    pair.check("SELECT", "0")


def _contents(pair, db):
    pair.check("SELECT", str(db))
    pair.check("KEYS", "*", sort=True)
    pair.check("DBSIZE")
    pair.check("SELECT", "0")


@pytest.mark.parametrize("index", ["0", "15", "16", "-1", "x", "01", "", "2147483648", "-2147483649",
                                   "9223372036854775808"])
def test_select(pair, index):
    pair.check("SELECT", index)
    pair.check("SET", "here", "1")
    pair.check("SELECT", "0")
    pair.check("KEYS", "*")


def test_databases_are_separate(pair):
    _fill(pair)
    _contents(pair, 0)
    _contents(pair, 1)
    _contents(pair, 2)


def test_dbsize(pair):
    assert pair.check("DBSIZE") == 0
    _fill(pair)
    assert pair.check("DBSIZE") == 1
    pair.check("DBSIZE", "extra")


def test_flushdb_empties_only_the_selected_database(pair):
    _fill(pair)
    assert pair.check("FLUSHDB") == b"OK"
    _contents(pair, 0)
    _contents(pair, 1)


@pytest.mark.parametrize("mode", ["ASYNC", "sync", "Sync"])
def test_flush_modes(pair, mode):
    _fill(pair)
    assert pair.check("FLUSHDB", mode) == b"OK"
    assert pair.check("FLUSHALL", mode) == b"OK"
    _contents(pair, 1)


@pytest.mark.parametrize("args", [("BOGUS",), ("ASYNC", "SYNC"), ("SYNC", "extra")])
def test_flush_syntax_errors_change_nothing(pair, args):
    _fill(pair)
    assert pair.check("FLUSHDB", *args) == "ERR syntax error"
    assert pair.check("FLUSHALL", *args) == "ERR syntax error"
    _contents(pair, 0)
    _contents(pair, 1)


def test_flushall_empties_every_database(pair):
    _fill(pair)
    assert pair.check("FLUSHALL") == b"OK"
    _contents(pair, 0)
    _contents(pair, 1)


def test_swapdb_exchanges_contents_and_ttls(pair):
    _fill(pair)
    assert pair.check("SWAPDB", "0", "1") == b"OK"
    _contents(pair, 0)
    _contents(pair, 1)
    pair.check("TTL", "one")
    assert pair.check("SWAPDB", "1", "0") == b"OK"
    _contents(pair, 0)


def test_swapdb_with_itself_and_with_an_empty_database(pair):
    _fill(pair)
    assert pair.check("SWAPDB", "0", "0") == b"OK"
    _contents(pair, 0)
    assert pair.check("SWAPDB", "0", "7") == b"OK"
    _contents(pair, 0)
    _contents(pair, 7)


def test_a_connection_stays_on_its_database_number_across_swapdb(keel):
    a, b = keel.client(), keel.client()
    try:
        a.call("FLUSHALL")
        a.call("SET", "k", "in-zero")
        b.call("SELECT", "1")
        b.call("SET", "k", "in-one")
        a.call("SWAPDB", "0", "1")
        assert a.call("GET", "k") == b"in-one"
        assert b.call("GET", "k") == b"in-zero"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("args", [("x", "1"), ("1", "x"), ("x", "y"), ("01", "1"), ("1", "01"), ("16", "0"),
                                  ("0", "16"), ("-1", "0"), ("0", "-1"), ("4294967296", "0"), ("0", "4294967296"),
                                  ("", "0"), ("1.0", "0")])
def test_swapdb_errors_change_nothing(pair, args):
    _fill(pair)
    pair.check("SWAPDB", *args)
    _contents(pair, 0)


def test_swapdb_arity(pair):
    pair.check("SWAPDB", "0")
    pair.check("SWAPDB", "0", "1", "2")
