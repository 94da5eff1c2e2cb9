"""The sorted set: members ordered by (score, member bytes), one score each.

Two encodings behind one interface, as Redis has them:

* ``listpack`` (small): the pairs packed into one ``bytes`` object,
  ``marshal`` (format 2) of the flat tuple ``(m0, …, mn-1, s0, …, sn-1)``:
  the members in order, then their scores. A command decodes it (C speed),
  bisects or slices the tuple and packs a new one: O(n) for n ≤
  ``zset-max-listpack-entries``, as Redis's listpack is, at a few hundred
  bytes a key instead of a dict's kilobyte. A score that is an integer in
  the int32 range is kept as an ``int`` (5 marshal bytes instead of 9; -0
  becomes 0, as in Redis's listpack) and read back as a float: nothing
  outside this module ever sees the int. The member count is read from the
  marshal header without decoding (``_count``).
* ``skiplist`` (large): ``engine.types.zset_runs.Runs``, a dict member ->
  score plus the (score, member) order as short runs of contiguous scores:
  O(1) ZSCORE, O(log n) insert, delete, rank and range by score, lex and
  index.

A set converts small -> large once it holds more than
``zset-max-listpack-entries`` members or is given a member longer than
``zset-max-listpack-value`` bytes, and never back, except that a set built
whole (a store command's result, an RDB load) takes the small encoding when
it fits, as Redis's ``zsetConvertToListpackIfNeeded`` does.

Order: ascending score, ties by member bytes (memcmp), exactly Redis's. Lex
ranges assume every member has the same score, as Redis documents; on a set
with mixed scores they answer what Redis answers (``lex_span``).

Invariants: a ZSet is never empty once stored (the commands delete an
emptied key); exactly one of ``_lp`` and ``_r`` is set; every score handed
out is a float.
"""

from __future__ import annotations

import marshal
from bisect import bisect_left, bisect_right
from math import inf

from engine.memory import BYTES_HEADER, DICT_ENTRY, DICT_OBJECT, FLOAT, LIST_SLOT, object_cost, sample_cost, slack
from engine.types import register
from engine.types.zset_runs import Runs

_I32 = 2.0**31


def _lex_scan(members, lo, hi, reverse: bool, skip: int):
    """Redis's listpack lex search over members not in lex order: (start, stop).

    From the first member in range (the last if ``reverse``), ``skip``
    members are passed over unchecked, as Redis passes over a LIMIT offset,
    and the span goes on while members stay within the far bound."""
    def gte(m):
        return lo is None or (m > lo[0] if lo[1] else m >= lo[0])

    def lte(m):
        return hi is True or (m < hi[0] if hi[1] else m <= hi[0])
    n = len(members)
    if not gte(members[-1]) or not lte(members[0]):
        return 0, 0
    if reverse:
        i = n - 1
        while not lte(members[i]):
            i -= 1
        if not gte(members[i]):
            return 0, 0
        i -= skip
        j = i + 1
        while j > 0 and gte(members[j - 1]):
            j -= 1
        return (j, i + 1) if j <= i else (0, 0)
    i = 0
    while not gte(members[i]):
        i += 1
    if not lte(members[i]):
        return 0, 0
    i += skip
    j = i
    while j < n and lte(members[j]):
        j += 1
    return (i, j) if i < j else (0, 0)

def _kept(s: float):
    """A score as the listpack tuple keeps it: an integral one in int32 as an int."""
    return int(s) if s.is_integer() and -_I32 <= s < _I32 else s


def _pack(t: tuple) -> bytes:
    # Format 2: format 3 and later mark every object met more than once (our
    # members, shared with the command's arguments) for back-references,
    # which made dumps twice as slow and loads a quarter slower. The copy is
    # exact-size: dumps shrinks its grown buffer in place, which left a
    # 10-member set in a 256-byte block instead of a 224-byte one.
    return bytes(memoryview(marshal.dumps(t, 2)))


_EMPTY = _pack(())


