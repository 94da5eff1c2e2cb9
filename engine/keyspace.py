"""The keyspace: 16 databases of keys, their values and their expiry times.

A ``Database`` holds two dicts, as Redis does: ``data`` (key -> value) and
``expires`` (key -> absolute expiry time in ms, only for keys that have one).
Values are ``bytes`` for strings (``bytearray`` once changed in place,
see ``engine.types``); other data types are objects from ``engine.types``. Keys are ``bytes``.

Every change to a key goes through one of the mutators below (``set``,
``delete``, ``set_expire``, ``persist``, ``touched``), so that bookkeeping
that needs to see every change — WATCH versions, checkpoint dirty-tracking,
memory accounting — has exactly one place to hook in.

Memory (``engine.memory``): ``Keyspace.mem_used`` is the estimated size of
every key, value and TTL, current after every mutator: ``set`` adds the new
value's charge and subtracts the one it replaces, ``delete``/``evict``/
``_expire_now``/``clear``/``flushall`` subtract, ``set_expire``/``persist``
add or subtract a TTL's cost, and ``changed`` (what ``touched`` and the
in-place writers call) re-reads a changed value's size and adds the
difference. A value remembers the charge it was added with (``_held`` on a
collection, ``Database.ba_mem`` for a bytearray; a ``bytes`` never changes),
so the subtraction is exact. Code that swaps a value's representation
without a change of content goes through ``retype``; a handler that marks
its key before writing into the value (for a checkpoint's sake) counts the
write after it with ``resized``; a keyspace filled behind the mutators' back
(the checkpoint loader) is counted whole by ``account_all``. Reads pay
nothing. ``mem_peak`` is the highest ``mem_used`` seen before a removal.

Expiry is lazy *and* active:
* lazy: a lookup of an expired key deletes it (emitting a ``DEL`` effect) and
  reports it missing;
* active: ``Keyspace.active_expire(budget)`` walks each database's
  ``expires`` dict by position (``engine.dictscan``), 64 entries at a time
  from where the last cycle stopped, and deletes the keys that are due. As
  in Redis it moves on from a database once fewer than a tenth of a sample
  were due (but not before it walked 1/128 of the entries, so that a pass
  over them all takes a bounded time), and stops when its time budget is
  spent, setting
  ``expire_backlog`` so the server runs another slice soon. Nothing beyond
  the ``expires`` entry is kept per key: a key with a TTL costs one dict
  entry and one int more than one without.

Notifications (``engine.notify``): ``notify_flags`` is 0 while they are off,
so a write pays one test; ``set`` announces ``new`` for a key it creates,
``_expire_now`` ``expired`` (lazy and active expiry alike), ``evict``
``evicted``.

Effects: every write records the deterministic command that reproduces it
(``Keyspace.emit``). The list ``Keyspace.effects`` is drained by whoever
consumes it (the write-ahead log, the replication stream, tests). Each entry is
``(db_index, argv)``.

Invariants:
* ``key in expires`` implies ``key in data``.
* A key whose expiry time is <= now is never returned by a lookup.
* A replica (``expire_on_lookup = False``) reports expired keys as missing but
  does not delete them: it waits for the primary's ``DEL``.
* While the log is replayed (``loading = True``) no key is ever expired, on
  lookup or by a command given a time in the past (``already_expired``):
  replay must rebuild exactly the state the log describes, and a later
  PERSIST may have rescued a key whose old expiry time has since passed.
"""

from __future__ import annotations

import time

from engine import notify
from engine.dictscan import due
from engine.memory import (BYTES_HEADER, SMALL_LIMIT, TTL_COST, KeyspaceAccounting, bytearray_cost, bytes_cost,
                           charge, key_cost)
from engine.types.limits import Limits

