"""Engine-level tests of the keys, expiry and database commands: the effects
they journal (what the write-ahead log and replicas will replay), active
expiry, and the parts of their behaviour a socket cannot show.

Handlers run directly on a ``Keyspace`` + ``Session``; expiry times in the
past are written straight into the database where a test needs a due key.
"""

from __future__ import annotations

import time

import hiredis
import pytest

import engine.commands  # noqa: F401  (registers every command)
from engine.errors import CommandError
from engine.keyspace import EXPIRE_PASS_SHARE, EXPIRE_SAMPLE, Keyspace, now_ms
from engine.registry import TABLE
from engine.reply import Raw
from engine.session import Session


def _b(a):
    return a if isinstance(a, bytes) else str(a).encode()


def run(s: Session, *args):
    """Run one command as dispatch would (arity included); errors become their text."""
    argv = [_b(a) for a in args]
    cmd = TABLE[argv[0].lower()]
    assert cmd.arity_ok(len(argv)), f"bad arity in test: {args}"
    try:
        r = cmd.handler(s, argv)
    except CommandError as e:
        return e.text
    if type(r) is Raw:
        reader = hiredis.Reader()
        reader.feed(bytes(r))
        return reader.gets()
    return r


@pytest.fixture
def s():
    return Session(Keyspace())


def effects(s: Session, clear: bool = True):
    out = [(db, [bytes(a) for a in argv]) for db, argv in s.ks.effects]
    if clear:
        s.ks.effects.clear()
    return out


def setkey(s: Session, key: bytes, value: bytes = b"v", db: int | None = None, when: int | None = None):
    d = s.ks.dbs[s.db.index if db is None else db]
    d.set(key, value)
    if when is not None:
        d.set_expire(key, when)


# --- DEL / UNLINK -------------------------------------------------------------

def test_del_journals_only_the_keys_it_removed(s):
    setkey(s, b"a")
    setkey(s, b"b")
    assert run(s, "DEL", "a", "missing", "b", "a") == 2
    assert effects(s) == [(0, [b"DEL", b"a", b"b"])]


def test_del_of_missing_keys_journals_nothing(s):
    assert run(s, "DEL", "x", "y") == 0
    assert run(s, "UNLINK", "x") == 0
    assert effects(s) == []


def test_unlink_journals_del(s):
    setkey(s, b"a")
    assert run(s, "UNLINK", "a") == 1
    assert effects(s) == [(0, [b"DEL", b"a"])]


def test_del_of_a_due_key_counts_nothing_and_journals_the_expiry(s):
    setkey(s, b"a", when=now_ms() - 1)
    assert run(s, "DEL", "a") == 0
    assert effects(s) == [(0, [b"DEL", b"a"])]  # the lazy expiry, once
    assert b"a" not in s.db.data


# --- RENAME / MOVE / COPY -------------------------------------------------------

def test_rename_journals_rename_and_moves_the_ttl(s):
    when = now_ms() + 100_000
    setkey(s, b"a", b"1", when=when)
    setkey(s, b"b", b"2", when=now_ms() + 5_000)
    assert run(s, "rename", "a", "b") == b"OK"
    assert effects(s) == [(0, [b"RENAME", b"a", b"b"])]
    assert s.db.data == {b"b": b"1"}
    assert s.db.expires == {b"b": when}


def test_rename_onto_a_key_with_a_ttl_drops_that_ttl(s):
    setkey(s, b"a", b"1")
    setkey(s, b"b", b"2", when=now_ms() + 5_000)
    run(s, "RENAME", "a", "b")
    assert s.db.expires == {}


def test_rename_to_itself_changes_and_journals_nothing(s):
    setkey(s, b"a")
    assert run(s, "RENAME", "a", "a") == b"OK"
    assert run(s, "RENAMENX", "a", "a") == 0
    assert effects(s) == []


