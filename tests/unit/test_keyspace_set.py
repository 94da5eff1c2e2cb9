"""Plain SET inlines Database.set: both must leave the same bookkeeping.

Whatever a later change adds to the keyspace's mutator (watchers, dirty
tracking, counters), the inlined copy in the SET handler must do too; this
test compares the two on identical keyspaces.
"""

import engine.commands  # noqa: F401
from engine.commands.string import set_
from engine.keyspace import Keyspace
from engine.session import Session


def observe(ks):
    seen = []
    ks.watchers.append(lambda db, key: seen.append((db.index, key)))
    for db in ks.dbs:
        db.dirty = set()
    return seen


def state(ks, seen):
    db = ks.dbs[0]
    return dict(db.data), dict(db.expires), set(db.dirty), ks.dirty, list(seen)


def test_plain_set_does_what_database_set_does():
    a, b = Keyspace(), Keyspace()
    for ks in (a, b):
        ks.dbs[0].set(b"k", b"old")
        ks.dbs[0].set_expire(b"k", 2**50)
    seen_a, seen_b = observe(a), observe(b)
    set_(Session(a), [b"SET", b"k", b"new"])
    b.dbs[0].set(b"k", b"new")
    assert state(a, seen_a) == state(b, seen_b)
    assert a.effects == [(0, [b"SET", b"k", b"new"])]
