"""Set commands on one key: replies and errors side by side with redis-server,
encodings and effects in the engine.

Differential tests (``pair.check``) need identical replies, errors included.
Redis 7.0 (the side-by-side server) keeps a small set of strings in a hash
table where 7.2 and Keel keep a listpack, so unordered replies are compared
sorted; an intset answers in ascending order on both, compared as is.
Encodings follow Redis 7.2's documented rules and are tested engine-level.
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers every handler)
from engine import errors
from engine.errors import CommandError
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import Err, run
from tests.support import take_effects as effects

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
BIG = [f"m{i}" for i in range(300)]  # enough strings for a hashtable


@pytest.fixture
def c():
    return Session(Keyspace())


def enc(c, key="s") -> bytes:
    return run(c, "OBJECT", "ENCODING", key)


def ints(reply) -> list:
    """A RESP integer reply (pre-encoded ``:n`` or int) as an int."""
    return reply if isinstance(reply, int) else int(bytes(reply)[1:-2])


# --- differential: replies -------------------------------------------------------

@pytest.mark.parametrize("members", [["1", "2", "3"], ["a", "b", "c"], ["1", "a"], BIG,
                                     [str(i) for i in range(600)], ["-5", "9223372036854775807", "0"]])
def test_sadd_smembers_scard_match_redis_for_every_encoding(pair, members):
    pair.check("SADD", "s", *members)
    pair.check("SADD", "s", *members[:3], "new")
    pair.check("SMEMBERS", "s", sort=True)
    pair.check("SCARD", "s")
    pair.check("SISMEMBER", "s", members[0])
    pair.check("SISMEMBER", "s", "nope")
    pair.check("SMISMEMBER", "s", members[0], "nope", members[-1], "new")


def test_intset_members_come_in_ascending_order_as_in_redis(pair):
    pair.check("SADD", "s", "5", "-3", "100", "0", "-9223372036854775808", "42")
    pair.check("SMEMBERS", "s")
    pair.check("SSCAN", "s", "0")
    pair.check("SRANDMEMBER", "s", "100")
    pair.check("SUNION", "s", "nokey")


def test_members_that_look_like_integers_but_are_not_canonical_stay_strings(pair):
    pair.check("SADD", "s", "01", "1", "+1", " 1", "1.0", "-0", "0")
    pair.check("SMEMBERS", "s", sort=True)
    pair.check("SISMEMBER", "s", "01")
    pair.check("SISMEMBER", "s", "1")
    pair.check("SREM", "s", "+1", "-0")
    pair.check("SMEMBERS", "s", sort=True)


def test_missing_keys_answer_as_empty_sets(pair):
    for args in [("SMEMBERS", "k"), ("SCARD", "k"), ("SISMEMBER", "k", "a"), ("SMISMEMBER", "k", "a", "b"),
                 ("SPOP", "k"), ("SPOP", "k", "3"), ("SRANDMEMBER", "k"), ("SRANDMEMBER", "k", "-3"),
                 ("SREM", "k", "a"), ("SMOVE", "k", "d", "a"), ("SSCAN", "k", "0"),
                 ("SSCAN", "k", "0", "COUNT", "0"), ("SSCAN", "k", "0", "TYPE", "x")]:
        pair.check(*args)
    pair.check("EXISTS", "k", "d")


def test_srem_counts_removed_members_and_deletes_an_emptied_set(pair):
    for members in (["1", "2"], ["a", "b"], BIG):
        pair.check("SADD", "s", *members)
        pair.check("SREM", "s", members[0], "nope", members[0])
        pair.check("SCARD", "s")
        pair.check("SREM", "s", *members)
        pair.check("EXISTS", "s")


def test_smove_matches_redis(pair):
    pair.check("SADD", "a", "1", "2", "x")
    pair.check("SADD", "b", "3")
    pair.check("SMOVE", "a", "b", "x")
    pair.check("SMOVE", "a", "b", "x")
    pair.check("SMOVE", "a", "new", "1")
    pair.check("SMOVE", "a", "a", "2")
    pair.check("SMOVE", "a", "a", "9")
    pair.check("SMOVE", "a", "b", "2")  # empties a
    pair.check("EXISTS", "a")
    pair.check("SMEMBERS", "b", sort=True)
    pair.check("SMEMBERS", "new")
    pair.check("SADD", "c", "3")
    pair.check("SMOVE", "b", "c", "3")  # already in the destination
    pair.check("SMEMBERS", "c")
    pair.check("SMEMBERS", "b", sort=True)


def test_smove_type_checks(pair):
    pair.check("SET", "str", "v")
    pair.check("SADD", "s", "a")
    pair.check("SMOVE", "nokey", "str", "a")  # no source: 0 before any type check
    pair.check("SMOVE", "s", "str", "a")
    pair.check("SMOVE", "str", "s", "a")
    pair.check("SMEMBERS", "s")


def test_reads_count_keyspace_hits_and_misses(c):
    run(c, "SADD", "s", "a")
    run(c, "SISMEMBER", "s", "a")
    run(c, "SCARD", "nokey")
    run(c, "SUNION", "s", "nokey")
    assert (c.ks.hits, c.ks.misses) == (2, 2)


def test_spop_removes_what_it_returns(pair):
    for members in (["1", "2", "3", "4", "5"], ["a", "b", "c", "d", "e"], BIG):
        pair.both("DEL", "s")
        pair.both("SADD", "s", *members)
        one = pair.keel.call("SPOP", "s")
        assert one in [m.encode() for m in members]
        assert pair.keel.call("SISMEMBER", "s", one) == 0
        some = pair.keel.call("SPOP", "s", "3")
        assert len(set(some)) == 3 and one not in some
        assert pair.keel.call("SCARD", "s") == len(members) - 4
        rest = pair.keel.call("SPOP", "s", "1000")
        assert sorted(rest + some + [one]) == sorted(m.encode() for m in members)
        assert pair.keel.call("EXISTS", "s") == 0
    pair.both("DEL", "s")
    pair.both("SADD", "s", "a")
    pair.check("SPOP", "s", "0")
    pair.check("SPOP", "s")
    pair.check("EXISTS", "s")


@pytest.mark.parametrize("members", [["1", "2", "3", "4", "5"], ["a", "b", "c", "d", "e"], BIG])
def test_srandmember_counts(pair, members):
    pair.both("SADD", "s", *members)
    universe = {m.encode() for m in members}
    assert pair.keel.call("SRANDMEMBER", "s") in universe
    for count in (1, 2, 4, len(members) - 1):
        got = pair.keel.call("SRANDMEMBER", "s", count)
        assert len(got) == count and len(set(got)) == count and set(got) <= universe
    pair.check("SRANDMEMBER", "s", len(members), sort=True)
    pair.check("SRANDMEMBER", "s", len(members) + 10, sort=True)
    pair.check("SRANDMEMBER", "s", "0")
    got = pair.keel.call("SRANDMEMBER", "s", "-20")
    assert len(got) == 20 and set(got) <= universe
    pair.check("SCARD", "s")


def test_srandmember_with_a_negative_count_repeats_members(pair):
    pair.both("SADD", "s", "a", "b")
    got = pair.keel.call("SRANDMEMBER", "s", "-50")
    assert len(got) == 50 and set(got) == {b"a", b"b"}


def test_sscan_of_an_intset_answers_whole_with_cursor_0(pair):
    pair.check("SADD", "s", "3", "1", "2", "10", "-11")
    pair.check("SSCAN", "s", "0")
    pair.check("SSCAN", "s", "12345", "COUNT", "1")
    pair.check("SSCAN", "s", "-1")
    pair.check("SSCAN", "s", "0", "MATCH", "1*")
    pair.check("SSCAN", "s", "0", "MATCH", "zz")


def test_sscan_of_a_listpack_answers_whole_with_cursor_0(c):
    # Redis 7.0 keeps these in a hash table: 7.2's listpack answers as its intset does.
    run(c, "SADD", "s", "a", "b", "ab", "1")
    assert run(c, "SSCAN", "s", "0") == [b"0", [b"a", b"b", b"ab", b"1"]]
    assert run(c, "SSCAN", "s", "12345", "COUNT", "1") == [b"0", [b"a", b"b", b"ab", b"1"]]
    assert run(c, "SSCAN", "s", "0", "MATCH", "a*") == [b"0", [b"a", b"ab"]]


def test_sscan_of_a_hashtable_returns_every_member(pair):
    pair.both("SADD", "s", *BIG)
    for count in ("1", "7", "100"):
        cursor, seen = b"0", []
        while True:
            cursor, page = pair.keel.call("SSCAN", "s", cursor, "COUNT", count)
            seen += page
            if cursor == b"0":
                break
        assert sorted(set(seen)) == sorted(m.encode() for m in BIG)
    cursor, seen = b"0", []
    while True:
        cursor, page = pair.keel.call("SSCAN", "s", cursor, "MATCH", "m1*")
        seen += page
        if cursor == b"0":
            break
    assert set(seen) == {m.encode() for m in BIG if m.startswith("m1")}


# --- differential: errors ----------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("SADD", "s"), ("SREM", "s"), ("SMEMBERS",), ("SMEMBERS", "s", "x"), ("SISMEMBER", "s"),
    ("SISMEMBER", "s", "a", "b"), ("SMISMEMBER", "s"), ("SCARD",), ("SCARD", "s", "x"), ("SPOP",),
    ("SRANDMEMBER",), ("SMOVE", "a", "b"), ("SMOVE", "a", "b", "c", "d"), ("SSCAN", "s"),
])
def test_wrong_arity_matches_redis(pair, args):
    pair.both("SADD", "s", "a")
    assert pair.check(*args).startswith("ERR wrong number of arguments")


@pytest.mark.parametrize("args", [
    ("SADD", "str", "a"), ("SREM", "str", "a"), ("SMEMBERS", "str"), ("SISMEMBER", "str", "a"),
    ("SMISMEMBER", "str", "a"), ("SCARD", "str"), ("SPOP", "str"), ("SPOP", "str", "2"),
    ("SRANDMEMBER", "str"), ("SRANDMEMBER", "str", "-2"), ("SSCAN", "str", "0"),
])
def test_wrong_type_matches_redis(pair, args):
    pair.both("SET", "str", "v")
    assert pair.check(*args) == Err(errors.WRONGTYPE)
    pair.check("GET", "str")


@pytest.mark.parametrize("count", ["x", "1.5", "", "-1", "9223372036854775808", str(LLONG_MIN), " 1"])
def test_spop_count_errors_match_redis(pair, count):
    pair.both("SADD", "s", "a", "b")
    pair.both("SET", "str", "v")
    assert isinstance(pair.check("SPOP", "s", count), Err)
    assert isinstance(pair.check("SPOP", "str", count), Err)  # the count is checked first
    pair.check("SCARD", "s")


def test_spop_and_srandmember_refuse_extra_arguments(pair):
    pair.both("SADD", "s", "a", "b")
    pair.check("SPOP", "s", "1", "2")
    pair.check("SRANDMEMBER", "s", "1", "2")
    pair.check("SCARD", "s")


@pytest.mark.parametrize("count", ["x", "1.5", "", str(LLONG_MIN), "9223372036854775808",
                                   "-9223372036854775809", "0x10"])
def test_srandmember_count_errors_match_redis(pair, count):
    pair.both("SADD", "s", "a", "b")
    pair.both("SET", "str", "v")
    assert isinstance(pair.check("SRANDMEMBER", "s", count), Err)
    assert isinstance(pair.check("SRANDMEMBER", "nokey", count), Err)
    assert isinstance(pair.check("SRANDMEMBER", "str", count), Err)


def test_srandmember_refuses_llong_min_in_redis_words(pair):
    pair.both("SADD", "s", "a")
    assert pair.check("SRANDMEMBER", "s", str(LLONG_MIN)) == Err(errors.COUNT_OUT_OF_RANGE)
    assert pair.check("SRANDMEMBER", "s", str(LLONG_MAX)) == [b"a"]


@pytest.mark.parametrize("args", [
    ("x",), ("-1",), ("18446744073709551616",), ("0", "COUNT", "0"), ("0", "COUNT", "-1"),
    ("0", "COUNT", "x"), ("0", "COUNT"), ("0", "MATCH"), ("0", "TYPE", "set"), ("0", "FOO", "1"),
])
def test_sscan_errors_match_redis(pair, args):
    pair.both("SADD", "s", "1")
    pair.both("SADD", "h", *BIG)
    pair.check("SSCAN", "s", *args)
    keel, ref = pair.both("SSCAN", "h", *args)
    assert keel == ref if isinstance(ref, Err) else isinstance(keel, list)


def test_sscan_negative_cursor_is_read_like_redis(pair):
    pair.both("SADD", "s", "1")
    pair.check("SSCAN", "s", "-1")
    pair.check("SSCAN", "s", "-")
    pair.check("SSCAN", "s", "+")


@pytest.mark.parametrize("name", ["sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop",
                                  "srandmember", "smove", "sscan"])
def test_command_info_matches_redis(pair, name):
    keel, ref = pair.both("COMMAND", "INFO", name)
    assert keel[0][:7] == ref[0][:7]


# --- engine: encodings (Redis 7.2's rules) --------------------------------------------

def test_a_set_of_integers_is_an_intset_up_to_its_limit_then_a_hashtable(c):
    c.ks.limits.set_max_intset_entries = 4
    run(c, "SADD", "s", "1", "2", "3", "4")
    assert enc(c) == b"intset"
    run(c, "SADD", "s", "5")
    assert enc(c) == b"hashtable"  # not a listpack: an intset outgrows into a table


def test_a_first_member_that_is_not_an_integer_makes_a_listpack(c):
    run(c, "SADD", "s", "a", "1")
    assert enc(c) == b"listpack"
    run(c, "SADD", "t", "1", "a")
    assert enc(c, "t") == b"listpack"
    assert run(c, "SMEMBERS", "t") == [b"1", b"a"]  # converted, then appended


def test_sadd_of_more_members_than_the_intset_limit_skips_or_leaves_the_intset(c):
    c.ks.limits.set_max_intset_entries = 4
    run(c, "SADD", "s", "1", "1", "1", "1", "1")  # five arguments, one member
    assert enc(c) == b"listpack"  # a new set: too many for an intset, few enough for a listpack
    run(c, "SADD", "t", "1")
    run(c, "SADD", "t", "2", "2", "2", "2", "2")
    assert enc(c, "t") == b"hashtable"


def test_sadd_of_more_members_than_the_listpack_limit_makes_a_hashtable_at_once(c):
    c.ks.limits.set_max_listpack_entries = 3
    run(c, "SADD", "s", "a", "a", "a", "a")
    assert enc(c) == b"hashtable" and ints(run(c, "SCARD", "s")) == 1
    run(c, "SADD", "t", "a")
    assert enc(c, "t") == b"listpack"
    run(c, "SADD", "t", "a", "a", "a")
    assert enc(c, "t") == b"listpack"  # three arguments: not more than the limit
    run(c, "SADD", "t", "b", "c", "d")
    assert enc(c, "t") == b"hashtable"  # the fourth member


def test_a_listpack_grows_into_a_hashtable_past_its_entries(c):
    run(c, "SADD", "s", *[f"m{i}" for i in range(128)])
    assert enc(c) == b"listpack"
    run(c, "SADD", "s", "m0")
    assert enc(c) == b"listpack"
    run(c, "SADD", "s", "one more")
    assert enc(c) == b"hashtable"
    assert ints(run(c, "SCARD", "s")) == 129


def test_a_long_member_makes_a_hashtable(c):
    run(c, "SADD", "s", "a", "x" * 64)
    assert enc(c) == b"listpack"
    run(c, "SADD", "s", "y" * 65)
    assert enc(c) == b"hashtable"
    run(c, "SADD", "t", "1", "2")
    run(c, "SADD", "t", "z" * 65)
    assert enc(c, "t") == b"hashtable"  # intset straight to a table


def test_an_intset_with_as_many_members_as_a_listpack_holds_becomes_a_hashtable(c):
    c.ks.limits.set_max_listpack_entries = 3
    run(c, "SADD", "s", "1", "2")
    run(c, "SADD", "s", "a")
    assert enc(c) == b"listpack"
    run(c, "SADD", "t", "1", "2", "3")
    run(c, "SADD", "t", "a")
    assert enc(c, "t") == b"hashtable"  # 3 is not fewer than 3


def test_an_intset_whose_integers_are_longer_than_the_listpack_value_becomes_a_hashtable(c):
    c.ks.limits.set_max_listpack_value = 3
    run(c, "SADD", "s", "1", "-10")
    run(c, "SADD", "s", "a")
    assert enc(c) == b"listpack"
    run(c, "SADD", "t", "1", "-100")  # four characters
    run(c, "SADD", "t", "a")
    assert enc(c, "t") == b"hashtable"


def test_conversion_is_one_way(c):
    run(c, "SADD", "s", "1", "a")
    run(c, "SREM", "s", "a")
    assert enc(c) == b"listpack"
    run(c, "SADD", "t", *BIG)
    run(c, "SREM", "t", *BIG[1:])
    assert enc(c, "t") == b"hashtable"
    run(c, "SPOP", "t", "0")
    assert run(c, "SMEMBERS", "t") == [BIG[0].encode()]


def test_an_spop_that_leaves_few_members_of_a_hashtable_rebuilds_it_compact_as_7_2_does(c):
    run(c, "SADD", "s", *BIG)
    run(c, "SPOP", "s", "100")  # 200 stay: more than a fifth of 100, taken one by one
    assert enc(c) == b"hashtable"
    run(c, "SPOP", "s", "190")  # 10 stay: at most a fifth of 190, the survivors make a new set
    assert enc(c) == b"listpack" and ints(run(c, "SCARD", "s")) == 10
    run(c, "SADD", "t", *[f"m{i}" for i in range(1200)])
    run(c, "SPOP", "t", "1000")  # 200 survivors outgrow the listpack again
    assert enc(c, "t") == b"hashtable" and ints(run(c, "SCARD", "t")) == 200
    run(c, "SADD", "i", *[str(i) for i in range(400)])
    run(c, "SPOP", "i", "390")
    assert enc(c, "i") == b"intset" and ints(run(c, "SCARD", "i")) == 10


def test_smove_creates_the_destination_as_sadd_of_one_member_would(c):
    run(c, "SADD", "src", "1", "a", *BIG)
    run(c, "SMOVE", "src", "i", "1")
    run(c, "SMOVE", "src", "l", "a")
    assert (enc(c, "i"), enc(c, "l")) == (b"intset", b"listpack")
    run(c, "SADD", "i", "2")
    run(c, "SMOVE", "src", "i", BIG[0])
    assert enc(c, "i") == b"listpack"


def test_config_set_thresholds_apply_to_new_sets(c):
    c.ks.limits.set_max_intset_entries = 0
    run(c, "SADD", "s", "1")
    assert enc(c) == b"listpack"
    c.ks.limits.set_max_listpack_entries = 0
    run(c, "SADD", "t", "a")
    assert enc(c, "t") == b"hashtable"


# --- engine: random picks and the table's holes -----------------------------------------

def test_spop_from_a_big_set_takes_distinct_members_and_keeps_the_rest(c):
    run(c, "SADD", "s", *BIG)
    taken = run(c, "SPOP", "s", "50") + [run(c, "SPOP", "s") for _ in range(100)]
    assert len(set(taken)) == 150
    rest = run(c, "SMEMBERS", "s")
    assert len(rest) == 150 and not set(rest) & set(taken)
    assert sorted(rest + taken) == sorted(m.encode() for m in BIG)


def test_popping_most_of_a_hashtable_rebuilds_it_so_picks_stay_cheap(c):
    from engine.dictscan import layout
    members = [f"k{i}" for i in range(5000)]
    run(c, "SADD", "s", *members)
    for _ in range(4900):
        run(c, "SPOP", "s")
    entries, live = layout(c.db.get(b"s").data)
    assert live == 100 and entries <= 8 * 100 + 64


def test_spop_of_nearly_all_of_a_hashtable_at_once_is_uniform_enough(c):
    run(c, "SADD", "s", *BIG)
    seen = set()
    for _ in range(30):
        run(c, "DEL", "s")
        run(c, "SADD", "s", *BIG)
        seen.update(run(c, "SPOP", "s", "290"))
    assert len(seen) == 300


def test_srandmember_distinct_from_a_big_set_reaches_every_member(c):
    run(c, "SADD", "s", *BIG)
    seen = set()
    for _ in range(40):
        got = run(c, "SRANDMEMBER", "s", "30")
        assert len(set(got)) == 30
        seen.update(got)
    assert len(seen) > 250
    assert ints(run(c, "SCARD", "s")) == 300


# --- engine: effects ----------------------------------------------------------------

def test_sadd_and_srem_journal_themselves_only_when_they_change_something(c):
    run(c, "SADD", "s", "a", "b")
    run(c, "SADD", "s", "a")
    run(c, "SREM", "s", "zz")
    run(c, "SREM", "nokey", "a")
    run(c, "SREM", "s", "a", "zz")
    assert effects(c) == [[b"SADD", b"s", b"a", b"b"], [b"SREM", b"s", b"a", b"zz"]]


def test_spop_journals_srem_of_the_members_taken(c):
    run(c, "SADD", "s", *BIG)
    effects(c)
    one = run(c, "SPOP", "s")
    some = run(c, "SPOP", "s", "5")
    run(c, "SPOP", "s", "0")
    run(c, "SPOP", "nokey")
    assert effects(c) == [[b"SREM", b"s", one], [b"SREM", b"s", *some]]


def test_spop_that_empties_a_set_journals_srem_and_deletes_it(c):
    run(c, "SADD", "s", "a", "b")
    effects(c)
    taken = run(c, "SPOP", "s", "10")
    assert effects(c) == [[b"SREM", b"s", *taken]]
    assert run(c, "EXISTS", "s") == run(c, "EXISTS", "nokey")


def test_a_big_spop_journals_batches_of_1024(c):
    run(c, "SADD", "s", *[f"m{i}" for i in range(3000)])
    effects(c)
    taken = run(c, "SPOP", "s", "2500")
    recorded = effects(c)
    assert [len(e) - 2 for e in recorded] == [1024, 1024, 452]
    assert [m for e in recorded for m in e[2:]] == list(taken)


def test_srandmember_and_reads_journal_nothing(c):
    run(c, "SADD", "s", "a", "b")
    effects(c)
    for args in [("SRANDMEMBER", "s"), ("SRANDMEMBER", "s", "-3"), ("SMEMBERS", "s"), ("SCARD", "s"),
                 ("SISMEMBER", "s", "a"), ("SMISMEMBER", "s", "a"), ("SSCAN", "s", "0")]:
        run(c, *args)
    assert effects(c) == []


def test_smove_journals_itself_when_it_moved(c):
    run(c, "SADD", "a", "x", "y")
    effects(c)
    run(c, "SMOVE", "a", "b", "x")
    run(c, "SMOVE", "a", "b", "nope")
    run(c, "SMOVE", "a", "a", "y")
    run(c, "SMOVE", "nokey", "b", "y")
    assert effects(c) == [[b"SMOVE", b"a", b"b", b"x"]]


def test_replaying_the_effects_rebuilds_the_same_sets(c):
    run(c, "SADD", "s", *BIG, "1", "2")
    run(c, "SPOP", "s", "40")
    run(c, "SPOP", "s")
    run(c, "SMOVE", "s", "t", run(c, "SRANDMEMBER", "s"))
    run(c, "SREM", "s", *BIG[:10])
    replica = Session(Keyspace())
    for _, argv in c.ks.effects:
        run(replica, *argv)
    for key in ("s", "t"):
        assert sorted(run(replica, "SMEMBERS", key)) == sorted(run(c, "SMEMBERS", key))


def test_a_refused_command_changes_nothing(c):
    run(c, "SADD", "s", "a")
    run(c, "SET", "str", "v")
    effects(c)
    for args in [("SPOP", "s", "-1"), ("SRANDMEMBER", "s", str(LLONG_MIN)), ("SADD", "str", "a"),
                 ("SMOVE", "s", "str", "a"), ("SSCAN", "s", "0", "COUNT", "0")]:
        with pytest.raises(CommandError):
            run(c, *args)
    assert effects(c) == [] and run(c, "SMEMBERS", "s") == [b"a"]


def test_writes_mark_the_key_changed_for_watch_and_checkpoints(c):
    seen = []
    c.ks.watchers.append(lambda db, key: seen.append(key))
    run(c, "SADD", "s", "a", "b", "c")
    run(c, "SADD", "s", "d")
    run(c, "SADD", "s", "d")  # no change: no mark
    run(c, "SREM", "s", "a")
    run(c, "SPOP", "s")
    run(c, "SMOVE", "s", "t", run(c, "SRANDMEMBER", "s"))
    assert seen.count(b"s") == 5 and b"t" in seen


# --- RESP3: set replies are sets, counted picks arrays ----------------------------------

def _raw(client, *args) -> bytes:
    """The reply's bytes as the server sent them (one whole reply)."""
    import hiredis

    from tests.support import encode
    client.sock.sendall(encode(args))
    reader, raw = hiredis.Reader(), b""
    while True:
        chunk = client.sock.recv(65536)
        raw += chunk
        reader.feed(chunk)
        if reader.gets() is not False:
            return raw