def test_renamenx_onto_an_existing_key_journals_nothing(s):
    setkey(s, b"a")
    setkey(s, b"b")
    assert run(s, "RENAMENX", "a", "b") == 0
    assert effects(s) == []
    assert run(s, "RENAMENX", "a", "c") == 1
    assert effects(s) == [(0, [b"RENAME", b"a", b"c"])]


def test_rename_of_a_missing_key_fails_and_changes_nothing(s):
    setkey(s, b"b")
    assert run(s, "RENAME", "a", "b") == "ERR no such key"
    assert s.db.data == {b"b": b"v"}
    assert effects(s) == []


def test_move_journals_itself_with_the_db_number_and_keeps_the_ttl(s):
    when = now_ms() + 100_000
    setkey(s, b"a", when=when)
    assert run(s, "MOVE", "a", "3") == 1
    assert effects(s) == [(0, [b"MOVE", b"a", b"3"])]
    assert b"a" not in s.db.data
    assert s.ks.dbs[3].data == {b"a": b"v"}
    assert s.ks.dbs[3].expires == {b"a": when}


def test_move_onto_an_existing_key_changes_and_journals_nothing(s):
    setkey(s, b"a", b"here")
    setkey(s, b"a", b"there", db=1)
    assert run(s, "MOVE", "a", "1") == 0
    assert run(s, "MOVE", "missing", "1") == 0
    assert effects(s) == []
    assert s.db.data[b"a"] == b"here"


def test_copy_journals_itself_and_copies_the_ttl(s):
    when = now_ms() + 100_000
    setkey(s, b"a", b"x", when=when)
    assert run(s, "COPY", "a", "b", "DB", "2") == 1
    assert effects(s) == [(0, [b"COPY", b"a", b"b", b"DB", b"2"])]
    assert s.ks.dbs[2].data == {b"b": b"x"}
    assert s.ks.dbs[2].expires == {b"b": when}
    assert s.db.data == {b"a": b"x"}


def test_copy_without_replace_onto_an_existing_key_journals_nothing(s):
    setkey(s, b"a", b"1")
    setkey(s, b"b", b"2")
    assert run(s, "COPY", "a", "b") == 0
    assert effects(s) == []
    assert run(s, "COPY", "a", "b", "REPLACE") == 1
    assert s.db.data[b"b"] == b"1"
    assert effects(s) == [(0, [b"COPY", b"a", b"b", b"REPLACE"])]


def test_copy_with_a_bad_option_changes_nothing(s):
    setkey(s, b"a")
    assert run(s, "COPY", "a", "b", "DB", "1", "BOGUS") == "ERR syntax error"
    assert s.ks.dbs[1].data == {}
    assert effects(s) == []


# --- expiry -------------------------------------------------------------------

def test_expire_journals_pexpireat_with_the_absolute_time(s):
    setkey(s, b"a")
    before = now_ms()
    assert run(s, "EXPIRE", "a", "10") == 1
    after = now_ms()
    [(db, argv)] = effects(s)
    assert db == 0 and argv[:2] == [b"PEXPIREAT", b"a"]
    assert before + 10_000 <= int(argv[2]) <= after + 10_000
    assert s.db.expires[b"a"] == int(argv[2])


@pytest.mark.parametrize("cmd,arg,expected_ms", [
    ("PEXPIRE", "2500", 2500),
    ("EXPIREAT", "4000000000", 4_000_000_000_000),
    ("PEXPIREAT", "4000000000123", 4_000_000_000_123),
])
def test_every_expire_variant_journals_pexpireat(s, cmd, arg, expected_ms):
    setkey(s, b"a")
    base = now_ms() if cmd == "PEXPIRE" else 0
    assert run(s, cmd, "a", arg, "NX") == 1
    [(_, argv)] = effects(s)
    assert argv[0] == b"PEXPIREAT" and len(argv) == 3  # options are not replayed
    assert 0 <= int(argv[2]) - base - expected_ms <= 1000


@pytest.mark.parametrize("cmd,arg", [("EXPIRE", "0"), ("EXPIRE", "-10"), ("PEXPIRE", "-1"),
                                     ("EXPIREAT", "1"), ("PEXPIREAT", "0")])