NUM_DATABASES = 16
EXPIRE_SAMPLE = 64  # expires entries looked at per step of the active cycle
EXPIRE_PASS_SHARE = 128  # a cycle walks at least this share of them (see expire_due)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Database:
    __slots__ = ("ks", "index", "data", "expires", "dirty", "expire_pos", "ba_mem", "mem_stale")

    def __init__(self, ks: "Keyspace", index: int):
        self.ks = ks
        self.index = index
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        # Keys changed since the last checkpoint capture; None when no
        # checkpointer tracks this keyspace (the set would only grow).
        self.dirty: set | None = None
        self.expire_pos = 0  # where the active expiry walk of ``expires`` goes on
        # key -> the charge its bytearray value was counted with (strings
        # changed in place are rare; a bytes value's charge is its length's).
        self.ba_mem: dict[bytes, int] = {}
        # Deferred accounting (Keyspace.mem_defer): the keys whose collection
        # changed in place since the last Keyspace.mem_settle, or None while
        # every change is counted at once (maxmemory set: eviction reads it).
        self.mem_stale: set | None = None

    # -- lookups ------------------------------------------------------------
    def get(self, key: bytes):
        """The live value of ``key`` or None (expires it if it is due)."""
        v = self.data.get(key)
        if v is not None and self.expires:
            when = self.expires.get(key)
            if when is not None and when <= now_ms() and not self.ks.loading:
                self._expire_now(key)
                return None
        return v

    def contains(self, key: bytes) -> bool:
        return self.get(key) is not None

    def _expire_now(self, key: bytes) -> None:
        ks = self.ks
        if not ks.expire_on_lookup:
            return
        v = self.data.pop(key)
        if ks.mem_used > ks.mem_peak:
            ks.mem_peak = ks.mem_used
        ks.mem_used -= self._held(key, v) + key_cost(key) + TTL_COST
        del self.expires[key]
        ks.expired_keys += 1
        ks.emit(self.index, [b"DEL", key])
        ks._mark(self, key)
        if ks.notify_flags:
            ks.notify(notify.EXPIRED, b"expired", self.index, key)
        if ks.reaper is not None and ks.reaper.expire:  # lazyfree-lazy-expire (engine.lazyfree)
            ks.reaper.free(v)

    def evict(self, key: bytes) -> bool:
        """Remove ``key`` for maxmemory (the eviction policy's one way to drop a
        key): journaled as ``DEL``, counted in INFO's evicted_keys, announced
        as an ``evicted`` event (class ``e``). False when the key is missing."""
        v = self.data.pop(key, None)
        if v is None:
            return False
        ks = self.ks
        if ks.mem_used > ks.mem_peak:
            ks.mem_peak = ks.mem_used
        ks.mem_used -= self._held(key, v) + key_cost(key)
        if self.expires and self.expires.pop(key, None) is not None:
            ks.mem_used -= TTL_COST
        ks.evicted_keys += 1
        ks.emit(self.index, [b"DEL", key])
        ks._mark(self, key)
        if ks.notify_flags:
            ks.notify(notify.EVICTED, b"evicted", self.index, key)
        if ks.reaper is not None and ks.reaper.eviction:  # lazyfree-lazy-eviction (engine.lazyfree)
            ks.reaper.free(v)
        return True

    def is_expired(self, key: bytes, now: int) -> bool:
        when = self.expires.get(key)
        return when is not None and when <= now

    # -- mutators -----------------------------------------------------------
    def set(self, key: bytes, value, keep_ttl: bool = False) -> None:
        """Store ``value`` under ``key``; clears any TTL unless ``keep_ttl``."""
        ks = self.ks
        if ks.notify_flags:
            self._creating(key)
        data = self.data
        old = data.get(key)
        data[key] = value
        # The old value's charge goes first: a bytearray's is popped from
        # ba_mem, and the new value may be the same object.
        n = key_cost(key) if old is None else -self._held(key, old)
        if type(value) is bytes:  # engine.memory.bytes_cost, inlined
            m = len(value) + BYTES_HEADER
            n += (m + 15) & -16 if m <= SMALL_LIMIT else (m + 23) & -16
        else:
            n += self._hold(key, value)
        ks.mem_used += n
        if not keep_ttl and self.expires and self.expires.pop(key, None) is not None:
            ks.mem_used -= TTL_COST
        d = self.dirty
        if d is not None:
            d.add(key)
        ks.dirty += 1
        if ks.watchers:
            for w in ks.watchers:
                w(self, key)
        if old is not None and type(old) is not bytes and old is not value:
            self._overwritten(old)

    def _overwritten(self, old) -> None:
        """lazyfree-lazy-server-del: a collection a write replaced goes to
        the reaper (engine.lazyfree), freed later when it is big."""
        r = self.ks.reaper
        if r is not None and r.server_del and not self.ks.loading:
            r.free(old)

    def _creating(self, key: bytes) -> None:
        """Before ``set`` stores ``key``, with notifications on: what Redis's
        write lookup and key creation announce. A key whose TTL ran out is
        expired first (``expired``, and its ``DEL`` journaled, as that lookup
        does); a key not there then is announced ``new``."""
        ks = self.ks
        if ks.loading:
            return
        when = self.expires.get(key)
        if when is not None and when <= now_ms():
            self._expire_now(key)
        if key not in self.data:
            ks.notify(notify.NEW, b"new", self.index, key)

    def replaced(self, key: bytes, old, value) -> None:
        """The accounting of ``set`` for an inlined copy of it that stored
        ``value`` over ``old`` (None: a new key), TTL aside."""
        n = key_cost(key) if old is None else -self._held(key, old)
        self.ks.mem_used += n + self._hold(key, value)
        if old is not None and type(old) is not bytes and old is not value:
            self._overwritten(old)

    def _held(self, key: bytes, v) -> int:
        """The charge the value ``v`` of ``key`` was counted with (forgotten:
        the caller is taking it out of ``mem_used``)."""
        t = type(v)
        if t is bytes:
            return bytes_cost(len(v))
        if t is bytearray:
            return self.ba_mem.pop(key)
        return getattr(v, "_held", 0)

    def _hold(self, key: bytes, v) -> int:
        """The charge of the value ``v`` just stored under ``key``, recorded
        where ``_held`` finds it."""
        t = type(v)
        if t is bytes:
            return charge(v)
        if t is bytearray:
            n = self.ba_mem[key] = bytearray_cost(len(v))
            return n
        try:
            n = v._held = v.mem_size()
        except AttributeError:  # not a value type (a test's stand-in): not counted
            return 0
        return n

    def retype(self, key: bytes, value) -> None:
        """Store ``value``, the same content as the value of the existing
        ``key`` in another representation (a string made a bytearray to be
        written into, a sorted set converted for SORT): nothing is marked
        changed, only the accounting follows the new object."""
        old = self.data[key]
        self.data[key] = value
        held = self._held(key, old)
        self.ks.mem_used += self._hold(key, value) - held

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True when it existed (an expired key counts as gone)."""
        if self.get(key) is None:
            return False
        ks = self.ks
        if ks.mem_used > ks.mem_peak:
            ks.mem_peak = ks.mem_used
        ks.mem_used -= self._held(key, self.data.pop(key)) + key_cost(key)
        if self.expires and self.expires.pop(key, None) is not None:
            ks.mem_used -= TTL_COST
        ks._mark(self, key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        """Give the existing ``key`` an absolute expiry time in ms."""
        # ``- 0`` stores an exact-size copy: a time computed by addition
        # (now + a relative TTL) keeps the spare digit its sum was allocated
        # with, a 48-byte block instead of 32 for every key with a TTL.
        e = self.expires
        n = len(e)
        e[key] = when_ms - 0
        if len(e) != n:
            self.ks.mem_used += TTL_COST
        self.ks._mark(self, key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        self.ks.mem_used -= TTL_COST
        self.ks._mark(self, key)
        return True

    def resized(self, key: bytes) -> None:
        """The accounting half of ``Keyspace.changed``, for a handler that
        marks its key before it writes into the value (so that a checkpoint
        sees the old content first) and has just written."""
        v = self.data.get(key)
        if v is None or type(v) is bytes:
            return
        ks = self.ks
        if type(v) is bytearray:
            n = bytearray_cost(len(v))
            ks.mem_used += n - self.ba_mem[key]
            self.ba_mem[key] = n
            return
        try:
            n = v.mem_size()
        except AttributeError:  # not a value type (a test's stand-in)
            return
        ks.mem_used += n - v._held
        v._held = n

    def touched(self, key: bytes) -> None:
        """Record that the value object of ``key`` was changed in place."""
        self.ks.changed(self, key)

    def clear(self, announce: bool = True, account: bool = True) -> int:
        """Empty the database. A checkpoint notices the new dict object and
        drops this database's old content, so keys are not marked one by one;
        the dirty set starts afresh, so it holds every key the new dict gets.
        ``announce`` False: ``Keyspace.flushall`` told the flush watchers once.
        ``account`` False: the caller sets ``mem_used`` itself (FLUSHALL: 0);
        otherwise this database's share is summed, O(n) like the flush, or
        ``mem_used`` is just 0 when no other database holds a key."""
        n = len(self.data)
        ks = self.ks
        ks.dirty += n
        if self.dirty is not None:
            self.dirty = set()
        if ks.watchers:
            flush = ks.flush_watchers
            for w in ks.watchers:
                f = flush.get(w)
                if f is not None:
                    if announce:
                        f(self)  # one call for the whole database
                else:
                    for key in self.data:
                        w(self, key)
        if ks.mem_used > ks.mem_peak:
            ks.mem_peak = ks.mem_used
        if account:
            others = any(d.data for d in ks.dbs if d is not self)
            ks.mem_used = ks.mem_used - self.mem_total() if others else 0
        self.data = {}
        self.expires = {}
        self.ba_mem = {}
        self.expire_pos = 0
        return n

    def mem_total(self) -> int:
        """What this database adds to ``Keyspace.mem_used``, from scratch:
        O(n), for FLUSHDB, SWAPDB, MEMORY STATS's per-database figures and
        tests (the sum of every key's charge, as the mutators kept it)."""
        held = self._held_now
        return (sum(key_cost(k) + held(k, v) for k, v in self.data.items())
                + TTL_COST * len(self.expires))

    def _held_now(self, key: bytes, v) -> int:
        t = type(v)
        if t is bytearray:
            return self.ba_mem[key]
        if t is bytes:
            return charge(v)
        return getattr(v, "_held", 0)

    # -- active expiry ------------------------------------------------------
    def expire_due(self, now: int, deadline_ns: int) -> tuple[int, bool]:
        """Delete keys due at ``now``, a sample of ``EXPIRE_SAMPLE`` entries
        at a time, while at least a tenth of a sample was due.

        (keys deleted, True when time ran out with due keys still coming).
        Deleting leaves holes and moves nothing, so the walk's position stays
        good; a table rebuild (an insertion) may move keys past it, and those
        wait for the next pass, as in Redis's sampling.
        """
        expires = self.expires
        pos = self.expire_pos
        n = 0
        # However few are due, each cycle walks at least 1/EXPIRE_PASS_SHARE
        # of the entries (in C, about 20 ns each), so a key that fell due
        # behind the walk waits at most one pass (12.8 s at hz 10), not the
        # many minutes one sample per cycle would take over a big dict.
        floor = len(expires) // EXPIRE_PASS_SHARE
        walked = 0
        while expires:
            pos, seen, keys = due(expires, pos, EXPIRE_SAMPLE, now)
            for key in keys:
                self._expire_now(key)
            n += len(keys)
            walked += seen
            if (len(keys) * 10 < seen and walked >= floor) or not seen:
                break
            if time.perf_counter_ns() >= deadline_ns:
                self.expire_pos = pos
                return n, True
        self.expire_pos = pos
        return n, False


class Keyspace(KeyspaceAccounting):
    """All databases, the effects of the current command, and counters."""

    def __init__(self, num_databases: int = NUM_DATABASES):
        self.dbs = [Database(self, i) for i in range(num_databases)]
        self.effects: list[tuple[int, list]] = []
        self.expire_on_lookup = True
        self.loading = False
        # Hooks: called with (db, key) on every change. Empty by default so
        # the hot path pays one truthiness test.
        self.watchers: list = []
        # A watcher that takes a database emptied whole as one event maps to
        # what is called instead: with (db) for FLUSHDB, once with (None) for
        # FLUSHALL.
        self.flush_watchers: dict = {}
        self.dirty = 0  # changes since the last save (rdb_changes_since_last_save)
        # The dataset's estimated size in bytes (engine.memory), current
        # after every command: what used_memory and maxmemory read.
        self.mem_used = 0
        # Its highest value, recorded before each removal (and by INFO): the
        # growth of a value in place shows here only once something is removed.
        self.mem_peak = 0
        self.expired_keys = 0
        # Set by an active expiry cycle that ran out of time while due keys
        # kept coming: the server runs the next slice soon instead of at the
        # next tick.
        self.expire_backlog = False
        # Lookups by read commands that found / did not find their key
        # (INFO keyspace_hits / keyspace_misses), counted by the read handlers.
        self.hits = 0
        self.misses = 0
        # The longest string a command may build (proto-max-bulk-len).
        self.proto_max_bulk_len = 512 * 1024 * 1024
        # The collection types' encoding thresholds (the *-max-listpack-* directives).
        self.limits = Limits()
        self.evicted_keys = 0
        # Keyspace notifications (engine.notify): the configured classes when
        # they deliver anything, else 0 -- the one test a write pays -- and
        # the callable that delivers an event, hook(class, event, db index, key).
        self.notify_flags = 0
        self.notify_hook = None
        # Lazy freeing: the engine.lazyfree.Reaper the server runs (None:
        # values are freed at once), with the lazyfree-lazy-* flags.
        self.reaper = None

    def already_expired(self, when_ms: int) -> bool:
        """Whether a write given expiry time ``when_ms`` should delete the key now.

        Commands given a time in the past (SET … PXAT, EXPIREAT, GETEX,
        RESTORE) delete the key instead, except while loading or on a replica,
        where the key is stored with its TTL and expires later, as in Redis.
        """
        return when_ms <= now_ms() and not self.loading and self.expire_on_lookup

    def emit(self, db_index: int, argv: list) -> None:
        """Record one effect: the command that reproduces a change."""
        self.effects.append((db_index, argv))

    def notify(self, cls: int, event: bytes, db_index: int, key: bytes) -> None:
        """Announce one keyspace event (callers test ``notify_flags`` first):
        delivered when its class is on, never while the log is replayed."""
        if self.notify_flags & cls and not self.loading and self.notify_hook is not None:
            self.notify_hook(cls, event, db_index, key)

    def changed(self, db: Database, key: bytes) -> None:
        """The value of ``key`` was changed in place: its size is re-read
        (O(1)) and the key marked as every mutator marks it."""
        v = db.data.get(key)
        t = type(v)
        if t is not bytes and v is not None:
            stale = db.mem_stale
            if stale is not None and t is not bytearray:
                stale.add(key)  # re-read at the next mem_settle (no maxmemory: nobody waits on it)
            elif t is bytearray:
                n = bytearray_cost(len(v))
                ba = db.ba_mem
                self.mem_used += n - ba[key]
                ba[key] = n
            else:
                try:
                    n = v.mem_size()
                except AttributeError:  # not a value type (a test's stand-in)
                    n = 0
                else:
                    h = v._held
                    if n != h:
                        self.mem_used += n - h
                        v._held = n
        self.dirty += 1
        d = db.dirty
        if d is not None:
            d.add(key)
        if self.watchers:
            for w in self.watchers:
                w(db, key)

    def _mark(self, db: Database, key: bytes) -> None:
        """``changed`` for a mutator that did its own accounting."""
        self.dirty += 1
        d = db.dirty
        if d is not None:
            d.add(key)
        if self.watchers:
            for w in self.watchers:
                w(db, key)

    def active_expire(self, budget_ms: float = 1.0) -> int:
        """One active-expiry cycle over every database, within ``budget_ms``."""
        self.expire_backlog = False
        if not self.expire_on_lookup or self.loading:
            return 0
        now = now_ms()
        deadline = time.perf_counter_ns() + int(budget_ms * 1_000_000)
        n = 0
        for db in self.dbs:
            if db.expires:
                done, more = db.expire_due(now, deadline)
                n += done
                if more:
                    self.expire_backlog = True
                    break
        return n

    def swap(self, a: int, b: int) -> None:
        self.mem_settle()  # the deferred keys are noted per database
        da, db_ = self.dbs[a], self.dbs[b]
        da.data, db_.data = db_.data, da.data
        da.expires, db_.expires = db_.expires, da.expires
        da.ba_mem, db_.ba_mem = db_.ba_mem, da.ba_mem
        da.expire_pos = db_.expire_pos = 0
        # The dicts changed places: a checkpoint rewrites both databases whole
        # (dirty None = "untracked key by key", see wal.checkpoint.trim). The
        # dicts' identities alone cannot say so: a second SWAPDB restores them.
        da.dirty = db_.dirty = None
        self.dirty += len(da.data) + len(db_.data)
        if self.watchers:
            # A key that exists in either database, before or after, changed
            # in both (what WATCH counts, as Redis does for SWAPDB).
            for d in (da, db_):
                for key in d.data:
                    for w in self.watchers:
                        w(da, key)
                        w(db_, key)

    def flushall(self) -> int:
        if self.mem_used > self.mem_peak:
            self.mem_peak = self.mem_used
        if self.watchers:
            for f in self.flush_watchers.values():
                f(None)  # every database at once
        n = sum(db.clear(False, False) for db in self.dbs)
        self.mem_used = 0
        return n