@pytest.mark.parametrize("args", [
    ("SMEMBERS", "nokey"), ("SPOP", "nokey", "2"), ("SRANDMEMBER", "nokey", "2"), ("SINTER", "nokey"),
    ("SUNION", "nokey"), ("SDIFF", "nokey"), ("SSCAN", "nokey", "0"), ("SMISMEMBER", "nokey", "a", "b"),
    ("SMEMBERS", "i"), ("SINTER", "i", "i"), ("SUNION", "i"), ("SDIFF", "i", "nokey"), ("SSCAN", "i", "0"),
    ("SRANDMEMBER", "i", "0"), ("SRANDMEMBER", "i", "10"), ("SPOP", "i", "0"), ("SMISMEMBER", "i", "1", "x"),
    ("SPOP", "one", "5"), ("SRANDMEMBER", "one", "-2"), ("SINTERCARD", "1", "i"),
])
def test_resp3_reply_types_match_redis(pair, args):
    for client in (pair.keel, pair.ref):
        client.call("HELLO", "3")
        client.call("SADD", "i", "3", "1", "2")
        client.call("SADD", "one", "a")
    keel, ref = _raw(pair.keel, *args), _raw(pair.ref, *args)
    assert keel == ref, f"{args}: keel {keel!r} != redis {ref!r}"


@pytest.mark.parametrize("members", [["1", "2"], ["a", "1"], BIG])
def test_copy_is_independent_of_the_original(c, members):
    run(c, "SADD", "s", *members)
    run(c, "COPY", "s", "t")
    assert enc(c, "t") == enc(c, "s")
    run(c, "SADD", "s", "added")
    run(c, "SREM", "s", members[0])
    run(c, "SPOP", "s")
    assert sorted(run(c, "SMEMBERS", "t")) == sorted(m.encode() for m in members)