def _from_pairs(pairs) -> bytes:
    """The listpack bytes of sorted (kept score, member) pairs."""
    if not pairs:
        return _EMPTY
    ss, ms = zip(*pairs)
    return _pack(ms + ss)


def _count(buf: bytes) -> int:
    """The member count from the marshal header: ``(`` and the tuple's 2n
    items as 4 little-endian bytes."""
    return int.from_bytes(buf[1:5], "little") >> 1


def _pairs(t: tuple, a: int, b: int) -> list:
    """(float score, member) pairs of positions a <= i < b of the tuple ``t``."""
    n = len(t) >> 1
    return list(zip(map(float, t[n + a:n + b]), t[a:b]))


def _where(t: tuple, n: int, s, m: bytes) -> int:
    """The position where (s, m) goes among the ``n`` pairs of ``t``."""
    j = bisect_left(t, s, n, 2 * n)
    if j < 2 * n and t[j] == s:
        return bisect_left(t, m, j - n, bisect_right(t, s, j, 2 * n) - n)
    return j - n


def _insert(t: tuple, n: int, s: float, m: bytes) -> tuple:
    j = _where(t, n, s, m)
    return t[:j] + (m,) + t[j:n + j] + (_kept(s),) + t[n + j:]


def _delete(t: tuple, n: int, i: int) -> tuple:
    return t[:i] + t[i + 1:n + i] + t[n + i + 1:]


def _index(t: tuple, n: int, m: bytes) -> int:
    """The position of member ``m`` among the ``n`` of ``t``, or -1."""
    try:
        return t.index(m, 0, n)
    except ValueError:
        return -1


_OBJECT = object_cost(5)
_PACKED = _OBJECT + slack(BYTES_HEADER + 8)  # a listpack beyond its length (8: the average block rounding)
_BIG = _OBJECT + DICT_OBJECT
# A skiplist member beyond its bytes: its dict entry, its score's float, and
# its places in a run (a double in the scores array, a pointer in the members list).
_PER_MEMBER = DICT_ENTRY + FLOAT + 8 + LIST_SLOT


