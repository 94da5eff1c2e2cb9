"""The expiry commands against a real redis-server (EXPIRE, PEXPIRE, EXPIREAT,
PEXPIREAT with NX/XX/GT/LT; TTL, PTTL, EXPIRETIME, PEXPIRETIME; PERSIST),
and active expiry seen from a client: keys vanish without being read."""

from __future__ import annotations

import time

import pytest

FAR = 4_000_000_000  # an EXPIREAT time in seconds, far in the future (year 2096)


def _set(pair, key="a", value="v"):
    pair.check("SET", key, value)


# --- setting a TTL ---------------------------------------------------------------

@pytest.mark.parametrize("cmd,amount", [("EXPIRE", "100"), ("PEXPIRE", "100000"),
                                        ("EXPIREAT", str(FAR)), ("PEXPIREAT", str(FAR * 1000))])
def test_setting_a_ttl_replies_1_and_ttl_reflects_it(pair, cmd, amount):
    _set(pair)
    assert pair.check(cmd, "a", amount) == 1
    pair.check("TTL", "a")
    if cmd.endswith("AT"):  # absolute times are equal on both servers
        pair.check("EXPIRETIME", "a")
        pair.check("PEXPIRETIME", "a")


@pytest.mark.parametrize("cmd", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_a_ttl_on_a_missing_key_replies_0(pair, cmd):
    assert pair.check(cmd, "missing", "100") == 0
    assert pair.check(cmd, "missing", "100", "XX") == 0
    pair.check("EXISTS", "missing")


@pytest.mark.parametrize("cmd,amount", [("EXPIRE", "0"), ("EXPIRE", "-5"), ("PEXPIRE", "0"), ("PEXPIRE", "-1"),
                                        ("EXPIREAT", "0"), ("EXPIREAT", "1"), ("PEXPIREAT", "1"),
                                        ("EXPIRE", "-9223372036854775"), ("PEXPIREAT", "-9223372036854775808")])
def test_a_time_in_the_past_deletes_the_key(pair, cmd, amount):
    _set(pair)
    assert pair.check(cmd, "a", amount) == 1
    assert pair.check("EXISTS", "a") == 0


def test_expireat_at_the_largest_time(pair):
    _set(pair)
    assert pair.check("PEXPIREAT", "a", "9223372036854775807") == 1
    pair.check("PEXPIRETIME", "a")
    pair.check("EXPIRETIME", "a")
    _set(pair, "b")
    assert pair.check("EXPIREAT", "b", "9223372036854775") == 1
    pair.check("EXPIRETIME", "b")


@pytest.mark.parametrize("args", [
    ("EXPIRE", "a", "9223372036854776"), ("EXPIRE", "a", "-9223372036854776"),
    ("EXPIRE", "a", "9223372036854775"),  # fits in ms, overflows once now is added
    ("PEXPIRE", "a", "9223372036854775807"), ("EXPIREAT", "a", "9223372036854776"),
    ("EXPIREAT", "a", "-9223372036854776"), ("EXPIRE", "missing", "9223372036854776"),
])
def test_expire_time_overflow_is_an_invalid_expire_time(pair, args):
    _set(pair)
    assert pair.check(*args).startswith("ERR invalid expire time in '")
    pair.check("TTL", "a")


@pytest.mark.parametrize("amount", ["x", "1.5", "", " 1", "01", "9223372036854775808"])
def test_expire_needs_an_integer(pair, amount):
    _set(pair)
    assert pair.check("EXPIRE", "a", amount) == "ERR value is not an integer or out of range"
    pair.check("PEXPIREAT", "a", amount)


@pytest.mark.parametrize("options", [("NX", "XX"), ("NX", "GT"), ("NX", "LT"), ("XX", "NX"), ("LT", "NX"),
                                     ("GT", "LT"), ("XX", "GT", "LT"), ("BOGUS",), ("nx", "bogus"), ("XX", "GT", "EX")])
def test_option_errors(pair, options):
    _set(pair)
    pair.check("EXPIRE", "a", "100", *options)
    pair.check("PEXPIREAT", "a", "100", *options)
    pair.check("TTL", "a")


def test_options_are_checked_before_the_time(pair):
    _set(pair)
    assert pair.check("EXPIRE", "a", "notanumber", "BOGUS") == "ERR Unsupported option BOGUS"
    pair.check("EXPIRE", "a", "notanumber", "NX", "XX")


def test_nx_sets_only_without_a_ttl(pair):
    _set(pair)
    assert pair.check("EXPIREAT", "a", str(FAR), "NX") == 1
    assert pair.check("EXPIREAT", "a", str(FAR + 100), "nx") == 0
    pair.check("EXPIRETIME", "a")


def test_xx_sets_only_with_a_ttl(pair):
    _set(pair)
    assert pair.check("EXPIREAT", "a", str(FAR), "XX") == 0
    pair.check("TTL", "a")
    pair.check("EXPIREAT", "a", str(FAR))
    assert pair.check("EXPIREAT", "a", str(FAR + 100), "XX") == 1
    pair.check("EXPIRETIME", "a")


def test_gt_treats_no_ttl_as_infinite(pair):
    _set(pair)
    assert pair.check("EXPIREAT", "a", str(FAR), "GT") == 0
    pair.check("TTL", "a")
    pair.check("EXPIREAT", "a", str(FAR))
    assert pair.check("EXPIREAT", "a", str(FAR), "GT") == 0   # equal is not greater
    assert pair.check("EXPIREAT", "a", str(FAR - 1), "GT") == 0
    assert pair.check("EXPIREAT", "a", str(FAR + 1), "GT") == 1
    pair.check("EXPIRETIME", "a")


def test_lt_treats_no_ttl_as_infinite(pair):
    _set(pair)
    assert pair.check("EXPIREAT", "a", str(FAR), "LT") == 1
    assert pair.check("EXPIREAT", "a", str(FAR), "LT") == 0   # equal is not less
    assert pair.check("EXPIREAT", "a", str(FAR + 1), "LT") == 0
    assert pair.check("EXPIREAT", "a", str(FAR - 1), "lt") == 1
    pair.check("EXPIRETIME", "a")


def test_xx_with_gt_or_lt(pair):
    _set(pair)
    assert pair.check("EXPIREAT", "a", str(FAR), "XX", "LT") == 0
    pair.check("EXPIREAT", "a", str(FAR))
    assert pair.check("EXPIREAT", "a", str(FAR + 5), "XX", "GT") == 1
    assert pair.check("EXPIREAT", "a", str(FAR + 1), "LT", "XX") == 1
    pair.check("EXPIRETIME", "a")


def test_lt_with_a_past_time_deletes(pair):
    _set(pair)
    pair.check("EXPIRE", "a", "100")
    assert pair.check("EXPIRE", "a", "-1", "LT") == 1
    pair.check("EXISTS", "a")


def test_a_new_value_clears_the_ttl(pair):
    _set(pair)
    pair.check("EXPIRE", "a", "100")
    _set(pair, "a", "new")
    assert pair.check("TTL", "a") == -1


# --- reading a TTL -----------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"])
def test_ttl_of_missing_and_persistent_keys(pair, cmd):
    assert pair.check(cmd, "missing") == -2
    _set(pair)
    assert pair.check(cmd, "a") == -1


def test_ttl_and_pttl_count_down(k):
    k.call("SET", "a", "v")
    k.call("PEXPIRE", "a", "100000")
    assert k.call("TTL", "a") == 100
    assert 99_000 < k.call("PTTL", "a") <= 100_000
    now_ms = int(time.time() * 1000)
    assert abs(k.call("PEXPIRETIME", "a") - (now_ms + 100_000)) < 2_000


@pytest.mark.parametrize("cmd", ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "PERSIST"])
def test_ttl_readers_arity(pair, cmd):
    pair.check(cmd)
    pair.check(cmd, "a", "b")