def test_an_expire_time_in_the_past_deletes_the_key_and_journals_del(s, cmd, arg):
    setkey(s, b"a")
    assert run(s, cmd, "a", arg) == 1
    assert s.db.data == {}
    assert effects(s) == [(0, [b"DEL", b"a"])]


def test_a_past_expire_time_on_a_replica_keeps_the_key_for_the_primarys_del(s):
    s.ks.expire_on_lookup = False
    setkey(s, b"a")
    assert run(s, "EXPIREAT", "a", "1") == 1
    assert b"a" in s.db.data
    assert run(s, "EXISTS", "a") == 0  # reported missing all the same
    assert effects(s) == [(0, [b"PEXPIREAT", b"a", b"1000"])]


@pytest.mark.parametrize("args", [
    ("EXPIRE", "missing", "10"),
    ("EXPIRE", "missing", "-10"),
    ("EXPIRE", "ttl", "10", "NX"),
    ("EXPIRE", "nottl", "10", "XX"),
    ("EXPIRE", "nottl", "10", "GT"),
    ("EXPIRE", "ttl", "10", "GT"),
    ("EXPIRE", "ttl", "5000", "LT"),
    ("PERSIST", "nottl"),
    ("PERSIST", "missing"),
])
def test_an_expiry_command_that_changes_nothing_journals_nothing(s, args):
    setkey(s, b"ttl", when=now_ms() + 1_000_000)
    setkey(s, b"nottl")
    data, expires = dict(s.db.data), dict(s.db.expires)
    assert run(s, *args) == 0
    assert effects(s) == []
    assert s.db.data == data and s.db.expires == expires


def test_persist_journals_persist(s):
    setkey(s, b"a", when=now_ms() + 10_000)
    assert run(s, "PERSIST", "a") == 1
    assert effects(s) == [(0, [b"PERSIST", b"a"])]
    assert s.db.expires == {}


def test_expire_errors_change_nothing(s):
    setkey(s, b"a")
    assert run(s, "EXPIRE", "a", "10", "NX", "XX").startswith("ERR NX and XX")
    assert run(s, "EXPIRE", "a", "9223372036854776") == "ERR invalid expire time in 'expire' command"
    assert run(s, "PEXPIRE", "a", "9223372036854775807") == "ERR invalid expire time in 'pexpire' command"
    assert s.db.expires == {} and effects(s) == []


def test_ttl_of_a_due_key_reports_missing_and_journals_its_expiry(s):
    setkey(s, b"a", when=now_ms() - 5)
    assert run(s, "TTL", "a") == -2
    assert run(s, "PEXPIRETIME", "a") == -2
    assert effects(s) == [(0, [b"DEL", b"a"])]


def test_ttl_rounds_to_the_nearest_second(s):
    setkey(s, b"a", when=now_ms() + 2_600)
    assert run(s, "TTL", "a") == 3
    setkey(s, b"b", when=now_ms() + 2_400)
    assert run(s, "TTL", "b") == 2
    setkey(s, b"c", when=4_000_000_000_499)
    assert run(s, "EXPIRETIME", "c") == 4_000_000_000
    assert run(s, "PEXPIRETIME", "c") == 4_000_000_000_499


# --- databases ----------------------------------------------------------------

def test_swapdb_journals_itself_and_clients_keep_their_numbers(s):
    setkey(s, b"zero", db=0)
    setkey(s, b"one", db=1, when=now_ms() + 50_000)
    other = Session(s.ks, 1)
    assert run(s, "SWAPDB", "0", "1") == b"OK"
    assert effects(s) == [(0, [b"SWAPDB", b"0", b"1"])]
    assert set(s.db.data) == {b"one"} and b"one" in s.db.expires
    assert set(other.db.data) == {b"zero"} and other.db.index == 1


def test_swapdb_of_a_database_with_itself_journals_nothing(s):
    setkey(s, b"a")
    assert run(s, "SWAPDB", "2", "2") == b"OK"
    assert effects(s) == []