class ZSet:
    # _held: the charge Keyspace.mem_used counts this set with; _per, _at:
    # a skiplist's sampled cost per member and the count that resamples it.
    __slots__ = ("_lp", "_r", "_held", "_per", "_at")

    def mem_size(self, samples: int | None = None) -> int:
        """Approximate bytes (engine.memory), O(1) amortised: the packed
        bytes, or members x (their dict entry, score and run places + a
        sampled member)."""
        lp = self._lp
        if lp is not None:
            n = len(lp)
            return n + (n >> 3) + _PACKED  # engine.memory.slack
        d = self._r.d
        n = len(d)
        if samples is not None:  # MEMORY USAGE SAMPLES: that many members now (0: all)
            return _BIG + n * (_PER_MEMBER + sample_cost(d, samples or n))
        if n >= self._at or n < self._at >> 2:
            self._per = _PER_MEMBER + sample_cost(d)
            self._at = 2 * n or 1
        return _BIG + n * self._per

    def __init__(self, pairs=(), limits=None):
        """A set of ``pairs`` ((score, member), members distinct), small when it fits ``limits``."""
        self._at = 0
        pairs = sorted(pairs)
        if limits is None or _fits(pairs, limits):
            self._lp = _from_pairs([(_kept(s), m) for s, m in pairs])
            self._r = None
        else:
            self._big(pairs)

    def _big(self, pairs) -> None:
        self._lp = None
        self._r = Runs(pairs)

    # -- reading -------------------------------------------------------------
    @property
    def encoding(self) -> str:
        return "listpack" if self._lp is not None else "skiplist"

    def __len__(self) -> int:
        if self._lp is not None:
            return _count(self._lp)
        return len(self._r.d)

    def pairs(self):
        """Every (score, member), in order: a list (small) or the ``Runs`` (large: a sequence)."""
        if self._lp is not None:
            t = marshal.loads(self._lp)
            return _pairs(t, 0, len(t) >> 1)
        return self._r

    def items(self) -> list:
        """[(member, score), …] in order."""
        return [(m, s) for s, m in self.pairs()]

    def score(self, member: bytes):
        if self._lp is not None:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            i = _index(t, n, member)
            return None if i < 0 else t[n + i] + 0.0
        return self._r.d.get(member)

    def scores(self, members) -> list:
        d = self.score_map()
        return [d.get(m) for m in members]

    def score_map(self) -> dict:
        """member -> score (a new dict when small; the live one when large: do not change it)."""
        if self._lp is not None:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            return dict(zip(t[:n], map(float, t[n:])))
        return self._r.d

    def rank(self, member: bytes):
        """The 0-based ascending rank of ``member`` and its score, or None."""
        if self._lp is not None:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            i = _index(t, n, member)
            return None if i < 0 else (i, t[n + i] + 0.0)
        r = self._r
        s = r.d.get(member)
        if s is None:
            return None
        return r.rank(s, member), s

    def slice(self, start: int, stop: int) -> list:
        """(score, member) pairs at positions start <= i < stop (already clamped)."""
        if self._lp is not None:
            return _pairs(marshal.loads(self._lp), start, stop)
        return self._r.slice(start, stop)

    def score_span(self, lo, lo_ex, hi, hi_ex):
        """(start, stop) positions of the scores from ``lo`` to ``hi`` (each exclusive or not)."""
        if self._lp is None:
            r = self._r
            a = r.bisect_score(lo, lo_ex)
            return a, max(a, r.bisect_score(hi, not hi_ex))
        t = marshal.loads(self._lp)
        n = len(t) >> 1
        a = (bisect_right if lo_ex else bisect_left)(t, lo, n, 2 * n)
        b = (bisect_left if hi_ex else bisect_right)(t, hi, n, 2 * n)
        return a - n, max(a, b) - n

    def lex_span(self, lo, hi, reverse: bool = False, skip: int = 0):
        """(start, stop) positions of a lex range, less its first ``skip``
        members in reply order (a LIMIT offset >= 0); bounds are (member,
        exclusive) or '-'/'+' as None/True.

        Where every member has one score this is exact. On mixed scores it
        gives what Redis gives: the small encoding is scanned as Redis scans
        its listpack (from the head to the first member >= min, then on while
        <= max; from the tail when ``reverse``), the large one is bisected by
        member as Redis's skiplist is searched (both assume lex order)."""
        if lo is True or hi is None or len(self) == 0:
            return 0, 0
        if self._lp is None:
            r = self._r
            a = 0 if lo is None else r.bisect_member(lo[0], lo[1])
            b = len(r) if hi is True else r.bisect_member(hi[0], not hi[1])
        else:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            if t[n] != t[-1]:
                return _lex_scan(t[:n], lo, hi, reverse, skip)
            a = 0 if lo is None else (bisect_right if lo[1] else bisect_left)(t, lo[0], 0, n)
            b = n if hi is True else (bisect_left if hi[1] else bisect_right)(t, hi[0], 0, n)
        if reverse:
            b -= skip
        else:
            a += skip
        return (a, b) if a < b else (0, 0)

    # -- writing -------------------------------------------------------------
    def put(self, member: bytes, score: float, limits):
        """Give ``member`` the score ``score``: True if it was added, False if
        its score changed, None if it had that score already (nothing changed)."""
        if self._lp is None:
            r = self._r
            o = r.d.get(member)
            if o is None:
                r.add(score, member)
                return True
            if o == score:
                return None
            r.discard(o, member)
            r.add(score, member)
            return False
        t = marshal.loads(self._lp)
        n = len(t) >> 1
        try:  # (_index, inlined: the call cost ZADD of one pair 3% of its instructions)
            i = t.index(member, 0, n)
        except ValueError:
            i = -1
        if i >= 0:
            if t[n + i] == score:
                return None
            self._lp = _pack(_insert(_delete(t, n, i), n - 1, score, member))
            return False
        if n >= limits.zset_max_listpack_entries or len(member) > limits.zset_max_listpack_value:
            self._big(_pairs(t, 0, n))
            self._r.add(score, member)
        else:
            self._lp = _pack(_insert(t, n, score, member))
        return True

    def update(self, changes, limits) -> None:
        """Give each member of ``changes`` ({member: new score}) its score, adding new ones.

        Converts to the large encoding first when the result would not fit the
        small one (counted before any change, as Redis converts before it adds).
        """
        if self._lp is not None:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            old = dict(zip(t[:n], range(n)))
            new = [m for m in changes if m not in old]
            if (n + len(new) > limits.zset_max_listpack_entries
                    or any(len(m) > limits.zset_max_listpack_value for m in new)):
                self._big(_pairs(t, 0, n))
            else:
                if len(new) < len(changes):  # drop the changed members, then insert them all
                    keep = [i for m, i in old.items() if m not in changes]
                    t = tuple([t[i] for i in keep] + [t[n + i] for i in keep])
                    n = len(keep)
                if len(changes) == 1:
                    for m, s in changes.items():
                        t = _insert(t, n, s, m)
                    self._lp = _pack(t)
                else:
                    pairs = list(zip(t[n:], t[:n]))
                    pairs += [(_kept(s), m) for m, s in changes.items()]
                    pairs.sort()
                    self._lp = _from_pairs(pairs)
                return
        r = self._r
        d = r.d
        for m, s in changes.items():
            o = d.get(m)
            if o is not None:
                r.discard(o, m)
            r.add(s, m)

    def remove(self, members) -> int:
        """Delete ``members``; the number that were there."""
        if self._lp is not None:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            if len(members) == 1:
                i = _index(t, n, members[0])
                if i < 0:
                    return 0
                self._lp = _pack(_delete(t, n, i))
                return 1
            drop = set(members)
            keep = [i for i in range(n) if t[i] not in drop]
            if len(keep) < n:
                self._lp = _pack(tuple([t[i] for i in keep] + [t[n + i] for i in keep]))
            return n - len(keep)
        r = self._r
        d = r.d
        n = 0
        for m in members:
            s = d.get(m)
            if s is not None:
                r.discard(s, m)
                n += 1
        return n

    def remove_span(self, start: int, stop: int) -> list:
        """Delete the pairs at positions start <= i < stop; returns them."""
        if stop <= start:
            return []
        if self._lp is not None:
            t = marshal.loads(self._lp)
            n = len(t) >> 1
            taken = _pairs(t, start, stop)
            self._lp = _pack(t[:start] + t[stop:n + start] + t[n + stop:])
            return taken
        return self._r.take(start, stop)

    def copy(self) -> "ZSet":
        z = ZSet.__new__(ZSet)
        z._at = 0
        z._lp = self._lp
        z._r = None if self._r is None else self._r.copy()
        return z


