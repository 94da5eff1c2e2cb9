"""Lazy freeing: big values taken out of the keyspace, emptied a slice at a time.

In CPython the last reference to a value frees it at once, every element
with it: a set of ten million members dropped by DEL holds the event loop
for hundreds of milliseconds, and a thread cannot help (freeing needs the
GIL). So UNLINK, FLUSHALL/FLUSHDB ASYNC and the ``lazyfree-lazy-*``
directives hand what they detach to a ``Reaper`` instead: it keeps the value
alive and empties its internal containers a batch at a time (``dict.popitem``,
``set.pop`` and ``deque.pop`` called from C through ``starmap``, ``del
list[-k:]``), a slice of ``step``'s time budget per turn of the loop, until
only the empty shells are left, then drops them. The keyspace hands over
what it removes itself when the directive says so (``Reaper`` flags): an
expired value (``lazyfree-lazy-expire``), an evicted one (``-eviction``), a
collection a write replaced (``-server-del``).

What is taken apart, per type (``_parts``; the order matters where two
containers hold the same objects: the one whose elements die last goes last):

* set (hashtable): its dict; hash (hashtable): its dict;
* list (quicklist): its deque of nodes (inner nodes are one packed ``bytes``
  each, the two end nodes a short list);
* sorted set (skiplist, ``zset_runs.Runs``): the member -> score dict, then
  the runs of members (lists of up to 2000: a batch takes fewer of them), the
  runs of scores (arrays) and the index lists;
* stream: its node lists, then each consumer's PEL, each group's PEL and
  consumers, then the groups.

Packed encodings (listpack, intset, strings, HyperLogLogs) are one buffer each
and free at once. How big a value is to free is its ``effort`` (Redis's
measure: elements of a hashtable, nodes of a quicklist, …); values of effort
``LAZYFREE_THRESHOLD`` or less are freed at once, as Redis frees them.

Invariants: a value is taken apart only after it left every database (the
caller hands it over once no key holds it; a checkpoint capture holds copies,
never a live collection); a database handed over whole (``free_database``) is
popped a key at a time and each big value in it queued on its own, so nothing
a batch drops is big (the checkpoint's record of its changed keys goes along).
``pending`` counts what waits (a value, or each key of a flushed database),
``freed`` what the reaper has freed since the start: Redis's
``lazyfree_pending_objects`` and ``lazyfreed_objects``.

The reaper does no I/O and knows no event loop: the server (``server.lazyfree``)
sets ``wake``, called when work arrives, and runs ``step`` from its loop.
Without a reaper (``ks.reaper`` None, or while the log is replayed) values
are freed at once.
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from itertools import repeat, starmap

from engine.types.hash import Hash
from engine.types.list import List
from engine.types.list_quicklist import Quicklist
from engine.types.set import HASHTABLE, Set
from engine.types.stream import Stream
from engine.types.zset import ZSet

LAZYFREE_THRESHOLD = 64  # a value of this effort or less is freed at once (Redis's)
BATCH = 1024  # elements dropped between two looks at the clock

_sink = deque(maxlen=0).extend  # consumes an iterator in C, keeping nothing


def effort(value) -> int:
    """How much freeing ``value`` costs, in Redis's terms (1 for a packed value)."""
    t = type(value)
    if t is Set:
        return len(value.data) if value.enc == HASHTABLE else 1
    if t is Hash:
        d = value._d
        return len(d) if type(d) is dict else 1
    if t is List:
        q = value._v
        return len(q.nodes) if type(q) is Quicklist else 1
    if t is ZSet:
        r = value._r
        return len(r.d) if r is not None else 1
    if t is Stream:
        n = len(value._nodes)
        if value.groups:
            for g in value.groups.values():
                n += 1 + len(g.pel) + len(g.consumers)
        return n
    return 1


def _parts(value) -> list:
    """The containers of ``value`` to empty, the first to empty last."""
    t = type(value)
    if t is Set:
        return [value.data]
    if t is Hash:
        return [value._d]
    if t is List:
        return [value._v.nodes]
    if t is ZSet:
        r = value._r
        # The dict goes first: the member runs then hold the last reference to each member.
        return [r._tree, r._maxm, r._sc, r._mem, r.d]
    if t is Stream:
        parts = []
        if value.groups:
            parts.append(value.groups)
            for g in value.groups.values():
                parts += (g.consumers, g.pel.order, g.pel.map)
                for c in g.consumers.values():
                    parts += (c.pel.order, c.pel.map)
        parts += (value._live, value._dead, value._firsts, value._lasts, value._nodes)
        return parts
    return []