def test_swapdb_moves_the_expiry_times_with_the_keys(s):
    setkey(s, b"a", db=1, when=now_ms() - 1)
    run(s, "SWAPDB", "0", "1")
    effects(s)
    assert s.ks.active_expire(budget_ms=50) == 1
    assert s.ks.dbs[0].data == {}
    assert effects(s) == [(0, [b"DEL", b"a"])]


# --- KEYS / SCAN / RANDOMKEY on due keys ----------------------------------------

def test_keys_skips_due_keys_without_journaling(s):
    setkey(s, b"live")
    setkey(s, b"due", when=now_ms() - 1)
    assert run(s, "KEYS", "*") == [b"live"]
    assert run(s, "KEYS", "*e") == [b"live"]
    assert effects(s) == []


def test_scan_skips_due_keys(s):
    setkey(s, b"live")
    setkey(s, b"due", when=now_ms() - 1)
    assert run(s, "SCAN", "0") == [b"0", [b"live"]]


def test_randomkey_never_returns_a_due_key(s):
    for i in range(50):
        setkey(s, b"due%d" % i, when=now_ms() - 1)
    setkey(s, b"live")
    for _ in range(20):
        assert run(s, "RANDOMKEY") == b"live"


def test_randomkey_of_only_due_keys_is_nil_and_expires_them(s):
    for i in range(5):
        setkey(s, b"due%d" % i, when=now_ms() - 1)
    assert run(s, "RANDOMKEY") is None
    assert s.db.data == {}
    assert sorted(argv[1] for _, argv in effects(s)) == [b"due%d" % i for i in range(5)]


def test_randomkey_picks_widely_without_listing_the_keys(s):
    for i in range(20_000):
        setkey(s, b"k%d" % i)
    picks = {run(s, "RANDOMKEY") for _ in range(2_000)}
    assert len(picks) > 1_500 and all(p in s.db.data for p in picks)


def test_randomkey_never_returns_a_deleted_key(s):
    for i in range(1_000):
        setkey(s, b"k%d" % i)
    run(s, "RANDOMKEY")
    for i in range(1, 1_000):
        s.db.delete(b"k%d" % i)
    assert {run(s, "RANDOMKEY") for _ in range(50)} == {b"k0"}


def test_randomkey_returns_a_key_added_later(s):
    for i in range(100):
        setkey(s, b"k%d" % i)
    run(s, "RANDOMKEY")
    setkey(s, b"new")
    assert b"new" in {run(s, "RANDOMKEY") for _ in range(3_000)}


def test_randomkey_after_flushdb_and_swapdb(s):
    setkey(s, b"a")
    assert run(s, "RANDOMKEY") == b"a"
    run(s, "FLUSHDB")
    assert run(s, "RANDOMKEY") is None
    setkey(s, b"b")
    assert run(s, "RANDOMKEY") == b"b"
    setkey(s, b"c", db=1)
    run(s, "SWAPDB", "0", "1")
    assert run(s, "RANDOMKEY") == b"c"


# --- active expiry ------------------------------------------------------------

def test_active_expiry_removes_due_keys_that_nobody_reads(s):
    for i in range(100):
        setkey(s, b"k%d" % i, when=now_ms() - 1)
    setkey(s, b"later", when=now_ms() + 60_000)
    setkey(s, b"forever")
    assert s.ks.active_expire(budget_ms=100) == 100
    assert set(s.db.data) == {b"later", b"forever"}
    assert sorted(argv[1] for _, argv in effects(s)) == sorted(b"k%d" % i for i in range(100))
    assert s.ks.expired_keys == 100


def test_active_expiry_reaches_every_database(s):
    for i in range(16):
        setkey(s, b"k", db=i, when=now_ms() - 1)
    assert s.ks.active_expire(budget_ms=100) == 16
    assert sorted(db for db, _ in effects(s)) == list(range(16))


