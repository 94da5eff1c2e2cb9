"""Keyspace notifications, engine side: the directive's syntax, the gate, the
hook, expiry and eviction events, and what is never announced.

The per-command event sequences are in ``test_notify_events.py``; these
tests use the same recording hook (``record``).
"""

from __future__ import annotations

import pytest

import engine.commands  # noqa: F401  (registers the handlers)
from engine import notify
from engine.commands.blocking import WouldBlock
from engine.keyspace import Keyspace
from engine.session import Session
from tests.support import run, take_effects


def record(ks: Keyspace, flags: str = "KEAn") -> list:
    """Turn notifications on with ``flags``; the list the events land in, as
    ``event:key`` (``@db`` added outside database 0)."""
    seen: list = []

    def hook(cls, event, db_index, key):
        seen.append((event + b":" + key).decode() + (f"@{db_index}" if db_index else ""))

    ks.notify_flags = notify.gate(notify.parse(flags))
    ks.notify_hook = hook
    return seen


def session(flags: str = "KEAn"):
    ks = Keyspace()
    seen = record(ks, flags)
    return Session(ks), seen


# --- the directive -------------------------------------------------------------

@pytest.mark.parametrize("text,shown", [
    ("", ""), ("KEA", "AKE"), ("AKE", "AKE"), ("Kg", "gK"), ("gK$", "g$K"), ("KE", "KE"),
    ("xx", "x"), ("KEAnm", "AKEm"), ("EKg$lshzxetdnm", "AKEm"),
    ("Elg", "glE"), ("nK", "nK"), ("K$lshzxetdn", "$lshzxetdnK"), ("mE", "Em"),
])
def test_flags_are_shown_as_redis_normalises_them(text, shown):
    assert notify.show(notify.parse(text)) == shown


def test_A_hides_n_as_redis_shows_it_but_keeps_it():
    flags = notify.parse("AKEn")
    assert notify.show(flags) == "AKE"
    assert flags & notify.NEW


@pytest.mark.parametrize("text", ["Z", "Axy", "K E", "k", "a", "*"])
def test_a_character_that_names_no_class_is_refused_in_redis_words(text):
    with pytest.raises(ValueError) as e:
        notify.parse(text)
    assert str(e.value) == "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def test_A_is_every_class_but_new_and_key_miss():
    a = notify.parse("A")
    assert a == notify.parse("g$lshzxetd")
    assert not a & (notify.NEW | notify.KEY_MISS | notify.KEYSPACE | notify.KEYEVENT)


@pytest.mark.parametrize("text", ["", "A", "g$", "K", "E", "KE", "xe"])
def test_without_K_or_E_or_without_a_class_the_gate_is_shut(text):
    assert notify.gate(notify.parse(text)) == 0


@pytest.mark.parametrize("text", ["Km", "KEd", "KEdm"])
def test_only_classes_keel_never_announces_shut_the_gate_too(text):
    assert notify.gate(notify.parse(text)) == 0


@pytest.mark.parametrize("text", ["Kg", "E$", "KEA", "En", "Kxm", "Ee", "Et"])
def test_with_K_or_E_and_a_class_the_gate_holds_the_flags(text):
    flags = notify.parse(text)
    assert notify.gate(flags) == flags


# --- the gate and the hook -----------------------------------------------------------

def test_a_fresh_keyspace_announces_nothing_and_needs_no_hook():
    ks = Keyspace()
    assert ks.notify_flags == 0 and ks.notify_hook is None
    c = Session(ks)
    for args in (("SET", "k", "v"), ("RPUSH", "l", "a"), ("DEL", "k", "l"), ("SET", "k", "v", "EX", "1")):
        run(c, *args)


def test_the_hook_gets_class_event_db_and_key():
    ks = Keyspace()
    calls = []
    ks.notify_flags = notify.gate(notify.parse("KEA"))
    ks.notify_hook = lambda *a: calls.append(a)
    c = Session(ks)
    run(c, "SELECT", 3)
    run(c, "RPUSH", "l", "a")
    run(c, "INCR", "n")
    assert calls == [(notify.LIST, b"rpush", 3, b"l"), (notify.STRING, b"incrby", 3, b"n")]


