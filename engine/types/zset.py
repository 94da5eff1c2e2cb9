"""The sorted set: members ordered by (score, member bytes), one score each.

Two encodings behind one interface, as Redis has them:

* ``listpack`` (small): the (member, score) pairs packed into one ``bytes``
  object, ``marshal`` of the flat tuple ``(m0, s0, m1, s1, …)`` in order.
  A command decodes it (C speed), works on the decoded list with ``bisect``
  and packs it again: O(n) for n ≤ ``zset-max-listpack-entries``, as Redis's
  listpack is, at a few hundred bytes a key instead of a dict's kilobyte.
* ``skiplist`` (large): a dict member -> score plus a ``SortedList`` of
  ``(score, member)`` tuples, which share the member and score objects: O(1)
  ZSCORE, O(log n) insert, delete, rank and range by score, lex and index.

A set converts small -> large once it holds more than
``zset-max-listpack-entries`` members or is given a member longer than
``zset-max-listpack-value`` bytes, and never back, except that a set built
whole (a store command's result, an RDB load) takes the small encoding when
it fits, as Redis's ``zsetConvertToListpackIfNeeded`` does.

Order: ascending score, ties by member bytes (memcmp), exactly Redis's. Lex
ranges assume every member has the same score, as Redis documents; on a set
with mixed scores they answer in that same order, bounded by the member bytes
at the first score.

Invariants: a ZSet is never empty once stored (the commands delete an
emptied key); exactly one of ``_lp`` and ``_d`` is set; ``_sl`` holds one
tuple for each entry of ``_d`` with the same score object.
"""

from __future__ import annotations

import marshal
from bisect import bisect_left, bisect_right, insort
from math import inf, nextafter

from sortedcontainers import SortedList

from engine.types import register


def _pack(pairs) -> bytes:
    flat = []
    for s, m in pairs:
        flat.append(m)
        flat.append(s or 0.0)  # a listpack keeps -0 as the integer 0, as Redis's does
    return marshal.dumps(tuple(flat))


def _unpack(buf: bytes) -> list:
    t = marshal.loads(buf)
    return list(zip(t[1::2], t[0::2]))


# Range bounds are normalized to (score, member) keys for bisect: ``lo`` is
# the first key in range, ``hi`` the first key past it.

def score_keys(lo: float, lo_ex: bool, hi: float, hi_ex: bool):
    """(first key in range, first key past it) for a score range, or None when empty."""
    if lo_ex:
        if lo == inf:
            return None
        lo = nextafter(lo, inf)
    if not hi_ex:
        if hi == inf:
            return (lo, b""), None  # None: to the end
        hi = nextafter(hi, inf)
    if lo > hi or (lo == hi):
        return None
    return (lo, b""), (hi, b"")


