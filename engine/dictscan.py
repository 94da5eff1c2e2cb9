"""Walking a changing dict by entry position: SCAN in O(COUNT) per call.

A CPython dict keeps its entries in an array in insertion order: a new key is
appended, a deleted key leaves a hole, and nothing moves until the table is
rebuilt (an insertion that finds the array full), which packs the live
entries to the front in the same order. So a key only ever moves towards the
front. ``engine._dictscan`` reads the entries by position:

* ``below(d, cursor, count)`` is SCAN's step: it walks from the position
  ``cursor`` (the end, for 0) towards the front, taking up to ``count`` keys
  and passing at most ``10 * count`` holes, and returns the position where it
  stopped, 0 at the front. Every key present for the whole walk is met:
  keys inserted during it land behind it, and a rebuild only moves the keys
  still ahead of it further ahead. A rebuild can move keys already returned
  ahead again (they may come twice, as SCAN allows), and the walk ends after
  at most as many positions as the table had when it started, however the
  dict grows meanwhile. A cursor is a plain integer: the server keeps
  nothing per scan, and a client may reconnect between calls.
* ``due(d, pos, count, now)`` walks a dict of expiry times forwards and lists
  the keys whose time has passed (the active expiry cycle).
* ``pick(d, pos)`` is the first live key at or after ``pos`` (RANDOMKEY).
* ``layout(d)`` is (entries in use, holes included; live keys).
* ``sample(d, count, ages, base, clock, mask, floor)`` draws keys at uniform
  random positions (holes rejected) for eviction, scoring each by its LRU idle
  time when given the clocks (``engine.evict``).

The same walk serves every dict-backed value (HSCAN, SSCAN, ZSCAN).
"""

from __future__ import annotations

from engine._dictscan import below, due, layout, pick, sample

__all__ = ["below", "due", "layout", "pick", "sample"]