def _drain(c) -> None:
    """Drop up to a batch of the elements of container ``c`` (not empty)."""
    t = type(c)
    if t is dict:
        _sink(starmap(c.popitem, repeat((), min(BATCH, len(c)))))
    elif t is deque or t is set:
        _sink(starmap(c.pop, repeat((), min(BATCH, len(c)))))
    elif t is array:
        del c[:]  # one buffer
    else:  # a list; its elements may be lists themselves (a sorted set's runs)
        last = c[-1]
        weight = len(last) + 1 if type(last) is list else 1
        del c[-max(1, BATCH // weight):]


class _Job:
    """One value (or one database) being taken apart."""

    __slots__ = ("value", "parts", "database")

    def __init__(self, value, parts: list, database: bool):
        self.value = value  # kept alive until its containers are empty
        self.parts = parts
        self.database = database  # parts[0] is a database's data, its values looked at (the rest after it)


class Reaper:
    """Values waiting to be freed, freed a batch at a time by ``step``."""

    def __init__(self):
        self.jobs: deque[_Job] = deque()
        self.pending = 0
        self.freed = 0
        self.wake = None  # called when work arrives (the server schedules ``step``)
        self.data_batch = BATCH  # keys a batch of a flushed database pops (see _drain_data)
        # The lazyfree-lazy-* directives (server.lazyfree keeps them up to date).
        self.user_del = False
        self.user_flush = False
        self.server_del = False
        self.expire = False
        self.eviction = False

    def free(self, value) -> bool:
        """Take ``value`` (out of the keyspace) to free it later: False when
        it is small enough to free at once (the caller just drops it)."""
        if effort(value) <= LAZYFREE_THRESHOLD:
            return False
        self.jobs.append(_Job(value, _parts(value), False))
        self.pending += 1
        if self.wake is not None:
            self.wake()
        return True

    def free_database(self, data: dict, expires: dict, dirty=None) -> None:
        """Take a database's old dicts (FLUSHDB/FLUSHALL ASYNC) to free later,
        and the checkpoint's old record of its changed keys (``dirty``: a set,
        or a KeyLog and the set it grew from): a million keys in a set took
        35 ms to free."""
        if not data:
            return
        parts = [data, expires]
        if isinstance(dirty, list):  # a KeyLog (wal.checkpoint.tracker): the set it grew from goes too
            earlier = getattr(dirty, "earlier", None)
            if type(earlier) is set:
                parts.append(earlier)
            parts.append(dirty)
        elif type(dirty) is set:
            parts.append(dirty)
        self.jobs.append(_Job(None, parts, True))
        self.pending += len(data)
        if self.wake is not None:
            self.wake()

    def step(self, budget_ns: int) -> bool:
        """Free for about ``budget_ns`` nanoseconds; True while work is left."""
        deadline = time.perf_counter_ns() + budget_ns
        jobs = self.jobs
        clock = time.perf_counter_ns
        while jobs:
            job = jobs[0]
            parts = job.parts
            while parts:
                c = parts[-1]
                if not c:
                    # Dropping an emptied dict or set frees its table, which
                    # never shrank: a few ms per million slots, so it ends
                    # the step when the budget is spent, and the next
                    # table waits for the next step.
                    parts.pop()
                    if clock() >= deadline:
                        return True
                    continue
                if job.database and len(parts) == 1:  # the data dict (after the rest)
                    self._drain_data(c)
                else:
                    _drain(c)
                if clock() >= deadline:
                    return True
            jobs.popleft()
            if not job.database:
                self.pending -= 1
                self.freed += 1
            job.value = None  # an empty shell now: freed at once
            if clock() >= deadline:
                return bool(jobs)
        return False

    def _drain_data(self, data: dict) -> None:
        """A batch of a flushed database's keys: small values dropped, each
        big one queued as a job of its own. A batch of keys whose small values
        are collections (up to 64 elements each) is cut to keep what it drops
        near ``BATCH`` elements, and grows back with plain strings."""
        n = min(self.data_batch, len(data))
        small = n
        dropped = 0
        # One (key, value) pair alive at a time: a list of a batch of them
        # made the collector move them to its older generations, and its full
        # passes walk every container of the dataset (77 ms at 10M keys).
        for _, v in starmap(data.popitem, repeat((), n)):
            if type(v) is not bytes:
                e = effort(v)
                if e > LAZYFREE_THRESHOLD:
                    self.jobs.append(_Job(v, _parts(v), False))
                    small -= 1
                else:
                    dropped += e
        self.pending -= small
        self.freed += small
        self.data_batch = max(16, BATCH * n // (n + dropped)) if dropped else BATCH

    def finish(self) -> None:
        """Free everything now (tests, and a server going down)."""
        while self.step(1 << 62):
            pass


# --- what the command handlers call ----------------------------------------------

def reaper(ks) -> Reaper | None:
    """The keyspace's reaper, or None when values must be freed at once
    (no reaper, or the log being replayed on the loader's thread)."""
    r = ks.reaper
    return None if r is None or ks.loading else r


def release(ks, value) -> None:
    """``value`` just left the keyspace: freed later when it is big."""
    r = reaper(ks)
    if r is not None:
        r.free(value)


def user_del(ks) -> bool:
    """Whether DEL frees as UNLINK does (lazyfree-lazy-user-del)."""
    r = ks.reaper
    return r is not None and r.user_del


def user_flush(ks) -> bool:
    """Whether FLUSHALL/FLUSHDB without SYNC|ASYNC free lazily (lazyfree-lazy-user-flush)."""
    r = ks.reaper
    return r is not None and r.user_flush


def flush_database(ks, db) -> None:
    """Empty ``db`` now (``Database.clear``), its old contents freed later."""
    r = reaper(ks)
    data, expires, dirty = db.data, db.expires, db.dirty
    others = [d for d in ks.dbs if d is not db and d.data]
    if others and sum(len(d.data) for d in others) < len(data):
        # Database.clear would sum this database's memory charges to take
        # them out of mem_used (0.6 s for a million keys): summing the smaller
        # others' from scratch gives the same figure, in time of their size.
        db.clear(account=False)
        ks.mem_used = sum(d.mem_total() for d in others)
    else:
        db.clear()
    if r is not None:
        r.free_database(data, expires, dirty if db.dirty is not dirty else None)


def flush_all(ks) -> None:
    """``Keyspace.flushall`` with every database's old contents freed later."""
    r = reaper(ks)
    old = [(db, db.data, db.expires, db.dirty) for db in ks.dbs]
    ks.flushall()
    if r is not None:
        for db, data, expires, dirty in old:
            r.free_database(data, expires, dirty if db.dirty is not dirty else None)