@pytest.mark.parametrize("flags,expected", [
    ("K$", ["set:s"]), ("Kl", ["rpush:l"]), ("Ks", ["sadd:t"]), ("Kh", ["hset:h"]),
    ("Kz", ["zadd:z"]), ("Kg", ["del:s", "del:l", "del:t", "del:h", "del:z"]),
    ("Kn", ["new:s", "new:l", "new:t", "new:h", "new:z"]), ("Kxe", []), ("Ktdm", []),
])
def test_each_class_is_delivered_alone(flags, expected):
    c, seen = session(flags)
    run(c, "SET", "s", "v")
    run(c, "RPUSH", "l", "a")
    run(c, "SADD", "t", "a")
    run(c, "HSET", "h", "f", "v")
    run(c, "ZADD", "z", 1, "m")
    run(c, "DEL", "s", "l", "t", "h", "z")
    assert seen == expected


def test_notifications_are_not_effects():
    c, seen = session()
    run(c, "RPUSH", "l", "a", "b")
    run(c, "LPOP", "l", 2)
    assert seen == ["new:l", "rpush:l", "lpop:l", "del:l"]
    assert take_effects(c) == [[b"RPUSH", b"l", b"a", b"b"], [b"LPOP", b"l", b"2"]]


def test_replaying_the_log_announces_nothing():
    c, seen = session()
    c.ks.loading = True
    run(c, "SET", "k", "v")
    run(c, "SET", "k2", "v", "PX", "100000")
    run(c, "RPUSH", "l", "a")
    run(c, "LPOP", "l")
    run(c, "DEL", "k")
    c.db.expires[b"k2"] = 1  # due, but nothing expires while loading
    run(c, "GET", "k2")
    run(c, "SET", "k2", "w")
    c.ks.loading = False
    assert seen == []
    run(c, "SET", "k3", "v")
    assert seen == ["new:k3", "set:k3"]


def test_with_notifications_on_plain_set_journals_what_it_did():
    c, seen = session()
    run(c, "SET", "k", "v")
    assert take_effects(c) == [[b"SET", b"k", b"v"]]
    c.db.set_expire(b"k", 1)  # due: SET replaces an expired key, which is expired first
    take_effects(c)
    run(c, "SET", "k", "w")
    assert seen == ["new:k", "set:k", "expired:k", "new:k", "set:k"]
    assert take_effects(c) == [[b"DEL", b"k"], [b"SET", b"k", b"w"]]
    assert c.db.data == {b"k": b"w"} and not c.db.expires


def test_with_notifications_off_plain_set_keeps_its_fast_path():
    ks = Keyspace()
    c = Session(ks)
    run(c, "SET", "k", "v")
    c.db.set_expire(b"k", 1)
    take_effects(c)
    run(c, "SET", "k", "w")
    assert take_effects(c) == [[b"SET", b"k", b"w"]]  # overwritten, no DEL first
    assert ks.expired_keys == 0


# --- expired and evicted ---------------------------------------------------------------

def test_lazy_expiry_announces_expired_on_a_read():
    c, seen = session()
    run(c, "SET", "k", "v")
    c.db.set_expire(b"k", 1)
    seen.clear()
    assert run(c, "GET", "k") is None
    assert seen == ["expired:k"]


@pytest.mark.parametrize("args,events", [
    (("EXISTS", "x"), ["expired:x"]),
    (("TTL", "x"), ["expired:x"]),
    (("TYPE", "x"), ["expired:x"]),
    (("DEL", "x"), ["expired:x"]),
    (("EXPIRE", "x", 10), ["expired:x"]),
    (("MOVE", "x", 1), ["expired:x"]),
    (("SET", "x", 2), ["expired:x", "new:x", "set:x"]),
    (("SET", "x", 2, "EX", 5), ["expired:x", "new:x", "set:x", "expire:x"]),
    (("MSET", "x", 1), ["expired:x", "new:x", "set:x"]),
    (("APPEND", "x", "y"), ["expired:x", "new:x", "append:x"]),
    (("INCR", "x"), ["expired:x", "new:x", "incrby:x"]),
    (("RPUSH", "x", "a"), ["expired:x", "new:x", "rpush:x"]),
    (("RENAME", "a", "x"), ["expired:x", "new:x", "rename_from:a", "rename_to:x"]),
    (("COPY", "a", "x"), ["expired:x", "new:x", "copy_to:x"]),
    (("SORT", "l", "STORE", "x"), ["expired:x", "new:x", "sortstore:x"]),
])
def test_a_command_meeting_an_expired_key_announces_expired_first(args, events):
    # The sequences redis-server 7.0 sends for the same commands.
    c, seen = session()
    run(c, "SET", "a", 1)
    run(c, "RPUSH", "l", 1)
    run(c, "SET", "x", "old")
    c.db.set_expire(b"x", 1)
    seen.clear()
    run(c, *args)
    assert seen == events


