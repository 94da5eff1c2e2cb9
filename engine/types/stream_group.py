"""A stream's consumer groups: the PEL, the consumers, and Redis 7's entries-read and lag.

A ``Group`` has ``last_id`` (last delivered ID), ``entries_read`` (None when
unknown), ``pel`` (an ``IdIndex`` of ID -> ``Pending``: its consumer, last
delivery time in ms, delivery count) and ``consumers`` (name -> ``Consumer``,
each with an ``IdIndex`` of the IDs it owns).

``IdIndex`` keeps IDs in order with O(1) membership, insertion at the end
and removal: a dict for membership and values, and a list of the IDs in
order. Removing the first ID moves ``head`` past it (and past any stale
slots after it); removing another leaves a stale slot until the stale ones
outnumber the live (then the list is rebuilt, amortised O(1) per removal).
Deliveries come in ID order, so an insertion is an append; an ID older than
the last (a claim with FORCE, a group moved back by SETID) is inserted by
bisection. A work queue (deliver at the end, acknowledge at the front) so
costs O(1) per entry, and a range read from the front never walks what was
acknowledged; readers of a range bisect from ``head`` and skip stale slots.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import repeat

_MIN_ID = (0, 0)
_COMPACT_AFTER = 32  # stale slots tolerated whatever the live count


class IdIndex:
    __slots__ = ("map", "order", "head", "stale")

    def __init__(self):
        self.map: dict = {}
        self.order: list = []
        self.head = 0  # order[:head] is all stale (removed from the front)
        self.stale = 0  # stale slots in order[head:]

    def __len__(self) -> int:
        return len(self.map)

    def __contains__(self, i) -> bool:
        return i in self.map

    def __getitem__(self, i):
        return self.map[i]

    def get(self, i):
        return self.map.get(i)

    def __setitem__(self, i, v) -> None:
        m = self.map
        if i not in m:
            o = self.order
            if len(o) == self.head or i > o[-1]:
                o.append(i)
            else:
                j = bisect_left(o, i, self.head)
                if j < len(o) and o[j] == i:
                    self.stale -= 1  # its stale slot comes back to life
                elif j == self.head and j:
                    self.head = j - 1  # the slot before the head is free
                    o[j - 1] = i
                else:
                    o.insert(j, i)
        m[i] = v

    def add(self, i) -> None:
        self[i] = True

    def beyond(self, i) -> bool:
        """True when ``i`` is greater than every ID the index holds (or ever held since its
        last compaction): then IDs from ``i`` on are all new to it."""
        o = self.order
        return len(o) == self.head or i > o[-1]

    def put_many(self, ids, values) -> None:
        """Set ``ids[k]`` to ``values[k]``, the IDs in increasing order (a delivery's): when
        they all lie beyond the index, one extend and one update (C loops)."""
        o = self.order
        if len(o) == self.head or ids[0] > o[-1]:
            o.extend(ids)
            self.map.update(zip(ids, values))
        else:
            for i, v in zip(ids, values):
                self[i] = v

    def pop(self, i, default=None):
        m = self.map
        v = m.pop(i, default)
        if v is default:
            return v
        o = self.order
        h = self.head
        if o[h] == i:  # removed at the front (a work queue's acknowledgement): the head moves on
            h += 1
            n = len(o)
            while h < n and o[h] not in m:
                h += 1
                self.stale -= 1
            self.head = h
            if h > _COMPACT_AFTER and 2 * h > n:
                del o[:h]
                self.head = 0
        else:
            self.stale += 1
            if self.stale > _COMPACT_AFTER and self.stale > len(m):
                self.order = [x for x in o[h:] if x in m]
                self.head = self.stale = 0
        return v

    def discard(self, i) -> None:
        self.pop(i)

    def pop_many(self, ids) -> list:
        """``pop`` of each of ``ids``: the values removed (misses left out), as ``(id, value)``.
        The map pops in one C loop; the slots then go stale together, and the head moves
        past those at the front (an acknowledgement of the oldest deliveries)."""
        m = self.map
        got = [p for p in zip(ids, map(m.pop, ids, repeat(None))) if p[1] is not None]
        if got:
            o = self.order
            h = self.head
            n = len(o)
            stale = self.stale + len(got)
            while h < n and o[h] not in m:
                h += 1
                stale -= 1
            self.head, self.stale = h, stale
            if h > _COMPACT_AFTER and 2 * h > n:
                del o[:h]
                self.head = 0
            elif stale > _COMPACT_AFTER and stale > len(m):
                self.order = [x for x in o[h:] if x in m]
                self.head = self.stale = 0
        return got

    def irange(self, lo, hi):
        """The IDs from ``lo`` to ``hi`` (both included), in order."""
        o, m = self.order, self.map
        j = bisect_left(o, lo, self.head)
        n = len(o)
        while j < n:
            i = o[j]
            if i > hi:
                return
            if i in m:
                yield i
            j += 1

    def __iter__(self):
        m = self.map
        return (i for i in self.order[self.head:] if i in m)

    def items(self):
        m = self.map
        return ((i, m[i]) for i in self.order[self.head:] if i in m)

    def values(self):
        return self.map.values()

    def first(self):
        return next(iter(self), None)

    def last(self):
        m = self.map
        return next((i for i in reversed(self.order) if i in m), None)


class Pending:
    """One entry of a group's PEL: who has it, since when, how often delivered."""

    __slots__ = ("consumer", "time", "count")

    def __init__(self, consumer, time: int, count: int):
        self.consumer = consumer
        self.time = time
        self.count = count


class Consumer:
    __slots__ = ("name", "seen", "active", "pel")

    def __init__(self, name: bytes, now: int):
        self.name = name
        self.seen = now  # last attempt (seen-time)
        self.active = -1  # last successful read or claim (active-time), -1 never
        self.pel = IdIndex()


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id, entries_read):
        self.last_id = last_id
        self.entries_read = entries_read  # None: unknown
        self.pel = IdIndex()
        self.consumers: dict[bytes, Consumer] = {}


# --- entries-read and lag (Redis 7's counters) ---------------------------------------

def has_tombstones(s, start) -> bool:
    """Whether an entry deleted by XDEL may lie at or after ``start``."""
    if not s.length or s.max_deleted == _MIN_ID:
        return False
    return s.max_deleted >= start


def estimate_read(s, i):
    """How many entries were added up to ID ``i`` (its logical position), None when unknown."""
    if not s.entries_added:
        return 0
    if not s.length and i <= s.last_id:
        return s.entries_added
    if i == s.last_id:
        return s.entries_added
    if i > s.last_id:
        return None
    if s.max_deleted == _MIN_ID or s.max_deleted < s.first_id:
        if i < s.first_id:
            return s.entries_added - s.length
        if i == s.first_id:
            return s.entries_added - s.length + 1
    return None


def lag(s, g: Group):
    """XINFO GROUPS' lag: entries not yet read by the group, None when unknown."""
    if not s.entries_added:
        return 0
    if g.entries_read is not None and not has_tombstones(s, g.last_id):
        return s.entries_added - g.entries_read
    n = estimate_read(s, g.last_id)
    return None if n is None else s.entries_added - n