def format_score(s: float) -> bytes:
    """A score as an effect carries it: 17 significant digits (exact on replay), ``inf``, ``-inf``."""
    if s == inf:
        return b"inf"
    if s == -inf:
        return b"-inf"
    return b"%.17g" % s


_LL = 2.0**63


def scan_score(s: float) -> bytes:
    """A score as ZSCAN and the listpack print it: integral values in full, else ``%.17g``."""
    if s == 0:
        return b"-0" if str(s)[0] == "-" else b"0"
    if -_LL < s < _LL and s == int(s):
        return b"%d" % int(s)
    return format_score(s)


def _fits(pairs, limits) -> bool:
    return (len(pairs) <= limits.zset_max_listpack_entries
            and all(len(m) <= limits.zset_max_listpack_value for _, m in pairs))


def fits_small(n: int, longest: int, limits) -> bool:
    """Whether a set of ``n`` members, the longest ``longest`` bytes, starts small."""
    return n <= limits.zset_max_listpack_entries and longest <= limits.zset_max_listpack_value


def new_for(limits, n: int, longest: int) -> ZSet:
    """An empty set with the encoding Redis picks for ``n`` members up to ``longest`` bytes."""
    z = ZSet()
    if not fits_small(n, longest, limits):
        z._big([])
    return z


register(ZSet, "zset", encoding=lambda v: v.encoding, copy=ZSet.copy)