class ZSet:
    __slots__ = ("_lp", "_d", "_sl")

    def __init__(self, pairs=(), limits=None):
        """A set of ``pairs`` ((score, member), members distinct), small when it fits ``limits``."""
        pairs = sorted(pairs)
        self._d = None
        self._sl = None
        self._lp = None
        if limits is None or _fits(pairs, limits):
            self._lp = _pack(pairs)
        else:
            self._big(pairs)

    def _big(self, pairs) -> None:
        self._lp = None
        self._d = {m: s for s, m in pairs}
        self._sl = SortedList(pairs)

    # -- reading -------------------------------------------------------------
    @property
    def encoding(self) -> str:
        return "listpack" if self._lp is not None else "skiplist"

    def __len__(self) -> int:
        if self._lp is not None:
            return len(marshal.loads(self._lp)) >> 1
        return len(self._d)

    def pairs(self):
        """Every (score, member), in order: a list (small) or the SortedList itself (large)."""
        if self._lp is not None:
            return _unpack(self._lp)
        return self._sl

    def items(self) -> list:
        """[(member, score), …] in order."""
        return [(m, s) for s, m in self.pairs()]

    def score(self, member: bytes):
        if self._lp is not None:
            t = marshal.loads(self._lp)
            for i in range(0, len(t), 2):
                if t[i] == member:
                    return t[i + 1]
            return None
        return self._d.get(member)

    def scores(self, members) -> list:
        if self._lp is not None:
            t = marshal.loads(self._lp)
            d = dict(zip(t[0::2], t[1::2]))
        else:
            d = self._d
        return [d.get(m) for m in members]

    def score_map(self) -> dict:
        """member -> score (a new dict when small; the live one when large: do not change it)."""
        if self._lp is not None:
            t = marshal.loads(self._lp)
            return dict(zip(t[0::2], t[1::2]))
        return self._d

    def rank(self, member: bytes):
        """The 0-based ascending rank of ``member`` and its score, or None."""
        if self._lp is not None:
            t = marshal.loads(self._lp)
            for i in range(0, len(t), 2):
                if t[i] == member:
                    return i >> 1, t[i + 1]
            return None
        s = self._d.get(member)
        if s is None:
            return None
        return self._sl.bisect_left((s, member)), s

    def index_of(self, key, right: bool = False) -> int:
        """The position where ``key`` ((score, member)) would go; None key: the end."""
        seq = self.pairs()
        if key is None:
            return len(seq)
        if type(seq) is list:
            return (bisect_right if right else bisect_left)(seq, key)
        return seq.bisect_right(key) if right else seq.bisect_left(key)

    def slice(self, start: int, stop: int) -> list:
        """(score, member) pairs at positions start <= i < stop (already clamped)."""
        seq = self.pairs()
        if type(seq) is list:
            return seq[start:stop]
        return list(seq.islice(start, stop))

    def score_span(self, lo, lo_ex, hi, hi_ex):
        """(start, stop) positions of a score range."""
        keys = score_keys(lo, lo_ex, hi, hi_ex)
        if keys is None:
            return 0, 0
        seq = self.pairs()
        a = self._bisect(seq, keys[0])
        b = len(seq) if keys[1] is None else self._bisect(seq, keys[1])
        return a, max(a, b)

    def lex_span(self, lo, hi):
        """(start, stop) positions of a lex range; bounds are (member, exclusive) or '-'/'+' as None/True."""
        seq = self.pairs()
        n = len(seq)
        if n == 0:
            return 0, 0
        s0 = seq[0][0]
        if lo is None:
            a = 0
        elif lo is True:
            return 0, 0
        else:
            m, ex = lo
            a = (bisect_right if ex else bisect_left)(seq, (s0, m)) if type(seq) is list else \
                (seq.bisect_right if ex else seq.bisect_left)((s0, m))
        if hi is True:
            b = n
        elif hi is None:
            return 0, 0
        else:
            m, ex = hi
            b = (bisect_left if ex else bisect_right)(seq, (s0, m)) if type(seq) is list else \
                (seq.bisect_left if ex else seq.bisect_right)((s0, m))
        return a, max(a, b)

    @staticmethod
    def _bisect(seq, key) -> int:
        if type(seq) is list:
            return bisect_left(seq, key)
        return seq.bisect_left(key)

    # -- writing -------------------------------------------------------------
    def update(self, changes, limits) -> None:
        """Give each member of ``changes`` ({member: new score}) its score, adding new ones.

        Converts to the large encoding first when the result would not fit the
        small one (counted before any change, as Redis converts before it adds).
        """
        if self._lp is not None:
            pairs = _unpack(self._lp)
            old = {m: s for s, m in pairs}
            new = [m for m in changes if m not in old]
            if (len(pairs) + len(new) > limits.zset_max_listpack_entries
                    or any(len(m) > limits.zset_max_listpack_value for m in new)):
                self._big(pairs)
            else:
                for m, s in changes.items():
                    o = old.get(m)
                    if o is not None:
                        pairs.pop(bisect_left(pairs, (o, m)))
                    insort(pairs, (s, m))
                self._lp = _pack(pairs)
                return
        d, sl = self._d, self._sl
        for m, s in changes.items():
            o = d.get(m)
            if o is not None:
                sl.remove((o, m))
            d[m] = s
            sl.add((s, m))

    def remove(self, members) -> int:
        """Delete ``members``; the number that were there."""
        if self._lp is not None:
            pairs = _unpack(self._lp)
            drop = set(members)
            kept = [p for p in pairs if p[1] not in drop]
            n = len(pairs) - len(kept)
            if n:
                self._lp = _pack(kept)
            return n
        d, sl = self._d, self._sl
        n = 0
        for m in members:
            s = d.pop(m, None)
            if s is not None:
                sl.remove((s, m))
                n += 1
        return n

    def remove_span(self, start: int, stop: int) -> list:
        """Delete the pairs at positions start <= i < stop; returns them."""
        if stop <= start:
            return []
        if self._lp is not None:
            pairs = _unpack(self._lp)
            taken = pairs[start:stop]
            del pairs[start:stop]
            self._lp = _pack(pairs)
            return taken
        sl, d = self._sl, self._d
        taken = list(sl.islice(start, stop))
        del sl[start:stop]
        for _, m in taken:
            del d[m]
        return taken

    def copy(self) -> "ZSet":
        z = ZSet.__new__(ZSet)
        z._lp = self._lp
        if self._lp is None:
            z._d = dict(self._d)
            z._sl = SortedList(self._sl)
        else:
            z._d = z._sl = None
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
