"""DUMP and RESTORE: replies and errors against a real redis-server, and effects."""

from __future__ import annotations

import time

import pytest

import engine.commands  # noqa: F401  (registers every command)
from engine import rdb
from engine.errors import CommandError
from engine.commands.dump import dump, restore
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import Err

VALUES = [b"", b"hello", b"12345", b"-2147483648", b"2147483648", b"x" * 1000, b"ab" * 5000,
          bytes(range(256)) * 40]


def as_v10(payload: bytes) -> bytes:
    """A Keel (version 11) payload relabelled as version 10, which Redis 7.0 accepts."""
    assert rdb.check_footer(payload) == rdb.RDB_VERSION
    return rdb.dump(rdb.restore(payload), version=10)


# --- differential ----------------------------------------------------------

@pytest.mark.parametrize("name", ["dump", "restore"])
def test_command_info_matches_redis(pair, name):
    keel, ref = pair.both("COMMAND", "INFO", name)
    # name, arity, flags, first, last, step, ACL categories
    assert keel[0][:7] == ref[0][:7]


@pytest.mark.parametrize("value", VALUES)
def test_redis_dump_restores_in_keel(pair, value):
    pair.ref.call("SET", "k", value)
    payload = pair.ref.call("DUMP", "k")
    assert pair.keel.call("RESTORE", "k", 0, payload) == b"OK"
    assert pair.keel.call("GET", "k") == value
    assert pair.keel.call("TTL", "k") == -1


@pytest.mark.parametrize("value", VALUES)
def test_keel_dump_restores_in_redis(pair, value):
    pair.keel.call("SET", "k", value)
    payload = pair.keel.call("DUMP", "k")
    assert pair.ref.call("RESTORE", "k", 0, as_v10(payload)) == b"OK"
    assert pair.ref.call("GET", "k") == value


@pytest.mark.parametrize("value", [b"", b"hello", b"-129", b"32768", b"2147483648", b"007", b"z" * 20])
def test_dump_is_byte_equal_to_redis_apart_from_the_version(pair, value):
    pair.both("SET", "k", value)
    keel, ref = pair.both("DUMP", "k")
    assert as_v10(keel) == ref


def test_redis_7_0_refuses_version_11_payloads(pair):
    pair.keel.call("SET", "k", "v")
    payload = pair.keel.call("DUMP", "k")
    assert pair.ref.call("RESTORE", "k", 0, payload) == Err("ERR DUMP payload version or checksum are wrong")


def test_dump_of_missing_key_is_nil(pair):
    pair.check("DUMP", "nosuch")


def test_restore_with_ttl_sets_expiry(pair):
    payload = rdb.dump(b"v", version=10)
    pair.check("RESTORE", "k", 100000, payload)
    keel, ref = pair.both("PTTL", "k")
    assert 99000 < keel <= 100000 and 99000 < ref <= 100000


def test_restore_absttl(pair):
    payload = rdb.dump(b"v", version=10)
    when = int(time.time() * 1000) + 100000
    pair.check("RESTORE", "k", when, payload, "ABSTTL")
    keel, ref = pair.both("PTTL", "k")
    assert 99000 < keel <= 100000 and 99000 < ref <= 100000


def test_restore_with_past_absttl_stores_nothing(pair):
    payload = rdb.dump(b"v", version=10)
    pair.both("SET", "k", "old")
    pair.check("RESTORE", "k", 1000, payload, "ABSTTL", "REPLACE")
    pair.check("EXISTS", "k")
    pair.check("RESTORE", "j", 1000, payload, "ABSTTL")
    pair.check("EXISTS", "j")


def test_restore_replace_overwrites_and_clears_ttl(pair):
    payload = rdb.dump(b"new", version=10)
    pair.both("SET", "k", "old", "EX", 100)
    pair.check("RESTORE", "k", 0, payload, "REPLACE")
    pair.check("GET", "k")
    pair.check("TTL", "k")


@pytest.mark.parametrize("args", [
    ("0", "ok"),                                  # existing key, no REPLACE
    ("-1", "ok"), ("abc", "ok"),                  # BUSYKEY is checked before the TTL
    ("0", "ok", "IDLETIME", "-1"), ("0", "ok", "IDLETIME", "x"), ("0", "ok", "FREQ", "256"),
    ("0", "ok", "FREQ", "-1"), ("0", "ok", "IDLETIME", "1", "FREQ", "2"),
    ("0", "ok", "FREQ", "1", "IDLETIME", "2"), ("0", "ok", "IDLETIME"), ("0", "ok", "foo"),
])
def test_restore_argument_errors_on_existing_key(pair, args):
    pair.both("SET", "k", "v")
    payload = rdb.dump(b"new", version=10)
    args = tuple(payload if a == "ok" else a for a in args)
    pair.check("RESTORE", "k", *args)
    pair.check("GET", "k")