def test_an_active_expiry_cycle_stops_at_its_budget_when_many_keys_are_due(s):
    n = 60_000
    due = now_ms() - 1
    db = s.db
    for i in range(n):
        key = b"k%d" % i
        db.data[key] = b"v"
        db.set_expire(key, due)
    t0 = time.perf_counter()
    first = s.ks.active_expire(budget_ms=1.0)
    elapsed = time.perf_counter() - t0
    assert 0 < first < n
    assert elapsed < 0.25, elapsed  # 1 ms budget; generous for a loaded machine
    assert s.ks.expire_backlog  # the server is told to run the next slice soon
    total = first
    while total < n:
        total += s.ks.active_expire(budget_ms=5.0)
    assert db.data == {} and db.expires == {}
    assert s.ks.active_expire(budget_ms=5.0) == 0 and not s.ks.expire_backlog


def test_keys_whose_ttl_changed_or_went_away_are_not_expired(s):
    past = now_ms() - 1
    db = s.db
    setkey(s, b"extended", when=past)
    db.set_expire(b"extended", now_ms() + 60_000)
    setkey(s, b"persisted", when=past)
    db.persist(b"persisted")
    setkey(s, b"deleted", when=past)
    db.persist(b"deleted")
    db.delete(b"deleted")
    setkey(s, b"recreated", when=past)
    db.delete(b"recreated")
    setkey(s, b"recreated")                         # same name, no TTL now
    effects(s)
    assert s.ks.active_expire(budget_ms=50) == 0
    assert set(db.data) == {b"extended", b"persisted", b"recreated"}
    assert effects(s) == []


def test_a_cycle_over_keys_none_of_which_is_due_walks_its_share_and_stops(s):
    n = 60_000
    db = s.db
    later = now_ms() + 600_000
    for i in range(n):
        key = b"k%d" % i
        db.data[key] = b"v"
        db.set_expire(key, later)
    t0 = time.perf_counter()
    assert s.ks.active_expire(budget_ms=1.0) == 0
    assert time.perf_counter() - t0 < 0.25
    assert not s.ks.expire_backlog
    share = -(-(n // EXPIRE_PASS_SHARE) // EXPIRE_SAMPLE) * EXPIRE_SAMPLE  # whole samples
    assert db.expire_pos == share  # the next cycle goes on from there
    assert len(db.data) == n


def test_a_quarter_due_at_once_goes_within_a_few_cycles_and_nothing_else_does(s):
    n = 40_000
    db = s.db
    past, later = now_ms() - 1, now_ms() + 600_000
    for i in range(n):
        key = b"k%d" % i
        db.data[key] = b"v"
        db.set_expire(key, past if i % 4 == 0 else later)
    cycles = 0
    while True:
        s.ks.active_expire(budget_ms=2.0)
        cycles += 1
        if not s.ks.expire_backlog:
            break
        assert cycles < 1_000
    # A cycle stops once a sample finds under a tenth due; with a quarter due
    # everywhere that only happens at the end of the pass.
    assert len(db.data) == 3 * n // 4
    assert all(db.expires[key] == later for key in db.data)


def test_keys_that_fell_due_behind_the_walk_go_within_one_pass(s):
    # Sparse due keys (under a tenth of any sample) are not followed up the
    # way a burst is, but each cycle walks 1/EXPIRE_PASS_SHARE of the entries.
    n = 20_000
    db = s.db
    later = now_ms() + 600_000
    for i in range(n):
        key = b"k%d" % i
        db.data[key] = b"v"
        db.set_expire(key, later)
    for i in range(0, n, 100):
        db.expires[b"k%d" % i] = 1  # due now, one in a hundred
    for _ in range(EXPIRE_PASS_SHARE + 1):
        s.ks.active_expire(budget_ms=50)
    assert len(db.data) == n - n // 100


def test_a_replica_does_not_expire_actively(s):
    s.ks.expire_on_lookup = False
    setkey(s, b"a", when=now_ms() - 1)
    assert s.ks.active_expire(budget_ms=50) == 0
    assert b"a" in s.db.data and effects(s) == []