def test_active_expiry_announces_expired_in_each_database():
    c, seen = session()
    for index in (0, 1):
        run(c, "SELECT", index)
        run(c, "SET", "x", "v")
        run(c, "RPUSH", "y", "v")
        c.db.set_expire(b"x", 1)
        c.db.set_expire(b"y", 1)
    run(c, "SET", "z", "v", "EX", 1000)
    seen.clear()
    assert c.ks.active_expire(budget_ms=100) == 4
    assert sorted(seen) == ["expired:x", "expired:x@1", "expired:y", "expired:y@1"]


def test_expired_is_class_x_alone():
    c, seen = session("Kx")
    run(c, "SET", "k", "v", "PX", 100000)
    c.db.set_expire(b"k", 1)
    run(c, "GET", "k")
    assert seen == ["expired:k"]


def test_a_replica_announces_no_expiry():
    c, seen = session()
    c.ks.expire_on_lookup = False
    run(c, "SET", "k", "v")
    c.db.set_expire(b"k", 1)
    seen.clear()
    assert run(c, "GET", "k") is None
    assert c.ks.active_expire(budget_ms=100) == 0
    run(c, "SET", "k", "w")  # the primary's write over the key it has not expired yet
    assert seen == ["set:k"]


def test_evict_removes_journals_del_and_announces_evicted():
    c, seen = session("Ke")
    run(c, "SELECT", 2)
    run(c, "SET", "k", "v", "EX", 100)
    take_effects(c)
    assert c.db.evict(b"k") is True
    assert b"k" not in c.db.data and b"k" not in c.db.expires
    assert c.ks.evicted_keys == 1
    assert take_effects(c) == [[b"DEL", b"k"]]
    assert seen == ["evicted:k@2"]
    assert c.db.evict(b"k") is False
    assert seen == ["evicted:k@2"] and c.ks.evicted_keys == 1


def test_evicted_is_class_e():
    c, seen = session("KA")
    run(c, "SET", "k", "v")
    c.db.evict(b"k")
    assert seen == ["set:k", "evicted:k"]
    c, seen = session("Kg$")
    run(c, "SET", "k", "v")
    c.db.evict(b"k")
    assert seen == ["set:k"]


# --- what is never announced -------------------------------------------------------------

def test_a_command_that_fails_announces_nothing():
    c, seen = session()
    run(c, "SET", "s", "abc")
    run(c, "RPUSH", "l", "a")
    seen.clear()
    from engine.errors import CommandError
    for args in (("INCR", "s"), ("INCRBYFLOAT", "s", 1), ("LPUSH", "s", "x"), ("SET", "l", "x", "GET"),
                 ("LSET", "l", 9, "x"), ("RENAME", "nope", "x"), ("HSET", "l", "f", "v"),
                 ("ZADD", "s", 1, "m"), ("SADD", "l", "m"), ("ZADD", "z", "nan", "m"),
                 ("EXPIRE", "s", "abc"), ("RESTORE", "s", 0, "junk"), ("SETRANGE", "s", -1, "x")):
        with pytest.raises(CommandError):
            run(c, *args)
    assert seen == []


def test_flushes_and_swapdb_announce_nothing():
    c, seen = session()
    run(c, "SET", "a", 1)
    seen.clear()
    run(c, "SWAPDB", 0, 1)
    run(c, "FLUSHDB")
    run(c, "FLUSHALL")
    assert seen == []


def test_a_blocking_pop_that_must_wait_announces_nothing_until_served():
    c, seen = session()
    r = run(c, "BLPOP", "q", 0)
    assert type(r) is WouldBlock and seen == []
    run(c, "RPUSH", "q", "a", "b")
    assert r.attempt(c) == [b"q", b"a"]
    assert seen == ["new:q", "rpush:q", "lpop:q"]