@pytest.mark.parametrize("ttl", ["-1", "abc", "1.5", "99999999999999999999"])
def test_restore_bad_ttl(pair, ttl):
    pair.check("RESTORE", "k", ttl, rdb.dump(b"v", version=10))
    pair.check("EXISTS", "k")


@pytest.mark.parametrize("payload", [
    b"", b"garbage", rdb.dump(b"v", version=11 + 1),
    rdb.dump(b"v", version=10)[:-1] + b"\x00",
])
def test_restore_bad_version_or_checksum(pair, payload):
    pair.check("RESTORE", "k", 0, payload, "REPLACE")
    pair.check("EXISTS", "k")


def v10(body: bytes) -> bytes:
    p = body + b"\x0a\x00"
    return p + rdb.crc64(p).to_bytes(8, "little")


@pytest.mark.parametrize("body", [b"\x30\x01a", b"", b"\x00\xc4\x05", b"\x00" + bytes.fromhex("c30614013131e00a")])
def test_restore_bad_data_format(pair, body):
    pair.check("RESTORE", "k", 0, v10(body))
    pair.check("EXISTS", "k")


def test_restore_valid_options_are_accepted(pair):
    payload = rdb.dump(b"v", version=10)
    pair.check("RESTORE", "a", 0, payload, "IDLETIME", "10")
    pair.check("RESTORE", "b", 0, payload, "FREQ", "255", "replace", "absttl")
    pair.check("MGET", "a", "b")


@pytest.mark.parametrize("args", [("DUMP",), ("DUMP", "a", "b"), ("RESTORE", "k", "0")])
def test_wrong_arity(pair, args):
    pair.check(*args)


# --- effects (engine level) ------------------------------------------------

@pytest.fixture
def session():
    return Session(Keyspace())


def test_restore_effect_has_absolute_ttl(session):
    payload = rdb.dump(b"v")
    before = int(time.time() * 1000)
    restore(session, [b"RESTORE", b"k", b"5000", payload])
    (db, effect), = session.ks.effects
    assert db == 0
    assert effect[:2] == [b"RESTORE", b"k"] and effect[3:] == [payload, b"ABSTTL"]
    assert before + 5000 <= int(effect[2]) <= int(time.time() * 1000) + 5000
    assert session.db.expires[b"k"] == int(effect[2])


def test_restore_effect_without_ttl_keeps_replace(session):
    payload = rdb.dump(b"v")
    restore(session, [b"RESTORE", b"k", b"0", payload, b"REPLACE", b"IDLETIME", b"5"])
    assert session.ks.effects == [(0, [b"RESTORE", b"k", b"0", payload, b"REPLACE"])]


def test_restore_effect_replays_to_the_same_state(session):
    payload = rdb.dump(b"v")
    restore(session, [b"RESTORE", b"k", b"60000", payload])
    replica = Session(Keyspace())
    for _, argv in session.ks.effects:
        restore(replica, argv)
    assert replica.db.data == session.db.data
    assert replica.db.expires == session.db.expires


def test_restore_past_ttl_with_replace_records_del(session):
    session.db.set(b"k", b"old")
    restore(session, [b"RESTORE", b"k", b"1", rdb.dump(b"v"), b"ABSTTL", b"REPLACE"])
    assert session.ks.effects == [(0, [b"DEL", b"k"])]
    assert session.db.get(b"k") is None


def test_restore_past_ttl_without_key_records_nothing(session):
    restore(session, [b"RESTORE", b"k", b"1", rdb.dump(b"v"), b"ABSTTL"])
    assert session.ks.effects == []


def test_failed_restore_records_nothing_and_changes_nothing(session):
    session.db.set(b"k", b"old")
    with pytest.raises(CommandError):
        restore(session, [b"RESTORE", b"k", b"0", b"garbage", b"REPLACE"])
    assert session.ks.effects == [] and session.db.get(b"k") == b"old"


def test_dump_records_no_effect(session):
    session.db.set(b"k", b"v")
    assert rdb.restore(dump(session, [b"DUMP", b"k"])) == b"v"
    assert session.ks.effects == []