@pytest.mark.parametrize("cmd", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_arity(pair, cmd):
    pair.check(cmd, "a")
    pair.check(cmd)


# --- PERSIST ---------------------------------------------------------------------

def test_persist(pair):
    assert pair.check("PERSIST", "missing") == 0
    _set(pair)
    assert pair.check("PERSIST", "a") == 0
    pair.check("EXPIRE", "a", "100")
    assert pair.check("PERSIST", "a") == 1
    assert pair.check("TTL", "a") == -1
    assert pair.check("PERSIST", "a") == 0


# --- expiry as a client sees it -------------------------------------------------------

def test_an_expired_key_is_gone_for_every_reader(pair):
    _set(pair)
    pair.check("PEXPIRE", "a", "30")
    time.sleep(0.06)
    for cmd in (("GET", "a"), ("EXISTS", "a"), ("TTL", "a"), ("TYPE", "a"), ("RENAME", "a", "b"),
                ("PERSIST", "a"), ("OBJECT", "ENCODING", "a"), ("EXPIRE", "a", "10")):
        pair.check(*cmd)


def test_active_expiry_removes_keys_nobody_reads(k):
    k.pipeline([("SET", "k%d" % i, "v") for i in range(200)])
    k.pipeline([("PEXPIRE", "k%d" % i, "20") for i in range(100)])
    assert k.call("DBSIZE") == 200
    deadline = time.time() + 5
    while k.call("DBSIZE") != 100 and time.time() < deadline:
        time.sleep(0.05)
    # DBSIZE counts keys without looking them up: only active expiry can shrink it.
    assert k.call("DBSIZE") == 100
