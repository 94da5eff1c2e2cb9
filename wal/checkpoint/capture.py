"""Capture on the event loop: the changed keys' values, consistent at one offset.

Role: a ``Capture`` takes, on the event-loop thread between commands, the
current value and expiry of every key changed since the previous checkpoint
(or of every key, for a database taken whole), and hands the writer a
``Snapshot``. The server's background checkpoints take it a chunk per loop
turn (``step``), then the last round at once (``finish``).

Invariants: values are taken with a few C-level passes
(``map(dict.get, keys)``), no per-key Python code, except that a chunk
holding a ``bytearray`` (a string written in place) or a collection has
those copied on the loop (``bytes``, or the collection's COPY copy, which
shares only immutable pieces), since the loop changes them in place while
the writer encodes them (a big collection costs a C-level container copy
there, once per checkpoint that takes it); a key changed after its
chunk was taken is in the next round's dirty set and is taken again, so the
snapshot ``finish`` returns is the keyspace exactly as of that loop turn;
``Capture`` only reads the keyspace, apart from swapping the dirty sets out.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import TYPE_CHECKING

from engine.dictscan import below
from engine.types import copy_value
from wal.checkpoint.tracker import KeyLog, changes

if TYPE_CHECKING:
    from wal.checkpoint import Checkpointer


_IMMUTABLE = frozenset((bytes, type(None)))


def _frozen(value):
    """``value`` as the writer may read it from another thread."""
    t = type(value)
    if t is bytes or value is None:
        return value
    if t is bytearray:
        return bytes(value)
    # A collection's COPY copy shares only immutable pieces with it (member
    # bytes, scores, packed small encodings): a C-level container copy on the
    # loop (about 15 ms for a million-field hash), encoded later by the
    # writer thread. Encoding it here took 1.9 s with every client waiting.
    return copy_value(value)


class Snapshot:
    """The keys to write, captured at one consistent point.

    ``full``: replace the whole checkpoint. ``parts``, applied in order: either
    ``(index, True, chunks)`` — the database captured whole, ``chunks`` a list
    of ``(keys, values, expiries)`` — or ``(index, False, keys, values,
    expiries)``, changed keys. A value of None means the key was deleted;
    ``expiries`` is None when the database had no TTLs.
    """

    __slots__ = ("full", "parts", "spent", "functions")

    def __init__(self, full: bool, parts: list, spent: list | None = None, functions: list | None = None):
        self.full = full
        self.parts = parts
        # The function libraries' code (``ks.scripting.codes()``), opaque
        # here; None when the keyspace carries none.
        self.functions = functions
        # Key lists and sets the capture went through: big, and freed a piece
        # at a time by the writer rather than at once on the event loop.
        self.spent = spent if spent is not None else []

    def __len__(self) -> int:
        return sum(sum(len(c[0]) for c in p[2]) if p[1] else len(p[2]) for p in self.parts)


class _Walk:
    """The keys of a database taken whole, a chunk per loop turn, walked by
    entry position (``engine.dictscan.below``, SCAN's walk).

    The walk meets every key present from its first chunk to its last, while
    keys are added, removed and overwritten and the dict rebuilds its table;
    a key added or removed meanwhile is in the next round's dirty set anyway,
    and one a rebuild moves ahead again is taken twice (the writer keeps the
    later value). So it never lists the dict at once, and costs each turn
    its chunk whatever happens between turns. It walks the dict it started
    on: a FLUSHDB or SWAPDB since queues a later part that replaces this one.
    """

    __slots__ = ("data", "pos", "done")

    def __init__(self, db):
        self.data = db.data
        self.pos = 0  # the walk starts at the end (below's cursor 0)
        self.done = False

    def take(self, n: int | None) -> list:
        """The next ``n`` keys (all that are left for None); fewer only at the end."""
        out: list = []
        data = self.data
        while not self.done and (n is None or len(out) < n):
            want = len(data) + 1 if n is None else n - len(out)
            self.pos, keys = below(data, self.pos, want)
            out += keys
            self.done = self.pos == 0
        return out


class Capture:
    """A capture spread over many event-loop turns, so clients never wait long.

    Each *round* swaps the dirty sets (or KeyLogs) out (keys changed since
    the previous round) and queues their keys; a database flushed since
    queues them behind a part that drops its old content. A database captured
    whole (first capture of a keyspace not loaded here, SWAPDB, a dropped
    KeyLog) queues a ``_Walk`` of its dict behind such a part: a chunk per
    turn too, whatever changes between turns.
    ``step(n)`` takes the current value and expiry of up to ``n`` queued keys.
    A key changed after its chunk was taken is in the next round's dirty set,
    so it is taken again, later parts overriding earlier ones when written.
    ``finish()`` runs one last round at once: every key changed since the
    previous round is taken in the same loop turn, so the snapshot is the
    keyspace exactly as of that moment (the log offset of that turn). The
    caller runs more chunked rounds first while the dirty sets are large.
    """

    def __init__(self, cp: Checkpointer, ks, full: bool):
        self.cp = cp
        self.ks = ks
        self.full = full
        self.parts: list = []
        self.queue: list = []  # [db index, iterator of keys, chunks of a whole database or None, its source]
        self.spent: list = []  # sources gone through (see Snapshot.spent)
        self.rounds = 0
        self.next_round()

    def next_round(self) -> None:
        """Swap the dirty sets out and queue their keys."""
        first = self.rounds == 0
        self.rounds += 1
        tables = self.cp._tables
        for i, db in enumerate(self.ks.dbs):
            keys = db.dirty
            overflowed = keys is None  # trim() gave up tracking it key by key
            if overflowed or keys or type(keys) is KeyLog:
                db.dirty = set()
                # The swapped-out set or KeyLog is changed no more: iterate it as it is.
                source = chain(keys.earlier, keys) if type(keys) is KeyLog else keys
            else:
                # Nothing changed: the empty set stays in place, and is not
                # the capture's to free.
                source = keys = ()
            data = db.data
            replaced = data is not tables[i]
            tables[i] = data
            if (self.full and first) or overflowed:
                # Every key, walked a chunk per turn (see _Walk).
                if data or not (self.full and first):  # a later round must drop what it took
                    chunks: list = []
                    self.parts.append((i, True, chunks))
                    self.queue.append([i, _Walk(db), chunks, None])
            elif replaced:
                # FLUSHDB/FLUSHALL since the last round: the old content goes,
                # and every key the new dict holds was added since the clear,
                # which started a fresh dirty set (Database.clear).
                chunks = []
                self.parts.append((i, True, chunks))
                self.queue.append([i, iter(source), chunks, keys])
            elif source:
                self.queue.append([i, iter(source), None, keys])

    def dirty_keys(self) -> int:
        """Keys a next round would queue (a database to take whole: all its keys)."""
        n = 0
        for db in self.ks.dbs:
            d = db.dirty
            if d is None:
                n += len(db.data)
            else:
                n += changes(d)
        return n

    def step(self, budget: int | None) -> bool:
        """Take up to ``budget`` queued keys (None: all); True when none are left."""
        queue = self.queue
        while queue and (budget is None or budget > 0):
            i, keys, chunks, source = queue[0]
            if type(keys) is _Walk:
                chunk = keys.take(budget)
                if budget is not None:
                    budget -= len(chunk)
            elif budget is None:
                chunk = list(keys)
            else:
                chunk = list(islice(keys, budget))
                budget -= len(chunk)
            exhausted = budget is None or budget > 0  # fewer keys than asked for
            if type(source) is KeyLog:
                # A key changed twice in a chunk is taken once. (Across
                # chunks it may be taken twice, the writer keeping the later
                # value: checking every key against those taken before cost
                # the loop as much as taking it again.)
                chunk = list(set(chunk))
            if exhausted:
                queue.pop(0)
                if type(keys) is not _Walk:
                    self.spent.append(source)
            if not chunk:
                continue
            db = self.ks.dbs[i]
            data = db.data
            expires = db.expires
            values = list(map(data.get, chunk))  # None: deleted since
            if not set(map(type, values)) <= _IMMUTABLE:
                # A string written in place (a bytearray) and a collection
                # are changed in place by the loop while the writer thread
                # reads the snapshot: take copies of them as they are now.
                # (A later change marks the key again, so a later round
                # retakes it.)
                values = [_frozen(v) for v in values]
            expiries = list(map(expires.get, chunk)) if expires else None
            if chunks is None:
                self.parts.append((i, False, chunk, values, expiries))
            else:
                chunks.append((chunk, values, expiries))
        return not queue

    def finish(self) -> Snapshot:
        """The last round, taken at once: consistent as of this moment."""
        self.next_round()
        self.step(None)
        return self.snapshot()

    def snapshot(self) -> Snapshot:
        scripting = getattr(self.ks, "scripting", None)
        return Snapshot(self.full, self.parts, self.spent, scripting.codes() if scripting is not None else None)
